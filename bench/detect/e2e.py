#!/usr/bin/env python3
"""End-to-end camera throughput beside a sensor pipeline.

Runs the gateway binary with two pipelines on a private Mosquitto:
- a camera pipeline: a `frames` source playing examples/retail/checkout in a
  loop faster than the target (default 25 frames/s offered, drop_oldest
  queue of 2), `detect` (NanoDet-g 416, `workers` as given), `track`, `zones`
  and a file sink;
- the factory telemetry pipeline (pipelines/factory-telemetry.yaml) fed by
  `sluice simulate` (20 devices x 10 msg/s).
After a warm-up it reads /metrics twice, DURATION seconds apart, and reports
the frames the detector finished per second (its received rows: one per
frame), the frames dropped by the queue, the sensor rows the SQL window
took, and the gateway's CPU time and peak RSS.

Usage: python3 bench/detect/e2e.py [--bin PATH] [--workers 2] [--fps 25]
                                   [--duration 60] [--warmup 15] [--size 416]
Needs mosquitto and a built binary (default: the release build under
$CARGO_TARGET_DIR or $HOME/.cache/sluice/target). --size N plays the frames
scaled to N x N (as a 416x416 camera would deliver them), which needs Pillow
(bench/detect/requirements.txt); without it the 640x480 files are played.
"""
import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metrics(admin):
    with urllib.request.urlopen(f"http://{admin}/metrics", timeout=5) as r:
        return r.read().decode()


def metric_sum(text, name, **labels):
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def proc_stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    with open(f"/proc/{pid}/status") as f:
        hwm = int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1)) / 1024
    return cpu, hwm


def camera_pipeline(out, frames, fps, workers, url):
    return f"""
sources:
  cam:
    type: frames
    camera: checkout
    path: {frames}
    fps: {fps}
    loop: true
    queue: 2
transforms:
  detections:
    type: detect
    inputs: [cam]
    buffer: {{ capacity: 2 }}
    model: {ROOT}/models/detect/nanodet-g-416.onnx
    format: nanodet
    classes: [person, cup, vase]
    score_threshold: 0.4
    workers: {workers}
  tracked:
    type: track
    inputs: [detections]
  events:
    type: zones
    inputs: [tracked]
    zones:
      - {{ name: bagging_area, camera: checkout, polygon: [[380, 150], [640, 150], [640, 480], [380, 480]], events: [enter] }}
sinks:
  events_file:
    type: file
    inputs: [events]
    path: {out}/events.jsonl
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(os.path.expanduser("~"), ".cache", "sluice", "target"))
    ap.add_argument("--bin", default=os.path.join(target, "release", "sluice"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--fps", type=float, default=25.0)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--warmup", type=float, default=15.0)
    ap.add_argument("--size", type=int, help="scale the frames to SIZE x SIZE first")
    a = ap.parse_args()
    if not os.path.isfile(a.bin):
        sys.exit(f"{a.bin} not found: cargo build --release -p sluice")
    if not shutil.which("mosquitto"):
        sys.exit("mosquitto is required (apt-get install mosquitto)")

    with tempfile.TemporaryDirectory() as tmp:
        port, admin = free_port(), f"127.0.0.1:{free_port()}"
        conf = os.path.join(tmp, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        broker = subprocess.Popen(["mosquitto", "-c", conf], stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        url = f"mqtt://127.0.0.1:{port}"
        frames = os.path.join(ROOT, "examples", "retail", "checkout")
        if a.size:
            from PIL import Image

            scaled = os.path.join(tmp, "frames")
            os.makedirs(scaled)
            for name in sorted(os.listdir(frames)):
                with Image.open(os.path.join(frames, name)) as img:
                    img.resize((a.size, a.size), Image.BILINEAR).save(os.path.join(scaled, name), quality=85)
            frames = scaled
        cam = os.path.join(tmp, "camera.yaml")
        with open(cam, "w") as f:
            f.write(camera_pipeline(tmp, frames, a.fps, a.workers, url))
        env = dict(os.environ, SLUICE_MQTT_URL=url, SLUICE_UPLINK_URL=url, SLUICE_DATA_DIR=tmp)
        gw = subprocess.Popen([a.bin, "run", cam, os.path.join(ROOT, "pipelines", "factory-telemetry.yaml"),
                               "--admin", admin], env=env, stderr=open(os.path.join(tmp, "gw.log"), "w"))
        sim = subprocess.Popen([a.bin, "simulate", "--url", url, "--devices", "20", "--rate", "10"],
                               stderr=subprocess.DEVNULL)
        try:
            time.sleep(a.warmup)
            m0, t0, (c0, _) = metrics(admin), time.monotonic(), proc_stat(gw.pid)
            time.sleep(a.duration)
            m1, t1, (c1, hwm) = metrics(admin), time.monotonic(), proc_stat(gw.pid)
        finally:
            sim.terminate()
            gw.terminate()
            gw.wait(timeout=30)
            sim.wait(timeout=10)
            broker.terminate()
            broker.wait(timeout=10)
        dt = t1 - t0

        def rate(name, **labels):
            return (metric_sum(m1, name, **labels) - metric_sum(m0, name, **labels)) / dt

        detected = rate("sluice_component_received_rows_total", component_id="detections")
        offered = rate("sluice_component_sent_rows_total", component_id="cam")
        dropped = rate("sluice_component_discarded_rows_total", component_id="cam")
        sensor = rate("sluice_component_received_rows_total", component_id="per_device")
        size = f"{a.size}x{a.size}" if a.size else "640x480"
        print(f"binary {a.bin}, workers {a.workers}, {size} frames offered at {a.fps:g}/s, "
              f"{dt:.0f} s measured after {a.warmup:g} s warm-up")
        print(f"frames through detect: {detected:.1f}/s (source emitted {offered:.1f}/s, "
              f"queue drops {dropped:.1f}/s)")
        print(f"sensor rows into the window SQL: {sensor:.0f}/s")
        print(f"gateway CPU: {(c1 - c0) / dt:.2f} cores; peak RSS {hwm:.0f} MiB")


if __name__ == "__main__":
    main()
