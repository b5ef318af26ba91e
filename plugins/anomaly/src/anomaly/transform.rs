//! The running `anomaly` transform.
//!
//! Per batch: rows update their key's state in arrival order and, once the
//! key is warm, contribute one window each; all windows of the batch are
//! scored in one call on the blocking pool; then each key's threshold decides
//! `is_anomaly`. State is bounded by `max_keys` keys of `history x features`
//! values plus, while calibrating, `samples` scores each.

use hashlink::LinkedHashMap;
use std::sync::Arc;
use std::time::Duration;

use super::names;
use arrow_cast::cast;
use metrics::{Counter, Gauge};
use sluice_core::LogLimiter;
use sluice_core::arrow_array::cast::AsArray;
use sluice_core::arrow_array::types::{Float64Type, Int64Type};
use sluice_core::arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
};
use sluice_core::arrow_schema::{ArrowError, DataType, SchemaRef, TimeUnit};
use sluice_core::schema::{event_time_column, same_columns};
use sluice_core::{BuildCx, BuildError, ComponentError, ComponentMetrics, Emitter, Msg, Transform};
use tokio::time::Instant;
use tracing::{info, warn};

use super::config::{AnomalyConfig, CalibrationConfig, OnInvalid, Threshold};
use super::fitting::{PcaSource, PcaStep, Save};
use super::incident::{IncidentSpec, Mark, Span};
use super::likelihood::LikelihoodSpec;
use super::model::ScoringModel;
use super::state::{CalibrationSpec, KeyState, WindowSpec};

/// At most one warning per this interval for each kind of per-row problem.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// What scores a key's rows.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per transform
pub(crate) enum Scorer {
    /// An ONNX model over each key's window, on the blocking pool.
    Onnx(Arc<ScoringModel>),
    /// PCA T²+Q models per key, given or fitted on the box.
    Pca(PcaSource),
}

/// Scores rows with the model and flags anomalies; see [`AnomalyConfig`].
#[derive(Debug)]
pub struct AnomalyTransform {
    scorer: Scorer,
    spec: WindowSpec,
    fixed_threshold: f64,
    calibration: Option<CalibrationSpec>,
    likelihood: Option<LikelihoodSpec>,
    release: Option<f64>,
    quiet: Span,
    cooldown: Span,
    keys: KeyTable,
    idle_timeout: Duration,
    on_invalid: OnInvalid,
    input_schema: SchemaRef,
    output_schema: SchemaRef,
    feature_idx: Vec<usize>,
    key_idx: Option<usize>,
    time_idx: Option<usize>,
    started: Instant,
    last_event_ms: i64,
    metrics: ComponentMetrics,
    handles: Handles,
    pipeline: Arc<str>,
    id: Arc<str>,
    warnings: LogLimiter,
}

#[derive(Debug)]
struct Handles {
    keys: Gauge,
    evicted: Counter,
    scored: Counter,
    flagged: Counter,
    incidents: Counter,
    suppressed: Counter,
    fitted: Counter,
}

/// Keys and their state; the `null` key is kept apart so lookups by `&str`
/// need no allocation. Named keys are kept in the order they were last seen
/// (least recent first), so eviction is O(1) per key.
#[derive(Debug, Default)]
struct KeyTable {
    named: LinkedHashMap<Box<str>, KeyState>,
    null: Option<KeyState>,
    max: usize,
}

impl KeyTable {
    fn len(&self) -> usize {
        self.named.len() + usize::from(self.null.is_some())
    }

    fn get_mut(&mut self, key: Option<&str>) -> Option<&mut KeyState> {
        match key {
            Some(k) => self.named.get_mut(k),
            None => self.null.as_mut(),
        }
    }

    /// The key's state, created if new after evicting the least recently
    /// seen key when the table is full. Returns whether a key was evicted.
    fn entry(
        &mut self,
        key: Option<&str>,
        make: impl FnOnce() -> KeyState,
    ) -> (Option<&mut KeyState>, bool) {
        let exists = match key {
            Some(k) => self.named.to_back(k).is_some(),
            None => self.null.is_some(),
        };
        let mut evicted = false;
        if !exists && self.len() >= self.max {
            self.evict_oldest();
            evicted = true;
        }
        let state = match key {
            Some(k) if exists => self.named.get_mut(k),
            Some(k) => Some(self.named.entry(k.into()).or_insert_with(make)),
            None => Some(self.null.get_or_insert_with(make)),
        };
        (state, evicted)
    }

