"""Composes the retail demo's camera frames from real photos.

Usage: make_frames.py SOURCES [OUT]

SOURCES is a directory in which the Debian packages `darknet` and
`opencv-doc` were unpacked (`dpkg -x PACKAGE.deb SOURCES`); the coffee cup
comes from the installed scikit-image. OUT defaults to the directory of this
script. Every source photo is checked against its SHA-256 first, and the
output depends only on the sources and the pinned versions in
requirements.txt: running it twice gives the same bytes.

Three cameras, 640x480 JPEG frames named `{camera}-{event time in ms}.jpg`:
- stockroom: a person walks in from the right and stays (after-hours `enter`);
- exit: a person standing inside the exit area; played with `loop: true`
  so that the visit lasts long enough for a `dwell` rule;
- checkout: items put down one after another in the bagging area of a
  counter; scenario.json says when and whether the POS scanned each.
"""

import hashlib
import json
import math
import re
import sys
from pathlib import Path

import numpy as np
import skimage
import skimage.data
from PIL import Image, ImageDraw, ImageFilter

FPS = 5
SIZE = (640, 480)
QUALITY = 60
# Event time of each camera's first frame, ms since the epoch; frame n is
# n / FPS seconds later and carries that time in its name
# (`{camera}-{ms}.jpg`, read by the `frames` source with `timestamps: name`).
# 2026-11-20 is a Friday: the stockroom scene is at 23:30 local time (UTC+1),
# after hours; the others are in the afternoon.
START_MS = {
    "stockroom": 1_795_213_800_000,  # 2026-11-20T22:30:00Z
    "exit": 1_795_186_800_000,  # 2026-11-20T15:00:00Z
    "checkout": 1_795_187_400_000,  # 2026-11-20T15:10:00Z
}

DARKNET = "usr/share/darknet/data"
OPENCV_EXAMPLES = "usr/share/doc/opencv-doc/examples"
OPENCV = f"{OPENCV_EXAMPLES}/data"
SOURCES = {
    "person": (f"{DARKNET}/person.jpg", "cdcbab947e46110fc2b77784ac54ddbbab2640f1e44cb5e91fc8984a9793a7d1"),
    "box_in_scene": (f"{OPENCV}/box_in_scene.png", "8b0225ff76244a42bd1400c0904f8b7afea7d97b7d8115495e42e98ad347bd51"),
    "building": (f"{OPENCV}/building.jpg", "742a1baad62ac82e91e718e77eedf7e85c2eddc4badfb8c87c6cbc86c45a8b07"),
    "stuff": (f"{OPENCV}/stuff.jpg", "21cd00afbdd0727f445dd91c0a09633e6345ed5b05a3d2355453a1f3c314c6c5"),
    "plant": (f"{OPENCV_EXAMPLES}/alphamat/input_images/plant.jpg", "9928b44eee0d1d7ab2ffd9d6d80bbbff962d6e85c7786de2cd3c97fe72229186"),
}

# The woman in person.jpg (annotated box 190 98 275 375, see
# plugins/vision/testdata/README.md) with a margin.
PERSON_BOX = (190, 98, 275, 375)
PERSON_CROP = (176, 86, 290, 386)


def person_box(sprite_box):
    """Where the annotated person is in a frame, from the pasted crop's box."""
    x1, y1, x2, y2 = sprite_box
    sx = (x2 - x1) / (PERSON_CROP[2] - PERSON_CROP[0])
    sy = (y2 - y1) / (PERSON_CROP[3] - PERSON_CROP[1])
    return [
        round(x1 + (PERSON_BOX[0] - PERSON_CROP[0]) * sx),
        round(y1 + (PERSON_BOX[1] - PERSON_CROP[1]) * sy),
        round(x1 + (PERSON_BOX[2] - PERSON_CROP[0]) * sx),
        round(y1 + (PERSON_BOX[3] - PERSON_CROP[1]) * sy),
    ]


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_sources(root):
    images = {}
    for name, (rel, digest) in SOURCES.items():
        path = Path(root) / rel
        got = sha256(path)
        if got != digest:
            sys.exit(f"{path}: SHA-256 {got}, expected {digest}")
        images[name] = Image.open(path).convert("RGB")
    images["coffee"] = Image.fromarray(skimage.data.coffee()).convert("RGB")
    return images


