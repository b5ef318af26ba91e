#!/usr/bin/env python3
"""Sustained throughput, CPU cost and peak RSS of the reference pipeline.

Method (same for both subscribers, so the publisher's speed does not matter):
  1. start a private Mosquitto on a free loopback port;
  2. register a persistent QoS 1 session for the subscriber, disconnect;
  3. queue N messages from 20 simulated devices on the broker;
  4. start the subscriber and time how long it takes to drain the backlog.
The bare subscriber is `mosquitto_sub -c -q 1 -C N`. The gateway runs
pipelines/factory-telemetry.yaml (MQTT in, 10 s windows per device, filter,
MQTT and file out) with a persistent session; it is done when
sluice_component_received_rows_total reaches N. CPU seconds come from
/proc/<pid>/stat (user + system), peak RSS from VmHWM.

Usage: python3 bench/pipeline_throughput.py [--messages 300000] [--bin target/release/sluice]
"""
import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

DEVICES = 20
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"broker on {port} did not come up")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        m = re.search(r"VmHWM:\s+(\d+) kB", f.read())
    return int(m.group(1)) / 1024


def queue_backlog(port, topic_prefix, n, tmp):
    """Publishes n messages (n / DEVICES per device) at QoS 1."""
    per = n // DEVICES
    base = 1_767_225_600_000
    procs = []
    for d in range(DEVICES):
        path = os.path.join(tmp, f"dev{d}.txt")
        with open(path, "w") as f:
            for k in range(per):
                f.write(json.dumps({
                    "device": f"dev-{d:02}", "ts": base + k * 10,
                    "vibration_rms": 1.0 + (k % 50) / 100, "temperature": 60 + (k % 20) / 10,
                    "current": 4.2,
                }, separators=(",", ":")) + "\n")
        procs.append(subprocess.Popen(
            ["mosquitto_pub", "-p", str(port), "-q", "1", "-t", f"{topic_prefix}/dev-{d:02}/telemetry",
             "-l"], stdin=open(path)))
    for p in procs:
        if p.wait() != 0:
            sys.exit("mosquitto_pub failed")
    return per * DEVICES


def bare_subscriber(port, n, tmp):
    topic = "factory/+/+/telemetry"
    sub_id = "bench-bare"
    subprocess.run(["mosquitto_sub", "-p", str(port), "-c", "-i", sub_id, "-q", "1", "-t", topic,
                    "-W", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    n = queue_backlog(port, "factory/line1", n, tmp)
    start = time.time()
    p = subprocess.Popen(["mosquitto_sub", "-p", str(port), "-c", "-i", sub_id, "-q", "1",
                          "-t", topic, "-C", str(n)], stdout=subprocess.DEVNULL)
    peak = 0.0
    cpu = 0.0
    while p.poll() is None:
        try:
            cpu = cpu_seconds(p.pid)
            peak = max(peak, peak_rss_mb(p.pid))
        except OSError:
            pass
        time.sleep(0.05)
    elapsed = time.time() - start
    return {"messages": n, "seconds": elapsed, "rate": n / elapsed, "cpu_seconds": cpu,
            "peak_rss_mb": peak}


def scrape(admin):
    with urllib.request.urlopen(f"http://{admin}/metrics", timeout=5) as r:
        return r.read().decode()


def received(text):
    total = 0.0
    for line in text.splitlines():
        if line.startswith("sluice_component_received_rows_total{") and 'component_id="telemetry"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def gateway(port, n, tmp, binary):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "pipelines", "factory-telemetry.yaml")) as f:
        text = f.read()
    # Same pipeline, with a persistent session so the backlog waits for it.
    text = text.replace("    event_time: ts\n",
                        "    event_time: ts\n    clean_session: false\n    client_id: bench-gateway\n", 1)
    pipeline = os.path.join(tmp, "factory-telemetry.yaml")
    with open(pipeline, "w") as f:
        f.write(text)
    env = dict(os.environ, SLUICE_MQTT_URL=f"mqtt://127.0.0.1:{port}",
               SLUICE_UPLINK_URL=f"mqtt://127.0.0.1:{port}", SLUICE_DATA_DIR=tmp, RUST_LOG="warn")

    def start():
        admin = f"127.0.0.1:{free_port()}"
        p = subprocess.Popen([binary, "run", pipeline, "--admin", admin], env=env)
        end = time.time() + 30
        while time.time() < end:
            try:
                with urllib.request.urlopen(f"http://{admin}/readyz", timeout=1) as r:
                    if r.status == 200:
                        return p, admin
            except OSError:
                pass
            time.sleep(0.05)
        p.kill()
        sys.exit("gateway did not become ready")

    p, _ = start()  # registers the persistent session
    p.terminate()
    p.wait(30)
    n = queue_backlog(port, "factory/line1", n, tmp)
    start_t = time.time()
    p, admin = start()
    while received(scrape(admin)) < n:
        if time.time() - start_t > 600:
            sys.exit("gateway did not drain the backlog in 10 minutes")
        time.sleep(0.05)
    elapsed = time.time() - start_t
    cpu = cpu_seconds(p.pid)
    rss = peak_rss_mb(p.pid)
    p.terminate()
    code = p.wait(30)
    return {"messages": n, "seconds": elapsed, "rate": n / elapsed, "cpu_seconds": cpu,
            "peak_rss_mb": rss, "exit_code": code}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=300_000)
    ap.add_argument("--bin", default=None, help="sluice binary (default: release build in the target dir)")
    args = ap.parse_args()
    binary = args.bin or os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release", "sluice")
    if not os.path.exists(binary):
        sys.exit(f"{binary} not found: build with `cargo build --release -p sluice` first")
    for tool in ("mosquitto", "mosquitto_pub", "mosquitto_sub"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found: run scripts/setup.sh")
    results = {}
    for name, fn in (("mosquitto_sub", bare_subscriber), ("sluice", lambda *a: gateway(*a, binary))):
        with tempfile.TemporaryDirectory() as tmp:
            port = free_port()
            conf = os.path.join(tmp, "mosquitto.conf")
            with open(conf, "w") as f:
                f.write(f"listener {port} 127.0.0.1\nallow_anonymous true\n"
                        "max_queued_messages 0\nmax_inflight_messages 100\nmax_queued_bytes 0\n")
            broker = subprocess.Popen(["mosquitto", "-c", conf], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
            try:
                wait_port(port)
                results[name] = fn(port, args.messages, tmp)
            finally:
                broker.kill()
                broker.wait()
    bare, gw = results["mosquitto_sub"], results["sluice"]
    print(f"{'subscriber':<14} {'messages':>9} {'seconds':>8} {'msg/s':>9} {'CPU s':>7} {'CPU s/100k':>10} {'peak RSS MB':>11}")
    for name, r in results.items():
        print(f"{name:<14} {r['messages']:>9} {r['seconds']:>8.2f} {r['rate']:>9.0f} {r['cpu_seconds']:>7.2f} "
              f"{r['cpu_seconds'] / r['messages'] * 100_000:>10.2f} {r['peak_rss_mb']:>11.1f}")
    print(f"sluice / mosquitto_sub rate: {gw['rate'] / bare['rate']:.2f}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
