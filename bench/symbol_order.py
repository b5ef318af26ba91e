#!/usr/bin/env python3
"""Regenerates gateway/cli/symbol-order.txt: the functions a running pipeline
executes, which the release link places next to each other.

Why: the kernel maps a binary's pages around every page fault (64 KiB at a
time). Scattered over 70+ MB of text, the few MB of code a gateway runs would
make most of the binary resident; clustered, they take a few MB. See
gateway/cli/build.rs.

How: runs the release binary under `valgrind --tool=callgrind` on
pipelines/factory-telemetry.yaml against a private Mosquitto, feeds it a few
thousand messages so windows close and rows flow to every sink, stops it with
SIGTERM and lists every function of the binary that ran (mangled names).
Re-run after upgrading dependencies, then rebuild the release binary; names
that no longer exist are ignored by the linker.

Usage: python3 bench/symbol_order.py [--bin target/release/sluice] [--messages 3000]
"""
import argparse
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from pipeline_throughput import free_port, wait_port  # noqa: E402  (same directory)


def publish(port, n):
    base = 1_767_225_600_000
    lines = []
    for k in range(n):
        d = k % 20
        # A few hot readings so the filter passes rows to the MQTT sink.
        vib = 3.5 if k % 97 == 0 else 1.0 + (k % 50) / 100
        lines.append(json.dumps({"device": f"dev-{d:02}", "ts": base + k * 10, "vibration_rms": vib,
                                 "temperature": 60 + (k % 20) / 10, "current": 4.2}))
    lines.append("{not json")
    subprocess.run(["mosquitto_pub", "-p", str(port), "-q", "1", "-t", "factory/line1/dev-00/telemetry", "-l"],
                   input="\n".join(lines) + "\n", text=True, check=True)


def executed_functions(profile, binary):
    names = set()
    obj = None
    with open(profile) as f:
        for line in f:
            if line.startswith("ob="):
                obj = line[3:].strip()
            elif line.startswith("fn=") and obj and os.path.exists(obj) and os.path.samefile(obj, binary):
                name = line[3:].strip()
                if not name.startswith("0x") and not name.startswith("("):
                    names.add(name)
    return sorted(names)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=None)
    ap.add_argument("--messages", type=int, default=3000)
    ap.add_argument("--out", default=os.path.join(ROOT, "gateway", "cli", "symbol-order.txt"))
    args = ap.parse_args()
    binary = os.path.abspath(args.bin or os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "sluice"))
    for tool in ("valgrind", "mosquitto", "mosquitto_pub"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found")
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        conf = os.path.join(tmp, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write(f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n")
        broker = subprocess.Popen(["mosquitto", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(port)
            admin = free_port()
            env = dict(os.environ, SLUICE_MQTT_URL=f"mqtt://127.0.0.1:{port}",
                       SLUICE_UPLINK_URL=f"mqtt://127.0.0.1:{port}", SLUICE_DATA_DIR=tmp, RUST_LOG="warn")
            gw = subprocess.Popen(
                ["valgrind", "--tool=callgrind", "--demangle=no", "--dump-line=no", "--compress-strings=no",
                 f"--callgrind-out-file={tmp}/callgrind.out", binary, "run",
                 os.path.join(ROOT, "pipelines", "factory-telemetry.yaml"), "--admin", f"127.0.0.1:{admin}"],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_port(admin, timeout=120)
            publish(port, args.messages)
            # Under callgrind everything is ~50x slower: give windows time to close.
            time.sleep(30)
            subprocess.run(["curl", "-s", f"http://127.0.0.1:{admin}/metrics"], stdout=subprocess.DEVNULL)
            gw.send_signal(signal.SIGTERM)
            gw.wait(timeout=300)
        finally:
            broker.kill()
            broker.wait()
        profiles = glob.glob(os.path.join(tmp, "callgrind.out*"))
        names = sorted({n for p in profiles for n in executed_functions(p, binary)})
    with open(args.out, "w") as f:
        f.write("\n".join(names) + "\n")
    print(f"{len(names)} functions written to {args.out}")


if __name__ == "__main__":
    main()
