//! A deterministic simulated multi-sensor pump rig, and the measurement that
//! chose [`FitOptions::default`].
//!
//! Each run is 1050-1150 rows at 1 Hz of six sensors: two vibration RMS
//! accelerometers, motor current, outlet pressure, motor temperature and
//! volume flow. All follow a slowly wandering pump load; the accelerometers
//! share a vibration source; the motor warms up towards a plateau (some runs
//! start cold, so temperature still drifts after the fit rows); every sensor
//! has autocorrelated noise and a slow gain drift (a random walk of about
//! 0.8 % over 700 rows), flow is quantised to 0.1, and one row in 500 has a
//! one-row glitch of one sensor (5-20 %, labelled normal). The first 400 rows
//! are normal; one fault starts between rows 450 and 750 and lasts 250-450
//! rows (to the end of the run in 40 % of runs), ramping in over 20 rows:
//! - valve partly closed: flow down 3-12 %, pressure up 1.5 times that,
//!   current up 0.4 times that;
//! - cavitation: vibration 10-30 % higher and 2-4 times noisier, flow 2 %
//!   lower and noisier, pressure 3 % lower;
//! - imbalance: accelerometer 1 up 15-40 %, accelerometer 2 half that,
//!   current up 1 %;
//! - overheating: temperature rising 0.005-0.02 °C per row above normal.
//!
//! Run the table with
//! `cargo test -p sluice-plugin-anomaly --lib pca::rig -- --ignored --nocapture`.

use super::{FitOptions, LimitMethod, PcaModel, RatioSmoother};

/// Sensor columns, in row order.
pub(super) const FEATURES: [&str; 6] = [
    "accelerometer1",
    "accelerometer2",
    "current",
    "pressure",
    "temperature",
    "flow",
];
/// Normal rows at the start of every run, the rows a model is fitted on.
pub(super) const FIT_ROWS: usize = 400;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fault {
    Valve,
    Cavitation,
    Imbalance,
    Overheating,
}

pub(super) struct Run {
    /// Row-major, `labels.len() x FEATURES.len()`.
    pub rows: Vec<f64>,
    pub labels: Vec<bool>,
    pub fault: Fault,
}

