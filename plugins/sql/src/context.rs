//! Rows of a join's non-driving inputs, kept by time for as long as an open
//! window may read them. Pure bookkeeping with no SQL, tested on its own.
//!
//! Invariants:
//! - rows are bucketed by `floor(time / bucket_ms)`; each stored slice keeps
//!   the times of its rows, so a window reads exactly the rows of its range;
//! - the caller passes a *horizon*: the earliest time any open window reads.
//!   A row older than the horizon when it arrives is late (no open window
//!   reads it), and buckets ending at or before the horizon are dropped, so
//!   at most one bucket of rows older than the horizon stays in memory.

use std::collections::BTreeMap;

use datafusion::arrow::array::{
    Array, BooleanArray, RecordBatch, TimestampMillisecondArray, UInt32Array,
};
use datafusion::arrow::compute::{filter_record_batch, take, take_record_batch};
use datafusion::arrow::error::ArrowError;

use crate::panes::Inserted;

/// A slice of an input batch and the time of each of its rows.
#[derive(Debug)]
struct Stored {
    batch: RecordBatch,
    times: TimestampMillisecondArray,
}

/// Buffered rows of one non-driving input.
#[derive(Debug)]
pub struct ContextRows {
    bucket_ms: i64,
    buckets: BTreeMap<i64, Vec<Stored>>,
    rows: usize,
}

impl ContextRows {
    /// An empty buffer bucketing rows by `bucket_ms` (> 0).
    pub fn new(bucket_ms: i64) -> Self {
        Self {
            bucket_ms: bucket_ms.max(1),
            buckets: BTreeMap::new(),
            rows: 0,
        }
    }

    /// Rows currently buffered.
    pub fn rows(&self) -> usize {
        self.rows
    }

    fn push(&mut self, bucket: i64, batch: RecordBatch, times: TimestampMillisecondArray) {
        let n = batch.num_rows();
        if n == 0 {
            return;
        }
        self.rows += n;
        self.buckets
            .entry(bucket)
            .or_default()
            .push(Stored { batch, times });
    }

    /// Buffers the rows of `batch` whose event time (`ts`, same length) is at
    /// or after `horizon_ms`; counts the others as late or without time.
    pub fn insert_event_time(
        &mut self,
        batch: &RecordBatch,
        ts: &TimestampMillisecondArray,
        horizon_ms: i64,
    ) -> Result<Inserted, ArrowError> {
        let b = self.bucket_ms;
        if ts.null_count() == 0
            && let (Some(&lo), Some(&hi)) = (ts.values().iter().min(), ts.values().iter().max())
            && lo >= horizon_ms
            && lo.div_euclid(b) == hi.div_euclid(b)
        {
            // The usual case: one batch, all on time, within one bucket.
            self.push(lo.div_euclid(b), batch.clone(), ts.clone());
            return Ok(Inserted::default());
        }
        let mut out = Inserted::default();
        let mut groups: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
        for (row, t) in ts.iter().enumerate() {
            match t {
                None => out.no_time += 1,
                Some(t) if t < horizon_ms => out.late += 1,
                Some(t) => {
                    let row = u32::try_from(row).map_err(|_| {
                        ArrowError::ComputeError("batch has more than u32::MAX rows".into())
                    })?;
                    groups.entry(t.div_euclid(b)).or_default().push(row);
                }
            }
        }
        for (bucket, rows) in groups {
            let idx = UInt32Array::from(rows);
            let times = take(ts, &idx, None)?
                .as_any()
                .downcast_ref::<TimestampMillisecondArray>()
                .cloned()
                .ok_or_else(|| ArrowError::ComputeError("take changed the time type".into()))?;
            self.push(bucket, take_record_batch(batch, &idx)?, times);
        }
        Ok(out)
    }

    /// Buffers all of `batch` at arrival time `at_ms`, or counts it late when
    /// `at_ms` is before `horizon_ms`.
    pub fn insert_at(&mut self, batch: RecordBatch, at_ms: i64, horizon_ms: i64) -> Inserted {
        let n = batch.num_rows();
        if at_ms < horizon_ms {
            return Inserted {
                late: n,
                no_time: 0,
            };
        }
        let times = TimestampMillisecondArray::from_value(at_ms, n);
        self.push(at_ms.div_euclid(self.bucket_ms), batch, times);
        Inserted::default()
    }

