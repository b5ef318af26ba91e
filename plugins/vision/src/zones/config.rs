//! `type: zones`: configuration and checks.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use sluice_core::InputSchema;
use sluice_core::arrow_schema::{DataType, Field, Schema, SchemaRef};
use sluice_core::schema::{EVENT_TIME_KEY, TIMESTAMP_MS};
use sluice_core::{BufferConfig, BuildCx, BuildError, HumanDuration, TransformConfig, Validator};

use super::geometry::{Point, area2};
use super::schedule::Schedule;
use super::transform::ZonesTransform;
use crate::detect::THUMBNAIL_COLUMN;
use crate::track::check_tracked;

/// Zone and line events for tracked objects.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct ZonesConfig {
    /// Upstream `track` transforms.
    pub inputs: Vec<String>,
    /// Input edge settings.
    #[serde(default)]
    pub buffer: BufferConfig,
    /// The point of a box that counts: `bottom_center` (where a person
    /// stands) or `center`.
    #[serde(default)]
    pub anchor: Anchor,
    /// Store opening hours, for rules with `when: after_hours`.
    #[serde(default)]
    pub schedule: Option<Schedule>,
    /// A tracked object unseen for this long (event time) while its camera
    /// reports other objects has left every zone (`exit`).
    #[serde(default = "default_lost")]
    pub lost_after: HumanDuration,
    /// A camera without any rows for this long (wall clock) has nobody in
    /// view: its objects leave their zones. A `detect` transform sends no
    /// rows for an empty scene, so this is how the last person's `exit`
    /// comes; keep it above the detector's time per frame.
    #[serde(default = "default_idle")]
    pub idle_after: HumanDuration,
    /// Polygons.
    #[serde(default)]
    pub zones: Vec<ZoneConfig>,
    /// Lines whose crossing is reported.
    #[serde(default)]
    pub lines: Vec<LineConfig>,
}

/// One polygon.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct ZoneConfig {
    /// Name in the events.
    pub name: String,
    /// Camera whose frames the polygon is drawn on.
    pub camera: String,
    /// Corners in frame pixels, `[[x, y], ...]`, at least three.
    pub polygon: Vec<Point>,
    /// Events reported: `enter`, `exit`, `dwell`; default `enter` and `exit`
    /// (plus `dwell` when `dwell` is set).
    #[serde(default)]
    pub events: Vec<EventKind>,
    /// Report `dwell` once per visit after this long inside.
    #[serde(default)]
    pub dwell: Option<HumanDuration>,
    /// Classes that count (`class` column); default every class.
    #[serde(default)]
    pub classes: Vec<String>,
    /// `always`, `after_hours` or `open_hours`.
    #[serde(default)]
    pub when: When,
}

/// One line.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct LineConfig {
    /// Name in the events.
    pub name: String,
    /// Camera whose frames the line is drawn on.
    pub camera: String,
    /// Start `[x, y]`; `direction` is `left_to_right` for a crossing from the
    /// left to the right of someone standing here and facing `to`.
    pub from: Point,
    /// End `[x, y]`.
    pub to: Point,
    /// Classes that count; default every class.
    #[serde(default)]
    pub classes: Vec<String>,
    /// `always`, `after_hours` or `open_hours`.
    #[serde(default)]
    pub when: When,
}

/// Which point of a box is tested against zones and lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Anchor {
    /// Middle of the bottom edge.
    #[default]
    BottomCenter,
    /// Centre of the box.
    Center,
}

/// Zone events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The object came in.
    Enter,
    /// The object left (or was lost while inside).
    Exit,
    /// The object has been inside for `dwell`.
    Dwell,
}

/// When a rule reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum When {
    /// At any time.
    #[default]
    Always,
    /// Only while the store is closed (needs `schedule`).
    AfterHours,
    /// Only while the store is open (needs `schedule`).
    OpenHours,
}

fn default_lost() -> HumanDuration {
    HumanDuration(Duration::from_secs(2))
}
fn default_idle() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}

/// Columns of the event rows from detections without thumbnails.
pub fn output_schema() -> SchemaRef {
    events_schema(false)
}

