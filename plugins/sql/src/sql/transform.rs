//! `type: sql` at run time: buffering per pane, watermark, window close; for a
//! join, the other inputs' rows kept around the open windows.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use datafusion::arrow::array::{ArrayRef, AsArray, RecordBatch, TimestampMillisecondArray};
use datafusion::arrow::compute::max;
use datafusion::arrow::datatypes::{SchemaRef, TimestampMillisecondType};
use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;
use sluice_core::{BuildCx, ComponentError, ComponentMetrics, Emitter, Msg, Transform};
use tokio::time::Instant;
use tracing::{debug, warn};

use super::config::{Planned, SqlConfig};
use super::joined::Other;
use crate::context::ContextRows;
use crate::engine::QueryEngine;
use crate::panes::{ClosedWindow, Inserted, Panes};
use sluice_core::LogLimiter;

use crate::util::{LOG_EVERY, accept};
use crate::window::WindowSpec;

/// Runs the `sql` transform's query per closed window or per batch.
#[derive(Debug)]
pub struct SqlTransform {
    engine: Arc<QueryEngine>,
    input_schema: SchemaRef,
    output_schema: SchemaRef,
    windowed: Option<Windowed>,
    metrics: ComponentMetrics,
    pipeline: Arc<str>,
    id: Arc<str>,
    late_log: LogLimiter,
    error_log: LogLimiter,
}

#[derive(Debug)]
struct Windowed {
    /// The configured window; for a join over event time, `lateness_ms` also
    /// holds `context_ms`, so a window closes once the watermark passed its
    /// end plus the context.
    spec: WindowSpec,
    /// Rows of the first (driving) input.
    panes: Panes,
    /// Event-time column of the first input; `None` windows by arrival time.
    event_time: Option<usize>,
    clock: WallClock,
    /// When the last batch arrived, for idle advance.
    last_input: Option<Instant>,
    flush_on_shutdown: bool,
    /// The other inputs of a join, in `inputs` order after the first.
    others: Vec<OtherRows>,
    /// How far around a window the other inputs' rows are visible.
    context_ms: i64,
}

/// A non-driving input of a join and its buffered rows.
#[derive(Debug)]
struct OtherRows {
    schema: SchemaRef,
    event_time: Option<usize>,
    rows: ContextRows,
}

/// A window ready for the query: its bounds and the rows of every table
/// (the driving input first).
#[derive(Debug)]
struct WindowRun {
    start_ms: i64,
    end_ms: i64,
    /// Driving rows, counted as dropped if the query fails.
    rows: usize,
    tables: Result<Vec<Vec<RecordBatch>>, ArrowError>,
}

impl Windowed {
    /// The earliest time an open window reads from the other inputs.
    fn horizon_ms(&self) -> i64 {
        self.panes.open_from_ms().saturating_sub(self.context_ms)
    }

    /// Moves the arrival-time watermark to the clock (held back by the
    /// context, so rows arriving just after a window still join it).
    fn advance_clock(&mut self, now_ms: i64) {
        self.panes
            .advance_watermark(now_ms.saturating_sub(self.context_ms));
    }

    /// Adds the other inputs' rows to `closed` windows, then releases the
    /// rows no open window reads any more.
    fn runs(&mut self, closed: Vec<ClosedWindow>) -> Vec<WindowRun> {
        let c = self.context_ms;
        let runs = closed
            .into_iter()
            .map(|w| {
                let mut tables = Vec::with_capacity(1 + self.others.len());
                tables.push(w.batches);
                let tables =
                    self.others
                        .iter()
                        .try_fold(tables, |mut tables, o| -> Result<_, ArrowError> {
                            let from = w.start_ms.saturating_sub(c);
                            tables.push(o.rows.range(from, w.end_ms.saturating_add(c))?);
                            Ok(tables)
                        });
                WindowRun {
                    start_ms: w.start_ms,
                    end_ms: w.end_ms,
                    rows: w.rows,
                    tables,
                }
            })
            .collect();
        let horizon = self.horizon_ms();
        for o in &mut self.others {
            o.rows.evict_before(horizon);
        }
        runs
    }

    fn take_due(&mut self) -> Vec<WindowRun> {
        let closed = self.panes.take_due();
        self.runs(closed)
    }

