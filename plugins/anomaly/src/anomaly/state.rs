//! Per-key state: the running statistics that standardise each feature, the
//! window of past values and the threshold calibration.
//!
//! The standardisation must match what the models were trained on
//! (`models/anomaly/features.py`): row `t` is scored with the last `history`
//! raw values standardised by the statistics *before* row `t` was added, so a
//! spike does not inflate its own scale.

use std::collections::VecDeque;
use std::time::Duration;

use super::fitting::PcaState;
use super::incident::Incidents;
use super::likelihood::Likelihood;

/// Values beyond this many standard deviations are clipped before they update
/// the statistics, so an anomaly barely shifts the baseline it is judged by.
const CLIP_SIGMAS: f64 = 4.0;

/// A feature whose last `history` rows average more than this many standard
/// deviations from its running mean, for [`REBASE_ROWS`] rows in a row, has
/// settled at a new level: its running mean moves there at once. Both were
/// chosen on the tuning part of `models/anomaly/corpus.py` (see
/// `models/anomaly/README.md`).
const REBASE_SIGMAS: f64 = 2.0;
/// Rows a feature must stay away (see [`REBASE_SIGMAS`]) before it is
/// rebased.
const REBASE_ROWS: u32 = 40;

/// Standardised values fed to a model are clipped to this many standard
/// deviations: a larger deviation says nothing more, and the models are
/// trained on clipped windows (`INPUT_CLIP` in `models/anomaly/features.py`).
pub(crate) const INPUT_CLIP: f64 = 20.0;

/// Running mean and variance of one feature.
///
/// The weight of a new value is `max(1 / n, 1 / horizon)`: a cumulative
/// average while fewer than `horizon` rows were seen, an exponentially
/// weighted one after.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Normalizer {
    n: u64,
    mean: f64,
    var: f64,
    /// Rows in a row the recent mean sat far from `mean`.
    away: u32,
}

impl Normalizer {
    /// The standard deviation used to scale, floored so a constant series
    /// does not divide by zero.
    fn scale(&self) -> f64 {
        self.var.sqrt().max(1e-9 + 1e-6 * self.mean.abs())
    }

    /// Adds `x`; values are clipped once `warmup` rows were seen.
    /// After an update: counts the rows whose `recent` mean sat more than
    /// [`REBASE_SIGMAS`] away, and moves the mean there after
    /// [`REBASE_ROWS`] of them in a row.
    fn settle(&mut self, recent: f64) {
        if (recent - self.mean).abs() > REBASE_SIGMAS * self.var.sqrt() {
            self.away += 1;
        } else {
            self.away = 0;
        }
        if self.away >= REBASE_ROWS {
            self.mean = recent;
            self.away = 0;
        }
    }

    fn update(&mut self, x: f64, alpha: f64, warmup: u64) {
        let x = if self.n >= warmup {
            let s = self.var.sqrt();
            x.clamp(self.mean - CLIP_SIGMAS * s, self.mean + CLIP_SIGMAS * s)
        } else {
            x
        };
        self.n += 1;
        let a = (1.0 / self.n as f64).max(alpha);
        let d = x - self.mean;
        self.mean += a * d;
        self.var = (1.0 - a) * (self.var + a * d * d);
    }
}

/// How a key's rows are turned into model inputs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WindowSpec {
    /// Rows per window.
    pub history: usize,
    /// Features per row.
    pub features: usize,
    /// Rows a key must have seen before its first score (`>= history`).
    pub warmup: u64,
    /// Weight floor of the running statistics, `1 / horizon`.
    pub alpha: f64,
    /// Whether to standardise; otherwise raw values are fed to the model.
    pub normalize: bool,
    /// Whether a feature that settles at a new level is rebased there.
    pub rebase: bool,
}

