#!/usr/bin/env bash
# What one request costs the server: CPU time and context switches a request, read from /proc
# before and after a cairn-load run, with the server on one core and the load on the other.
# Throughput on a shared machine swings with its neighbours; the work a request takes swings
# much less, so this is the figure to compare two builds or settings by (run them interleaved).
#
#   tests/request-cost.sh                        # cairn-log, POST /add, 6 s
#   tests/request-cost.sh events                 # one event per POST /v1/events
#   SERVER=noop tests/request-cost.sh            # the no-op baseline
#   CAIRN_LOG=/tmp/other/cairn-log RUNS=3 tests/request-cost.sh
#   CONFIG_LINE="completeness_index = false" tests/request-cost.sh events-batch
#
# Settings (environment):
#   SERVER                  log (default) or noop
#   CAIRN_LOG, CAIRN_NOOP   the binaries (default: target/release/…; build them first with
#                           `cargo build --release --locked -p cairn-log -p cairn-tests --bins`)
#   CAIRN_LOAD              the load generator (target/release/cairn-load)
#   DURATION, WARMUP        measured period and the unmeasured run before it (6s, 2s)
#   CONNECTIONS, RUNS       keep-alive connections (64); runs, each against a fresh server (1)
#   RATE                    requests/s of an open loop at that fixed rate (unset: closed loop)
#   SERVER_CORE, LOAD_CORE  the cores (0, 1)
#   ADDR                    where the server listens (127.0.0.1:18090)
#   CONFIG_LINE             one more line for cairn-log's configuration file (a setting to
#                           compare with and without, such as `completeness_index = false`)
#   RESET_THREADS           thread names (as in /proc/<pid>/task/*/comm) put back into
#                           SCHED_OTHER after start, to measure without SCHED_BATCH
#
# Prints one line a run: requests/s, server CPU µs a request, context switches a request,
# resident memory at the end, and for cairn-log its durable writes (count, mean entries, mean
# seconds). Nothing is sent anywhere but the loopback address.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

MODE=${1:-add}
SERVER=${SERVER:-log}
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
CAIRN_LOG=${CAIRN_LOG:-$BIN/cairn-log}
CAIRN_NOOP=${CAIRN_NOOP:-$BIN/cairn-noop}
CAIRN_LOAD=${CAIRN_LOAD:-$BIN/cairn-load}
DURATION=${DURATION:-6s}
WARMUP=${WARMUP:-2s}
CONNECTIONS=${CONNECTIONS:-64}
RUNS=${RUNS:-1}
SERVER_CORE=${SERVER_CORE:-0}
LOAD_CORE=${LOAD_CORE:-1}
ADDR=${ADDR:-127.0.0.1:18090}
RESET_THREADS=${RESET_THREADS:-}
RATE=${RATE:-}
CONFIG_LINE=${CONFIG_LINE:-}

for tool in jq taskset getconf awk curl; do
    command -v "$tool" >/dev/null || { echo "request-cost.sh: $tool is needed" >&2; exit 2; }
done
for binary in "$CAIRN_LOAD" "$([ "$SERVER" = noop ] && echo "$CAIRN_NOOP" || echo "$CAIRN_LOG")"; do
    [ -x "$binary" ] || { echo "request-cost.sh: $binary is not built" >&2; exit 2; }
done

