#!/usr/bin/env python3
"""Store-and-forward under a cloud outage: sluice's outbox against a Mosquitto bridge.

Everything runs on loopback with private Mosquitto brokers on free ports, in a
temporary directory that is removed at the end; every wait has a timeout and
every process started here is killed on exit.

1. Outage (run once for each forwarder, same publisher, timeline and cloud side)
   A publisher (paho-mqtt, clean session, at most 100 in flight; while
   disconnected it pauses, after a reconnect it resends what was not
   acknowledged before publishing anything new, so it never reorders) sends --messages sequenced QoS 1
   messages {"device", "seq", "ts"} round-robin over --devices devices at
   --rate msg/s to the edge. A cloud subscriber (paho-mqtt, persistent session,
   QoS 1) records every arrival. Timeline, seconds after the first publish:
   --outage-at: SIGTERM the cloud broker (persistence on, so its queue for the
   subscriber survives); --kill-at: `kill -9` the forwarder; --down later:
   start it again; --outage-at + --outage: start the cloud broker again.
   * sluice: a "local" Mosquitto (never stopped, no persistence,
     max_queued_messages 0 = unlimited so its queue for the gateway's session
     does not drop anything while the gateway restarts) -> `sluice run
     bench/outage/outage.yaml`: mqtt source (QoS 1, persistent session,
     `ack: downstream`: PUBACK only after the outbox commit) -> mqtt sink with
     `outbox` (SQLite, fsynced group commit, on_full: block) -> cloud at QoS 1,
     100 in flight, reconnect backoff capped at 1 s. The local broker stays up;
     the gateway process is what gets killed.
   * bridge: an "edge" Mosquitto that the publisher talks to directly, with
     `persistence true`, `autosave_interval` --edge-autosave s (default 1, far
     more often than the default 1800 s), max_queued_messages 0 and a
     `connection` bridge to the cloud (`topic bench/edge/# out 1`,
     `cleansession false`, 100 in flight, `restart_timeout 1`). The edge broker
     is both the broker the devices publish to and the forwarder, so it is what
     gets killed; the publisher reconnects to it and resends what it had not
     had acknowledged.
   Reported: published, accepted (publisher got PUBACK), received by the cloud
   subscriber, lost (accepted, never received), duplicates, first copies out
   of order per device, and the contiguous ranges of lost messages with their
   publish times so a loss can be traced to an event.

2. Drain after an outage. The cloud subscriber's persistent session is
   registered, the cloud broker stopped, and --drain-messages messages are
   queued behind the forwarder: for sluice they are queued on the local broker
   for the gateway's session and the gateway is started to take them into its
   outbox (timed: "ingest", source -> outbox with fsynced commits and PUBACKs
   after commit); for the bridge, mosquitto_pub publishes them to the edge
   broker, which queues them for the bridge. Then the cloud broker and
   `mosquitto_sub -c` (C client, per-message timestamps) are started and the
   drain is timed until the subscriber has all of them. Rate = messages /
   (last arrival - first arrival); the time from the cloud broker's start,
   which includes the reconnect backoff, is reported too.

Outbox append throughput on its own is measured by `cargo bench -p
sluice-outbox` (gateway/outbox/README.md); this script does not repeat it.

Usage: python3 bench/outage/run.py [--bin PATH] [--only outage|drain] [--json-out FILE]
Needs: mosquitto, mosquitto_pub, mosquitto_sub on PATH; `pip install -r bench/outage/requirements.txt`;
a release build (`cargo build --release -p sluice`).
"""
import argparse
import atexit
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

try:
    import paho.mqtt.client as mqtt
except ImportError:
    sys.exit("paho-mqtt not found: pip install -r bench/outage/requirements.txt")

HERE = os.path.dirname(os.path.abspath(__file__))
PIPELINE = os.path.join(HERE, "outage.yaml")
TOPIC_PREFIX = "bench/edge"
CLOUD_FILTER = "bench/#"
INFLIGHT = 100
ANSI = re.compile(r"\x1b\[[0-9;]*m")

PROCS = []  # every process started here; killed on exit
TMP = {"dir": None, "keep": False}


def cleanup():
    for p in PROCS:
        if p.poll() is None:
            p.kill()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                pass
    if TMP["dir"] and not TMP["keep"]:
        shutil.rmtree(TMP["dir"], ignore_errors=True)


def spawn(args, **kw):
    p = subprocess.Popen(args, **kw)
    PROCS.append(p)
    return p


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=15):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {timeout} s")


