//! The running source against scripted cameras: build machines have no
//! camera, so these drive the capture thread through the same `Open`/`Grab`
//! seam the V4L2 camera implements, with buffers, failures and panics on cue.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sluice_core::bytes::Bytes;
use sluice_core::{ComponentError, Frame, FrameEncoding, Msg, Retry};
use sluice_testkit::{MetricsCapture, SourceHarness, unique_id};
use tokio::time::timeout;

use crate::capture::{Grab, Grabbed, Open};
use crate::config::{CameraConfig, Resolution};
use crate::mode::{Mode, Pixel};
use crate::source::{Settings, run_with};

/// What a scripted camera does on each `grab`.
enum Step {
    Frame(Bytes),
    Fail(&'static str),
    Panic,
}

/// A camera that plays `steps`, then delivers `forever` every `pace` (or
/// fails as unplugged when there is none).
struct Scripted {
    mode: Mode,
    steps: VecDeque<Step>,
    forever: Option<Bytes>,
    pace: Duration,
}

impl Grab for Scripted {
    fn mode(&self) -> Mode {
        self.mode
    }

    fn grab(&mut self) -> Result<Grabbed, String> {
        std::thread::sleep(self.pace);
        let step = match self.steps.pop_front() {
            Some(s) => s,
            None => match &self.forever {
                Some(b) => Step::Frame(b.clone()),
                None => Step::Fail("No such device (os error 19)"),
            },
        };
        match step {
            Step::Frame(data) => Ok(Grabbed {
                data,
                captured: None,
            }),
            Step::Fail(why) => Err(why.to_owned()),
            Step::Panic => panic!("driver bug"),
        }
    }
}

/// Answers each open with the next scripted result; once they are used up,
/// the camera is unplugged.
#[derive(Clone)]
struct Opener(Arc<Mutex<VecDeque<Result<Scripted, String>>>>);

impl Open for Opener {
    type Camera = Scripted;

    fn open(&self) -> Result<Scripted, String> {
        self.0
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| Err("cannot open camera 0: no video devices found".into()))
    }
}

fn opener(opens: Vec<Result<Scripted, String>>) -> Opener {
    Opener(Arc::new(Mutex::new(opens.into())))
}

fn camera(pixel: Pixel, w: u32, h: u32, steps: Vec<Step>, forever: Option<Bytes>) -> Scripted {
    Scripted {
        mode: Mode {
            size: Resolution::new(w, h).unwrap(),
            pixel,
            fps: 30,
        },
        steps: steps.into(),
        forever,
        pace: Duration::from_millis(2),
    }
}

fn jpeg(tag: u8) -> Bytes {
    Bytes::from(vec![0xFF, 0xD8, 0xFF, 0xE0, tag, 0xFF, 0xD9])
}

/// The source under test, on the shared harness, in a pipeline of its own
/// (its metrics carry the name).
struct Running(SourceHarness);

fn start(yaml: &str, opener: Opener, capacity: usize) -> Running {
    let cfg: CameraConfig = serde_saphyr::from_str(yaml).unwrap();
    let capture = MetricsCapture::global().expect("the test recorder is the global one");
    let pipeline = unique_id("camera");
    Running(SourceHarness::start_with(
        &pipeline,
        "camera",
        capacity,
        Some(capture),
        |cx| run_with(Settings::new(&cfg), opener, cx),
    ))
}

