//! The running `zones` transform.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sluice_core::arrow_array::cast::AsArray;
use sluice_core::arrow_array::types::{Float64Type, Int64Type, TimestampMillisecondType};
use sluice_core::arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray,
};
use sluice_core::arrow_schema::SchemaRef;
use sluice_core::{ComponentError, Emitter, Msg, Transform};
use tokio::time::Instant;

use super::config::{Anchor, EventKind, ZonesConfig, events_schema};
use super::state::{Event, Line, Sighting, Zone, ZoneState};
use crate::detect::THUMBNAIL_COLUMN;

/// Zone and line events; see [`super::ZonesConfig`].
#[derive(Debug)]
pub struct ZonesTransform {
    state: ZoneState,
    anchor: Anchor,
    lost_after: Duration,
    idle_after: Duration,
    /// Per camera: newest event time seen and when (wall clock) it arrived.
    cameras: HashMap<String, (i64, Instant)>,
    /// Whether the input carries a `thumbnail` column passed on to events.
    thumbnail: bool,
    schema: SchemaRef,
}

impl ZonesTransform {
    pub(crate) fn new(cfg: &ZonesConfig, thumbnail: bool) -> Self {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let zones = cfg
            .zones
            .iter()
            .map(|z| Zone {
                name: z.name.clone(),
                camera: z.camera.clone(),
                polygon: z.polygon.clone(),
                events: if z.events.is_empty() {
                    let mut e = vec![EventKind::Enter, EventKind::Exit];
                    e.extend(z.dwell.map(|_| EventKind::Dwell));
                    e
                } else {
                    z.events.clone()
                },
                dwell_ms: z.dwell.map(|d| ms(d.get())),
                classes: z.classes.clone(),
                when: z.when,
            })
            .collect();
        let lines = cfg
            .lines
            .iter()
            .map(|l| Line {
                name: l.name.clone(),
                camera: l.camera.clone(),
                from: l.from,
                to: l.to,
                classes: l.classes.clone(),
                when: l.when,
            })
            .collect();
        let hours = cfg.schedule.as_ref().and_then(|s| s.parse().ok());
        Self {
            state: ZoneState::new(zones, lines, hours),
            anchor: cfg.anchor,
            lost_after: cfg.lost_after.get(),
            idle_after: cfg.idle_after.get(),
            cameras: HashMap::new(),
            thumbnail,
            schema: events_schema(thumbnail),
        }
    }

