use std::time::Duration;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{
    DataType, Int32Type, Int64Type, SchemaRef, TimestampMillisecondType,
};
use datafusion::assert_batches_sorted_eq;
use sluice_core::schema::event_time_column;
use sluice_core::{Emitter, Msg, Transform, TransformConfig, Validator};
use tokio::sync::mpsc;
use tokio::time::{Instant, advance};

use super::*;
use crate::testutil::{
    build_cx, discarded, drain, emitter, nullable_schema, recorded, rows, telemetry_schema,
};

const PER_DEVICE: &str = "SELECT device, count(*) AS n, sum(v) AS total FROM input GROUP BY device";

fn config(yaml: &str) -> SqlConfig {
    serde_saphyr::from_str(yaml).unwrap()
}

struct Running {
    t: SqlTransform,
    out: Emitter,
    rx: mpsc::Receiver<sluice_core::Delivery>,
}

impl Running {
    fn start(yaml: &str, schema: &SchemaRef) -> Self {
        let cx = build_cx(schema, SqlConfig::TYPE);
        let t = config(yaml).build(&cx).unwrap();
        let (out, rx) = emitter(&cx);
        Self { t, out, rx }
    }

    async fn push(&mut self, batch: RecordBatch) -> Vec<RecordBatch> {
        self.t
            .process(Msg::Rows(batch), &mut self.out)
            .await
            .unwrap();
        drain(&mut self.rx)
    }

    async fn tick(&mut self) -> Vec<RecordBatch> {
        self.t.on_tick(Instant::now(), &mut self.out).await.unwrap();
        drain(&mut self.rx)
    }

    async fn finish(&mut self) -> Vec<RecordBatch> {
        self.t.finish(&mut self.out).await.unwrap();
        drain(&mut self.rx)
    }
}

fn tumbling(size: &str, lateness: &str) -> String {
    format!(
        "inputs: [src]\nquery: {PER_DEVICE}\nwindow: {{ tumbling: {size}, allowed_lateness: {lateness} }}\n"
    )
}

fn int_column(batches: &[RecordBatch], col: usize) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| b.column(col).as_primitive::<Int64Type>().values().to_vec())
        .collect()
}

fn ts_column(batches: &[RecordBatch], col: usize) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| {
            b.column(col)
                .as_primitive::<TimestampMillisecondType>()
                .values()
                .to_vec()
        })
        .collect()
}

#[test]
fn tumbling_windows_by_event_time_give_exact_aggregates() {
    recorded(|_| async {
        let schema = telemetry_schema(true);
        let mut r = Running::start(&tumbling("10s", "2s"), &schema);
        let first = rows(
            &schema,
            &[
                ("a", 0, 1.0),
                ("b", 3_000, 2.0),
                ("a", 9_999, 3.0),
                ("a", 10_000, 4.0),
            ],
        );
        assert!(
            r.push(first).await.is_empty(),
            "watermark 8 s closes nothing"
        );
        let closed = r
            .push(rows(&schema, &[("b", 15_000, 5.0), ("a", 22_000, 6.0)]))
            .await;
        assert_batches_sorted_eq!(
            [
                "+---------------------+---------------------+--------+---+-------+",
                "| window_start        | window_end          | device | n | total |",
                "+---------------------+---------------------+--------+---+-------+",
                "| 1970-01-01T00:00:00 | 1970-01-01T00:00:10 | a      | 2 | 4.0   |",
                "| 1970-01-01T00:00:00 | 1970-01-01T00:00:10 | b      | 1 | 2.0   |",
                "| 1970-01-01T00:00:10 | 1970-01-01T00:00:20 | a      | 1 | 4.0   |",
                "| 1970-01-01T00:00:10 | 1970-01-01T00:00:20 | b      | 1 | 5.0   |",
                "+---------------------+---------------------+--------+---+-------+",
            ],
            &closed
        );
        assert_eq!(event_time_column(&closed[0].schema()), Some(WINDOW_START));
        assert_eq!(r.t.buffered_rows(), 1);
    });
}

