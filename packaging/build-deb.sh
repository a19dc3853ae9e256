#!/bin/bash
# build-deb.sh - build the slirp-helper Debian package
#
# Usage: packaging/build-deb.sh             on this machine (Debian 12)
#        packaging/build-deb.sh CODENAME    in a clean CODENAME chroot (mmdebstrap)
#
# The source package is the helper's meson project (helper/) plus
# packaging/debian, copied into build/deb/CODENAME/slirp-helper-VERSION;
# VERSION is helper/meson.build's project version, with "+debNN" appended
# for a release other than the machine's own (so a Debian 13 package
# upgrades a Debian 12 one).  dpkg-buildpackage -us -uc -b builds it, and
# lintian checks the result (exit status non-zero on any error or warning
# that packaging/debian/ does not override).  The .deb is copied to
# build/deb/ (this machine's release) or build/deb/CODENAME/.
#
# A chroot build unpacks a cached build chroot (build/chroots/CODENAME-build.tar,
# made once by mmdebstrap --variant=buildd with the Build-Depends, from the
# machine's own mirrors: scripts/debian-apt.sh sources) into a temporary
# directory, builds there inside a private mount namespace and removes it.

set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
build=$top/build

die() { echo "build-deb: $*" >&2; exit 1; }

# shellcheck disable=SC1091
host=$(. /etc/os-release && echo "$VERSION_CODENAME")
release=${1:-$host}
upstream=$(sed -n "s/^  version: '\([^']*\)',$/\1/p" "$top/helper/meson.build" | head -n1)
[ -n "$upstream" ] || die "no version in helper/meson.build"

series() {
    case "$1" in
        bookworm) echo 12 ;;
        trixie) echo 13 ;;
        *) die "unknown release '$1' (bookworm, trixie)" ;;
    esac
}
if [ "$release" = "$host" ]; then
    version=$upstream
    outdir=$build/deb
else
    version=$upstream+deb$(series "$release")
    outdir=$build/deb/$release
fi

work=$build/deb/$release
src=$work/slirp-helper-$upstream
rm -rf "$src"
mkdir -p "$src" "$outdir"
# the helper's sources as git has them (no build trees, no editor files)
(cd "$top" && git ls-files -z helper) | (cd "$top" && xargs -0 cp --parents -t "$work") 
cp -a "$work/helper/." "$src/" && rm -rf "$work/helper"
cp -a "$here/debian" "$src/debian"
sed -e "s/@VERSION@/$version/" -e "s/@DIST@/$release/" -e "s/@UPSTREAM@/$upstream/" \
    -e "s/@DISTNAME@/Debian $(series "$release") ($release)/" \
    -e "s/@DATE@/$(date -R -d @"$(cd "$top" && git log -1 --format=%ct)")/" \
    "$src/debian/changelog.in" > "$src/debian/changelog"
rm "$src/debian/changelog.in"

deb=slirp-helper_${version}_$(dpkg --print-architecture).deb
start=$(date +%s)
log=$work/build.log

if [ "$release" = "$host" ]; then
    echo "build-deb: building $deb on this machine (log: $log)"
    (cd "$src" && dpkg-buildpackage -us -uc -b) >"$log" 2>&1 ||
        { tail -n 30 "$log"; die "dpkg-buildpackage failed"; }
else
    [ "$(id -u)" = 0 ] || die "a chroot build needs root"
    command -v mmdebstrap >/dev/null || die "mmdebstrap is missing (scripts/deps.sh installs it)"
    tarball=$build/chroots/$release-build.tar
    builddeps=$(sed -n '/^Build-Depends:/,/^[A-Z]/p' "$here/debian/control" |
                sed -e '1s/^Build-Depends://' -e '/^[A-Z]/d' -e 's/([^)]*)//g' -e 's/:any//g' |
                tr -d ' \n' | sed 's/,$//')
    if [ ! -f "$tarball" ]; then
        mkdir -p "$(dirname "$tarball")"
        echo "build-deb: creating the $release build chroot $tarball (mmdebstrap, buildd variant)"
        t0=$(date +%s)
        mapfile -t sources < <("$here/../scripts/debian-apt.sh" sources "$release")
        [ ${#sources[@]} -gt 0 ] || exit 1  # debian-apt.sh said why
        mmdebstrap --format=tar --variant=buildd --include="$builddeps" \
            --customize-hook="$here/downloaded-bytes.sh \"\$1\"" \
            "$release" "$tarball.tmp" "${sources[@]}" >"$work/mmdebstrap.log" 2>&1 ||
            { tail -n 30 "$work/mmdebstrap.log"; rm -f "$tarball.tmp"; die "mmdebstrap failed"; }
        mv "$tarball.tmp" "$tarball"
        echo "build-deb: build chroot made in $(( $(date +%s) - t0 )) s," \
             "$(( $(tar -xOf "$tarball" ./downloaded-bytes) >> 20 )) MiB of packages downloaded," \
             "$(( $(stat -c %s "$tarball") >> 20 )) MiB tarball"
    fi
    root=$(mktemp -d "$work/root.XXXXXX")
    trap 'rm -rf "$root"' EXIT
    tar -C "$root" -xf "$tarball"
    mkdir -p "$root/build"
    cp -a "$src" "$root/build/"
    echo "build-deb: building $deb in a $release chroot (log: $log)"
    # a private mount namespace: the mounts vanish with the build, whatever happens
    unshare --mount --propagation private sh -ec '
        mount -t proc proc "$1/proc"
        mount -t tmpfs tmpfs "$1/dev/shm" 2>/dev/null || true
        for d in null zero random urandom; do
            [ -e "$1/dev/$d" ] || touch "$1/dev/$d"
            mount --bind "/dev/$d" "$1/dev/$d"
        done
        chroot "$1" sh -c "cd /build/$2 && dpkg-buildpackage -us -uc -b"
    ' sh "$root" "slirp-helper-$upstream" >"$log" 2>&1 ||
        { tail -n 30 "$log"; die "dpkg-buildpackage failed in the $release chroot"; }
    cp "$root/build/"slirp-helper*_"$version"_* "$work/"
fi
cp "$work/$deb" "$outdir/$deb.tmp" && mv "$outdir/$deb.tmp" "$outdir/$deb"
echo "build-deb: built $outdir/$deb in $(( $(date +%s) - start )) s"

echo "build-deb: lintian $deb"
changes=$(ls -t "$work"/slirp-helper_"${version}"_*.changes | head -n1)
rc=0
lintian --fail-on error,warning --info "$changes" >"$work/lintian.log" 2>&1 || rc=$?
grep -v '^running with root privileges' "$work/lintian.log" || true
[ "$rc" = 0 ] || die "lintian found problems in $deb"
echo "build-deb: lintian clean"
