//! Writes the starting corpora of the fuzz targets from real inputs of the
//! repository: its pipeline files, JSON payloads as the tests send them, an
//! MJPEG stream of its JPEG frames, outbox files written by the outbox API
//! and, with the `anomaly` feature, model files written by the fitting code.
//!
//! `cargo run --features seeds --bin seeds [-- DIR]` writes into `DIR`
//! (default `fuzz/corpus`), one directory per target; `cargo fuzz cmin`
//! then keeps what adds coverage.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sluice_outbox::{Durability, Entry, HistoryLimits, OnFull, OpenOptions, Outbox, Priority};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

fn main() -> Result<()> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = fuzz
        .parent()
        .ok_or("the fuzz crate lives in the repository")?;
    let out = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| fuzz.join("corpus"));
    pipelines(root, &out.join("pipeline_loader"))?;
    payloads(&out.join("mqtt_json"))?;
    mjpeg(root, &out.join("mjpeg_parts"))?;
    outboxes(&out.join("outbox_open"))?;
    #[cfg(feature = "anomaly")]
    models(&out.join("state_file"))?;
    Ok(())
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(name), bytes)?;
    Ok(())
}

fn files_with_extension(dir: &Path, ext: &str) -> Result<Vec<PathBuf>> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    found.sort();
    Ok(found)
}

