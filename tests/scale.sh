#!/usr/bin/env bash
# The scale test of the scaled backend with real processes (tests/tests/scale_garage.rs): a
# three-node Garage cluster on loopback holds the bucket; PostgreSQL, three cairn-log
# front-ends, two witnesses, a TSA and a monitor that follows the log through the bucket's
# website run as a sandbox (`cairn-sandbox --scale 3` on that bucket). Producers spread leaves
# over the front-ends while front-ends and the integrator lease's holder are killed with
# SIGKILL and restarted, and one Garage node is killed for a while. It passes when every
# acknowledged leaf is in the bucket exactly once at its index, no producer saw a failure but
# from a front-end that was down (none while the Garage node was down), the monitor verified
# the tree with no alert, and `cairn-monitor audit` of the bucket passes. The figures (leaves,
# kills, takeovers, duration) are printed at the end.
#
#   tests/scale.sh
#
# Needs Garage, run as an outside process (it is AGPL: never linked): GARAGE_BIN, default
# ~/.cargo/bin/garage, else `garage` on the PATH. Install it with
#   cargo install garage@2.5.0 --locked        (a long build: 10 minutes or more)
# CI does not build Garage: its conformance and fault tests use the lighter S3 server s3s-fs.
# Also needs PostgreSQL (/usr/lib/postgresql/<version>/bin, or CAIRN_PG_BIN; as root it runs as
# the postgres user). Settings (environment): SCALE_ROUNDS (kill rounds, 3), SCALE_PRODUCERS
# (12), SCALE_OUTAGE_SECS (how long the Garage node is down, 15). Everything runs on loopback in
# a temporary directory, removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

GARAGE_BIN=${GARAGE_BIN:-$HOME/.cargo/bin/garage}
if [ ! -x "$GARAGE_BIN" ]; then
    if command -v garage >/dev/null; then
        GARAGE_BIN=$(command -v garage)
    else
        echo "scale.sh: Garage not found at $GARAGE_BIN nor on the PATH." >&2
        echo "  install it: cargo install garage@2.5.0 --locked   (or set GARAGE_BIN)" >&2
        exit 1
    fi
fi
export GARAGE_BIN
echo "== Garage: $GARAGE_BIN ($("$GARAGE_BIN" --version 2>/dev/null | head -1))"

# The sandbox runs the workspace's binaries from the target directory the test is built in.
cargo build --locked -p cairn-log -p cairn-witness -p cairn-monitor --bins
cargo test --locked -p cairn-tests --test scale_garage -- --ignored --nocapture
