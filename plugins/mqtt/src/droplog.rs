//! Counting and rate-limited logging of dropped messages.

use std::time::Duration;

use sluice_core::LogLimiter;
use tokio::time::Instant;

use crate::decode::DropReason;

/// At most one warning per reason in this interval.
const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Drops since the last flush, per reason, plus the log rate limiter.
#[derive(Debug)]
pub(crate) struct Drops {
    counts: [u64; 3],
    logs: [LogLimiter; 3],
}

impl Default for Drops {
    fn default() -> Self {
        Self {
            counts: [0; 3],
            logs: std::array::from_fn(|_| LogLimiter::new(LOG_INTERVAL)),
        }
    }
}

impl Drops {
    /// Records one drop. Returns the number of drops of that reason that were
    /// not logged since the last log line, when this one should be logged.
    pub(crate) fn record(&mut self, reason: DropReason, now: Instant) -> Option<u64> {
        let i = reason.index();
        self.counts[i] += 1;
        self.logs[i].check(now)
    }

    /// Drops since the last call, per reason; resets the counts.
    pub(crate) fn take_counts(&mut self) -> impl Iterator<Item = (DropReason, u64)> + use<> {
        let counts = std::mem::take(&mut self.counts);
        DropReason::ALL
            .into_iter()
            .zip(counts)
            .filter(|(_, n)| *n > 0)
    }

    /// Whether anything was dropped since the last [`Drops::take_counts`].
    pub(crate) fn any(&self) -> bool {
        self.counts.iter().any(|n| *n > 0)
    }

    /// Total drops since the last [`Drops::take_counts`].
    pub(crate) fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_once_per_reason_per_interval_and_reports_suppressed() {
        let mut d = Drops::default();
        let t0 = Instant::now();
        assert_eq!(d.record(DropReason::MalformedJson, t0), Some(0));
        assert_eq!(
            d.record(DropReason::MalformedJson, t0 + Duration::from_secs(1)),
            None
        );
        assert_eq!(
            d.record(DropReason::MissingField, t0 + Duration::from_secs(1)),
            Some(0)
        );
        assert_eq!(
            d.record(DropReason::MalformedJson, t0 + Duration::from_secs(2)),
            None
        );
        assert_eq!(
            d.record(DropReason::MalformedJson, t0 + LOG_INTERVAL),
            Some(2)
        );
        assert_eq!(d.total(), 5);
        let counts: Vec<_> = d.take_counts().collect();
        assert_eq!(
            counts,
            vec![
                (DropReason::MalformedJson, 4),
                (DropReason::MissingField, 1)
            ]
        );
        assert!(!d.any());
    }
}
