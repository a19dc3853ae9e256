#!/bin/bash
# debian-archive.sh - the Debian archive this machine's apt sources name
#
# Usage: libvirt/debian-archive.sh
#
# Prints "URI SIGNED-BY" (SIGNED-BY is "-" when the entry names no keyring)
# for every deb entry of the machine's own release: the suite is its
# codename from /etc/os-release, so -security, -updates and third-party
# repositories with suites of their own are left out.  Both formats are
# read: deb822 files (*.sources) and one-line files (sources.list, *.list).
# fetch.sh derives deb-src entries for other suites from these, and
# scripts/check-trixie.sh its Debian 13 chroot, so no mirror's host name is
# ever written into this repository.  Prints nothing when there is none.

set -euo pipefail

codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
[ -n "$codename" ] || exit 0

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