impl Running {
    async fn next(&mut self) -> Arc<Frame> {
        let d = timeout(Duration::from_secs(10), self.0.rx.recv())
            .await
            .expect("no frame within 10 s")
            .expect("the source ended");
        match d.msg {
            Msg::Frame(f) => f,
            Msg::Rows(_) => panic!("a frame source sent rows"),
        }
    }

    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let mut all = vec![("pipeline", self.0.pipeline.as_str())];
        all.extend_from_slice(labels);
        MetricsCapture::global().unwrap().counter(name, &all)
    }

    async fn stop(self) -> Result<(), ComponentError> {
        self.0.stop(Duration::from_secs(10)).await.0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mjpeg_buffers_become_jpeg_frames_with_camera_id_time_and_sequence() {
    let cam = camera(Pixel::Mjpeg, 640, 480, vec![], Some(jpeg(1)));
    let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let mut run = start("camera: shelf\nfps: 1000\n", opener(vec![Ok(cam)]), 8);
    let (a, b) = (run.next().await, run.next().await);
    assert_eq!(
        (a.camera.as_str(), a.seq, a.width, a.height, a.encoding),
        ("shelf", 0, 640, 480, FrameEncoding::Jpeg)
    );
    assert_eq!(&a.data[..], &jpeg(1)[..]);
    assert_eq!(b.seq, 1);
    let ms = i64::try_from(before.as_millis()).unwrap();
    assert!(a.event_time_ms >= ms && a.event_time_ms < ms + 5_000);
    assert!(run.0.ready.get());
    run.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yuyv_buffers_become_rgb_frames() {
    // 2x1: black and white sharing neutral chroma.
    let yuyv = Bytes::from_static(&[16, 128, 235, 128]);
    let cam = camera(Pixel::Yuyv, 2, 1, vec![], Some(yuyv));
    let mut run = start("camera: c\nfps: 1000\n", opener(vec![Ok(cam)]), 8);
    let f = run.next().await;
    assert_eq!(f.encoding, FrameEncoding::Rgb8);
    assert_eq!(&f.data[..], &[0, 0, 0, 255, 255, 255]);
    run.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_that_disappears_is_counted_and_reopened_with_backoff() {
    // Two frames, then unplugged; the first reopen fails, the second works.
    let first = camera(
        Pixel::Mjpeg,
        320,
        240,
        vec![Step::Frame(jpeg(1)), Step::Frame(jpeg(2))],
        None,
    );
    let second = camera(Pixel::Mjpeg, 320, 240, vec![], Some(jpeg(3)));
    let opens = vec![
        Ok(first),
        Err("cannot open camera 0: no video devices found".to_owned()),
        Ok(second),
    ];
    let yaml = "camera: c\nfps: 1000\nmin_backoff: 10ms\nmax_backoff: 20ms\n";
    let mut run = start(yaml, opener(opens), 8);
    let mut seen = Vec::new();
    for _ in 0..3 {
        let f = run.next().await;
        seen.push((f.seq, f.data[4]));
    }
    // Sequence numbers run on across the reconnect.
    assert_eq!(seen, [(0, 1), (1, 2), (2, 3)]);
    let errors = "sluice_component_errors_total";
    assert_eq!(run.counter(errors, &[("error_code", "camera_lost")]), 1);
    assert_eq!(
        run.counter(errors, &[("error_code", "camera_unavailable")]),
        1
    );
    assert_eq!(
        run.counter(
            errors,
            &[("error_kind", "external"), ("stage", "receiving")]
        ),
        2
    );
    assert_eq!(run.counter("sluice_frames_reconnects_total", &[]), 2);
    run.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_that_never_comes_back_keeps_retrying_until_shutdown() {
    let yaml = "camera: c\nmin_backoff: 10ms\nmax_backoff: 20ms\n";
    let run = start(yaml, opener(vec![]), 8);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let failures = run.counter(
        "sluice_component_errors_total",
        &[("error_code", "camera_unavailable")],
    );
    assert!(failures >= 5, "only {failures} attempts in 300 ms");
    assert!(!run.0.ready.get());
    run.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_buffers_are_counted_and_skipped() {
    let zeros = Bytes::from(vec![0u8; 64]);
    let cam = camera(
        Pixel::Mjpeg,
        8,
        8,
        vec![Step::Frame(zeros), Step::Frame(jpeg(9))],
        Some(jpeg(9)),
    );
    let mut run = start("camera: c\nfps: 1000\n", opener(vec![Ok(cam)]), 8);
    let f = run.next().await;
    assert_eq!((f.seq, f.data[4]), (0, 9));
    let dropped = run.counter(
        "sluice_component_discarded_rows_total",
        &[("reason", "corrupt_frame")],
    );
    assert_eq!(dropped, 1);
    run.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_faster_than_fps_are_skipped_and_counted() {
    // The camera delivers every 2 ms; 10 fps keeps about one in fifty.
    let cam = camera(Pixel::Mjpeg, 8, 8, vec![], Some(jpeg(1)));
    let mut run = start("camera: c\nfps: 10\n", opener(vec![Ok(cam)]), 8);
    let a = run.next().await;
    let b = run.next().await;
    assert_eq!((a.seq, b.seq), (0, 1));
    assert!(b.event_time_ms - a.event_time_ms >= 80);
    let skipped = run.counter(
        "sluice_component_discarded_rows_total",
        &[("reason", "fps_limit"), ("intentional", "true")],
    );
    assert!(skipped >= 10, "{skipped}");
    run.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_gets_the_newest_frames_not_a_backlog() {
    let cam = camera(Pixel::Mjpeg, 8, 8, vec![], Some(jpeg(1)));
    let mut run = start("camera: c\nfps: 1000\nqueue: 2\n", opener(vec![Ok(cam)]), 1);
    let first = run.next().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut seqs = vec![first.seq];
    for _ in 0..3 {
        seqs.push(run.next().await.seq);
    }
    // At most the edge (1) and the queue (2) were waiting; the rest were dropped.
    assert!(
        seqs[3] > seqs[0] + 10,
        "sequence numbers {seqs:?} show a backlog"
    );
    let dropped = run.counter(
        "sluice_component_discarded_rows_total",
        &[("reason", "drop_oldest")],
    );
    assert!(dropped >= 10, "{dropped}");
    run.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_driver_ends_the_run_with_a_retryable_error() {
    let cam = camera(
        Pixel::Mjpeg,
        8,
        8,
        vec![Step::Frame(jpeg(1)), Step::Panic],
        None,
    );
    let mut run = start("camera: c\nfps: 1000\n", opener(vec![Ok(cam)]), 8);
    assert_eq!(run.next().await.seq, 0);
    let result = timeout(Duration::from_secs(10), &mut run.0.task)
        .await
        .expect("the source did not end after the capture thread died")
        .unwrap();
    let err = result.unwrap_err();
    assert_eq!((err.code, err.retry), ("camera_thread", Retry::Backoff));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_delivers_queued_frames_and_returns_ok() {
    let cam = camera(Pixel::Mjpeg, 8, 8, vec![], Some(jpeg(1)));
    let mut run = start("camera: c\nfps: 1000\n", opener(vec![Ok(cam)]), 64);
    run.next().await;
    run.0.shutdown.cancel();
    // The source ends by itself; its sender closes once it has returned.
    let mut rest = 0;
    while timeout(Duration::from_secs(10), run.0.rx.recv())
        .await
        .expect("the source did not stop")
        .is_some()
    {
        rest += 1;
    }
    assert!(rest < 64);
    run.stop().await.unwrap();
}