/// SplitMix64 with Box-Muller normals: deterministic on every platform.
pub(super) struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
    pub fn normal(&mut self) -> f64 {
        let u = self.unit().max(1e-300);
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// AR(1) noise with stationary standard deviation `sd` and lag-1
/// correlation `phi`.
struct Ar {
    phi: f64,
    sd: f64,
    x: f64,
}

impl Ar {
    fn new(phi: f64, sd: f64) -> Self {
        Self { phi, sd, x: 0.0 }
    }
    fn step(&mut self, rng: &mut Rng, sd_factor: f64) -> f64 {
        let innovation = self.sd * (1.0 - self.phi * self.phi).sqrt();
        self.x = self.phi * self.x + innovation * sd_factor * rng.normal();
        self.x
    }
}

/// `count` runs of the rig; run `i` of a seed is the same on every call.
pub(super) fn runs(seed: u64, count: usize) -> Vec<Run> {
    (0..count)
        .map(|i| run(&mut Rng::new(seed.wrapping_mul(1_000_003) + i as u64), i))
        .collect()
}

fn run(rng: &mut Rng, index: usize) -> Run {
    let fault = [
        Fault::Valve,
        Fault::Cavitation,
        Fault::Imbalance,
        Fault::Overheating,
    ][index % 4];
    let n = 1050 + (rng.unit() * 100.0) as usize;
    let start = 450 + (rng.unit() * 300.0) as usize;
    let end = if rng.unit() < 0.4 {
        n
    } else {
        (start + 250 + (rng.unit() * 200.0) as usize).min(n)
    };
    let severity = rng.unit();
    let load0 = rng.uniform(0.9, 1.1);
    let temp0 = rng.uniform(62.0, 72.0);
    let warm_offset = rng.uniform(0.0, 3000.0);
    let mut load = Ar::new(0.98, 0.04);
    let mut shared_vib = Ar::new(0.3, 0.03);
    let (mut a1, mut a2) = (Ar::new(0.2, 0.03), Ar::new(0.2, 0.03));
    let mut cur = Ar::new(0.5, 0.004);
    let mut pres = Ar::new(0.5, 0.004);
    let mut temp = Ar::new(0.9, 0.05);
    let mut flow = Ar::new(0.4, 0.25);
    // Slow gain drift of each sensor but temperature (a random walk of
    // about 0.8 % after 700 rows): relations learnt on the fit rows loosen.
    let mut gain = [1.0f64; 6];

    let mut rows = Vec::with_capacity(n * FEATURES.len());
    let mut labels = Vec::with_capacity(n);
    for t in 0..n {
        let on = t >= start && t < end;
        let ramp = if on {
            ((t - start) as f64 / 20.0).min(1.0)
        } else {
            0.0
        };
        let l = load0 + load.step(rng, 1.0);
        for g in &mut gain {
            *g += 0.0003 * rng.normal();
        }
        let (mut vib_gain, mut vib_noise, mut a1_gain, mut a2_gain) = (1.0, 1.0, 1.0, 1.0);
        let (mut flow_gain, mut flow_noise, mut pres_gain, mut cur_gain) = (1.0, 1.0, 1.0, 1.0);
        let mut temp_extra = 0.0;
        if on {
            match fault {
                Fault::Valve => {
                    let a = 0.01 + 0.07 * severity;
                    flow_gain -= a * ramp;
                    pres_gain += 1.5 * a * ramp;
                    cur_gain += 0.4 * a * ramp;
                }
                Fault::Cavitation => {
                    vib_gain += (0.05 + 0.2 * severity) * ramp;
                    vib_noise += (0.5 + 2.0 * severity) * ramp;
                    flow_gain -= 0.02 * ramp;
                    flow_noise += ramp;
                    pres_gain -= 0.03 * ramp;
                }
                Fault::Imbalance => {
                    let a = 0.05 + 0.3 * severity;
                    a1_gain += a * ramp;
                    a2_gain += 0.5 * a * ramp;
                    cur_gain += 0.01 * ramp;
                }
                Fault::Overheating => {
                    temp_extra = (0.002 + 0.013 * severity) * (t - start) as f64;
                }
            }
        }
        let vib = 0.027 * (0.8 + 0.2 * l * l) * vib_gain;
        let shared = shared_vib.step(rng, vib_noise);
        let acc1 = vib * a1_gain * (1.0 + shared + a1.step(rng, vib_noise));
        let acc2 = 1.45 * vib * a2_gain * (1.0 + shared + a2.step(rng, vib_noise));
        let f = 32.0 * l * flow_gain + flow.step(rng, flow_noise);
        let p = 0.38 * l * l * pres_gain * (1.0 + pres.step(rng, 1.0));
        let c = 0.77 * (0.6 + 0.4 * l * l * l) * cur_gain * (1.0 + cur.step(rng, 1.0));
        let warm = 4.0 * (1.0 - (-(t as f64 + warm_offset) / 800.0).exp());
        let temp_c = temp0 + warm + 1.5 * (l - load0) + temp_extra + temp.step(rng, 1.0);
        let mut row = [
            acc1 * gain[0],
            acc2 * gain[1],
            c * gain[2],
            p * gain[3],
            temp_c,
            (f * gain[5] * 10.0).round() / 10.0,
        ];
        // A single-row glitch of one sensor, 1 row in 500: not a fault.
        if rng.unit() < 0.002 {
            let i = (rng.unit() * 6.0) as usize % 6;
            row[i] *= 1.0 + rng.uniform(0.05, 0.2) * if rng.unit() < 0.5 { -1.0 } else { 1.0 };
        }
        rows.extend_from_slice(&row);
        labels.push(on);
    }
    Run {
        rows,
        labels,
        fault,
    }
}

/// How per-row ratios become decisions in the measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Smoothing {
    /// The shipped [`RatioSmoother`]: mean of the last `w` ratios above 1.
    Mean(usize),
    /// Median of the last `w` ratios above 1.
    Median(usize),
    /// At least `k` of the last `m` ratios above 1.
    KOfM(usize, usize),
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Counts {
    pub tp: u64,
    pub fp: u64,
    pub fn_: u64,
}

impl Counts {
    pub fn precision(&self) -> f64 {
        self.tp as f64 / ((self.tp + self.fp) as f64).max(1.0)
    }
    pub fn recall(&self) -> f64 {
        self.tp as f64 / ((self.tp + self.fn_) as f64).max(1.0)
    }
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
    fn add(&mut self, label: bool, flag: bool) {
        match (label, flag) {
            (true, true) => self.tp += 1,
            (false, true) => self.fp += 1,
            (true, false) => self.fn_ += 1,
            (false, false) => {}
        }
    }
}

/// Fits each run on its first [`FIT_ROWS`] rows and counts the decisions on
/// the rows after them, per fault kind and in total.
pub(super) fn evaluate(runs: &[Run], options: &FitOptions, smoothing: Smoothing) -> Counts {
    let d = FEATURES.len();
    let mut total = Counts::default();
    for run in runs {
        let Ok(model) = PcaModel::fit(&run.rows[..FIT_ROWS * d], d, options) else {
            continue;
        };
        let mut smoother = match smoothing {
            Smoothing::Mean(w) => RatioSmoother::new(w),
            _ => RatioSmoother::new(1),
        };
        let mut recent: Vec<f64> = Vec::new();
        for (row, &label) in run.rows.chunks_exact(d).zip(&run.labels).skip(FIT_ROWS) {
            let ratio = model.score(row).ratio;
            recent.push(ratio);
            let flag = match smoothing {
                Smoothing::Mean(_) => smoother.push(ratio) > 1.0,
                Smoothing::Median(w) => {
                    let mut tail = recent[recent.len().saturating_sub(w)..].to_vec();
                    tail.sort_by(f64::total_cmp);
                    let h = tail.len() / 2;
                    let median = if tail.len() % 2 == 1 {
                        tail[h]
                    } else {
                        (tail[h - 1] + tail[h]) / 2.0
                    };
                    median > 1.0
                }
                Smoothing::KOfM(k, m) => {
                    let tail = &recent[recent.len().saturating_sub(m)..];
                    tail.iter().filter(|&&r| r > 1.0).count() >= k
                }
            };
            total.add(label, flag);
        }
    }
    total
}

/// Runs of the seeds the defaults were chosen on.
const TUNING_SEEDS: [u64; 3] = [1, 2, 3];
/// Runs of the seeds the defaults are reported on.
const HELD_OUT_SEEDS: [u64; 3] = [101, 102, 103];
/// Runs per seed, as many as in a public pump-rig benchmark.
const RUNS_PER_SEED: usize = 34;

fn seeds(seeds: &[u64]) -> Vec<Run> {
    seeds.iter().flat_map(|&s| runs(s, RUNS_PER_SEED)).collect()
}

#[test]
fn runs_are_deterministic_and_labelled_after_the_fit_rows() {
    let a = runs(7, 4);
    let b = runs(7, 4);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.rows, y.rows);
        assert_eq!(x.labels, y.labels);
        assert!(!x.labels[..FIT_ROWS + 50].iter().any(|&l| l));
        assert!(x.labels.iter().filter(|&&l| l).count() >= 250);
        assert!(x.rows.iter().all(|v| v.is_finite()));
    }
    assert_ne!(a[0].rows, runs(8, 1)[0].rows);
}

