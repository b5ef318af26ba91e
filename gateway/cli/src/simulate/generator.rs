//! Deterministic sensor readings and the fault schedule of the simulator.
//!
//! `models/anomaly/simulator_port.py` is a line-for-line port of this file
//! (the models are evaluated on its output); change both together.

use std::f64::consts::TAU;

/// Faults repeat with this period of simulated time.
pub const FAULT_CYCLE_SECS: f64 = 120.0;

/// One sensor reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    /// Vibration RMS velocity, mm/s.
    pub vibration_rms: f64,
    /// Bearing temperature, °C.
    pub temperature: f64,
    /// Motor current, A.
    pub current: f64,
}

/// Kinds of scheduled fault. The discriminant salts the choice of device, so
/// new kinds go at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Vibration five times its level, noisier.
    VibrationBurst,
    /// Current and vibration three times their level.
    Spike,
    /// Temperature rising 0.5 °C per second.
    TemperatureDrift,
    /// Every value frozen at the reading when the fault began.
    StuckSensor,
    /// Current 30 % above its level (a heavier load).
    LevelShift,
}

/// A fault on one device during `[start, start + len)` seconds of simulated
/// time since the run began.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fault {
    /// What goes wrong.
    pub kind: FaultKind,
    /// Index of the affected device.
    pub device: usize,
    /// Start, in seconds of simulated time.
    pub start: f64,
    /// Length in seconds.
    pub len: f64,
}

/// Offsets within a cycle and lengths, in seconds; the windows are disjoint
/// so a device has at most one fault at a time.
pub const SCHEDULE: [(FaultKind, f64, f64); 5] = [
    (FaultKind::VibrationBurst, 20.0, 15.0),
    (FaultKind::LevelShift, 36.0, 8.0),
    (FaultKind::Spike, 45.0, 1.0),
    (FaultKind::TemperatureDrift, 55.0, 40.0),
    (FaultKind::StuckSensor, 100.0, 18.0),
];

/// Deterministic sensor values: a per-device base level, slow sines and
/// noise, plus scheduled faults when enabled. Step `n` is at `n / rate`
/// seconds of simulated time.
#[derive(Debug, Clone)]
pub struct Generator {
    pub(super) seed: u64,
    devices: usize,
    rate: f64,
    faults: bool,
    fault_devices: Vec<usize>,
}

impl Generator {
    /// A generator for `devices` devices sampled `rate` times a second.
    pub fn new(seed: u64, devices: usize, rate: f64, faults: bool) -> Self {
        Self {
            seed,
            devices: devices.max(1),
            rate,
            faults,
            fault_devices: Vec::new(),
        }
    }

    /// Faults only hit these device indices (each fault on one of them,
    /// chosen by the seed); empty means any device.
    pub fn with_fault_devices(mut self, devices: Vec<usize>) -> Self {
        self.fault_devices = devices;
        self
    }

    /// The faults of cycle `cycle` (every [`FAULT_CYCLE_SECS`]), each on a
    /// device chosen from the seed.
    pub fn faults_in_cycle(&self, cycle: u64) -> [Fault; 5] {
        let origin = cycle as f64 * FAULT_CYCLE_SECS;
        SCHEDULE.map(|(kind, offset, len)| {
            let h = hash(&[self.seed, cycle, kind as u64, 0xFA17]);
            let device = if self.fault_devices.is_empty() {
                (h % self.devices as u64) as usize
            } else {
                self.fault_devices[(h % self.fault_devices.len() as u64) as usize]
            };
            Fault {
                kind,
                device,
                start: origin + offset,
                len,
            }
        })
    }

    /// The fault active on `device` at simulated time `t`, if any.
    pub fn fault_at(&self, device: usize, t: f64) -> Option<Fault> {
        if !self.faults || t < 0.0 {
            return None;
        }
        let cycle = (t / FAULT_CYCLE_SECS).floor() as u64;
        self.faults_in_cycle(cycle)
            .into_iter()
            .find(|f| f.device == device && t >= f.start && t < f.start + f.len)
    }

