#!/bin/bash
# debian-source.sh - Debian's own libvirt source package, with the series added
#
# Usage: libvirt/debian-source.sh [--binary] SERIES
#
# Only the 9.0.0 series can be built this way today: its suite, Debian 12
# (bookworm), serves the whole libvirt source package.  Debian 13's (trixie)
# .dsc for libvirt 11.3.0 answers 404 at the mirror, so the 11.3.0 series
# is refused with one line.
#
# Into build/debian-src-SERIES:
#  1. Debian's libvirt source package of the series (LIBVIRT_DEBIAN_VERSION
#     of libvirt/SERIES/upstream.env) is downloaded with "apt-get source
#     --download-only" through scripts/debian-apt.sh (the private apt state
#     build/apt-SUITE; no mirror host name is written anywhere).  Files
#     already there are reused, the tarball of build/downloads is seeded.
#  2. The orig tarball is checked against the pinned SHA-256 of
#     upstream.env, then the package is unpacked with "dpkg-source -x"
#     (which applies Debian's own patches) into libvirt-VERSION/.
#  3. The series, exported by export-debian.sh (DEP-3 headers) into
#     build/debian-patches-SERIES, goes to debian/patches/slirp-helper/ and
#     its series fragment is appended to debian/patches/series.
#  4. A debian/changelog stanza is written (no dch needed): version
#     DEBIAN_VERSION+slirphelper1, distribution UNRELEASED, dated by the
#     newest patch so the same series gives the same source package.
#  5. "dpkg-source -b" builds the new .dsc and .debian.tar.xz.  It applies
#     every patch of the series that is not applied yet, with its quilt
#     logic (patch -F 0: no fuzz), on top of Debian's patches: a patch that
#     does not apply is named with patch's reason, and the build stops.
#
# --binary then installs the build dependencies and builds the binary
# packages with "dpkg-buildpackage -b -uc -us" (they land in
# build/debian-src-SERIES/).  The build dependencies are installed with
# this machine's own apt-get ("apt-get build-dep" on the unpacked tree),
# not the private apt state: installing into this machine needs its dpkg
# status and all its sources (-security, -updates), which the private state
# leaves out.  So --binary needs a host of the series' suite (Debian 12 for
# 9.0.0) and root, and takes long: DEB_BUILD_OPTIONS (nocheck,
# parallel=N) is passed through.

set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
# shellcheck source=series.sh
. "$here/series.sh"

die() { echo "debian-source: $*" >&2; exit 1; }
usage="usage: debian-source.sh [--binary] SERIES"

binary=no
version=
for arg; do
    case "$arg" in
        --binary) binary=yes ;;
        -*) die "unknown argument '$arg' ($usage)" ;;
        *) [ -z "$version" ] || die "more than one series given ($usage)"
           version=$arg ;;
    esac
done
[ -n "$version" ] || die "$usage"
series_select "$top" "$version" 2>/dev/null || die "$(series_select "$top" "$version" 2>&1)"

case "$LIBVIRT_DEBIAN_SUITE" in
    bookworm) ;;
    trixie) die "Debian's libvirt $LIBVIRT_DEBIAN_VERSION source package (trixie) cannot be downloaded: its .dsc answers 404 at the mirror; only the 9.0.0 series (bookworm) can be built as a Debian source package" ;;
    *) die "no Debian source package build for suite '$LIBVIRT_DEBIAN_SUITE' (series $LIBVIRT_VERSION); only the 9.0.0 series (bookworm) is supported" ;;
esac
for tool in apt-get dpkg-source sha256sum xz; do
    command -v "$tool" >/dev/null || die "$tool not found (dpkg-dev, apt and xz-utils are needed)"
done

