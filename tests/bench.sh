#!/usr/bin/env bash
# Cairn's throughput benchmark: the same cairn-load run against the no-op baseline server
# (cairn-noop) and against the log server (cairn-log, when it is built), each server pinned to
# one core and the load generator to the other, then the ratios. Appends the run to
# benchmarks/history.md (the run history; BENCHMARKS.md keeps the current figure of each
# benchmark, updated by hand).
#
#   tests/bench.sh                      # 64 connections, closed loop, 256-byte leaves, 10 s
#   DURATION=30s MODES="add add-batch" tests/bench.sh
#
# Settings (environment):
#   DURATION, WARMUP        measured period and warm-up of each run (10s, 2s)
#   CONNECTIONS, LEAF_SIZE  keep-alive connections and leaf size (64, 256)
#   BATCH_SIZE              leaves per request in the add-batch mode (256)
#   EVENTS_PER_BATCH        audit events per request in the events-batch mode (100)
#   MODES                   cairn-load modes to run against each server ("add"; also add-batch,
#                           events: one event per POST /v1/events, events-batch: JSON arrays
#                           to POST /v1/events/batch)
#   RATE                    requests/s of an open loop at a fixed rate (cairn-load --rate),
#                           latencies measured from when each request was due; unset: closed
#                           loop. For the latency at a given share of the maximum rate.
#   HALF_RATE               1: after the closed-loop runs, run cairn-log once more per mode in
#                           an open loop at half the rate its closed-loop run reached, for the
#                           latency at half the maximum rate (row "log-half")
#   HALF_RATE_CONNECTIONS   connections of that run (256). An open loop keeps one request in
#                           flight per connection, so each connection's share of the rate must
#                           leave room for a request's time in the log (up to two group
#                           commits): 64 connections at 32 k/s leave each 2 ms, too little
#   SERVER_CORE, LOAD_CORE  the cores for the server and the load generator (0, 1)
#   NOOP_ADDR               where cairn-noop listens (127.0.0.1:18081)
#   CAIRN_LOG_ADDR          where cairn-log listens (127.0.0.1:18080)
#   CAIRN_LOG_START         the command that starts cairn-log listening on CAIRN_LOG_ADDR; it
#                           runs with $BENCH_WORK (a fresh temporary directory) in the
#                           environment for its data, once per mode, and $BENCH_WORK/log is
#                           emptied before each start. Default: a dev log (no witnesses) in
#                           $BENCH_WORK/log with a new key and producer token
#   CAIRN_LOG_CA_FILE       set: cairn-log serves TLS (its CAIRN_LOG_START must start it so),
#                           and cairn-load reaches it at https://CAIRN_LOG_ADDR trusting this
#                           PEM CA; cairn-noop stays plain HTTP, so log ÷ noop of a TLS run
#                           against that of a plain run gives what TLS costs
#   BASELINE_LOG            another cairn-log binary (e.g. a release build of an older commit)
#                           to A/B against: with the default log, each mode runs it first
#                           (row "log-base") and then the built one, each on a fresh data
#                           directory, and the notes give the built log's figures as ratios
#                           to it. ROUNDS (1) repeats that pair, interleaved
#   NO_BUILD                1: run the release binaries already in the target directory
#                           without building (e.g. when they were built together with
#                           `cargo build --release -p cairn-log -p cairn-tests --bins`, whose
#                           features differ from building each package alone)
#   CAIRN_LOG_TOKEN         bearer token cairn-load sends to cairn-log (default: the token made
#                           for the default log)
#   BENCHMARKS_FILE         where results are appended (benchmarks/history.md; /dev/null for
#                           none)
#   REALTIME                1: run the server and the load as SCHED_FIFO (chrt -f 10, needs
#                           root) so that other work on a shared machine cannot delay their
#                           wake-ups; a lower niceness is not enough, since a request/answer
#                           ping-pong is bound by wake-up latency, not CPU share. The kernel's
#                           real-time throttling still leaves others 5% of each core.
#
# The machine has two cores: the figures are only comparable within one run (same load, same
# moment), which is why the baseline is measured every time. Nothing here is sent anywhere but
# loopback addresses.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CONNECTIONS=${CONNECTIONS:-64}
LEAF_SIZE=${LEAF_SIZE:-256}
BATCH_SIZE=${BATCH_SIZE:-256}
EVENTS_PER_BATCH=${EVENTS_PER_BATCH:-100}
MODES=${MODES:-add}
RATE=${RATE:-}
HALF_RATE=${HALF_RATE:-0}
HALF_RATE_CONNECTIONS=${HALF_RATE_CONNECTIONS:-256}
BASELINE_LOG=${BASELINE_LOG:-}
NO_BUILD=${NO_BUILD:-0}
ROUNDS=${ROUNDS:-1}
SERVER_CORE=${SERVER_CORE:-0}
LOAD_CORE=${LOAD_CORE:-1}
NOOP_ADDR=${NOOP_ADDR:-127.0.0.1:18081}
CAIRN_LOG_ADDR=${CAIRN_LOG_ADDR:-127.0.0.1:18080}
BENCHMARKS_FILE=${BENCHMARKS_FILE:-$ROOT/benchmarks/history.md}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET_DIR/release

