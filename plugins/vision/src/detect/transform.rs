//! The running `detect` transform: decodes each frame and runs the detector
//! on the blocking pool, up to `workers` frames at once, and emits one row
//! per detection in frame arrival order.

use std::sync::Arc;
use std::time::{Duration, Instant};

use metrics::Counter;
use sluice_core::arrow_array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use sluice_core::arrow_schema::SchemaRef;
use sluice_core::{BuildCx, ComponentError, ComponentMetrics, Emitter, Frame, Msg, Transform};
use tracing::warn;

use super::config::detection_schema;
use super::model::Detector;
use super::nms::Detection;
use super::ordered::InOrder;
use super::preprocess::{Geometry, decode_frame};
use super::thumbnails::{Prepared, Thumbnails};
use crate::names;

/// At most one warning per this interval for bad frames.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// How often finished frames are looked for between input frames when
/// several run at once; bounds the delay a finished frame's rows can have
/// when no new frame arrives.
const POLL_FINISHED: Duration = Duration::from_millis(10);

/// Runs an object detector on frames; see [`super::DetectConfig`].
#[derive(Debug)]
pub struct DetectTransform {
    detector: Arc<Detector>,
    labels: Arc<[String]>,
    schema: SchemaRef,
    metrics: ComponentMetrics,
    frames: Counter,
    objects: Counter,
    id: Arc<str>,
    last_warning: Option<Instant>,
    /// Most frames in the model at once.
    workers: usize,
    /// Frames in the model, in arrival order.
    running: InOrder<Arc<Frame>, Outcome>,
    thumbnails: Option<Arc<Thumbnails>>,
}

/// What happened to one frame.
#[derive(Debug)]
enum Outcome {
    Detected {
        dets: Vec<Detection>,
        geometry: Geometry,
        /// Encoded when the camera may be due a thumbnail; kept or not
        /// in frame order.
        thumbnail: Option<Prepared>,
    },
    Corrupt(String),
    Failed(String),
}

/// Decodes and detects one frame, and encodes a thumbnail when it shows
/// something and its camera may be due one. Runs on the blocking pool.
fn run_frame(detector: &Detector, thumbnails: Option<&Thumbnails>, frame: &Frame) -> Outcome {
    let img = match decode_frame(frame) {
        Ok(img) => img,
        Err(e) => return Outcome::Corrupt(e.to_string()),
    };
    match detector.detect(&img) {
        Ok((dets, geometry)) => {
            let thumbnail = match thumbnails {
                Some(t) if !dets.is_empty() => {
                    t.prepare(&frame.camera, frame.event_time_ms, dets.len(), &img)
                }
                _ => None,
            };
            Outcome::Detected {
                dets,
                geometry,
                thumbnail,
            }
        }
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

impl DetectTransform {
    pub(crate) fn new(
        detector: Detector,
        labels: Vec<String>,
        workers: usize,
        thumbnails: Option<Thumbnails>,
        cx: &BuildCx,
    ) -> Self {
        Self {
            detector: Arc::new(detector),
            labels: labels.into(),
            schema: detection_schema(thumbnails.is_some()),
            frames: cx.metrics.counter(names::DETECT_FRAMES_TOTAL),
            objects: cx.metrics.counter(names::DETECT_OBJECTS_TOTAL),
            metrics: cx.metrics.clone(),
            id: Arc::clone(&cx.id),
            last_warning: None,
            workers: workers.max(1),
            running: InOrder::new(),
            thumbnails: thumbnails.map(Arc::new),
        }
    }

    fn warn_limited(&mut self, reason: &'static str, camera: &str, message: &str) {
        let now = Instant::now();
        if self
            .last_warning
            .is_none_or(|t| now.duration_since(t) >= LOG_EVERY)
        {
            self.last_warning = Some(now);
            warn!(component = %self.id, camera, reason, "dropping frame: {message}");
        }
    }

    fn rows(
        &self,
        frame: &Frame,
        dets: &[Detection],
        g: Geometry,
        thumbnail: Option<&str>,
    ) -> Result<RecordBatch, ComponentError> {
        let n = dets.len();
        let label = |c: usize| self.labels.get(c).map_or("unknown", String::as_str);
        let f64s = |f: &dyn Fn(&Detection) -> f32| -> ArrayRef {
            Arc::new(Float64Array::from_iter_values(
                dets.iter().map(|d| f64::from(f(d))),
            ))
        };
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                frame.camera.as_str(),
                n,
            ))),
            Arc::new(TimestampMillisecondArray::from_iter_values(
                std::iter::repeat_n(frame.event_time_ms, n),
            )),
            Arc::new(Int64Array::from_iter_values(std::iter::repeat_n(
                frame.seq as i64,
                n,
            ))),
            Arc::new(StringArray::from_iter_values(
                dets.iter().map(|d| label(d.class)),
            )),
            Arc::new(Int64Array::from_iter_values(
                dets.iter().map(|d| d.class as i64),
            )),
            f64s(&|d| d.score),
            f64s(&|d| d.bbox.x1),
            f64s(&|d| d.bbox.y1),
            f64s(&|d| d.bbox.x2),
            f64s(&|d| d.bbox.y2),
            Arc::new(Int64Array::from_iter_values(std::iter::repeat_n(
                i64::from(g.frame_width),
                n,
            ))),
            Arc::new(Int64Array::from_iter_values(std::iter::repeat_n(
                i64::from(g.frame_height),
                n,
            ))),
        ];
        if self.thumbnails.is_some() {
            columns.push(Arc::new(StringArray::from(vec![thumbnail; n])));
        }
        RecordBatch::try_new(Arc::clone(&self.schema), columns)
            .map_err(|e| ComponentError::internal("detect_batch", e.to_string()))
    }
}

