//! Window state: rows buffered per pane, the watermark, and which windows are
//! due. Pure bookkeeping with no SQL, so it can be tested on its own.
//!
//! Invariants:
//! - every window starting before pane `next_open` has been closed, and no pane
//!   below `next_open` is kept: a row whose pane is below it is late (every
//!   window that contains it has already been emitted);
//! - windows close in start order, each exactly once;
//! - memory is the buffered input slices of the open panes; a row is stored
//!   once even when sliding windows overlap.

use std::collections::BTreeMap;

use datafusion::arrow::array::{Array, RecordBatch, TimestampMillisecondArray, UInt32Array};
use datafusion::arrow::compute::take_record_batch;
use datafusion::arrow::error::ArrowError;

use crate::window::WindowSpec;

/// Above this many runs of equal panes in one batch, rows are gathered per
/// pane with `take` instead of being kept as many tiny slices.
const MAX_SLICES_PER_BATCH: usize = 8;

/// Pane marker of rows without an event time. A real timestamp only maps to it
/// at `i64::MIN` ms with 1 ms panes, which is no meaningful time either.
const NO_TIME: i64 = i64::MIN;

/// Rows of one closed window, ready for the query.
#[derive(Debug)]
pub struct ClosedWindow {
    /// Inclusive start, ms since the epoch.
    pub start_ms: i64,
    /// Exclusive end, ms since the epoch.
    pub end_ms: i64,
    /// The window's rows as buffered slices.
    pub batches: Vec<RecordBatch>,
    /// Number of rows in `batches`.
    pub rows: usize,
}

/// What happened to the rows of one input batch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Inserted {
    /// Rows that belong only to closed windows and were dropped.
    pub late: usize,
    /// Rows without an event time, dropped.
    pub no_time: usize,
}

#[derive(Debug, Default)]
struct Pane {
    batches: Vec<RecordBatch>,
    rows: usize,
}

/// Buffered panes and the watermark of one windowed transform.
#[derive(Debug)]
pub struct Panes {
    spec: WindowSpec,
    panes: BTreeMap<i64, Pane>,
    next_open: i64,
    watermark: Option<i64>,
    max_event_ms: Option<i64>,
    buffered_rows: usize,
    /// Pane index per row of the batch being inserted; reused across batches.
    scratch: Vec<i64>,
}

impl Panes {
    /// Empty state for `spec`.
    pub fn new(spec: WindowSpec) -> Self {
        Self {
            spec,
            panes: BTreeMap::new(),
            next_open: i64::MIN,
            watermark: None,
            max_event_ms: None,
            buffered_rows: 0,
            scratch: Vec::new(),
        }
    }

    /// Rows currently buffered.
    pub fn buffered_rows(&self) -> usize {
        self.buffered_rows
    }

    /// The newest event time seen, in ms.
    pub fn max_event_ms(&self) -> Option<i64> {
        self.max_event_ms
    }

    fn pane_of(&self, ts_ms: i64) -> i64 {
        ts_ms.div_euclid(self.spec.pane_ms)
    }

    fn push(&mut self, pane: i64, batch: RecordBatch) {
        let rows = batch.num_rows();
        if rows == 0 {
            return;
        }
        let p = self.panes.entry(pane).or_default();
        p.rows += rows;
        p.batches.push(batch);
        self.buffered_rows += rows;
    }

    /// Buffers `batch` whose event times are `ts` (same length), then moves the
    /// watermark to the newest event time minus the allowed lateness.
    ///
    /// Lateness is judged against the windows closed before this batch, so a
    /// batch is treated as arriving at once.
    pub fn insert_event_time(
        &mut self,
        batch: &RecordBatch,
        ts: &TimestampMillisecondArray,
    ) -> Result<Inserted, ArrowError> {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let pane_ms = self.spec.pane_ms;
        let mut max_ts: Option<i64> = None;
        if ts.null_count() == 0 {
            scratch.extend(ts.values().iter().map(|t| t.div_euclid(pane_ms)));
            max_ts = ts.values().iter().copied().max();
        } else {
            for t in ts.iter() {
                match t {
                    Some(t) => {
                        scratch.push(t.div_euclid(pane_ms));
                        max_ts = Some(max_ts.map_or(t, |m: i64| m.max(t)));
                    }
                    None => scratch.push(NO_TIME),
                }
            }
        }
        let result = self.insert_by_pane(batch, &scratch);
        self.scratch = scratch;
        if let Some(m) = max_ts {
            self.observe_event_time(m);
        }
        result
    }

    /// Notes an event at `ts_ms` seen on any input: moves the newest event
    /// time and, with it, the watermark.
    pub fn observe_event_time(&mut self, ts_ms: i64) {
        self.max_event_ms = Some(self.max_event_ms.map_or(ts_ms, |x| x.max(ts_ms)));
        self.advance_watermark(ts_ms.saturating_sub(self.spec.lateness_ms));
    }

