//! `type: track`: configuration and checks.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use sluice_core::InputSchema;
use sluice_core::arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use sluice_core::{
    BufferConfig, BuildCx, BuildError, HumanDuration, Payload, TransformConfig, Validator,
};

use super::tracker::TrackerParams;
use super::transform::TrackTransform;

/// Name of the added column.
pub const TRACK_COLUMN: &str = "track_id";

/// Columns a `track` input needs, with their types.
pub(crate) const REQUIRED: [(&str, &str); 7] = [
    ("camera", "utf8"),
    ("ts", "timestamp_ms"),
    ("class_id", "int64"),
    ("x1", "float64"),
    ("y1", "float64"),
    ("x2", "float64"),
    ("y2", "float64"),
];

/// Columns a `zones` input needs: tracked detections.
const TRACKED: [(&str, &str); 9] = [
    ("camera", "utf8"),
    ("ts", "timestamp_ms"),
    ("track_id", "int64"),
    ("class", "utf8"),
    ("score", "float64"),
    ("x1", "float64"),
    ("y1", "float64"),
    ("x2", "float64"),
    ("y2", "float64"),
];

/// Reports what a stream of tracked detections lacks.
pub(crate) fn check_tracked(input: &SchemaRef, v: &mut Validator) -> bool {
    check_columns(input, &TRACKED, v)
}

/// Gives detections stable track ids.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct TrackConfig {
    /// Upstream components producing detection rows.
    pub inputs: Vec<String>,
    /// Input edge settings.
    #[serde(default)]
    pub buffer: BufferConfig,
    /// Lowest IoU between a track's predicted box and a detection to match.
    #[serde(default = "default_iou")]
    pub iou_threshold: f32,
    /// A track unseen for this long (event time) ends; its id is not reused.
    #[serde(default = "default_max_age")]
    pub max_age: HumanDuration,
    /// Weight of the newest motion in each track's velocity (0..1).
    #[serde(default = "default_smoothing")]
    pub smoothing: f32,
}

fn default_iou() -> f32 {
    0.3
}
fn default_max_age() -> HumanDuration {
    HumanDuration(Duration::from_secs(1))
}
fn default_smoothing() -> f32 {
    0.5
}

fn type_ok(t: &DataType, want: &str) -> bool {
    match want {
        "utf8" => matches!(t, DataType::Utf8),
        "timestamp_ms" => matches!(t, DataType::Timestamp(TimeUnit::Millisecond, _)),
        "int64" => matches!(t, DataType::Int64),
        _ => matches!(t, DataType::Float64),
    }
}

/// Reports missing or mistyped columns of `input` against `required`.
pub(crate) fn check_columns(
    input: &SchemaRef,
    required: &[(&str, &str)],
    v: &mut Validator,
) -> bool {
    if Payload::of(input) == Payload::Frames {
        v.error(
            &["inputs"],
            "this transform reads detection rows, but its input carries camera frames",
        )
        .help("put a `detect` transform between the frame source and this one");
        return false;
    }
    let mut ok = true;
    for (name, ty) in required {
        match input.field_with_name(name) {
            Ok(f) if type_ok(f.data_type(), ty) => {}
            Ok(f) => {
                v.error(
                    &["inputs"],
                    format!("column `{name}` is {}, expected {ty}", f.data_type()),
                );
                ok = false;
            }
            Err(_) => {
                v.error(
                    &["inputs"],
                    format!("the input has no `{name}` column ({ty})"),
                )
                .help("the input must be detection rows, as a `detect` transform emits");
                ok = false;
            }
        }
    }
    ok
}

impl TrackConfig {
    /// The `type` of this component in pipeline YAML.
    pub const TYPE: &'static str = "track";

    pub(crate) fn params(&self) -> TrackerParams {
        TrackerParams {
            iou_threshold: self.iou_threshold,
            max_age_ms: i64::try_from(self.max_age.get().as_millis()).unwrap_or(i64::MAX),
            smoothing: self.smoothing,
        }
    }

    fn check_all(&self, input: &SchemaRef, v: &mut Validator) -> Option<SchemaRef> {
        let mut ok = check_columns(input, &REQUIRED, v);
        if input.field_with_name(TRACK_COLUMN).is_ok() {
            v.error(&["inputs"], "the input already has a `track_id` column");
            ok = false;
        }
        if !(0.0..=1.0).contains(&self.iou_threshold) {
            v.error(&["iou_threshold"], "must be between 0 and 1");
            ok = false;
        }
        if !(0.0..=1.0).contains(&self.smoothing) {
            v.error(&["smoothing"], "must be between 0 and 1");
            ok = false;
        }
        ok.then(|| {
            let mut fields: Vec<Field> =
                input.fields().iter().map(|f| f.as_ref().clone()).collect();
            fields.push(Field::new(TRACK_COLUMN, DataType::Int64, false));
            Arc::new(Schema::new_with_metadata(fields, input.metadata().clone()))
        })
    }
}

impl TransformConfig for TrackConfig {
    const TYPE: &'static str = "track";
    type Component = TrackTransform;

    fn inputs(&self) -> &[String] {
        &self.inputs
    }

    fn buffer(&self) -> BufferConfig {
        self.buffer
    }

    fn check(&self, inputs: &[InputSchema], v: &mut Validator) -> Option<SchemaRef> {
        let input = InputSchema::stream(inputs)?;
        self.check_all(input, v)
    }

    fn build(&self, cx: &BuildCx) -> Result<TrackTransform, BuildError> {
        let input = cx.require_input_schema()?;
        let mut v = Validator::new();
        let Some(output) = self.check_all(&input, &mut v) else {
            return Err(v.into_build_error(&cx.id));
        };
        Ok(TrackTransform::new(self.params(), output))
    }
}
