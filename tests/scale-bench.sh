#!/usr/bin/env bash
# The scaled backend's throughput (docs/scaling.md): cairn-load spread over FRONT_ENDS cairn-log
# front-ends on one PostgreSQL (fsync and synchronous_commit on) and one S3 server (s3s-fs),
# and, in the same run as the baseline, the same load against one cairn-log on its embedded
# store. For each mode (single-leaf POST /add, POST /add-batch): leaves/s and latency
# percentiles of a closed loop, then an open loop at half the rate the closed loop reached
# (the latency at half load); and from the front-ends' /metrics the cost of the sequencing
# step: PostgreSQL commits per second, entries per commit, and the mean commit time.
#
#   nice cargo build --release -p cairn-log -p cairn-tests --bins
#   tests/scale-bench.sh
#
# Settings (environment): DURATION (10s), WARMUP (2s), FRONT_ENDS (3), CONNECTIONS (96, over
# all front-ends), BATCH_SIZE (256 leaves a request), BATCH_CONNECTIONS (24), LEAF_SIZE (128),
# HALF_RATE_CONNECTIONS (256), BASE_PORT (18280), BIN (the release directory of
# $CARGO_TARGET_DIR or target). Needs PostgreSQL (/usr/lib/postgresql/<version>/bin, or
# PG_BIN), s3s-fs (on the PATH or in ~/.cargo/bin), jq and curl. As root, PostgreSQL runs as
# the postgres user. Everything runs on loopback in a temporary directory, removed at the end.
#
# The machine may be shared: compare the scaled figures with the embedded baseline of the
# same run, not with another run's.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
FRONT_ENDS=${FRONT_ENDS:-3}
CONNECTIONS=${CONNECTIONS:-96}
BATCH_SIZE=${BATCH_SIZE:-256}
BATCH_CONNECTIONS=${BATCH_CONNECTIONS:-24}
LEAF_SIZE=${LEAF_SIZE:-128}
HALF_RATE_CONNECTIONS=${HALF_RATE_CONNECTIONS:-256}
BASE_PORT=${BASE_PORT:-18280}
BIN=${BIN:-$(realpath -m "${CARGO_TARGET_DIR:-target}/release")}
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
S3S_FS=${S3S_FS:-$(command -v s3s-fs || echo "$HOME/.cargo/bin/s3s-fs")}

for need in "$BIN/cairn-log" "$BIN/cairn-load" "$PG_BIN/pg_ctl" "$S3S_FS"; do
    if [ ! -x "$need" ]; then
        echo "scale-bench.sh: $need is missing (build: nice cargo build --release -p cairn-log -p cairn-tests --bins)" >&2
        exit 1
    fi
done
for tool in jq curl; do
    command -v "$tool" >/dev/null || { echo "scale-bench.sh: $tool is needed" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/cairn-scale-bench.XXXXXX)
chmod 755 "$WORK"
PIDS=()
as_postgres=()
if [ "$(id -u)" = 0 ]; then
    as_postgres=(runuser -u postgres --)
