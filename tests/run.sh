#!/usr/bin/env bash
# Cairn's whole test suite: formatting, lints, the supply-chain check, every test of every
# crate, then a short fuzz run of every fuzz target.
# This is the command README.md gives, and the one .ci/run calls.
#
# The supply-chain check needs cargo-deny and the fuzz run cargo-fuzz: without them each is
# skipped with a note, except under CI=true, where a missing tool fails the run (.ci/run
# installs both). FUZZ_SECONDS sets how long each fuzz target runs (default 15).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

# Runs "$@" if cargo subcommand $1 is installed; else skips it, or fails under CI=true.
with_cargo_tool() {
    local tool="$1"
    if cargo "$tool" --version >/dev/null 2>&1; then
        "${@:2}"
    elif [ "${CI:-}" = true ]; then
        echo "cargo-$tool is not installed; CI must run this step (.ci/run installs it)" >&2
        return 1
    else
        echo "skipped: cargo-$tool is not installed (.ci/run installs it; see README.md)"
    fi
}

# Licences, duplicate versions and sources of every dependency (deny.toml says what is allowed
# and why; its header says how to run the advisories check, which needs the network).
echo "== cargo deny check licenses bans sources"
with_cargo_tool deny cargo deny --locked check licenses bans sources

echo "== cargo test"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked 2>&1 | tee "$log"

echo "== fuzz: every cargo-fuzz target for ${FUZZ_SECONDS:-15} s (spec/fuzz/smoke.sh)"
with_cargo_tool fuzz spec/fuzz/smoke.sh

# One closing line for the whole workspace (cargo's own last line is the last crate's doc-tests).
awk '/^test result:/ { passed += $4; failed += $6; ignored += $8 }
     END { printf "tests: %d passed, %d failed, %d skipped\n", passed, failed, ignored }' "$log"
