//! The payload carried on every edge of a pipeline.

use arrow_array::RecordBatch;

/// One micro-batch travelling between components.
///
/// Batches are capped at the producer (`max_batch_rows`), so memory per edge is
/// bounded by `capacity x max_batch_rows`.
#[derive(Debug, Clone)]
pub enum Msg {
    /// Rows with the schema of the producing stream.
    Rows(RecordBatch),
}

impl Msg {
    /// Number of rows in the message.
    pub fn num_rows(&self) -> usize {
        match self {
            Msg::Rows(b) => b.num_rows(),
        }
    }

    /// Approximate in-memory size, for byte counters.
    pub fn size_bytes(&self) -> usize {
        match self {
            Msg::Rows(b) => b.get_array_memory_size(),
        }
    }
}
