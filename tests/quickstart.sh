#!/usr/bin/env bash
# Runs a small Cairn on this machine: one log, one witness and one RFC 3161 timestamp authority,
# all on loopback, with keys made on first start in a directory of their own (default
# ./cairn-quickstart; give another as the first argument). Prints how to add a leaf and get
# its receipt. Ctrl-C stops everything.
#
# This is the interim way to run Cairn until the `cairn-sandbox` of the end-to-end crate exists.
set -euo pipefail
cd "$(dirname "$0")/.."

dir="$(realpath -m "${1:-cairn-quickstart}")"
origin="${CAIRN_ORIGIN:-quickstart.cairn.example/log}"
log_port="${CAIRN_LOG_PORT:-7480}"
witness_port="${CAIRN_WITNESS_PORT:-7481}"
tsa_port="${CAIRN_TSA_PORT:-7482}"
profile="${CAIRN_PROFILE:-release}"

echo "== building cairn-log and cairn-witness ($profile)"
if [ "$profile" = release ]; then
    cargo build --quiet --release -p cairn-log -p cairn-witness
else
    cargo build --quiet -p cairn-log -p cairn-witness
fi
bin="$(realpath -m "${CARGO_TARGET_DIR:-target}/$profile")"

mkdir -p "$dir"
cd "$dir"

if [ ! -f log.key ]; then
    echo "== first start: making keys, a producer token and configuration in $dir"
    umask 077
    "$bin/cairn-witness" tsa init --dir tsa --name "Quickstart TSA" >/dev/null
    witness_vkey="$("$bin/cairn-witness" keygen --name quickstart.cairn.example/witness --out witness.key)"
    log_vkey="$("$bin/cairn-log" keygen --origin "$origin" --out log.key)"
    "$bin/cairn-log" token --name quickstart >token.txt
    token="$(sed -n 's/^token: //p' token.txt)"
    echo "$token" >producer.token
    cat >witness.toml <<EOF
listen = "127.0.0.1:$witness_port"
data_dir = "$dir/witness-data"
key_file = "$dir/witness.key"

[[log]]
origin = "$origin"
vkey = "$log_vkey"

[[tsa]]
name = "quickstart-tsa"
url = "http://127.0.0.1:$tsa_port/"
trust_anchor = "$dir/tsa/root.pem"
EOF
    cat >log.toml <<EOF
listen = "127.0.0.1:$log_port"
data_dir = "$dir/log-data"
origin = "$origin"
key_file = "$dir/log.key"
witness_quorum = 1

$(sed -n '/^\[\[producers\]\]/,$p' token.txt)

[[witnesses]]
name = "quickstart-witness"
url = "http://127.0.0.1:$witness_port"
vkey = "$witness_vkey"
EOF
    {
        echo "log $log_vkey"
        echo "witness w1 $witness_vkey"
        echo "quorum w1"
        echo "tsa quickstart-tsa $(sed '/-----/d' tsa/root.pem | tr -d '\n')"
    } >policy.txt
    rm token.txt
fi

pids=()
stop() {
    echo
    echo "== stopping"
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait
}
trap stop INT TERM EXIT

"$bin/cairn-witness" tsa serve --dir tsa --listen "127.0.0.1:$tsa_port" >tsa.out 2>&1 &
pids+=($!)
"$bin/cairn-witness" serve --config witness.toml >witness.out 2>&1 &
pids+=($!)
"$bin/cairn-log" serve --config log.toml >log.out 2>&1 &
pids+=($!)

for _ in $(seq 100); do
    if curl -fsS "http://127.0.0.1:$log_port/healthz" >/dev/null 2>&1; then break; fi
    sleep 0.1
done

cat <<EOF

Cairn is running (logs in $dir/*.out):
  log      http://127.0.0.1:$log_port   origin $origin
  witness  http://127.0.0.1:$witness_port
  TSA      http://127.0.0.1:$tsa_port
  policy   $dir/policy.txt (log key, witness key, quorum, TSA root)

Add a leaf and wait for its receipt (inclusion proof and the witness-cosigned checkpoint):

  curl -sS -H "Authorization: Bearer \$(cat $dir/producer.token)" \\
       --data-binary 'hello, auditor' \\
       "http://127.0.0.1:$log_port/add?wait=checkpoint" > receipt.json

A moment later the receipt also carries the TSA's token over that checkpoint:
  curl -sS http://127.0.0.1:$log_port/receipt/<index>
The latest checkpoint: curl -sS http://127.0.0.1:$log_port/checkpoint
The HTTP API: spec/docs/log-api.md. Ctrl-C stops everything.
EOF

wait