src=$top/build/debian-src-$LIBVIRT_VERSION
export_dir=$top/build/debian-patches-$LIBVIRT_VERSION
debver=${LIBVIRT_DEBIAN_VERSION#*:}                   # file names carry no epoch
dsc=libvirt_$debver.dsc
newver=$LIBVIRT_DEBIAN_VERSION+slirphelper1
newdsc=libvirt_${newver#*:}.dsc
unpacked=libvirt-$LIBVIRT_VERSION
log=$src/debian-source.log
mkdir -p "$src"
cd "$src"
# step 2 replaces the unpacked tree: one run at a time (a --binary run in a
# chroot with this directory bound into it takes the same lock)
exec 9>"$src/.lock"
flock -n 9 || die "another debian-source.sh is using build/debian-src-$LIBVIRT_VERSION"

# 1. the source package of the series' suite
if [ -f "$dsc" ] && [ -f "$LIBVIRT_TARBALL" ]; then
    echo "debian-source: reusing $dsc in build/debian-src-$LIBVIRT_VERSION"
else
    if [ ! -f "$LIBVIRT_TARBALL" ] && [ -f "$downloads/$LIBVIRT_TARBALL" ]; then
        cp "$downloads/$LIBVIRT_TARBALL" "$LIBVIRT_TARBALL"    # apt skips a file it already has
    fi
    echo "debian-source: downloading libvirt $LIBVIRT_DEBIAN_VERSION ($LIBVIRT_DEBIAN_SUITE) with apt-get source (private apt state in build/apt-$LIBVIRT_DEBIAN_SUITE)"
    "$top/scripts/debian-apt.sh" "$LIBVIRT_DEBIAN_SUITE" apt-get source --download-only \
        "libvirt=$LIBVIRT_DEBIAN_VERSION" >"$log" 2>&1 ||
        die "apt-get source libvirt=$LIBVIRT_DEBIAN_VERSION failed: $(grep -m1 -E '^(debian-apt|E|W|Err):' "$log" || tail -n1 "$log")"
    [ -f "$dsc" ] || die "apt-get source gave no $dsc (see $log)"
fi

# 2. the pinned tarball, then Debian's tree with Debian's patches
sum=$(sha256sum "$LIBVIRT_TARBALL" | cut -d' ' -f1)
[ "$sum" = "$LIBVIRT_SHA256" ] ||
    die "$LIBVIRT_TARBALL of $dsc is not the pinned tarball: SHA-256 $sum, libvirt/$LIBVIRT_VERSION/upstream.env says $LIBVIRT_SHA256"
rm -rf "$unpacked" "$newdsc" "libvirt_${newver#*:}.debian.tar".*
echo "debian-source: unpacking $dsc (dpkg-source -x, Debian's patches applied)"
dpkg-source -x "$dsc" "$unpacked" >"$log" 2>&1 ||
    die "dpkg-source -x $dsc failed: $(grep -m1 'error' "$log" || tail -n1 "$log")"
[ "$(cat "$unpacked/debian/source/format" 2>/dev/null)" = "3.0 (quilt)" ] ||
    die "$dsc is not a '3.0 (quilt)' source package: cannot add patches to debian/patches"
top_version=$(sed -n '1s/^[^ ]* (\([^)]*\)).*/\1/p' "$unpacked/debian/changelog")
[ "$top_version" = "$LIBVIRT_DEBIAN_VERSION" ] ||
    die "debian/changelog of $dsc starts at $top_version, expected $LIBVIRT_DEBIAN_VERSION"

# 3. the series in debian/patches/slirp-helper
"$here/export-debian.sh" "$LIBVIRT_VERSION" "$export_dir" >/dev/null
patchdir=$unpacked/debian/patches
[ ! -e "$patchdir/slirp-helper" ] || die "Debian's package already has debian/patches/slirp-helper"
mkdir -p "$patchdir"
cp -r "$export_dir/slirp-helper" "$patchdir/"
if [ -s "$patchdir/series" ] && [ -n "$(tail -c1 "$patchdir/series")" ]; then
    echo >> "$patchdir/series"                     # Debian's series lacks a final newline
fi
cat "$export_dir/series" >> "$patchdir/series"
count=$(wc -l < "$export_dir/series")

# 4. the changelog stanza, dated by the newest patch
newest=0
while read -r name _; do
    case "$name" in ''|'#'*) continue ;; esac
    when=$(date -d "$(sed -n 's/^Date: //p;/^$/q' "$patches/$name")" +%s) ||
        die "cannot read the Date: of $name"
    [ "$when" -le "$newest" ] || newest=$when
done < "$patches/series"
maintainer="${DEBFULLNAME:-$(git -C "$top" config user.name || echo libvirt-slirp)} <${DEBEMAIL:-$(git -C "$top" config user.email || echo dev@libvirt-slirp.invalid)}>"
{
    echo "libvirt ($newver) UNRELEASED; urgency=medium"
    echo
    echo "  * Add the slirp-helper series of libvirt-slirp (libvirt/$LIBVIRT_VERSION):"
    echo "    $count patches in debian/patches/slirp-helper/, applied after Debian's own."
    echo
    echo " -- $maintainer  $(LC_ALL=C date -u -R -d "@$newest")"
    echo
    cat "$unpacked/debian/changelog"
} > "$unpacked/debian/changelog.new"
mv "$unpacked/debian/changelog.new" "$unpacked/debian/changelog"

# 5. the new source package: every patch applied on top of Debian's
echo "debian-source: building $newdsc (dpkg-source -b applies the $count patches on top of Debian's)"
if ! dpkg-source -b "$unpacked" >"$log" 2>&1; then
    # dpkg-source applies the series in a scratch copy ("patch ... -B
    # .pc/NAME/ ...") and stops at the first patch that does not apply
    failing=$(sed -n 's|^dpkg-source: error: .* -B \.pc/\(.*\)/ --reject-file.*|\1|p' "$log" | head -n1)
    [ -n "$failing" ] || die "dpkg-source -b failed: $(grep -m1 'error' "$log" || tail -n1 "$log")"
    # the first hunk patch refused, and the file it is in
    reason=$(awk '/^patching file / { file = substr($0, 15) }
                  /FAILED|can.t find file|Reversed|malformed/ { print (file != "" ? file ": " : "") $0; exit }' "$log")
    reason=${reason%.}
    file=${reason%%: *}
    # Debian's own patches (applied before the series) that change that file
    touching=()
    if [ -n "$file" ] && [ "$file" != "$reason" ]; then
        while read -r name _; do
            case "$name" in ''|'#'*|slirp-helper/*) continue ;; esac
            awk -v f="$file" '$1 == "+++" { p = $2; sub(/^[^\/]+\//, "", p)
                                            if (p == f || $2 == f) { found = 1; exit } }
                              END { exit !found }' "$patchdir/$name" 2>/dev/null && touching+=("$name")
        done < "$patchdir/series"
    fi
    others=
    [ ${#touching[@]} -eq 0 ] || others="; Debian's patches changing $file: ${touching[*]}"
    die "$failing does not apply on top of Debian's patches (dpkg-source, no fuzz): ${reason:-see the log}$others (full output: $log)"
fi
[ -f "$newdsc" ] || die "dpkg-source -b wrote no $newdsc (see $log)"
echo "debian-source: $src/$newdsc: Debian's libvirt $LIBVIRT_DEBIAN_VERSION with the $count patches of libvirt/$LIBVIRT_VERSION"

[ "$binary" = yes ] || exit 0

host=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
[ "$host" = "$LIBVIRT_DEBIAN_SUITE" ] ||
    die "--binary installs the build dependencies into this machine: it needs a Debian $LIBVIRT_DEBIAN_SUITE host, this is ${host:-unknown}"
[ "$(id -u)" = 0 ] || die "--binary installs the build dependencies with apt-get: run it as root"
echo "debian-source: installing the build dependencies of $newdsc (apt-get build-dep)"
apt-get build-dep -y "./$unpacked" >"$log" 2>&1 ||
    die "apt-get build-dep failed: $(grep -m1 -E '^(E|W|Err):' "$log" || tail -n1 "$log")"
echo "debian-source: building the binary packages (dpkg-buildpackage -b -uc -us; output in $src/dpkg-buildpackage.log)"
(cd "$unpacked" && dpkg-buildpackage -b -uc -us) >"$src/dpkg-buildpackage.log" 2>&1 ||
    die "dpkg-buildpackage failed: $(grep -m1 -E 'error|Error' "$src/dpkg-buildpackage.log" || tail -n1 "$src/dpkg-buildpackage.log")"
echo "debian-source: binary packages of libvirt $newver in $src"
