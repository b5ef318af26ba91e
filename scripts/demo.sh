#!/usr/bin/env bash
# Builds Sluice and runs the factory demo: an embedded MQTT broker, a sensor
# simulator with injected faults and the reference pipeline, printing window
# summaries and alerts as they come. Ctrl-C stops it cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice/target}"
exec cargo run --locked -p sluice -- demo "$@"
