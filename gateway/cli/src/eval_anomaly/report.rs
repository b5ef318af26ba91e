//! Replaying a labelled CSV through the `anomaly` transform and measuring
//! how well it detects the labelled anomalies.
//!
//! Definitions (the same as `models/anomaly/metrics.py`), per key:
//! - *point level*: every row with a decision (`is_anomaly` not null) is a
//!   prediction against its label: precision, recall, F1;
//! - *event level*: an event is a maximal run of label-1 rows, an alarm a
//!   maximal run of flagged rows. An event is detected when a row in
//!   `[start, end + tolerance)` is flagged; its detection delay is the
//!   distance from the event start to that row. An alarm overlapping no such
//!   range is a false alarm.
//!
//! When the transform's output has an `incident_start` column (also with a
//! column prefix, e.g. `vib_incident_start`), an alarm is an incident
//! instead: it opens on a row with `incident_start` true and lasts while the
//! following rows carry its `incident_id`; "flagged" above then reads "in
//! an incident". Point-level figures always use `is_anomaly`.
//!
//! Also per key: the NAB standard score ([`super::nab`]) with the first row
//! of each alarm as a detection, and, on series whose labels are all 0, the
//! alarms per 10,000 rows with a decision.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sluice_core::arrow_array::cast::AsArray;
use sluice_core::arrow_array::types::UInt64Type;
use sluice_core::arrow_array::{
    Array, ArrayRef, Float64Array, RecordBatch, StringArray, TimestampMillisecondArray, UInt64Array,
};
use sluice_core::arrow_schema::{DataType, Field, Schema, SchemaRef};
use sluice_core::metrics::{ComponentKind, ComponentLabels};
use sluice_core::schema::{TIMESTAMP_MS, with_event_time};
use sluice_core::{
    BuildCx, BuildError, ComponentError, ComponentMetrics, Delivery, EdgeMetrics, Emitter, Msg,
    Output, Transform, TransformConfig, Validator, WhenFull,
};
use tokio::sync::mpsc;

use super::config::AnomalyConfig;
use super::nab::{self, NabScore, runs};

/// Column that carries each CSV row's index through the transform, so output
/// rows are matched to their labels even when invalid rows are dropped.
const ROW_COLUMN: &str = "_eval_row";
/// Output column that is true on the row opening an incident.
const INCIDENT_START: &str = "incident_start";
/// Output column naming the incident a row belongs to.
const INCIDENT_ID: &str = "incident_id";

/// How a labelled CSV is read and judged.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Column with the row time: integer milliseconds since the epoch, or
    /// RFC 3339 / `YYYY-MM-DD HH:MM:SS[.fff]` text. It becomes the stream's
    /// event time (used by threshold calibration).
    pub time_column: String,
    /// Column with the label (`1`/`true` = anomalous, `0`/`false`/empty =
    /// normal). When the CSV has no such column only alarms are counted.
    pub label_column: String,
    /// A flagged row up to this many rows after an event's last row still
    /// detects it and is not a false alarm.
    pub tolerance_rows: usize,
    /// Rows per batch pushed through the transform.
    pub batch_rows: usize,
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self {
            time_column: "timestamp".into(),
            label_column: "label".into(),
            tolerance_rows: 10,
            batch_rows: 1024,
        }
    }
}