#[test]
fn defaults_detect_faults_on_held_out_simulated_runs() {
    let runs = seeds(&HELD_OUT_SEEDS);
    let defaults = FitOptions::default();
    let counts = evaluate(&runs, &defaults, Smoothing::Mean(defaults.smooth));
    assert!(counts.f1() >= 0.85, "F1 {:.3} ({counts:?})", counts.f1());
    let raw = evaluate(&runs, &defaults, Smoothing::Mean(1));
    assert!(
        counts.f1() > raw.f1(),
        "smoothing should help: {counts:?} vs {raw:?}"
    );
}

fn row(label: &str, options: &FitOptions, smoothing: Smoothing, tuning: &[Run], held_out: &[Run]) {
    let (t, h) = (
        evaluate(tuning, options, smoothing),
        evaluate(held_out, options, smoothing),
    );
    eprintln!(
        "| {label} | {:.3} / {:.3} / **{:.3}** | {:.3} / {:.3} / **{:.3}** |",
        t.precision(),
        t.recall(),
        t.f1(),
        h.precision(),
        h.recall(),
        h.f1()
    );
}

#[test]
#[ignore = "prints the table behind the defaults (about a minute)"]
fn table_of_settings_on_the_simulated_rig() {
    let tuning = seeds(&TUNING_SEEDS);
    let held_out = seeds(&HELD_OUT_SEEDS);
    let d = FitOptions::default();
    let smooth = Smoothing::Mean(d.smooth);
    eprintln!("| setting (others at their defaults) | tuning P / R / F1 | held-out P / R / F1 |");
    eprintln!("|---|---|---|");
    row("**defaults**", &d, smooth, &tuning, &held_out);
    for variance in [0.8, 0.85, 0.9, 0.99] {
        let o = FitOptions { variance, ..d };
        row(
            &format!("variance {variance}"),
            &o,
            smooth,
            &tuning,
            &held_out,
        );
    }
    for quantile in [0.95, 0.995, 0.999] {
        let o = FitOptions { quantile, ..d };
        row(
            &format!("quantile {quantile}"),
            &o,
            smooth,
            &tuning,
            &held_out,
        );
    }
    for margin in [1.0, 1.2, 2.0] {
        let o = FitOptions { margin, ..d };
        row(&format!("margin {margin}"), &o, smooth, &tuning, &held_out);
    }
    let o = FitOptions {
        limits: LimitMethod::Empirical,
        ..d
    };
    row("limits: empirical", &o, smooth, &tuning, &held_out);
    let o = FitOptions {
        limits: LimitMethod::Empirical,
        margin: 1.0,
        ..d
    };
    row(
        "limits: empirical, margin 1.0",
        &o,
        smooth,
        &tuning,
        &held_out,
    );
    for (label, s) in [
        ("no smoothing (smooth 1)", Smoothing::Mean(1)),
        ("mean of 3", Smoothing::Mean(3)),
        ("median of 5", Smoothing::Median(5)),
        ("3 of the last 5 above 1", Smoothing::KOfM(3, 5)),
    ] {
        row(label, &d, s, &tuning, &held_out);
    }
    let o = FitOptions {
        variance: 0.85,
        quantile: 0.999,
        margin: 1.0,
        ..d
    };
    row(
        "literature set-up: variance 0.85, quantile 0.999, margin 1, median of 5",
        &o,
        Smoothing::Median(5),
        &tuning,
        &held_out,
    );

    let mut grid = Vec::new();
    for limits in [LimitMethod::Empirical, LimitMethod::Parametric] {
        for variance in [0.8, 0.85, 0.9, 0.95, 0.99] {
            for quantile in [0.95, 0.99, 0.995, 0.999] {
                for margin in [1.0, 1.2, 1.5, 2.0] {
                    for smoothing in [Smoothing::Mean(1), Smoothing::Mean(5), Smoothing::Median(5)]
                    {
                        let o = FitOptions {
                            variance,
                            quantile,
                            margin,
                            limits,
                            smooth: 1,
                        };
                        grid.push((evaluate(&tuning, &o, smoothing).f1(), o, smoothing));
                    }
                }
            }
        }
    }
    grid.sort_by(|a, b| b.0.total_cmp(&a.0));
    eprintln!("\nbest 8 of {} settings on the tuning seeds:", grid.len());
    for (_, o, s) in grid.iter().take(8) {
        let label = format!(
            "{:?} {} {} {} {s:?}",
            o.limits, o.variance, o.quantile, o.margin
        );
        row(&label, o, *s, &tuning, &held_out);
    }

    eprintln!("\ndefaults per fault kind (held-out):");
    for kind in [
        Fault::Valve,
        Fault::Cavitation,
        Fault::Imbalance,
        Fault::Overheating,
    ] {
        let of_kind: Vec<Run> = seeds(&HELD_OUT_SEEDS)
            .into_iter()
            .filter(|r| r.fault == kind)
            .collect();
        let c = evaluate(&of_kind, &d, smooth);
        eprintln!(
            "{kind:?}: P {:.3} R {:.3} F1 {:.3}",
            c.precision(),
            c.recall(),
            c.f1()
        );
    }
    let mut kept = [0usize; 7];
    for run in &held_out {
        let dims = FEATURES.len();
        if let Ok(m) = PcaModel::fit(&run.rows[..FIT_ROWS * dims], dims, &d) {
            kept[m.components()] += 1;
        }
    }
    eprintln!("components kept by the defaults (held-out runs, index = k): {kept:?}");
}