#[test]
fn sliding_windows_assemble_each_window_from_its_panes() {
    recorded(|_| async {
        let schema = telemetry_schema(true);
        let yaml =
            format!("inputs: [src]\nquery: {PER_DEVICE}\nwindow: {{ sliding: 20s, every: 10s }}\n");
        let mut r = Running::start(&yaml, &schema);
        // Watermark 125 s closes the windows ending at 110 s and 120 s.
        let mut closed = r
            .push(rows(
                &schema,
                &[
                    ("a", 105_000, 1.0),
                    ("a", 115_000, 2.0),
                    ("a", 125_000, 3.0),
                ],
            ))
            .await;
        assert_eq!(closed.len(), 2);
        closed.extend(r.push(rows(&schema, &[("a", 145_000, 4.0)])).await);
        assert_batches_sorted_eq!(
            [
                "+---------------------+---------------------+--------+---+-------+",
                "| window_start        | window_end          | device | n | total |",
                "+---------------------+---------------------+--------+---+-------+",
                "| 1970-01-01T00:01:30 | 1970-01-01T00:01:50 | a      | 1 | 1.0   |",
                "| 1970-01-01T00:01:40 | 1970-01-01T00:02:00 | a      | 2 | 3.0   |",
                "| 1970-01-01T00:01:50 | 1970-01-01T00:02:10 | a      | 2 | 5.0   |",
                "| 1970-01-01T00:02:00 | 1970-01-01T00:02:20 | a      | 1 | 3.0   |",
                "+---------------------+---------------------+--------+---+-------+",
            ],
            &closed
        );
        // Panes before the watermark are released; only the 140 s pane is kept.
        assert_eq!(r.t.buffered_rows(), 1);
        let flushed = r.finish().await;
        assert_eq!(ts_column(&flushed, 0), [130_000, 140_000]);
    });
}

#[test]
fn rows_of_closed_windows_are_dropped_and_counted_as_late() {
    recorded(|metrics| async move {
        let schema = telemetry_schema(true);
        let mut r = Running::start(&tumbling("10s", "2s"), &schema);
        let closed = r
            .push(rows(&schema, &[("a", 1_000, 1.0), ("a", 12_000, 2.0)]))
            .await;
        assert_eq!(int_column(&closed, 3), [1]);
        // 11 s still fits the open [10 s, 20 s) window; 5 s and 9 s do not.
        let late = rows(
            &schema,
            &[("a", 5_000, 3.0), ("a", 11_000, 4.0), ("b", 9_000, 5.0)],
        );
        assert!(r.push(late).await.is_empty());
        assert_eq!(discarded(&metrics, "late"), 2);
        let flushed = r.finish().await;
        assert_eq!(int_column(&flushed, 3), [2]);
    });
}

#[test]
fn idle_input_advances_the_watermark_by_the_wall_clock() {
    recorded(|_| async {
        let schema = telemetry_schema(true);
        let mut r = Running::start(&tumbling("10s", "2s"), &schema);
        r.push(rows(&schema, &[("a", 1_000, 1.0), ("a", 9_000, 2.0)]))
            .await;
        advance(Duration::from_secs(4)).await;
        assert!(
            r.tick().await.is_empty(),
            "4 s of silence is below the 5 s idle timeout"
        );
        advance(Duration::from_secs(2)).await;
        // Idle for 6 s: watermark = 9 s + 6 s - 2 s = 13 s >= 10 s.
        let closed = r.tick().await;
        assert_eq!(ts_column(&closed, 1), [10_000]);
        assert_eq!(int_column(&closed, 3), [2]);
    });
}

#[test]
fn steady_input_does_not_trigger_idle_advance() {
    recorded(|_| async {
        let schema = telemetry_schema(true);
        let mut r = Running::start(&tumbling("10s", "0s"), &schema);
        for i in 0..8 {
            r.push(rows(&schema, &[("a", i * 1_000, 1.0)])).await;
            advance(Duration::from_secs(3)).await;
            assert!(r.tick().await.is_empty());
        }
        assert_eq!(r.t.buffered_rows(), 8);
    });
}