fi
PG_PORT=$BASE_PORT
S3_PORT=$((BASE_PORT + 1))
LOG_PIDS=()
cleanup() {
    for pid in "${LOG_PIDS[@]}" "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${LOG_PIDS[@]}" "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [ -f "$WORK/pg/postmaster.pid" ]; then
        "${as_postgres[@]}" "$PG_BIN/pg_ctl" -D "$WORK/pg" -m fast -w stop >/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

echo "== PostgreSQL on 127.0.0.1:$PG_PORT, s3s-fs on 127.0.0.1:$S3_PORT, work in $WORK"
mkdir "$WORK/pg"
[ ${#as_postgres[@]} -eq 0 ] || chown postgres "$WORK/pg"
"${as_postgres[@]}" "$PG_BIN/initdb" -D "$WORK/pg" -A trust -U postgres -E UTF8 --locale=C >/dev/null
"${as_postgres[@]}" "$PG_BIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg/server.log" -w -o \
    "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $WORK/pg -c fsync=on -c synchronous_commit=on -c max_connections=200 -c shared_buffers=128MB -c max_wal_size=1GB" \
    start >/dev/null
mkdir -p "$WORK/s3/bench"
printf 'bench-access\nbench-secret-key\n' > "$WORK/s3-credentials"
chmod 600 "$WORK/s3-credentials"
"$S3S_FS" --host 127.0.0.1 --port "$S3_PORT" --access-key bench-access --secret-key bench-secret-key \
    "$WORK/s3" 2> "$WORK/s3s-fs.log" &
PIDS+=($!)

"$BIN/cairn-log" keygen --origin bench.cairn.example/scale --out "$WORK/log.key" >/dev/null
"$BIN/cairn-log" token --name bench > "$WORK/token.txt"
TOKEN=$(sed -n 's/^token: //p' "$WORK/token.txt")
PRODUCER=$(sed -n '/^\[\[producers\]\]/,$p' "$WORK/token.txt")

# config NAME PORT BACKEND RUN: writes $WORK/NAME.toml (RUN names the run's schema and prefix).
config() {
    local name=$1 port=$2 backend=$3 run=$4
    {
        printf 'listen = "127.0.0.1:%s"\ndata_dir = "%s"\nstorage = "%s"\n' "$port" "$WORK/$run-$name" "$backend"
        printf 'key_file = "%s"\nwitness_quorum = 0\ncheckpoint_interval_ms = 1000\n\n%s\n\n' "$WORK/log.key" "$PRODUCER"
        if [ "$backend" = scaled ]; then
            printf '[postgres]\nurl = "host=127.0.0.1 port=%s user=postgres dbname=postgres"\n' "$PG_PORT"
            printf 'schema = "%s"\npool_size = 16\n\n' "${run//-/_}"
            printf '[bucket]\nendpoint = "http://127.0.0.1:%s"\nbucket = "bench"\nprefix = "%s"\n' "$S3_PORT" "$run"
            printf 'credentials_file = "%s"\n\n' "$WORK/s3-credentials"
        fi
        printf '[privacy]\nkek_file = "%s"\n' "$WORK/events.kek"
    } > "$WORK/$name.toml"
}
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$WORK/events.kek"
chmod 600 "$WORK/events.kek"

# start NAME PORT: starts a cairn-log and waits until it answers.
start() {
    "$BIN/cairn-log" serve --config "$WORK/$1.toml" > /dev/null 2> "$WORK/$1.err" &
    LOG_PIDS+=($!)
    for _ in $(seq 600); do
        curl -sf "http://127.0.0.1:$2/healthz" >/dev/null && return 0
        sleep 0.1
    done
    echo "scale-bench.sh: $1 did not start:" >&2
    tail -20 "$WORK/$1.err" >&2
    exit 1
}

# stop_logs: stops the cairn-log processes of the run (cleanly: SIGTERM), keeping the servers.
stop_logs() {
    for pid in "${LOG_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${LOG_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    LOG_PIDS=()
}

# read_commits PORTS...: "commits entries commit-seconds", summed over the front-ends' /metrics.
read_commits() {
    local batches=0 entries=0 seconds=0
    for port in "$@"; do
        local metrics
        metrics=$(curl -sf "http://127.0.0.1:$port/metrics")
        batches=$(awk -v b="$batches" '/^cairn_log_batch_entries_count /{print b+$2}' <<< "$metrics")
        entries=$(awk -v e="$entries" '/^cairn_log_batch_entries_sum /{print e+$2}' <<< "$metrics")
        seconds=$(awk -v s="$seconds" '/^cairn_log_durable_write_seconds_sum /{print s+$2}' <<< "$metrics")
    done
    echo "$batches $entries $seconds"
}

# load OUT MODE CONNECTIONS [RATE] -- TARGET_PORTS...: one cairn-load run, its JSON report in OUT.
load() {
    local out=$1 mode=$2 connections=$3 rate=$4
    shift 5
    local targets=(--target "http://127.0.0.1:$1")
    for port in "${@:2}"; do targets+=(--also-target "http://127.0.0.1:$port"); done
    local args=("$mode" "${targets[@]}" -c "$connections" -d "$DURATION" --warmup "$WARMUP"
        --leaf-size "$LEAF_SIZE" --token "$TOKEN" --json)
    [ "$mode" = add-batch ] && args+=(--batch-size "$BATCH_SIZE")
    [ -n "$rate" ] && args+=(--rate "$rate")
    "$BIN/cairn-load" "${args[@]}" > "$out"
}

summary() {
    jq -r --arg name "$2" '"\($name): \(.leaves_per_second | floor) leaves/s, \(.requests_per_second | floor) requests/s, p50 \(.latency_micros.p50 / 1000) ms, p99 \(.latency_micros.p99 / 1000) ms, statuses \(.status_counts | tostring), errors \(.errors | tostring)"' "$1"
}

RESULTS=()
run=0
for mode in add add-batch; do
    connections=$CONNECTIONS
    [ "$mode" = add-batch ] && connections=$BATCH_CONNECTIONS
    for setup in embedded scaled; do
        run=$((run + 1))
        ports=()
        if [ "$setup" = embedded ]; then
            config log-1 $((BASE_PORT + 10)) embedded "run$run"
            start log-1 $((BASE_PORT + 10))
            ports=($((BASE_PORT + 10)))
        else
            for n in $(seq "$FRONT_ENDS"); do
                config "log-$n" $((BASE_PORT + 10 + n)) scaled "run$run"
                start "log-$n" $((BASE_PORT + 10 + n))
                ports+=($((BASE_PORT + 10 + n)))
            done
        fi
        echo "== $mode against $setup (${#ports[@]} front-end(s)), $connections connections"
        read -r b0 e0 s0 <<< "$(read_commits "${ports[@]}")"
        load "$WORK/$setup-$mode.json" "$mode" "$connections" "" -- "${ports[@]}"
        read -r b1 e1 s1 <<< "$(read_commits "${ports[@]}")"
        RESULTS+=("$(summary "$WORK/$setup-$mode.json" "$mode $setup closed loop")")
        elapsed=$(jq '.elapsed_seconds + .warmup_seconds' "$WORK/$setup-$mode.json")
        RESULTS+=("$(awk -v b=$((b1 - b0)) -v e="$e1" -v e0="$e0" -v s="$s1" -v s0="$s0" -v t="$elapsed" -v name="$mode $setup" \
            'BEGIN { if (b > 0) printf "%s commits: %.0f/s, %.1f entries each, %.2f ms each (mean)", name, b / t, (e - e0) / b, 1000 * (s - s0) / b }')")
        half=$(jq '.requests_per_second / 2 | floor' "$WORK/$setup-$mode.json")
        if [ "$half" -gt 0 ]; then
            load "$WORK/$setup-$mode-half.json" "$mode" "$HALF_RATE_CONNECTIONS" "$half" -- "${ports[@]}"
            RESULTS+=("$(summary "$WORK/$setup-$mode-half.json" "$mode $setup at half rate ($half requests/s)")")
        fi
        stop_logs
    done
    RESULTS+=("$(jq -rn --slurpfile e "$WORK/embedded-$mode.json" --slurpfile s "$WORK/scaled-$mode.json" --arg mode "$mode" \
        '"\($mode): scaled ÷ embedded = \(($s[0].leaves_per_second / $e[0].leaves_per_second * 100 | floor) / 100)"')")
done

echo
echo "== results ($(date -u +%Y-%m-%dT%H:%MZ), load $(cut -d' ' -f1-3 /proc/loadavg))"
printf '%s\n' "${RESULTS[@]}"
