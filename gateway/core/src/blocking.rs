//! Running CPU-heavy work off the async reactor.

use crate::error::ComponentError;

/// Runs `f` on tokio's blocking pool so MQTT keep-alives and the admin API stay
/// responsive while SQL, inference or generation runs.
pub async fn blocking<F, R>(f: F) -> Result<R, ComponentError>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        ComponentError::internal("blocking_task", format!("blocking task failed: {e}"))
    })
}
