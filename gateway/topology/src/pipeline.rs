//! Starting and stopping one pipeline.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sluice_config::Pipeline;
use sluice_core::config::InputSchema;
use sluice_core::{
    BufferConfig, BuildCx, BuildError, Catalog, ComponentKind, ComponentLabels, ComponentMetrics,
    Delivery, EdgeMetrics, Emitter, InputMetrics, Output, ReadyFlag, SinkEntry, SourceEntry,
    TransformEntry,
};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::tasks::{self, Failer, SourceTask};

/// Life-cycle state of a pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PipelineState {
    /// All components are running.
    Running,
    /// A component failed for good; the pipeline is stopping or stopped.
    Failed(String),
    /// Stopped cleanly.
    Stopped,
}

/// A pipeline could not start.
#[derive(Debug, thiserror::Error)]
#[error("pipeline `{pipeline}`: component `{component}`: {source}")]
pub struct StartError {
    /// Pipeline name.
    pub pipeline: String,
    /// Component that failed to build.
    pub component: String,
    /// Why.
    #[source]
    pub source: BuildError,
}

/// What a shutdown achieved.
#[derive(Debug, Default)]
pub struct ShutdownReport {
    /// Components still running at the deadline (aborted).
    pub stuck: Vec<String>,
}

/// A started pipeline.
pub struct RunningPipeline {
    name: String,
    sources: CancellationToken,
    state: Arc<watch::Sender<PipelineState>>,
    ready: Vec<(String, ReadyFlag)>,
    tasks: Vec<(String, JoinHandle<()>)>,
}

struct Wiring {
    txs: HashMap<String, mpsc::Sender<Delivery>>,
    rxs: HashMap<String, mpsc::Receiver<Delivery>>,
    buffers: HashMap<String, BufferConfig>,
}

impl RunningPipeline {
    /// Builds every component (so a build error starts nothing), wires the
    /// channels and spawns one task per component. Must be called inside a
    /// tokio runtime.
    pub fn start<C: Catalog>(p: &Pipeline<C>) -> Result<Self, StartError> {
        let name: Arc<str> = p.name.as_str().into();
        let sources_token = CancellationToken::new();
        let state = Arc::new(watch::Sender::new(PipelineState::Running));
        let failer = Failer {
            state: state.clone(),
            sources: sources_token.clone(),
        };
        let mut wiring = Wiring {
            txs: HashMap::new(),
            rxs: HashMap::new(),
            buffers: HashMap::new(),
        };
        let consumers = p
            .transforms
            .iter()
            .map(|(id, c)| (id, c.buffer()))
            .chain(p.sinks.iter().map(|(id, c)| (id, c.buffer())));
        for (id, buffer) in consumers {
            let (tx, rx) = mpsc::channel(buffer.capacity.get());
            wiring.txs.insert(id.clone(), tx);
            wiring.rxs.insert(id.clone(), rx);
            wiring.buffers.insert(id.clone(), buffer);
        }
        let build_err = |id: &str, source: BuildError| StartError {
            pipeline: p.name.clone(),
            component: id.to_owned(),
            source,
        };
        let cx = |id: &str, kind: ComponentKind, ty: &'static str| BuildCx {
            pipeline: name.clone(),
            id: id.into(),
            inputs: input_schemas(p, inputs_of(p, id)),
            metrics: ComponentMetrics::new(ComponentLabels::new(&p.name, id, kind, ty)),
        };