    fn take_all(&mut self) -> Vec<WindowRun> {
        let closed = self.panes.take_all();
        let runs = self.runs(closed);
        for o in &mut self.others {
            o.rows.clear();
        }
        runs
    }

    fn clear(&mut self) -> usize {
        let others: usize = self.others.iter_mut().map(|o| o.rows.clear()).sum();
        self.panes.clear() + others
    }

    /// Buffers a batch of the non-driving input `o` (index into `others`).
    fn insert_other(
        &mut self,
        o: usize,
        batch: &RecordBatch,
        now_ms: i64,
    ) -> Result<Inserted, ArrowError> {
        let horizon = self.horizon_ms();
        let Some(other) = self.others.get_mut(o) else {
            return Err(ArrowError::InvalidArgumentError(format!(
                "no input {}",
                o + 1
            )));
        };
        match other.event_time {
            Some(idx) => {
                let ts = batch
                    .column(idx)
                    .as_primitive_opt::<TimestampMillisecondType>()
                    .ok_or_else(|| {
                        ArrowError::SchemaError("event-time column is not timestamp(ms)".into())
                    })?;
                let ins = other.rows.insert_event_time(batch, ts, horizon)?;
                if let Some(newest) = max(ts) {
                    self.panes.observe_event_time(newest);
                }
                Ok(ins)
            }
            None => {
                let ins = other.rows.insert_at(batch.clone(), now_ms, horizon);
                self.advance_clock(now_ms);
                Ok(ins)
            }
        }
    }
}

/// Wall-clock milliseconds derived from the monotonic (and, in tests,
/// pausable) tokio clock, anchored once: windows never see the clock step back.
#[derive(Debug, Clone, Copy)]
struct WallClock {
    epoch_ms: i64,
    at: Instant,
}

impl WallClock {
    fn new() -> Self {
        let epoch_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Self {
            epoch_ms,
            at: Instant::now(),
        }
    }

