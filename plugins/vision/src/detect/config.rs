//! `type: detect`: configuration, checks and building the running transform.

use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use sluice_core::InputSchema;
use sluice_core::arrow_schema::{DataType, Field, Schema, SchemaRef};
use sluice_core::schema::{EVENT_TIME_KEY, TIMESTAMP_MS};
use sluice_core::{
    BufferConfig, BuildCx, BuildError, EnvString, Payload, TransformConfig, Validator,
};

use super::decode::{DecodeParams, Format};
use super::labels::COCO;
use super::model::{Detector, ModelError, PostProcess};
use super::preprocess::{Channels, Layout, Preprocess, Resize};
use super::thumbnails::{Thumbnails, ThumbnailsConfig};
use super::transform::DetectTransform;

/// Detects objects in camera frames with an ONNX model; one output row per
/// detection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct DetectConfig {
    /// Upstream frame sources.
    pub inputs: Vec<String>,
    /// Input edge settings. A capacity of 1 or 2 keeps detections close to
    /// live when the detector is slower than the camera.
    #[serde(default)]
    pub buffer: BufferConfig,
    /// Path of the ONNX detector.
    pub model: EnvString,
    /// Output layout of the model: `nanodet` or `yolov8`.
    pub format: Format,
    /// Model input `[width, height]`; required only when the model does not
    /// fix it.
    #[serde(default)]
    pub input_size: Option<[usize; 2]>,
    /// `stretch` or `letterbox`; default `stretch` for NanoDet and
    /// `letterbox` for YOLOv8, as they were trained.
    #[serde(default)]
    pub resize: Option<Resize>,
    /// Channel order the model expects: `rgb` or `bgr`.
    #[serde(default)]
    pub channels: Channels,
    /// Tensor layout: `nchw` or `nhwc`.
    #[serde(default)]
    pub layout: Layout,
    /// Per channel (model order), subtracted from pixel values in 0..255.
    #[serde(default)]
    pub mean: [f32; 3],
    /// Per channel, the difference is divided by it (255: inputs in 0..1).
    #[serde(default = "default_std")]
    pub std: [f32; 3],
    /// Letterbox padding value in 0..255.
    #[serde(default = "default_pad")]
    pub pad_value: f32,
    /// Lowest class score reported.
    #[serde(default = "default_score")]
    pub score_threshold: f32,
    /// Overlap above which a weaker box of the same class is suppressed.
    #[serde(default = "default_nms")]
    pub nms_iou: f32,
    /// Most detections per frame.
    #[serde(default = "default_max")]
    pub max_detections: NonZeroUsize,
    /// Class names reported; empty means every class.
    #[serde(default)]
    pub classes: Vec<String>,
    /// Class names in model order; default the 80 COCO classes.
    #[serde(default)]
    pub labels: Option<Vec<String>>,
    /// NanoDet: largest bin of the box side distributions.
    #[serde(default = "default_reg_max")]
    pub reg_max: usize,
    /// NanoDet: strides of the feature maps.
    #[serde(default = "default_strides")]
    pub strides: Vec<usize>,
    /// Frames decoded and run through the model at the same time, each on
    /// the blocking pool with its own run state over the one optimised
    /// model. Rows still leave in frame order. 1 runs one frame at a time;
    /// 2 suits a 2-core box (tract runs one inference on one core).
    #[serde(default = "default_workers")]
    pub workers: NonZeroUsize,
    /// Keep a small JPEG of frames with detections on the box and add its
    /// path as a `thumbnail` column; without it the output has no such
    /// column.
    #[serde(default)]
    pub thumbnails: Option<ThumbnailsConfig>,
}

fn default_std() -> [f32; 3] {
    [255.0; 3]
}
fn default_pad() -> f32 {
    114.0
}
fn default_score() -> f32 {
    0.35
}
fn default_nms() -> f32 {
    0.5
}
fn default_max() -> NonZeroUsize {
    NonZeroUsize::new(100).unwrap_or(NonZeroUsize::MIN)
}
fn default_reg_max() -> usize {
    10
}
fn default_strides() -> Vec<usize> {
    vec![8, 16, 32]
}
fn default_workers() -> NonZeroUsize {
    NonZeroUsize::MIN
}

/// Name of the column with the thumbnail path, present with `thumbnails`.
pub const THUMBNAIL_COLUMN: &str = "thumbnail";

/// Columns of the detection rows without `thumbnails`.
pub fn output_schema() -> SchemaRef {
    detection_schema(false)
}

/// Columns of the detection rows; with `thumbnail`, a last nullable utf8
/// column of that name.
pub fn detection_schema(thumbnail: bool) -> SchemaRef {
    let f = |n: &str, t: DataType| Field::new(n, t, false);
    let mut fields = vec![
        f("camera", DataType::Utf8),
        f("ts", TIMESTAMP_MS),
        f("seq", DataType::Int64),
        f("class", DataType::Utf8),
        f("class_id", DataType::Int64),
        f("score", DataType::Float64),
        f("x1", DataType::Float64),
        f("y1", DataType::Float64),
        f("x2", DataType::Float64),
        f("y2", DataType::Float64),
        f("frame_width", DataType::Int64),
        f("frame_height", DataType::Int64),
    ];
    if thumbnail {
        fields.push(Field::new(THUMBNAIL_COLUMN, DataType::Utf8, true));
    }
    let md = [(EVENT_TIME_KEY.to_owned(), "ts".to_owned())].into();
    Arc::new(Schema::new_with_metadata(fields, md))
}

