"""Reference NanoDet decoder on onnxruntime, used to check a converted model.

Usage: check_onnx.py MODEL.onnx IMAGE.jpg
Prints the detections (score, COCO class id, box in image pixels) and exits
non-zero unless a person (class 0) is found. bench/detect/ imports `detect`.
"""

import sys

import numpy as np
import onnxruntime as ort
from PIL import Image

SIZE = 416
REG_MAX = 10


def preprocess(path):
    """RGB, plain resize to 416x416 (bilinear), scaled to 0..1, NCHW."""
    im = Image.open(path).convert("RGB")
    w, h = im.size
    x = np.asarray(im.resize((SIZE, SIZE), Image.BILINEAR), dtype=np.float32) / 255.0
    return x.transpose(2, 0, 1)[None], w, h


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def decode(outputs, w, h, threshold=0.35, nms_iou=0.5):
    """GFL heads: per stride, sigmoid class scores [n, 80] and box
    distributions [n, 4 * (REG_MAX + 1)]; a box side is the expectation of its
    distribution times the stride, measured from the cell centre."""
    by_cells = {}
    for o in outputs:
        by_cells.setdefault(o.shape[1], {})[o.shape[2]] = o[0]
    dets = []
    for n, heads in by_cells.items():
        g = int(round(n**0.5))
        stride = SIZE / g
        cls = heads[80]
        reg = heads[4 * (REG_MAX + 1)].reshape(n, 4, REG_MAX + 1)
        e = np.exp(reg - reg.max(2, keepdims=True))
        dist = (e / e.sum(2, keepdims=True) * np.arange(REG_MAX + 1)).sum(2) * stride
        for i in np.nonzero(cls.max(1) >= threshold)[0]:
            c = int(cls[i].argmax())
            cx, cy = (i % g + 0.5) * stride, (i // g + 0.5) * stride
            box = [
                (cx - dist[i, 0]) * w / SIZE,
                (cy - dist[i, 1]) * h / SIZE,
                (cx + dist[i, 2]) * w / SIZE,
                (cy + dist[i, 3]) * h / SIZE,
            ]
            dets.append((float(cls[i, c]), c, box))
    dets.sort(key=lambda d: -d[0])
    keep = []
    for d in dets:
        if all(d[1] != k[1] or iou(d[2], k[2]) < nms_iou for k in keep):
            keep.append(d)
    return keep


def detect(session, path):
    x, w, h = preprocess(path)
    outputs = session.run(None, {session.get_inputs()[0].name: x})
    return decode(outputs, w, h)


def main():
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(sys.argv[1], opts, providers=["CPUExecutionProvider"])
    dets = detect(session, sys.argv[2])
    for score, cls, box in dets:
        print(f"{score:.3f} class={cls} box={[round(v) for v in box]}")
    if not any(cls == 0 for _, cls, _ in dets):
        sys.exit("no person found: the conversion is broken")


if __name__ == "__main__":
    main()