    fn ms(&self, now: Instant) -> i64 {
        self.epoch_ms
            .saturating_add(duration_ms(now.saturating_duration_since(self.at)))
    }
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl SqlTransform {
    pub(crate) fn new(
        config: &SqlConfig,
        planned: Planned,
        input: SchemaRef,
        cx: &BuildCx,
    ) -> Self {
        let context_ms = planned.context_ms;
        let event_time = planned.event_time;
        let others = planned.others;
        let windowed = planned.window.map(|spec| {
            let spec = match event_time {
                Some(_) => WindowSpec {
                    lateness_ms: spec.lateness_ms.saturating_add(context_ms),
                    ..spec
                },
                None => spec,
            };
            Windowed {
                spec,
                panes: Panes::new(spec),
                event_time,
                clock: WallClock::new(),
                last_input: None,
                flush_on_shutdown: config.flush_on_shutdown,
                others: others
                    .into_iter()
                    .map(|Other { schema, event_time }| OtherRows {
                        schema,
                        event_time,
                        rows: ContextRows::new(spec.pane_ms),
                    })
                    .collect(),
                context_ms,
            }
        });
        debug!(
            pipeline = %cx.pipeline,
            component_id = %cx.id,
            reuses_plan = planned.engine.reuses_plan(),
            "Planned SQL query."
        );
        Self {
            engine: Arc::new(planned.engine),
            input_schema: input,
            output_schema: planned.output_schema,
            windowed,
            metrics: cx.metrics.clone(),
            pipeline: cx.pipeline.clone(),
            id: cx.id.clone(),
            late_log: LogLimiter::new(LOG_EVERY),
            error_log: LogLimiter::new(LOG_EVERY),
        }
    }

    /// Schema of the emitted batches.
    pub fn output_schema(&self) -> &SchemaRef {
        &self.output_schema
    }

    /// Rows buffered in open windows, including the rows of a join's other
    /// inputs kept for them.
    pub fn buffered_rows(&self) -> usize {
        self.windowed.as_ref().map_or(0, |w| {
            w.panes.buffered_rows() + w.others.iter().map(|o| o.rows.rows()).sum::<usize>()
        })
    }

    /// Rows of a join's non-driving inputs kept for open windows.
    pub fn context_rows(&self) -> usize {
        self.windowed
            .as_ref()
            .map_or(0, |w| w.others.iter().map(|o| o.rows.rows()).sum())
    }

    fn count_dropped(&mut self, ins: Inserted) {
        if ins.no_time > 0 {
            self.metrics
                .discarded("missing_event_time", false, ins.no_time as u64);
        }
        if ins.late == 0 && ins.no_time == 0 {
            return;
        }
        self.metrics.discarded("late", false, ins.late as u64);
        if let Some(suppressed) = self.late_log.check(Instant::now()) {
            warn!(
                pipeline = %self.pipeline,
                component_id = %self.id,
                late = ins.late,
                missing_event_time = ins.no_time,
                suppressed_warnings = suppressed,
                "Dropped rows whose windows are already closed or that carry no event time."
            );
        }
    }

    fn query_failed(&mut self, rows: usize, e: &DataFusionError) {
        let err = ComponentError::user("query_failed", e.to_string());
        self.metrics.error(&err, "processing");
        self.metrics.discarded("query_failed", false, rows as u64);
        if let Some(suppressed) = self.error_log.check(Instant::now()) {
            warn!(
                pipeline = %self.pipeline,
                component_id = %self.id,
                rows,
                error = %e.strip_backtrace(),
                suppressed_warnings = suppressed,
                "Query failed; dropped its input rows."
            );
        }
    }

    async fn emit_all(
        &mut self,
        rows: usize,
        result: Result<Vec<RecordBatch>, DataFusionError>,
        out: &mut Emitter,
    ) -> Result<(), ComponentError> {
        match result {
            Ok(batches) => {
                for b in batches {
                    out.emit(b).await?;
                }
            }
            Err(e) => self.query_failed(rows, &e),
        }
        Ok(())
    }

    /// Runs the query over `windows` on the blocking pool and emits the
    /// results in window order.
    async fn close(
        &mut self,
        windows: Vec<WindowRun>,
        out: &mut Emitter,
    ) -> Result<(), ComponentError> {
        if windows.is_empty() {
            return Ok(());
        }
        let engine = self.engine.clone();
        let schema = self.output_schema.clone();
        let handle = tokio::runtime::Handle::current();
        let results = sluice_core::blocking(move || {
            windows
                .into_iter()
                .map(|w| {
                    let result = w
                        .tables
                        .map_err(DataFusionError::from)
                        .and_then(|tables| handle.block_on(engine.run_tables(tables)))
                        .and_then(|batches| {
                            batches
                                .into_iter()
                                .map(|b| with_window(&schema, w.start_ms, w.end_ms, &b))
                                .collect::<Result<Vec<_>, ArrowError>>()
                                .map_err(DataFusionError::from)
                        });
                    (w.rows, result)
                })
                .collect::<Vec<_>>()
        })
        .await?;
        for (rows, result) in results {
            self.emit_all(rows, result, out).await?;
        }
        Ok(())
    }
}

/// Prepends the window bounds to a query result batch.
fn with_window(
    schema: &SchemaRef,
    start_ms: i64,
    end_ms: i64,
    batch: &RecordBatch,
) -> Result<RecordBatch, ArrowError> {
    let n = batch.num_rows();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns() + 2);
    columns.push(Arc::new(TimestampMillisecondArray::from_value(start_ms, n)));
    columns.push(Arc::new(TimestampMillisecondArray::from_value(end_ms, n)));
    columns.extend(batch.columns().iter().cloned());
    RecordBatch::try_new(schema.clone(), columns)
}

/// How often `on_tick` runs: a tenth of the pane (or idle timeout), so a
/// window closes at most 10% late, between 10 ms and 250 ms.
fn tick_for(spec: &WindowSpec, event_time: bool) -> Duration {
    let pane = Duration::from_millis(spec.pane_ms.unsigned_abs());
    let base = if event_time {
        pane.min(spec.idle_timeout)
    } else {
        pane
    };
    (base / 10).clamp(Duration::from_millis(10), Duration::from_millis(250))
}