/// Columns of the event rows; with `thumbnail` (the input carries one), a
/// last nullable utf8 column of that name.
pub fn events_schema(thumbnail: bool) -> SchemaRef {
    let f = |n: &str, t: DataType, null: bool| Field::new(n, t, null);
    let mut fields = vec![
        f("camera", DataType::Utf8, false),
        f("ts", TIMESTAMP_MS, false),
        f("zone", DataType::Utf8, false),
        f("event", DataType::Utf8, false),
        f("track_id", DataType::Int64, false),
        f("class", DataType::Utf8, false),
        f("score", DataType::Float64, false),
        f("direction", DataType::Utf8, true),
        f("dwell_seconds", DataType::Float64, true),
        f("after_hours", DataType::Boolean, true),
        f("x", DataType::Float64, false),
        f("y", DataType::Float64, false),
    ];
    if thumbnail {
        fields.push(f(THUMBNAIL_COLUMN, DataType::Utf8, true));
    }
    let md = [(EVENT_TIME_KEY.to_owned(), "ts".to_owned())].into();
    Arc::new(Schema::new_with_metadata(fields, md))
}

impl ZonesConfig {
    /// The `type` of this component in pipeline YAML.
    pub const TYPE: &'static str = "zones";

    /// Whether the input carries a `thumbnail` column to pass on.
    pub(crate) fn carries_thumbnail(input: &SchemaRef) -> bool {
        input
            .field_with_name(THUMBNAIL_COLUMN)
            .is_ok_and(|f| f.data_type() == &DataType::Utf8)
    }

    fn check_rules(&self, input: &SchemaRef, v: &mut Validator) -> bool {
        let mut ok = check_tracked(input, v);
        if let Ok(f) = input.field_with_name(THUMBNAIL_COLUMN)
            && f.data_type() != &DataType::Utf8
        {
            v.error(
                &["inputs"],
                format!(
                    "column `{THUMBNAIL_COLUMN}` is {}, expected utf8",
                    f.data_type()
                ),
            );
            ok = false;
        }
        for (i, z) in self.zones.iter().enumerate() {
            let i = i.to_string();
            if z.polygon.len() < 3 || area2(&z.polygon).abs() < 1e-9 {
                v.error(
                    &["zones", &i, "polygon"],
                    "a polygon needs at least three corners enclosing an area",
                );
                ok = false;
            }
            if z.events.contains(&EventKind::Dwell) && z.dwell.is_none() {
                v.error(
                    &["zones", &i, "events"],
                    "`dwell` events need a `dwell` duration",
                );
                ok = false;
            }
            ok &= self.check_when(z.when, &["zones", &i, "when"], v);
        }
        for (i, l) in self.lines.iter().enumerate() {
            let i = i.to_string();
            if l.from == l.to {
                v.error(&["lines", &i, "to"], "a line needs two different points");
                ok = false;
            }
            ok &= self.check_when(l.when, &["lines", &i, "when"], v);
        }
        if self.zones.is_empty() && self.lines.is_empty() {
            v.error(&[], "define at least one of `zones` and `lines`");
            ok = false;
        }
        if let Some(s) = &self.schedule
            && let Err((field, msg)) = s.parse()
        {
            v.error(&["schedule", field], msg);
            ok = false;
        }
        ok
    }

    fn check_when(&self, when: When, path: &[&str], v: &mut Validator) -> bool {
        if when != When::Always && self.schedule.is_none() {
            v.error(path, "this rule needs the opening hours in `schedule`");
            return false;
        }
        true
    }
}

impl TransformConfig for ZonesConfig {
    const TYPE: &'static str = "zones";
    type Component = ZonesTransform;

    fn inputs(&self) -> &[String] {
        &self.inputs
    }

    fn buffer(&self) -> BufferConfig {
        self.buffer
    }

    fn check(&self, inputs: &[InputSchema], v: &mut Validator) -> Option<SchemaRef> {
        let input = InputSchema::stream(inputs)?;
        self.check_rules(input, v)
            .then(|| events_schema(Self::carries_thumbnail(input)))
    }

    fn build(&self, cx: &BuildCx) -> Result<ZonesTransform, BuildError> {
        let input = cx.require_input_schema()?;
        let mut v = Validator::new();
        if !self.check_rules(&input, &mut v) {
            return Err(v.into_build_error(&cx.id));
        }
        Ok(ZonesTransform::new(self, Self::carries_thumbnail(&input)))
    }
}
