#!/bin/bash
# stock-chroot.sh - a clean chroot tarball of a Debian release with its own
# (stock) libvirt and QEMU, for tests/stock
#
# Usage: packaging/stock-chroot.sh CODENAME TARBALL
#
# mmdebstrap, variant apt, no recommends, from the machine's own mirrors
# (scripts/debian-apt.sh sources): libvirt-daemon-system (libvirtd, virtlogd,
# qemu.conf and the libvirt-qemu user, as an administrator installs it),
# qemu-system-x86, and the run-time dependencies of the slirp-helper
# package, so that the test installs that one .deb offline with dpkg.
# Nothing of the fork.  The tarball holds /downloaded-bytes: the size of the
# packages mmdebstrap downloaded.  An existing tarball is kept.

set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
die() { echo "stock-chroot: $*" >&2; exit 1; }

[ $# -eq 2 ] || die "usage: stock-chroot.sh CODENAME TARBALL"
release=$1 tarball=$2
[ -f "$tarball" ] && exit 0
[ "$(id -u)" = 0 ] || die "needs root"
command -v mmdebstrap >/dev/null || die "mmdebstrap is missing (scripts/deps.sh installs it)"

case "$release" in
    bookworm) glib=libglib2.0-0 ;;
    *) glib=libglib2.0-0t64 ;;
esac
pkgs=libvirt-daemon-system,qemu-system-x86,dbus-daemon,libslirp0,libseccomp2,$glib

mkdir -p "$(dirname "$tarball")"
log=${tarball%.tar}.log
mapfile -t sources < <("$here/../scripts/debian-apt.sh" sources "$release")
[ ${#sources[@]} -gt 0 ] || exit 1  # debian-apt.sh said why
start=$(date +%s)
echo "stock-chroot: creating $tarball (mmdebstrap $release: $pkgs)" >&2
mmdebstrap --format=tar --variant=apt --include="$pkgs" \
    --aptopt='APT::Install-Recommends "false"' \
    --customize-hook="$here/downloaded-bytes.sh \"\$1\"" \
    "$release" "$tarball.tmp" "${sources[@]}" >"$log" 2>&1 ||
    { tail -n 30 "$log" >&2; rm -f "$tarball.tmp"; die "mmdebstrap failed (log: $log)"; }
mv "$tarball.tmp" "$tarball"
echo "stock-chroot: $release made in $(( $(date +%s) - start )) s," \
     "$(( $(tar -xOf "$tarball" ./downloaded-bytes) >> 20 )) MiB of packages downloaded," \
     "$(( $(stat -c %s "$tarball") >> 20 )) MiB tarball" >&2
