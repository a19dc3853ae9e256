#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# run.sh - build the helper's libFuzzer targets and run them
#
#   FUZZ_SECONDS=N run.sh           fuzz each target for N seconds (make fuzz)
#   run.sh --check                  replay every seed corpus, then fuzz each
#                                   target for FUZZ_SECONDS (default 20): the
#                                   smoke run of the test command
#
# Targets (tests/fuzz/*.c): fuzz-input (stream decoder, pre-filter, libslirp
# input, poll and timers, with sequences of frames), fuzz-vmstate (the
# migration envelope, then libslirp's state loader), fuzz-forward (the
# control interface's forward specs), fuzz-dns6 (the rewrite of IPv6 DNS
# advertisements in frames to the guest).  Everything, libslirp 4.7.0 included,
# is built with clang-14 and ASan+UBSan: libslirp comes from Debian's source
# package (apt-get source, through the project's private apt state, see
# scripts/debian-apt.sh) so its own memory errors are caught too.
#
# Builds go to $FUZZ_BUILD (default build/fuzz next to helper/); new inputs
# that libFuzzer finds stay there (work/<target>/), the committed seeds in
# corpus/<target>/ are only read.  Any crash, sanitizer report or leak fails
# the run (exit 1) and leaves the reproducer in $FUZZ_BUILD/artifacts/.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
HELPER_SRC=$(cd "$HERE/../.." && pwd)
ROOT=$(cd "$HELPER_SRC/.." && pwd)
BUILD=${FUZZ_BUILD:-$ROOT/build/fuzz}
CHECK=0
[ "${1:-}" = "--check" ] && CHECK=1
SECONDS_PER_TARGET=${FUZZ_SECONDS:-$([ $CHECK = 1 ] && echo 20 || echo 300)}
TARGETS="fuzz-input fuzz-vmstate fuzz-forward fuzz-dns6"
CC=${FUZZ_CC:-clang-14}
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -fno-optimize-sibling-calls"

say() { echo "fuzz: $*"; }

mkdir -p "$BUILD"

# 1. libslirp 4.7.0, instrumented, static, installed into $BUILD/prefix
if [ ! -f "$BUILD/prefix/.done" ]; then
    say "building an instrumented libslirp 4.7.0 (Debian source package)"
    rm -rf "$BUILD/libslirp" "$BUILD/prefix"
    mkdir -p "$BUILD/libslirp"
    # through the project's private apt state: the host needs no deb-src
    # entries (scripts/debian-apt.sh; the helper built alone has apt-get)
    apt=()
    suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    [ -x "$ROOT/scripts/debian-apt.sh" ] && [ -n "$suite" ] && apt=("$ROOT/scripts/debian-apt.sh" "$suite")
    (cd "$BUILD/libslirp" && "${apt[@]}" apt-get source --download-only libslirp=4.7.0-1 >/dev/null 2>&1 ||
        "${apt[@]}" apt-get source --download-only libslirp >/dev/null)
    tar -C "$BUILD/libslirp" -xf "$BUILD"/libslirp/libslirp_4.7.0.orig.tar.*
    src=$(echo "$BUILD"/libslirp/libslirp-v4.7.0)
    # two known undefined behaviours of 4.7.0 stay suppressible (ubsan.supp);
    # everything else aborts
    CC=$CC CFLAGS="$SAN -fsanitize-recover=alignment,shift-base -fsanitize=fuzzer-no-link -g -O1" \
        meson setup "$BUILD/libslirp/build" "$src" --prefix="$BUILD/prefix" --libdir=lib \
        -Ddefault_library=static >/dev/null
    ninja -C "$BUILD/libslirp/build" >/dev/null
    meson install -C "$BUILD/libslirp/build" >/dev/null
    touch "$BUILD/prefix/.done"
fi

# 2. the helper and its fuzz targets against it
export PKG_CONFIG_PATH="$BUILD/prefix/lib/pkgconfig"
if [ ! -f "$BUILD/helper/build.ninja" ]; then
    say "configuring the helper with -Dfuzzing=true"
    CC=$CC meson setup "$BUILD/helper" "$HELPER_SRC" -Dfuzzing=true -Db_lundef=false \
        -Db_sanitize=address,undefined -Dc_args="-fsanitize=fuzzer-no-link -fno-sanitize-recover=undefined" \
        -Ddbus_tests=disabled >/dev/null
fi
ninja -C "$BUILD/helper" >/dev/null

# full unwinding: GLib has no frame pointers, and leak stacks must show
# the libslirp function that allocated
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:symbolize=1:fast_unwind_on_malloc=0"
# known libslirp 4.7.0 leaks and undefined behaviour: lsan.supp, ubsan.supp
export LSAN_OPTIONS="suppressions=$HERE/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$HERE/ubsan.supp"

mkdir -p "$BUILD/artifacts"
status=0
for t in $TARGETS; do
    bin="$BUILD/helper/tests/fuzz/$t"
    seeds="$HERE/corpus/${t#fuzz-}"
    work="$BUILD/work/${t#fuzz-}"
    mkdir -p "$work"
    if [ $CHECK = 1 ]; then
        say "$t: replaying $(ls "$seeds" | wc -l) seeds"
        if ! "$bin" -runs=0 -artifact_prefix="$BUILD/artifacts/$t-" "$seeds" \
            > "$BUILD/$t-replay.log" 2>&1; then
            say "$t: FAILED replaying the seeds; see $BUILD/$t-replay.log"
            tail -40 "$BUILD/$t-replay.log"
            status=1
            continue
        fi
    fi
    say "$t: fuzzing for ${SECONDS_PER_TARGET}s"
    # the guest's connections must not leave this machine: a fresh network
    # namespace with only loopback (10.0.2.2 is the host's loopback)
    if ! unshare -n sh -c 'ip link set lo up && exec "$@"' sh \
        "$bin" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$BUILD/artifacts/$t-" -print_final_stats=1 \
        "$work" "$seeds" > "$BUILD/$t.log" 2>&1; then
        say "$t: FINDING; see $BUILD/$t.log and $BUILD/artifacts/"
        grep -E "ERROR|SUMMARY|runtime error" "$BUILD/$t.log" | head -5
        status=1
        continue
    fi
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$BUILD/$t.log" | grep -o '[0-9]*$')
    say "$t: $execs runs, $((execs / SECONDS_PER_TARGET)) per second, no finding"
done
exit $status
