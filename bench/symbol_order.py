#!/usr/bin/env python3
"""Regenerates gateway/cli/symbol-order.txt: the functions a running pipeline
executes, which the release link places next to each other.

Why: the kernel maps a binary's pages around every page fault (64 KiB at a
time). Scattered over 70+ MB of text, the few MB of code a gateway runs would
make most of the binary resident; clustered, they take a few MB. See
gateway/cli/build.rs.

How: runs the release binary under `valgrind --tool=callgrind` three times
and lists every function of the binary that ran in any (mangled names):
1. pipelines/factory-telemetry.yaml against a private Mosquitto, fed a few
   thousand messages so windows close and rows flow to every sink, stopped
   with SIGTERM;
2. pipelines/demo.yaml with every scored row flagged and no digest timeout,
   fed until it writes its first language-model digest (under callgrind
   everything runs ~50x slower: a digest takes minutes);
3. `sluice demo` (embedded broker, simulator with faults, both demo
   pipelines, detection on the sample frames, the till join) for
   `--demo-seconds`.
Runs 2 and 3 are dumped with `callgrind_control -d` before they are stopped.
Re-run after upgrading dependencies, then rebuild the release binary; names
that no longer exist are ignored by the linker.

Usage: python3 bench/symbol_order.py [--bin target/release/sluice] [--messages 3000]
                                    [--demo-seconds 300] [--digest-timeout 1200]
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


def wait_ready(admin, timeout=600):
    """Waits for /readyz to answer 200: every pipeline started, every source
    connected and subscribed (messages published earlier would be lost)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        code = subprocess.run(["curl", "-s", "-m", "30", "-o", "/dev/null", "-w", "%{http_code}",
                               f"http://127.0.0.1:{admin}/readyz"], stdout=subprocess.PIPE, text=True,
                              check=False).stdout
        if code == "200":
            return
        time.sleep(2)
    sys.exit(f"the gateway on admin port {admin} was not ready within {timeout} s")


def dump_and_stop(proc, grace=120):
    """Writes the callgrind profile of `proc` as it stands (callgrind_control
    -d), then stops it with SIGTERM, or SIGKILL after `grace` seconds: under
    callgrind a shutdown that drains queues can take longer than is useful."""
    subprocess.run(["callgrind_control", "-d", str(proc.pid)], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=False)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def callgrind(binary, out, argv, env, cwd=None):
    return subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--demangle=no", "--dump-line=no", "--compress-strings=no",
         f"--callgrind-out-file={out}", binary] + argv,
        env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def demo_run(binary, tmp, seconds):
    """`sluice demo` (both pipelines, detection on the sample frames) for
    `seconds`."""
    admin = free_port()
    env = dict(os.environ, RUST_LOG="warn")
    proc = callgrind(binary, f"{tmp}/demo.out",
                     ["demo", "--speed", "8", "--out-dir", os.path.join(tmp, "demo"),
                      "--models-dir", os.path.join(ROOT, "models"),
                      "--retail-dir", os.path.join(ROOT, "examples", "retail"), "--admin", f"127.0.0.1:{admin}"],
                     env, cwd=tmp)
    wait_port(admin, timeout=300)
    time.sleep(seconds)
    dump_and_stop(proc)


def digest_run(binary, tmp, port, timeout):
    """pipelines/demo.yaml with every scored row flagged and no digest
    timeout, fed until its first digest is written: the language model's
    prompt and generation paths."""
    with open(os.path.join(ROOT, "pipelines", "demo.yaml")) as f:
        yaml = f.read()
    yaml = (yaml.replace("threshold: 0.99", "threshold: 0.0")
                .replace("    every: 30s\n", "    every: 20s\n    timeout: 3600s\n")
                .replace("${SLUICE_MODELS_DIR:-models}", os.path.join(ROOT, "models")))
    path = os.path.join(tmp, "digest.yaml")
    with open(path, "w") as f:
        f.write(yaml)
    admin = free_port()
    env = dict(os.environ, SLUICE_MQTT_URL=f"mqtt://127.0.0.1:{port}",
               SLUICE_UPLINK_URL=f"mqtt://127.0.0.1:{port}", SLUICE_DATA_DIR=os.path.join(tmp, "digest"),
               RUST_LOG="warn")
    proc = callgrind(binary, f"{tmp}/digest.out", ["run", path, "--admin", f"127.0.0.1:{admin}"], env)
    wait_port(admin, timeout=300)
    wait_ready(admin)
    publish(port, 3000)
    deadline = time.time() + timeout
    while time.time() < deadline:
        time.sleep(10)
        metrics = subprocess.run(["curl", "-s", "-m", "30", f"http://127.0.0.1:{admin}/metrics"],
                                 stdout=subprocess.PIPE, text=True, check=False).stdout
        sent = [line for line in metrics.splitlines()
                if line.startswith("sluice_component_sent_rows_total") and 'component="factory_digest"' in line]
        if any(float(line.rsplit(" ", 1)[1]) > 0 for line in sent):
            break
    else:
        print("no digest within the timeout; its functions may be missing", file=sys.stderr)
    dump_and_stop(proc)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=None)
    ap.add_argument("--messages", type=int, default=3000)
    ap.add_argument("--demo-seconds", type=int, default=300)
    ap.add_argument("--digest-timeout", type=int, default=1200)
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
            wait_ready(admin)
            publish(port, args.messages)
            # Under callgrind everything is ~50x slower: give windows time to close.
            time.sleep(30)
            subprocess.run(["curl", "-s", f"http://127.0.0.1:{admin}/metrics"], stdout=subprocess.DEVNULL)
            gw.send_signal(signal.SIGTERM)
            gw.wait(timeout=300)
            digest_run(binary, tmp, port, args.digest_timeout)
        finally:
            broker.kill()
            broker.wait()
        demo_run(binary, tmp, args.demo_seconds)
        # The reference pipeline's functions first, then the others: a
        # pipeline that runs no model keeps its code in the first few MB.
        first = set(executed_functions(os.path.join(tmp, "callgrind.out"), binary))
        profiles = [p for p in glob.glob(os.path.join(tmp, "*.out*")) if os.path.getsize(p) > 0]
        rest = {n for p in profiles for n in executed_functions(p, binary)} - first
        names = sorted(first) + sorted(rest)
    with open(args.out, "w") as f:
        f.write("\n".join(names) + "\n")
    print(f"{len(names)} functions written to {args.out}")


if __name__ == "__main__":
    main()
