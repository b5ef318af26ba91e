//! What kind of payload a stream carries: Arrow rows or camera frames.
//!
//! Validation describes every stream by a schema. A frame stream is described
//! by [`frame_stream_schema`]: its columns name the frame's metadata and its
//! metadata marks it as frames, so the config crate can refuse wiring frames
//! into a component that takes rows.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef};

use crate::schema::{EVENT_TIME_KEY, TIMESTAMP_MS};

/// Schema metadata key naming the payload kind of a stream.
pub const PAYLOAD_KEY: &str = "sluice.payload";

/// Value of [`PAYLOAD_KEY`] for frame streams.
pub const PAYLOAD_FRAMES: &str = "frames";

/// The payload kind of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// Arrow record batches.
    Rows,
    /// Camera frames (`Msg::Frame`).
    Frames,
}

impl Payload {
    /// Name used in diagnostics.
    pub fn as_str(self) -> &'static str {
        match self {
            Payload::Rows => "rows",
            Payload::Frames => "camera frames",
        }
    }

    /// The payload kind of the stream `schema` describes.
    pub fn of(schema: &Schema) -> Self {
        match schema.metadata().get(PAYLOAD_KEY).map(String::as_str) {
            Some(PAYLOAD_FRAMES) => Payload::Frames,
            _ => Payload::Rows,
        }
    }
}

/// The description of a frame stream: the metadata every frame carries
/// (`camera`, `ts`, `seq`, `width`, `height`), marked as frames.
pub fn frame_stream_schema() -> SchemaRef {
    let fields = vec![
        Field::new("camera", DataType::Utf8, false),
        Field::new("ts", TIMESTAMP_MS, false),
        Field::new("seq", DataType::Int64, false),
        Field::new("width", DataType::Int64, false),
        Field::new("height", DataType::Int64, false),
    ];
    let metadata = HashMap::from([
        (PAYLOAD_KEY.to_owned(), PAYLOAD_FRAMES.to_owned()),
        (EVENT_TIME_KEY.to_owned(), "ts".to_owned()),
    ]);
    Arc::new(Schema::new_with_metadata(fields, metadata))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_streams_are_told_apart_from_row_streams() {
        assert_eq!(Payload::of(&frame_stream_schema()), Payload::Frames);
        let rows = Schema::new(vec![Field::new("v", DataType::Int64, false)]);
        assert_eq!(Payload::of(&rows), Payload::Rows);
    }
}
