//! Anomaly likelihood: a key's raw scores turned into the probability that
//! what it sees now is surprising *for that key*.
//!
//! A raw score means different things on a noisy CPU metric and a smooth
//! temperature: the first scores high all day, the second almost never. Per
//! key, the mean of the last `short` scores is compared with the long-run
//! distribution of that same short mean (running mean and variance with a
//! time constant of `horizon` rows, a Gaussian fit); the likelihood is the
//! probability that a draw from that distribution lies below the current
//! mean, `Φ(z)`. One threshold (say 0.9999) then means "a 1-in-10,000
//! surprise" on every series. The method follows the anomaly likelihood of
//! Ahmad et al., "Unsupervised real-time anomaly detection for streaming
//! data" (Neurocomputing 262, 2017), with running statistics instead of a
//! stored window so a key costs a few dozen bytes.
//!
//! A key also remembers its short spikes: rows whose raw score crosses
//! `spike_score` after a row below it. A key that saw `spikes` of them
//! within about `horizon` scores is spiky: a one- or two-row spike is part
//! of its normal behaviour (a valve that kicks, a bursty CPU), so a row of
//! it needs `persist` high rows in a row. A key that rarely spikes keeps
//! its first spike a surprise.

use std::collections::VecDeque;

/// Settings shared by every key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LikelihoodSpec {
    /// Scores averaged into the current value.
    pub short: usize,
    /// Time constant of the long-run statistics, in scores.
    pub horizon: f64,
    /// Scores a key sees before its first likelihood.
    pub learn: u64,
    /// Floor of the long-run standard deviation, so a key whose scores
    /// never moved does not call the first small wobble a surprise.
    pub min_std: f64,
    /// Raw score a row needs besides its likelihood.
    pub min_score: f64,
    /// Raw score that counts as a spike.
    pub spike_score: f64,
    /// Spikes within about `horizon` scores that make a key spiky.
    pub spikes: f64,
    /// High rows in a row a spiky key needs.
    pub persist: u32,
}

/// What a key's likelihood says of one row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Judged {
    /// The anomaly likelihood of the current short mean.
    pub likelihood: f64,
    /// Whether the raw score passes: at least `min_score`, and for a spiky
    /// key `persist` rows at or above `spike_score` in a row.
    pub raw_ok: bool,
}

/// Running state of one key.
#[derive(Debug, Clone, Default)]
pub(crate) struct Likelihood {
    recent: VecDeque<f64>,
    sum: f64,
    n: u64,
    mean: f64,
    var: f64,
    /// Spike onsets, decayed with the long-run time constant.
    onsets: f64,
    /// High rows in a row, up to now.
    run: u32,
}

impl Likelihood {
    /// Adds a raw score (a probability) and judges it, or returns `None`
    /// while the key is still learning. The key's memory is updated after
    /// the judgement, so a row is judged against the past only.
    pub fn judge(&mut self, raw: f64, spec: &LikelihoodSpec) -> Option<Judged> {
        let high = raw >= spec.spike_score;
        let onset = high && self.run == 0;
        self.run = if high { self.run.saturating_add(1) } else { 0 };
        let spiky = self.onsets >= spec.spikes;
        self.onsets = self.onsets * (1.0 - 1.0 / spec.horizon) + f64::from(u8::from(onset));
        let raw_ok = raw >= spec.min_score && (!spiky || self.run >= spec.persist);
        self.observe(log_odds(raw), spec)
            .map(|likelihood| Judged { likelihood, raw_ok })
    }

    /// Adds `score` (log-odds) and returns the likelihood of the current
    /// short mean, or `None` while the key is still learning. The
    /// statistics are updated after the likelihood is computed, so a
    /// surprise is judged against the past only.
    fn observe(&mut self, score: f64, spec: &LikelihoodSpec) -> Option<f64> {
        if self.recent.len() == spec.short
            && let Some(old) = self.recent.pop_front()
        {
            self.sum -= old;
        }
        self.recent.push_back(score);
        self.sum += score;
        // Re-sum now and then so rounding does not accumulate.
        if self.n.is_multiple_of(4096) {
            self.sum = self.recent.iter().sum();
        }
        let avg = self.sum / self.recent.len() as f64;
        let out = (self.n >= spec.learn).then(|| {
            let sd = self.var.sqrt().max(spec.min_std);
            normal_cdf((avg - self.mean) / sd)
        });
        self.n += 1;
        let a = (1.0 / self.n as f64).max(1.0 / spec.horizon);
        let d = avg - self.mean;
        self.mean += a * d;
        self.var = (1.0 - a) * (self.var + a * d * d);
        out
    }
}

/// Log-odds of a probability, clamped so 0 and 1 stay finite. The
/// likelihood's Gaussian fits these far better than the raw scores, which
/// crowd at both ends of (0, 1).
pub(crate) fn log_odds(p: f64) -> f64 {
    let p = p.clamp(1e-6, 1.0 - 1e-6);
    (p / (1.0 - p)).ln()
}

