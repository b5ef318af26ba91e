//! Rows per second and batch latency of the anomaly models on tract, and of
//! the whole `anomaly` transform.
//!
//! `cargo bench -p sluice-plugin-anomaly --bench anomaly` runs on built-in
//! windows. `bench/anomaly/run.py` first writes the batches it also feeds
//! onnxruntime and passes `--batches DIR`: the same ONNX files and the same
//! batches, and the scores tract returns are written back so the script can
//! compare them. One JSON object per line on stdout.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_core::arrow_array::{
    ArrayRef, Float64Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use sluice_core::arrow_schema::{DataType, Field, Schema};
use sluice_core::metrics::{ComponentKind, ComponentLabels};
use sluice_core::schema::{TIMESTAMP_MS, with_event_time};
use sluice_core::{
    BuildCx, ComponentMetrics, EdgeMetrics, Emitter, Msg, Output, Transform, TransformConfig,
    WhenFull,
};
use sluice_plugin_anomaly::AnomalyConfig;
use sluice_plugin_anomaly::anomaly::ScoringModel;

/// Each measurement runs at least this long and this many batches.
const MIN_TIME: Duration = Duration::from_secs(3);
const MIN_BATCHES: usize = 300;
const WARMUP_BATCHES: usize = 30;

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/anomaly")
}

