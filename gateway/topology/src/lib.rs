//! Runs pipelines: one task per component, bounded channels between them,
//! supervision by retry hint, and a graceful drain on shutdown.
//!
//! Shutdown order: cancel the sources; each source flushes its partial batch
//! and returns, dropping its senders; each transform sees its input close and
//! runs `finish`; each sink flushes. Components still running at the deadline
//! are reported by id and aborted.
#![warn(missing_docs)]

mod pipeline;
mod tasks;

pub use pipeline::{PipelineState, RunningPipeline, ShutdownReport, StartError};
