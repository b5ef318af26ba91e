//! Replaying a labelled CSV file as `sluice run` would: a pipeline loaded by
//! `sluice-config` and run by `sluice-topology`, with a `csv` source that
//! numbers its rows, the `anomaly` transform with the given settings and a
//! `file` sink. The verdicts are then matched to the labels by row number,
//! so rows the source or the transform dropped count as undecided.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use serde_json::{Map, Value, json};
use sluice_topology::{PipelineState, RunningPipeline};

use super::report::{EvalReport, RowOutput};
use crate::Catalog;

/// Column the source adds with each row's number in the file.
const ROW_COLUMN: &str = "_eval_row";
/// Id of the replay source in the evaluation pipeline.
const SOURCE_ID: &str = "csv";

/// How a labelled CSV is read and judged.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Column with the row time: integer milliseconds since the epoch, or
    /// RFC 3339 / `YYYY-MM-DD HH:MM:SS[.fff]` text. It becomes the stream's
    /// event time.
    pub time_column: String,
    /// Column with the label (`1`/`true` = anomalous, `0`/`false`/empty =
    /// normal). When the CSV has no such column only alarms are counted.
    pub label_column: String,
    /// A flagged row up to this many rows after an event's last row still
    /// detects it and is not a false alarm.
    pub tolerance_rows: usize,
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self {
            time_column: "timestamp".into(),
            label_column: "label".into(),
            tolerance_rows: 10,
        }
    }
}

/// The settings of the `anomaly` component under test: the keys of a
/// `type: anomaly` component, as written in the evaluation's YAML file.
#[derive(Debug, Clone)]
pub struct Settings {
    keys: Map<String, Value>,
}

impl Settings {
    /// Parses the YAML text of the settings; `threshold` replaces theirs.
    pub fn parse(text: &str, threshold: Option<f64>) -> anyhow::Result<Self> {
        let mut keys: Map<String, Value> =
            serde_saphyr::from_str(text).map_err(|e| anyhow!("{e}"))?;
        keys.remove("type");
        keys.insert("inputs".into(), json!([SOURCE_ID]));
        if let Some(t) = threshold {
            anyhow::ensure!(t.is_finite(), "--threshold must be a finite number");
            keys.insert("threshold".into(), json!(t));
        }
        Ok(Self { keys })
    }

    fn text(&self, name: &str) -> Option<&str> {
        self.keys.get(name).and_then(Value::as_str)
    }

