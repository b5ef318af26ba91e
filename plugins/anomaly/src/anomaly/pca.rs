//! A PCA T²+Q detector fitted on a key's own normal rows ("fitted on the
//! box"): Hotelling's T² inside the principal subspace and Q, the squared
//! prediction error, outside it.
//!
//! Fit (all on the fit rows, `n x d`, row-major):
//! 1. standardise each feature with its mean and sample standard deviation;
//!    a feature whose deviation is below `max(1e-4 |mean|, 1e-9)` is reported
//!    as constant and scaled by that floor instead;
//! 2. eigen-decompose the covariance of the standardised rows and keep the
//!    leading components up to [`FitOptions::variance`] of the variance (at
//!    least 1, at most `d - 1` so that Q can move when `d > 1`);
//! 3. learn the control limits of T² and Q ([`LimitMethod`]).
//!
//! Score of a row `x`: `z = (x - mean) / scale`, `t = P z` (`P` holds the kept
//! components as rows), `T² = Σ t_i² / λ_i`, `Q = ‖z - Pᵀ t‖²` and
//! `ratio = max(T² / T²_limit, Q / Q_limit)`: above 1 the row is outside the
//! limits. A [`RatioSmoother`] per key turns the per-row ratio into the
//! decision value: the mean of the key's last [`FitOptions::smooth`] ratios.
//!
//! ```
//! # use sluice_plugin_anomaly::anomaly::pca::{FitOptions, PcaModel};
//! // 3 features driven by one latent variable.
//! let rows: Vec<f64> = (0..200)
//!     .flat_map(|i| {
//!         let s = (i as f64 * 0.1).sin();
//!         let e = ((i * 7919) % 13) as f64 * 1e-3;
//!         [s + e, 2.0 * s - e, -s + 0.5 * e]
//!     })
//!     .collect();
//! let model = PcaModel::fit(&rows, 3, &FitOptions::default()).unwrap();
//! assert_eq!(model.components(), 1);
//! assert!(model.score(&[0.5, 1.0, -0.5]).ratio < 1.0);
//! assert!(model.score(&[0.5, -1.0, -0.5]).ratio > 1.0);
//! ```

mod file;
mod stats;
mod table;

#[cfg(test)]
mod rig;
#[cfg(test)]
mod tests;

use nalgebra::{DMatrix, SymmetricEigen};
use serde::{Deserialize, Serialize};

pub use file::{FORMAT, FORMAT_KEYED, KeyedModels, ModelFile, ModelFileError, VERSION};
pub use table::{FitRows, FitTableError, read_fit_csv};

/// Most features one model takes: scoring keeps the component scores in a
/// fixed stack buffer, so a row is scored without allocating.
pub const MAX_FEATURES: usize = 256;

/// Relative floor of a feature's scale: `max(1e-4 |mean|, 1e-9)`.
const SCALE_FLOOR_REL: f64 = 1e-4;
const SCALE_FLOOR_ABS: f64 = 1e-9;
/// Smallest control limit, so that a statistic that is identically 0 over
/// the fit rows (Q with one feature) gives a finite ratio.
const LIMIT_FLOOR: f64 = 1e-12;
/// Longest smoothing window in rows.
pub const MAX_SMOOTH: usize = 64;

/// How the control limits of T² and Q are set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitMethod {
    /// The [`FitOptions::quantile`] of T² and of Q over the fit rows
    /// themselves, times [`FitOptions::margin`].
    Empirical,
    /// The classic limits at confidence [`FitOptions::quantile`], times
    /// [`FitOptions::margin`]: T² from the F distribution for a new
    /// observation, `k (n-1)(n+1) / (n (n-k)) F(k, n-k)`; Q from Jackson and
    /// Mudholkar's approximation over the discarded eigenvalues.
    Parametric,
}