impl SqlTransform {
    /// Handles a batch of a join's non-driving input `o` (index into the
    /// inputs after the first).
    async fn process_other(
        &mut self,
        o: usize,
        batch: RecordBatch,
        out: &mut Emitter,
    ) -> Result<(), ComponentError> {
        let rows = batch.num_rows();
        let Some(w) = self.windowed.as_mut() else {
            return Ok(());
        };
        let Some(schema) = w.others.get(o).map(|x| x.schema.clone()) else {
            return Err(ComponentError::internal(
                "unknown_input",
                format!(
                    "a batch arrived on input {}, which this join does not have",
                    o + 1
                ),
            ));
        };
        let Some(batch) = accept(batch, &schema, &self.metrics) else {
            return Ok(());
        };
        let now = Instant::now();
        w.last_input = Some(now);
        let now_ms = w.clock.ms(now);
        let inserted = w.insert_other(o, &batch, now_ms);
        let due = w.take_due();
        match inserted {
            Ok(ins) => self.count_dropped(ins),
            Err(e) => self.query_failed(rows, &DataFusionError::from(e)),
        }
        self.close(due, out).await
    }
}

impl Transform for SqlTransform {
    async fn process(&mut self, msg: Msg, out: &mut Emitter) -> Result<(), ComponentError> {
        let batch = msg.into_rows()?;
        let rows = batch.num_rows();
        let Some(batch) = accept(batch, &self.input_schema, &self.metrics) else {
            return Ok(());
        };
        let Some(w) = self.windowed.as_mut() else {
            // The planned schema may add the carried event time to the query's.
            let schema = self.output_schema.clone();
            let result = self.engine.run(vec![batch]).await.and_then(|batches| {
                batches
                    .into_iter()
                    .map(|b| b.with_schema(schema.clone()).map_err(DataFusionError::from))
                    .collect()
            });
            return self.emit_all(rows, result, out).await;
        };
        let now = Instant::now();
        w.last_input = Some(now);
        let inserted = match w.event_time {
            Some(idx) => match batch
                .column(idx)
                .as_primitive_opt::<TimestampMillisecondType>()
            {
                Some(ts) => w.panes.insert_event_time(&batch, ts),
                None => Err(ArrowError::SchemaError(
                    "event-time column is not timestamp(ms)".into(),
                )),
            },
            None => {
                let now_ms = w.clock.ms(now);
                let ins = w.panes.insert_at(batch, now_ms);
                w.advance_clock(now_ms);
                Ok(ins)
            }
        };
        let due = w.take_due();
        match inserted {
            Ok(ins) => self.count_dropped(ins),
            Err(e) => self.query_failed(rows, &DataFusionError::from(e)),
        }
        self.close(due, out).await
    }

    /// Input 0 (and every input of a query over table `input`) goes through
    /// [`Transform::process`]; the other inputs of a join are kept as context.
    async fn process_input(
        &mut self,
        input: usize,
        msg: Msg,
        out: &mut Emitter,
    ) -> Result<(), ComponentError> {
        let joined = self.windowed.as_ref().is_some_and(|w| !w.others.is_empty());
        if input == 0 || !joined {
            return self.process(msg, out).await;
        }
        let batch = msg.into_rows()?;
        self.process_other(input - 1, batch, out).await
    }

    fn tick_interval(&self) -> Option<Duration> {
        self.windowed
            .as_ref()
            .map(|w| tick_for(&w.spec, w.event_time.is_some()))
    }

    async fn on_tick(&mut self, now: Instant, out: &mut Emitter) -> Result<(), ComponentError> {
        let Some(w) = self.windowed.as_mut() else {
            return Ok(());
        };
        if w.event_time.is_none() {
            let now_ms = w.clock.ms(now);
            w.advance_clock(now_ms);
        } else if let (Some(last), Some(max)) = (w.last_input, w.panes.max_event_ms()) {
            let idle = now.saturating_duration_since(last);
            if idle >= w.spec.idle_timeout {
                // Event time is assumed to run on with the wall clock from the
                // newest event seen, so a quiet input closes its windows about
                // when steady input would have.
                let wm = max
                    .saturating_add(duration_ms(idle))
                    .saturating_sub(w.spec.lateness_ms);
                w.panes.advance_watermark(wm);
            }
        }
        let due = w.take_due();
        self.close(due, out).await
    }

    async fn finish(&mut self, out: &mut Emitter) -> Result<(), ComponentError> {
        let Some(w) = self.windowed.as_mut() else {
            return Ok(());
        };
        if w.flush_on_shutdown {
            let all = w.take_all();
            self.close(all, out).await
        } else {
            let dropped = w.clear();
            self.metrics.discarded("shutdown", true, dropped as u64);
            Ok(())
        }
    }
}