    /// The reading of `device` at `step`.
    pub fn reading(&self, device: usize, step: u64) -> Reading {
        let t = step as f64 / self.rate;
        let base = self.healthy(device, step);
        let Some(fault) = self.fault_at(device, t) else {
            return base;
        };
        let level = self.levels(device);
        match fault.kind {
            FaultKind::VibrationBurst => Reading {
                vibration_rms: round(
                    base.vibration_rms * 5.0 + level.vibration * self.gauss(device, step, 9).abs(),
                ),
                ..base
            },
            FaultKind::Spike => Reading {
                vibration_rms: round(base.vibration_rms * 3.0),
                current: round(base.current * 3.0),
                ..base
            },
            FaultKind::TemperatureDrift => Reading {
                temperature: round(base.temperature + 0.5 * (t - fault.start)),
                ..base
            },
            FaultKind::StuckSensor => {
                let first = (fault.start * self.rate).ceil() as u64;
                self.healthy(device, first)
            }
            FaultKind::LevelShift => Reading {
                current: round(base.current * 1.3),
                ..base
            },
        }
    }

    fn healthy(&self, device: usize, step: u64) -> Reading {
        let t = step as f64 / self.rate;
        let l = self.levels(device);
        let wave = |period: f64| (TAU * t / period + l.phase).sin();
        Reading {
            vibration_rms: round(
                l.vibration * (1.0 + 0.15 * wave(20.0) + 0.03 * self.gauss(device, step, 1)),
            ),
            temperature: round(
                l.temperature + 1.5 * wave(300.0) + 0.1 * self.gauss(device, step, 2),
            ),
            current: round(
                l.current * (1.0 + 0.1 * wave(45.0) + 0.02 * self.gauss(device, step, 3)),
            ),
        }
    }

    fn levels(&self, device: usize) -> Levels {
        let u = |salt| unit(hash(&[self.seed, device as u64, u64::MAX, salt]));
        Levels {
            vibration: 0.8 + 0.6 * u(1),
            temperature: 45.0 + 10.0 * u(2),
            current: 8.0 + 6.0 * u(3),
            phase: TAU * u(4),
        }
    }

    /// Roughly standard-normal noise (Irwin-Hall of four uniforms).
    fn gauss(&self, device: usize, step: u64, channel: u64) -> f64 {
        let sum: f64 = (0..4)
            .map(|i| {
                unit(hash(&[
                    self.seed,
                    device as u64,
                    step,
                    16 + channel * 4 + i,
                ]))
            })
            .sum();
        (sum - 2.0) * 3f64.sqrt()
    }
}

struct Levels {
    vibration: f64,
    temperature: f64,
    current: f64,
    phase: f64,
}