def feathered_mask(size, inset, blur):
    """An opaque ellipse inside `size`, soft at its rim, zero on the border."""
    w, h = size
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).ellipse((inset[0], inset[1], w - inset[0], h - inset[1]), fill=255)
    mask = mask.filter(ImageFilter.GaussianBlur(blur))
    ramp = np.ones((h, w), np.float32)
    edge = max(1, int(blur))
    for i in range(edge):
        f = i / edge
        ramp[i, :] *= f
        ramp[h - 1 - i, :] *= f
        ramp[:, i] *= f
        ramp[:, w - 1 - i] *= f
    return Image.fromarray((np.asarray(mask, np.float32) * ramp).astype(np.uint8))


def cutout(img, box, height, mask_inset, blur):
    """`img` cropped to `box`, scaled to `height` pixels, with a soft mask."""
    part = img.crop(box)
    w = round(part.width * height / part.height)
    part = part.resize((w, height), Image.LANCZOS)
    inset = (round(w * mask_inset[0]), round(height * mask_inset[1]))
    return part, feathered_mask(part.size, inset, blur)


def fit(img, size=SIZE):
    """Centre-crop `img` to the aspect ratio of `size`, then resize."""
    w, h = img.size
    want = size[0] / size[1]
    if w / h > want:
        cw = round(h * want)
        img = img.crop(((w - cw) // 2, 0, (w - cw) // 2 + cw, h))
    else:
        ch = round(w / want)
        img = img.crop((0, (h - ch) // 2, w, (h - ch) // 2 + ch))
    return img.resize(size, Image.LANCZOS)


def paste(frame, sprite, mask, anchor):
    """Pastes `sprite` with its bottom centre at `anchor` (x, y)."""
    x = round(anchor[0] - sprite.width / 2)
    y = round(anchor[1] - sprite.height)
    frame.paste(sprite, (x, y), mask)
    return (x, y, x + sprite.width, y + sprite.height)


def frame_ms(camera, n):
    return START_MS[camera] + n * 1000 // FPS


def save(frames, out, camera):
    d = Path(out) / camera
    d.mkdir(parents=True, exist_ok=True)
    for old in d.glob("*.jpg"):
        old.unlink()
    for i, f in enumerate(frames):
        f.save(d / f"{camera}-{frame_ms(camera, i)}.jpg", "JPEG", quality=QUALITY, optimize=True)


STOCKROOM_FRAMES = 30
# The person comes into view at WALK_FROM and stands still from STAND_FROM.
WALK_FROM, STAND_FROM = 5, 19


def stockroom(src):
    """After hours, grey night picture: a person walks in from the right and
    stays among the boxes."""
    bg = fit(src["box_in_scene"]).convert("L").convert("RGB")
    person, mask = cutout(src["person"].convert("L").convert("RGB"), PERSON_CROP, 330, (-0.12, 0.0), 7)
    frames, boxes = [], []
    stand_x, floor = 420, 460
    for i in range(STOCKROOM_FRAMES):
        f = bg.copy()
        if i < WALK_FROM:
            boxes.append(None)
        else:
            t = min(1.0, (i - WALK_FROM) / (STAND_FROM - WALK_FROM))
            x = 640 + person.width / 2 - t * (640 + person.width / 2 - stand_x)
            # A little sway once standing.
            x += 0 if t < 1 else 3 * math.sin(i * 0.7)
            boxes.append(paste(f, person, mask, (x, floor)))
        frames.append(f)
    return frames, boxes


def exit_area(src):
    """A person standing in the exit area, swaying slightly. 20 frames that
    start and end at the same place, so looping them is one long visit."""
    bg = fit(src["building"])
    person, mask = cutout(src["person"], PERSON_CROP, 300, (-0.12, 0.0), 6)
    frames, boxes = [], []
    for i in range(20):
        f = bg.copy()
        phase = 2 * math.pi * i / 20
        anchor = (320 + 6 * math.sin(phase), 440 + 2 * math.sin(2 * phase))
        boxes.append(paste(f, person, mask, anchor))
        frames.append(f)
    return frames, boxes


# Checkout counter (camera `checkout`, lane 1), seen from above: the scanner
# is on the left, the bagging area on the right. Items are put down in the
# bagging area one after another and stay there.
BAGGING_AREA = [[380, 150], [640, 150], [640, 480], [380, 480]]
ITEMS = [
    # name, COCO class, source, crop box, height, put down at frame,
    # centre-bottom where it stands, scanned by the POS
    ("coffee cup", "cup", "coffee", (120, 0, 470, 390), 120, 5, (470, 300), True),
    ("potted plant", "vase", "plant", (60, 170, 190, 300), 120, 18, (450, 460), True),
    ("potted plant", "vase", "plant", (60, 170, 190, 300), 120, 31, (575, 450), False),
]
# Seconds between a scan and putting the item down.
SCAN_LEAD = 1.0
CHECKOUT_FRAMES = 45


def inside(poly, p):
    """Even-odd rule, as the `zones` transform tests a point."""
    x, y = p
    hit = False
    for (x1, y1), (x2, y2) in zip(poly, poly[1:] + poly[:1]):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            hit = not hit
    return hit


def checkout(src):
    bg = fit(src["stuff"])
    sprites = [cutout(src[s], crop, h, (0.0, 0.0), 8) for _, _, s, crop, h, *_ in ITEMS]
    frames, boxes = [], [None] * len(ITEMS)
    for i in range(CHECKOUT_FRAMES):
        f = bg.copy()
        for k, (_, _, _, _, _, put, anchor, _) in enumerate(ITEMS):
            if i >= put:
                sprite, mask = sprites[k]
                boxes[k] = paste(f, sprite, mask, anchor)
        frames.append(f)
    for k, box in enumerate(boxes):
        centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
        assert inside(BAGGING_AREA, centre), f"item {k} is outside the bagging area"
    return frames, boxes


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    src = load_sources(sys.argv[1])
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(__file__).parent
    s_frames, s_boxes = stockroom(src)
    e_frames, e_boxes = exit_area(src)
    c_frames, c_boxes = checkout(src)
    save(s_frames, out, "stockroom")
    save(e_frames, out, "exit")
    save(c_frames, out, "checkout")
    def visible(b):
        return 0.0 if b is None else (min(SIZE[0], b[2]) - b[0]) / (b[2] - b[0])

    half_in = next(i for i, b in enumerate(s_boxes) if visible(b) >= 0.5)
    scenario = {
        "fps": FPS,
        "frame_size": list(SIZE),
        "files": "{camera}/{camera}-{event time, ms since the epoch}.jpg; "
        "frame n is n / fps seconds after the camera's start_ms",
        "stockroom": {
            "camera": "stockroom",
            "start_ms": START_MS["stockroom"],
            "frames": len(s_frames),
            "person_half_in_view_from_frame": half_in,
            "person_standing_from_frame": STAND_FROM,
            "person_box_last_frame": person_box(s_boxes[-1]),
        },
        "exit": {
            "camera": "exit",
            "start_ms": START_MS["exit"],
            "frames": len(e_frames),
            "loop": True,
            "person_box_first_frame": person_box(e_boxes[0]),
            "exit_area": [[160, 200], [480, 200], [480, 480], [160, 480]],
        },
        "checkout": {
            "camera": "checkout",
            "start_ms": START_MS["checkout"],
            "lane": 1,
            "frames": len(c_frames),
            "bagging_area": BAGGING_AREA,
            "items": [
                {
                    "item_id": k + 1,
                    "item": name,
                    "class": cls,
                    "enters_bagging_area_frame": put,
                    "enters_bagging_area_offset_s": put / FPS,
                    "enters_bagging_area_ms": frame_ms("checkout", put),
                    "box": c_boxes[k],
                    "scanned": scanned,
                    "scan_offset_s": round(put / FPS - SCAN_LEAD, 3) if scanned else None,
                    "scan_ms": frame_ms("checkout", put) - round(SCAN_LEAD * 1000)
                    if scanned
                    else None,
                }
                for k, (name, cls, _, _, _, put, _, scanned) in enumerate(ITEMS)
            ],
        },
        "sources": {
            name: {"path": rel, "sha256": digest} for name, (rel, digest) in SOURCES.items()
        }
        | {"coffee": {"path": f"scikit-image {skimage.__version__} skimage/data/coffee.png"}},
    }
    text = json.dumps(scenario, indent=2)
    # Number lists (boxes, points) on one line.
    text = re.sub(r"\[\s+([-0-9.,\s]+?)\s+\]", lambda m: "[" + ", ".join(m.group(1).split(",\n")).replace(" ", "").replace(",", ", ") + "]", text)
    (out / "scenario.json").write_text(text + "\n")


if __name__ == "__main__":
    main()
