#!/usr/bin/env python3
"""The readings of `sluice simulate --faults` as a labelled CSV.

A line-for-line port of `Generator` in gateway/cli/src/simulate/generator.rs (same
hash, noise, levels, fault schedule and rounding), so the models can be
evaluated on the demo line without a broker. A row is labelled 1 while a
scheduled fault is active on its device. If the simulator changes, this port
must follow; a `--csv` output of the simulator itself would make it
unnecessary.

Usage: python simulator_port.py --devices 20 --seconds 1200 --out sim.csv
       (10 readings per second per device, seed 42: the simulator's defaults)
"""
import argparse
import csv
import math

MASK = (1 << 64) - 1
TAU = 2 * math.pi
CYCLE = 120.0
# (kind, index, offset s, length s) per 120 s cycle; the index is the Rust
# enum discriminant, which salts the choice of device.
SCHEDULE = [
    ("vibration_burst", 0, 20.0, 15.0),
    ("level_shift", 4, 36.0, 8.0),
    ("spike", 1, 45.0, 1.0),
    ("temperature_drift", 2, 55.0, 40.0),
    ("stuck_sensor", 3, 100.0, 18.0),
]


def hash_parts(parts):
    acc = 0x9E3779B97F4A7C15
    for p in parts:
        z = ((acc ^ p) + 0x9E3779B97F4A7C15) & MASK
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        acc = z ^ (z >> 31)
    return acc


def unit(h):
    return (h >> 11) / float(1 << 53)


def rnd(x):
    return round(x * 1e4) / 1e4


class Generator:
    def __init__(self, seed, devices, rate, fault_devices=()):
        self.seed, self.devices, self.rate = seed, devices, rate
        self.fault_devices = list(fault_devices)

    def levels(self, d):
        u = lambda salt: unit(hash_parts([self.seed, d, MASK, salt]))  # noqa: E731
        return {"v": 0.8 + 0.6 * u(1), "t": 45.0 + 10.0 * u(2), "c": 8.0 + 6.0 * u(3), "phase": TAU * u(4)}

    def gauss(self, d, step, channel):
        total = sum(unit(hash_parts([self.seed, d, step, 16 + channel * 4 + i])) for i in range(4))
        return (total - 2.0) * math.sqrt(3.0)

    def healthy(self, d, step):
        t = step / self.rate
        lv = self.levels(d)

        def wave(period):
            return math.sin(TAU * t / period + lv["phase"])

        return [
            rnd(lv["v"] * (1.0 + 0.15 * wave(20.0) + 0.03 * self.gauss(d, step, 1))),
            rnd(lv["t"] + 1.5 * wave(300.0) + 0.1 * self.gauss(d, step, 2)),
            rnd(lv["c"] * (1.0 + 0.1 * wave(45.0) + 0.02 * self.gauss(d, step, 3))),
        ]

    def fault_at(self, d, t):
        cycle = int(t // CYCLE)
        for kind, index, offset, length in SCHEDULE:
            h = hash_parts([self.seed, cycle, index, 0xFA17])
            if self.fault_devices:
                device = self.fault_devices[h % len(self.fault_devices)]
            else:
                device = h % self.devices
            start = cycle * CYCLE + offset
            if device == d and start <= t < start + length:
                return kind, start
        return None

    def reading(self, d, step):
        t = step / self.rate
        r = self.healthy(d, step)
        fault = self.fault_at(d, t)
        if fault is None:
            return r, 0
        kind, start = fault
        lv = self.levels(d)
        if kind == "vibration_burst":
            r[0] = rnd(r[0] * 5.0 + lv["v"] * abs(self.gauss(d, step, 9)))
        elif kind == "spike":
            r[0], r[2] = rnd(r[0] * 3.0), rnd(r[2] * 3.0)
        elif kind == "temperature_drift":
            r[1] = rnd(r[1] + 0.5 * (t - start))
        elif kind == "level_shift":
            r[2] = rnd(r[2] * 1.3)
        else:
            r = self.healthy(d, math.ceil(start * self.rate))
        return r, 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=20)
    ap.add_argument("--seconds", type=int, default=1200)
    ap.add_argument("--rate", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--fault-devices", default="", help="comma-separated device indices (default: any)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    chosen = [int(d) for d in args.fault_devices.split(",") if d]
    g = Generator(args.seed, args.devices, args.rate, chosen)
    with open(args.out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["device", "timestamp", "vibration_rms", "temperature", "current", "label"])
        for step in range(int(args.seconds * args.rate)):
            ts = 1_700_000_000_000 + int(step * 1000 / args.rate)
            for d in range(args.devices):
                r, label = g.reading(d, step)
                w.writerow([f"dev-{d:02d}", ts, *r, label])
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
