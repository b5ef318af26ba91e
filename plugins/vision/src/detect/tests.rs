//! The shipped detector on real photos (see `testdata/README.md` for their
//! origin and the hand-annotated boxes).

use std::path::PathBuf;
use std::sync::Arc;

use sluice_core::arrow_array::RecordBatch;
use sluice_core::arrow_array::cast::AsArray;
use sluice_core::arrow_array::types::{Float64Type, Int64Type};
use sluice_core::metrics::{ComponentKind, ComponentLabels};
use sluice_core::validate::Severity;
use sluice_core::{
    BuildCx, ComponentMetrics, Delivery, EdgeMetrics, Emitter, Frame, FrameEncoding, Msg, Output,
    Transform, TransformConfig, Validator, WhenFull, bytes::Bytes, frame_stream_schema,
};
use tokio::sync::mpsc;

use super::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

fn config(extra: &str) -> DetectConfig {
    let model = root().join("models/detect/nanodet-g-416.onnx");
    let yaml = format!(
        "inputs: [cam]\nmodel: {}\nformat: nanodet\n{extra}",
        model.display()
    );
    serde_saphyr::from_str(&yaml).unwrap()
}

fn frame(name: &str, seq: u64) -> Msg {
    jpeg_frame(std::fs::read(testdata(name)).unwrap(), seq)
}

fn jpeg_frame(data: Vec<u8>, seq: u64) -> Msg {
    Msg::Frame(Arc::new(Frame {
        camera: "entrance".into(),
        event_time_ms: 1_700_000_000_000 + seq as i64 * 100,
        seq,
        width: 0,
        height: 0,
        encoding: FrameEncoding::Jpeg,
        data: Bytes::from(data),
    }))
}

struct Harness {
    transform: DetectTransform,
    emitter: Emitter,
    rx: mpsc::Receiver<Delivery>,
}

fn harness(cfg: &DetectConfig) -> Harness {
    let labels = ComponentLabels::new("test", "detect", ComponentKind::Transform, "detect");
    let metrics = ComponentMetrics::new(labels);
    let cx = BuildCx {
        pipeline: "test".into(),
        id: "detect".into(),
        inputs: sluice_core::InputSchema::only(frame_stream_schema()),
        metrics: metrics.clone(),
    };
    let transform = cfg.build(&cx).unwrap();
    let (tx, rx) = mpsc::channel(16);
    let output = Output {
        tx,
        when_full: WhenFull::Block,
        edge: EdgeMetrics::new("test", "detect", "out"),
    };
    Harness {
        transform,
        emitter: Emitter::new(vec![output], metrics),
        rx,
    }
}

impl Harness {
    async fn run(&mut self, msg: Msg) -> Option<RecordBatch> {
        self.transform
            .process(msg, &mut self.emitter)
            .await
            .unwrap();
        self.rx.try_recv().ok().map(|d| d.msg.into_rows().unwrap())
    }
}

/// `(class, box)` of every row.
fn boxes(batch: &RecordBatch) -> Vec<(String, BBox)> {
    let col = |n: &str| {
        batch
            .column_by_name(n)
            .unwrap()
            .as_primitive::<Float64Type>()
            .clone()
    };
    let (x1, y1, x2, y2) = (col("x1"), col("y1"), col("x2"), col("y2"));
    let class = batch.column_by_name("class").unwrap().as_string::<i32>();
    (0..batch.num_rows())
        .map(|i| {
            let b = BBox {
                x1: x1.value(i) as f32,
                y1: y1.value(i) as f32,
                x2: x2.value(i) as f32,
                y2: y2.value(i) as f32,
            };
            (class.value(i).to_owned(), b)
        })
        .collect()
}

fn best_iou(found: &[(String, BBox)], truth: BBox) -> f32 {
    found
        .iter()
        .filter(|(c, _)| c == "person")
        .map(|(_, b)| b.iou(&truth))
        .fold(0.0, f32::max)
}