    /// Start of the earliest window that is still open, in ms (`i64::MIN`
    /// before any window closed): no later-closing window starts before it.
    pub fn open_from_ms(&self) -> i64 {
        self.next_open.saturating_mul(self.spec.pane_ms)
    }

    fn insert_by_pane(
        &mut self,
        batch: &RecordBatch,
        panes: &[i64],
    ) -> Result<Inserted, ArrowError> {
        let mut out = Inserted::default();
        let runs = 1 + panes.windows(2).filter(|w| w[0] != w[1]).count();
        if runs <= MAX_SLICES_PER_BATCH {
            let mut start = 0;
            while start < panes.len() {
                let pane = panes[start];
                let len = panes[start..].iter().take_while(|p| **p == pane).count();
                if !self.reject(pane, len, &mut out) {
                    self.push(pane, batch.slice(start, len));
                }
                start += len;
            }
            return Ok(out);
        }
        let mut groups: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
        for (row, pane) in panes.iter().enumerate() {
            let row = u32::try_from(row).map_err(|_| {
                ArrowError::ComputeError("batch has more than u32::MAX rows".into())
            })?;
            groups.entry(*pane).or_default().push(row);
        }
        for (pane, rows) in groups {
            if !self.reject(pane, rows.len(), &mut out) {
                self.push(pane, take_record_batch(batch, &UInt32Array::from(rows))?);
            }
        }
        Ok(out)
    }

    /// Counts `len` rows of `pane` as dropped when the pane is not open.
    fn reject(&self, pane: i64, len: usize, out: &mut Inserted) -> bool {
        if pane == NO_TIME {
            out.no_time += len;
            true
        } else if pane < self.next_open {
            out.late += len;
            true
        } else {
            false
        }
    }

    /// Buffers all of `batch` at processing time `now_ms`; the watermark is
    /// the clock itself, so nothing is late unless the clock went back.
    pub fn insert_at(&mut self, batch: RecordBatch, now_ms: i64) -> Inserted {
        let mut out = Inserted::default();
        let pane = self.pane_of(now_ms);
        if !self.reject(pane, batch.num_rows(), &mut out) {
            self.push(pane, batch);
        }
        out
    }

    /// Moves the watermark forward to `wm` (never backwards).
    pub fn advance_watermark(&mut self, wm: i64) {
        self.watermark = Some(self.watermark.map_or(wm, |w| w.max(wm)));
    }

    /// Takes every window whose end is at or before the watermark.
    pub fn take_due(&mut self) -> Vec<ClosedWindow> {
        match self.watermark {
            // Window `s` ends at `(s + k) * pane_ms`, so it is due iff
            // `s <= floor(wm / pane_ms) - k`.
            Some(wm) => self.close_through(
                wm.div_euclid(self.spec.pane_ms)
                    .saturating_sub(self.spec.panes_per_window),
            ),
            None => Vec::new(),
        }
    }

    /// Takes every window that holds at least one row, regardless of the
    /// watermark (shutdown flush).
    pub fn take_all(&mut self) -> Vec<ClosedWindow> {
        match self.panes.keys().next_back() {
            Some(&last) => self.close_through(last),
            None => Vec::new(),
        }
    }

    /// Drops every buffered row; returns how many there were.
    pub fn clear(&mut self) -> usize {
        self.panes.clear();
        std::mem::take(&mut self.buffered_rows)
    }