fn read_f32(path: &Path) -> Option<Vec<f32>> {
    let bytes = std::fs::read(path).ok()?;
    Some(
        bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

fn write_f32(path: &Path, values: &[f32]) {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap();
}

/// Standardised-looking windows: a noisy sine, deterministic.
fn synthetic(batches: usize, rows: usize, per_row: usize) -> Vec<f32> {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    (0..batches * rows * per_row)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let noise = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            (i as f32 * 0.21).sin() + 0.3 * noise
        })
        .collect()
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn bench_model(file: &str, history: usize, features: usize, rows: usize, dir: Option<&Path>) {
    // The model scores on the calling thread; the name stays in the output
    // for `bench/anomaly/run.py`.
    let threads = 1;
    let stem = file.trim_end_matches(".onnx");
    let per_row = history * features;
    let input = dir.map(|d| d.join(format!("{stem}-b{rows}.f32")));
    let windows = input
        .as_deref()
        .and_then(read_f32)
        .unwrap_or_else(|| synthetic(64, rows, per_row));
    let batch_len = rows * per_row;
    let batches: Vec<&[f32]> = windows.chunks_exact(batch_len).collect();
    assert!(
        !batches.is_empty(),
        "no full batch of {rows} rows in the input"
    );

    let load_started = Instant::now();
    let model =
        ScoringModel::load(&models_dir().join(file), None, history, features, rows).unwrap();
    let load_ms = load_started.elapsed().as_secs_f64() * 1e3;

    if let Some(d) = dir {
        let scores: Vec<f32> = batches
            .iter()
            .flat_map(|b| model.score(b).unwrap())
            .collect();
        write_f32(
            &d.join(format!("{stem}-b{rows}-t{threads}.tract.f32")),
            &scores,
        );
    }
    for b in batches.iter().cycle().take(WARMUP_BATCHES) {
        std::hint::black_box(model.score(b).unwrap());
    }
    let mut latencies = Vec::new();
    let started = Instant::now();
    for b in batches.iter().cycle() {
        let t = Instant::now();
        std::hint::black_box(model.score(b).unwrap());
        latencies.push(t.elapsed().as_secs_f64());
        if latencies.len() >= MIN_BATCHES && started.elapsed() >= MIN_TIME {
            break;
        }
    }
    let total: f64 = latencies.iter().sum();
    latencies.sort_by(f64::total_cmp);
    println!(
        "{{\"engine\":\"tract\",\"threads\":{threads},\"model\":\"{file}\",\"batch_rows\":{rows},\"batches\":{},\"rows_per_s\":{:.0},\"p50_ms\":{:.4},\"p99_ms\":{:.4},\"load_ms\":{load_ms:.1}}}",
        latencies.len(),
        (latencies.len() * rows) as f64 / total,
        quantile(&latencies, 0.5) * 1e3,
        quantile(&latencies, 0.99) * 1e3,
    );
}

/// Rows per second through the transform: per-key standardisation, windows,
/// inference on the blocking pool and the output columns, 20 keys.
fn bench_transform() {
    const ROWS: usize = 1024;
    const KEYS: usize = 20;
    let schema = Arc::new(with_event_time(
        Schema::new(vec![
            Field::new("device", DataType::Utf8, false),
            Field::new("ts", TIMESTAMP_MS, false),
            Field::new("value", DataType::Float64, true),
        ]),
        "ts",
    ));
    let yaml = format!(
        "inputs: [t]\nmodel: {}\nkey: device\nfeatures: [value]\nbatch_rows: 1024\n",
        models_dir().join("univariate-h32.onnx").display()
    );
    let config: AnomalyConfig = serde_saphyr::from_str(&yaml).unwrap();
    let metrics = ComponentMetrics::new(ComponentLabels::new(
        "bench",
        "anomaly",
        ComponentKind::Transform,
        "anomaly",
    ));
    let cx = BuildCx {
        pipeline: "bench".into(),
        id: "anomaly".into(),
        inputs: sluice_core::InputSchema::only(schema.clone()),
        metrics: metrics.clone(),
    };
    let devices: Vec<String> = (0..KEYS).map(|k| format!("press-{k}")).collect();
    let batches: Vec<RecordBatch> = (0..64)
        .map(|b| {
            let base = b * ROWS;
            let keys: Vec<&str> = (0..ROWS)
                .map(|i| devices[(base + i) % KEYS].as_str())
                .collect();
            let values: Vec<f64> = (0..ROWS)
                .map(|i| ((base + i) as f64 * 0.013).sin() * 10.0 + (i % 7) as f64 * 0.1)
                .collect();
            let cols: Vec<ArrayRef> = vec![
                Arc::new(StringArray::from(keys)),
                Arc::new(TimestampMillisecondArray::from_iter_values(
                    (0..ROWS).map(|i| (base + i) as i64 * 50),
                )),
                Arc::new(Float64Array::from(values)),
            ];
            RecordBatch::try_new(schema.clone(), cols).unwrap()
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut transform = config.build(&cx).unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::channel(8);
        let output = Output { tx, when_full: WhenFull::Block, edge: EdgeMetrics::new("bench", "anomaly", "out") };
        let mut out = Emitter::new(vec![output], metrics);
        // Warm every key past its warm-up so each measured row is scored.
        for b in batches.iter().cycle().take(8) {
            transform.process(Msg::Rows(b.clone()), &mut out).await.unwrap();
            while rx.try_recv().is_ok() {}
        }
        let mut latencies = Vec::new();
        let started = Instant::now();
        for b in batches.iter().cycle() {
            let t = Instant::now();
            transform.process(Msg::Rows(b.clone()), &mut out).await.unwrap();
            while rx.try_recv().is_ok() {}
            latencies.push(t.elapsed().as_secs_f64());
            if latencies.len() >= MIN_BATCHES && started.elapsed() >= MIN_TIME {
                break;
            }
        }
        let total: f64 = latencies.iter().sum();
        latencies.sort_by(f64::total_cmp);
        println!(
            "{{\"engine\":\"sluice-transform\",\"threads\":1,\"model\":\"univariate-h32.onnx\",\"batch_rows\":{ROWS},\"keys\":{KEYS},\"batches\":{},\"rows_per_s\":{:.0},\"p50_ms\":{:.4},\"p99_ms\":{:.4}}}",
            latencies.len(),
            (latencies.len() * ROWS) as f64 / total,
            quantile(&latencies, 0.5) * 1e3,
            quantile(&latencies, 0.99) * 1e3,
        );
    });
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = args
        .iter()
        .position(|a| a == "--batches")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from);
    for rows in [1024, 64] {
        bench_model("univariate-h32.onnx", 32, 1, rows, dir.as_deref());
        bench_model("factory-h16.onnx", 16, 3, rows, dir.as_deref());
    }
    bench_transform();
}
