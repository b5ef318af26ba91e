//! Admin HTTP server: health, readiness, Prometheus metrics and pipeline
//! status.
//!
//! | route | answer |
//! |---|---|
//! | `GET /healthz` | `200 ok` while the process runs |
//! | `GET /readyz` | `200` when every registered readiness flag is set and no pipeline is starting or failed, else `503`; JSON body listing what is not ready |
//! | `GET /metrics` | Prometheus text format |
//! | `GET /status` | JSON: version, uptime, pipelines, their state and components' readiness |
//!
//! The runtime installs the recorder once ([`install_recorder`]), builds an
//! [`AdminState`] from the handle, registers readiness flags and pipeline
//! states on it, and runs [`serve`] on a listener from [`bind`].
#![warn(missing_docs)]

mod routes;
mod state;

use std::net::SocketAddr;
use std::time::Duration;

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use routes::{PROMETHEUS_CONTENT_TYPE, router};
pub use state::{
    AdminState, ComponentStatus, NotReady, PipelineState, PipelineStatus, Readiness, Status,
};

/// Bucket bounds of every `*_seconds` histogram: 100 µs to 10 s, which spans
/// one batch through a light transform up to a model inference.
pub const SECONDS_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// How often histogram upkeep runs so their sample storage stays bounded.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Failures of the admin server.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The admin address is taken by another process.
    #[error("admin address {addr} is in use; pass --admin <ip:port> to choose another")]
    AddrInUse {
        /// The address that was asked for.
        addr: SocketAddr,
    },
    /// The admin address could not be bound for another reason.
    #[error("cannot bind admin address {addr}: {source}")]
    Bind {
        /// The address that was asked for.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Building or installing the Prometheus recorder failed (for example a
    /// recorder is already installed).
    #[error("installing the Prometheus recorder: {0}")]
    Recorder(#[from] BuildError),
    /// The HTTP server stopped with an I/O error.
    #[error("admin server failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// A Prometheus builder with the gateway's histogram buckets. Tests build a
/// local recorder from it (`build_recorder()`), since the global one can be
/// installed only once per process.
pub fn prometheus_builder() -> Result<PrometheusBuilder, AdminError> {
    Ok(PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS_BUCKETS)?)
}

/// Installs the global Prometheus recorder, then runs `describe` to
/// register the help texts (the catalog's `describe_metrics`). Call once per
/// process, before any component builds its metric handles.
pub fn install_recorder(describe: fn()) -> Result<PrometheusHandle, AdminError> {
    let handle = prometheus_builder()?.install_recorder()?;
    describe();
    Ok(handle)
}

/// Binds the admin listener; port 0 picks a free port.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, AdminError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::AddrInUse => AdminError::AddrInUse { addr },
            _ => AdminError::Bind { addr, source },
        })
}

/// Serves the admin routes on `listener` until `shutdown` fires, then lets
/// in-flight requests finish. Histogram upkeep runs on a task that ends with
/// the server.
pub async fn serve(
    listener: TcpListener,
    state: AdminState,
    shutdown: CancellationToken,
) -> Result<(), AdminError> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "admin server listening");
    }
    // A child token: the server can also stop on its own error, and the upkeep
    // task must not outlive it, without cancelling the caller's token.
    let stop_upkeep = shutdown.child_token();
    let upkeep = tokio::spawn(run_upkeep(state.prometheus().clone(), stop_upkeep.clone()));
    let served = axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .map_err(AdminError::Serve);
    stop_upkeep.cancel();
    if let Err(e) = upkeep.await {
        tracing::warn!(error = %e, "admin metrics upkeep task ended abnormally");
    }
    served
}

async fn run_upkeep(handle: PrometheusHandle, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(UPKEEP_INTERVAL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => handle.run_upkeep(),
        }
    }
}

#[cfg(test)]
mod tests;
