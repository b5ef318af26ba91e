//! Runs the shipped detector over image files and prints what it finds: one
//! line per detection (`file class score x1 y1 x2 y2`), then per class the
//! number of frames it was found in and its score range.
//!
//! `cargo run -p sluice-plugin-vision --example detect_frames -- DIR_OR_FILE... [--classes a,b]`

#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sluice_plugin_vision::DetectConfig;
use sluice_plugin_vision::detect::Rgb;

fn images(arg: &Path) -> Result<Vec<PathBuf>, std::io::Error> {
    if !arg.is_dir() {
        return Ok(vec![arg.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(arg)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e, "jpg" | "jpeg" | "png"))
        })
        .collect();
    files.sort();
    Ok(files)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut classes = String::new();
    if let Some(i) = args.iter().position(|a| a == "--classes") {
        let list = args.get(i + 1).cloned().unwrap_or_default();
        classes = format!("classes: [{list}]\n");
        args.drain(i..(i + 2).min(args.len()));
    }
    let model =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/detect/nanodet-g-416.onnx");
    let yaml = format!(
        "inputs: [cam]\nmodel: {}\nformat: nanodet\n{classes}",
        model.display()
    );
    let cfg: DetectConfig = serde_saphyr::from_str(&yaml)?;
    let labels = cfg.label_names();
    let detector = cfg.load_detector()?;
    // class -> (frames, lowest score, highest score)
    let mut summary: BTreeMap<String, (usize, f32, f32)> = BTreeMap::new();
    for arg in &args {
        for path in images(Path::new(arg))? {
            let img = image::open(&path)?.into_rgb8();
            let rgb = Rgb {
                width: img.width(),
                height: img.height(),
                data: img.into_raw(),
            };
            let (dets, _) = detector.detect(&rgb)?;
            let mut seen: Vec<&str> = Vec::new();
            for d in &dets {
                let class = labels.get(d.class).map_or("unknown", String::as_str);
                let b = d.bbox;
                println!(
                    "{} {class} {:.2} {:.0} {:.0} {:.0} {:.0}",
                    path.display(),
                    d.score,
                    b.x1,
                    b.y1,
                    b.x2,
                    b.y2
                );
                let e = summary
                    .entry(class.to_owned())
                    .or_insert((0, f32::MAX, f32::MIN));
                if !seen.contains(&class) {
                    e.0 += 1;
                    seen.push(class);
                }
                (e.1, e.2) = (e.1.min(d.score), e.2.max(d.score));
            }
        }
    }
    for (class, (frames, lo, hi)) in summary {
        println!("summary: class={class} frames={frames} score={lo:.2}-{hi:.2}");
    }
    Ok(())
}