    /// Closes every window starting at pane `<= last_start` and forgets the
    /// panes no open window needs.
    fn close_through(&mut self, last_start: i64) -> Vec<ClosedWindow> {
        if last_start < self.next_open || self.next_open == i64::MAX {
            return Vec::new();
        }
        let k = self.spec.panes_per_window;
        let pane_ms = self.spec.pane_ms;
        // Only windows that contain a buffered pane produce output; the
        // watermark may have jumped over millions of empty ones.
        let mut starts: Vec<i64> = Vec::new();
        for &p in self
            .panes
            .range(..=last_start.saturating_add(k - 1))
            .map(|(p, _)| p)
        {
            let first = p.saturating_sub(k - 1).max(self.next_open);
            starts.extend(first..=p.min(last_start));
        }
        starts.sort_unstable();
        starts.dedup();
        let windows = starts
            .into_iter()
            .map(|s| {
                let mut batches = Vec::new();
                let mut rows = 0;
                let end = s.saturating_add(k);
                for (_, pane) in self.panes.range(s..end) {
                    batches.extend(pane.batches.iter().cloned());
                    rows += pane.rows;
                }
                ClosedWindow {
                    start_ms: s.saturating_mul(pane_ms),
                    end_ms: end.saturating_mul(pane_ms),
                    batches,
                    rows,
                }
            })
            .collect();
        self.next_open = last_start.saturating_add(1);
        let keep = self.panes.split_off(&self.next_open);
        let dropped: usize = std::mem::replace(&mut self.panes, keep)
            .values()
            .map(|p| p.rows)
            .sum();
        self.buffered_rows -= dropped;
        windows
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn spec(pane_ms: i64, k: i64, lateness_ms: i64) -> WindowSpec {
        WindowSpec {
            pane_ms,
            panes_per_window: k,
            lateness_ms,
            idle_timeout: Duration::from_secs(5),
        }
    }

    use crate::testutil::timed_batch as batch;

    fn insert(p: &mut Panes, ts: &[i64]) -> Inserted {
        let ts: Vec<_> = ts.iter().map(|t| Some(*t)).collect();
        let (b, t) = batch(&ts);
        p.insert_event_time(&b, &t).unwrap()
    }

    fn bounds(w: &[ClosedWindow]) -> Vec<(i64, i64, usize)> {
        w.iter().map(|w| (w.start_ms, w.end_ms, w.rows)).collect()
    }

    #[test]
    fn tumbling_window_closes_once_watermark_reaches_its_end() {
        let mut p = Panes::new(spec(10, 1, 2));
        insert(&mut p, &[1, 5, 9, 11]);
        assert!(p.take_due().is_empty());
        insert(&mut p, &[12]);
        assert_eq!(bounds(&p.take_due()), vec![(0, 10, 3)]);
        assert_eq!(p.buffered_rows(), 2);
    }

    #[test]
    fn rows_of_closed_windows_are_late_and_dropped() {
        let mut p = Panes::new(spec(10, 1, 0));
        insert(&mut p, &[3, 25]);
        assert_eq!(bounds(&p.take_due()), vec![(0, 10, 1)]);
        // Watermark 25 also closed the empty [10, 20) window: 15 is late too.
        assert_eq!(
            insert(&mut p, &[4, 15, 26]),
            Inserted {
                late: 2,
                no_time: 0
            }
        );
        assert_eq!(p.buffered_rows(), 2);
    }

    #[test]
    fn rows_without_event_time_are_counted_apart() {
        let mut p = Panes::new(spec(10, 1, 0));
        let (b, t) = batch(&[Some(1), None, Some(2)]);
        assert_eq!(
            p.insert_event_time(&b, &t).unwrap(),
            Inserted {
                late: 0,
                no_time: 1
            }
        );
        assert_eq!(p.buffered_rows(), 2);
    }

    #[test]
    fn sliding_windows_share_panes_and_skip_empty_windows() {
        let mut p = Panes::new(spec(10, 3, 0));
        insert(&mut p, &[5, 15, 1000]);
        // Pane 0 feeds windows starting at -2, -1, 0; pane 1 those at -1, 0, 1.
        // Nothing lies between pane 1 and pane 100, so those windows do not exist.
        assert_eq!(
            bounds(&p.take_due()),
            vec![(-20, 10, 1), (-10, 20, 2), (0, 30, 2), (10, 40, 1)]
        );
        assert_eq!(p.buffered_rows(), 1);
        assert_eq!(insert(&mut p, &[15, 990]).late, 1);
    }

    #[test]
    fn scattered_rows_are_grouped_per_pane() {
        let mut p = Panes::new(spec(10, 1, 0));
        let ts: Vec<i64> = (0..100)
            .map(|i| if i % 2 == 0 { i % 30 } else { 1 })
            .collect();
        insert(&mut p, &ts);
        let all = p.take_all();
        assert_eq!(bounds(&all), vec![(0, 10, 70), (10, 20, 15), (20, 30, 15)]);
        assert!(all.iter().all(|w| w.batches.len() == 1));
    }

    #[test]
    fn take_all_flushes_windows_ahead_of_the_watermark() {
        let mut p = Panes::new(spec(10, 2, 100));
        insert(&mut p, &[0, 10]);
        assert!(p.take_due().is_empty());
        assert_eq!(
            bounds(&p.take_all()),
            vec![(-10, 10, 1), (0, 20, 2), (10, 30, 1)]
        );
        assert_eq!(p.buffered_rows(), 0);
    }

    #[test]
    fn events_of_other_inputs_move_the_watermark_and_the_open_horizon() {
        let mut p = Panes::new(spec(10, 1, 0));
        assert_eq!(p.open_from_ms(), i64::MIN);
        insert(&mut p, &[3]);
        p.observe_event_time(27);
        assert_eq!(bounds(&p.take_due()), vec![(0, 10, 1)]);
        assert_eq!(p.max_event_ms(), Some(27));
        assert_eq!(p.open_from_ms(), 20, "the empty [10, 20) window closed too");
    }

    #[test]
    fn processing_time_rows_land_in_the_pane_of_the_clock() {
        let mut p = Panes::new(spec(10, 1, 0));
        let (b, _) = batch(&[Some(0), Some(0)]);
        p.insert_at(b, 37);
        p.advance_watermark(40);
        assert_eq!(bounds(&p.take_due()), vec![(30, 40, 2)]);
    }
}
