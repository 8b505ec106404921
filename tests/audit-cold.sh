#!/usr/bin/env bash
# `cairn-monitor audit` of a large log (2^24 leaves by default) from a local tlog-tiles directory
# with a cold page cache, with a warm one, and over loopback HTTP from a static server: the
# figures of issue 30 (≥ 5 M leaves/s each), interleaved with a baseline binary in the same run.
#
#   tests/audit-cold.sh NEW_BIN [BASE_BIN]
#
# NEW_BIN and BASE_BIN are `cairn-monitor` release binaries (BASE_BIN: the build before a change,
# kept aside). The log is written once by the audit bench binary (monitor/benches/audit.rs, found
# as AUDIT_BENCH, default the newest target/release/deps/audit-*), into LOG_DIR (default
# /work/alog, 2.3 GB for 2^24 leaves) with LEAVES leaves (default 16777216); its vkey is kept
# beside it. The same binary serves it over loopback (the whole log in memory, one runtime
# thread) for the HTTP rounds.
#
# Cold rounds need root: `sync; echo 3 > /proc/sys/vm/drop_caches` before each. ROUNDS (default
# 2) interleaved rounds of each binary; MODES (default "cold warm http") chooses the kinds.
# Prints one line per audit: mode, binary, seconds, M leaves/s, and the load average.
set -euo pipefail

NEW_BIN=${1:?usage: tests/audit-cold.sh NEW_BIN [BASE_BIN]}
BASE_BIN=${2:-}
LEAVES=${LEAVES:-16777216}
LOG_DIR=${LOG_DIR:-/work/alog}
ROUNDS=${ROUNDS:-2}
MODES=${MODES:-cold warm http}
TARGET=${CARGO_TARGET_DIR:-target}
AUDIT_BENCH=${AUDIT_BENCH:-$(ls -t "$TARGET"/release/deps/audit-* 2>/dev/null | grep -v '\.d$' | head -n 1)}
[ -x "$AUDIT_BENCH" ] || { echo "no audit bench binary: cargo bench -p cairn-monitor --bench audit --no-run" >&2; exit 1; }

if [ ! -f "$LOG_DIR/vkey" ]; then
    mkdir -p "$LOG_DIR"
    CAIRN_AUDIT_BENCH_LEAVES=$LEAVES CAIRN_AUDIT_BENCH_WRITE=$LOG_DIR "$AUDIT_BENCH" > "$LOG_DIR.vkey.tmp"
    sync
    mv "$LOG_DIR.vkey.tmp" "$LOG_DIR/vkey"
fi
VKEY=$(cat "$LOG_DIR/vkey")
WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# One audit into a fresh state directory: prints its line.
audit_once() {
    local mode=$1 name=$2 bin=$3 url=$4
    local state="$WORK/state-$name-$mode"
    rm -rf "$state"
    if [ "$mode" = cold ]; then
        sync
        echo 3 > /proc/sys/vm/drop_caches
    fi
    local started ended
    started=$(date +%s.%N)
    "$bin" audit --log "$url" --log-key "$VKEY" --state "$state" > "$WORK/out" 2> "$WORK/err" \
        || { echo "audit failed ($name, $mode):" >&2; cat "$WORK/out" "$WORK/err" >&2; exit 1; }
    ended=$(date +%s.%N)
    awk -v mode="$mode" -v name="$name" -v s="$started" -v e="$ended" -v n="$LEAVES" \
        -v load="$(cut -d' ' -f1-3 /proc/loadavg)" \
        'BEGIN { t = e - s; printf "%-5s %-4s %7.3f s %6.2f M leaves/s  load %s\n", mode, name, t, n / t / 1e6, load }'
    rm -rf "$state"
}

for mode in $MODES; do
    url="file://$LOG_DIR"
    if [ "$mode" = http ]; then
        # The static server: the bench binary serving the directory from memory until its stdin
        # closes (a fifo held open by this script).
        mkfifo "$WORK/server-in"
        CAIRN_AUDIT_BENCH_SERVE=$LOG_DIR "$AUDIT_BENCH" < "$WORK/server-in" > "$WORK/server-url" &
        SERVER_PID=$!
        exec 7> "$WORK/server-in"
        for _ in $(seq 600); do [ -s "$WORK/server-url" ] && break; sleep 0.5; done
        url=$(head -n 1 "$WORK/server-url")
        [ -n "$url" ] || { echo "the static server did not start" >&2; exit 1; }
    fi
    for round in $(seq "$ROUNDS"); do
        [ -n "$BASE_BIN" ] && audit_once "$mode" base "$BASE_BIN" "$url"
        audit_once "$mode" new "$NEW_BIN" "$url"
    done
    if [ "$mode" = http ]; then
        exec 7>&-
        wait "$SERVER_PID" || true
        SERVER_PID=
    fi
done