    fn features(&self) -> Vec<String> {
        self.keys
            .get("features")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The labelled side of a CSV, per row: key, time and label.
struct Labels {
    keys: Option<Vec<Option<String>>>,
    times: Vec<Option<i64>>,
    labels: Vec<bool>,
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

/// Reads the labels, keys and times of `path`, checking that the columns the
/// settings and options name are there.
fn read_labels(path: &Path, settings: &Settings, opts: &EvalOptions) -> anyhow::Result<Labels> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_path(path)?;
    let headers = reader.headers()?.clone();
    let find = |name: &str| headers.iter().position(|h| h.trim() == name);
    let need = |name: &str| {
        find(name).ok_or_else(|| {
            anyhow!(
                "no column `{name}` (columns: {})",
                headers.iter().collect::<Vec<_>>().join(", ")
            )
        })
    };
    let time_ix = need(&opts.time_column)?;
    for f in settings.features() {
        need(&f)?;
    }
    let key_ix = settings.text("key").map(need).transpose()?;
    let label_ix = find(&opts.label_column);
    let mut out = Labels {
        keys: key_ix.map(|_| Vec::new()),
        times: Vec::new(),
        labels: Vec::new(),
    };
    for record in reader.records() {
        let record = record?;
        let line = record.position().map_or(0, |p| p.line());
        let field = |i: usize| record.get(i).unwrap_or("");
        out.times
            .push(parse_time(field(time_ix)).map_err(|m| anyhow!("line {line}: {m}"))?);
        if let (Some(keys), Some(i)) = (out.keys.as_mut(), key_ix) {
            let k = field(i);
            keys.push((!k.is_empty()).then(|| k.to_owned()));
        }
        out.labels.push(match label_ix {
            Some(i) => parse_label(field(i)).map_err(|m| anyhow!("line {line}: {m}"))?,
            None => false,
        });
    }
    Ok(out)
}

/// The evaluation pipeline: replay `csv` through the transform into `out`.
/// Each component's map starts with `type` (the loader reads it first);
/// every value is written as JSON, which is YAML, so no quoting can go wrong.
fn pipeline_text(csv: &Path, out: &Path, settings: &Settings, opts: &EvalOptions) -> String {
    let mut schema = Map::new();
    if let Some(k) = settings.text("key") {
        schema.insert(k.to_owned(), json!("utf8?"));
    }
    schema.insert(opts.time_column.clone(), json!("timestamp_ms"));
    for f in settings.features() {
        schema.insert(f, json!("float64?"));
    }
    let component = |ty: &str, keys: &Map<String, Value>| {
        let mut text = format!("    type: {ty}\n");
        for (k, v) in keys {
            text.push_str(&format!("    {}: {v}\n", Value::from(k.as_str())));
        }
        text
    };
    let map = |pairs: Vec<(&str, Value)>| -> Map<String, Value> {
        pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    };
    let source = map(vec![
        ("path", json!(csv.to_string_lossy())),
        ("schema", Value::Object(schema)),
        ("event_time", json!(opts.time_column)),
        ("row_number", json!(ROW_COLUMN)),
    ]);
    let sink = map(vec![
        ("inputs", json!(["anomaly"])),
        ("path", json!(out.to_string_lossy())),
    ]);
    format!(
        "sources:\n  {SOURCE_ID}:\n{}transforms:\n  anomaly:\n{}sinks:\n  verdicts:\n{}",
        component("csv", &source),
        component("anomaly", &settings.keys),
        component("file", &sink),
    )
}

/// Reads the verdicts the file sink wrote into one slot per CSV row;
/// returns whether the output has incident columns.
fn read_verdicts(path: &Path, settings: &Settings, out: &mut [RowOutput]) -> anyhow::Result<bool> {
    let flag = settings.text("flag_column").unwrap_or("is_anomaly");
    let prefix = settings.text("column_prefix").unwrap_or("");
    let (start_col, id_col) = (
        format!("{prefix}incident_start"),
        format!("{prefix}incident_id"),
    );
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the verdicts in {}", path.display()))?;
    let mut incidents = false;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let row: Map<String, Value> = serde_json::from_str(line)?;
        let Some(slot) = row
            .get(ROW_COLUMN)
            .and_then(Value::as_u64)
            .and_then(|n| out.get_mut(n as usize))
        else {
            bail!("a verdict without a valid `{ROW_COLUMN}`: {line}");
        };
        slot.flag = row.get(flag).and_then(Value::as_bool);
        slot.start = row.get(&start_col).and_then(Value::as_bool);
        incidents |= slot.start.is_some();
        slot.incident = row.get(&id_col).and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        });
    }
    Ok(incidents)
}

