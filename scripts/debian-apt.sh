#!/bin/bash
# debian-apt.sh - apt on the Debian archive this machine's apt sources name,
# for another suite, without touching the host's apt
#
# Usage: scripts/debian-apt.sh entries
#        scripts/debian-apt.sh SUITE COMMAND [ARG...]
#
# "entries" prints "URI SIGNED-BY" (SIGNED-BY is "-" when the entry names no
# keyring) for every deb entry of the machine's own release: the suite is
# its codename from /etc/os-release, so -security, -updates and third-party
# repositories with suites of their own are left out.  Both formats are
# read: deb822 files (*.sources) and one-line files (sources.list, *.list).
#
# The second form runs COMMAND (apt-get, apt-cache or apt-helper) with a
# private apt state in build/apt-SUITE: a deb and a deb-src entry for SUITE
# on the archive of the first entry, its own lists and cache, refreshed when
# older than a day.  The host's sources, lists and cache are never written,
# so a Debian 12 host can read Debian 13's indexes and fetch its sources.
# libvirt/fetch.sh, the fuzz targets' libslirp and scripts/check-trixie.sh
# reach the archive this way, and no mirror's host name is ever written
# into this repository.

set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)

die() { echo "debian-apt: $*" >&2; exit 1; }

# entries - the machine's own deb entries, "URI SIGNED-BY" a line
entries() {
    local codename f
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    [ -n "$codename" ] || return 0
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -e "$f" ] || continue
        awk -v want="$codename" '
            function flush() {
                if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " want " "))
                    for (i = 1; i <= n; i++) print uris[i], (key == "" ? "-" : key)
                types = suites = key = ""; n = 0
            }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            tolower($1) == "types:" { $1 = ""; types = substr($0, 2) }
            tolower($1) == "uris:" { for (i = 2; i <= NF; i++) uris[++n] = $i }
            tolower($1) == "suites:" { $1 = ""; suites = substr($0, 2) }
            tolower($1) == "signed-by:" { key = $2 }
            END { flush() }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -e "$f" ] || continue
        sed -n -e 's/#.*//' \
            -e "s/^deb[[:space:]]\+\(\[\([^]]*\)\][[:space:]]\+\)\?\([^[:space:]]\+\)[[:space:]]\+$codename[[:space:]].*/\3 \2/p" "$f" |
            while read -r uri opts; do
                key=$(printf '%s\n' "$opts" | tr ' ' '\n' | sed -n 's/^signed-by=//p')
                echo "$uri ${key:--}"
            done
    done
}

[ $# -ge 1 ] || die "usage: debian-apt.sh entries | debian-apt.sh SUITE COMMAND [ARG...]"
if [ "$1" = entries ]; then
    entries
    exit 0
fi
[ $# -ge 2 ] || die "usage: debian-apt.sh SUITE COMMAND [ARG...]"
suite=$1
shift

read -r uri key < <(entries) || true
[ -n "${uri:-}" ] || die "no deb entry for this machine's Debian release in /etc/apt/sources*: cannot reach $suite"
opts=""
[ "$key" = "-" ] || opts="[signed-by=$key] "
state=$top/build/apt-$suite
mkdir -p "$state/lists/partial" "$state/cache/archives/partial"
printf 'deb %s%s %s main\ndeb-src %s%s %s main\n' "$opts" "$uri" "$suite" "$opts" "$uri" "$suite" \
    > "$state/sources.list.new"
private=(-o "Dir::Etc::SourceList=$state/sources.list" -o Dir::Etc::SourceParts=/dev/null
         -o "Dir::State::Lists=$state/lists" -o "Dir::State::status=$state/status"
         -o "Dir::Cache=$state/cache" -o APT::Sandbox::User=root -q)
touch "$state/status"
if ! cmp -s "$state/sources.list.new" "$state/sources.list" ||
    [ -z "$(find "$state/lists" -maxdepth 1 -name '*Sources*' -mtime -1 2>/dev/null)" ]; then
    mv "$state/sources.list.new" "$state/sources.list"
    log=$(mktemp)
    apt-get "${private[@]}" update >"$log" 2>&1 || {
        msg=$(grep -m1 -E '^(E|W|Err):' "$log" || tail -n1 "$log")
        rm -f "$log"
        die "apt-get update of $suite failed: $msg"
    }
    rm -f "$log"
fi
rm -f "$state/sources.list.new"
cmd=$1
shift
exec "$cmd" "${private[@]}" "$@"