/// Threshold calibration of one key: scores seen during the calibration
/// period, kept in a bounded reservoir.
#[derive(Debug, Clone)]
pub(crate) enum Calibration {
    /// A fixed threshold: nothing to learn.
    Fixed,
    /// Still learning since `started_ms` (the key's first score).
    Learning {
        started_ms: Option<i64>,
        seen: u64,
        samples: Vec<f32>,
        rng: u64,
    },
    /// Learned.
    Done(f64),
}

/// Calibration settings shared by every key.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CalibrationSpec {
    /// How long a key learns, from its first score.
    pub period: Duration,
    /// Quantile of the learned scores that becomes the threshold.
    pub quantile: f64,
    /// Lowest threshold calibration may produce.
    pub floor: f64,
    /// Scores kept per key at most.
    pub capacity: usize,
}

impl Calibration {
    /// Records `score` at `now_ms` and returns the key's threshold, or `None`
    /// while it is still learning.
    pub fn observe(&mut self, score: f32, now_ms: i64, spec: &CalibrationSpec) -> Option<f64> {
        match self {
            Calibration::Fixed => None,
            Calibration::Done(t) => Some(*t),
            Calibration::Learning {
                started_ms,
                seen,
                samples,
                rng,
            } => {
                let started = *started_ms.get_or_insert(now_ms);
                let elapsed = now_ms.saturating_sub(started);
                if elapsed >= 0 && elapsed as u128 >= spec.period.as_millis() && !samples.is_empty()
                {
                    let t = quantile(samples, spec.quantile).max(spec.floor);
                    *self = Calibration::Done(t);
                    return Some(t);
                }
                *seen += 1;
                if samples.len() < spec.capacity {
                    samples.push(score);
                } else {
                    // Reservoir sampling keeps a uniform sample of every
                    // score seen while learning, in bounded memory.
                    let j = (next_random(rng) % *seen) as usize;
                    if j < samples.len() {
                        samples[j] = score;
                    }
                }
                None
            }
        }
    }
}