    fn evict_oldest(&mut self) {
        let oldest_named = self.named.front().map(|(_, s)| s.last_seen);
        match (oldest_named, &self.null) {
            (Some(t), Some(n)) if n.last_seen <= t => self.null = None,
            (Some(_), _) => {
                self.named.pop_front();
            }
            (None, _) => self.null = None,
        }
    }

    /// Forgets keys idle for `timeout`; returns how many.
    fn evict_idle(&mut self, now: Instant, timeout: Duration) -> usize {
        let before = self.len();
        let idle = |s: &KeyState| now.saturating_duration_since(s.last_seen) >= timeout;
        while self.named.front().is_some_and(|(_, s)| idle(s)) {
            self.named.pop_front();
        }
        if self.null.as_ref().is_some_and(idle) {
            self.null = None;
        }
        before - self.len()
    }
}

/// The added columns of one batch, filled row by row.
struct Decided {
    score: Vec<Option<f64>>,
    flag: Vec<Option<bool>>,
    likelihood: Vec<Option<f64>>,
    id: Vec<Option<Box<str>>>,
    start: Vec<Option<bool>>,
    end: Vec<Option<bool>>,
    peak: Vec<Option<f64>>,
    duration: Vec<Option<i64>>,
}

impl Decided {
    fn new(rows: usize) -> Self {
        Self {
            score: vec![None; rows],
            flag: vec![None; rows],
            likelihood: vec![None; rows],
            id: vec![None; rows],
            start: vec![None; rows],
            end: vec![None; rows],
            peak: vec![None; rows],
            duration: vec![None; rows],
        }
    }

    /// Records a decided row's incident mark.
    fn mark(&mut self, row: usize, mark: Mark) {
        let (start, end) = match &mark {
            Mark::Opened(_) => (true, false),
            Mark::Closed { .. } => (false, true),
            Mark::Outside | Mark::Inside(_) => (false, false),
        };
        self.start[row] = Some(start);
        self.end[row] = Some(end);
        match mark {
            Mark::Outside => {}
            Mark::Opened(id) | Mark::Inside(id) => self.id[row] = Some(id),
            Mark::Closed {
                id,
                peak,
                duration_ms,
            } => {
                self.id[row] = Some(id);
                self.peak[row] = Some(peak);
                self.duration[row] = Some(duration_ms);
            }
        }
    }

    fn into_arrays(self) -> [ArrayRef; 8] {
        [
            Arc::new(Float64Array::from(self.score)),
            Arc::new(BooleanArray::from(self.flag)),
            Arc::new(Float64Array::from(self.likelihood)),
            Arc::new(StringArray::from_iter(self.id)),
            Arc::new(BooleanArray::from(self.start)),
            Arc::new(BooleanArray::from(self.end)),
            Arc::new(Float64Array::from(self.peak)),
            Arc::new(Int64Array::from(self.duration)),
        ]
    }
}

/// What the first pass over a batch produced.
struct Prepared {
    /// Model inputs, one window per scored row.
    windows: Vec<f32>,
    /// Scores computed while preparing (PCA models), one per scored row.
    direct: Vec<f32>,
    /// Models fitted while preparing, to be written off the reactor.
    saves: Vec<(String, Save)>,
    /// Rows with a window, in order.
    scored_rows: Vec<usize>,
    /// Rows with an invalid feature.
    invalid_rows: Vec<usize>,
    /// Event time (ms) per row, for calibration.
    times: Vec<i64>,
    /// Keys as text, per row (null key = `None`).
    keys: Option<StringArray>,
}

