//! The payload carried on every edge of a pipeline.

use std::sync::Arc;

use arrow_array::RecordBatch;

use crate::error::ComponentError;
use crate::frame::Frame;

/// One micro-batch travelling between components.
///
/// Batches are capped at the producer (`max_batch_rows`), so memory per edge is
/// bounded by `capacity x max_batch_rows`.
#[derive(Debug, Clone)]
pub enum Msg {
    /// Rows with the schema of the producing stream.
    Rows(RecordBatch),
    /// One camera frame. Frame streams only connect to components that take
    /// frames; the config's graph check rejects any other wiring.
    Frame(Arc<Frame>),
}

impl Msg {
    /// Number of rows in the message.
    pub fn num_rows(&self) -> usize {
        match self {
            Msg::Rows(b) => b.num_rows(),
            Msg::Frame(_) => 1,
        }
    }

    /// Approximate in-memory size, for byte counters.
    pub fn size_bytes(&self) -> usize {
        match self {
            Msg::Rows(b) => b.get_array_memory_size(),
            Msg::Frame(f) => f.size_bytes(),
        }
    }

    /// The rows of a row message, or an error naming the component that got
    /// a frame where it takes rows (a wiring the graph check should refuse).
    pub fn rows(&self) -> Result<&RecordBatch, ComponentError> {
        match self {
            Msg::Rows(b) => Ok(b),
            Msg::Frame(_) => Err(unexpected_frame()),
        }
    }

    /// Like [`Msg::rows`], by value.
    pub fn into_rows(self) -> Result<RecordBatch, ComponentError> {
        match self {
            Msg::Rows(b) => Ok(b),
            Msg::Frame(_) => Err(unexpected_frame()),
        }
    }
}

fn unexpected_frame() -> ComponentError {
    ComponentError::internal(
        "unexpected_frame",
        "received a camera frame on an input that takes rows",
    )
}