/// Why an evaluation could not run.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The CSV could not be read or parsed.
    #[error("{path}: {message}")]
    Csv {
        /// CSV path.
        path: PathBuf,
        /// What is wrong, with the line when known.
        message: String,
    },
    /// The configuration does not fit the CSV's columns or the model.
    #[error("invalid anomaly configuration: {0}")]
    Config(String),
    /// The transform could not be built.
    #[error("building the transform: {0}")]
    Build(#[from] BuildError),
    /// The transform failed while replaying.
    #[error("replaying: {0}")]
    Run(#[from] ComponentError),
}

/// Counts behind precision, recall, F1 and detection delay.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EvalReport {
    /// Rows read.
    pub rows: u64,
    /// Rows with a decision (`is_anomaly` not null).
    pub decided_rows: u64,
    /// Flagged rows labelled anomalous.
    pub true_positives: u64,
    /// Flagged rows labelled normal.
    pub false_positives: u64,
    /// Unflagged decided rows labelled anomalous.
    pub false_negatives: u64,
    /// Labelled events (maximal runs of anomalous rows).
    pub events: u64,
    /// Events with a flagged row in `[start, end + tolerance)`.
    pub detected_events: u64,
    /// Alarms (maximal runs of flagged rows).
    pub alarms: u64,
    /// Alarms overlapping no event.
    pub false_alarms: u64,
    /// Detection delay of each detected event, in rows.
    pub delays_rows: Vec<u64>,
    /// Detection delay of each detected event, in milliseconds of row time.
    pub delays_ms: Vec<i64>,
    /// Alarms are incidents (`incident_start`), not runs of flagged rows.
    pub alarms_from_incidents: bool,
    /// NAB standard-profile score, alarm starts as detections.
    pub nab: NabScore,
    /// Series (keys or files) whose labels are all 0.
    pub clean_series: u64,
    /// Rows with a decision in those series.
    pub clean_rows: u64,
    /// Alarms in those series: every one is a false alert.
    pub clean_alarms: u64,
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

fn f1(p: f64, r: f64) -> f64 {
    if p + r == 0.0 {
        0.0
    } else {
        2.0 * p * r / (p + r)
    }
}

impl EvalReport {
    /// Flagged rows that are anomalous / flagged rows.
    pub fn precision(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }
    /// Anomalous rows flagged / anomalous decided rows.
    pub fn recall(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }
    /// Point-level F1.
    pub fn f1(&self) -> f64 {
        f1(self.precision(), self.recall())
    }
    /// Alarms overlapping an event / alarms.
    pub fn event_precision(&self) -> f64 {
        ratio(self.alarms - self.false_alarms, self.alarms)
    }
    /// Detected events / events.
    pub fn event_recall(&self) -> f64 {
        ratio(self.detected_events, self.events)
    }
    /// Event-level F1.
    pub fn event_f1(&self) -> f64 {
        f1(self.event_precision(), self.event_recall())
    }
    /// Flagged rows / rows with a decision.
    pub fn flagged_fraction(&self) -> f64 {
        ratio(
            self.true_positives + self.false_positives,
            self.decided_rows,
        )
    }
    /// Alarms per 10,000 decided rows on series without anomalies; `None`
    /// without such rows.
    pub fn clean_alarms_per_10k_rows(&self) -> Option<f64> {
        (self.clean_rows > 0).then(|| 1e4 * self.clean_alarms as f64 / self.clean_rows as f64)
    }
    /// The `q` quantile (nearest rank) of the detection delays in rows.
    pub fn delay_rows_quantile(&self, q: f64) -> Option<u64> {
        nearest_rank(&self.delays_rows, q)
    }
    /// The `q` quantile (nearest rank) of the detection delays in ms.
    pub fn delay_ms_quantile(&self, q: f64) -> Option<i64> {
        nearest_rank(&self.delays_ms, q)
    }
    /// Adds the counts of `other` (another file or key).
    pub fn merge(&mut self, other: &EvalReport) {
        self.rows += other.rows;
        self.decided_rows += other.decided_rows;
        self.true_positives += other.true_positives;
        self.false_positives += other.false_positives;
        self.false_negatives += other.false_negatives;
        self.events += other.events;
        self.detected_events += other.detected_events;
        self.alarms += other.alarms;
        self.false_alarms += other.false_alarms;
        self.delays_rows.extend_from_slice(&other.delays_rows);
        self.delays_ms.extend_from_slice(&other.delays_ms);
        self.alarms_from_incidents |= other.alarms_from_incidents;
        self.nab.merge(&other.nab);
        self.clean_series += other.clean_series;
        self.clean_rows += other.clean_rows;
        self.clean_alarms += other.clean_alarms;
    }

    /// Adds one series: per row its label, the transform's output and time.
    fn add_series(&mut self, labels: &[bool], out: &[RowOutput], times: &[i64], tolerance: usize) {
        let n = labels.len();
        for (label, o) in labels.iter().zip(out) {
            let Some(flag) = o.flag else { continue };
            self.decided_rows += 1;
            match (label, flag) {
                (true, true) => self.true_positives += 1,
                (false, true) => self.false_positives += 1,
                (true, false) => self.false_negatives += 1,
                (false, false) => {}
            }
        }
        let alarms = alarms(out, self.alarms_from_incidents);
        let mut active = vec![false; n];
        let mut detections = vec![false; n];
        for &(s, e) in &alarms {
            active[s..e].fill(true);
            detections[s] = true;
        }
        let windows: Vec<(usize, usize)> = runs(labels)
            .into_iter()
            .map(|(s, e)| (s, (e + tolerance).min(n)))
            .collect();
        for &(s, e) in &windows {
            self.events += 1;
            if let Some(hit) = (s..e).find(|&i| active[i]) {
                self.detected_events += 1;
                self.delays_rows.push((hit - s) as u64);
                self.delays_ms.push(times[hit] - times[s]);
            }
        }
        for &(s, e) in &alarms {
            self.alarms += 1;
            if !windows.iter().any(|&(ws, we)| s < we && ws < e) {
                self.false_alarms += 1;
            }
        }
        self.nab
            .merge(&nab::score_series(labels, &detections, &nab::STANDARD));
        if windows.is_empty() {
            self.clean_series += 1;
            self.clean_rows += out.iter().filter(|o| o.flag.is_some()).count() as u64;
            self.clean_alarms += alarms.len() as u64;
        }
    }
}

/// What the transform said about one input row.
#[derive(Debug, Clone, Default)]
struct RowOutput {
    /// `is_anomaly`.
    flag: Option<bool>,
    /// `incident_start`.
    start: Option<bool>,
    /// `incident_id`.
    incident: Option<String>,
}

/// Alarms of one series as `(first row, end exclusive)`: incidents, or runs
/// of flagged rows.
fn alarms(out: &[RowOutput], incidents: bool) -> Vec<(usize, usize)> {
    if !incidents {
        let flagged: Vec<bool> = out.iter().map(|o| o.flag == Some(true)).collect();
        return runs(&flagged);
    }
    let mut alarms = Vec::new();
    for (s, o) in out.iter().enumerate() {
        if o.start != Some(true) {
            continue;
        }
        let mut e = s + 1;
        if let Some(id) = &o.incident {
            while e < out.len()
                && out[e].start != Some(true)
                && out[e].incident.as_ref() == Some(id)
            {
                e += 1;
            }
        }
        alarms.push((s, e));
    }
    alarms
}

fn nearest_rank<T: Copy + Ord>(values: &[T], q: f64) -> Option<T> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_unstable();
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1])
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let q = |x: Option<i64>| {
            x.map_or_else(|| "-".to_owned(), |v| format!("{:.1}s", v as f64 / 1000.0))
        };
        let r = |x: Option<u64>| x.map_or_else(|| "-".to_owned(), |v| v.to_string());
        writeln!(
            f,
            "rows: {} ({} with a decision)",
            self.rows, self.decided_rows
        )?;
        writeln!(
            f,
            "point level: precision {:.3}, recall {:.3}, F1 {:.3} (TP {}, FP {}, FN {})",
            self.precision(),
            self.recall(),
            self.f1(),
            self.true_positives,
            self.false_positives,
            self.false_negatives
        )?;
        writeln!(
            f,
            "event level: precision {:.3}, recall {:.3}, F1 {:.3} ({}/{} events detected, {} alarms, {} false)",
            self.event_precision(),
            self.event_recall(),
            self.event_f1(),
            self.detected_events,
            self.events,
            self.alarms,
            self.false_alarms
        )?;
        writeln!(
            f,
            "flagged rows: {:.2}% of rows with a decision; alarms are {}",
            100.0 * self.flagged_fraction(),
            if self.alarms_from_incidents {
                "incidents (`incident_start`)"
            } else {
                "runs of flagged rows"
            }
        )?;
        let nab = &self.nab;
        writeln!(
            f,
            "NAB standard: {} (raw {:.3}, null {:.1}, perfect {:.1}; {}/{} windows detected, {} false positives, {} detections in probation)",
            nab.normalized()
                .map_or_else(|| "-".to_owned(), |s| format!("{s:.1}")),
            nab.raw,
            nab.null,
            nab.perfect,
            nab.detected_windows,
            nab.windows,
            nab.false_positives,
            nab.probation_detections
        )?;
        writeln!(
            f,
            "series without anomalies: {}, {} alarms in {} rows with a decision ({} per 10k rows)",
            self.clean_series,
            self.clean_alarms,
            self.clean_rows,
            self.clean_alarms_per_10k_rows()
                .map_or_else(|| "-".to_owned(), |r| format!("{r:.2}"))
        )?;
        write!(
            f,
            "detection delay: median {} rows ({}), p90 {} rows ({}), max {} rows ({})",
            r(self.delay_rows_quantile(0.5)),
            q(self.delay_ms_quantile(0.5)),
            r(self.delay_rows_quantile(0.9)),
            q(self.delay_ms_quantile(0.9)),
            r(self.delay_rows_quantile(1.0)),
            q(self.delay_ms_quantile(1.0)),
        )
    }
}

