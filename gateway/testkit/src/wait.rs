//! Bounded waiting on conditions, instead of bare sleeps.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// A condition did not become true in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitTimeout {
    /// How long was waited.
    pub waited: Duration,
}

impl fmt::Display for WaitTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "condition not met within {:?}", self.waited)
    }
}

impl std::error::Error for WaitTimeout {}

/// Checks `cond` every `interval` until it returns `true` or `timeout` passes.
/// The condition is always checked at least once, and once more at the deadline.
pub async fn wait_until(
    timeout: Duration,
    interval: Duration,
    mut cond: impl FnMut() -> bool,
) -> Result<(), WaitTimeout> {
    wait_until_async(timeout, interval, || std::future::ready(cond())).await
}

/// Like [`wait_until`] with an async condition.
pub async fn wait_until_async<F, Fut>(
    timeout: Duration,
    interval: Duration,
    mut cond: F,
) -> Result<(), WaitTimeout>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    let deadline = start + timeout;
    loop {
        if cond().await {
            return Ok(());
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(WaitTimeout {
                waited: now - start,
            });
        }
        tokio::time::sleep_until((now + interval).min(deadline)).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn returns_as_soon_as_the_condition_holds() {
        let calls = AtomicU32::new(0);
        let start = Instant::now();
        wait_until(Duration::from_secs(5), Duration::from_millis(100), || {
            calls.fetch_add(1, Ordering::Relaxed) == 3
        })
        .await
        .unwrap();
        assert_eq!(calls.load(Ordering::Relaxed), 4);
        assert_eq!(start.elapsed(), Duration::from_millis(300));
    }

    #[tokio::test(start_paused = true)]
    async fn times_out_after_checking_at_the_deadline() {
        let calls = Arc::new(AtomicU32::new(0));
        let c = calls.clone();
        let err = wait_until(
            Duration::from_millis(250),
            Duration::from_millis(100),
            move || {
                c.fetch_add(1, Ordering::Relaxed);
                false
            },
        )
        .await
        .unwrap_err();
        assert_eq!(err.waited, Duration::from_millis(250));
        // t = 0, 100, 200, 250
        assert_eq!(calls.load(Ordering::Relaxed), 4);
    }
}