/// A pipeline with every component of the fuzz catalog and most keys.
const EVERY_COMPONENT: &str = "\
sources:
  telemetry:
    type: mqtt
    url: ${SLUICE_BROKER_URL:-mqtt://127.0.0.1:1883}
    topics: [\"factory/+/+/telemetry\", \"factory/line2/#\"]
    qos: at_least_once
    format: json
    schema:
      device: utf8
      ts: timestamp_ms
      vibration_rms: float64
      temperature: float64?
      count: int64?
      ok: bool?
    event_time: ts
    client_id: sluice-line3
    keep_alive: 30s
    max_batch_rows: 512
    linger: 100ms
    clean_session: false
    on_bad_data: drop
    reconnect: { min_backoff: 500ms, max_backoff: 30s }
transforms:
  checked:
    type: pass
    inputs: [telemetry]
    buffer: { capacity: 16, when_full: drop_newest }
    require: [device, ts]
  again:
    type: pass
    inputs: [checked, telemetry]
sinks:
  cloud:
    type: mqtt
    inputs: [again]
    url: mqtts://broker.example:8883
    topic: plants/p1/{device}/insights
    qos: at_least_once
    retain: false
    batch: false
    username: gw
    password: ${SLUICE_PASSWORD:-secret}
    keep_alive: 30s
    max_inflight: 32
    max_packet_size: 256KiB
    outbox:
      path: /var/lib/sluice/cloud.db
      max_bytes: 64MiB
      on_full: drop_oldest
      priority: high
      history: { max_age: 24h, max_bytes: 16MiB }
  archive:
    type: file
    inputs: [checked]
    path: /var/lib/sluice/archive.jsonl
  debug:
    type: console
    inputs: [telemetry, again]
    format: table
";

/// A small pipeline with a broker section and a wiring mistake.
const WITH_PROBLEMS: &str = "\
broker:
  listen: 127.0.0.1:1883
sources:
  s:
    type: mqtt
    url: mqtt://127.0.0.1
    topics: [a/b]
    schema: { v: float64, device: string }
transforms:
  p:
    type: pass
    inputs: [s, missing]
    require: [w]
  q:
    inputs: [p]
    type: pass
sinks:
  out:
    type: console
    inputs: [p, q, s]
    format: json
  loop:
    type: pass
    inputs: [out]
";

fn pipelines(root: &Path, dir: &Path) -> Result<()> {
    let mut sources = files_with_extension(&root.join("pipelines"), "yaml")?;
    for sub in ["tests/config/valid", "tests/config/invalid"] {
        sources.extend(files_with_extension(&root.join(sub), "yaml")?);
    }
    sources.push(root.join("bench/outage/outage.yaml"));
    for path in sources {
        let name = path
            .strip_prefix(root)?
            .to_string_lossy()
            .replace(['/', '\\'], "-");
        write(dir, &name, &std::fs::read(&path)?)?;
    }
    write(dir, "every-component.yaml", EVERY_COMPONENT.as_bytes())?;
    write(dir, "with-problems.yaml", WITH_PROBLEMS.as_bytes())
}

/// Payloads as the tests and the simulator send them, for the fuzz schema
/// (`device`, `ts`, `temperature`, `count?`, `ok?`, `label?`, `at?`).
const PAYLOADS: &[&str] = &[
    r#"{"device":"dev-00","ts":1767225600000,"temperature":21.5}"#,
    r#"{"device":"dev-01","ts":"2026-01-01T00:00:00.250Z","temperature":-3,"count":7,"ok":true,"label":"a\"b\u00e9","at":"2026-01-01T01:00:00+01:00"}"#,
    r#"{"extra":{"deep":[1,2,{"x":null}]},"ok":false,"temperature":1e3,"ts":1,"device":"d"}"#,
    r#"{"device":"dev-00","ts":1767225625000}"#,
    r#"{"device":"dev-00","ts":1767225625000,"temperature":"abc"}"#,
    r#"{"device":null,"ts":1,"temperature":1.0,"count":null}"#,
    r#"{"device":"x","ts":18446744073709551615,"temperature":18446744073709551615,"count":-9223372036854775808}"#,
    "{not json 0",
    "[1,2]",
];

fn payloads(dir: &Path) -> Result<()> {
    for (i, p) in PAYLOADS.iter().enumerate() {
        write(dir, &format!("payload-{i}.json"), p.as_bytes())?;
    }
    write(dir, "several.json", PAYLOADS.join("\0").as_bytes())
}

/// A `multipart/x-mixed-replace` body as IP cameras send it: parts with and
/// without `Content-Length`, then the closing boundary.
fn mjpeg_stream(cut: u8, frames: &[&[u8]]) -> Vec<u8> {
    let mut s = vec![cut];
    s.extend_from_slice(b"multipart/x-mixed-replace; boundary=frame\n");
    s.extend_from_slice(b"preamble\r\n");
    for (i, f) in frames.iter().enumerate() {
        s.extend_from_slice(b"--frame\r\nContent-Type: image/jpeg\r\n");
        if i % 2 == 0 {
            s.extend_from_slice(format!("Content-Length: {}\r\n", f.len()).as_bytes());
        }
        s.extend_from_slice(b"\r\n");
        s.extend_from_slice(f);
        s.extend_from_slice(b"\r\n");
    }
    s.extend_from_slice(b"--frame--\r\n");
    s
}

fn mjpeg(root: &Path, dir: &Path) -> Result<()> {
    let frames = files_with_extension(&root.join("examples/retail/checkout"), "jpg")?;
    let a = std::fs::read(frames.first().ok_or("no JPEG frames")?)?;
    let b = std::fs::read(frames.last().ok_or("no JPEG frames")?)?;
    write(dir, "two-frames", &mjpeg_stream(0, &[&a, &b]))?;
    // The same framing around the first bytes of the frames (their JPEG
    // headers), short enough for many executions a second.
    let (ha, hb) = (&a[..a.len().min(96)], &b[..b.len().min(64)]);
    write(dir, "headers-one-read", &mjpeg_stream(0, &[ha, hb, ha]))?;
    write(dir, "headers-small-reads", &mjpeg_stream(7, &[ha, hb, ha]))?;
    let mut quoted = vec![1];
    quoted.extend_from_slice(b"multipart/x-mixed-replace;boundary=\"--myb\"\n");
    quoted.extend_from_slice(
        b"--myb\r\nContent-Length: 3\r\n\r\nabc\r\n--myb\r\n\r\nxy\nz\r\n--myb--\r\n",
    );
    write(dir, "quoted-boundary", &quoted)
}

fn outbox_options() -> OpenOptions {
    OpenOptions {
        max_bytes: 1 << 20,
        on_full: OnFull::DropOldest,
        history: Some(HistoryLimits {
            max_age: Duration::from_secs(24 * 3600),
            max_bytes: 1 << 20,
        }),
        durability: Durability::ProcessCrash,
        busy_timeout: Duration::from_secs(1),
    }
}

/// An outbox with entries of two sinks at every priority, some of them
/// acknowledged into the history.
fn fill_outbox(path: &Path) -> Result<()> {
    let (mut outbox, _) = Outbox::open(path, outbox_options())?;
    for (sink, priority) in [
        ("cloud", Priority::High),
        ("cloud", Priority::Normal),
        ("bulk", Priority::Low),
    ] {
        let entries = [
            Entry {
                topic: "plants/p1/insights",
                payload: br#"{"device":"press-1","vib":0.4,"n":12}"#,
                qos: 1,
                retain: false,
            },
            Entry {
                topic: "plants/p1/raw",
                payload: br#"[{"device":"press-2","v":1.5}]"#,
                qos: 0,
                retain: true,
            },
        ];
        outbox.append(sink, priority, &entries)?;
    }
    let leased = outbox.lease("cloud", 2)?;
    let ids: Vec<i64> = leased.iter().map(|l| l.id).collect();
    outbox.ack(&ids)?;
    Ok(())
}

fn outboxes(dir: &Path) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let path = tmp.path().join("cloud.db");
    fill_outbox(&path)?;
    // Closing the last connection checkpoints the WAL into the file.
    write(dir, "outbox-4k-pages", &std::fs::read(&path)?)?;
    // The same outbox in 512-byte pages: a tenth of the bytes to mutate.
    {
        let conn = rusqlite::Connection::open(&path)?;
        conn.execute_batch(
            "PRAGMA journal_mode = DELETE; PRAGMA page_size = 512; VACUUM; PRAGMA journal_mode = WAL;",
        )?;
    }
    let (outbox, report) = Outbox::open(&path, outbox_options())?;
    if report.quarantined.is_some() || report.pending_rows == 0 {
        return Err("the compacted outbox does not open as it was".into());
    }
    drop(outbox);
    write(dir, "outbox-512-pages", &std::fs::read(&path)?)?;
    // Files damaged where page checks cannot see it: sizes and counters at
    // the ends of their range, out-of-range QoS and priority. Byte mutations
    // rarely reach such values, as the record header must change with them.
    let damaged = [
        (
            "outbox-extreme-sizes",
            "UPDATE outbox SET size = 9223372036854775807;
             UPDATE outbox SET qos = 300, priority = 7 WHERE sink = 'bulk' AND topic LIKE '%raw';
             UPDATE history SET size = 9223372036854775807;",
        ),
        (
            "outbox-extreme-counters",
            "UPDATE counters SET rows = 9223372036854775807, bytes = 9223372036854775807;
             UPDATE history_counters SET rows = -5, bytes = 9223372036854775807;",
        ),
    ];
    for (name, damage) in damaged {
        let copy = tmp.path().join(name);
        std::fs::copy(&path, &copy)?;
        rusqlite::Connection::open(&copy)?.execute_batch(damage)?;
        write(dir, name, &std::fs::read(&copy)?)?;
    }
    let empty = tmp.path().join("empty.db");
    drop(Outbox::open(&empty, outbox_options())?);
    write(dir, "outbox-new", &std::fs::read(&empty)?)
}

#[cfg(feature = "anomaly")]
fn models(dir: &Path) -> Result<()> {
    use sluice_plugin_anomaly::anomaly::pca::{FitOptions, KeyedModels, PcaModel};

    // Three features driven by one latent variable, as in the PCA docs.
    let rows = |phase: f64| -> Vec<f64> {
        (0..200)
            .flat_map(|i| {
                let s = (i as f64 * 0.1 + phase).sin();
                let e = ((i * 7919) % 13) as f64 * 1e-3;
                [s + e, 2.0 * s - e, -s + 0.5 * e]
            })
            .collect()
    };
    let names = || {
        vec![
            "current".to_owned(),
            "pressure".to_owned(),
            "flow".to_owned(),
        ]
    };
    let tmp = tempfile::tempdir()?;
    let single = tmp.path().join("single.json");
    let model = PcaModel::fit(&rows(0.0), 3, &FitOptions::default())?.with_features(names())?;
    model.save(&single)?;
    write(dir, "single.json", &std::fs::read(&single)?)?;
    let keyed = tmp.path().join("keyed.json");
    let mut models = std::collections::BTreeMap::new();
    models.insert("pump-1".to_owned(), model);
    let other = PcaModel::fit(&rows(1.0), 3, &FitOptions::default())?.with_features(names())?;
    models.insert("pump-2".to_owned(), other);
    KeyedModels {
        key: "pump".to_owned(),
        models,
    }
    .save(&keyed)?;
    write(dir, "keyed.json", &std::fs::read(&keyed)?)
}
