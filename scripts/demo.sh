#!/usr/bin/env bash
# Builds Sluice and runs the demo: an embedded MQTT broker, a factory sensor
# simulator with injected faults, three store cameras played from the sample
# frames, a till simulator, and the factory and retail pipelines with the
# real models (anomaly, detector, language model), printing summaries,
# alerts and digests as they come. Ctrl-C stops it cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice/target}"
exec cargo run --locked -p sluice -- demo "$@"
