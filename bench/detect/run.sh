#!/usr/bin/env bash
# Detector benchmark: tract (the gateway) and onnxruntime (Python, one
# thread) on the same ONNX file and the same photos, pinned to two cores.
#
# Usage: bench/detect/run.sh [FRAMES]      (default 200)
# Needs: cargo, python3 (3.11). Uses $HOME/.cache/sluice/ for the build and
# the virtualenv.
set -euo pipefail

frames="${1:-200}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
cache="${HOME}/.cache/sluice"
venv="$cache/venv-bench-detect"
cores="0,1"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet -r "$root/bench/detect/requirements.txt"
fi

cd "$root"
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}" \
  cargo bench -p sluice-plugin-vision --bench detect --no-run
echo "== tract (sluice-plugin-vision), cores $cores"
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}" \
  taskset -c "$cores" cargo bench -q -p sluice-plugin-vision --bench detect -- "$frames" | tee "$out/tract.txt"
echo "== onnxruntime $("$venv/bin/python" -c 'import onnxruntime; print(onnxruntime.__version__)'), 1 thread, cores $cores"
taskset -c "$cores" "$venv/bin/python" bench/detect/ort_bench.py "$frames" | tee "$out/ort.txt"

p99() { grep "^$1:" "$2" | sed 's/.*p99_ms=\([0-9.]*\).*/\1/'; }
tract_p99="$(p99 tract_frame "$out/tract.txt")"
ort_p99="$(p99 ort_frame "$out/ort.txt")"
tract_model="$(p99 tract_model "$out/tract.txt")"
ort_model="$(p99 ort_model "$out/ort.txt")"
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
echo "== tract/onnxruntime p99: per frame $(ratio "$tract_p99" "$ort_p99"), model only $(ratio "$tract_model" "$ort_model")"