/// A CSV read into columns.
struct Table {
    keys: Option<Vec<Option<String>>>,
    times: Vec<Option<i64>>,
    features: Vec<Vec<Option<f64>>>,
    labels: Vec<bool>,
}

fn csv_error(path: &Path, message: impl Into<String>) -> EvalError {
    EvalError::Csv {
        path: path.to_owned(),
        message: message.into(),
    }
}

fn parse_time(s: &str) -> Result<Option<i64>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(Some(ms));
    }
    arrow_cast::parse::string_to_timestamp_nanos(s)
        .map(|ns| Some(ns.div_euclid(1_000_000)))
        .map_err(|_| format!("invalid time `{s}`: expected integer milliseconds or RFC 3339"))
}

fn parse_label(s: &str) -> Result<bool, String> {
    match s.trim() {
        "" | "0" | "0.0" | "false" | "False" | "FALSE" => Ok(false),
        "1" | "1.0" | "true" | "True" | "TRUE" => Ok(true),
        other => Err(format!(
            "invalid label `{other}`: expected 0/1 or true/false"
        )),
    }
}

fn parse_value(s: &str) -> Result<Option<f64>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    s.parse::<f64>()
        .map(Some)
        .map_err(|_| format!("invalid number `{s}`"))
}

fn read_table(path: &Path, config: &AnomalyConfig, opts: &EvalOptions) -> Result<Table, EvalError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(path)
        .map_err(|e| csv_error(path, e.to_string()))?;
    let headers = reader
        .headers()
        .map_err(|e| csv_error(path, e.to_string()))?
        .clone();
    let find = |name: &str| headers.iter().position(|h| h.trim() == name);
    let need = |name: &str| {
        find(name).ok_or_else(|| {
            csv_error(
                path,
                format!(
                    "no column `{name}` (columns: {})",
                    headers.iter().collect::<Vec<_>>().join(", ")
                ),
            )
        })
    };
    let time_ix = need(&opts.time_column)?;
    let label_ix = find(&opts.label_column);
    let key_ix = config.key.as_deref().map(need).transpose()?;
    let feature_ix = config
        .features
        .iter()
        .map(|f| need(f))
        .collect::<Result<Vec<_>, _>>()?;
    let mut table = Table {
        keys: key_ix.map(|_| Vec::new()),
        times: Vec::new(),
        features: vec![Vec::new(); feature_ix.len()],
        labels: Vec::new(),
    };
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(path, e.to_string()))?;
        let line = record.position().map_or(0, |p| p.line());
        let at = |m: String| csv_error(path, format!("line {line}: {m}"));
        let field = |i: usize| record.get(i).unwrap_or("");
        table.times.push(parse_time(field(time_ix)).map_err(at)?);
        for (col, &i) in table.features.iter_mut().zip(&feature_ix) {
            col.push(parse_value(field(i)).map_err(at)?);
        }
        if let (Some(keys), Some(i)) = (table.keys.as_mut(), key_ix) {
            let k = field(i);
            keys.push((!k.is_empty()).then(|| k.to_owned()));
        }
        table.labels.push(match label_ix {
            Some(i) => parse_label(field(i)).map_err(at)?,
            None => false,
        });
    }
    Ok(table)
}