impl AnomalyTransform {
    pub(crate) fn new(
        config: &AnomalyConfig,
        cx: &BuildCx,
        input_schema: SchemaRef,
        output_schema: SchemaRef,
        scorer: Scorer,
    ) -> Result<Self, BuildError> {
        let index = |name: &str| {
            input_schema
                .index_of(name)
                .map_err(|_| BuildError::msg(format!("component `{}`: no column `{name}`", cx.id)))
        };
        let feature_idx = config
            .features
            .iter()
            .map(|f| index(f))
            .collect::<Result<Vec<_>, _>>()?;
        let key_idx = config.key.as_deref().map(index).transpose()?;
        let time_idx = event_time_column(&input_schema).and_then(|c| input_schema.index_of(c).ok());
        let (fixed_threshold, calibration) = match &config.effective_threshold() {
            Threshold::Fixed(t) => (*t, None),
            Threshold::Calibrate(c) => (
                f64::NAN,
                Some(CalibrationSpec {
                    period: c.calibrate.get(),
                    quantile: c.quantile,
                    floor: c.min,
                    capacity: c.samples.get(),
                }),
            ),
        };
        let metrics = cx.metrics.clone();
        let handles = Handles {
            keys: metrics.gauge(names::ANOMALY_KEYS),
            evicted: metrics.counter(names::ANOMALY_EVICTED_KEYS_TOTAL),
            scored: metrics.counter(names::ANOMALY_SCORED_ROWS_TOTAL),
            flagged: metrics.counter(names::ANOMALY_FLAGGED_ROWS_TOTAL),
            incidents: metrics.counter(names::ANOMALY_INCIDENTS_TOTAL),
            suppressed: metrics.counter(names::ANOMALY_SUPPRESSED_TOTAL),
            fitted: metrics.counter(names::ANOMALY_FITTED_KEYS_TOTAL),
        };
        let likelihood = match config.effective_calibration() {
            CalibrationConfig::None => None,
            CalibrationConfig::Likelihood(l) => Some(LikelihoodSpec {
                short: l.short.get(),
                horizon: l.long.get() as f64,
                learn: l.learn as u64,
                min_std: l.min_std,
                min_score: l.min_score,
                spike_score: l.spikes.score,
                spikes: f64::from(l.spikes.count),
                persist: l.spikes.persist.get(),
            }),
        };
        Ok(Self {
            scorer,
            spec: WindowSpec {
                history: config.history.get(),
                features: config.features.len(),
                warmup: config.effective_warmup() as u64,
                alpha: 1.0 / config.horizon.get() as f64,
                normalize: config.normalize,
                rebase: config.normalize && config.rebase,
            },
            fixed_threshold,
            calibration,
            likelihood,
            release: config.effective_release(),
            quiet: config.incident.quiet,
            cooldown: config.incident.cooldown,
            keys: KeyTable {
                max: config.max_keys.get(),
                ..KeyTable::default()
            },
            idle_timeout: config.idle_timeout.get(),
            on_invalid: config.on_invalid,
            input_schema,
            output_schema,
            feature_idx,
            key_idx,
            time_idx,
            started: Instant::now(),
            last_event_ms: 0,
            metrics,
            handles,
            pipeline: cx.pipeline.clone(),
            id: cx.id.clone(),
            warnings: LogLimiter::new(LOG_EVERY),
        })
    }

    /// Number of keys currently tracked.
    pub fn tracked_keys(&self) -> usize {
        self.keys.len()
    }

    fn conform(&self, batch: RecordBatch) -> Option<RecordBatch> {
        let own = batch.schema();
        if Arc::ptr_eq(&own, &self.input_schema) {
            return Some(batch);
        }
        if !same_columns(&own, &self.input_schema) {
            return None;
        }
        RecordBatch::try_new(self.input_schema.clone(), batch.columns().to_vec()).ok()
    }

    /// Updates key state row by row and collects the windows to score.
    fn prepare(&mut self, batch: &RecordBatch, now: Instant) -> Result<Prepared, ArrowError> {
        let rows = batch.num_rows();
        let features: Vec<Float64Array> = self
            .feature_idx
            .iter()
            .map(|i| {
                cast(batch.column(*i), &DataType::Float64)
                    .map(|a| a.as_primitive::<Float64Type>().clone())
            })
            .collect::<Result<_, _>>()?;
        let keys = match self.key_idx {
            Some(i) => Some(
                cast(batch.column(i), &DataType::Utf8)?
                    .as_string::<i32>()
                    .clone(),
            ),
            None => None,
        };
        let times = self.event_times(batch, now)?;
        let calibrating = self.calibration.is_some();
        let spec = self.spec;
        let mut prepared = Prepared {
            windows: Vec::new(),
            direct: Vec::new(),
            saves: Vec::new(),
            scored_rows: Vec::new(),
            invalid_rows: Vec::new(),
            times,
            keys: None,
        };
        let mut row_values = vec![0.0f64; features.len()];
        let mut evicted = 0u64;
        let mut fit_notes: Vec<String> = Vec::new();
        for row in 0..rows {
            let mut valid = true;
            for (v, col) in row_values.iter_mut().zip(&features) {
                *v = if col.is_null(row) {
                    f64::NAN
                } else {
                    col.value(row)
                };
                valid &= v.is_finite();
            }
            if !valid {
                prepared.invalid_rows.push(row);
                continue;
            }
            let key = keys
                .as_ref()
                .and_then(|k| (!k.is_null(row)).then(|| k.value(row)));
            let (state, was_evicted) = self
                .keys
                .entry(key, || KeyState::new(&spec, now, calibrating));
            evicted += u64::from(was_evicted);
            let Some(state) = state else { continue };
            state.last_seen = now;
            match &self.scorer {
                Scorer::Onnx(_) => {
                    if state.observe(&row_values, &spec, &mut prepared.windows) {
                        prepared.scored_rows.push(row);
                    }
                }
                Scorer::Pca(source) => {
                    let t = prepared.times[row];
                    let pca = state.pca.get_or_insert_with(|| source.start(key, t));
                    let score = match source.observe(pca, key, &row_values, t) {
                        PcaStep::Score(s) => Some(s),
                        PcaStep::Nothing => None,
                        PcaStep::Fitted { save, score } => {
                            self.handles.fitted.increment(1);
                            let name = key.unwrap_or("").to_owned();
                            fit_notes.push(format!("key `{name}`: fitted its model"));
                            if let Some(save) = save {
                                prepared.saves.push((name, save));
                            }
                            Some(score)
                        }
                        PcaStep::Failed(e) => {
                            fit_notes.push(format!(
                                "key `{}`: fitting failed, learning again: {e}",
                                key.unwrap_or("")
                            ));
                            None
                        }
                    };
                    if let Some(s) = score {
                        prepared.scored_rows.push(row);
                        prepared.direct.push(s as f32);
                    }
                }
            }
        }
        if evicted > 0 {
            self.handles.evicted.increment(evicted);
        }
        for note in fit_notes {
            info!(pipeline = %self.pipeline, component_id = %self.id, "{note}");
        }
        prepared.keys = keys;
        Ok(prepared)
    }