#[tokio::test]
async fn finds_the_person_in_the_field_at_the_annotated_place() {
    let mut h = harness(&config(""));
    let batch = h.run(frame("person.jpg", 0)).await.unwrap();
    let found = boxes(&batch);
    let truth = BBox {
        x1: 190.0,
        y1: 98.0,
        x2: 275.0,
        y2: 375.0,
    };
    let iou = best_iou(&found, truth);
    assert!(iou >= 0.5, "IoU {iou} with {truth:?}; found {found:?}");
    // The dog and the horse beside her are found as what they are.
    let classes: Vec<&str> = found.iter().map(|(c, _)| c.as_str()).collect();
    assert!(
        classes.contains(&"horse") && classes.contains(&"dog"),
        "{classes:?}"
    );
    let size = |n: &str| {
        batch
            .column_by_name(n)
            .unwrap()
            .as_primitive::<Int64Type>()
            .value(0)
    };
    assert_eq!((size("frame_width"), size("frame_height")), (640, 424));
}

#[tokio::test]
async fn finds_both_people_on_the_beach_at_the_annotated_places() {
    let mut h = harness(&config("classes: [person]\n"));
    let found = boxes(&h.run(frame("kite.jpg", 1)).await.unwrap());
    assert!(found.iter().all(|(c, _)| c == "person"), "{found:?}");
    for truth in [
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
    ] {
        let iou = best_iou(&found, truth);
        assert!(iou >= 0.5, "IoU {iou} with {truth:?}; found {found:?}");
    }
}

#[tokio::test]
async fn rows_carry_camera_time_and_sequence_of_the_frame() {
    let mut h = harness(&config("classes: [person]\n"));
    let batch = h.run(frame("person.jpg", 7)).await.unwrap();
    let camera = batch
        .column_by_name("camera")
        .unwrap()
        .as_string::<i32>()
        .value(0)
        .to_owned();
    let seq = batch
        .column_by_name("seq")
        .unwrap()
        .as_primitive::<Int64Type>()
        .value(0);
    assert_eq!((camera.as_str(), seq), ("entrance", 7));
    assert_eq!(batch.schema(), output_schema());
}

#[tokio::test]
async fn a_corrupt_frame_is_dropped_and_the_next_one_is_detected() {
    let mut h = harness(&config(""));
    let mut bytes = std::fs::read(testdata("person.jpg")).unwrap();
    bytes.truncate(600);
    let broken = Msg::Frame(Arc::new(Frame {
        camera: "entrance".into(),
        event_time_ms: 0,
        seq: 0,
        width: 0,
        height: 0,
        encoding: FrameEncoding::Jpeg,
        data: Bytes::from(bytes),
    }));
    assert!(h.run(broken).await.is_none());
    assert!(h.run(frame("person.jpg", 1)).await.is_some());
}

#[test]
fn check_refuses_a_row_input() {
    let rows = Arc::new(sluice_core::arrow_schema::Schema::empty());
    let mut v = Validator::new();
    assert!(
        config("")
            .check(&sluice_core::InputSchema::only(rows.clone()), &mut v)
            .is_none()
    );
    let issues = v.into_issues();
    assert!(
        issues.iter().any(|i| i.severity == Severity::Error
            && i.path == ["inputs"]
            && i.message.contains("reads camera frames")),
        "{issues:?}"
    );
}

#[test]
fn check_reports_a_format_that_does_not_fit_the_model() {
    let mut v = Validator::new();
    assert!(
        config("")
            .check(
                &sluice_core::InputSchema::only(frame_stream_schema()),
                &mut v
            )
            .is_some()
    );
    let cfg = config("").clone();
    let yolo = DetectConfig {
        format: Format::Yolov8,
        ..cfg
    };
    let mut v = Validator::new();
    assert!(
        yolo.check(
            &sluice_core::InputSchema::only(frame_stream_schema()),
            &mut v
        )
        .is_none()
    );
    let issues = v.into_issues();
    assert!(
        issues
            .iter()
            .any(|i| i.path == ["format"] && i.message.contains("yolov8")),
        "{issues:?}"
    );
}

#[test]
fn check_names_an_unknown_class() {
    let mut v = Validator::new();
    config("classes: [Person]\n").check(
        &sluice_core::InputSchema::only(frame_stream_schema()),
        &mut v,
    );
    let issues = v.into_issues();
    let issue = issues.iter().find(|i| i.path == ["classes"]).unwrap();
    assert_eq!(issue.help.as_deref(), Some("did you mean `person`?"));
}