fn replay_schema(config: &AnomalyConfig, opts: &EvalOptions) -> SchemaRef {
    let mut fields = Vec::new();
    if let Some(k) = &config.key {
        fields.push(Field::new(k, DataType::Utf8, true));
    }
    fields.push(Field::new(&opts.time_column, TIMESTAMP_MS, true));
    for f in &config.features {
        fields.push(Field::new(f, DataType::Float64, true));
    }
    fields.push(Field::new(ROW_COLUMN, DataType::UInt64, false));
    Arc::new(with_event_time(Schema::new(fields), &opts.time_column))
}

fn batch_of(
    schema: &SchemaRef,
    table: &Table,
    range: std::ops::Range<usize>,
) -> Result<RecordBatch, EvalError> {
    let mut columns: Vec<ArrayRef> = Vec::new();
    if let Some(keys) = &table.keys {
        columns.push(Arc::new(StringArray::from(keys[range.clone()].to_vec())));
    }
    columns.push(Arc::new(TimestampMillisecondArray::from(
        table.times[range.clone()].to_vec(),
    )));
    for col in &table.features {
        columns.push(Arc::new(Float64Array::from(col[range.clone()].to_vec())));
    }
    columns.push(Arc::new(UInt64Array::from_iter_values(
        range.map(|i| i as u64),
    )));
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| EvalError::Config(e.to_string()))
}

