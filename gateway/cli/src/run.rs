//! `sluice run`: load, start, wait for a signal, drain.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::{Catalog, Pipeline};
use anyhow::Context;
use sluice_admin::AdminState;
use sluice_broker::EmbeddedBroker;
use sluice_topology::{PipelineState, RunningPipeline};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::RuntimeArgs;

/// Runs `fut` on a multi-threaded runtime and turns errors into exit code 1.
pub fn block_on(fut: impl Future<Output = anyhow::Result<ExitCode>>) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(fut) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => info!("Received SIGTERM; shutting down."),
                    _ = int.recv() => info!("Received SIGINT; shutting down."),
                }
            }
            _ => {
                tokio::signal::ctrl_c().await.ok();
            }
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.ok();
    }
}

/// Loads one file, printing its warnings or all of its diagnostics.
pub fn load_reporting(file: &Path) -> Option<Pipeline> {
    match sluice_config::load_file::<Catalog>(file) {
        Ok(p) => {
            for w in &p.warnings {
                eprintln!("{w}");
            }
            Some(p)
        }
        Err(d) => {
            eprintln!("{d}");
            None
        }
    }
}

/// Loads every file, printing all diagnostics; fails if any file has errors.
pub fn load_all(files: &[PathBuf]) -> anyhow::Result<Vec<Pipeline>> {
    let loaded: Vec<Option<Pipeline>> = files.iter().map(|f| load_reporting(f)).collect();
    let failed = loaded.iter().any(Option::is_none);
    let pipelines = loaded.into_iter().flatten().collect();
    anyhow::ensure!(
        !failed,
        "invalid pipeline configuration; nothing was started"
    );
    Ok(pipelines)
}

/// `sluice run`.
pub async fn run(files: Vec<PathBuf>, rt: RuntimeArgs) -> anyhow::Result<ExitCode> {
    let pipelines = load_all(&files)?;
    let gateway = Gateway::start(pipelines, &rt).await?;
    gateway.run_until(shutdown_signal(), &rt).await
}

/// The running process: brokers, pipelines and the admin server.
pub struct Gateway {
    pipelines: Vec<RunningPipeline>,
    _brokers: Vec<EmbeddedBroker>,
    admin_state: AdminState,
    admin: Option<(CancellationToken, JoinHandle<()>)>,
}

impl Gateway {
    /// Starts brokers, the admin server and every pipeline. If any pipeline
    /// fails to build, the ones already started are stopped again.
    pub async fn start(pipelines: Vec<Pipeline>, rt: &RuntimeArgs) -> anyhow::Result<Self> {
        let prometheus = sluice_admin::install_recorder(sluice_plugins::describe_metrics)
            .context("installing the metrics recorder")?;
        let admin_state = AdminState::new(prometheus);
        // Known before the admin server answers, so `/readyz` is never
        // ready before the pipelines are.
        for p in &pipelines {
            admin_state.set_pipeline_state(&p.name, sluice_admin::PipelineState::Starting);
        }
        let admin = if rt.no_admin {
            None
        } else {
            let listener = sluice_admin::bind(rt.admin).await?;
            let token = CancellationToken::new();
            let (state, t) = (admin_state.clone(), token.clone());
            info!(addr = %rt.admin, "Admin server listening.");
            let handle = tokio::spawn(async move {
                if let Err(e) = sluice_admin::serve(listener, state, t).await {
                    error!(error = %e, "Admin server stopped.");
                }
            });
            Some((token, handle))
        };

        let mut brokers = Vec::new();
        for p in &pipelines {
            if let Some(cfg) = &p.broker {
                let b = start_broker(cfg.clone()).await.with_context(|| {
                    format!("pipeline `{}`: starting the embedded broker", p.name)
                })?;
                info!(pipeline = %p.name, addr = %b.addr(), "Embedded MQTT broker listening.");
                brokers.push(b);
            }
        }

        let mut running: Vec<RunningPipeline> = Vec::new();
        for p in &pipelines {
            match RunningPipeline::start(p) {
                Ok(r) => {
                    for (id, flag) in r.ready_flags() {
                        admin_state.register_ready(r.name(), id, flag.clone());
                    }
                    watch_state(&admin_state, &r);
                    running.push(r);
                }
                Err(e) => {
                    for r in running {
                        r.shutdown(rt.shutdown_timeout).await;
                    }
                    return Err(e.into());
                }
            }
        }
        Ok(Self {
            pipelines: running,
            _brokers: brokers,
            admin_state,
            admin,
        })
    }