WORK=$(mktemp -d -t cairn-cost.XXXXXX)
PID=
cleanup() {
    if [ -n "$PID" ]; then
        kill "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

TOKEN=
if [ "$SERVER" = log ]; then
    origin=cost.cairn.example/log
    "$CAIRN_LOG" keygen --origin "$origin" --out "$WORK/log.key" >/dev/null
    "$CAIRN_LOG" token --name cost >"$WORK/token.txt"
    TOKEN=$(sed -n 's/^token: //p' "$WORK/token.txt")
    {
        echo "listen = \"$ADDR\""
        echo "data_dir = \"$WORK/log\""
        echo "origin = \"$origin\""
        echo "key_file = \"$WORK/log.key\""
        echo "witness_quorum = 0"
        if [ -n "$CONFIG_LINE" ]; then echo "$CONFIG_LINE"; fi
        sed -n '/^\[\[producers\]\]/,$p' "$WORK/token.txt"
    } >"$WORK/log.toml"
elif [ "$SERVER" != noop ]; then
    echo "request-cost.sh: SERVER is log or noop, not $SERVER" >&2
    exit 2
fi

CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() { local stat; stat=$(cat "/proc/$1/stat"); echo "${stat##*) }" | awk '{ print $12 + $13 }'; }
switches() { cat /proc/"$1"/task/*/status | awk '/ctxt_switches/ { s += $2 } END { print s }'; }
load() {
    local token=() rate=()
    if [ -n "$TOKEN" ]; then token=(env "CAIRN_LOAD_TOKEN=$TOKEN"); fi
    if [ -n "$RATE" ]; then rate=(--rate "$RATE"); fi
    "${token[@]}" taskset -c "$LOAD_CORE" "$CAIRN_LOAD" "$MODE" --target "http://$ADDR" \
        -c "$CONNECTIONS" --warmup 0s "${rate[@]}" "$@"
}

for run in $(seq "$RUNS"); do
    rm -rf "$WORK/log"
    if [ "$SERVER" = noop ]; then
        taskset -c "$SERVER_CORE" "$CAIRN_NOOP" --listen "$ADDR" >"$WORK/server.log" 2>&1 &
    else
        taskset -c "$SERVER_CORE" "$CAIRN_LOG" serve --config "$WORK/log.toml" >"$WORK/server.log" 2>&1 &
    fi
    PID=$!
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/${ADDR%:*}/${ADDR##*:}") 2>/dev/null; then break; fi
        sleep 0.1
    done
    for task in /proc/"$PID"/task/*; do
        for name in $RESET_THREADS; do
            if [ "$(cat "$task/comm")" = "$name" ]; then chrt -o -p 0 "${task##*/}"; fi
        done
    done
    load -d "$WARMUP" >/dev/null
    ticks=$(cpu_ticks "$PID") switched=$(switches "$PID")
    report=$(load -d "$DURATION" --json)
    ticks=$(($(cpu_ticks "$PID") - ticks)) switched=$(($(switches "$PID") - switched))
    rss=$(awk '/VmRSS/ { print $2 }' "/proc/$PID/status")
    writes=
    if [ "$SERVER" = log ]; then
        writes=$(curl -fsS "http://$ADDR/metrics" | awk '
            /^cairn_log_durable_write_seconds_sum/ { s = $2 } /^cairn_log_durable_write_seconds_count/ { n = $2 }
            /^cairn_log_batch_entries_sum/ { e = $2 }
            END { if (n > 0) printf "; durable writes since start: %d, %.1f entries and %.3f ms each", n, e / n, 1000 * s / n }')
    fi
    echo "$report" | jq -r --arg ticks "$ticks" --arg tck "$CLK_TCK" --arg switched "$switched" \
        --arg rss "$rss" --arg writes "$writes" --arg name "$SERVER $MODE${CONFIG_LINE:+ ($CONFIG_LINE)} run $run" '
        "\($name): \(.requests_per_second | floor) requests/s, "
        + (if .leaves != .requests then "\(.leaves_per_second | floor) leaves/s, " else "" end)
        + "\(($ticks | tonumber) / ($tck | tonumber) * 1e6 / .requests * 10 | round / 10) µs CPU a request, "
        + (if .leaves != .requests then "\(($ticks | tonumber) / ($tck | tonumber) * 1e6 / .leaves * 10 | round / 10) µs a leaf, " else "" end)
        + "\(($switched | tonumber) / .requests * 1000 | round / 1000) switches a request, "
        + "RSS \(($rss | tonumber) / 1024 | floor) MiB\($writes)"'
    kill "$PID"
    wait "$PID" 2>/dev/null || true
    PID=
done