    /// The events for one batch of tracked detections.
    pub fn events(&mut self, batch: &RecordBatch) -> Result<Vec<Event>, ComponentError> {
        let missing =
            |c: &str| ComponentError::internal("zones_columns", format!("no column `{c}`"));
        let col = |c: &str| batch.column_by_name(c).ok_or_else(|| missing(c));
        let text = |c: &str| col(c)?.as_string_opt::<i32>().ok_or_else(|| missing(c));
        let float = |c: &str| {
            col(c)?
                .as_primitive_opt::<Float64Type>()
                .ok_or_else(|| missing(c))
        };
        let (camera, class) = (text("camera")?, text("class")?);
        let ts = col("ts")?
            .as_primitive_opt::<TimestampMillisecondType>()
            .ok_or_else(|| missing("ts"))?;
        let track = col("track_id")?
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| missing("track_id"))?;
        let thumbnail = if self.thumbnail {
            Some(text(THUMBNAIL_COLUMN)?)
        } else {
            None
        };
        let (score, x1, y1, x2, y2) = (
            float("score")?,
            float("x1")?,
            float("y1")?,
            float("x2")?,
            float("y2")?,
        );
        let mut out = Vec::new();
        let now = Instant::now();
        for i in 0..batch.num_rows() {
            let x = (x1.value(i) + x2.value(i)) / 2.0;
            let y = match self.anchor {
                Anchor::BottomCenter => y2.value(i),
                Anchor::Center => (y1.value(i) + y2.value(i)) / 2.0,
            };
            let cam = camera.value(i);
            let latest = self
                .cameras
                .entry(cam.to_owned())
                .or_insert((i64::MIN, now));
            *latest = (latest.0.max(ts.value(i)), now);
            self.state.observe(
                Sighting {
                    camera: cam.to_owned(),
                    ts: ts.value(i),
                    track_id: track.value(i),
                    class: class.value(i).to_owned(),
                    score: score.value(i),
                    point: [x, y],
                    thumbnail: thumbnail
                        .filter(|t| t.is_valid(i))
                        .map(|t| t.value(i).to_owned()),
                },
                &mut out,
            );
        }
        let lost_ms = i64::try_from(self.lost_after.as_millis()).unwrap_or(i64::MAX);
        for (cam, (latest, _)) in &self.cameras {
            self.state
                .expire(Some(cam), latest.saturating_sub(lost_ms), &mut out);
        }
        Ok(out)
    }

    /// Events of objects on cameras that sent nothing for `idle_after`
    /// (a `detect` transform emits nothing for an empty scene).
    pub fn expire_idle(&mut self, now: Instant) -> Vec<Event> {
        let mut out = Vec::new();
        for (cam, (latest, seen)) in &mut self.cameras {
            if now.duration_since(*seen) >= self.idle_after {
                self.state
                    .expire(Some(cam), latest.saturating_add(1), &mut out);
            }
        }
        self.cameras
            .retain(|_, (_, seen)| now.duration_since(*seen) < Duration::from_secs(3600));
        out
    }

    fn batch(&self, events: &[Event]) -> Result<RecordBatch, ComponentError> {
        let s = |f: &dyn Fn(&Event) -> &str| -> ArrayRef {
            Arc::new(StringArray::from_iter_values(events.iter().map(f)))
        };
        let mut columns: Vec<ArrayRef> = vec![
            s(&|e| &e.camera),
            Arc::new(TimestampMillisecondArray::from_iter_values(
                events.iter().map(|e| e.ts),
            )),
            s(&|e| &e.zone),
            s(&|e| e.event),
            Arc::new(Int64Array::from_iter_values(
                events.iter().map(|e| e.track_id),
            )),
            s(&|e| &e.class),
            Arc::new(Float64Array::from_iter_values(
                events.iter().map(|e| e.score),
            )),
            Arc::new(StringArray::from(
                events.iter().map(|e| e.direction).collect::<Vec<_>>(),
            )),
            Arc::new(Float64Array::from(
                events.iter().map(|e| e.dwell_seconds).collect::<Vec<_>>(),
            )),
            Arc::new(BooleanArray::from(
                events.iter().map(|e| e.after_hours).collect::<Vec<_>>(),
            )),
            Arc::new(Float64Array::from_iter_values(
                events.iter().map(|e| e.point[0]),
            )),
            Arc::new(Float64Array::from_iter_values(
                events.iter().map(|e| e.point[1]),
            )),
        ];
        if self.thumbnail {
            columns.push(Arc::new(StringArray::from(
                events
                    .iter()
                    .map(|e| e.thumbnail.as_deref())
                    .collect::<Vec<_>>(),
            )));
        }
        RecordBatch::try_new(Arc::clone(&self.schema), columns)
            .map_err(|e| ComponentError::internal("zones_batch", e.to_string()))
    }
}

impl Transform for ZonesTransform {
    async fn process(&mut self, msg: Msg, out: &mut Emitter) -> Result<(), ComponentError> {
        let batch = msg.into_rows()?;
        let events = self.events(&batch)?;
        out.emit(self.batch(&events)?).await
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some((self.idle_after / 4).max(Duration::from_millis(100)))
    }

    async fn on_tick(&mut self, now: Instant, out: &mut Emitter) -> Result<(), ComponentError> {
        let events = self.expire_idle(now);
        out.emit(self.batch(&events)?).await
    }

    async fn finish(&mut self, out: &mut Emitter) -> Result<(), ComponentError> {
        let mut events = Vec::new();
        self.state.expire(None, i64::MAX, &mut events);
        out.emit(self.batch(&events)?).await
    }
}
