#!/bin/bash
# fetch.sh - download a pinned libvirt tarball and verify its checksum
#
# Usage: libvirt/fetch.sh DOWNLOAD_DIR [SERIES]
#
# SERIES is a directory of libvirt/ (default: the primary series, see
# series.sh); its upstream.env names the tarball, its SHA-256 and the Debian
# suite whose source package carries it.
#
# The tarball is found through apt's own machinery, with no host name
# written anywhere in this repository: scripts/debian-apt.sh derives a
# deb-src entry for the series' suite from the machine's own apt sources
# into a private apt state directory (build/apt-SUITE: the host's apt
# configuration and lists are never touched), apt reads that suite's
# Sources index, and the tarball is the file of the libvirt source package
# listed there with exactly the pinned checksum.  apt-helper downloads it and verifies that checksum.  Only the
# tarball is downloaded, not the whole source package: Debian 13's .dsc for
# libvirt 11.3.0 answers 404 at the mirror while its tarball does not.
# A tarball that is already present and has the right checksum is reused.

set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
# shellcheck source=series.sh
. "$here/series.sh"

die() { echo "fetch: $*" >&2; exit 1; }

[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: fetch.sh DOWNLOAD_DIR [SERIES]"
dest=$1
series_select "$top" "${2:-}" 2>/dev/null || die "$(series_select "$top" "${2:-}" 2>&1)"
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
tarball="$dest/$LIBVIRT_TARBALL"

verify() {
    local sum
    sum=$(sha256sum "$1" | cut -d' ' -f1)
    [ "$sum" = "$LIBVIRT_SHA256" ] ||
        die "checksum mismatch for $1: got $sum, expected $LIBVIRT_SHA256 (libvirt/$LIBVIRT_VERSION/upstream.env)"
}

if [ -f "$tarball" ]; then
    verify "$tarball"
    exit 0
fi

command -v apt-get >/dev/null || die "apt-get not found: this needs a Debian machine"

apt=("$top/scripts/debian-apt.sh" "$LIBVIRT_DEBIAN_SUITE")
log=$(mktemp)
trap 'rm -f "$log"' EXIT

echo "fetch: reading the $LIBVIRT_DEBIAN_SUITE source index (private apt state in build/apt-$LIBVIRT_DEBIAN_SUITE)" >&2
# The Directory of the libvirt source entry that lists our checksum.
if ! index=$("${apt[@]}" apt-cache showsrc libvirt 2>"$log"); then
    die "$(grep -m1 -E '^(debian-apt|E|W|Err):' "$log" || tail -n1 "$log")"
fi
directory=$(printf '%s\n' "$index" | awk -v sum="$LIBVIRT_SHA256" -v file="$LIBVIRT_TARBALL" '
    /^$/ { if (found && dir != "") { print dir; exit } found = 0; dir = "" }
    /^Directory:/ { dir = $2 }
    $1 == sum && $3 == file { found = 1 }
    END { if (found && dir != "") print dir }' | head -n1)
[ -n "$directory" ] ||
    die "no libvirt source package in $LIBVIRT_DEBIAN_SUITE lists $LIBVIRT_TARBALL with SHA-256 $LIBVIRT_SHA256"

read -r uri _ < <("$top/scripts/debian-apt.sh" entries)
echo "fetch: downloading $LIBVIRT_TARBALL ($LIBVIRT_DEBIAN_SUITE, libvirt $LIBVIRT_DEBIAN_VERSION) with apt-helper" >&2
"${apt[@]}" /usr/lib/apt/apt-helper download-file "${uri%/}/$directory/$LIBVIRT_TARBALL" \
    "$tarball.part" "SHA256:$LIBVIRT_SHA256" >"$log" 2>&1 || {
    rm -f "$tarball.part"
    die "downloading $LIBVIRT_TARBALL failed: $(grep -m1 -E '^(E|W|Err):' "$log" || tail -n1 "$log")"
}
mv "$tarball.part" "$tarball"
verify "$tarball"
