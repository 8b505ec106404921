#!/usr/bin/env bash
# Builds cairn_verify.wasm, the browser's verifier (package cairn-ui-wasm), for
# wasm32-unknown-unknown, and writes it to ui/assets/cairn_verify.wasm (or to the path given as
# the first argument). Run it after changing ui/wasm or cairn-spec, and commit the result:
# cairn-ui embeds the committed file, and its test tests/wasm_is_fresh.rs runs this script and
# fails unless the committed file is byte-identical to a fresh build.
#
# The build is reproducible from the same source and toolchain: profile `wasm` of the workspace
# (opt-level "s", fat LTO, one codegen unit, no debug info, symbols stripped) and the paths of
# the checkout and of Cargo's registry remapped to fixed names, so that where the source lies
# leaves no trace in the module. Honours CARGO_TARGET_DIR.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:-$root/ui/assets/cairn_verify.wasm}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
cargo_home="$(cd "$cargo_home" && pwd)"

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    rustup target add wasm32-unknown-unknown
fi

# With --target, these flags apply to the wasm crates only, not to build scripts or proc macros.
CARGO_ENCODED_RUSTFLAGS="--remap-path-prefix=$root=/cairn"$'\x1f'"--remap-path-prefix=$cargo_home=/cargo"
export CARGO_ENCODED_RUSTFLAGS
unset RUSTFLAGS
cargo build --locked --quiet -p cairn-ui-wasm --target wasm32-unknown-unknown --profile wasm \
    --manifest-path "$root/Cargo.toml" --target-dir "$target_dir"
cp "$target_dir/wasm32-unknown-unknown/wasm/cairn_ui_wasm.wasm" "$out"
echo "$out: $(wc -c <"$out") bytes"
