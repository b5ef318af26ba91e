//! Test helpers shared by every crate (as a dev-dependency): a real Mosquitto
//! on loopback, unique names, bounded waits, metric capture and the shared
//! component harness with its contract checks (`run_transform`,
//! `run_source`, `run_sink`).
//!
//! ```no_run
//! use std::time::Duration;
//!
//! #[tokio::test]
//! async fn receives_messages() {
//!     sluice_testkit::require_mosquitto!();
//!     let broker = sluice_testkit::Mosquitto::start().unwrap();
//!     let topic = sluice_testkit::unique_id("test/topic");
//!     // ... publish to `broker.url()` on `topic`, then:
//!     sluice_testkit::wait_until(Duration::from_secs(5), Duration::from_millis(10), || true)
//!         .await
//!         .unwrap();
//! }
//! ```
#![warn(missing_docs)]

pub mod harness;
pub mod metrics;
pub mod mosquitto;
pub mod sink;
pub mod source;
pub mod wait;

use std::sync::atomic::{AtomicU64, Ordering};

pub use crate::harness::{TransformHarness, run_transform};
pub use crate::metrics::MetricsCapture;
pub use crate::mosquitto::{Mosquitto, gate_mosquitto, is_ci, mosquitto_available};
pub use crate::sink::{SinkHarness, run_sink};
pub use crate::source::{SourceHarness, run_source};
pub use crate::wait::{WaitTimeout, wait_until, wait_until_async};

/// A name unique to this test run: `<prefix>-<random hex>-<counter>`. Use it
/// for topics, client ids and pipeline names so parallel tests never collide,
/// also across test binaries sharing one broker.
pub fn unique_id(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let r: u32 = rand::random();
    format!("{prefix}-{r:08x}-{n}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_ids_differ_and_keep_the_prefix() {
        let a = unique_id("t");
        let b = unique_id("t");
        assert_ne!(a, b);
        assert!(a.starts_with("t-") && b.starts_with("t-"));
    }
}
