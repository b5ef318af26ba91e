//! What the admin server reports: pipeline states and the readiness flags of
//! their components, updated by the runtime and read by the HTTP handlers.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use sluice_core::ReadyFlag;

/// Lifecycle of one pipeline as the admin API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PipelineState {
    /// Being built or started; not ready yet.
    Starting,
    /// All components are running.
    Running,
    /// A component failed in a way retrying cannot fix; the pipeline stopped.
    Failed(String),
    /// Stopped on purpose (shutdown or replaced by a reload).
    Stopped,
}

impl PipelineState {
    /// The `state` value in JSON bodies.
    pub fn as_str(&self) -> &'static str {
        match self {
            PipelineState::Starting => "starting",
            PipelineState::Running => "running",
            PipelineState::Failed(_) => "failed",
            PipelineState::Stopped => "stopped",
        }
    }
}

#[derive(Debug)]
struct PipelineEntry {
    state: PipelineState,
    /// In registration order, which is the order the status lists them in.
    components: Vec<(String, ReadyFlag)>,
}

impl PipelineEntry {
    fn new(state: PipelineState) -> Self {
        Self {
            state,
            components: Vec::new(),
        }
    }
}

#[derive(Debug)]
struct Inner {
    handle: PrometheusHandle,
    started: Instant,
    pipelines: Mutex<BTreeMap<String, PipelineEntry>>,
}

/// Shared state of the admin server. Cloning is cheap; every clone sees the
/// same registry.
#[derive(Debug, Clone)]
pub struct AdminState {
    inner: Arc<Inner>,
}

/// One reason the process is not ready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotReady {
    /// Pipeline name.
    pub pipeline: String,
    /// The component that is not ready, or `None` when the pipeline itself is
    /// the reason (starting or failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component_id: Option<String>,
    /// Why, for a person reading the `/readyz` body.
    pub reason: String,
}

/// The answer of `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Readiness {
    /// Every registered flag is set and no pipeline is starting or failed.
    pub ready: bool,
    /// What is not ready; empty when `ready`.
    pub not_ready: Vec<NotReady>,
}

/// One component in `/status`.
#[derive(Debug, Clone, Serialize)]
pub struct ComponentStatus {
    /// Component id.
    pub id: String,
    /// Whether its readiness flag is set.
    pub ready: bool,
}

/// One pipeline in `/status`.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineStatus {
    /// Pipeline name.
    pub name: String,
    /// `starting`, `running`, `failed` or `stopped`.
    pub state: &'static str,
    /// The failure message when `state` is `failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Components that registered a readiness flag.
    pub components: Vec<ComponentStatus>,
}

/// The answer of `/status`.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Version of the gateway.
    pub version: &'static str,
    /// Seconds since the admin state was created.
    pub uptime_seconds: u64,
    /// Same as `/readyz`.
    pub ready: bool,
    /// Pipelines sorted by name.
    pub pipelines: Vec<PipelineStatus>,
}

impl AdminState {
    /// State rendering metrics from `handle`, with no pipelines yet.
    pub fn new(handle: PrometheusHandle) -> Self {
        Self {
            inner: Arc::new(Inner {
                handle,
                started: Instant::now(),
                pipelines: Mutex::new(BTreeMap::new()),
            }),
        }
    }

    /// The Prometheus handle `/metrics` renders.
    pub fn prometheus(&self) -> &PrometheusHandle {
        &self.inner.handle
    }

    fn pipelines(&self) -> MutexGuard<'_, BTreeMap<String, PipelineEntry>> {
        // The map stays consistent even if a holder panicked: every update is a
        // single insert or assignment.
        self.inner
            .pipelines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers the readiness flag of `component_id` in `pipeline`, replacing
    /// an earlier flag of the same component (a restarted source brings a new
    /// one). An unknown pipeline is added in the `Starting` state.
    pub fn register_ready(&self, pipeline: &str, component_id: &str, flag: ReadyFlag) {
        let mut pipelines = self.pipelines();
        let entry = pipelines
            .entry(pipeline.to_owned())
            .or_insert_with(|| PipelineEntry::new(PipelineState::Starting));
        match entry
            .components
            .iter_mut()
            .find(|(id, _)| id == component_id)
        {
            Some((_, existing)) => *existing = flag,
            None => entry.components.push((component_id.to_owned(), flag)),
        }
    }

    /// Sets the state of `pipeline`, adding it when unknown. Setting
    /// `Starting` before building lets `/readyz` report not-ready until the
    /// runtime says `Running`.
    pub fn set_pipeline_state(&self, pipeline: &str, state: PipelineState) {
        let mut pipelines = self.pipelines();
        match pipelines.get_mut(pipeline) {
            Some(entry) => entry.state = state,
            None => {
                pipelines.insert(pipeline.to_owned(), PipelineEntry::new(state));
            }
        }
    }

    /// Forgets `pipeline` and its flags (removed by a reload).
    pub fn remove_pipeline(&self, pipeline: &str) {
        self.pipelines().remove(pipeline);
    }