        let mut spawns: Vec<(String, Spawn<C>)> = Vec::new();
        let mut ready = Vec::new();
        for (id, c) in &p.sources {
            let build_cx = cx(id, ComponentKind::Source, c.type_name());
            let first = c.build(&build_cx).map_err(|e| build_err(id, e))?;
            let flag = ReadyFlag::new();
            ready.push((id.clone(), flag.clone()));
            let out = emitter(p, id, &wiring, build_cx.metrics.clone());
            spawns.push((
                id.clone(),
                Spawn::Source(Box::new(SourceTask {
                    config: c.clone(),
                    build_cx,
                    first,
                    out,
                    ready: flag,
                    shutdown: sources_token.child_token(),
                    failer: failer.clone(),
                })),
            ));
        }
        for (id, c) in &p.transforms {
            let build_cx = cx(id, ComponentKind::Transform, c.type_name());
            let t = c.build(&build_cx).map_err(|e| build_err(id, e))?;
            let out = emitter(p, id, &wiring, build_cx.metrics.clone());
            spawns.push((id.clone(), Spawn::Transform(t, out)));
        }
        for (id, c) in &p.sinks {
            let build_cx = cx(id, ComponentKind::Sink, c.type_name());
            let s = c.build(&build_cx).map_err(|e| build_err(id, e))?;
            spawns.push((id.clone(), Spawn::Sink(s, build_cx.metrics)));
        }
        // Only the emitters hold senders from here on, so each consumer's input
        // closes exactly when all of its producers have returned.
        wiring.txs.clear();

        let mut tasks = Vec::with_capacity(spawns.len());
        for (id, spawn) in spawns {
            let handle = match spawn {
                Spawn::Source(task) => tokio::spawn(tasks::run_source(*task)),
                Spawn::Transform(t, out) => {
                    let rx = take_rx(&mut wiring, &id);
                    tokio::spawn(tasks::run_transform(
                        t,
                        rx,
                        out,
                        InputMetrics::new(&p.name, &id),
                        failer.clone(),
                    ))
                }
                Spawn::Sink(s, metrics) => {
                    let rx = take_rx(&mut wiring, &id);
                    tokio::spawn(tasks::run_sink(
                        s,
                        rx,
                        metrics,
                        InputMetrics::new(&p.name, &id),
                        failer.clone(),
                    ))
                }
            };
            tasks.push((id, handle));
        }
        info!(pipeline = %p.name, components = tasks.len(), "Pipeline started.");
        Ok(Self {
            name: p.name.clone(),
            sources: sources_token,
            state,
            ready,
            tasks,
        })
    }

    /// Pipeline name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Readiness flag of every source, by component id.
    pub fn ready_flags(&self) -> &[(String, ReadyFlag)] {
        &self.ready
    }

    /// Watches the pipeline's state.
    pub fn state(&self) -> watch::Receiver<PipelineState> {
        self.state.subscribe()
    }

    /// Whether every component task has returned.
    pub fn is_finished(&self) -> bool {
        self.tasks.iter().all(|(_, h)| h.is_finished())
    }

    /// Waits until every component has returned (sources ended or the pipeline
    /// failed and drained).
    pub async fn wait(&mut self) {
        for (_, h) in &mut self.tasks {
            if !h.is_finished()
                && let Err(e) = h.await
                && e.is_panic()
            {
                error!(pipeline = %self.name, error = %e, "A component task panicked.");
            }
        }
    }

    /// Stops the sources and waits up to `timeout` for everything in flight to
    /// drain; components still running then are reported and aborted.
    pub async fn shutdown(mut self, timeout: Duration) -> ShutdownReport {
        self.sources.cancel();
        let drained = tokio::time::timeout(timeout, self.wait()).await.is_ok();
        let mut report = ShutdownReport::default();
        if !drained {
            for (id, h) in &self.tasks {
                if !h.is_finished() {
                    report.stuck.push(id.clone());
                    h.abort();
                }
            }
            error!(pipeline = %self.name, stuck = ?report.stuck, "Shutdown deadline passed; aborted components that were still running.");
        }
        self.state.send_if_modified(|s| {
            if *s == PipelineState::Running {
                *s = PipelineState::Stopped;
                true
            } else {
                false
            }
        });
        info!(pipeline = %self.name, clean = drained, "Pipeline stopped.");
        report
    }
}