fn round(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

/// splitmix64 finaliser chained over `parts`.
pub(super) fn hash(parts: &[u64]) -> u64 {
    parts.iter().fold(0x9E37_79B9_7F4A_7C15, |acc, &p| {
        let mut z = (acc ^ p).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    })
}

/// Uniform in `[0, 1)` from the top 53 bits.
pub(super) fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_of(g: &Generator, cycle: u64, kind: FaultKind) -> Fault {
        g.faults_in_cycle(cycle)
            .into_iter()
            .find(|f| f.kind == kind)
            .unwrap()
    }

    #[test]
    fn same_seed_gives_same_readings_and_another_seed_differs() {
        let a = Generator::new(7, 5, 10.0, true);
        let b = Generator::new(7, 5, 10.0, true);
        let c = Generator::new(8, 5, 10.0, true);
        let series = |g: &Generator| -> Vec<Reading> {
            (0..5)
                .flat_map(|d| (0..2000).map(move |s| (d, s)))
                .map(|(d, s)| g.reading(d, s))
                .collect()
        };
        assert_eq!(series(&a), series(&b));
        assert_ne!(series(&a), series(&c));
    }

    #[test]
    fn healthy_values_stay_in_plausible_ranges() {
        let g = Generator::new(1, 20, 10.0, false);
        for d in 0..20 {
            for s in (0..36_000).step_by(7) {
                let r = g.reading(d, s);
                assert!((0.4..2.0).contains(&r.vibration_rms), "{r:?}");
                assert!((42.0..58.0).contains(&r.temperature), "{r:?}");
                assert!((6.0..16.5).contains(&r.current), "{r:?}");
            }
        }
    }

    #[test]
    fn readings_vary_over_time() {
        let g = Generator::new(3, 1, 10.0, false);
        let first = g.reading(0, 0);
        assert!((1..50).all(|s| g.reading(0, s) != first));
    }

    #[test]
    fn no_faults_when_disabled() {
        let g = Generator::new(5, 4, 10.0, false);
        assert!((0..4).all(|d| (0..2400).all(|s| g.fault_at(d, s as f64 / 10.0).is_none())));
    }

    #[test]
    fn scheduled_fault_windows_do_not_overlap() {
        let mut windows: Vec<(f64, f64)> = SCHEDULE.iter().map(|(_, o, l)| (*o, o + l)).collect();
        windows.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert!(windows.windows(2).all(|w| w[0].1 <= w[1].0), "{windows:?}");
        assert!(windows.iter().all(|w| w.1 <= FAULT_CYCLE_SECS));
    }

    #[test]
    fn vibration_burst_appears_only_on_its_device_and_window() {
        let g = Generator::new(11, 6, 10.0, true);
        let burst = kind_of(&g, 0, FaultKind::VibrationBurst);
        let healthy = Generator::new(11, 6, 10.0, false);
        let inside = (burst.start * 10.0) as u64 + 5;
        let before = (burst.start * 10.0) as u64 - 5;
        assert!(
            g.reading(burst.device, inside).vibration_rms
                > 4.0 * healthy.reading(burst.device, inside).vibration_rms
        );
        assert_eq!(
            g.reading(burst.device, before),
            healthy.reading(burst.device, before)
        );
        // Fault windows are disjoint in time, so no other device is faulty.
        let other = (burst.device + 1) % 6;
        assert_eq!(g.reading(other, inside), healthy.reading(other, inside));
    }

    #[test]
    fn temperature_drifts_upwards_during_the_drift_fault() {
        let g = Generator::new(2, 3, 10.0, true);
        let drift = kind_of(&g, 1, FaultKind::TemperatureDrift);
        let start = (drift.start * 10.0) as u64;
        let end = ((drift.start + drift.len) * 10.0) as u64 - 1;
        let rise =
            g.reading(drift.device, end).temperature - g.reading(drift.device, start).temperature;
        assert!(rise > 15.0, "rose {rise} °C");
    }

    #[test]
    fn stuck_sensor_repeats_one_reading_for_the_whole_window() {
        let g = Generator::new(9, 4, 10.0, true);
        let stuck = kind_of(&g, 2, FaultKind::StuckSensor);
        let first = (stuck.start * 10.0).ceil() as u64;
        let last = ((stuck.start + stuck.len) * 10.0).ceil() as u64 - 1;
        let frozen = g.reading(stuck.device, first);
        assert!((first..=last).all(|s| g.reading(stuck.device, s) == frozen));
        assert_ne!(g.reading(stuck.device, last + 1), frozen);
    }

    #[test]
    fn spike_triples_current() {
        let g = Generator::new(4, 2, 10.0, true);
        let spike = kind_of(&g, 0, FaultKind::Spike);
        let step = (spike.start * 10.0) as u64;
        let healthy = Generator::new(4, 2, 10.0, false).reading(spike.device, step);
        let r = g.reading(spike.device, step);
        assert!(
            (r.current - 3.0 * healthy.current).abs() < 1e-3,
            "{r:?} vs {healthy:?}"
        );
    }

    #[test]
    fn level_shift_raises_current_for_its_whole_window_only() {
        let g = Generator::new(6, 3, 10.0, true);
        let healthy = Generator::new(6, 3, 10.0, false);
        let shift = kind_of(&g, 1, FaultKind::LevelShift);
        let first = (shift.start * 10.0).ceil() as u64;
        let last = ((shift.start + shift.len) * 10.0).ceil() as u64 - 1;
        for step in first..=last {
            let (r, h) = (
                g.reading(shift.device, step),
                healthy.reading(shift.device, step),
            );
            assert!((r.current - 1.3 * h.current).abs() < 1e-3, "{r:?} vs {h:?}");
            assert_eq!(r.temperature, h.temperature);
        }
        assert_eq!(
            g.reading(shift.device, last + 1),
            healthy.reading(shift.device, last + 1)
        );
    }

    #[test]
    fn faults_rotate_over_devices_between_cycles() {
        let g = Generator::new(42, 20, 10.0, true);
        let devices: std::collections::HashSet<usize> =
            (0..20).map(|c| g.faults_in_cycle(c)[0].device).collect();
        assert!(devices.len() > 5, "bursts hit only {devices:?}");
    }

    #[test]
    fn chosen_fault_devices_get_every_fault_and_others_none() {
        let g = Generator::new(42, 20, 10.0, true).with_fault_devices(vec![3, 7]);
        let hit: std::collections::HashSet<usize> = (0..10)
            .flat_map(|c| g.faults_in_cycle(c).map(|f| f.device))
            .collect();
        assert_eq!(hit, [3, 7].into_iter().collect());
    }
}