    /// Ready when no pipeline is starting or failed and every component of a
    /// running pipeline has its flag set. Stopped pipelines are ignored: they
    /// were stopped on purpose and their flags are stale.
    pub fn readiness(&self) -> Readiness {
        let pipelines = self.pipelines();
        let mut not_ready = Vec::new();
        for (name, entry) in pipelines.iter() {
            let reason = match &entry.state {
                PipelineState::Stopped => continue,
                PipelineState::Starting => Some("starting".to_owned()),
                PipelineState::Failed(message) => Some(format!("failed: {message}")),
                PipelineState::Running => None,
            };
            if let Some(reason) = reason {
                not_ready.push(NotReady {
                    pipeline: name.clone(),
                    component_id: None,
                    reason,
                });
            }
            for (id, flag) in &entry.components {
                if !flag.get() {
                    not_ready.push(NotReady {
                        pipeline: name.clone(),
                        component_id: Some(id.clone()),
                        reason: "not connected".to_owned(),
                    });
                }
            }
        }
        Readiness {
            ready: not_ready.is_empty(),
            not_ready,
        }
    }

    /// Snapshot of every pipeline for `/status`.
    pub fn status(&self) -> Status {
        let ready = self.readiness().ready;
        let pipelines = self
            .pipelines()
            .iter()
            .map(|(name, entry)| PipelineStatus {
                name: name.clone(),
                state: entry.state.as_str(),
                message: match &entry.state {
                    PipelineState::Failed(m) => Some(m.clone()),
                    _ => None,
                },
                components: entry
                    .components
                    .iter()
                    .map(|(id, flag)| ComponentStatus {
                        id: id.clone(),
                        ready: flag.get(),
                    })
                    .collect(),
            })
            .collect();
        Status {
            version: env!("CARGO_PKG_VERSION"),
            uptime_seconds: self.inner.started.elapsed().as_secs(),
            ready,
            pipelines,
        }
    }
}

#[cfg(test)]
mod tests {
    use metrics_exporter_prometheus::PrometheusBuilder;

    use super::*;

    fn state() -> AdminState {
        AdminState::new(PrometheusBuilder::new().build_recorder().handle())
    }

    #[test]
    fn is_ready_with_no_pipelines() {
        assert_eq!(
            state().readiness(),
            Readiness {
                ready: true,
                not_ready: vec![]
            }
        );
    }

    #[test]
    fn is_not_ready_until_every_flag_of_a_running_pipeline_is_set() {
        let s = state();
        let a = ReadyFlag::new();
        let b = ReadyFlag::new();
        s.register_ready("line1", "telemetry", a.clone());
        s.register_ready("line1", "scans", b.clone());
        s.set_pipeline_state("line1", PipelineState::Running);
        a.set(true);
        let r = s.readiness();
        assert!(!r.ready);
        assert_eq!(
            r.not_ready,
            vec![NotReady {
                pipeline: "line1".into(),
                component_id: Some("scans".into()),
                reason: "not connected".into()
            }]
        );
        b.set(true);
        assert!(s.readiness().ready);
    }

    #[test]
    fn a_starting_or_failed_pipeline_is_not_ready() {
        let s = state();
        s.set_pipeline_state("a", PipelineState::Starting);
        s.set_pipeline_state("b", PipelineState::Failed("bad query".into()));
        let reasons: Vec<_> = s
            .readiness()
            .not_ready
            .into_iter()
            .map(|n| n.reason)
            .collect();
        assert_eq!(
            reasons,
            vec!["starting".to_owned(), "failed: bad query".to_owned()]
        );
    }

    #[test]
    fn stopped_and_removed_pipelines_do_not_block_readiness() {
        let s = state();
        s.register_ready("old", "src", ReadyFlag::new());
        s.set_pipeline_state("old", PipelineState::Stopped);
        assert!(s.readiness().ready);
        s.register_ready("gone", "src", ReadyFlag::new());
        s.remove_pipeline("gone");
        assert!(s.readiness().ready);
        assert_eq!(s.status().pipelines.len(), 1);
    }

    #[test]
    fn registering_a_component_again_replaces_its_flag() {
        let s = state();
        s.register_ready("p", "src", ReadyFlag::new());
        let fresh = ReadyFlag::new();
        fresh.set(true);
        s.register_ready("p", "src", fresh);
        s.set_pipeline_state("p", PipelineState::Running);
        let status = s.status();
        assert_eq!(status.pipelines[0].components.len(), 1);
        assert!(status.pipelines[0].components[0].ready);
        assert!(status.ready);
    }

    #[test]
    fn status_reports_failure_message() {
        let s = state();
        s.set_pipeline_state("p", PipelineState::Failed("model missing".into()));
        let json = serde_json::to_value(s.status()).unwrap();
        assert_eq!(json["pipelines"][0]["state"], "failed");
        assert_eq!(json["pipelines"][0]["message"], "model missing");
        assert_eq!(json["ready"], false);
    }
}