fn next_random(state: &mut u64) -> u64 {
    // xorshift64*: deterministic, so replays of the same data calibrate to
    // the same thresholds.
    let mut x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    x.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

/// The `q` quantile (nearest rank, rounding up) of `values`.
pub(crate) fn quantile(values: &mut [f32], q: f64) -> f64 {
    values.sort_unstable_by(f32::total_cmp);
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
    f64::from(values[rank - 1])
}

/// Everything kept for one key.
#[derive(Debug, Clone)]
pub(crate) struct KeyState {
    stats: Vec<Normalizer>,
    /// The last `history` raw rows, `features` values each, oldest first.
    ring: VecDeque<f64>,
    seen: u64,
    /// Processing time of the last row, for idle eviction.
    pub last_seen: tokio::time::Instant,
    /// Threshold calibration.
    pub calibration: Calibration,
    /// Anomaly likelihood of the key's scores.
    pub likelihood: Likelihood,
    /// The key's incidents.
    pub incidents: Incidents,
    /// The key's PCA model or fit rows, when scored by PCA.
    pub pca: Option<PcaState>,
}

impl KeyState {
    /// A fresh key.
    pub fn new(spec: &WindowSpec, now: tokio::time::Instant, calibrating: bool) -> Self {
        Self {
            stats: vec![Normalizer::default(); spec.features],
            ring: VecDeque::with_capacity(spec.history * spec.features),
            seen: 0,
            last_seen: now,
            calibration: if calibrating {
                Calibration::Learning {
                    started_ms: None,
                    seen: 0,
                    samples: Vec::new(),
                    rng: 0x9E37_79B9_7F4A_7C15,
                }
            } else {
                Calibration::Fixed
            },
            likelihood: Likelihood::default(),
            incidents: Incidents::default(),
            pca: None,
        }
    }

    /// Adds one row of finite values. When the key is warm, appends the
    /// model input for this row to `out` (`history * features` values) and
    /// returns `true`.
    pub fn observe(&mut self, row: &[f64], spec: &WindowSpec, out: &mut Vec<f32>) -> bool {
        if self.ring.len() == spec.history * spec.features {
            self.ring.drain(..spec.features);
        }
        self.ring.extend(row.iter().copied());
        let scorable = self.seen >= spec.warmup;
        if scorable {
            if spec.normalize {
                // Feature by feature, so each scale (a square root) is
                // computed once per row rather than once per value.
                let base = out.len();
                out.resize(base + self.ring.len(), 0.0);
                let window = &mut out[base..];
                for (f, s) in self.stats.iter().enumerate() {
                    let (mean, scale) = (s.mean, s.scale());
                    let values = self.ring.iter().skip(f).step_by(spec.features);
                    let slots = window[f..].iter_mut().step_by(spec.features);
                    for (slot, x) in slots.zip(values) {
                        *slot = ((x - mean) / scale).clamp(-INPUT_CLIP, INPUT_CLIP) as f32;
                    }
                }
            } else {
                out.extend(self.ring.iter().map(|x| *x as f32));
            }
        }
        if spec.normalize {
            for (s, x) in self.stats.iter_mut().zip(row) {
                s.update(*x, spec.alpha, spec.warmup);
            }
            if spec.rebase && scorable {
                let rows = (self.ring.len() / spec.features) as f64;
                for (f, s) in self.stats.iter_mut().enumerate() {
                    let sum: f64 = self.ring.iter().skip(f).step_by(spec.features).sum();
                    s.settle(sum / rows);
                }
            }
        }
        self.seen += 1;
        scorable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(history: usize, warmup: u64) -> WindowSpec {
        WindowSpec {
            history,
            features: 1,
            warmup,
            alpha: 1.0 / 1000.0,
            normalize: true,
            rebase: true,
        }
    }

    #[test]
    fn normalizer_matches_the_population_statistics_while_warming_up() {
        let mut n = Normalizer::default();
        for x in [1.0, 2.0, 3.0, 4.0] {
            n.update(x, 1e-3, 100);
        }
        assert!((n.mean - 2.5).abs() < 1e-12);
        assert!((n.var - 1.25).abs() < 1e-12);
    }

    #[test]
    fn normalizer_clips_outliers_after_warmup() {
        let mut n = Normalizer::default();
        for i in 0..200 {
            n.update(if i % 2 == 0 { -1.0 } else { 1.0 }, 1e-3, 100);
        }
        let before = n.mean;
        n.update(1e9, 1e-3, 100);
        // At most 4 sigma (about 4.0) with weight 1/201.
        assert!(n.mean - before < 4.1 / 201.0, "{}", n.mean - before);
    }

    #[test]
    fn key_scores_once_warm_with_the_statistics_before_the_row() {
        let s = spec(3, 4);
        let mut k = KeyState::new(&s, tokio::time::Instant::now(), false);
        let mut out = Vec::new();
        for x in [1.0, 2.0, 3.0, 4.0] {
            assert!(!k.observe(&[x], &s, &mut out));
        }
        assert!(out.is_empty());
        assert!(k.observe(&[100.0], &s, &mut out));
        // Statistics of 1..4: mean 2.5, sd sqrt(1.25); the spike (87 sd)
        // is clipped.
        let sd = 1.25f64.sqrt();
        let want = [(3.0 - 2.5) / sd, (4.0 - 2.5) / sd, INPUT_CLIP];
        for (got, want) in out.iter().zip(want) {
            assert!((f64::from(*got) - want).abs() < 1e-5, "{got} vs {want}");
        }
    }

    /// Feature 0 wobbles around 0, then around 50 from row 300; feature 1
    /// wobbles around 0 with a spread of 10 throughout.
    fn shifted_key(s: &WindowSpec) -> KeyState {
        let mut k = KeyState::new(s, tokio::time::Instant::now(), false);
        let mut out = Vec::new();
        for i in 0..400 {
            let wobble = if i % 2 == 0 { -1.0 } else { 1.0 };
            let level = if i < 300 { 0.0 } else { 50.0 };
            k.observe(&[level + wobble, 10.0 * wobble], s, &mut out);
        }
        k
    }

    #[test]
    fn a_feature_that_settles_at_a_new_level_is_rebased_there() {
        let s = WindowSpec {
            features: 2,
            ..spec(4, 8)
        };
        let k = shifted_key(&WindowSpec { rebase: false, ..s });
        // Clipped at 4 sd, the running mean has barely followed the shift.
        assert!(k.stats[0].mean < 25.0, "{}", k.stats[0].mean);
        let k = shifted_key(&s);
        // 40 rows away from it, then moved to the last 4 rows' mean.
        assert!((k.stats[0].mean - 50.0).abs() < 1.0, "{}", k.stats[0].mean);
        assert!(k.stats[1].mean.abs() < 1.0, "{}", k.stats[1].mean);
    }

    #[test]
    fn raw_windows_are_fed_when_normalisation_is_off() {
        let s = WindowSpec {
            normalize: false,
            ..spec(2, 2)
        };
        let mut k = KeyState::new(&s, tokio::time::Instant::now(), false);
        let mut out = Vec::new();
        for x in [5.0, 6.0, 7.0] {
            k.observe(&[x], &s, &mut out);
        }
        assert_eq!(out, vec![6.0, 7.0]);
    }

    #[test]
    fn standardised_values_are_clipped_both_ways() {
        let s = spec(2, 4);
        let mut k = KeyState::new(&s, tokio::time::Instant::now(), false);
        let mut out = Vec::new();
        for x in [1.0, 2.0, 1.0, 2.0, -1e12] {
            k.observe(&[x], &s, &mut out);
        }
        out.clear();
        assert!(k.observe(&[1e12], &s, &mut out));
        assert_eq!(out, vec![-INPUT_CLIP as f32, INPUT_CLIP as f32]);
    }

    #[test]
    fn calibration_learns_the_quantile_after_the_period() {
        let spec = CalibrationSpec {
            period: Duration::from_secs(10),
            quantile: 0.9,
            floor: 0.0,
            capacity: 1000,
        };
        let mut c = Calibration::Learning {
            started_ms: Some(0),
            seen: 0,
            samples: vec![],
            rng: 1,
        };
        for i in 0..100 {
            assert_eq!(c.observe(i as f32 / 100.0, i * 100, &spec), None);
        }
        assert_eq!(c.observe(0.0, 10_000, &spec), Some(f64::from(0.89f32)));
    }

    #[test]
    fn calibration_keeps_a_bounded_sample() {
        let spec = CalibrationSpec {
            period: Duration::from_secs(3600),
            quantile: 0.5,
            floor: 0.0,
            capacity: 64,
        };
        let mut c = Calibration::Learning {
            started_ms: Some(0),
            seen: 0,
            samples: vec![],
            rng: 7,
        };
        for i in 0..10_000 {
            c.observe((i % 100) as f32, i, &spec);
        }
        let Calibration::Learning { samples, .. } = &c else {
            unreachable!()
        };
        assert_eq!(samples.len(), 64);
        // A uniform sample of 0..100 has its median far from the first values.
        let t = c.observe(0.0, 3_600_000, &spec).unwrap();
        assert!((20.0..80.0).contains(&t), "{t}");
    }

    #[test]
    fn calibrated_threshold_respects_the_floor() {
        let spec = CalibrationSpec {
            period: Duration::from_secs(1),
            quantile: 0.99,
            floor: 0.5,
            capacity: 8,
        };
        let mut c = Calibration::Learning {
            started_ms: Some(0),
            seen: 0,
            samples: vec![],
            rng: 1,
        };
        c.observe(0.01, 0, &spec);
        assert_eq!(c.observe(0.01, 1000, &spec), Some(0.5));
    }

    #[test]
    fn quantile_uses_nearest_rank() {
        let mut v = vec![3.0, 1.0, 2.0, 4.0];
        assert_eq!(quantile(&mut v, 0.5), 2.0);
        assert_eq!(quantile(&mut v, 1.0), 4.0);
        assert_eq!(quantile(&mut v, 0.0), 1.0);
    }
}