#[test]
fn finish_flushes_every_open_window() {
    recorded(|_| async {
        let schema = telemetry_schema(true);
        let mut r = Running::start(&tumbling("10s", "1m"), &schema);
        r.push(rows(
            &schema,
            &[("a", 1_000, 1.0), ("b", 15_000, 2.0), ("b", 16_000, 2.0)],
        ))
        .await;
        let flushed = r.finish().await;
        assert_eq!(ts_column(&flushed, 0), [0, 10_000]);
        assert_eq!(int_column(&flushed, 3), [1, 2]);
        assert_eq!(r.t.buffered_rows(), 0);
    });
}

#[test]
fn finish_without_flush_drops_and_counts_open_windows() {
    recorded(|metrics| async move {
        let schema = telemetry_schema(true);
        let yaml = format!("{}flush_on_shutdown: false\n", tumbling("10s", "1m"));
        let mut r = Running::start(&yaml, &schema);
        r.push(rows(&schema, &[("a", 1_000, 1.0), ("b", 15_000, 2.0)]))
            .await;
        assert!(r.finish().await.is_empty());
        assert_eq!(discarded(&metrics, "shutdown"), 2);
    });
}

#[test]
fn processing_time_windows_follow_arrival_and_close_on_tick() {
    recorded(|_| async {
        let schema = telemetry_schema(false);
        let yaml =
            "inputs: [src]\nquery: SELECT count(*) AS n FROM input\nwindow: { tumbling: 10s }\n";
        let mut r = Running::start(yaml, &schema);
        // Event timestamps are ignored without a declared event time.
        r.push(rows(
            &schema,
            &[("a", 0, 1.0), ("a", 0, 1.0), ("a", 99_999_999, 1.0)],
        ))
        .await;
        advance(Duration::from_secs(10)).await;
        let first = r.push(rows(&schema, &[("b", 0, 1.0), ("b", 0, 1.0)])).await;
        advance(Duration::from_secs(10)).await;
        let second = r.tick().await;
        assert_eq!(int_column(&first, 2), [3]);
        assert_eq!(int_column(&second, 2), [2]);
        let (starts, ends) = (
            ts_column(&[&first[..], &second[..]].concat(), 0),
            ts_column(&[&first[..], &second[..]].concat(), 1),
        );
        assert_eq!(ends[0] - starts[0], 10_000);
        assert_eq!(starts[1], ends[0]);
    });
}

#[test]
fn tick_interval_is_a_tenth_of_the_pane_within_bounds() {
    let schema = telemetry_schema(true);
    let cx = build_cx(&schema, SqlConfig::TYPE);
    let t = config(&tumbling("1s", "0s")).build(&cx).unwrap();
    assert_eq!(t.tick_interval(), Some(Duration::from_millis(100)));
    let t = config(&tumbling("1h", "0s")).build(&cx).unwrap();
    assert_eq!(t.tick_interval(), Some(Duration::from_millis(250)));
    let t = config(&format!("inputs: [src]\nquery: {PER_DEVICE}\n"))
        .build(&cx)
        .unwrap();
    assert_eq!(t.tick_interval(), None);
}

#[test]
fn without_window_the_query_runs_per_batch_and_keeps_event_time() {
    recorded(|_| async {
        let schema = telemetry_schema(true);
        let yaml = "inputs: [src]\nquery: SELECT device, ts, v * 2 AS v2 FROM input WHERE v > 1\n";
        let cfg = config(yaml);
        let out_schema = cfg
            .check(
                &sluice_core::InputSchema::only(schema.clone()),
                &mut Validator::new(),
            )
            .unwrap();
        assert_eq!(event_time_column(&out_schema), Some("ts"));
        let mut r = Running::start(yaml, &schema);
        let out = r
            .push(rows(
                &schema,
                &[("a", 1, 1.0), ("b", 2, 2.0), ("c", 3, 3.0)],
            ))
            .await;
        assert_batches_sorted_eq!(
            [
                "+--------+-------------------------+-----+",
                "| device | ts                      | v2  |",
                "+--------+-------------------------+-----+",
                "| b      | 1970-01-01T00:00:00.002 | 4.0 |",
                "| c      | 1970-01-01T00:00:00.003 | 6.0 |",
                "+--------+-------------------------+-----+",
            ],
            &out
        );
        assert_eq!(out[0].schema(), out_schema);
    });
}

