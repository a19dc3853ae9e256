#!/bin/bash
# check-trixie.sh - the lifecycle scenarios under Debian 13's own QEMU and libslirp
#
# Usage: scripts/check-trixie.sh        (make check-trixie; root)
#
# The system tests on the host run Debian 12's QEMU 7.2 and libslirp 4.7.
# This runs the libvirt lifecycle scenarios once more where Debian 13 users
# are: QEMU 10.0 and libslirp 4.8, with the 11.3.0 fork and the helper built
# inside a Debian 13 chroot.
#
#   1. The chroot, build/chroot-trixie, is made once with mmdebstrap from
#      the Debian archive the machine's own apt sources name (the same
#      derivation scripts/debian-apt.sh makes for libvirt/fetch.sh; no host name is written here), with
#      the packages trixie-packages.txt lists.  A finished chroot is reused.
#   2. A fresh clone of this checkout's HEAD goes to /src in the chroot,
#      with the verified libvirt tarball and the test guest (kernel and
#      initramfs are independent of the distribution) copied in, so nothing
#      is downloaded twice and the host checkout is never written to.
#   3. In a private mount namespace (every mount disappears with it): the
#      chroot is bound onto itself (its "/" must be a mount point for the
#      harness's daemons and the helper's sandbox), /proc, /sys, /dev and a
#      tmpfs /run are mounted in it; there
#      the fork and the helper are built and
#      tests/libvirt/test_libvirt_lifecycle.py runs with our helper, and
#      tests/libvirt/test_libvirt_recovery.py (a dead helper replaced, on
#      QEMU 10.0).
#
# The last line is "N passed, N failed", as for make check.

set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
root=$top/build/chroot-trixie
# shellcheck source=../libvirt/series.sh
. "$top/libvirt/series.sh"

die() { echo "check-trixie: $*" >&2; echo "0 passed, 1 failed"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (it builds a chroot and starts privileged daemons)"
command -v mmdebstrap >/dev/null || die "mmdebstrap is missing; run 'make deps'"
series_select "$top" "$LIBVIRT_PRIMARY" || die "no primary series"
[ -f "$downloads/$LIBVIRT_TARBALL" ] || die "no $LIBVIRT_TARBALL in build/downloads; run 'make prepare' first"
[ -d "$top/build/guest" ] || die "no test guest in build/guest; run 'make guest' first"

if [ ! -f "$root/.complete" ]; then
    mapfile -t sources < <("$here/debian-apt.sh" sources trixie)
    [ ${#sources[@]} -gt 0 ] || die "no deb entry for this machine's Debian release in its apt sources"
    mapfile -t pkgs < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$here/trixie-packages.txt")
    echo "check-trixie: building a Debian 13 chroot in $root (${#pkgs[@]} packages)"
    rm -rf "$root"
    start=$(date +%s)
    log=$top/build/chroot-trixie.log
    mmdebstrap --variant=apt --include="$(IFS=,; echo "${pkgs[*]}")" \
        trixie "$root" "${sources[@]}" >"$log" 2>&1 ||
        die "mmdebstrap failed: $(grep -m1 -E '^(E:|W: .*fail)' "$log" || tail -n1 "$log") (log: $log)"
    touch "$root/.complete"
    echo "check-trixie: chroot ready in $(( $(date +%s) - start )) s, $(du -sm "$root" | cut -f1) MiB"
fi

rm -rf "$root/src"
git clone -q "$top" "$root/src"
mkdir -p "$root/src/build/downloads"
cp "$downloads/$LIBVIRT_TARBALL" "$root/src/build/downloads/"
cp -a "$top/build/guest" "$root/src/build/guest"

inner='set -e
cd /src
echo "check-trixie: inside: $(qemu-system-x86_64 --version | head -n1), libslirp $(pkg-config --modversion slirp)"
libvirt/prepare.sh
libvirt/build.sh
meson setup build/helper helper >/dev/null
echo "helper: building slirp-helper (ninja -C build/helper)"
ninja -C build/helper >/dev/null
GUEST_PREBUILT=1 python3 -m pytest -p no:cacheprovider -rfEsxX --junitxml=build/trixie-report.xml \
    tests/libvirt/test_libvirt_lifecycle.py tests/libvirt/test_libvirt_recovery.py \
    -k "ours or replaced or given_up"
'

start=$(date +%s)
rc=0
unshare --mount --propagation private /bin/bash -c '
    set -e
    root=$1
    # "/" of the chroot must be a mount point: the harness gives each
    # daemon a private mount namespace, and the helper pivots its root.
    mount --bind "$root" "$root"
    mount -t proc proc "$root/proc"
    mount --rbind /sys "$root/sys"
    mount --rbind /dev "$root/dev"
    mount -t tmpfs -o mode=755 tmpfs "$root/run"
    mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
    exec chroot "$root" /bin/bash -c "$2"' check-trixie "$root" "$inner" || rc=$?
echo "check-trixie: build and scenarios took $(( $(date +%s) - start )) s, exit status $rc"
# The summary, from pytest's report: a skip is not a pass, a missing report
# (the build failed) is one failure.
/usr/bin/python3 - "$root/src/build/trixie-report.xml" <<'EOF'
import sys
import xml.etree.ElementTree as ET
try:
    suites = list(ET.parse(sys.argv[1]).getroot().iter("testsuite"))
except (OSError, ET.ParseError):
    print("0 passed, 1 failed")
    sys.exit(0)
passed = failed = 0
for s in suites:
    n, bad = int(s.get("tests", 0)), sum(int(s.get(k, 0)) for k in ("failures", "errors", "skipped"))
    passed += n - bad
    failed += bad
print(f"{passed} passed, {failed if passed + failed else 1} failed")
EOF
exit $rc
