//! Replays labelled CSV files through the `anomaly` transform and prints
//! precision, recall, F1 and detection delay, per file and in total.
//!
//! ```text
//! cargo run -p sluice-plugin-onnx --example eval_anomaly -- \
//!     models/anomaly/eval/univariate.yaml data/*.csv [--tolerance 10]
//! ```
//!
//! The YAML file holds the transform's keys (`model`, `features`, `threshold`,
//! ...; `inputs` is ignored). Each CSV has a `timestamp` column (ms or RFC
//! 3339), the feature columns, the key column if the config names one, and a
//! `label` column (0/1).
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::process::ExitCode;

use sluice_plugin_onnx::{AnomalyConfig, EvalOptions, EvalReport, evaluate_csv};

fn usage() -> ExitCode {
    eprintln!(
        "usage: eval_anomaly CONFIG.yaml FILE.csv... [--tolerance ROWS] [--time-column NAME] [--label-column NAME]"
    );
    ExitCode::from(2)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut opts = EvalOptions::default();
    let mut positional: Vec<String> = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--tolerance" => match args.next().and_then(|v| v.parse().ok()) {
                Some(v) => opts.tolerance_rows = v,
                None => return usage(),
            },
            "--time-column" => match args.next() {
                Some(v) => opts.time_column = v,
                None => return usage(),
            },
            "--label-column" => match args.next() {
                Some(v) => opts.label_column = v,
                None => return usage(),
            },
            _ => positional.push(a),
        }
    }
    if positional.len() < 2 {
        return usage();
    }
    let text = match std::fs::read_to_string(&positional[0]) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{}: {e}", positional[0]);
            return ExitCode::FAILURE;
        }
    };
    let config: AnomalyConfig = match serde_saphyr::from_str(&text) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}: {e}", positional[0]);
            return ExitCode::FAILURE;
        }
    };
    let mut total = EvalReport::default();
    for file in &positional[1..] {
        let path = PathBuf::from(file);
        match evaluate_csv(&path, &config, &opts).await {
            Ok(r) => {
                println!(
                    "{file}: events {}/{} detected, {} false alarms, point F1 {:.3}",
                    r.detected_events,
                    r.events,
                    r.false_alarms,
                    r.f1()
                );
                total.merge(&r);
            }
            Err(e) => {
                eprintln!("{file}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!("\ntotal over {} files:\n{total}", positional.len() - 1);
    ExitCode::SUCCESS
}
