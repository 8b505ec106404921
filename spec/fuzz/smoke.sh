#!/usr/bin/env bash
# A short run of every cargo-fuzz target, as CI runs it (tests/run.sh): each target starts
# from its corpus (spec/fuzz/corpus/<target>, kept between runs on one machine) and the seeds
# committed beside it (spec/fuzz/seeds/<target>, written by examples/seeds.rs), and fuzzes for
# a few seconds. A panic (a failed assertion, an arithmetic overflow: debug assertions are on),
# an input slower than the timeout or more memory than the limit fails the run and names the
# input that did it.
#
# Built without a sanitizer: cairn-spec has no unsafe code outside hash::lanes (whose own tests
# compare it with the portable SHA-256), so what a smoke run can find is a panic, which needs
# none, while AddressSanitizer would slow the build and every run (and need nightly). A longer
# run with ASan is in README.md.
#
#   spec/fuzz/smoke.sh [--seconds N] [--jobs N] [target...]
#
# --seconds: how long each target runs (default: $FUZZ_SECONDS, else 15).
# --jobs: how many targets run at once (default: $FUZZ_JOBS, else the number of cores, at most 4).
# Targets: all of them (`cargo fuzz list`) unless some are named.
#
# Needs cargo-fuzz. Builds with the default toolchain: without a sanitizer, cargo-fuzz passes
# rustc only stable flags (coverage instrumentation), so no nightly is needed.
# FUZZ_TOOLCHAIN=nightly builds with another rustup toolchain.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"

seconds="${FUZZ_SECONDS:-15}"
cores="$(nproc 2>/dev/null || echo 1)"
jobs="${FUZZ_JOBS:-$((cores < 4 ? cores : 4))}"
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds="${2:?--seconds needs a value}"; shift 2 ;;
        --jobs) jobs="${2:?--jobs needs a value}"; shift 2 ;;
        -h|--help) sed -n '2,22p' "$here/smoke.sh" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "smoke.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done
case "$seconds$jobs" in
    *[!0-9]*) echo "smoke.sh: --seconds and --jobs take whole numbers" >&2; exit 2 ;;
esac
if [ "$seconds" -lt 1 ] || [ "$jobs" -lt 1 ]; then
    echo "smoke.sh: --seconds and --jobs must be at least 1" >&2
    exit 2
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "smoke.sh: cargo-fuzz is not installed (cargo install --locked cargo-fuzz)" >&2
    exit 1
fi
toolchain=()
if [ -n "${FUZZ_TOOLCHAIN:-}" ]; then
    toolchain=("+$FUZZ_TOOLCHAIN")
fi
echo "fuzz toolchain: $(rustc "${toolchain[@]}" --version)"

if [ "${#targets[@]}" -eq 0 ]; then
    mapfile -t targets < <(cargo "${toolchain[@]}" fuzz list)
fi

# One build of every target (the runs below then only start them).
build_start=$SECONDS
cargo "${toolchain[@]}" fuzz build -O -a -s none
echo "fuzz build: $((SECONDS - build_start)) s"

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT

# Runs one target; its output goes to $logs/<target>.log, its verdict to $logs/<target>.status.
run_target() {
    local target="$1" seeds=()
    mkdir -p "corpus/$target" "artifacts/$target"
    [ -d "seeds/$target" ] && seeds+=("seeds/$target")
    # The RFC 3161 tokens OpenSSL made, the best seeds for the response verifier.
    [ "$target" = timestamp_response ] && seeds+=(../tests/tsa/fixtures)
    # -timeout: no input may take 30 s (a bounded parser answers in milliseconds);
    # -rss_limit_mb: the limits on every length keep memory far below this.
    if cargo "${toolchain[@]}" fuzz run -O -a -s none "$target" "corpus/$target" "${seeds[@]}" -- \
        -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$logs/$target.log" 2>&1; then
        echo ok >"$logs/$target.status"
    else
        echo failed >"$logs/$target.status"
    fi
}

run_start=$SECONDS
running=0
for target in "${targets[@]}"; do
    run_target "$target" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n || true
        running=$((running - 1))
    fi
done
wait

failed=0
for target in "${targets[@]}"; do
    status="$(cat "$logs/$target.status" 2>/dev/null || echo failed)"
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$target.log" | tail -1)"
    if [ "$status" = ok ]; then
        echo "fuzz $target: ok (${runs:-?} runs in ${seconds} s)"
        continue
    fi
    failed=$((failed + 1))
    echo "fuzz $target: FAILED; its output:"
    sed 's/^/    /' "$logs/$target.log"
    # libFuzzer writes the failing input under the artifact prefix cargo-fuzz gives it.
    reproducer="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$logs/$target.log" | tail -1)"
    if [ -n "$reproducer" ]; then
        case "$reproducer" in /*) ;; *) reproducer="$PWD/${reproducer#./}" ;; esac
        echo "fuzz $target: reproducer: $reproducer"
        echo "fuzz $target: reproduce with: (cd spec/fuzz && cargo ${toolchain[*]:+${toolchain[*]} }fuzz run -O -a -s none $target $reproducer)"
    fi
done
echo "fuzz runs: ${#targets[@]} targets, ${seconds} s each, ${jobs} at once, $((SECONDS - run_start)) s"
if [ "$failed" -gt 0 ]; then
    echo "fuzz: $failed of ${#targets[@]} targets failed" >&2
    exit 1
fi