/// Settings of a fit. They travel with the model in its file.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FitOptions {
    /// Fraction of the standardised variance the kept components explain.
    pub variance: f64,
    /// Quantile of the fit rows' T² and Q (or confidence of the parametric
    /// limits) that becomes the control limit.
    pub quantile: f64,
    /// Factor applied to both limits.
    pub margin: f64,
    /// How the limits are set.
    pub limits: LimitMethod,
    /// Rows whose ratios [`RatioSmoother`] averages; `1` decides each row on
    /// its own.
    pub smooth: usize,
}

impl Default for FitOptions {
    /// The settings chosen on the simulated pump rig (see the crate README,
    /// "Fitting on the box").
    fn default() -> Self {
        Self {
            variance: 0.95,
            quantile: 0.99,
            margin: 1.5,
            limits: LimitMethod::Parametric,
            smooth: 5,
        }
    }
}

impl FitOptions {
    /// Checks every option's range.
    pub fn validate(&self) -> Result<(), FitError> {
        let bad = |name: &'static str, message: &str| {
            Err(FitError::Option {
                name,
                message: message.to_owned(),
            })
        };
        if !(self.variance > 0.0 && self.variance <= 1.0) {
            return bad("variance", &format!("{} is not in (0, 1]", self.variance));
        }
        if !(self.quantile > 0.0 && self.quantile < 1.0) {
            return bad("quantile", &format!("{} is not in (0, 1)", self.quantile));
        }
        if !(self.margin.is_finite() && self.margin > 0.0) {
            return bad(
                "margin",
                &format!("{} is not a positive number", self.margin),
            );
        }
        if self.smooth == 0 || self.smooth > MAX_SMOOTH {
            return bad(
                "smooth",
                &format!("{} rows is not in 1..={MAX_SMOOTH}", self.smooth),
            );
        }
        Ok(())
    }
}

/// Why a model could not be fitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitError {
    /// `d = 0`.
    #[error("no features: a PCA model needs at least one")]
    NoFeatures,
    /// More features than [`MAX_FEATURES`].
    #[error("{d} features: a PCA model takes at most {MAX_FEATURES}")]
    TooManyFeatures {
        /// Features asked for.
        d: usize,
    },
    /// The row slice is not `n x d`.
    #[error("{len} values do not make rows of {d} features")]
    Shape {
        /// Values given.
        len: usize,
        /// Features per row.
        d: usize,
    },
    /// Not enough rows to estimate a `d x d` covariance.
    #[error(
        "{n} rows are too few to fit {d} features: need at least {need} \
         (twice the features, and at least 20)"
    )]
    TooFewRows {
        /// Rows given.
        n: usize,
        /// Features per row.
        d: usize,
        /// Rows needed.
        need: usize,
    },
    /// A NaN or infinite value in the fit rows.
    #[error("fit row {row}, feature `{feature}`: {value} is not a finite number")]
    NonFinite {
        /// Row index (0-based) among the fit rows.
        row: usize,
        /// Feature name.
        feature: String,
        /// The value.
        value: f64,
    },
    /// Every feature is constant over the fit rows.
    #[error("every feature is constant over the {n} fit rows: nothing to learn")]
    AllConstant {
        /// Rows given.
        n: usize,
    },
    /// Feature names repeat or do not match `d`.
    #[error("feature names: {0}")]
    Names(String),
    /// An option is out of range.
    #[error("option `{name}`: {message}")]
    Option {
        /// Option name.
        name: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// T² and Q of one row and how far they are past their limits.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Score {
    /// Hotelling's T² in the kept components.
    pub t2: f64,
    /// Squared prediction error: the squared norm of the residual outside
    /// the kept components.
    pub q: f64,
    /// `max(t2 / t2_limit, q / q_limit)`: above 1 the row is beyond a limit.
    pub ratio: f64,
}

