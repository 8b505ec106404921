#!/usr/bin/env bash
# A quick A/B of two cairn-log binaries on audit events: for each of two interleaved rounds,
# BEFORE then AFTER, each on a fresh data directory without witnesses, `cairn-load events`
# (64 connections, 6 s) and `events-batch` (16 connections, 100 events a request, 6 s).
# Usage: tests/ab-events.sh BEFORE_BIN AFTER_BIN   (cairn-load from target/debug unless LOAD).
# For the release figures of BENCHMARKS.md, use tests/bench.sh.
set -u
cd "$(dirname "$0")/.."
LOAD=${LOAD:-$PWD/target/debug/cairn-load}
BEFORE=$1 AFTER=$2
run() { local name=$1 bin=$2 port=$3 dir=$(mktemp -d /tmp/ab-XXXX)
  "$bin" keygen --origin bench.example/log --out $dir/log.key >/dev/null
  "$bin" token --name bench > $dir/token.txt
  local token=$(sed -n 's/^token: //p' $dir/token.txt)
  { echo "listen = \"127.0.0.1:$port\""; echo "data_dir = \"$dir/data\""; echo "origin = \"bench.example/log\""; echo "key_file = \"$dir/log.key\""; echo "witness_quorum = 0"; sed -n '/^\[\[producers\]\]/,$p' $dir/token.txt; } > $dir/log.toml
  "$bin" serve --config $dir/log.toml > $dir/out 2>&1 & local pid=$!
  for i in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:$port/healthz && break; sleep 0.1; done
  CAIRN_LOAD_TOKEN=$token $LOAD events --target http://127.0.0.1:$port -c 64 -d 6s --json > $dir/e.json 2>/dev/null
  CAIRN_LOAD_TOKEN=$token $LOAD events-batch --target http://127.0.0.1:$port -c 16 -d 6s --batch-size 100 --json > $dir/b.json 2>/dev/null
  kill $pid; wait $pid 2>/dev/null
  echo "$name events $(jq -r '.leaves_per_second|round' $dir/e.json) batch $(jq -r '.leaves_per_second|round' $dir/b.json) $(jq -c '.status_counts' $dir/e.json) $(jq -c '.status_counts' $dir/b.json) load $(cut -d' ' -f1 /proc/loadavg)"
  rm -rf $dir; }
for round in 1 2; do run before "$BEFORE" $((18200+round)); run after "$AFTER" $((18210+round)); done
