//! Counting and rate-limited logging of dropped messages.

use std::time::Duration;

use tokio::time::Instant;

use crate::decode::DropReason;

/// At most one warning per reason in this interval.
const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Drops since the last flush, per reason, plus the log rate limiter.
#[derive(Debug, Default)]
pub(crate) struct Drops {
    counts: [u64; 3],
    last_log: [Option<Instant>; 3],
    suppressed: [u64; 3],
}

impl Drops {
    /// Records one drop. Returns the number of drops of that reason that were
    /// not logged since the last log line, when this one should be logged.
    pub(crate) fn record(&mut self, reason: DropReason, now: Instant) -> Option<u64> {
        let i = reason.index();
        self.counts[i] += 1;
        let due = self.last_log[i].is_none_or(|t| now.duration_since(t) >= LOG_INTERVAL);
        if due {
            self.last_log[i] = Some(now);
            Some(std::mem::take(&mut self.suppressed[i]))
        } else {
            self.suppressed[i] += 1;
            None
        }
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
