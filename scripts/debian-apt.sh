#!/bin/bash
# debian-apt.sh - apt on the Debian archive this machine's apt sources name,
# for another suite, without touching the host's apt
#
# Usage: scripts/debian-apt.sh entries
#        scripts/debian-apt.sh sources CODENAME
#        scripts/debian-apt.sh SUITE COMMAND [ARG...]
#
# Both formats of the machine's apt sources are read: deb822 files
# (*.sources) and one-line files (sources.list, *.list).  "entries" prints
# "URI SIGNED-BY" (SIGNED-BY is "-" when the entry names no keyring) for
# every deb entry of the machine's own release: the suite is its codename
# from /etc/os-release, so -security, -updates and third-party repositories
# with suites of their own are left out.  "sources CODENAME" prints the
# machine's entries for its release (base suite, -updates, -security) as
# one-line deb entries for CODENAME: the same mirrors, components and
# keyring, for a chroot of another release.
#
# The second form runs COMMAND (apt-get, apt-cache or apt-helper) with a
# private apt state in build/apt-SUITE: a deb and a deb-src entry for SUITE
# on the archive of the first entry, its own lists and cache, refreshed when
# older than a day.  The host's sources, lists and cache are never written,
# so a Debian 12 host can read Debian 13's indexes and fetch its sources.
# libvirt/fetch.sh, the fuzz targets' libslirp, scripts/check-trixie.sh and
# the packaging chroots reach the archive this way, and no mirror's host name is ever written
# into this repository.

set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)

die() { echo "debian-apt: $*" >&2; exit 1; }

host=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")

# records - "URI|SUITE|COMPONENTS|SIGNED-BY" for every enabled deb entry of
# the machine's apt sources, one line per URI and suite
records() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -e "$f" ] || continue
        awk -v RS= '
            {
                types = uris = suites = comps = signed = ""; enabled = "yes"
                n = split($0, lines, "\n")
                for (i = 1; i <= n; i++) {
                    line = lines[i]
                    if (line ~ /^[ \t]*#/) continue
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
                nu = split(uris, u, " "); ns = split(suites, s, " ")
                for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++)
                    print u[i] "|" s[j] "|" comps "|" signed
            }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -e "$f" ] || continue
        sed -n -e 's/#.*//' \
            -e 's/^deb[[:space:]]\+\(\[\([^]]*\)\][[:space:]]\+\)\?\([^[:space:]]\+\)[[:space:]]\+\([^[:space:]]\+\)[[:space:]]\+\(.*[^[:space:]]\)[[:space:]]*$/\3|\4|\5|\2/p' "$f" |
            while IFS='|' read -r uri suite comps opts; do
                echo "$uri|$suite|$comps|$(printf '%s\n' "$opts" | tr ' ' '\n' | sed -n 's/^signed-by=//p')"
            done
    done
}

# entries - "URI SIGNED-BY" of each entry for the machine's own release
entries() {
    [ -n "$host" ] || return 0
    records | while IFS='|' read -r uri suite _ signed; do
        if [ "$suite" = "$host" ]; then
            echo "$uri ${signed:--}"
        fi
    done
}

# sources CODENAME - the entries of the machine's release (its base suite,
# -updates, -security...) as one-line deb entries for CODENAME
sources() {
    local want=$1 printed=0 uri suite comps signed
    while IFS='|' read -r uri suite comps signed; do
        case "$suite" in
            "$host") suite=$want ;;
            "$host"-*) suite=$want-${suite#"$host"-} ;;
            *) continue ;;
        esac
        echo "deb${signed:+ [signed-by=$signed]} $uri $suite $comps"
        printed=1
    done < <(records)
    [ "$printed" = 1 ] || die "no deb entry for ${host:-this release} in this machine's apt sources"
}

[ $# -ge 1 ] || die "usage: debian-apt.sh entries | sources CODENAME | SUITE COMMAND [ARG...]"
case "$1" in
    entries) entries; exit 0 ;;
    sources) [ $# -eq 2 ] || die "usage: debian-apt.sh sources CODENAME"
             sources "$2"; exit 0 ;;
esac
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
