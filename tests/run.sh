#!/usr/bin/env bash
# Cairn's whole test suite: formatting, lints, then every test of every crate.
# This is the command README.md gives, and the one .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --workspace --locked
