//! The tracker on real detections: a camera panning over a photo of a beach
//! keeps the ids of the two people in it.

use std::path::PathBuf;

use super::*;
use crate::detect::{BBox, DetectConfig, Rgb};

fn detector() -> crate::Detector {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let model = root.join("../../models/detect/nanodet-g-416.onnx");
    let yaml = format!(
        "inputs: [cam]\nmodel: {}\nformat: nanodet\nclasses: [person]\n",
        model.display()
    );
    let cfg: DetectConfig = serde_saphyr::from_str(&yaml).unwrap();
    cfg.load_detector().unwrap()
}

/// A `w x h` window of `img` at (`x`, `y`).
fn crop(img: &image::RgbImage, x: u32, y: u32, w: u32, h: u32) -> Rgb {
    let view = image::imageops::crop_imm(img, x, y, w, h).to_image();
    Rgb {
        width: w,
        height: h,
        data: view.into_raw(),
    }
}

#[test]
fn ids_stay_with_the_two_people_while_the_camera_pans() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/kite.jpg");
    let img = image::open(path).unwrap().into_rgb8();
    let detector = detector();
    let params = TrackerParams {
        iou_threshold: 0.3,
        max_age_ms: 1000,
        smoothing: 0.5,
    };
    let mut trackers = Trackers::new(params);
    // Annotated people (testdata/README.md), in photo coordinates.
    let people = [
        BBox {
            x1: 57.0,
            y1: 306.0,
            x2: 83.0,
            y2: 381.0,
        },
        BBox {
            x1: 108.0,
            y1: 348.0,
            x2: 136.0,
            y2: 428.0,
        },
    ];
    let mut ids: [Vec<i64>; 2] = [Vec::new(), Vec::new()];
    for f in 0..8u32 {
        let (ox, oy) = (4 * f, 2 * f);
        let (dets, _) = detector.detect(&crop(&img, ox, oy, 560, 436)).unwrap();
        let obs: Vec<Observation> = dets
            .iter()
            .map(|d| Observation {
                class: d.class as i64,
                bbox: d.bbox,
            })
            .collect();
        let assigned = trackers.update("beach", i64::from(f) * 200, &obs);
        for (p, truth) in people.iter().enumerate() {
            let shifted = BBox {
                x1: truth.x1 - ox as f32,
                y1: truth.y1 - oy as f32,
                x2: truth.x2 - ox as f32,
                y2: truth.y2 - oy as f32,
            };
            let best = obs
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.bbox.iou(&shifted).total_cmp(&b.1.bbox.iou(&shifted)));
            let (i, o) = best.unwrap();
            assert!(
                o.bbox.iou(&shifted) >= 0.5,
                "frame {f}: person {p} not found in {dets:?}"
            );
            ids[p].push(assigned[i]);
        }
    }
    assert!(ids[0].iter().all(|id| *id == ids[0][0]), "{ids:?}");
    assert!(ids[1].iter().all(|id| *id == ids[1][0]), "{ids:?}");
    assert_ne!(ids[0][0], ids[1][0]);
}