PIN_SERVER=(taskset -c "$SERVER_CORE")
PIN_LOAD=(taskset -c "$LOAD_CORE")
if [ "${REALTIME:-0}" = 1 ]; then
    PIN_SERVER=(chrt -f 10 "${PIN_SERVER[@]}")
    PIN_LOAD=(chrt -f 10 "${PIN_LOAD[@]}")
fi

BENCH_WORK=$(mktemp -d -t cairn-bench.XXXXXX)
export BENCH_WORK

for tool in jq taskset getconf; do
    command -v "$tool" >/dev/null || { echo "bench.sh: $tool is needed" >&2; exit 2; }
done

SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$BENCH_WORK"
}
trap cleanup EXIT

if [ "$NO_BUILD" = 1 ]; then
    echo "== not building: the release binaries in $BIN as they are"
else
    echo "== building (release)"
    cargo build --release --locked -p cairn-tests --bins
    if [ -d "$ROOT/log-server" ]; then
        cargo build --release --locked -p cairn-log --bins || echo "bench.sh: cairn-log did not build" >&2
    fi
fi

# The default log: a key, a producer token and a configuration without witnesses, so that
# the figures are those of sequencing, durability and HTTP, not of a witness's round trips.
if [ -z "${CAIRN_LOG_START:-}" ] && [ -x "$BIN/cairn-log" ]; then
    bench_origin=bench.cairn.example/log
    "$BIN/cairn-log" keygen --origin "$bench_origin" --out "$BENCH_WORK/log.key" >/dev/null
    "$BIN/cairn-log" token --name bench >"$BENCH_WORK/token.txt"
    CAIRN_LOG_TOKEN=${CAIRN_LOG_TOKEN:-$(sed -n 's/^token: //p' "$BENCH_WORK/token.txt")}
    {
        echo "listen = \"$CAIRN_LOG_ADDR\""
        echo "data_dir = \"$BENCH_WORK/log\""
        echo "origin = \"$bench_origin\""
        echo "key_file = \"$BENCH_WORK/log.key\""
        echo "witness_quorum = 0"
        sed -n '/^\[\[producers\]\]/,$p' "$BENCH_WORK/token.txt"
    } >"$BENCH_WORK/log.toml"
    CAIRN_LOG_START="$BIN/cairn-log serve --config $BENCH_WORK/log.toml"
    if [ -n "$BASELINE_LOG" ]; then
        [ -x "$BASELINE_LOG" ] || { echo "bench.sh: BASELINE_LOG $BASELINE_LOG is not an executable" >&2; exit 2; }
        BASELINE_START="$BASELINE_LOG serve --config $BENCH_WORK/log.toml"
    fi
elif [ -n "$BASELINE_LOG" ]; then
    echo "bench.sh: BASELINE_LOG needs the default log (CAIRN_LOG_START unset)" >&2
    exit 2
fi
CAIRN_LOG_START=${CAIRN_LOG_START:-$BIN/cairn-log}