    /// Event time in ms per row: the stream's event-time column when it has
    /// one, else processing time since start.
    fn event_times(&mut self, batch: &RecordBatch, now: Instant) -> Result<Vec<i64>, ArrowError> {
        let fallback = now.saturating_duration_since(self.started).as_millis() as i64;
        let Some(i) = self.time_idx else {
            return Ok(vec![fallback; batch.num_rows()]);
        };
        let col = batch.column(i);
        let ms: ArrayRef = match col.data_type() {
            DataType::Timestamp(_, _) => {
                let t = cast(col, &DataType::Timestamp(TimeUnit::Millisecond, None))?;
                cast(&t, &DataType::Int64)?
            }
            _ => cast(col, &DataType::Int64)?,
        };
        let ms: &Int64Array = ms.as_primitive::<Int64Type>();
        let mut out = Vec::with_capacity(ms.len());
        for v in ms.iter() {
            if let Some(v) = v {
                self.last_event_ms = v;
            }
            out.push(self.last_event_ms);
        }
        Ok(out)
    }

    /// Adds the score, flag, likelihood and incident columns and drops
    /// invalid rows if configured.
    fn assemble(
        &mut self,
        batch: &RecordBatch,
        prepared: &Prepared,
        scores: &[f32],
    ) -> Result<RecordBatch, ArrowError> {
        let rows = batch.num_rows();
        let mut cols = Decided::new(rows);
        let mut flagged = 0u64;
        let mut opened = 0u64;
        let mut suppressed = 0u64;
        for (&row, &s) in prepared.scored_rows.iter().zip(scores) {
            let s = f64::from(s);
            if !s.is_finite() {
                continue;
            }
            cols.score[row] = Some(s);
            let key = prepared
                .keys
                .as_ref()
                .and_then(|k| (!k.is_null(row)).then(|| k.value(row)));
            let now_ms = prepared.times[row];
            let Some(state) = self.keys.get_mut(key) else {
                continue;
            };
            // The raw score the incident rules see (zero when the key's
            // likelihood says the score is ordinary for it), and the score
            // that opens an incident.
            let decision = match (&self.likelihood, &self.calibration) {
                (Some(spec), _) => state.likelihood.judge(s, spec).map(|j| {
                    cols.likelihood[row] = Some(j.likelihood);
                    let surprising = j.likelihood >= self.fixed_threshold && j.raw_ok;
                    (if surprising { s } else { 0.0 }, spec.min_score)
                }),
                (None, Some(spec)) => state
                    .calibration
                    .observe(s as f32, now_ms, spec)
                    .map(|t| (s, t)),
                (None, None) => Some((s, self.fixed_threshold)),
            };
            let Some((value, open)) = decision else {
                continue;
            };
            let hit = value >= open;
            flagged += u64::from(hit);
            cols.flag[row] = Some(hit);
            let spec = IncidentSpec {
                open,
                release: self.release.unwrap_or(open).min(open),
                quiet: self.quiet,
                cooldown: self.cooldown,
            };
            let before = state.incidents.suppressed;
            let mark = state
                .incidents
                .observe(value, s, now_ms, key.unwrap_or(""), &spec);
            suppressed += state.incidents.suppressed - before;
            opened += u64::from(matches!(mark, Mark::Opened(_)));
            cols.mark(row, mark);
        }
        if self.on_invalid == OnInvalid::Flag {
            for &row in &prepared.invalid_rows {
                cols.flag[row] = Some(true);
                flagged += 1;
            }
        }
        self.handles
            .scored
            .increment(prepared.scored_rows.len() as u64);
        self.handles.flagged.increment(flagged);
        self.handles.incidents.increment(opened);
        self.handles.suppressed.increment(suppressed);
        let mut columns = batch.columns().to_vec();
        columns.extend(cols.into_arrays());
        let out = RecordBatch::try_new(self.output_schema.clone(), columns)?;
        if self.on_invalid == OnInvalid::Drop && !prepared.invalid_rows.is_empty() {
            let mut keep = vec![true; rows];
            for &row in &prepared.invalid_rows {
                keep[row] = false;
            }
            return arrow_select::filter::filter_record_batch(&out, &BooleanArray::from(keep));
        }
        Ok(out)
    }