/// The output column `name`, or the one new column ending in `_name` (a
/// column prefix).
fn output_column(batch: &RecordBatch, input: &Schema, name: &str) -> Option<usize> {
    let schema = batch.schema();
    if let Ok(i) = schema.index_of(name) {
        return Some(i);
    }
    let suffix = format!("_{name}");
    let mut hits = schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| f.name().ends_with(&suffix) && input.index_of(f.name()).is_err());
    match (hits.next(), hits.next()) {
        (Some((i, _)), None) => Some(i),
        _ => None,
    }
}

/// Copies the transform's verdicts on the rows of `batch` into `out`;
/// returns whether the batch has incident columns.
fn collect(
    batch: &RecordBatch,
    input: &Schema,
    flag_column: &str,
    out: &mut [RowOutput],
) -> Result<bool, EvalError> {
    let schema = batch.schema();
    let column = |name: &str| {
        schema.index_of(name).map_err(|_| {
            EvalError::Config(format!("the transform's output has no column `{name}`"))
        })
    };
    let rows = batch
        .column(column(ROW_COLUMN)?)
        .as_primitive::<UInt64Type>();
    let flag_ix = column(flag_column)?;
    let flags = batch.column(flag_ix).as_boolean_opt().ok_or_else(|| {
        EvalError::Config(format!(
            "output column `{flag_column}` is {}, expected Boolean",
            schema.field(flag_ix).data_type()
        ))
    })?;
    let starts = match output_column(batch, input, INCIDENT_START) {
        None => None,
        Some(i) => Some(batch.column(i).as_boolean_opt().ok_or_else(|| {
            EvalError::Config(format!(
                "output column `{}` is {}, expected Boolean",
                schema.field(i).name(),
                schema.field(i).data_type()
            ))
        })?),
    };
    let ids = match output_column(batch, input, INCIDENT_ID) {
        None => None,
        Some(i) => Some(
            arrow_cast::cast(batch.column(i), &DataType::Utf8).map_err(|e| {
                EvalError::Config(format!(
                    "output column `{}` as text: {e}",
                    schema.field(i).name()
                ))
            })?,
        ),
    };
    let ids = ids.as_ref().map(|a| a.as_string::<i32>());
    for (j, row) in rows.values().iter().enumerate() {
        let Some(slot) = out.get_mut(*row as usize) else {
            continue;
        };
        slot.flag = flags.is_valid(j).then(|| flags.value(j));
        slot.start = starts.and_then(|s| s.is_valid(j).then(|| s.value(j)));
        slot.incident = ids.and_then(|a| a.is_valid(j).then(|| a.value(j).to_owned()));
    }
    Ok(starts.is_some())
}

