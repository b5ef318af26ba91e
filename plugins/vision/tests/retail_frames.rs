//! The shipped detector on the retail demo's sample frames
//! (`examples/retail/`, described by its `scenario.json`): the people and
//! items are found where the scenario puts them, with the expected class.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use sluice_plugin_vision::DetectConfig;
use sluice_plugin_vision::detect::{BBox, Detection, Detector, Rgb, labels::COCO};
use sluice_plugin_vision::zones::{Point, inside};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn detector(extra: &str) -> Detector {
    let model = root().join("models/detect/nanodet-g-416.onnx");
    let yaml = format!(
        "inputs: [cam]\nmodel: {}\nformat: nanodet\n{extra}",
        model.display()
    );
    let cfg: DetectConfig = serde_saphyr::from_str(&yaml).unwrap();
    cfg.load_detector().unwrap()
}

/// Frame `n` of `camera`: files are named by event time, so name order is
/// frame order.
fn detect(d: &Detector, camera: &str, n: usize) -> Vec<Detection> {
    let dir = root().join("examples/retail").join(camera);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let path = &files[n];
    let img = image::open(path).unwrap().into_rgb8();
    assert_eq!(
        (img.width(), img.height()),
        (640, 480),
        "{}",
        path.display()
    );
    let rgb = Rgb {
        width: img.width(),
        height: img.height(),
        data: img.into_raw(),
    };
    d.detect(&rgb).unwrap().0
}

fn class(d: &Detection) -> &'static str {
    COCO[d.class]
}

fn bbox(b: [f32; 4]) -> BBox {
    BBox {
        x1: b[0],
        y1: b[1],
        x2: b[2],
        y2: b[3],
    }
}

/// Corners of an axis-aligned area.
fn area(x1: f64, y1: f64, x2: f64, y2: f64) -> Vec<Point> {
    vec![[x1, y1], [x2, y1], [x2, y2], [x1, y2]]
}

#[test]
fn the_stockroom_person_is_found_where_they_stand_and_not_before() {
    let d = detector("classes: [person]\n");
    for n in 0..5 {
        assert!(detect(&d, "stockroom", n).is_empty(), "frame {n}");
    }
    // scenario.json: person_box_last_frame; standing from frame 19.
    let truth = bbox([375.0, 143.0, 469.0, 448.0]);
    for n in [19, 24, 29] {
        let found = detect(&d, "stockroom", n);
        let best = found.iter().map(|p| p.bbox.iou(&truth)).fold(0.0, f32::max);
        assert!(best >= 0.5, "frame {n}: IoU {best}; found {found:?}");
    }
}

#[test]
fn the_exit_person_stands_inside_the_exit_area_in_every_frame() {
    let d = detector("classes: [person]\nscore_threshold: 0.4\n");
    let exit_area = area(160.0, 200.0, 480.0, 480.0);
    for n in 0..20 {
        let found = detect(&d, "exit", n);
        let feet = found.iter().map(|p| {
            let b = p.bbox;
            [f64::from(b.x1 + b.x2) / 2.0, f64::from(b.y2)]
        });
        assert_eq!(
            feet.filter(|f| inside(&exit_area, *f)).count(),
            1,
            "frame {n}: {found:?}"
        );
    }
}

#[test]
fn checkout_items_appear_in_the_bagging_area_one_after_another() {
    let d = detector("classes: [cup, vase]\n");
    let bagging = area(380.0, 150.0, 640.0, 480.0);
    // (frame, cups, vases) in the bagging area; items are put down at
    // frames 5 (cup), 18 and 31 (vases).
    let expected = [
        (0, 0, 0),
        (4, 0, 0),
        (5, 1, 0),
        (17, 1, 0),
        (18, 1, 1),
        (30, 1, 1),
        (31, 1, 2),
        (44, 1, 2),
    ];
    for (n, cups, vases) in expected {
        let found = detect(&d, "checkout", n);
        let count = |c: &str| {
            found
                .iter()
                .filter(|x| class(x) == c)
                .filter(|x| {
                    let b = x.bbox;
                    let centre = [f64::from(b.x1 + b.x2) / 2.0, f64::from(b.y1 + b.y2) / 2.0];
                    inside(&bagging, centre)
                })
                .count()
        };
        assert_eq!(
            (count("cup"), count("vase")),
            (cups, vases),
            "frame {n}: {found:?}"
        );
    }
}