def wait_until(cond, timeout, what, step=0.1):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(step)
    raise RuntimeError(f"timed out after {timeout} s waiting for {what}")


class Mosquitto:
    """One broker with its own config, data dir and log, restartable on the same port."""

    def __init__(self, tmp, name, persistence, autosave=None, bridge_to=None):
        self.name = name
        self.port = free_port()
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir)
        self.log = os.path.join(self.dir, "mosquitto.log")
        lines = [f"listener {self.port} 127.0.0.1", "allow_anonymous true",
                 # 0 = unlimited: the broker's own queue limits must not drop
                 # messages for a client that is away (gateway, bridge, subscriber).
                 "max_queued_messages 0", "max_queued_bytes 0",
                 f"max_inflight_messages {INFLIGHT}",
                 f"log_dest file {self.log}", "log_type error", "log_type warning", "log_type notice",
                 "log_type information", "log_timestamp_format %H:%M:%S"]
        if os.geteuid() == 0:
            # Mosquitto started as root switches to user `mosquitto`, which
            # cannot write into this private temp dir.
            lines.append("user root")
        if persistence:
            lines += ["persistence true", f"persistence_location {self.dir}/"]
            if autosave is not None:
                lines.append(f"autosave_interval {autosave}")
        if bridge_to is not None:
            lines += ["connection cloud", f"address 127.0.0.1:{bridge_to}",
                      "clientid outage-bridge", "cleansession false",
                      "bridge_protocol_version mqttv311", "restart_timeout 1",
                      "notifications false", f"topic {TOPIC_PREFIX}/# out 1"]
        self.conf = os.path.join(self.dir, "mosquitto.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = None

    def start(self):
        self.proc = spawn(["mosquitto", "-c", self.conf], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def stop(self):
        """Graceful stop (SIGTERM): Mosquitto writes its persistence file."""
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def kill9(self):
        self.proc.kill()
        self.proc.wait(5)

    def log_has(self, text):
        if not os.path.exists(self.log):
            return False
        with open(self.log, errors="replace") as f:
            return text in f.read()


class Gateway:
    """`sluice run bench/outage/outage.yaml` with the admin server on a free port."""

    def __init__(self, binary, tmp, local_port, cloud_port):
        self.binary = binary
        self.log = os.path.join(tmp, "sluice.log")
        self.outbox = os.path.join(tmp, "sluice", "outbox.db")
        os.makedirs(os.path.dirname(self.outbox), exist_ok=True)
        self.env = dict(os.environ, OUTAGE_LOCAL_URL=f"mqtt://127.0.0.1:{local_port}",
                        OUTAGE_CLOUD_URL=f"mqtt://127.0.0.1:{cloud_port}",
                        OUTAGE_OUTBOX=self.outbox, RUST_LOG=os.environ.get("RUST_LOG", "info"))
        self.proc = None
        self.admin = None

    def start(self, timeout=60):
        self.admin = f"127.0.0.1:{free_port()}"
        logf = open(self.log, "a")
        self.proc = spawn([self.binary, "run", PIPELINE, "--admin", self.admin], env=self.env,
                          stdout=logf, stderr=subprocess.STDOUT)
        logf.close()

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"sluice exited with {self.proc.returncode}; see {self.log}")
            try:
                with urllib.request.urlopen(f"http://{self.admin}/readyz", timeout=1) as r:
                    return r.status == 200
            except OSError:
                return False
        wait_until(ready, timeout, "sluice /readyz", step=0.05)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(60)

    def kill9(self):
        self.proc.kill()
        self.proc.wait(5)

    def metric(self, name):
        """Sum of every series of `name` (None when the gateway does not answer)."""
        try:
            with urllib.request.urlopen(f"http://{self.admin}/metrics", timeout=5) as r:
                text = r.read().decode()
        except OSError:
            return None
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def log_lines(self, *levels):
        with open(self.log, errors="replace") as f:
            lines = [ANSI.sub("", ln).rstrip() for ln in f]
        return [ln for ln in lines if any(lv in ln for lv in levels)]


class Publisher(threading.Thread):
    """Publishes n sequenced QoS 1 messages at a fixed rate; a message is accepted
    once its PUBACK arrived (paho resends unacknowledged ones after a reconnect)."""

    def __init__(self, port, n, rate, devices):
        super().__init__(daemon=True)
        self.n, self.rate, self.devices = n, rate, devices
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="outage-publisher",
                                  clean_session=True)
        self.client.max_inflight_messages_set(INFLIGHT)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(1, 1)
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        self.infos = []
        self.sent_at = []
        self.t0 = None
        self.disconnects = 0

    def key(self, i):
        return (f"dev-{i % self.devices:02}", i // self.devices)

    def run(self):
        self.t0 = time.monotonic()
        for i in range(self.n):
            delay = self.t0 + i / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if not self.client.is_connected():
                self.resume()
            device, seq = self.key(i)
            payload = json.dumps({"device": device, "seq": seq, "ts": int(time.time() * 1000)},
                                 separators=(",", ":"))
            self.infos.append(self.client.publish(f"{TOPIC_PREFIX}/{device}", payload, qos=1))
            self.sent_at.append(time.monotonic() - self.t0)

    def resume(self):
        """Like a device with a local buffer: while disconnected it stops
        publishing; after the reconnect paho resends every unacknowledged
        message in order, and new messages follow once those are acknowledged,
        so the publisher itself never reorders."""
        self.disconnects += 1
        end = time.monotonic() + 120
        while not self.client.is_connected() and time.monotonic() < end:
            time.sleep(0.02)
        while len(self.accepted()) < len(self.infos) and time.monotonic() < end:
            time.sleep(0.02)

    def accepted(self):
        # `is_published()` raises for a message first queued while disconnected,
        # even after paho resent it and got its PUBACK; the flag it reads does not.
        return [i for i, info in enumerate(list(self.infos)) if info._published]

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


class CloudSubscriber:
    """Persistent QoS 1 session on the cloud broker; records (time, payload) of every arrival."""

    def __init__(self, port, client_id):
        self.arrivals = []
        self.subscribed = threading.Event()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        c.reconnect_delay_set(1, 1)
        c.on_connect = lambda cl, _u, _f, _rc, _p: cl.subscribe(CLOUD_FILTER, qos=1)
        c.on_subscribe = lambda *_a: self.subscribed.set()
        c.on_message = lambda _c, _u, m: self.arrivals.append((time.monotonic(), m.payload))
        c.connect("127.0.0.1", port, keepalive=10)
        c.loop_start()
        self.client = c
        if not self.subscribed.wait(15):
            raise RuntimeError("cloud subscriber: no SUBACK in 15 s")

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def key_of(payload):
    m = json.loads(payload)
    return (m["device"], int(m["seq"]))


def analyse(pub, arrivals, events):
    published = len(pub.infos)
    accepted_idx = pub.accepted()
    accepted = {pub.key(i) for i in accepted_idx}
    seen = set()
    dups = 0
    # Sluice only: a duplicate with the `_id` of an earlier copy was published
    # twice from one outbox entry (the cloud can drop it by `_id`); one with a
    # new `_id` was committed to the outbox twice (the source got it twice).
    ids = {}
    dups_same_id = 0
    out_of_order = 0  # first copies that arrive after a higher seq of the same device
    max_first = {}
    for _t, payload in arrivals:
        m = json.loads(payload)
        k = (m["device"], int(m["seq"]))
        if "_id" in m:
            ids.setdefault(k, set())
            if m["_id"] in ids[k]:
                dups_same_id += 1
            ids[k].add(m["_id"])
        if k in seen:
            dups += 1
            continue
        seen.add(k)
        if k[1] < max_first.get(k[0], -1):
            out_of_order += 1
        max_first[k[0]] = max(max_first.get(k[0], -1), k[1])
    lost_keys = accepted - seen
    lost_idx = sorted(int(k[1]) * pub.devices + int(k[0][4:]) for k in lost_keys)
    ranges = []
    for i in lost_idx:
        if ranges and i == ranges[-1][1] + 1:
            ranges[-1][1] = i
        else:
            ranges.append([i, i])
    received = len(arrivals)
    return {
        "published": published,
        "accepted": len(accepted),
        "received": received,
        "unique_received": len(seen),
        "lost": len(lost_keys),
        "duplicates": dups,
        "duplicate_pct": 100.0 * dups / max(1, len(seen)),
        "duplicates_same_id": dups_same_id if ids else None,
        "duplicates_new_id": dups - dups_same_id if ids else None,
        "out_of_order": out_of_order,
        "delivered_unaccepted": len(seen - accepted),
        "lost_ranges": [{"first_index": a, "last_index": b, "count": b - a + 1,
                         "published_at_s": [round(pub.sent_at[a], 2), round(pub.sent_at[b], 2)]}
                        for a, b in ranges[:20]],
        "lost_range_count": len(ranges),
        "events": events,
    }


def outage(kind, args, tmp):
    """One outage run; kind is "sluice" or "bridge"."""
    tmp = os.path.join(tmp, f"outage-{kind}")
    os.makedirs(tmp)
    cloud = Mosquitto(tmp, "cloud", persistence=True)
    cloud.start()
    sub = CloudSubscriber(cloud.port, f"outage-cloud-sub-{kind}")
    gw = None
    if kind == "sluice":
        local = Mosquitto(tmp, "local", persistence=False)
        local.start()
        gw = Gateway(args.bin, tmp, local.port, cloud.port)
        gw.start()
        edge_port, victim, victim_name = local.port, gw, "gateway"
    else:
        edge = Mosquitto(tmp, "edge", persistence=True, autosave=args.edge_autosave,
                         bridge_to=cloud.port)
        edge.start()
        wait_until(lambda: cloud.log_has("as outage-bridge"), 15, "the bridge to connect")
        edge_port, victim, victim_name = edge.port, edge, "edge broker"
    pub = Publisher(edge_port, args.messages, args.rate, args.devices)
    plan = sorted([
        (args.outage_at, "stop cloud broker (SIGTERM)", cloud.stop),
        (args.kill_at, f"kill -9 {victim_name}", victim.kill9),
        (args.kill_at + args.down, f"start {victim_name}", victim.start),
        (args.outage_at + args.outage, "start cloud broker", cloud.start),
    ], key=lambda e: e[0])
    events = []
    pub.start()
    while pub.t0 is None:
        time.sleep(0.01)
    for at, name, action in plan:
        delay = pub.t0 + at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        started = time.monotonic() - pub.t0
        action()
        events.append({"event": name, "at_s": round(started, 2),
                       "done_s": round(time.monotonic() - pub.t0, 2)})
        print(f"  [{kind}] {started:6.2f} s  {name}", file=sys.stderr, flush=True)
    pub.join(args.messages / args.rate + 120)
    if pub.is_alive():
        raise RuntimeError("publisher did not finish")
    publish_end = time.monotonic() - pub.t0
    # Wait (bounded) for the last PUBACKs: after a reconnect paho resends.
    end = time.monotonic() + 60
    while time.monotonic() < end and len(pub.accepted()) < args.messages:
        time.sleep(0.2)
    # Wait until the cloud has every accepted message, or nothing new arrives
    # for --idle seconds, or --max-wait seconds passed.
    accepted = {pub.key(i) for i in pub.accepted()}
    seen = set()
    parsed = 0
    last_change = time.monotonic()
    end = time.monotonic() + args.max_wait
    while time.monotonic() < end:
        n = len(sub.arrivals)
        for _t, payload in sub.arrivals[parsed:n]:
            seen.add(key_of(payload))
        if n > parsed:
            last_change = time.monotonic()
        parsed = n
        if accepted <= seen or time.monotonic() - last_change > args.idle:
            break
        time.sleep(0.25)
    complete_s = time.monotonic() - pub.t0
    time.sleep(2)  # late duplicates still count
    arrivals = list(sub.arrivals)
    result = analyse(pub, arrivals, events)
    result["publish_seconds"] = round(publish_end, 2)
    result["publisher_disconnects"] = pub.disconnects
    result["complete_seconds"] = round(complete_s, 2)
    if gw is not None:
        result["gateway"] = {
            "outbox_stored_rows_at_end": gw.metric("sluice_outbox_stored_rows"),
            "outbox_evicted_rows_total": gw.metric("sluice_outbox_evicted_rows_total"),
            "warnings_and_errors": gw.log_lines("WARN", "ERROR")[-30:],
        }
        gw.stop()
    pub.close()
    sub.close()
    return result


def queue_backlog(port, n, devices, tmp):
    """Publishes n messages (n / devices per device) at QoS 1 with mosquitto_pub; returns seconds."""
    per = n // devices
    procs = []
    start = time.monotonic()
    for d in range(devices):
        path = os.path.join(tmp, f"dev{d}.txt")
        with open(path, "w") as f:
            for k in range(per):
                f.write(json.dumps({"device": f"dev-{d:02}", "seq": k, "ts": 1_767_225_600_000 + k},
                                   separators=(",", ":")) + "\n")
        with open(path) as stdin:
            procs.append(spawn(["mosquitto_pub", "-p", str(port), "-q", "1", "-i", f"outage-q{d}",
                                "-t", f"{TOPIC_PREFIX}/dev-{d:02}", "-l"], stdin=stdin))
    for p in procs:
        if p.wait(600) != 0:
            raise RuntimeError("mosquitto_pub failed")
    return time.monotonic() - start, per * devices


SUB_ID = "outage-drain-sub"


def register_subscriber(cloud):
    subprocess.run(["mosquitto_sub", "-p", str(cloud.port), "-c", "-i", SUB_ID, "-q", "1",
                    "-t", CLOUD_FILTER, "-W", "1"], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=10)


def timed_drain(cloud, n, tmp, timeout):
    """Starts the cloud broker and its subscriber; returns the drain figures."""
    out = os.path.join(tmp, "drain.txt")
    cloud.start()
    t_cloud = time.time()
    with open(out, "w") as f:
        p = spawn(["mosquitto_sub", "-p", str(cloud.port), "-c", "-i", SUB_ID, "-q", "1",
                   "-t", CLOUD_FILTER, "-C", str(n), "-F", "%U %p"], stdout=f)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
    times = []
    keys = set()
    with open(out) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            ts, payload = line.split(" ", 1)
            times.append(float(ts))
            keys.add(key_of(payload))
    if not times:
        return {"messages": n, "received": 0, "unique": 0}
    first, last = min(times), max(times)
    return {"messages": n, "received": len(times), "unique": len(keys),
            "first_to_last_s": round(last - first, 3),
            "rate_msg_s": round(len(keys) / max(last - first, 1e-9)),
            "from_cloud_start_s": round(last - t_cloud, 3),
            "rate_from_cloud_start_msg_s": round(len(keys) / max(last - t_cloud, 1e-9))}


def drain_sluice(args, tmp):
    tmp = os.path.join(tmp, "drain-sluice")
    os.makedirs(tmp)
    cloud = Mosquitto(tmp, "cloud", persistence=True)
    cloud.start()
    register_subscriber(cloud)
    cloud.stop()
    local = Mosquitto(tmp, "local", persistence=False)
    local.start()
    gw = Gateway(args.bin, tmp, local.port, cloud.port)
    gw.start()  # registers the source's persistent session
    gw.stop()
    _, n = queue_backlog(local.port, args.drain_messages, args.devices, tmp)
    gw.start()
    t0 = time.monotonic()
    wait_until(lambda: (gw.metric("sluice_outbox_stored_rows") or 0) >= n, 600,
               f"{n} rows in the outbox", step=0.05)
    ingest = time.monotonic() - t0
    result = timed_drain(cloud, n, tmp, args.max_wait)
    result["ingest_s"] = round(ingest, 3)
    result["ingest_rate_msg_s"] = round(n / ingest)
    wait_until(lambda: gw.metric("sluice_outbox_stored_rows") == 0, 30, "an empty outbox")
    gw.stop()
    cloud.stop()
    return result


def drain_bridge(args, tmp):
    tmp = os.path.join(tmp, "drain-bridge")
    os.makedirs(tmp)
    cloud = Mosquitto(tmp, "cloud", persistence=True)
    cloud.start()
    register_subscriber(cloud)
    cloud.stop()
    edge = Mosquitto(tmp, "edge", persistence=True, autosave=args.edge_autosave,
                     bridge_to=cloud.port)
    edge.start()
    secs, n = queue_backlog(edge.port, args.drain_messages, args.devices, tmp)
    result = timed_drain(cloud, n, tmp, args.max_wait)
    result["ingest_s"] = round(secs, 3)
    result["ingest_rate_msg_s"] = round(n / secs)
    edge.stop()
    cloud.stop()
    return result


def print_tables(results):
    if "outage" in results:
        print(f"\n{'outage':<8} {'published':>9} {'accepted':>9} {'received':>9} {'lost':>6} "
              f"{'dups':>6} {'dup %':>7} {'out of order':>12} {'unacked but delivered':>21}")
        for kind, r in results["outage"].items():
            print(f"{kind:<8} {r['published']:>9} {r['accepted']:>9} {r['received']:>9} "
                  f"{r['lost']:>6} {r['duplicates']:>6} {r['duplicate_pct']:>7.3f} "
                  f"{r['out_of_order']:>12} {r['delivered_unaccepted']:>21}")
        for kind, r in results["outage"].items():
            print(f"  {kind}: " + ", ".join(f"{e['event']} at {e['at_s']} s" for e in r["events"])
                  + f"; publishing ended at {r['publish_seconds']} s, waiting at {r['complete_seconds']} s")
            if r.get("duplicates_same_id") is not None:
                print(f"  {kind}: duplicates with the _id of an earlier copy (re-published from one "
                      f"outbox entry): {r['duplicates_same_id']}; with a new _id (stored twice): "
                      f"{r['duplicates_new_id']}")
            for lr in r["lost_ranges"][:10]:
                print(f"  {kind}: lost publish indexes {lr['first_index']}..{lr['last_index']} "
                      f"({lr['count']}), published {lr['published_at_s'][0]}..{lr['published_at_s'][1]} s")
            if r["lost_range_count"] > 10:
                print(f"  {kind}: ... {r['lost_range_count'] - 10} more lost ranges")
    if "drain" in results:
        print(f"\n{'drain':<8} {'messages':>9} {'unique rcvd':>11} {'first->last s':>13} "
              f"{'msg/s':>8} {'from cloud start s':>18} {'msg/s':>8} {'ingest msg/s':>12}")
        for kind, r in results["drain"].items():
            print(f"{kind:<8} {r['messages']:>9} {r['unique']:>11} {r.get('first_to_last_s', 0):>13.2f} "
                  f"{r.get('rate_msg_s', 0):>8} {r.get('from_cloud_start_s', 0):>18.2f} "
                  f"{r.get('rate_from_cloud_start_msg_s', 0):>8} {r.get('ingest_rate_msg_s', 0):>12}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=None, help="sluice binary (default: release build in the target dir)")
    ap.add_argument("--only", choices=["outage", "drain"], default=None)
    ap.add_argument("--systems", default="sluice,bridge", help="comma-separated: sluice,bridge")
    ap.add_argument("--messages", type=int, default=50_000)
    ap.add_argument("--rate", type=float, default=1000.0, help="publish rate, msg/s")
    ap.add_argument("--devices", type=int, default=10)
    ap.add_argument("--outage-at", type=float, default=15.0)
    ap.add_argument("--outage", type=float, default=20.0, help="seconds the cloud broker is down")
    ap.add_argument("--kill-at", type=float, default=22.0)
    ap.add_argument("--down", type=float, default=3.0, help="seconds the killed forwarder stays down")
    ap.add_argument("--edge-autosave", type=int, default=1,
                    help="autosave_interval (s) of the bridge's edge broker")
    ap.add_argument("--drain-messages", type=int, default=50_000)
    ap.add_argument("--max-wait", type=float, default=300.0, help="bound on every delivery wait, s")
    ap.add_argument("--idle", type=float, default=30.0,
                    help="stop waiting for the cloud after this long without a new arrival, s")
    ap.add_argument("--json-out", default=None)
    ap.add_argument("--keep-tmp", action="store_true", help="keep logs and data for inspection")
    args = ap.parse_args()
    if not args.kill_at + args.down < args.outage_at + args.outage or args.kill_at < args.outage_at:
        sys.exit("the forwarder must be killed and restarted while the cloud broker is down")
    systems = [s for s in args.systems.split(",") if s]
    if "sluice" in systems:
        target = os.environ.get("CARGO_TARGET_DIR", os.path.join(os.path.dirname(os.path.dirname(HERE)), "target"))
        args.bin = os.path.abspath(args.bin or os.path.join(target, "release", "sluice"))
        if not os.path.exists(args.bin):
            sys.exit(f"{args.bin} not found: build with `cargo build --release -p sluice` first")
    for tool in ("mosquitto", "mosquitto_pub", "mosquitto_sub"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found: install Mosquitto (apt-get install -y mosquitto mosquitto-clients)")
    TMP["dir"] = tempfile.mkdtemp(prefix="sluice-outage-")
    TMP["keep"] = args.keep_tmp
    atexit.register(cleanup)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results = {"config": {k: v for k, v in vars(args).items() if k not in ("bin", "json_out")}}
    if args.only in (None, "outage"):
        results["outage"] = {}
        for kind in systems:
            print(f"outage scenario: {kind}", file=sys.stderr, flush=True)
            results["outage"][kind] = outage(kind, args, TMP["dir"])
    if args.only in (None, "drain"):
        results["drain"] = {}
        for kind, fn in (("sluice", drain_sluice), ("bridge", drain_bridge)):
            if kind in systems:
                print(f"drain scenario: {kind}", file=sys.stderr, flush=True)
                results["drain"][kind] = fn(args, TMP["dir"])
    print_tables(results)
    print(json.dumps(results))
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(results, f, indent=1)
    if args.keep_tmp:
        print(f"logs and data kept in {TMP['dir']}", file=sys.stderr)


if __name__ == "__main__":
    main()