/// Keeps a prepared thumbnail of `frame` if its camera is still due one,
/// writing it on the blocking pool; frames come here in arrival order.
async fn keep_thumbnail(
    store: Arc<Thumbnails>,
    frame: &Arc<Frame>,
    objects: usize,
    prepared: Prepared,
) -> Option<String> {
    let frame = Arc::clone(frame);
    tokio::task::spawn_blocking(move || {
        store.keep(&frame.camera, frame.event_time_ms, objects, prepared)
    })
    .await
    .unwrap_or_else(|e| {
        warn!(error = %e, "thumbnail write stopped unexpectedly; the frame goes on without one");
        None
    })
}

impl DetectTransform {
    /// Starts detecting `frame` behind the frames already running.
    fn start(&mut self, frame: Arc<Frame>) {
        let detector = Arc::clone(&self.detector);
        let thumbnails = self.thumbnails.clone();
        let input = Arc::clone(&frame);
        self.running.spawn(frame, move || {
            run_frame(&detector, thumbnails.as_deref(), &input)
        });
    }

    /// Waits for the oldest running frame and emits its rows.
    async fn emit_next(&mut self, out: &mut Emitter) -> Result<(), ComponentError> {
        let Some(done) = self.running.next().await else {
            return Ok(());
        };
        let (frame, outcome) = done?;
        match outcome {
            Outcome::Detected {
                dets,
                geometry,
                thumbnail,
            } => {
                self.frames.increment(1);
                self.objects.increment(dets.len() as u64);
                let thumbnail = match (thumbnail, &self.thumbnails) {
                    (Some(prepared), Some(store)) => {
                        keep_thumbnail(Arc::clone(store), &frame, dets.len(), prepared).await
                    }
                    _ => None,
                };
                let batch = self.rows(&frame, &dets, geometry, thumbnail.as_deref())?;
                out.emit(batch).await
            }
            Outcome::Corrupt(message) => {
                self.metrics.discarded("corrupt_frame", false, 1);
                self.warn_limited("corrupt_frame", &frame.camera, &message);
                Ok(())
            }
            Outcome::Failed(message) => {
                self.metrics.discarded("inference_failed", false, 1);
                self.warn_limited("inference_failed", &frame.camera, &message);
                Ok(())
            }
        }
    }

    /// Emits the rows of the oldest frames that have finished, in order.
    async fn emit_finished(&mut self, out: &mut Emitter) -> Result<(), ComponentError> {
        while self.running.head_ready() {
            self.emit_next(out).await?;
        }
        Ok(())
    }
}

impl Transform for DetectTransform {
    async fn process(&mut self, msg: Msg, out: &mut Emitter) -> Result<(), ComponentError> {
        let Msg::Frame(frame) = msg else {
            return Err(ComponentError::internal(
                "unexpected_rows",
                "`detect` received rows on an input that takes camera frames",
            ));
        };
        self.start(frame);
        // Return only with a slot free for the next frame: while `workers`
        // frames run, the next ones wait in the source's drop-oldest queue,
        // so a slow detector still skips stale frames instead of building a
        // backlog. With one worker this is frame at a time: a frame's rows
        // leave before the next frame is taken.
        while self.running.len() >= self.workers {
            self.emit_next(out).await?;
        }
        // Frame sources attach no acknowledgement to frames, so rows emitted
        // while a later frame is being taken in carry nothing of that frame.
        self.emit_finished(out).await
    }

    fn tick_interval(&self) -> Option<Duration> {
        (self.workers > 1).then_some(POLL_FINISHED)
    }

    async fn on_tick(
        &mut self,
        _now: tokio::time::Instant,
        out: &mut Emitter,
    ) -> Result<(), ComponentError> {
        self.emit_finished(out).await
    }

    async fn finish(&mut self, out: &mut Emitter) -> Result<(), ComponentError> {
        while !self.running.is_empty() {
            self.emit_next(out).await?;
        }
        Ok(())
    }
}
