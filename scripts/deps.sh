#!/bin/bash
# deps.sh - install the Debian 12 packages the build, the tests and the demo need
#
# Usage: scripts/deps.sh
#
# Idempotent: packages already installed are left alone and apt is not
# touched at all when nothing is missing.  Needs root for a real install.

set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)

die() { echo "deps: $*" >&2; exit 1; }

mapfile -t wanted < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$here/packages.txt")
missing=()
for pkg in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

[ "$(id -u)" = 0 ] || die "missing packages (${missing[*]}) and not root to install them"
echo "deps: installing ${#missing[@]} package(s): ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
    apt-get update -q >"$log" 2>&1 || die "apt-get update failed: $(grep -m1 -E '^(E|W|Err):' "$log")"
    apt-get install -y -q --no-install-recommends "${missing[@]}" >"$log" 2>&1 ||
        die "apt-get install failed: $(grep -m1 -E '^E:' "$log")"
fi
