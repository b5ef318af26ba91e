//! `sluice eval-anomaly`: replays labelled CSV files through a pipeline with
//! the `anomaly` transform and reports precision, recall, F1, detection
//! delay, the NAB standard score and false alerts on series without
//! anomalies.

mod nab;
mod replay;
mod report;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use replay::{EvalOptions, Settings, evaluate_csv};
use report::EvalReport;

/// Options of `sluice eval-anomaly`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The transform's settings: the keys of a `type: anomaly` component
    /// (`model`, `features`, `history`, `threshold`, ...), e.g.
    /// `models/anomaly/eval/univariate.yaml`. `${VAR}` is expanded.
    #[arg(value_name = "CONFIG.yaml")]
    config: PathBuf,
    /// Labelled CSV files: a time column, the feature columns (and the key
    /// column if the config names one) and an optional label column (1 =
    /// anomalous). Each file is replayed through a fresh transform.
    #[arg(required = true, value_name = "FILE.csv")]
    files: Vec<PathBuf>,
    /// A flagged row up to this many rows after an event still detects it and
    /// is not a false alarm.
    #[arg(long, default_value_t = 10, value_name = "ROWS")]
    tolerance: usize,
    /// Column with the row time (integer milliseconds or RFC 3339).
    #[arg(long, default_value = "timestamp", value_name = "NAME")]
    time_column: String,
    /// Column with the label.
    #[arg(long, default_value = "label", value_name = "NAME")]
    label_column: String,
    /// Use this fixed threshold instead of the config's.
    #[arg(long, value_name = "SCORE")]
    threshold: Option<f64>,
    /// Print one JSON object (per file and total) instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs the evaluation and prints the report on stdout.
pub async fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.config)
        .with_context(|| format!("reading {}", args.config.display()))?;
    let settings = Settings::parse(&text, args.threshold)
        .with_context(|| format!("reading {}", args.config.display()))?;
    let opts = EvalOptions {
        time_column: args.time_column.clone(),
        label_column: args.label_column.clone(),
        tolerance_rows: args.tolerance,
    };
    let mut total = EvalReport::default();
    let mut per_file = Vec::with_capacity(args.files.len());
    for file in &args.files {
        let report = evaluate_csv(file, &settings, &opts)
            .await
            .with_context(|| format!("evaluating {}", file.display()))?;
        total.merge(&report);
        per_file.push(report);
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let files: Vec<serde_json::Value> = args
            .files
            .iter()
            .zip(&per_file)
            .map(|(f, r)| {
                let mut v = to_json(r);
                v["file"] = f.display().to_string().into();
                v
            })
            .collect();
        let doc = serde_json::json!({ "files": files, "total": to_json(&total) });
        writeln!(out, "{doc}")?;
    } else {
        let names: Vec<String> = args.files.iter().map(|f| f.display().to_string()).collect();
        let width = names.iter().map(String::len).max().unwrap_or(4).max(4);
        writeln!(
            out,
            "{:<width$} {:>8} {:>8} {:>6} {:>6} {:>8} {:>8} {:>7}",
            "file", "rows", "events", "alarms", "false", "flagged", "point F1", "NAB"
        )?;
        for (name, r) in names.iter().zip(&per_file) {
            writeln!(
                out,
                "{name:<width$} {:>8} {:>8} {:>6} {:>6} {:>7.2}% {:>8.3} {:>7}",
                r.rows,
                format!("{}/{}", r.detected_events, r.events),
                r.alarms,
                r.false_alarms,
                100.0 * r.flagged_fraction(),
                r.f1(),
                r.nab
                    .normalized()
                    .map_or_else(|| "-".to_owned(), |s| format!("{s:.1}"))
            )?;
        }
        let n = args.files.len();
        let plural = if n == 1 { "" } else { "s" };
        writeln!(out, "\ntotal over {n} file{plural}:\n{total}")?;
    }
    Ok(ExitCode::SUCCESS)
}

fn to_json(r: &EvalReport) -> serde_json::Value {
    serde_json::json!({
        "rows": r.rows,
        "decided_rows": r.decided_rows,
        "true_positives": r.true_positives,
        "false_positives": r.false_positives,
        "false_negatives": r.false_negatives,
        "precision": r.precision(),
        "recall": r.recall(),
        "f1": r.f1(),
        "events": r.events,
        "detected_events": r.detected_events,
        "alarms": r.alarms,
        "false_alarms": r.false_alarms,
        "event_precision": r.event_precision(),
        "event_recall": r.event_recall(),
        "event_f1": r.event_f1(),
        "delay_rows_median": r.delay_rows_quantile(0.5),
        "delay_rows_p90": r.delay_rows_quantile(0.9),
        "delay_rows_max": r.delay_rows_quantile(1.0),
        "delay_ms_median": r.delay_ms_quantile(0.5),
        "delay_ms_p90": r.delay_ms_quantile(0.9),
        "delay_ms_max": r.delay_ms_quantile(1.0),
        "flagged_fraction": r.flagged_fraction(),
        "alarms_from": if r.alarms_from_incidents { "incident_start" } else { "flag_runs" },
        "nab_standard": r.nab.normalized(),
        "nab_raw": r.nab.raw,
        "nab_null": r.nab.null,
        "nab_perfect": r.nab.perfect,
        "nab_windows": r.nab.windows,
        "nab_detected_windows": r.nab.detected_windows,
        "nab_false_positives": r.nab.false_positives,
        "nab_probation_detections": r.nab.probation_detections,
        "clean_series": r.clean_series,
        "clean_rows": r.clean_rows,
        "clean_alarms": r.clean_alarms,
        "clean_alarms_per_10k_rows": r.clean_alarms_per_10k_rows(),
    })
}