CLK_TCK=$(getconf CLK_TCK)
LOAD_AVERAGE_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# CPU seconds (user + system) a process has used so far.
cpu_seconds() {
    # Fields after the command name, which may hold spaces: utime and stime are the 12th and 13th.
    local stat
    stat=$(cat "/proc/$1/stat")
    echo "${stat##*) }" | awk -v tck="$CLK_TCK" '{ printf "%.3f", ($12 + $13) / tck }'
}

wait_for_port() {
    local host=${1%:*} port=${1##*:}
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "bench.sh: nothing listens on $1 after 10 s" >&2
    return 1
}

# start_server NAME ADDR COMMAND...: starts COMMAND pinned to the server core.
start_server() {
    local name=$1 addr=$2
    shift 2
    "${PIN_SERVER[@]}" "$@" >"$BENCH_WORK/$name.log" 2>&1 &
    SERVER_PID=$!
    if ! wait_for_port "$addr"; then
        cat "$BENCH_WORK/$name.log" >&2
        return 1
    fi
}

stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}

# load_args MODE: the cairn-load arguments of a mode.
load_args() {
    case $1 in
        add) echo "add --leaf-size $LEAF_SIZE" ;;
        add-batch) echo "add-batch --leaf-size $LEAF_SIZE --batch-size $BATCH_SIZE" ;;
        events) echo "events" ;;
        events-batch) echo "events-batch --batch-size $EVENTS_PER_BATCH" ;;
        *) echo "bench.sh: unknown mode $1" >&2; return 1 ;;
    esac
}

# measure NAME ADDR MODE [TOKEN [RATE [CONNECTIONS]]]: one pinned cairn-load run (closed loop
# unless a rate is given); writes $BENCH_WORK/NAME-MODE.json with the report plus the CPU use of
# both sides.
measure() {
    local name=$1 addr=$2 mode=$3 token=${4:-} rate=${5:-$RATE} connections=${6:-$CONNECTIONS}
    local args server_cpu_before server_cpu_after times token_env=() scheme=http tls=()
    if [ -n "$token" ]; then token_env=(env "CAIRN_LOAD_TOKEN=$token"); fi
    if [ "$name" != noop ] && [ -n "${CAIRN_LOG_CA_FILE:-}" ]; then
        scheme=https
        tls=(--ca-file "$CAIRN_LOG_CA_FILE")
    fi
    args="$(load_args "$mode")${rate:+ --rate $rate}"
    server_cpu_before=$(cpu_seconds "$SERVER_PID")
    # shellcheck disable=SC2086 # args is a list of words
    { time "${token_env[@]}" "${PIN_LOAD[@]}" "$BIN/cairn-load" $args \
        --target "$scheme://$addr" "${tls[@]}" -c "$connections" -d "$DURATION" --warmup "$WARMUP" --json \
        >"$BENCH_WORK/$name-$mode.report.json"; } 2>"$BENCH_WORK/$name-$mode.time" || true
    server_cpu_after=$(cpu_seconds "$SERVER_PID")
    if ! jq -e .requests "$BENCH_WORK/$name-$mode.report.json" >/dev/null 2>&1; then
        echo "bench.sh: cairn-load against $name ($mode) gave no report:" >&2
        cat "$BENCH_WORK/$name-$mode.time" >&2
        return 1
    fi
    if [ "$(jq .requests "$BENCH_WORK/$name-$mode.report.json")" = 0 ]; then
        echo "bench.sh: $name answered no request in mode $mode" >&2
    fi
    times=$(tail -n 1 "$BENCH_WORK/$name-$mode.time")
    jq --arg server "$name" \
        --argjson server_cpu "$(awk -v a="$server_cpu_before" -v b="$server_cpu_after" 'BEGIN { printf "%.3f", b - a }')" \
        --argjson load_cpu "$(echo "$times" | awk '{ printf "%.3f", $2 + $3 }')" \
        --argjson wall "$(echo "$times" | awk '{ printf "%.3f", $1 }')" \
        '. + {server: $server, server_cpu_seconds: $server_cpu, load_cpu_seconds: $load_cpu, wall_seconds: $wall}' \
        "$BENCH_WORK/$name-$mode.report.json" >"$BENCH_WORK/$name-$mode.json"
}

TIMEFORMAT='%R %U %S'