impl DetectConfig {
    /// The `type` of this component in pipeline YAML.
    pub const TYPE: &'static str = "detect";

    /// Class names in model order.
    pub fn label_names(&self) -> Vec<String> {
        match &self.labels {
            Some(l) => l.clone(),
            None => COCO.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn check_options(&self, v: &mut Validator) -> bool {
        let mut ok = true;
        let labels = self.label_names();
        for c in &self.classes {
            if !labels.contains(c) {
                let e = v.error(
                    &["classes"],
                    format!("`{c}` is not one of the model's labels"),
                );
                if let Some(near) = labels.iter().find(|l| l.eq_ignore_ascii_case(c)) {
                    e.help(format!("did you mean `{near}`?"));
                }
                ok = false;
            }
        }
        if !(0.0..=1.0).contains(&self.score_threshold) {
            v.error(&["score_threshold"], "must be between 0 and 1");
            ok = false;
        }
        if !(0.0..=1.0).contains(&self.nms_iou) {
            v.error(&["nms_iou"], "must be between 0 and 1");
            ok = false;
        }
        if self.std.iter().any(|s| *s == 0.0 || !s.is_finite()) {
            v.error(&["std"], "every value must be a finite, non-zero number");
            ok = false;
        }
        if self.strides.is_empty() || self.strides.contains(&0) {
            v.error(
                &["strides"],
                "strides must be positive and at least one is needed",
            );
            ok = false;
        }
        if let Some([w, h]) = self.input_size
            && (w == 0 || h == 0)
        {
            v.error(&["input_size"], "width and height must be positive");
            ok = false;
        }
        if let Some(t) = &self.thumbnails {
            ok &= t.check(v);
        }
        ok
    }

    /// Columns of the rows this transform emits.
    pub fn output_schema(&self) -> SchemaRef {
        detection_schema(self.thumbnails.is_some())
    }

    /// Loads and checks the model.
    pub fn load_detector(&self) -> Result<Detector, ModelError> {
        let labels = self.label_names();
        let allowed = if self.classes.is_empty() {
            Vec::new()
        } else {
            labels.iter().map(|l| self.classes.contains(l)).collect()
        };
        let pre = Preprocess {
            width: 0,
            height: 0,
            resize: self.resize.unwrap_or(match self.format {
                Format::Nanodet => Resize::Stretch,
                Format::Yolov8 => Resize::Letterbox,
            }),
            channels: self.channels,
            layout: self.layout,
            mean: self.mean,
            std: self.std,
            pad_value: self.pad_value,
        };
        let post = PostProcess {
            params: DecodeParams {
                input_width: 0,
                input_height: 0,
                num_classes: labels.len(),
                score_threshold: self.score_threshold,
                allowed,
                reg_max: self.reg_max,
                strides: self.strides.clone(),
            },
            format: self.format,
            nms_iou: self.nms_iou,
            max_detections: self.max_detections.get(),
        };
        let size = self.input_size.map(|[w, h]| (w, h));
        Detector::load(Path::new(self.model.as_str()), size, pre, post)
    }
}

fn report_model_error(e: &ModelError, v: &mut Validator) {
    let path: &[&str] = match e {
        ModelError::Input { .. } => &["input_size"],
        ModelError::Layout { .. } => &["format"],
        _ => &["model"],
    };
    v.error(path, e.to_string());
}

impl TransformConfig for DetectConfig {
    const TYPE: &'static str = "detect";
    const METRICS: &'static [sluice_core::metrics::MetricDoc] = crate::names::DETECT_METRICS;
    const INPUT: sluice_core::Payload = sluice_core::Payload::Frames;
    type Component = DetectTransform;

    fn inputs(&self) -> &[String] {
        &self.inputs
    }

    fn buffer(&self) -> BufferConfig {
        self.buffer
    }

    fn check(&self, inputs: &[InputSchema], v: &mut Validator) -> Option<SchemaRef> {
        let input = InputSchema::stream(inputs)?;
        let mut ok = self.check_options(v);
        if Payload::of(input) != Payload::Frames {
            v.error(
                &["inputs"],
                "`detect` reads camera frames, but its input carries rows",
            )
            .help("use a `frames` or `camera` source as input");
            ok = false;
        }
        if let Err(e) = self.load_detector() {
            report_model_error(&e, v);
            ok = false;
        }
        ok.then(|| self.output_schema())
    }

    fn build(&self, cx: &BuildCx) -> Result<DetectTransform, BuildError> {
        let mut v = Validator::new();
        if !self.check_options(&mut v) {
            return Err(v.into_build_error(&cx.id));
        }
        let detector = self
            .load_detector()
            .map_err(|e| BuildError::context(format!("component `{}`", cx.id), e))?;
        let thumbnails = self
            .thumbnails
            .as_ref()
            .map(|t| Thumbnails::open(t, &cx.metrics));
        Ok(DetectTransform::new(
            detector,
            self.label_names(),
            self.workers.get(),
            thumbnails,
            cx,
        ))
    }
}
