//! Readiness flags that sources raise once they are connected.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Shared flag: `true` once a source is connected and receiving.
#[derive(Debug, Clone, Default)]
pub struct ReadyFlag(Arc<AtomicBool>);

impl ReadyFlag {
    /// A new flag, initially not ready.
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks the owner ready or not ready.
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Release);
    }

    /// Whether the owner is ready.
    pub fn get(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}
