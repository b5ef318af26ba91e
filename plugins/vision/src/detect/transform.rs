//! The running `detect` transform: decodes each frame, runs the detector on
//! the blocking pool and emits one row per detection.

use std::sync::Arc;
use std::time::{Duration, Instant};

use metrics::Counter;
use sluice_core::arrow_array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use sluice_core::arrow_schema::SchemaRef;
use sluice_core::{BuildCx, ComponentError, ComponentMetrics, Emitter, Frame, Msg, Transform};
use tracing::warn;

use super::config::output_schema;
use super::model::Detector;
use super::nms::Detection;
use super::preprocess::{Geometry, decode_frame};
use crate::names;

/// At most one warning per this interval for bad frames.
const LOG_EVERY: Duration = Duration::from_secs(10);

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
}

/// What happened to one frame.
enum Outcome {
    Detected(Vec<Detection>, Geometry),
    Corrupt(String),
    Failed(String),
}

impl DetectTransform {
    pub(crate) fn new(detector: Detector, labels: Vec<String>, cx: &BuildCx) -> Self {
        Self {
            detector: Arc::new(detector),
            labels: labels.into(),
            schema: output_schema(),
            frames: cx.metrics.counter(names::DETECT_FRAMES_TOTAL),
            objects: cx.metrics.counter(names::DETECT_OBJECTS_TOTAL),
            metrics: cx.metrics.clone(),
            id: Arc::clone(&cx.id),
            last_warning: None,
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
    ) -> Result<RecordBatch, ComponentError> {
        let n = dets.len();
        let label = |c: usize| self.labels.get(c).map_or("unknown", String::as_str);
        let f64s = |f: &dyn Fn(&Detection) -> f32| -> ArrayRef {
            Arc::new(Float64Array::from_iter_values(
                dets.iter().map(|d| f64::from(f(d))),
            ))
        };
        let columns: Vec<ArrayRef> = vec![
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
        RecordBatch::try_new(Arc::clone(&self.schema), columns)
            .map_err(|e| ComponentError::internal("detect_batch", e.to_string()))
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
        let detector = Arc::clone(&self.detector);
        let input = Arc::clone(&frame);
        let outcome = sluice_core::blocking(move || match decode_frame(&input) {
            Err(e) => Outcome::Corrupt(e.to_string()),
            Ok(img) => match detector.detect(&img) {
                Ok((dets, g)) => Outcome::Detected(dets, g),
                Err(e) => Outcome::Failed(e.to_string()),
            },
        })
        .await?;
        match outcome {
            Outcome::Detected(dets, g) => {
                self.frames.increment(1);
                self.objects.increment(dets.len() as u64);
                let batch = self.rows(&frame, &dets, g)?;
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
}