/// Replays the labelled CSV at `path` through the `anomaly` transform with
/// `settings` and reports how its flags match the labels. Each key of the
/// settings' `key` column is a separate series.
pub async fn evaluate_csv(
    path: &Path,
    settings: &Settings,
    opts: &EvalOptions,
) -> anyhow::Result<EvalReport> {
    let labels = read_labels(path, settings, opts)?;
    let dir = tempfile::tempdir().context("creating a directory for the verdicts")?;
    let verdicts = dir.path().join("verdicts.jsonl");
    let text = pipeline_text(path, &verdicts, settings, opts);
    let pipeline = sluice_config::load_str::<Catalog>(Path::new("eval-anomaly.yaml"), &text)
        .map_err(|d| anyhow!("the anomaly settings do not fit this file:\n{d}"))?;
    let mut running = RunningPipeline::start(&pipeline)?;
    running.wait().await;
    let state = running.state().borrow().clone();
    running.shutdown(Duration::from_secs(5)).await;
    if let PipelineState::Failed(why) = state {
        bail!("the replay failed: {why}");
    }

    let n = labels.labels.len();
    let mut outputs = vec![RowOutput::default(); n];
    let incidents = read_verdicts(&verdicts, settings, &mut outputs)?;
    let mut groups: BTreeMap<Option<&str>, Vec<usize>> = BTreeMap::new();
    for i in 0..n {
        let key = labels.keys.as_ref().and_then(|k| k[i].as_deref());
        groups.entry(key).or_default().push(i);
    }
    let mut report = EvalReport {
        rows: n as u64,
        alarms_from_incidents: incidents,
        ..EvalReport::default()
    };
    let mut last_time = 0;
    let times: Vec<i64> = labels
        .times
        .iter()
        .map(|t| {
            last_time = t.unwrap_or(last_time);
            last_time
        })
        .collect();
    for rows in groups.values() {
        let l: Vec<bool> = rows.iter().map(|&i| labels.labels[i]).collect();
        let o: Vec<RowOutput> = rows.iter().map(|&i| outputs[i].clone()).collect();
        let t: Vec<i64> = rows.iter().map(|&i| times[i]).collect();
        report.add_series(&l, &o, &t, opts.tolerance_rows);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn models() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models")
    }

    fn settings(extra: &str) -> Settings {
        let text = format!(
            "model: {}/anomaly/univariate-h32.onnx\nfeatures: [value]\ncalibration: none\nthreshold: 0.9\nrebase: false\n{extra}",
            models().display()
        );
        Settings::parse(&text, None).unwrap()
    }

    #[tokio::test]
    async fn reports_detection_on_the_held_out_series() {
        let path = models().join("anomaly/fixtures/univariate-h32-series.csv");
        let report = evaluate_csv(&path, &settings(""), &EvalOptions::default())
            .await
            .unwrap();
        assert_eq!(report.rows, 2500);
        assert_eq!(report.decided_rows, 2500 - 128);
        assert_eq!(report.events, 3);
        assert_eq!(report.detected_events, 3, "{report}");
        assert!(report.precision() > 0.8, "{report}");
        assert!(
            report.delay_rows_quantile(1.0).is_some_and(|d| d <= 150),
            "{report}"
        );
    }

    #[tokio::test]
    async fn names_a_missing_column() {
        let path = models().join("anomaly/fixtures/univariate-h32-series.csv");
        let s = Settings::parse("features: [pressure]\n", None).unwrap();
        let err = evaluate_csv(&path, &s, &EvalOptions::default())
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("no column `pressure`"), "{err}");
    }

    #[tokio::test]
    async fn a_setting_the_transform_rejects_is_reported() {
        let path = models().join("anomaly/fixtures/univariate-h32-series.csv");
        let err = evaluate_csv(&path, &settings("histroy: 32\n"), &EvalOptions::default())
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `histroy`"), "{err}");
    }

    #[test]
    fn the_threshold_option_replaces_the_settings_threshold() {
        let s = Settings::parse("threshold: 0.9\ninputs: [x]\n", Some(0.5)).unwrap();
        assert_eq!(s.keys["threshold"], json!(0.5));
        assert_eq!(s.keys["inputs"], json!([SOURCE_ID]));
        assert!(Settings::parse("threshold: 0.9\n", Some(f64::NAN)).is_err());
    }

    #[test]
    fn verdicts_fill_their_rows_with_prefixed_incident_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.jsonl");
        std::fs::write(
            &path,
            "{\"_eval_row\":1,\"is_anomaly\":true,\"vib_incident_id\":7,\"vib_incident_start\":true}\n{\"_eval_row\":0}\n",
        )
        .unwrap();
        let s = Settings::parse("column_prefix: vib_\n", None).unwrap();
        let mut out = vec![RowOutput::default(); 2];
        assert!(read_verdicts(&path, &s, &mut out).unwrap());
        assert_eq!(
            (out[1].flag, out[1].start, out[1].incident.as_deref()),
            (Some(true), Some(true), Some("7"))
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