/// A fitted PCA T²+Q model. Immutable once fitted; share it between threads
/// behind an `Arc`.
#[derive(Debug, Clone, PartialEq)]
pub struct PcaModel {
    pub(crate) features: Vec<String>,
    pub(crate) n_rows: usize,
    pub(crate) mean: Vec<f64>,
    pub(crate) scale: Vec<f64>,
    /// Kept components as rows, `k x d` row-major, unit length.
    pub(crate) components: Vec<f64>,
    /// All `d` eigenvalues of the standardised covariance, descending.
    pub(crate) eigenvalues: Vec<f64>,
    pub(crate) t2_limit: f64,
    pub(crate) q_limit: f64,
    pub(crate) options: FitOptions,
}

impl PcaModel {
    /// Fits on `rows` (row-major, `n x d`), naming the features `x0`, `x1`, ….
    pub fn fit(rows: &[f64], d: usize, options: &FitOptions) -> Result<Self, FitError> {
        let names: Vec<String> = (0..d).map(|i| format!("x{i}")).collect();
        Self::fit_named(rows, &names, options)
    }

    /// Fits on `rows` (row-major, `n x features.len()`).
    pub fn fit_named(
        rows: &[f64],
        features: &[String],
        options: &FitOptions,
    ) -> Result<Self, FitError> {
        options.validate()?;
        let d = features.len();
        if d == 0 {
            return Err(FitError::NoFeatures);
        }
        if d > MAX_FEATURES {
            return Err(FitError::TooManyFeatures { d });
        }
        check_names(features)?;
        if !rows.len().is_multiple_of(d) {
            return Err(FitError::Shape { len: rows.len(), d });
        }
        let n = rows.len() / d;
        let need = min_rows(d);
        if n < need {
            return Err(FitError::TooFewRows { n, d, need });
        }
        if let Some(i) = rows.iter().position(|v| !v.is_finite()) {
            return Err(FitError::NonFinite {
                row: i / d,
                feature: features[i % d].clone(),
                value: rows[i],
            });
        }

        let mut mean = vec![0.0; d];
        for row in rows.chunks_exact(d) {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += v;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut scale = vec![0.0; d];
        for row in rows.chunks_exact(d) {
            for ((s, v), m) in scale.iter_mut().zip(row).zip(&mean) {
                *s += (v - m) * (v - m);
            }
        }
        for (s, m) in scale.iter_mut().zip(&mean) {
            *s = (*s / (n - 1) as f64).sqrt().max(scale_floor(*m));
        }

        let mut cov = DMatrix::<f64>::zeros(d, d);
        let mut z = vec![0.0; d];
        for row in rows.chunks_exact(d) {
            standardise(row, &mean, &scale, &mut z);
            for i in 0..d {
                for j in i..d {
                    cov[(i, j)] += z[i] * z[j];
                }
            }
        }
        for i in 0..d {
            for j in i..d {
                let c = cov[(i, j)] / (n - 1) as f64;
                cov[(i, j)] = c;
                cov[(j, i)] = c;
            }
        }
        let eigen = SymmetricEigen::new(cov);
        let mut order: Vec<usize> = (0..d).collect();
        order.sort_by(|&a, &b| eigen.eigenvalues[b].total_cmp(&eigen.eigenvalues[a]));
        let eigenvalues: Vec<f64> = order
            .iter()
            .map(|&i| eigen.eigenvalues[i].max(0.0))
            .collect();
        let total: f64 = eigenvalues.iter().sum();
        if total <= 1e-12 {
            return Err(FitError::AllConstant { n });
        }
        let k = kept_components(&eigenvalues, options.variance);
        let mut components = Vec::with_capacity(k * d);
        for &i in &order[..k] {
            components.extend(eigen.eigenvectors.column(i).iter());
        }

        let mut model = Self {
            features: features.to_vec(),
            n_rows: n,
            mean,
            scale,
            components,
            eigenvalues,
            t2_limit: 1.0,
            q_limit: 1.0,
            options: *options,
        };
        let (t2_limit, q_limit) = match options.limits {
            LimitMethod::Empirical => {
                let mut t2 = Vec::with_capacity(n);
                let mut q = Vec::with_capacity(n);
                for row in rows.chunks_exact(d) {
                    let s = model.score(row);
                    t2.push(s.t2);
                    q.push(s.q);
                }
                (
                    stats::quantile(&mut t2, options.quantile),
                    stats::quantile(&mut q, options.quantile),
                )
            }
            LimitMethod::Parametric => (
                stats::t2_limit(k, n, options.quantile),
                stats::q_limit(&model.eigenvalues[k..], options.quantile),
            ),
        };
        model.t2_limit = (t2_limit * options.margin).max(LIMIT_FLOOR);
        model.q_limit = (q_limit * options.margin).max(LIMIT_FLOOR);
        Ok(model)
    }

    /// Scores one row of `d` values. Allocates nothing. A non-finite value
    /// gives a NaN score: filter invalid rows first.
    pub fn score(&self, row: &[f64]) -> Score {
        debug_assert_eq!(row.len(), self.mean.len());
        // The standardised row and the component scores live on the stack;
        // a small buffer for the usual handful of features keeps the
        // per-row cost to the sums.
        if self.mean.len() <= 16 {
            self.score_in::<16>(row)
        } else {
            self.score_in::<MAX_FEATURES>(row)
        }
    }

    /// [`PcaModel::score`] with the row in `[f64; N]`, `d <= N`.
    fn score_in<const N: usize>(&self, row: &[f64]) -> Score {
        let d = self.mean.len().min(N);
        let mut z = [0.0f64; N];
        standardise(row, &self.mean, &self.scale, &mut z[..d]);
        let z = &z[..d];
        let mut t = [0.0f64; N];
        let mut t2 = 0.0;
        for ((tc, p), lambda) in t
            .iter_mut()
            .zip(self.components.chunks_exact(d))
            .zip(&self.eigenvalues)
        {
            let s: f64 = z.iter().zip(p).map(|(z, p)| z * p).sum();
            *tc = s;
            t2 += s * s / lambda;
        }
        let t = &t[..self.components()];
        let mut q = 0.0;
        for (j, zj) in z.iter().enumerate() {
            let mut r = *zj;
            for (tc, p) in t.iter().zip(self.components.chunks_exact(d)) {
                r -= tc * p[j];
            }
            q += r * r;
        }
        Score {
            t2,
            q,
            ratio: (t2 / self.t2_limit).max(q / self.q_limit),
        }
    }

    /// Scores `rows` (row-major, `out.len() x d`) into `out`.
    ///
    /// # Panics
    /// When `rows.len() != out.len() * d`: the caller lays out the batch.
    pub fn score_batch(&self, rows: &[f64], out: &mut [Score]) {
        let d = self.mean.len();
        assert_eq!(
            rows.len(),
            out.len() * d,
            "score_batch: rows is not out.len() x d"
        );
        for (row, s) in rows.chunks_exact(d).zip(out) {
            *s = self.score(row);
        }
    }

    /// A smoother for one key's stream of ratios, with this model's window.
    pub fn smoother(&self) -> RatioSmoother {
        RatioSmoother::new(self.options.smooth)
    }

    /// Replaces the feature names (e.g. after [`PcaModel::fit`]).
    pub fn with_features(mut self, features: Vec<String>) -> Result<Self, FitError> {
        if features.len() != self.mean.len() {
            return Err(FitError::Names(format!(
                "{} names for {} features",
                features.len(),
                self.mean.len()
            )));
        }
        check_names(&features)?;
        self.features = features;
        Ok(self)
    }

    /// Feature names, in row order.
    pub fn features(&self) -> &[String] {
        &self.features
    }
    /// Rows the model was fitted on.
    pub fn n_rows(&self) -> usize {
        self.n_rows
    }
    /// Components kept (`k`).
    pub fn components(&self) -> usize {
        self.components.len() / self.mean.len()
    }
    /// Kept components as rows, `k x d` row-major.
    pub fn component_matrix(&self) -> &[f64] {
        &self.components
    }
    /// All eigenvalues of the standardised covariance, descending.
    pub fn eigenvalues(&self) -> &[f64] {
        &self.eigenvalues
    }
    /// Fraction of the standardised variance the kept components explain.
    pub fn explained_variance(&self) -> f64 {
        let total: f64 = self.eigenvalues.iter().sum();
        self.eigenvalues[..self.components()].iter().sum::<f64>() / total
    }
    /// Per-feature mean over the fit rows.
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }
    /// Per-feature scale (standard deviation, or the floor for a constant one).
    pub fn scale(&self) -> &[f64] {
        &self.scale
    }
    /// Features that were constant over the fit rows (scaled by the floor).
    pub fn constant_features(&self) -> Vec<&str> {
        self.features
            .iter()
            .zip(&self.scale)
            .zip(&self.mean)
            .filter(|((_, s), m)| **s <= scale_floor(**m))
            .map(|((f, _), _)| f.as_str())
            .collect()
    }
    /// Control limit of T².
    pub fn t2_limit(&self) -> f64 {
        self.t2_limit
    }
    /// Control limit of Q.
    pub fn q_limit(&self) -> f64 {
        self.q_limit
    }
    /// The options the model was fitted with.
    pub fn options(&self) -> &FitOptions {
        &self.options
    }
}