    /// Runs until `stop` resolves or every pipeline has finished on its own,
    /// then drains everything within the shutdown timeout.
    pub async fn run_until(
        mut self,
        stop: impl Future<Output = ()>,
        rt: &RuntimeArgs,
    ) -> anyhow::Result<ExitCode> {
        let states: Vec<_> = self.pipelines.iter().map(|p| p.state()).collect();
        {
            let all_done = futures_join_all(&mut self.pipelines);
            tokio::select! {
                _ = stop => {}
                _ = all_done => info!("Every pipeline has finished."),
            }
        }
        let timeout = rt.shutdown_timeout;
        let reports = futures_shutdown_all(self.pipelines, timeout).await;
        if let Some(path) = &rt.metrics_dump {
            std::fs::write(path, self.admin_state.prometheus().render())
                .with_context(|| format!("writing final metrics to {}", path.display()))?;
        }
        if let Some((token, handle)) = self.admin {
            token.cancel();
            if let Err(e) = handle.await {
                warn!(error = %e, "Admin server task ended abnormally.");
            }
        }
        let mut code = ExitCode::SUCCESS;
        for s in states {
            if let PipelineState::Failed(msg) = &*s.borrow() {
                error!(error = %msg, "Pipeline failed.");
                code = ExitCode::FAILURE;
            }
        }
        if reports.iter().any(|r| !r.stuck.is_empty()) {
            warn!("Some components did not drain before the shutdown deadline.");
            code = ExitCode::FAILURE;
        }
        Ok(code)
    }
}

/// Starts an embedded broker off the reactor (start-up waits for the broker
/// to answer a real MQTT CONNECT).
pub async fn start_broker(cfg: sluice_broker::BrokerConfig) -> anyhow::Result<EmbeddedBroker> {
    Ok(tokio::task::spawn_blocking(move || EmbeddedBroker::start(&cfg)).await??)
}

async fn futures_join_all(pipelines: &mut [RunningPipeline]) {
    for p in pipelines.iter_mut() {
        p.wait().await;
    }
}

async fn futures_shutdown_all(
    pipelines: Vec<RunningPipeline>,
    timeout: std::time::Duration,
) -> Vec<sluice_topology::ShutdownReport> {
    let handles: Vec<_> = pipelines
        .into_iter()
        .map(|p| tokio::spawn(p.shutdown(timeout)))
        .collect();
    let mut reports = Vec::new();
    for h in handles {
        if let Ok(r) = h.await {
            reports.push(r);
        }
    }
    reports
}

/// Mirrors a pipeline's state into the admin server.
fn watch_state(admin: &AdminState, p: &RunningPipeline) {
    let mut rx = p.state();
    let admin = admin.clone();
    let name = p.name().to_owned();
    tokio::spawn(async move {
        loop {
            let state = rx.borrow_and_update().clone();
            admin.set_pipeline_state(&name, to_admin_state(&state));
            if rx.changed().await.is_err() {
                break;
            }
        }
    });
}

fn to_admin_state(s: &PipelineState) -> sluice_admin::PipelineState {
    match s {
        PipelineState::Running => sluice_admin::PipelineState::Running,
        PipelineState::Failed(m) => sluice_admin::PipelineState::Failed(m.clone()),
        PipelineState::Stopped => sluice_admin::PipelineState::Stopped,
    }
}
