#!/usr/bin/env bash
# Runs a whole Cairn on this machine: builds the binaries, then starts `cairn-sandbox` (one
# log, two witnesses, an RFC 3161 timestamp authority and a monitor on loopback; keys and
# configuration made on first start in ./cairn-sandbox, reused after). Arguments go to
# cairn-sandbox (`tests/sandbox.sh --help`). CAIRN_PROFILE=debug skips the release build.
set -euo pipefail
cd "$(dirname "$0")/.."

profile="${CAIRN_PROFILE:-release}"
if [ "$profile" = release ]; then
    cargo build --quiet --release --locked --workspace --bins
else
    cargo build --quiet --locked --workspace --bins
fi
exec "${CARGO_TARGET_DIR:-target}/$profile/cairn-sandbox" "$@"
