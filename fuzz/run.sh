#!/usr/bin/env bash
# Builds every fuzz target and runs each for SECONDS (default 30), starting
# from the committed corpus. Exits non-zero when a target finds a crash, a
# hang or an out-of-memory; the input is kept under fuzz/artifacts/<target>/.
# Without a nightly toolchain or cargo-fuzz it says so and exits 0.
set -euo pipefail
cd "$(dirname "$0")"

seconds="${1:-30}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
    echo "usage: fuzz/run.sh SECONDS" >&2
    exit 2
fi

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "fuzz: SKIPPED: no nightly toolchain (rustup toolchain install nightly)"
    exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz: SKIPPED: cargo-fuzz is not installed (cargo install cargo-fuzz --locked)"
    exit 0
fi

export CARGO_TARGET_DIR="${SLUICE_FUZZ_TARGET_DIR:-$HOME/.cache/sluice/fuzz-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# The outbox target opens a SQLite file per input: on tmpfs its fsyncs cost
# nothing, ten times the executions of a disk.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
    export TMPDIR=/dev/shm
fi

targets=(pipeline_loader mqtt_json mjpeg_parts outbox_open state_file)
# No sanitizer: the workspace forbids unsafe code, and on two cores twice the
# executions find more than ASan would add. Overflow checks and debug
# assertions stay on.
flags=(--sanitizer none)

cargo +nightly fuzz build "${flags[@]}"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
failed=()
for t in "${targets[@]}"; do
    echo "fuzz: $t for ${seconds}s"
    mkdir -p "$scratch/$t" "artifacts/$t"
    # New inputs go to the scratch directory; the committed corpus is read only.
    if ! cargo +nightly fuzz run "${flags[@]}" "$t" "$scratch/$t" "corpus/$t" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=1024 \
        -timeout=10 -print_final_stats=1 -artifact_prefix="artifacts/$t/" \
        2>"$scratch/$t.log"; then
        tail -n 40 "$scratch/$t.log"
        failed+=("$t")
    fi
    grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units)' "$scratch/$t.log" || true
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz: FINDINGS in ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${seconds}s each, no findings"
