//! The running `track` transform.

use std::sync::Arc;

use sluice_core::arrow_array::cast::AsArray;
use sluice_core::arrow_array::types::{Float64Type, Int64Type, TimestampMillisecondType};
use sluice_core::arrow_array::{Array, ArrayRef, Int64Array, RecordBatch};
use sluice_core::arrow_schema::SchemaRef;
use sluice_core::{ComponentError, Emitter, Msg, Transform};

use super::tracker::{Observation, TrackerParams, Trackers};
use crate::detect::BBox;

/// Adds `track_id` to detection rows; see [`super::TrackConfig`].
#[derive(Debug)]
pub struct TrackTransform {
    trackers: Trackers,
    output: SchemaRef,
}

impl TrackTransform {
    pub(crate) fn new(params: TrackerParams, output: SchemaRef) -> Self {
        Self {
            trackers: Trackers::new(params),
            output,
        }
    }

    /// Track ids for every row of `batch`, frame by frame (runs of rows with
    /// the same camera and time).
    pub fn assign(&mut self, batch: &RecordBatch) -> Result<Vec<i64>, ComponentError> {
        let missing =
            |c: &str| ComponentError::internal("track_columns", format!("no column `{c}`"));
        let col = |c: &str| batch.column_by_name(c).ok_or_else(|| missing(c));
        let camera = col("camera")?
            .as_string_opt::<i32>()
            .ok_or_else(|| missing("camera"))?;
        let ts = col("ts")?
            .as_primitive_opt::<TimestampMillisecondType>()
            .ok_or_else(|| missing("ts"))?;
        let class = col("class_id")?
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| missing("class_id"))?;
        let f = |c: &str| {
            col(c)?
                .as_primitive_opt::<Float64Type>()
                .ok_or_else(|| missing(c))
        };
        let (x1, y1, x2, y2) = (f("x1")?, f("y1")?, f("x2")?, f("y2")?);
        let n = batch.num_rows();
        let mut ids = Vec::with_capacity(n);
        let mut start = 0;
        while start < n {
            let mut end = start + 1;
            while end < n
                && camera.value(end) == camera.value(start)
                && ts.value(end) == ts.value(start)
            {
                end += 1;
            }
            let obs: Vec<Observation> = (start..end)
                .map(|i| Observation {
                    class: class.value(i),
                    bbox: BBox {
                        x1: x1.value(i) as f32,
                        y1: y1.value(i) as f32,
                        x2: x2.value(i) as f32,
                        y2: y2.value(i) as f32,
                    },
                })
                .collect();
            let cam = if camera.is_null(start) {
                ""
            } else {
                camera.value(start)
            };
            ids.extend(self.trackers.update(cam, ts.value(start), &obs));
            start = end;
        }
        Ok(ids)
    }
}

impl Transform for TrackTransform {
    async fn process(&mut self, msg: Msg, out: &mut Emitter) -> Result<(), ComponentError> {
        let batch = msg.into_rows()?;
        let ids = self.assign(&batch)?;
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        columns.push(Arc::new(Int64Array::from(ids)));
        let batch = RecordBatch::try_new(Arc::clone(&self.output), columns)
            .map_err(|e| ComponentError::internal("track_batch", e.to_string()))?;
        out.emit(batch).await
    }
}