/// Writes the first `SLUICE_RIG_RUNS` (default 3) runs of held-out seed 101
/// as CSV to `$SLUICE_RIG_CSV`, one `pump` key per run, with a `label`
/// column, for `sluice fit` and `sluice eval-anomaly`.
#[test]
#[ignore = "writes a CSV file for trying the command line"]
fn write_rig_csv() {
    use std::fmt::Write as _;
    let path = std::env::var("SLUICE_RIG_CSV").expect("set SLUICE_RIG_CSV to the CSV path");
    let count = std::env::var("SLUICE_RIG_RUNS").map_or(3, |n| n.parse().expect("a count"));
    let mut text = format!("timestamp,pump,{},label\n", FEATURES.join(","));
    for (i, run) in runs(HELD_OUT_SEEDS[0], count).iter().enumerate() {
        for (t, (row, label)) in run
            .rows
            .chunks_exact(FEATURES.len())
            .zip(&run.labels)
            .enumerate()
        {
            let values: Vec<String> = row.iter().map(|v| format!("{v:.6}")).collect();
            let ms = 1_700_000_000_000i64 + 1000 * t as i64;
            writeln!(
                text,
                "{ms},pump-{},{},{}",
                i + 1,
                values.join(","),
                u8::from(*label)
            )
            .unwrap();
        }
    }
    std::fs::write(&path, text).unwrap();
}
