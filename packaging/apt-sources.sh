#!/bin/bash
# apt-sources.sh - one-line apt sources for a Debian release, derived from
# this machine's own apt sources (no mirror host is written in the repository)
#
# Usage: packaging/apt-sources.sh CODENAME
#
# Every "deb" entry of /etc/apt/sources.list.d/*.sources and of the one-line
# lists whose suite belongs to the machine's release (bookworm,
# bookworm-updates, bookworm-security, ...) is printed with that release's
# name replaced by CODENAME: the same mirrors, the same components, the same
# keyring.  Prints nothing and fails if the machine has no such entry.

set -euo pipefail

[ $# -eq 1 ] || { echo "usage: apt-sources.sh CODENAME" >&2; exit 2; }
want=$1
# shellcheck disable=SC1091
host=$(. /etc/os-release && echo "${VERSION_CODENAME:?}")

out=$(
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -e "$f" ] || continue
        case "$f" in *libvirt-slirp-src.sources) continue ;; esac
        # deb822: print "URI|SUITE|COMPONENTS|SIGNED-BY" per suite of each deb stanza
        awk -v RS= '
            {
                types = uris = suites = comps = signed = ""; enabled = "yes"
                n = split($0, lines, "\n")
                for (i = 1; i <= n; i++) {
                    line = lines[i]
                    if (line ~ /^#/) continue
                    key = line; sub(/:.*/, "", key)
                    val = line; sub(/^[^:]*:[ \t]*/, "", val)
                    if (key == "Types") types = val
                    else if (key == "URIs") uris = val
                    else if (key == "Suites") suites = val
                    else if (key == "Components") comps = val
                    else if (key == "Signed-By") signed = val
                    else if (key == "Enabled") enabled = val
                }
                if (enabled == "no" || (" " types " ") !~ / deb /) next
                split(uris, u, " "); split(suites, s, " ")
                for (i in u) for (j in s) print u[i] "|" s[j] "|" comps "|" signed
            }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -e "$f" ] || continue
        case "$f" in *libvirt-slirp-src.list) continue ;; esac
        sed -n 's/^deb \(\[[^]]*\] \)\?\([^ ]*\) \([^ ]*\) \(.*\)$/\2|\3|\4|/p' "$f"
    done
)

printed=0
while IFS='|' read -r uri suite comps signed; do
    case "$suite" in
        "$host") suite=$want ;;
        "$host"-*) suite=$want-${suite#"$host"-} ;;
        *) continue ;;
    esac
    opt=${signed:+ [signed-by=$signed]}
    echo "deb$opt $uri $suite $comps"
    printed=1
done <<<"$out"
[ "$printed" = 1 ] || { echo "apt-sources: no deb entry for $host in this machine's apt sources" >&2; exit 1; }