impl Harness {
    /// Pushes every frame, closes the input and returns every batch emitted.
    async fn run_all(&mut self, msgs: Vec<Msg>) -> Vec<RecordBatch> {
        for msg in msgs {
            self.transform
                .process(msg, &mut self.emitter)
                .await
                .unwrap();
        }
        self.transform.finish(&mut self.emitter).await.unwrap();
        let mut batches = Vec::new();
        while let Ok(d) = self.rx.try_recv() {
            batches.push(d.msg.into_rows().unwrap());
        }
        batches
    }
}

fn corrupt(seq: u64) -> Msg {
    let mut bytes = std::fs::read(testdata("person.jpg")).unwrap();
    bytes.truncate(600);
    jpeg_frame(bytes, seq)
}

/// A large photo, a corrupt frame and a small photo in turn, so frames
/// started later often finish first.
fn mixed_frames() -> Vec<Msg> {
    (0..9)
        .map(|seq| match seq % 3 {
            0 => frame("person.jpg", seq),
            1 => corrupt(seq),
            _ => frame("kite.jpg", seq),
        })
        .collect()
}

fn seqs(batches: &[RecordBatch]) -> Vec<i64> {
    batches
        .iter()
        .map(|b| {
            b.column_by_name("seq")
                .unwrap()
                .as_primitive::<Int64Type>()
                .value(0)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_workers_emit_the_same_rows_in_frame_order() {
    let one = harness(&config("")).run_all(mixed_frames()).await;
    let mut h = harness(&config("workers: 3\n"));
    assert!(h.transform.tick_interval().is_some());
    let three = h.run_all(mixed_frames()).await;
    assert_eq!(seqs(&one), [0, 2, 3, 5, 6, 8]);
    assert_eq!(three, one);
}

#[tokio::test]
async fn one_worker_emits_a_frames_rows_before_taking_the_next() {
    let mut h = harness(&config(""));
    assert!(h.transform.tick_interval().is_none());
    for seq in 0..3 {
        let batch = h.run(frame("person.jpg", seq)).await.unwrap();
        assert_eq!(seqs(&[batch]), [seq as i64]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_of_finished_frames_leave_on_the_tick_without_new_input() {
    let mut h = harness(&config("workers: 2\n"));
    h.transform
        .process(frame("person.jpg", 0), &mut h.emitter)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let batch = loop {
        h.transform
            .on_tick(tokio::time::Instant::now(), &mut h.emitter)
            .await
            .unwrap();
        if let Ok(d) = h.rx.try_recv() {
            break d.msg.into_rows().unwrap();
        }
        assert!(std::time::Instant::now() < deadline, "no rows after 30 s");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert_eq!(seqs(&[batch]), [0]);
}

fn thumbnails_of(batch: &RecordBatch) -> Vec<Option<String>> {
    let col = batch
        .column_by_name(THUMBNAIL_COLUMN)
        .unwrap()
        .as_string::<i32>();
    col.iter().map(|t| t.map(str::to_owned)).collect()
}

#[tokio::test]
async fn rows_carry_the_thumbnail_of_their_frame_at_most_once_per_interval() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(&format!(
        "thumbnails: {{ dir: {}, every: 1s }}\n",
        tmp.path().display()
    ));
    let mut h = harness(&cfg);
    let first = h.run(frame("person.jpg", 0)).await.unwrap();
    let second = h.run(frame("person.jpg", 1)).await.unwrap();
    assert_eq!(first.schema(), detection_schema(true));
    assert_eq!(first.schema(), cfg.output_schema());
    let path = tmp.path().join("entrance/1700000000000.jpg");
    let expected = Some(path.to_string_lossy().into_owned());
    assert!(thumbnails_of(&first).iter().all(|t| *t == expected));
    assert!(path.is_file());
    assert!(thumbnails_of(&second).iter().all(Option::is_none));
}

#[tokio::test]
async fn an_unwritable_thumbnail_dir_gives_null_thumbnails_and_detection_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let mut h = harness(&config(&format!(
        "thumbnails: {{ dir: {} }}\n",
        file.display()
    )));
    let batch = h.run(frame("person.jpg", 0)).await.unwrap();
    assert!(batch.num_rows() > 0);
    assert!(thumbnails_of(&batch).iter().all(Option::is_none));
}

#[test]
fn without_thumbnails_the_output_schema_is_unchanged() {
    assert_eq!(config("").output_schema(), output_schema());
    assert!(output_schema().field_with_name(THUMBNAIL_COLUMN).is_err());
}