// Lives only during start-up, once per component.
#[allow(clippy::large_enum_variant)]
enum Spawn<C: Catalog> {
    Source(Box<SourceTask<C::Source>>),
    Transform(<C::Transform as TransformEntry>::Running, Emitter),
    Sink(<C::Sink as SinkEntry>::Running, ComponentMetrics),
}

fn take_rx(w: &mut Wiring, id: &str) -> mpsc::Receiver<Delivery> {
    match w.rxs.remove(id) {
        Some(rx) => rx,
        // Every transform and sink got a channel above; a missing one would be
        // a wiring bug, and an immediately closed channel makes it visible as
        // a component that finishes at once.
        None => mpsc::channel(1).1,
    }
}

/// The known schema of every input in `inputs`, in order.
fn input_schemas<C: Catalog>(p: &Pipeline<C>, inputs: &[String]) -> Vec<InputSchema> {
    inputs
        .iter()
        .filter_map(|i| {
            Some(InputSchema {
                id: i.as_str().into(),
                schema: p.schemas.get(i)?.clone(),
            })
        })
        .collect()
}

/// The inputs of consumer `to`.
fn inputs_of<'p, C: Catalog>(p: &'p Pipeline<C>, to: &str) -> &'p [String] {
    p.transforms
        .get(to)
        .map(|c| c.inputs())
        .or_else(|| p.sinks.get(to).map(|c| c.inputs()))
        .unwrap_or_default()
}

fn emitter<C: Catalog>(
    p: &Pipeline<C>,
    id: &str,
    w: &Wiring,
    metrics: ComponentMetrics,
) -> Emitter {
    let outputs = sluice_config::downstream_of(p, id)
        .into_iter()
        .filter_map(|to| {
            let tx = w.txs.get(&to)?.clone();
            let when_full = w.buffers.get(&to).map(|b| b.when_full).unwrap_or_default();
            // Validation rejects an input listed twice, so the position is unique.
            let position = inputs_of(p, &to).iter().position(|i| i == id)?;
            let output = Output {
                tx,
                when_full,
                edge: EdgeMetrics::new(&p.name, id, &to),
            };
            Some((output, position))
        })
        .collect();
    Emitter::with_input_positions(outputs, metrics)
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use sluice_core::arrow_array::{Int64Array, RecordBatch};

    use super::*;

    const PIPELINE: &str = "sources:
  a:
    type: mqtt
    url: mqtt://127.0.0.1:1883
    topics: [a]
    schema: { v: int64 }
  b:
    type: mqtt
    url: mqtt://127.0.0.1:1883
    topics: [b]
    schema: { v: int64 }
sinks:
  first: { type: console, inputs: [a, b] }
  second: { type: console, inputs: [b, a] }
";

    #[tokio::test]
    async fn deliveries_carry_the_producer_position_in_each_consumer_inputs() {
        let p = sluice_config::load_str::<sluice_plugins::Catalog>(Path::new("p.yaml"), PIPELINE)
            .unwrap();
        let mut w = Wiring {
            txs: HashMap::new(),
            rxs: HashMap::new(),
            buffers: HashMap::new(),
        };
        for id in ["first", "second"] {
            let (tx, rx) = mpsc::channel(4);
            w.txs.insert(id.to_owned(), tx);
            w.rxs.insert(id.to_owned(), rx);
        }
        let metrics = ComponentMetrics::new(ComponentLabels::new(
            "p",
            "b",
            ComponentKind::Source,
            "mqtt",
        ));
        let mut out = emitter(&p, "b", &w, metrics);
        let batch =
            RecordBatch::try_from_iter([("v", Arc::new(Int64Array::from(vec![1])) as _)]).unwrap();
        out.emit(batch).await.unwrap();
        let first = take_rx(&mut w, "first").recv().await.unwrap();
        let second = take_rx(&mut w, "second").recv().await.unwrap();
        assert_eq!((first.input, second.input), (1, 0));
    }
}