row() {
    jq -r '
      def r(x): (x * 10 | round) / 10;
      def ms(x): if x == null then "-" else "\(r(x / 1000)) ms" end;
      def per_core(cpu): if cpu <= 0 then "-" else "\(.requests_per_second * .wall_seconds / cpu | round)" end;
      "| \(.server) | \(.mode) | \(.requests_per_second | round) | \(.leaves_per_second | round) | \(ms(.latency_micros.p50)) | \(ms(.latency_micros.p90)) | \(ms(.latency_micros.p99)) | \(ms(.latency_micros.p99_9)) | \(ms(.latency_micros.max)) | \(r(100 * .server_cpu_seconds / .wall_seconds))% | \(r(100 * .load_cpu_seconds / .wall_seconds))% | \(per_core(.server_cpu_seconds)) | \(per_core(.load_cpu_seconds)) | \(.errors.connect + .errors.io + .errors.timeout) | \([.status_counts | to_entries[] | "\(.key)×\(.value)"] | join(" ")) |"
    ' "$1"
}

RESULTS=()
NOTES=()

echo "== cairn-noop on core $SERVER_CORE, cairn-load on core $LOAD_CORE"
start_server noop "$NOOP_ADDR" "$BIN/cairn-noop" --listen "$NOOP_ADDR" --threads 1
for mode in $MODES; do
    measure noop "$NOOP_ADDR" "$mode"
    RESULTS+=("$BENCH_WORK/noop-$mode.json")
done
stop_server