    /// The buffered rows with time in `[from_ms, to_ms)`.
    pub fn range(&self, from_ms: i64, to_ms: i64) -> Result<Vec<RecordBatch>, ArrowError> {
        let mut out = Vec::new();
        if to_ms <= from_ms {
            return Ok(out);
        }
        let b = self.bucket_ms;
        let first = from_ms.div_euclid(b);
        let last = (to_ms - 1).div_euclid(b);
        for (&k, slices) in self.buckets.range(first..=last) {
            let whole =
                k.saturating_mul(b) >= from_ms && k.saturating_add(1).saturating_mul(b) <= to_ms;
            for s in slices {
                if whole {
                    out.push(s.batch.clone());
                    continue;
                }
                let keep: BooleanArray = s
                    .times
                    .iter()
                    .map(|t| t.map(|t| t >= from_ms && t < to_ms))
                    .collect();
                let kept = filter_record_batch(&s.batch, &keep)?;
                if kept.num_rows() > 0 {
                    out.push(kept);
                }
            }
        }
        Ok(out)
    }

    /// Drops the buckets that end at or before `horizon_ms`; returns how many
    /// rows went.
    pub fn evict_before(&mut self, horizon_ms: i64) -> usize {
        let keep = self
            .buckets
            .split_off(&horizon_ms.div_euclid(self.bucket_ms));
        let dropped: usize = std::mem::replace(&mut self.buckets, keep)
            .values()
            .flatten()
            .map(|s| s.batch.num_rows())
            .sum();
        self.rows -= dropped;
        dropped
    }

    /// Drops every buffered row; returns how many there were.
    pub fn clear(&mut self) -> usize {
        self.buckets.clear();
        std::mem::take(&mut self.rows)
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Int64Type;

    use super::*;
    use crate::testutil::timed_batch as batch;

    fn insert(c: &mut ContextRows, ts: &[i64], horizon: i64) -> Inserted {
        let ts: Vec<_> = ts.iter().map(|t| Some(*t)).collect();
        let (b, t) = batch(&ts);
        c.insert_event_time(&b, &t, horizon).unwrap()
    }

    /// The `v` values (row numbers within their input batch) of a range.
    fn values(batches: &[RecordBatch]) -> Vec<i64> {
        batches
            .iter()
            .flat_map(|b| b.column(1).as_primitive::<Int64Type>().values().to_vec())
            .collect()
    }

    #[test]
    fn a_range_holds_exactly_the_rows_of_its_times() {
        let mut c = ContextRows::new(10);
        insert(&mut c, &[3, 9, 10, 15, 29, 30], i64::MIN);
        assert_eq!(c.rows(), 6);
        assert_eq!(values(&c.range(9, 30).unwrap()), vec![1, 2, 3, 4]);
        assert_eq!(values(&c.range(10, 20).unwrap()), vec![2, 3]);
        assert!(c.range(20, 20).unwrap().is_empty());
    }

    #[test]
    fn rows_before_the_horizon_are_late_and_rows_without_time_are_counted() {
        let mut c = ContextRows::new(10);
        let (b, t) = batch(&[Some(4), None, Some(5), Some(12)]);
        assert_eq!(
            c.insert_event_time(&b, &t, 5).unwrap(),
            Inserted {
                late: 1,
                no_time: 1
            }
        );
        assert_eq!(values(&c.range(0, 100).unwrap()), vec![2, 3]);
    }

    #[test]
    fn eviction_releases_whole_buckets_behind_the_horizon() {
        let mut c = ContextRows::new(10);
        insert(&mut c, &[1, 11, 19, 25], i64::MIN);
        assert_eq!(c.evict_before(19), 1, "bucket [0, 10) ends before 19");
        assert_eq!(c.rows(), 3, "bucket [10, 20) still reaches past 19");
        assert_eq!(c.evict_before(30), 3);
        assert_eq!(c.rows(), 0);
    }

    #[test]
    fn arrival_time_rows_share_one_time() {
        let mut c = ContextRows::new(10);
        let (b, _) = batch(&[None, None]);
        assert_eq!(c.insert_at(b.clone(), 14, 0), Inserted::default());
        assert_eq!(c.insert_at(b, 3, 10).late, 2);
        assert_eq!(c.range(14, 15).unwrap()[0].num_rows(), 2);
        assert_eq!(c.clear(), 2);
    }
}