/// `Φ(z)`, the standard normal distribution function, accurate to about
/// 1e-7 relative in the upper tail (where thresholds live).
pub(crate) fn normal_cdf(z: f64) -> f64 {
    if z.is_nan() {
        return 0.5;
    }
    1.0 - 0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// Complementary error function, Chebyshev fit with fractional error below
/// 1.2e-7 everywhere (Numerical Recipes, `erfcc`).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let ans = t * poly.exp();
    if x >= 0.0 { ans } else { 2.0 - ans }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> LikelihoodSpec {
        LikelihoodSpec {
            short: 5,
            horizon: 500.0,
            learn: 100,
            min_std: 1e-3,
            min_score: 0.0,
            spike_score: 0.95,
            spikes: 3.0,
            persist: 3,
        }
    }

    #[test]
    fn normal_cdf_matches_known_values() {
        for (z, want) in [
            (0.0, 0.5),
            (1.0, 0.841_344_746),
            (-1.0, 0.158_655_254),
            (3.0, 0.998_650_102),
            (3.719_016, 0.9999),
            (4.264_891, 0.99999),
        ] {
            let got = normal_cdf(z);
            assert!((got - want).abs() < 2e-7, "Φ({z}) = {got}, want {want}");
        }
        assert_eq!(normal_cdf(40.0), 1.0);
        assert!(normal_cdf(-40.0) < 1e-300);
        assert_eq!(normal_cdf(f64::NAN), 0.5);
    }

    fn noise(i: u64) -> f64 {
        // Deterministic pseudo-noise in [0, 0.1).
        ((i.wrapping_mul(2_654_435_761) % 1000) as f64) / 10_000.0
    }

    #[test]
    fn nothing_is_reported_while_learning() {
        let mut l = Likelihood::default();
        for i in 0..100 {
            assert_eq!(l.observe(noise(i), &spec()), None);
        }
        assert!(l.observe(noise(100), &spec()).is_some());
    }

    #[test]
    fn ordinary_scores_stay_unsurprising_and_a_jump_is_a_surprise() {
        let s = spec();
        let mut l = Likelihood::default();
        let mut highest = 0.0f64;
        for i in 0..2000 {
            if let Some(p) = l.observe(noise(i), &s) {
                highest = highest.max(p);
            }
        }
        assert!(highest < 0.9999, "{highest}");
        let mut after = 0.0;
        for _ in 0..5 {
            after = l.observe(0.9, &s).unwrap();
        }
        assert!(after > 0.99999, "{after}");
    }

    #[test]
    fn the_same_raw_score_means_less_on_a_noisy_key() {
        let s = spec();
        let (mut quiet, mut noisy) = (Likelihood::default(), Likelihood::default());
        for i in 0..1000 {
            quiet.observe(noise(i) * 0.1, &s);
            noisy.observe(noise(i) * 8.0, &s);
        }
        let (mut q, mut n) = (0.0, 0.0);
        for _ in 0..5 {
            q = quiet.observe(0.5, &s).unwrap();
            n = noisy.observe(0.5, &s).unwrap();
        }
        assert!(q > 0.99999, "{q}");
        assert!(n < 0.99, "{n}");
    }

    #[test]
    fn recurring_spikes_need_persistence_and_a_first_spike_does_not() {
        let s = LikelihoodSpec {
            min_score: 0.9,
            horizon: 2000.0,
            ..spec()
        };
        let mut l = Likelihood::default();
        for _ in 0..200 {
            l.judge(0.1, &s);
        }
        // The key's first spike passes on its own.
        assert!(l.judge(0.99, &s).unwrap().raw_ok);
        for k in 0..3 {
            for _ in 0..100 {
                l.judge(0.1, &s);
            }
            // Fewer than 3 spikes (decayed) so far: not yet spiky.
            assert!(l.judge(0.99, &s).unwrap().raw_ok, "spike {k}");
        }
        for _ in 0..100 {
            l.judge(0.1, &s);
        }
        // Now a lone spike is ordinary; three high rows in a row are not.
        let run: Vec<bool> = (0..3).map(|_| l.judge(0.99, &s).unwrap().raw_ok).collect();
        assert_eq!(run, [false, false, true]);
        // A score below `min_score` never passes.
        assert!(!l.judge(0.5, &s).unwrap().raw_ok);
    }

    #[test]
    fn a_lasting_change_stops_being_a_surprise() {
        let s = spec();
        let mut l = Likelihood::default();
        for i in 0..1000 {
            l.observe(noise(i), &s);
        }
        let mut last = 1.0;
        for i in 0..3000 {
            last = l.observe(0.5 + noise(i), &s).unwrap();
        }
        assert!(last < 0.99, "{last}");
    }
}
