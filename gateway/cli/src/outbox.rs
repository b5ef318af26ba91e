//! `sluice outbox stats|dump`: look into an outbox file, read-only.

use sluice_core::now_ms;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;
use sluice_outbox::{OutboxReader, StoredEntry};

/// Read-only inspection of an outbox database.
#[derive(Debug, Subcommand)]
pub enum OutboxCmd {
    /// Rows and bytes waiting, per priority and sink, oldest entry, history size.
    Stats {
        /// Outbox database file.
        path: PathBuf,
    },
    /// Print the entries waiting to be forwarded, in drain order, as JSON lines.
    Dump {
        /// Outbox database file.
        path: PathBuf,
        /// At most this many entries.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

/// Runs the subcommand.
pub fn run(cmd: OutboxCmd) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match cmd {
        OutboxCmd::Stats { path } => {
            let reader = OutboxReader::open(&path)
                .with_context(|| format!("opening outbox {}", path.display()))?;
            let s = reader.stats()?;
            let now_ms = now_ms();
            let doc = json!({
                "path": path.display().to_string(),
                "rows": s.rows,
                "bytes": s.bytes,
                "oldest_age_seconds": s.oldest_created_ms.map(|t| (now_ms - t).max(0) as f64 / 1000.0),
                "by_priority": s.by_priority.iter().map(|p| json!({
                    "priority": p.priority.as_str(), "rows": p.rows, "bytes": p.bytes,
                })).collect::<Vec<_>>(),
                "by_sink": s.by_sink.iter().map(|k| json!({
                    "sink": k.sink, "rows": k.rows, "bytes": k.bytes,
                    "oldest_age_seconds": k.oldest_created_ms.map(|t| (now_ms - t).max(0) as f64 / 1000.0),
                })).collect::<Vec<_>>(),
                "history_rows": s.history_rows,
                "history_bytes": s.history_bytes,
                "file_bytes": s.file_bytes,
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        }
        OutboxCmd::Dump { path, limit } => {
            let reader = OutboxReader::open(&path)
                .with_context(|| format!("opening outbox {}", path.display()))?;
            for e in reader.dump(limit)? {
                writeln!(out, "{}", entry_json(&e))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn entry_json(e: &StoredEntry) -> serde_json::Value {
    let payload = match std::str::from_utf8(&e.payload) {
        Ok(text) => serde_json::from_str(text).unwrap_or_else(|_| json!(text)),
        Err(_) => json!({ "binary_bytes": e.payload.len() }),
    };
    json!({
        "id": e.id, "sink": e.sink, "priority": e.priority.as_str(), "topic": e.topic,
        "qos": e.qos, "retain": e.retain, "created_ms": e.created_ms, "size": e.size,
        "payload": payload,
    })
}
