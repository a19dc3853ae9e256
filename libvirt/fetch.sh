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
# written anywhere in this repository: the deb entries of the machine's apt
# sources for its own release give the archive's URI, a deb-src entry for
# the series' suite is derived from them into a private apt state directory
# (build/apt-SUITE: the host's apt configuration and lists are never
# touched), apt reads that suite's Sources index, and the tarball is the
# file of the libvirt source package listed there with exactly the pinned
# checksum.  apt-helper downloads it and verifies that checksum.  Only the
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

state=$top/build/apt-$LIBVIRT_DEBIAN_SUITE
mkdir -p "$state/lists/partial" "$state/cache/archives/partial"
: > "$state/sources.list"
mapfile -t entries < <("$here/debian-archive.sh")
[ ${#entries[@]} -gt 0 ] ||
    die "no deb entry for this machine's Debian release in /etc/apt/sources*: cannot derive a deb-src entry for $LIBVIRT_DEBIAN_SUITE"
for entry in "${entries[@]}"; do
    read -r uri key <<<"$entry"
    opts=""
    [ "$key" = "-" ] || opts="[signed-by=$key] "
    echo "deb-src ${opts}$uri $LIBVIRT_DEBIAN_SUITE main" >> "$state/sources.list"
done

apt_private=(-o "Dir::Etc::SourceList=$state/sources.list" -o Dir::Etc::SourceParts=/dev/null
             -o "Dir::State::Lists=$state/lists" -o "Dir::Cache=$state/cache"
             -o APT::Sandbox::User=root -q)
log=$(mktemp)
trap 'rm -f "$log"' EXIT

echo "fetch: reading the $LIBVIRT_DEBIAN_SUITE source index through a private apt state ($state)" >&2
apt-get "${apt_private[@]}" update >"$log" 2>&1 ||
    die "apt-get update of the $LIBVIRT_DEBIAN_SUITE source index failed: $(grep -m1 -E '^(E|W|Err):' "$log" || tail -n1 "$log")"

# The Directory of the libvirt source entry that lists our checksum.
directory=$(apt-cache "${apt_private[@]}" showsrc libvirt 2>"$log" | awk -v sum="$LIBVIRT_SHA256" -v file="$LIBVIRT_TARBALL" '
    /^$/ { if (found && dir != "") { print dir; exit } found = 0; dir = "" }
    /^Directory:/ { dir = $2 }
    $1 == sum && $3 == file { found = 1 }
    END { if (found && dir != "") print dir }' | head -n1)
[ -n "$directory" ] ||
    die "no libvirt source package in $LIBVIRT_DEBIAN_SUITE lists $LIBVIRT_TARBALL with SHA-256 $LIBVIRT_SHA256"

read -r uri _ <<<"${entries[0]}"
echo "fetch: downloading $LIBVIRT_TARBALL ($LIBVIRT_DEBIAN_SUITE, libvirt $LIBVIRT_DEBIAN_VERSION) with apt-helper" >&2
/usr/lib/apt/apt-helper "${apt_private[@]}" download-file "${uri%/}/$directory/$LIBVIRT_TARBALL" \
    "$tarball.part" "SHA256:$LIBVIRT_SHA256" >"$log" 2>&1 || {
    rm -f "$tarball.part"
    die "downloading $LIBVIRT_TARBALL failed: $(grep -m1 -E '^(E|W|Err):' "$log" || tail -n1 "$log")"
}
mv "$tarball.part" "$tarball"
verify "$tarball"
