//! Durable append throughput, drain (lease + ack) rate, eviction under a full
//! outbox and open time, on a real file. Run with `cargo bench -p sluice-outbox`.
//!
//! Files go to `SLUICE_BENCH_DIR` if set, else to the target directory (a
//! disk, unlike a tmpfs `/tmp`, so fsync costs what it costs in production).

use std::error::Error;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sluice_outbox::{
    Durability, Entry, HistoryLimits, OnFull, OpenOptions, Outbox, Priority, entry_size,
};

type Res<T> = Result<T, Box<dyn Error>>;

const TOPIC: &str = "plant/line3/telemetry";
const PAYLOAD_LEN: usize = 200;
/// Each measurement stops after this long or its entry budget, whichever
/// comes first.
const BUDGET: Duration = Duration::from_secs(4);

fn payloads(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut p = format!(
                r#"{{"device":"press-{:03}","ts":1700000000{:03},"temp":21.{},"vib":0.0{},"state":"run","#,
                i % 200,
                i % 1000,
                i % 10,
                i % 7
            )
            .into_bytes();
            p.resize(PAYLOAD_LEN - 1, b' ');
            p.push(b'}');
            p
        })
        .collect()
}

fn options(durability: Durability) -> OpenOptions {
    OpenOptions {
        max_bytes: 8 << 30,
        durability,
        ..OpenOptions::default()
    }
}

struct Row {
    scenario: String,
    entries: u64,
    secs: f64,
    commits: u64,
}

impl Row {
    fn rate(&self) -> f64 {
        self.entries as f64 / self.secs
    }
}

fn append_run(
    path: &Path,
    opts: OpenOptions,
    group: usize,
    max_entries: u64,
) -> Res<(u64, f64, u64)> {
    let (mut outbox, _) = Outbox::open(path, opts)?;
    let ps = payloads(group);
    let batch: Vec<Entry<'_>> = ps
        .iter()
        .map(|p| Entry {
            topic: TOPIC,
            payload: p,
            qos: 1,
            retain: false,
        })
        .collect();
    let start = Instant::now();
    let (mut entries, mut commits) = (0u64, 0u64);
    while entries < max_entries && start.elapsed() < BUDGET {
        let out = outbox.append("cloud", Priority::Normal, &batch)?;
        entries += out.ids.len() as u64;
        commits += 1;
    }
    Ok((entries, start.elapsed().as_secs_f64(), commits))
}

fn fill(path: &Path, opts: OpenOptions, n: usize, sink: &str) -> Res<()> {
    let (mut outbox, _) = Outbox::open(path, opts)?;
    let ps = payloads(1024);
    let batch: Vec<Entry<'_>> = ps
        .iter()
        .map(|p| Entry {
            topic: TOPIC,
            payload: p,
            qos: 1,
            retain: false,
        })
        .collect();
    let mut left = n;
    while left > 0 {
        let k = left.min(batch.len());
        outbox.append(sink, Priority::Normal, &batch[..k])?;
        left -= k;
    }
    Ok(())
}

fn drain_run(path: &Path, opts: OpenOptions, window: usize) -> Res<(u64, f64, u64)> {
    let (mut outbox, _) = Outbox::open(path, opts)?;
    let start = Instant::now();
    let (mut entries, mut commits) = (0u64, 0u64);
    loop {
        let leased = outbox.lease("cloud", window)?;
        if leased.is_empty() {
            break;
        }
        let ids: Vec<i64> = leased.iter().map(|l| l.id).collect();
        entries += outbox.ack(&ids)?;
        commits += 1;
    }
    Ok((entries, start.elapsed().as_secs_f64(), commits))
}

fn file_size(path: &Path) -> u64 {
    ["", "-wal"]
        .iter()
        .filter_map(|s| {
            let mut p = path.as_os_str().to_owned();
            p.push(s);
            std::fs::metadata(PathBuf::from(p)).ok().map(|m| m.len())
        })
        .sum()
}

fn main() -> Res<()> {
    let base = std::env::var_os("SLUICE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    std::fs::create_dir_all(&base)?;
    let dir = tempfile::tempdir_in(&base)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "outbox files in {}", dir.path().display())?;
    let mut rows = Vec::new();
    let mut n = 0;
    let mut fresh = || {
        n += 1;
        dir.path().join(format!("bench-{n}.db"))
    };

    for (durability, name) in [
        (Durability::PowerLoss, "FULL"),
        (Durability::ProcessCrash, "NORMAL"),
    ] {
        for (group, max) in [(1usize, 5_000u64), (64, 300_000), (1024, 1_000_000)] {
            let (entries, secs, commits) = append_run(&fresh(), options(durability), group, max)?;
            rows.push(Row {
                scenario: format!("append, group commit {group:>4}, synchronous={name}"),
                entries,
                secs,
                commits,
            });
        }
    }

    // Drain after an outage: 200k entries waiting.
    const BACKLOG: usize = 200_000;
    let drained = fresh();
    fill(&drained, options(Durability::PowerLoss), BACKLOG, "cloud")?;
    let drained_bytes = file_size(&drained);
    let bytes_per_entry = drained_bytes as f64 / BACKLOG as f64;
    let start = Instant::now();
    let (_, report) = Outbox::open(&drained, options(Durability::PowerLoss))?;
    let open_secs = start.elapsed().as_secs_f64();
    for (window, history) in [(64usize, false), (1024, false), (1024, true)] {
        let path = if window == 64 && !history {
            drained.clone()
        } else {
            fresh()
        };
        if path != drained {
            fill(&path, options(Durability::PowerLoss), BACKLOG, "cloud")?;
        }
        let mut opts = options(Durability::PowerLoss);
        if history {
            opts.history = Some(HistoryLimits {
                max_age: Duration::from_secs(86_400),
                max_bytes: 1 << 30,
            });
        }
        let (entries, secs, commits) = drain_run(&path, opts, window)?;
        rows.push(Row {
            scenario: format!(
                "drain, lease+ack {window:>4}{}",
                if history { " + history" } else { "" }
            ),
            entries,
            secs,
            commits,
        });
    }

    // Steady state of a full outbox: every append evicts the oldest entries.
    let full = fresh();
    let size = entry_size(TOPIC, &payloads(1)[0]);
    let bound = OpenOptions {
        max_bytes: 50_000 * size,
        on_full: OnFull::DropOldest,
        ..options(Durability::PowerLoss)
    };
    fill(&full, bound.clone(), 50_000, "cloud")?;
    let (entries, secs, commits) = append_run(&full, bound, 64, 300_000)?;
    rows.push(Row {
        scenario: "append into a full outbox (drop_oldest), group 64, FULL".into(),
        entries,
        secs,
        commits,
    });

    writeln!(out)?;
    writeln!(
        out,
        "| scenario | entries | seconds | entries/s | commits/s |"
    )?;
    writeln!(out, "|---|---:|---:|---:|---:|")?;
    for r in &rows {
        writeln!(
            out,
            "| {} | {} | {:.2} | {:.0} | {:.0} |",
            r.scenario,
            r.entries,
            r.secs,
            r.rate(),
            r.commits as f64 / r.secs
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "payload {PAYLOAD_LEN} B, topic {} B, counted size {size} B/entry; on disk {bytes_per_entry:.0} B/entry",
        TOPIC.len()
    )?;
    writeln!(
        out,
        "open (quick_check + schema check) of {} pending entries ({:.1} MB): {:.0} ms",
        report.pending_rows,
        drained_bytes as f64 / 1e6,
        open_secs * 1000.0
    )?;
    Ok(())
}