/// Replays the labelled CSV at `path` through the `anomaly` transform built
/// from `config` (its `inputs` are ignored) and reports how the flags match
/// the labels. Each key (`config.key`) is a separate series.
pub async fn evaluate_csv(
    path: &Path,
    config: &AnomalyConfig,
    opts: &EvalOptions,
) -> Result<EvalReport, EvalError> {
    let table = read_table(path, config, opts)?;
    let schema = replay_schema(config, opts);
    let mut v = Validator::new();
    if config
        .check(&sluice_core::InputSchema::only(schema.clone()), &mut v)
        .is_none()
        || v.has_errors()
    {
        return Err(EvalError::Config(v.error_messages()));
    }
    let metrics = ComponentMetrics::new(ComponentLabels::new(
        "eval",
        "anomaly",
        ComponentKind::Transform,
        "anomaly",
    ));
    let cx = BuildCx {
        pipeline: "eval".into(),
        id: "anomaly".into(),
        inputs: sluice_core::InputSchema::only(schema.clone()),
        metrics: metrics.clone(),
    };
    let mut transform = config.build(&cx)?;
    let (tx, mut rx) = mpsc::channel(4);
    let output = Output {
        tx,
        when_full: WhenFull::Block,
        edge: EdgeMetrics::new("eval", "anomaly", "report"),
    };
    let mut emitter = Emitter::new(vec![output], metrics);

    let n = table.labels.len();
    let mut outputs: Vec<RowOutput> = vec![RowOutput::default(); n];
    let mut incidents = false;
    let step = opts.batch_rows.max(1);
    let mut start = 0;
    while start < n {
        let end = (start + step).min(n);
        transform
            .process(
                Msg::Rows(batch_of(&schema, &table, start..end)?),
                &mut emitter,
            )
            .await?;
        // One input batch yields at most one output batch, and the queue
        // holds four: draining after every call never blocks the replay.
        while let Ok(Delivery {
            msg: Msg::Rows(b), ..
        }) = rx.try_recv()
        {
            incidents |= collect(&b, &schema, &config.flag_column, &mut outputs)?;
        }
        start = end;
    }
    transform.finish(&mut emitter).await?;
    while let Ok(Delivery {
        msg: Msg::Rows(b), ..
    }) = rx.try_recv()
    {
        incidents |= collect(&b, &schema, &config.flag_column, &mut outputs)?;
    }

    let mut groups: BTreeMap<Option<&str>, Vec<usize>> = BTreeMap::new();
    for i in 0..n {
        let key = table.keys.as_ref().and_then(|k| k[i].as_deref());
        groups.entry(key).or_default().push(i);
    }
    let mut report = EvalReport {
        rows: n as u64,
        alarms_from_incidents: incidents,
        ..EvalReport::default()
    };
    let mut last_time = 0;
    let times: Vec<i64> = table
        .times
        .iter()
        .map(|t| {
            last_time = t.unwrap_or(last_time);
            last_time
        })
        .collect();
    for rows in groups.values() {
        let labels: Vec<bool> = rows.iter().map(|&i| table.labels[i]).collect();
        let o: Vec<RowOutput> = rows.iter().map(|&i| outputs[i].clone()).collect();
        let t: Vec<i64> = rows.iter().map(|&i| times[i]).collect();
        report.add_series(&labels, &o, &t, opts.tolerance_rows);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::arrow_array::BooleanArray;

    fn flagged(flags: &[Option<bool>]) -> Vec<RowOutput> {
        flags
            .iter()
            .map(|&flag| RowOutput {
                flag,
                ..RowOutput::default()
            })
            .collect()
    }

    /// Rows from `(is_anomaly, incident_start, incident_id)`.
    fn incident_rows(rows: &[(bool, bool, Option<&str>)]) -> Vec<RowOutput> {
        rows.iter()
            .map(|&(flag, start, id)| RowOutput {
                flag: Some(flag),
                start: Some(start),
                incident: id.map(str::to_owned),
            })
            .collect()
    }

    #[test]
    fn runs_finds_maximal_true_stretches() {
        assert_eq!(
            runs(&[false, true, true, false, true]),
            vec![(1, 3), (4, 5)]
        );
        assert!(runs(&[false, false]).is_empty());
    }

    #[test]
    fn event_metrics_count_detections_delays_and_false_alarms() {
        let mut r = EvalReport::default();
        //            0      1      2     3     4      5      6      7     8      9
        let labels = [
            false, false, true, true, true, false, false, false, false, false,
        ];
        let flags = [
            Some(false),
            Some(false),
            Some(false),
            Some(true),
            Some(true),
            Some(false),
            Some(false),
            Some(false),
            Some(true),
            None,
        ];
        let times: Vec<i64> = (0..10).map(|i| i * 100).collect();
        r.add_series(&labels, &flagged(&flags), &times, 1);
        assert_eq!(
            (r.true_positives, r.false_positives, r.false_negatives),
            (2, 1, 1)
        );
        assert_eq!((r.events, r.detected_events), (1, 1));
        assert_eq!(r.delays_rows, vec![1]);
        assert_eq!(r.delays_ms, vec![100]);
        assert_eq!((r.alarms, r.false_alarms), (2, 1));
        assert_eq!(r.decided_rows, 9);
        assert!((r.precision() - 2.0 / 3.0).abs() < 1e-12);
        assert!((r.event_recall() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn an_alarm_just_after_an_event_is_within_tolerance() {
        let mut r = EvalReport::default();
        let labels = [true, false, false];
        let flags = [Some(false), Some(true), Some(false)];
        r.add_series(&labels, &flagged(&flags), &[0, 1, 2], 1);
        assert_eq!((r.detected_events, r.false_alarms), (1, 0));
    }

    #[test]
    fn an_incident_is_one_alarm_however_its_flags_flicker() {
        let mut r = EvalReport {
            alarms_from_incidents: true,
            ..EvalReport::default()
        };
        let labels = [false, false, false, false, false, false];
        let rows = incident_rows(&[
            (false, false, None),
            (true, true, Some("a")),
            (false, false, Some("a")),
            (true, false, Some("a")),
            (false, false, None),
            (true, true, Some("b")),
        ]);
        r.add_series(&labels, &rows, &[0, 1, 2, 3, 4, 5], 0);
        assert_eq!((r.alarms, r.false_alarms), (2, 2));
        assert_eq!(r.false_positives, 3);
    }

    #[test]
    fn an_open_incident_detects_an_event_it_runs_into() {
        let mut r = EvalReport {
            alarms_from_incidents: true,
            ..EvalReport::default()
        };
        let labels = [false, false, true, true];
        let rows = incident_rows(&[
            (false, false, None),
            (true, true, Some("a")),
            (false, false, Some("a")),
            (false, false, Some("a")),
        ]);
        r.add_series(&labels, &rows, &[0, 10, 20, 30], 0);
        assert_eq!((r.detected_events, r.delays_rows.clone()), (1, vec![0]));
        assert_eq!((r.alarms, r.false_alarms), (1, 0));
    }

    #[test]
    fn alarms_on_series_without_anomalies_count_per_10k_rows() {
        let mut r = EvalReport::default();
        let mut flags = vec![Some(false); 2000];
        flags[..100].fill(None);
        flags[500] = Some(true);
        flags[501] = Some(true);
        flags[900] = Some(true);
        r.add_series(&[false; 2000], &flagged(&flags), &[0; 2000], 10);
        assert_eq!((r.clean_series, r.clean_rows, r.clean_alarms), (1, 1900, 2));
        assert!((r.clean_alarms_per_10k_rows().unwrap() - 2e4 / 1900.0).abs() < 1e-9);
        // Two alarm starts outside any window, none preceding: 2 x -0.11.
        assert!((r.nab.raw + 0.22).abs() < 1e-12);
        assert_eq!(r.nab.normalized(), None);
    }

    #[test]
    fn nab_counts_the_first_row_of_each_alarm() {
        // 1000 rows, event at 500-509: window 450-550.
        let labels: Vec<bool> = (0..1000).map(|i| (500..510).contains(&i)).collect();
        let mut flags = vec![Some(false); 1000];
        flags[450..470].fill(Some(true));
        let mut r = EvalReport::default();
        r.add_series(&labels, &flagged(&flags), &[0; 1000], 10);
        assert!((r.nab.raw - 1.0).abs() < 1e-12);
        assert_eq!(r.nab.normalized(), Some(100.0));
        assert_eq!(r.clean_series, 0);
    }

    #[test]
    fn collect_reads_prefixed_incident_columns() {
        let input = Schema::new(vec![Field::new("value", DataType::Float64, true)]);
        let schema = Arc::new(Schema::new(vec![
            Field::new("value", DataType::Float64, true),
            Field::new(ROW_COLUMN, DataType::UInt64, false),
            Field::new("is_anomaly", DataType::Boolean, true),
            Field::new("vib_incident_id", DataType::Utf8, true),
            Field::new("vib_incident_start", DataType::Boolean, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Float64Array::from(vec![1.0, 2.0])),
                Arc::new(UInt64Array::from(vec![1, 0])),
                Arc::new(BooleanArray::from(vec![Some(true), None])),
                Arc::new(StringArray::from(vec![Some("k-1"), None])),
                Arc::new(BooleanArray::from(vec![Some(true), None])),
            ],
        )
        .unwrap();
        let mut out = vec![RowOutput::default(); 2];
        assert!(collect(&batch, &input, "is_anomaly", &mut out).unwrap());
        assert_eq!(
            (out[1].flag, out[1].start, out[1].incident.as_deref()),
            (Some(true), Some(true), Some("k-1"))
        );
        assert_eq!(
            (out[0].flag, out[0].start, out[0].incident.as_deref()),
            (None, None, None)
        );
    }

    #[test]
    fn parses_integer_and_text_times() {
        assert_eq!(parse_time("1700000000000"), Ok(Some(1_700_000_000_000)));
        assert_eq!(parse_time("1970-01-01T00:00:01.5Z"), Ok(Some(1500)));
        assert_eq!(parse_time("1970-01-01 00:04:40.015"), Ok(Some(280_015)));
        assert_eq!(parse_time(""), Ok(None));
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn parses_labels_strictly() {
        assert_eq!(parse_label("1"), Ok(true));
        assert_eq!(parse_label("false"), Ok(false));
        assert!(parse_label("maybe").is_err());
    }
}
