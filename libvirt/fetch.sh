#!/bin/bash
# fetch.sh - download the pinned libvirt tarball and verify its checksum
#
# Usage: libvirt/fetch.sh DOWNLOAD_DIR
#
# The tarball comes from Debian's source package (apt-get source
# --download-only), so no host name is written anywhere in this repository.
# When the machine has no deb-src entries, they are derived from its existing
# deb entries into /etc/apt/sources.list.d/libvirt-slirp-src.{sources,list}.
# A tarball that is already present and has the right checksum is reused.

set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=upstream.env
. "$here/upstream.env"

die() { echo "fetch: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: fetch.sh DOWNLOAD_DIR"
dest=$1
mkdir -p "$dest"
tarball="$dest/$LIBVIRT_TARBALL"

verify() {
    local sum
    sum=$(sha256sum "$1" | cut -d' ' -f1)
    [ "$sum" = "$LIBVIRT_SHA256" ] ||
        die "checksum mismatch for $1: got $sum, expected $LIBVIRT_SHA256 (libvirt/upstream.env)"
}

if [ -f "$tarball" ]; then
    verify "$tarball"
    exit 0
fi

have_deb_src() {
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -e "$f" ] && grep -qE '^(deb-src|Types:.*deb-src)' "$f" && return 0
    done
    return 1
}

add_deb_src() {
    local d=/etc/apt/sources.list.d f tmp
    tmp=$(mktemp)
    [ "$(id -u)" = 0 ] || die "no deb-src entries in the apt sources and not root to add them"
    echo "fetch: adding deb-src entries derived from the machine's apt sources" >&2
    # deb822 files: copy every stanza whose Types include deb, as deb-src.
    for f in "$d"/*.sources; do
        [ -e "$f" ] || continue
        case "$f" in *libvirt-slirp-src.sources) continue ;; esac
        sed -n -e 's/^Types:.*\bdeb\b.*$/Types: deb-src/' -e '/^\(Types\|URIs\|Suites\|Components\|Signed-By\|Enabled\):/p' -e '/^$/p' "$f"
    done > "$tmp.sources"
    # one-line files: deb -> deb-src
    for f in /etc/apt/sources.list "$d"/*.list; do
        [ -e "$f" ] || continue
        case "$f" in *libvirt-slirp-src.list) continue ;; esac
        sed -n 's/^deb \(.*\)$/deb-src \1/p' "$f"
    done > "$tmp.list"
    mv "$tmp.list" "$d/libvirt-slirp-src.list"
    mv "$tmp.sources" "$d/libvirt-slirp-src.sources"
    rm -f "$tmp"
    apt-get update -q >/dev/null || die "apt-get update failed after adding deb-src entries"
}

command -v apt-get >/dev/null || die "apt-get not found: this needs a Debian 12 machine"
have_deb_src || add_deb_src

echo "fetch: downloading libvirt $LIBVIRT_DEBIAN_VERSION source with apt-get source" >&2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! (cd "$dest" && apt-get source --download-only "libvirt=$LIBVIRT_DEBIAN_VERSION") >"$log" 2>&1; then
    die "apt-get source libvirt=$LIBVIRT_DEBIAN_VERSION failed: $(grep -E '^(E|W):' "$log" | head -n1)"
fi
[ -f "$tarball" ] || die "apt-get source did not produce $LIBVIRT_TARBALL"
verify "$tarball"