LOG_BIN=${CAIRN_LOG_START%% *}
if [ -x "$LOG_BIN" ]; then
    echo "== cairn-log on core $SERVER_CORE, cairn-load on core $LOAD_CORE"
    # measure_fresh_log NAME MODE [RATE [CONNECTIONS]]: each run gets a log of its own, started
    # afresh in an empty directory, so that no run is measured on the leaves, segments and
    # indexes another one left behind.
    measure_fresh_log() {
        local start=${5:-$CAIRN_LOG_START}
        rm -rf "$BENCH_WORK/log"
        mkdir -p "$BENCH_WORK/log"
        # shellcheck disable=SC2086 # the start command is a list of words
        start_server log "$CAIRN_LOG_ADDR" $start
        measure "$1" "$CAIRN_LOG_ADDR" "$2" "${CAIRN_LOG_TOKEN:-}" "${3:-}" "${4:-}"
        RESULTS+=("$BENCH_WORK/$1-$2.json")
        stop_server
    }
    for round in $(seq "$ROUNDS"); do
        # Rounds after the first keep their reports under names of their own.
        suffix=
        if [ "$round" -gt 1 ]; then suffix="-$round"; fi
        for mode in $MODES; do
            if [ -n "$BASELINE_LOG" ]; then
                measure_fresh_log "log-base$suffix" "$mode" "" "" "$BASELINE_START"
            fi
            measure_fresh_log "log$suffix" "$mode"
            if [ -n "$BASELINE_LOG" ]; then
                NOTES+=("$(jq -rn --slurpfile base "$BENCH_WORK/log-base$suffix-$mode.json" --slurpfile log "$BENCH_WORK/log$suffix-$mode.json" --arg round "$round" '
                  def ratio(a; b): if b == null or b == 0 or a == null then "-" else "\(((a / b) * 100 | round) / 100)" end;
                  def per_core(x): if x.server_cpu_seconds <= 0 then null else x.leaves_per_second * x.wall_seconds / x.server_cpu_seconds end;
                  "round \($round), cairn-log / BASELINE_LOG (\($log[0].mode)): leaves/s \(ratio($log[0].leaves_per_second; $base[0].leaves_per_second)), leaves/s per server core \(ratio(per_core($log[0]); per_core($base[0]))), p50 \(ratio($log[0].latency_micros.p50; $base[0].latency_micros.p50)), p99 \(ratio($log[0].latency_micros.p99; $base[0].latency_micros.p99))"')")
            fi
        done
    done
    if [ "$HALF_RATE" = 1 ]; then
        for mode in $MODES; do
            half=$(jq '.requests_per_second / 2 | floor' "$BENCH_WORK/log-$mode.json")
            if [ "$half" -lt 1 ]; then continue; fi
            measure_fresh_log log-half "$mode" "$half" "$HALF_RATE_CONNECTIONS"
            NOTES+=("$(jq -r --arg connections "$HALF_RATE_CONNECTIONS" '
              def ms(x): if x == null then "-" else "\((x / 100 | round) / 10) ms" end;
              "cairn-log at half its closed-loop rate (\(.mode), open loop at \(.target_rate // "?") requests/s, \($connections) connections): p50 \(ms(.latency_micros.p50)), p99 \(ms(.latency_micros.p99)), \(.unsent // 0) unsent"' "$BENCH_WORK/log-half-$mode.json")")
        done
    fi
else
    NOTES+=("cairn-log was not measured: $LOG_BIN is not built (set CAIRN_LOG_START to its start command once it exists).")
fi

TABLE="| server | mode | requests/s | leaves/s | p50 | p90 | p99 | p99.9 | max | server CPU | load CPU | req/s per server core | req/s per load core | errors | answers |
|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
for result in "${RESULTS[@]}"; do
    TABLE+=$'\n'"$(row "$result")"
done

for mode in $MODES; do
    if [ -f "$BENCH_WORK/log-$mode.json" ]; then
        NOTES+=("$(jq -rn --slurpfile noop "$BENCH_WORK/noop-$mode.json" --slurpfile log "$BENCH_WORK/log-$mode.json" '
          def ratio(a; b): if b == null or b == 0 or a == null then "-" else "\(((a / b) * 100 | round) / 100)" end;
          "cairn-log / cairn-noop (\($noop[0].mode)): requests/s \(ratio($log[0].requests_per_second; $noop[0].requests_per_second)), leaves/s \(ratio($log[0].leaves_per_second; $noop[0].leaves_per_second)), p50 \(ratio($log[0].latency_micros.p50; $noop[0].latency_micros.p50)), p99 \(ratio($log[0].latency_micros.p99; $noop[0].latency_micros.p99))"')")
    fi
done

if [ "${REALTIME:-0}" = 1 ] && [ -r /proc/sys/kernel/sched_rt_runtime_us ]; then
    RT_RUNTIME=$(cat /proc/sys/kernel/sched_rt_runtime_us)
    RT_PERIOD=$(cat /proc/sys/kernel/sched_rt_period_us)
    if [ "$RT_RUNTIME" -ge 0 ] && [ "$RT_RUNTIME" -lt "$RT_PERIOD" ]; then
        NOTES+=("REALTIME=1: the kernel pauses real-time tasks for $(((RT_PERIOD - RT_RUNTIME) / 1000)) ms of every $((RT_PERIOD / 1000)) ms (sched_rt_runtime_us), so p99.9 and max include pauses of that length; read the tail from a run without REALTIME.")
    fi
fi

LOOP="closed loop"
HALF_SETTINGS=
if [ "$HALF_RATE" = 1 ]; then HALF_SETTINGS=" HALF_RATE=1 HALF_RATE_CONNECTIONS=$HALF_RATE_CONNECTIONS"; fi
if [ -n "$RATE" ]; then LOOP="open loop at $RATE requests/s"; fi
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
SECTION="
## $(date -u '+%Y-%m-%d %H:%M UTC'), commit $COMMIT

Machine: $(nproc) CPUs ($CPU_MODEL), $(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r); load average before the run: $LOAD_AVERAGE_BEFORE.
Command: \`${BASELINE_LOG:+BASELINE_LOG=$BASELINE_LOG ROUNDS=$ROUNDS }DURATION=$DURATION WARMUP=$WARMUP CONNECTIONS=$CONNECTIONS LEAF_SIZE=$LEAF_SIZE MODES=\"$MODES\"${RATE:+ RATE=$RATE}$HALF_SETTINGS${REALTIME:+ REALTIME=$REALTIME} tests/bench.sh\` (server on core $SERVER_CORE, cairn-load on core $LOAD_CORE, $LOOP).

$TABLE
"
for note in "${NOTES[@]}"; do
    SECTION+=$'\n'"- $note"
done

echo "$SECTION"
if [ "$BENCHMARKS_FILE" != /dev/null ]; then
    printf '%s\n' "$SECTION" >>"$BENCHMARKS_FILE"
    echo "== appended to $BENCHMARKS_FILE"
fi
