#!/usr/bin/env bash
# The whole test suite: unit, component, config-fixture and end-to-end tests
# against a real Mosquitto on loopback. Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

# Keep build artefacts between runs on the same machine: a cold build of the
# query engine takes most of the time.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice/target}"
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

cargo build --workspace --all-targets --locked
cargo test --workspace --locked --no-fail-fast -- --test-threads="${SLUICE_TEST_THREADS:-2}"