/// Rows a fit of `d` features needs: `max(2 d, 20)`.
pub fn min_rows(d: usize) -> usize {
    (2 * d).max(20)
}

fn scale_floor(mean: f64) -> f64 {
    (SCALE_FLOOR_REL * mean.abs()).max(SCALE_FLOOR_ABS)
}

fn standardise(row: &[f64], mean: &[f64], scale: &[f64], out: &mut [f64]) {
    for (((o, x), m), s) in out.iter_mut().zip(row).zip(mean).zip(scale) {
        *o = (x - m) / s;
    }
}

fn check_names(features: &[String]) -> Result<(), FitError> {
    for (i, f) in features.iter().enumerate() {
        if features[..i].contains(f) {
            return Err(FitError::Names(format!("`{f}` appears twice")));
        }
    }
    Ok(())
}

/// Smallest `k` whose eigenvalues reach `variance` of the total, within
/// `1..=max(1, d - 1)` and never a component without variance.
fn kept_components(eigenvalues: &[f64], variance: f64) -> usize {
    let d = eigenvalues.len();
    let total: f64 = eigenvalues.iter().sum();
    let mut k = d;
    let mut cum = 0.0;
    for (i, l) in eigenvalues.iter().enumerate() {
        cum += l;
        if cum >= variance * total * (1.0 - 1e-12) {
            k = i + 1;
            break;
        }
    }
    let with_variance = eigenvalues.iter().filter(|&&l| l > 1e-10 * total).count();
    k.min(d.saturating_sub(1)).min(with_variance).max(1)
}

/// Mean of the last `window` ratios of one key. Allocates nothing per row.
#[derive(Debug, Clone, PartialEq)]
pub struct RatioSmoother {
    window: usize,
    ring: [f64; MAX_SMOOTH],
    next: usize,
    len: usize,
}

impl RatioSmoother {
    /// A smoother over `window` rows, clamped to `1..=MAX_SMOOTH`.
    pub fn new(window: usize) -> Self {
        Self {
            window: window.clamp(1, MAX_SMOOTH),
            ring: [0.0; MAX_SMOOTH],
            next: 0,
            len: 0,
        }
    }

    /// Adds the ratio of the key's next row and returns the mean of the last
    /// `window` ratios (of fewer while the key has seen fewer rows). A NaN
    /// ratio is not added and returns NaN.
    pub fn push(&mut self, ratio: f64) -> f64 {
        if ratio.is_nan() {
            return f64::NAN;
        }
        self.ring[self.next] = ratio;
        self.next = (self.next + 1) % self.window;
        self.len = (self.len + 1).min(self.window);
        self.ring[..self.len].iter().sum::<f64>() / self.len as f64
    }

    /// Forgets the ratios seen so far.
    pub fn reset(&mut self) {
        self.next = 0;
        self.len = 0;
    }
}
