//! The three component roles.
//!
//! Transforms and sinks are event handlers: the topology owns their loop,
//! shutdown, ticks and metrics. Sources own their I/O and therefore their loop.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::emitter::Emitter;
use crate::error::ComponentError;
use crate::health::ReadyFlag;
use crate::msg::Msg;

/// What a running source gets from the topology.
#[derive(Debug)]
pub struct SourceCx {
    /// Pipeline name.
    pub pipeline: Arc<str>,
    /// Component id.
    pub id: Arc<str>,
    /// Downstream edges; also carries the component's metrics.
    pub out: Emitter,
    /// Fires when the source must stop. The source then flushes its partial
    /// batch and returns `Ok`.
    pub shutdown: CancellationToken,
    /// Raised once the source is connected and receiving.
    pub ready: ReadyFlag,
}

/// Produces batches from the outside world.
pub trait Source: Send + 'static {
    /// Runs until `cx.shutdown` fires; must flush its partial batch and return
    /// `Ok`. An `Err` with `Retry::Backoff` makes the supervisor rebuild and
    /// restart the source.
    fn run(self, cx: SourceCx) -> impl Future<Output = Result<(), ComponentError>> + Send;
}

/// Turns batches into batches.
pub trait Transform: Send + 'static {
    /// Handles one input batch.
    fn process(
        &mut self,
        msg: Msg,
        out: &mut Emitter,
    ) -> impl Future<Output = Result<(), ComponentError>> + Send;

    /// Handles one batch that arrived on input `input` (the producer's position
    /// in the component's `inputs` list). The topology calls this; the default
    /// ignores the position and calls [`Transform::process`], which is right
    /// for every transform that treats its inputs as one stream.
    fn process_input(
        &mut self,
        input: usize,
        msg: Msg,
        out: &mut Emitter,
    ) -> impl Future<Output = Result<(), ComponentError>> + Send {
        let _ = input;
        self.process(msg, out)
    }

    /// How often [`Transform::on_tick`] runs (window close, linger flush).
    fn tick_interval(&self) -> Option<Duration> {
        None
    }

    /// Periodic work, e.g. closing windows by wall clock when input is idle.
    fn on_tick(
        &mut self,
        _now: Instant,
        _out: &mut Emitter,
    ) -> impl Future<Output = Result<(), ComponentError>> + Send {
        async { Ok(()) }
    }

    /// All inputs closed (shutdown or upstream end): emit what is still buffered.
    fn finish(
        &mut self,
        _out: &mut Emitter,
    ) -> impl Future<Output = Result<(), ComponentError>> + Send {
        async { Ok(()) }
    }
}

/// Writes batches to the outside world.
pub trait Sink: Send + 'static {
    /// Writes one batch. An `Err` with `Retry::Backoff` makes the topology retry
    /// the same batch with backoff until it succeeds or shutdown's deadline.
    fn write(&mut self, msg: &Msg) -> impl Future<Output = Result<(), ComponentError>> + Send;

    /// All inputs closed: make everything written durable or delivered.
    fn flush(&mut self) -> impl Future<Output = Result<(), ComponentError>> + Send {
        async { Ok(()) }
    }
}
