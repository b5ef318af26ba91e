//! Detector speed on the committed photos: per-frame latency (decode, fit,
//! inference, decode, NMS) on one thread, model-only latency on a prepared
//! input, and sustained frames/s with one and two worker threads.
//!
//! `cargo bench -p sluice-plugin-vision --bench detect -- [FRAMES]`; prints
//! one `key=value` line per measurement (see `bench/detect/run.sh`).

#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_core::bytes::Bytes;
use sluice_core::{Frame, FrameEncoding};
use sluice_plugin_vision::DetectConfig;
use sluice_plugin_vision::detect::decode_frame;

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
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100);
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
