#!/bin/bash
# export.sh - turn the commits of a libvirt tree back into its series
#
# Usage: libvirt/export.sh [SERIES]
#
# Every commit of build/libvirt-SERIES after the "upstream" tag becomes one
# file of libvirt/SERIES/patches (git format-patch), listed in order in its
# series file.  The old patch files are replaced; the cover letter stays.
# The tree must be clean: uncommitted edits would silently be left out of
# the series.  SERIES defaults to the primary series (series.sh).

set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
# shellcheck source=series.sh
. "$here/series.sh"

die() { echo "export: $*" >&2; exit 1; }

[ $# -le 1 ] || die "usage: export.sh [SERIES]"
series_select "$top" "${1:-}" 2>/dev/null || die "$(series_select "$top" "${1:-}" 2>&1)"

[ -d "$tree/.git" ] || die "no libvirt tree at $tree; run 'make prepare' first"
git -C "$tree" rev-parse -q --verify upstream >/dev/null || die "$tree has no 'upstream' tag"
[ -z "$(git -C "$tree" status --porcelain)" ] ||
    die "$tree has uncommitted changes; commit or stash them first ($(git -C "$tree" status --porcelain | head -n1))"
git -C "$tree" rev-parse -q --verify REBASE_HEAD >/dev/null 2>&1 && die "$tree is in the middle of a rebase or am"

new=$(mktemp -d)
trap 'rm -rf "$new"' EXIT
git -C "$tree" format-patch -q --zero-commit --no-signature --no-numbered \
    --subject-prefix=PATCH -o "$new" upstream..HEAD
(cd "$new" && ls -1 -- *.patch 2>/dev/null || true) > "$new/series"

rm -f "$patches"/*.patch
cp "$new"/*.patch "$patches"/ 2>/dev/null || true
cp "$new/series" "$patches/series"

# The tree now matches the series: record it so prepare sees no unexported work.
echo "$(series_stamp "$patches") $(git -C "$tree" rev-parse HEAD)" > "$tree/.git/libvirt-slirp-series"
echo "export: $(wc -l < "$patches/series") patch(es) written to libvirt/$LIBVIRT_VERSION/patches"
