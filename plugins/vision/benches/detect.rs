//! Detector speed on the committed photos: per-frame latency (decode, fit,
//! inference, decode, NMS) on one thread, model-only latency on a prepared
//! input, sustained frames/s with one and two plain threads, and end to end
//! through the real `detect` transform (frames in, rows out in frame order)
//! with `workers: 1` and `workers: 2`, with the cores the run kept busy
//! (`cores_busy`: process CPU time over wall time).
//!
//! `cargo bench -p sluice-plugin-vision --bench detect -- [FRAMES] [transform]`;
//! with `transform` only the end-to-end mode runs. Prints one `key=value`
//! line per measurement (see `bench/detect/run.sh`).

#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_core::arrow_array::cast::AsArray;
use sluice_core::arrow_array::types::Int64Type;
use sluice_core::bytes::Bytes;
use sluice_core::metrics::{ComponentKind, ComponentLabels};
use sluice_core::{
    BuildCx, ComponentMetrics, EdgeMetrics, Emitter, Frame, FrameEncoding, Msg, Output, Transform,
    TransformConfig, WhenFull, frame_stream_schema,
};
use sluice_plugin_vision::DetectConfig;
use sluice_plugin_vision::detect::decode_frame;
use tokio::sync::mpsc;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// CPU time this process used so far (user + system, from `/proc/self/stat`
/// in clock ticks of 10 ms); `None` where that file does not exist.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Pushes `n` frames through a `detect` transform built from `yaml` as fast
/// as it takes them, with a consumer draining its output; returns frames/s
/// and the rows received, checking they arrive in frame order.
fn transform_throughput(
    yaml: &str,
    frames: &[Frame],
    n: usize,
) -> Result<(f64, usize, Option<f64>), BoxError> {
    let cfg: DetectConfig = serde_saphyr::from_str(yaml)?;
    let labels = ComponentLabels::new("bench", "detect", ComponentKind::Transform, "detect");
    let metrics = ComponentMetrics::new(labels);
    let cx = BuildCx {
        pipeline: "bench".into(),
        id: "detect".into(),
        inputs: sluice_core::InputSchema::only(frame_stream_schema()),
        metrics: metrics.clone(),
    };
    let mut transform = cfg.build(&cx)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let (tx, mut rx) = mpsc::channel(8);
        let output = Output {
            tx,
            when_full: WhenFull::Block,
            edge: EdgeMetrics::new("bench", "detect", "sink"),
        };
        let mut out = Emitter::new(vec![output], metrics);
        let sink = tokio::spawn(async move {
            let (mut rows, mut last_seq) = (0usize, -1i64);
            while let Some(d) = rx.recv().await {
                let batch = d.msg.into_rows()?;
                let seq = batch
                    .column_by_name("seq")
                    .and_then(|c| c.as_primitive_opt::<Int64Type>())
                    .map_or(-1, |c| c.value(0));
                if seq <= last_seq {
                    return Err(format!("frame {seq} after frame {last_seq}").into());
                }
                (rows, last_seq) = (rows + batch.num_rows(), seq);
            }
            Ok::<usize, BoxError>(rows)
        });
        let t = Instant::now();
        let cpu_start = cpu_seconds();
        for i in 0..n {
            let f = &frames[i % frames.len()];
            let frame = Frame {
                seq: i as u64,
                event_time_ms: i as i64 * 200,
                ..f.clone()
            };
            transform
                .process(Msg::Frame(Arc::new(frame)), &mut out)
                .await?;
        }
        transform.finish(&mut out).await?;
        let wall = t.elapsed().as_secs_f64();
        // Cores busy on average: about `workers` when the box has them free.
        let busy = cpu_start.zip(cpu_seconds()).map(|(a, b)| (b - a) / wall);
        drop(out);
        let rows = sink.await??;
        Ok((n as f64 / wall, rows, busy))
    })
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn report(name: &str, mut lat: Vec<Duration>) {
    lat.sort();
    let mean = lat.iter().sum::<Duration>().as_secs_f64() * 1000.0 / lat.len() as f64;
    println!(
        "{name}: n={} mean_ms={mean:.2} p50_ms={:.2} p99_ms={:.2}",
        lat.len(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99)
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(100);
    let only_transform = args.iter().any(|a| a == "transform");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let model = root.join("../../models/detect/nanodet-g-416.onnx");
    let yaml = format!(
        "inputs: [cam]\nmodel: {}\nformat: nanodet\n",
        model.display()
    );
    let cfg: DetectConfig = serde_saphyr::from_str(&yaml)?;
    let detector = Arc::new(cfg.load_detector()?);
    let frames: Vec<Frame> = ["person.jpg", "kite.jpg"]
        .iter()
        .map(|name| -> Result<Frame, std::io::Error> {
            Ok(Frame {
                camera: "bench".into(),
                event_time_ms: 0,
                seq: 0,
                width: 0,
                height: 0,
                encoding: FrameEncoding::Jpeg,
                data: Bytes::from(std::fs::read(root.join("testdata").join(name))?),
            })
        })
        .collect::<Result<_, _>>()?;
    let run = |f: &Frame| -> Result<usize, Box<dyn std::error::Error + Send + Sync>> {
        let img = decode_frame(f)?;
        Ok(detector.detect(&img)?.0.len())
    };
    for f in &frames {
        run(f).map_err(|e| e.to_string())?;
    }

    for workers in [1usize, 2] {
        let cfg = format!("{yaml}workers: {workers}\n");
        let (fps, rows, busy) =
            transform_throughput(&cfg, &frames, n).map_err(|e| e.to_string())?;
        let busy = busy.map_or_else(String::new, |b| format!(" cores_busy={b:.2}"));
        println!(
            "transform_throughput: workers={workers} frames={n} rows={rows} frames_per_s={fps:.1}{busy}"
        );
    }
    if only_transform {
        return Ok(());
    }

    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        run(&frames[i % frames.len()]).map_err(|e| e.to_string())?;
        lat.push(t.elapsed());
    }
    report("tract_frame", lat);

    let pre = detector.preprocess().clone();
    let img = decode_frame(&frames[0])?;
    let mut input = vec![0.0; 3 * pre.width * pre.height];
    pre.fill(&img, &mut input);
    let mut lat = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        detector.infer(input.clone())?;
        lat.push(t.elapsed());
    }
    report("tract_model", lat);

    for workers in [1usize, 2] {
        let t = Instant::now();
        let per = n / workers;
        let failed: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..workers)
                .map(|w| {
                    let (frames, run) = (&frames, &run);
                    s.spawn(move || {
                        (0..per)
                            .filter(|i| run(&frames[(i + w) % frames.len()]).is_err())
                            .count()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or(per)).sum()
        });
        if failed > 0 {
            return Err(format!("{failed} frames failed").into());
        }
        let fps = (per * workers) as f64 / t.elapsed().as_secs_f64();
        println!("tract_throughput: workers={workers} frames_per_s={fps:.1}");
    }
    Ok(())
}