    fn warn_limited(&mut self, now: Instant, f: impl FnOnce(&str, &str)) {
        if self.warnings.ready(now) {
            f(&self.pipeline, &self.id);
        }
    }
}

impl Transform for AnomalyTransform {
    async fn process(&mut self, msg: Msg, out: &mut Emitter) -> Result<(), ComponentError> {
        let batch = msg.into_rows()?;
        let rows = batch.num_rows();
        if rows == 0 {
            return Ok(());
        }
        let Some(batch) = self.conform(batch) else {
            self.metrics
                .discarded("schema_mismatch", false, rows as u64);
            return Ok(());
        };
        let now = Instant::now();
        let mut prepared = match self.prepare(&batch, now) {
            Ok(p) => p,
            Err(e) => {
                let err = ComponentError::user("feature_cast_failed", e.to_string());
                self.metrics.error(&err, "processing");
                self.metrics
                    .discarded("feature_cast_failed", false, rows as u64);
                return Ok(());
            }
        };
        self.handles.keys.set(self.keys.len() as f64);
        let saves = std::mem::take(&mut prepared.saves);
        if !saves.is_empty() {
            let results = sluice_core::blocking(move || {
                saves
                    .into_iter()
                    .map(|(key, save)| (key, save.run()))
                    .collect::<Vec<_>>()
            })
            .await?;
            for (key, result) in results {
                if let Err(e) = result {
                    warn!(pipeline = %self.pipeline, component_id = %self.id, "key `{key}`: fitted its model but could not save it: {e}");
                }
            }
        }
        let invalid = prepared.invalid_rows.len();
        if invalid > 0 {
            if self.on_invalid == OnInvalid::Drop {
                self.metrics
                    .discarded("invalid_feature", false, invalid as u64);
            }
            self.warn_limited(now, |pipeline, id| {
                warn!(
                    pipeline = %pipeline,
                    component_id = %id,
                    rows = invalid,
                    "Rows with a missing, NaN or infinite feature were not scored."
                );
            });
        }
        let scores = if prepared.scored_rows.is_empty() {
            Vec::new()
        } else if let Scorer::Onnx(model) = &self.scorer {
            let model = model.clone();
            let windows = std::mem::take(&mut prepared.windows);
            match sluice_core::blocking(move || model.score(&windows)).await? {
                Ok(s) => s,
                Err(e) => {
                    let err = ComponentError::internal("inference_failed", e.to_string());
                    self.metrics.error(&err, "processing");
                    self.metrics
                        .discarded("inference_failed", false, rows as u64);
                    self.warn_limited(now, |pipeline, id| {
                        warn!(pipeline = %pipeline, component_id = %id, error = %e, "Inference failed; dropped the batch.");
                    });
                    return Ok(());
                }
            }
        } else {
            std::mem::take(&mut prepared.direct)
        };
        match self.assemble(&batch, &prepared, &scores) {
            Ok(out_batch) => out.emit(out_batch).await,
            Err(e) => Err(ComponentError::internal("assemble_failed", e.to_string())),
        }
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(
            self.idle_timeout
                .clamp(Duration::from_millis(100), Duration::from_secs(30)),
        )
    }

    async fn on_tick(&mut self, now: Instant, _out: &mut Emitter) -> Result<(), ComponentError> {
        let evicted = self.keys.evict_idle(now, self.idle_timeout);
        if evicted > 0 {
            self.handles.evicted.increment(evicted as u64);
        }
        self.handles.keys.set(self.keys.len() as f64);
        Ok(())
    }
}
