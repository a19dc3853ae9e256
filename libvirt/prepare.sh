#!/bin/bash
# prepare.sh - unpack a pinned libvirt into a git tree and apply its series
#
# Usage: libvirt/prepare.sh [--force] [SERIES]
#
# SERIES is a directory of libvirt/ (default: the primary series, see
# series.sh).  The tree is build/libvirt-SERIES (ignored by git).  Its first
# commit, tagged "upstream", is the pristine tarball; every patch listed in
# libvirt/SERIES/patches/series is then applied on top with "git am".  Running it
# again is a no-op while the series is unchanged.  When the series changed
# (a pull, an export) the tree is reset to "upstream" and the series applied
# again, unless it holds work that was never exported: then it stops and
# says so (--force discards that work).

set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
# shellcheck source=series.sh
. "$here/series.sh"

die() { echo "prepare: $*" >&2; exit 1; }

force=no
version=
for arg; do
    case "$arg" in
        --force) force=yes ;;
        -*) die "unknown argument '$arg' (usage: prepare.sh [--force] [SERIES])" ;;
        *) [ -z "$version" ] || die "more than one series given (usage: prepare.sh [--force] [SERIES])"
           version=$arg ;;
    esac
done
series_select "$top" "$version" 2>/dev/null || die "$(series_select "$top" "$version" 2>&1)"
series=$patches/series

command -v git >/dev/null || die "git is not installed"
[ -f "$series" ] || die "missing $series"

stamp=$(series_stamp "$patches")
stampfile=$tree/.git/libvirt-slirp-series

if [ -d "$tree/.git" ] && [ -f "$stampfile" ]; then
    read -r old_stamp old_head < "$stampfile"
    head=$(git -C "$tree" rev-parse HEAD)
    dirty=$(git -C "$tree" status --porcelain)
    if [ "$old_stamp" = "$stamp" ] && [ "$old_head" = "$head" ] && [ -z "$dirty" ]; then
        echo "prepare: $tree is up to date with the series"
        exit 0
    fi
    if [ "$force" = no ] && { [ "$old_head" != "$head" ] || [ -n "$dirty" ]; }; then
        die "$tree has commits or edits that are not exported; run 'make export SERIES=$LIBVIRT_VERSION' first, or 'libvirt/prepare.sh --force $LIBVIRT_VERSION' to discard them"
    fi
    echo "prepare: the series changed; re-applying it on the pristine tree"
    git -C "$tree" am --abort >/dev/null 2>&1 || true
    git -C "$tree" reset -q --hard upstream
    git -C "$tree" clean -q -fdx -e src/keycodemapdb -e subprojects/keycodemapdb -e subprojects/slirp-helper
else
    "$here/fetch.sh" "$downloads" "$LIBVIRT_VERSION"
    echo "prepare: unpacking $LIBVIRT_TARBALL into $tree"
    rm -rf "$tree" "$tree.tmp"
    mkdir -p "$tree.tmp"
    tar -C "$tree.tmp" --strip-components=1 -xf "$downloads/$LIBVIRT_TARBALL"
    git -C "$tree.tmp" init -q -b master
    # Upstream carries keycodemapdb as a git submodule (src/keycodemapdb in
    # 9.0.0, subprojects/keycodemapdb since 9.x), so its files are never in
    # upstream's own file list; keep it that way or syntax-check would judge
    # a foreign code base.
    printf '/src/keycodemapdb/\n/subprojects/keycodemapdb/\n' >> "$tree.tmp/.git/info/exclude"
    # The bundled helper is a meson subproject whose sources are this
    # repository's helper/, linked in rather than copied.
    echo "/subprojects/slirp-helper" >> "$tree.tmp/.git/info/exclude"
    mkdir -p "$tree.tmp/subprojects"
    ln -s ../../../helper "$tree.tmp/subprojects/slirp-helper"
    # The series' author identity, so that a patch written in the tree
    # (make export) carries the same From: as the others.
    git -C "$tree.tmp" config user.name "libvirt-slirp"
    git -C "$tree.tmp" config user.email "dev@libvirt-slirp.invalid"
    # The pristine import leaves thousands of loose objects, so "git commit"
    # and "git am" would start "git gc --auto" in the background; its reflog
    # expiry holds HEAD.lock and makes the next "git am" fail at random.
    git -C "$tree.tmp" config gc.auto 0
    git -C "$tree.tmp" add -A
    # A fixed date makes the pristine commit, and so every patch commit
    # applied on it, the same on every machine.
    GIT_AUTHOR_DATE="$LIBVIRT_PRISTINE_DATE" GIT_COMMITTER_DATE="$LIBVIRT_PRISTINE_DATE" \
        git -C "$tree.tmp" commit -q -m "libvirt $LIBVIRT_VERSION (pristine $LIBVIRT_TARBALL)"
    git -C "$tree.tmp" tag upstream
    mv "$tree.tmp" "$tree"
fi

# Without a stamp the tree counts as unprepared: a run that stops on a bad
# patch is started from scratch next time.
rm -f "$stampfile"
n=0
while read -r patch; do
    case "$patch" in ""|\#*) continue ;; esac
    [ -f "$patches/$patch" ] || die "series lists $patch but libvirt/$LIBVIRT_VERSION/patches/$patch does not exist"
    if ! out=$(git -C "$tree" am -q --committer-date-is-author-date "$patches/$patch" 2>&1); then
        git -C "$tree" am --abort >/dev/null 2>&1 || true
        reason=$(printf '%s\n' "$out" | grep -E '^(error|fatal|Patch failed)' | head -n1)
        die "patch $patch does not apply: ${reason:-$out}"
    fi
    n=$((n + 1))
done < "$series"

echo "$stamp $(git -C "$tree" rev-parse HEAD)" > "$stampfile"
echo "prepare: $tree ready, $n patch(es) applied on libvirt $LIBVIRT_VERSION"
