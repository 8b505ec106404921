#!/usr/bin/env bash
# Runs a whole Cairn on this machine: builds the binaries, then starts `cairn-sandbox` (one
# log, two witnesses, an RFC 3161 timestamp authority and a monitor on loopback; keys and
# configuration made on first start in ./cairn-sandbox, in the directory it is run from, and
# reused after). Arguments go to cairn-sandbox (`tests/sandbox.sh --help`).
# CAIRN_PROFILE=debug skips the release build.
set -euo pipefail
here="$PWD"
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"

profile="${CAIRN_PROFILE:-release}"
if [ "$profile" = release ]; then
    cargo build --quiet --release --locked --workspace --bins
else
    cargo build --quiet --locked --workspace --bins
fi
bin="$(realpath -m "${CARGO_TARGET_DIR:-target}/$profile")"
# The sandbox's directory (--dir, default ./cairn-sandbox) is relative to where this was run.
cd "$here"
exec "$bin/cairn-sandbox" "$@"
