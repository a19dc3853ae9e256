#!/bin/bash
# build.sh - configure (once) and build a patched libvirt tree
#
# Usage: libvirt/build.sh [SERIES]
#
# Only what the QEMU driver needs is enabled: the qemu, remote, network and
# test drivers, libvirtd/virtqemud, virtlogd, tests; no docs.  The build
# directory is build/libvirt-SERIES-build and installs into build/root-SERIES,
# a private prefix the system tests run from, so a system libvirt is never
# touched.  SERIES defaults to the primary series (series.sh).
# ninja makes repeated builds incremental.

set -euo pipefail
# Debian's python3 for meson and the tests, never a pyenv shim first in PATH
export PYENV_VERSION=system

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
# shellcheck source=series.sh
. "$here/series.sh"

die() { echo "build: $*" >&2; exit 1; }

[ $# -le 1 ] || die "usage: build.sh [SERIES]"
series_select "$top" "${1:-}" 2>/dev/null || die "$(series_select "$top" "${1:-}" 2>&1)"
[ -d "$tree/.git" ] || die "no libvirt tree at $tree; run 'make prepare' first"
for tool in meson ninja pkg-config rpcgen xmllint xsltproc; do
    command -v "$tool" >/dev/null || die "missing build dependency '$tool'; run 'make deps'"
done

if [ ! -f "$builddir/build.ninja" ]; then
    echo "build: configuring libvirt $LIBVIRT_VERSION in $builddir"
    log=$builddir.setup.log
    mkdir -p "$(dirname "$builddir")"
    # syntax-check is registered only when the source is a git checkout at
    # configure time, which prepare.sh guarantees.
    if ! meson setup "$builddir" "$tree" \
        --prefix="$prefix" --localstatedir="$prefix/var" --sysconfdir="$prefix/etc" \
        -Drunstatedir="$prefix/run" \
        -Ddocs=disabled -Dtests=enabled -Dexpensive_tests=enabled \
        -Ddriver_qemu=enabled -Ddriver_remote=enabled -Ddriver_libvirtd=enabled \
        -Ddriver_network=enabled -Ddriver_test=enabled \
        -Ddriver_ch=disabled -Ddriver_lxc=disabled -Ddriver_libxl=disabled \
        -Ddriver_vbox=disabled -Ddriver_esx=disabled -Ddriver_vmware=disabled \
        -Ddriver_openvz=disabled -Ddriver_vz=disabled -Ddriver_bhyve=disabled \
        -Ddriver_hyperv=disabled -Ddriver_interface=disabled -Ddriver_secrets=disabled \
        -Dstorage_dir=disabled -Dstorage_disk=disabled -Dstorage_fs=disabled \
        -Dstorage_gluster=disabled -Dstorage_iscsi=disabled -Dstorage_iscsi_direct=disabled \
        -Dstorage_lvm=disabled -Dstorage_mpath=disabled -Dstorage_rbd=disabled \
        -Dstorage_scsi=disabled -Dstorage_vstorage=disabled -Dstorage_zfs=disabled \
        -Dsecdriver_apparmor=disabled -Dsecdriver_selinux=disabled \
        -Dapparmor=disabled -Dselinux=disabled -Dpolkit=disabled -Daudit=disabled \
        -Dfirewalld=disabled -Dwireshark_dissector=disabled -Dnls=disabled \
        -Dsanlock=disabled -Dlibssh=disabled -Dlibssh2=disabled -Dglusterfs=disabled \
        -Dnumactl=disabled -Dfuse=disabled -Dnetcf=disabled -Dopenwsman=disabled \
        -Dcurl=disabled -Dbash_completion=disabled -Dinit_script=none \
        >"$log" 2>&1; then
        rm -rf "$builddir"
        die "meson setup failed: $(grep -m1 'ERROR:' "$log") (full log: $log)"
    fi
fi

echo "build: building libvirt $LIBVIRT_VERSION (ninja -C $builddir)"
ninja -C "$builddir" >"$builddir/ninja.log" 2>&1 || {
    tail -n 30 "$builddir/ninja.log" >&2
    die "libvirt build failed (full log: $builddir/ninja.log)"
}
meson install -C "$builddir" --no-rebuild --quiet >"$builddir/install.log" 2>&1 ||
    die "installing into $prefix failed (full log: $builddir/install.log)"
echo "build: libvirt $LIBVIRT_VERSION built and installed into $prefix"