#[test]
fn a_query_failing_on_data_drops_the_rows_without_failing() {
    recorded(|metrics| async move {
        let schema = telemetry_schema(false);
        let yaml = "inputs: [src]\nquery: SELECT CAST(device AS INT) AS id FROM input\n";
        let mut r = Running::start(yaml, &schema);
        assert!(
            r.push(rows(&schema, &[("not-a-number", 0, 1.0)]))
                .await
                .is_empty()
        );
        assert_eq!(discarded(&metrics, "query_failed"), 1);
        let ok = r.push(rows(&schema, &[("42", 0, 1.0)])).await;
        assert_eq!(ok[0].column(0).as_primitive::<Int32Type>().value(0), 42);
    });
}

#[test]
fn batches_with_other_columns_are_counted_as_schema_mismatch() {
    recorded(|metrics| async move {
        let schema = telemetry_schema(true);
        let mut r = Running::start(&tumbling("10s", "0s"), &schema);
        let other = nullable_schema("x", DataType::Utf8);
        let batch = RecordBatch::try_new(
            other,
            vec![std::sync::Arc::new(
                datafusion::arrow::array::StringArray::from(vec!["a"]),
            )],
        )
        .unwrap();
        assert!(r.push(batch).await.is_empty());
        assert_eq!(discarded(&metrics, "schema_mismatch"), 1);
    });
}

/// 1M rows of 100 devices into one 10 s window, in 1000-row batches.
#[test]
fn a_million_row_window_closes_quickly() {
    recorded(|_| async {
        let schema = telemetry_schema(true);
        let yaml = "inputs: [src]\nquery: SELECT device, avg(v) AS mean, max(v) AS peak, count(*) AS n \
                    FROM input GROUP BY device\nwindow: { tumbling: 10s, allowed_lateness: 2s }\n";
        let mut r = Running::start(yaml, &schema);
        let devices: Vec<String> = (0..100).map(|d| format!("device-{d}")).collect();
        let batches: Vec<RecordBatch> = (0..1000)
            .map(|b| {
                let data: Vec<(&str, i64, f64)> = (0..1000)
                    .map(|i| (devices[i % 100].as_str(), b * 10 + i as i64 / 100, i as f64))
                    .collect();
                rows(&schema, &data)
            })
            .collect();
        let started = std::time::Instant::now();
        for b in batches {
            assert!(r.push(b).await.is_empty());
        }
        let buffered = started.elapsed();
        let started = std::time::Instant::now();
        let closed = r.push(rows(&schema, &[("x", 20_000, 0.0)])).await;
        let close = started.elapsed();
        assert_eq!(int_column(&closed, 5).iter().sum::<i64>(), 1_000_000);
        assert_eq!(closed.iter().map(RecordBatch::num_rows).sum::<usize>(), 100);
        assert!(
            buffered < Duration::from_secs(3),
            "buffering took {buffered:?}"
        );
        assert!(close < Duration::from_secs(3), "closing took {close:?}");
        assert!(closed[0].column(2).null_count() == 0);
    });
}

#[tokio::test]
async fn a_windowed_query_keeps_the_component_contract() {
    let schema = telemetry_schema(true);
    let input = [
        rows(&schema, &[("a", 0, 1.0), ("b", 3_000, 2.0)]),
        rows(&schema, &[("a", 12_000, 4.0), ("b", 25_000, 5.0)]),
    ];
    let out = sluice_testkit::run_transform(
        &config(&tumbling("10s", "0s")),
        schema,
        input.into_iter().map(Msg::Rows).collect(),
    )
    .await;
    // Every window closes, the last one at finish.
    assert_eq!(int_column(&out, 3).iter().sum::<i64>(), 4);
}
