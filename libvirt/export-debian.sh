#!/bin/bash
# export-debian.sh - the series as Debian patches: DEP-3 headers, a quilt series
#
# Usage: libvirt/export-debian.sh [SERIES [OUTPUT]]
#
# Every patch listed in libvirt/SERIES/patches/series (git format-patch
# output) becomes OUTPUT/slirp-helper/NNNN-*.patch, a subdirectory of
# debian/patches as Debian groups related patches, and OUTPUT/series lists
# them in order ("slirp-helper/NNNN-*.patch"), a fragment to append to
# debian/patches/series.  The mail headers and commit message make way for
# DEP-3 fields:
#
#   Description: the subject line (without "[PATCH]"), then the commit
#                message as the long description (each line indented by
#                one space, empty lines as " ."; the Signed-off-by trailer
#                is left out: Author names the same person)
#   Author:      the From: header
#   Forwarded:   no
#   Last-Update: the day of the Date: header (YYYY-MM-DD)
#
# then the "---" line, and everything after git's "---" separator (the
# diffstat and the diff) byte for byte, so the patches apply with patch -p1
# and quilt exactly as the git patches do.  The libvirt tree is not needed.
# A patch that Debian's own packaging already carries (its backport of the
# same upstream fix) is left out: libvirt/SERIES/debian-has lists such
# patches, one "PATCH DEBIAN-PATCH" line each.
# SERIES defaults to the primary series (series.sh), OUTPUT to
# build/debian-patches-SERIES; OUTPUT/slirp-helper and OUTPUT/series are
# replaced, nothing else in OUTPUT is touched.

set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
# shellcheck source=series.sh
. "$here/series.sh"

die() { echo "export-debian: $*" >&2; exit 1; }

[ $# -le 2 ] || die "usage: export-debian.sh [SERIES [OUTPUT]]"
series_select "$top" "${1:-}" 2>/dev/null || die "$(series_select "$top" "${1:-}" 2>&1)"
out=${2:-$top/build/debian-patches-$LIBVIRT_VERSION}
[ -f "$patches/series" ] || die "missing $patches/series"

# dep3 PATCH - print PATCH with DEP-3 headers in place of its mail headers
# and commit message; one line on stderr and status 1 if it is not what git
# format-patch writes
dep3() {
    awk -v name="$(basename "$1")" '
        function fail(msg) { print "export-debian: " name ": " msg > "/dev/stderr"; failed = 1; exit 1 }
        BEGIN {
            split("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec", m, " ")
            for (i = 1; i <= 12; i++) month[m[i]] = i
            part = "mail"
        }
        part == "mail" && /^[ \t]/ {                  # a folded header line
            if (field != "") value[field] = value[field] $0
            next
        }
        part == "mail" && /^$/ { part = "message"; next }
        part == "mail" {
            field = ""
            if (NR == 1 && /^From [0-9a-f]+ /) next   # the mbox separator
            if (match($0, /^(From|Date|Subject):/)) {
                field = substr($0, 1, RLENGTH - 1)
                value[field] = substr($0, RLENGTH + 1)
            }
            next
        }
        part == "message" && $0 == "---" { part = "diff"; print_headers(); print; next }
        part == "message" { body[++nbody] = $0; next }
        part == "diff" { print; seen_diff = seen_diff || /^diff --git /; next }

        function trim(s) { gsub(/^[ \t]+|[ \t]+$/, "", s); return s }
        function print_headers(    subject, author, d, first, last, i, line) {
            for (f in value) if (value[f] ~ /=\?/) fail("the " f ": header is MIME-encoded, which is not supported")
            subject = trim(value["Subject"]); author = trim(value["From"])
            sub(/^\[PATCH[^]]*\][ \t]*/, "", subject)
            if (subject == "") fail("no Subject: header")
            if (author == "") fail("no From: header")
            # "Fri, 27 Nov 2026 10:25:13 +0000", as git writes it
            split(trim(value["Date"]), d, /[ \t]+/)
            if (!(d[3] in month) || d[2] !~ /^[0-9]+$/ || d[4] !~ /^[0-9][0-9][0-9][0-9]$/)
                fail("cannot read the Date: header \"" trim(value["Date"]) "\"")
            # the commit message, without the trailer and the blank lines around it
            last = nbody
            while (last > 0 && (body[last] ~ /^[ \t]*$/ || body[last] ~ /^Signed-off-by: /)) last--
            for (first = 1; first <= last && body[first] ~ /^[ \t]*$/; first++) ;
            print "Description: " subject
            for (i = first; i <= last; i++) {
                line = body[i]
                print (line ~ /^[ \t]*$/) ? " ." : " " line
            }
            print "Author: " author
            print "Forwarded: no"
            printf "Last-Update: %s-%02d-%02d\n", d[4], month[d[3]], d[2]
        }
        END {
            if (failed) exit 1
            if (part != "diff") fail("no \"---\" line after the commit message: not a git format-patch patch")
            if (!seen_diff) fail("no \"diff --git\" line: the patch changes nothing")
        }' "$1"
}

declare -A debian_has=()
if [ -f "$(dirname "$patches")/debian-has" ]; then
    while read -r name debian_patch; do
        case "$name" in ''|'#'*) continue ;; esac
        grep -qxF "$name" "$patches/series" ||
            die "libvirt/$LIBVIRT_VERSION/debian-has names $name, which the series does not list"
        debian_has[$name]=$debian_patch
    done < "$(dirname "$patches")/debian-has"
fi

new=$(mktemp -d)
trap 'rm -rf "$new"' EXIT
mkdir "$new/slirp-helper"
: > "$new/series"
count=0
while read -r name _; do
    case "$name" in ''|'#'*) continue ;; esac
    [ -f "$patches/$name" ] || die "$name is listed in libvirt/$LIBVIRT_VERSION/patches/series but missing"
    if [ -n "${debian_has[$name]:-}" ]; then
        echo "export-debian: $name left out: Debian carries it as ${debian_has[$name]}"
        continue
    fi
    dep3 "$patches/$name" > "$new/slirp-helper/$name" || exit 1
    echo "slirp-helper/$name" >> "$new/series"
    count=$((count + 1))
done < "$patches/series"
[ "$count" -gt 0 ] || die "libvirt/$LIBVIRT_VERSION/patches/series lists no patch"

mkdir -p "$out"
rm -rf "$out/slirp-helper" "$out/series"
cp -r "$new/slirp-helper" "$new/series" "$out"/
echo "export-debian: $count patch(es) of libvirt/$LIBVIRT_VERSION written to $out/slirp-helper, listed in $out/series"
