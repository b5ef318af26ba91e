//! The `sql` transform joining two inputs: window membership of the driving
//! rows, context of the other input, close rule, lateness, memory and checks.

use std::sync::Arc;

use datafusion::arrow::array::{
    AsArray, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::{Int64Type, SchemaRef, TimestampMillisecondType};
use datafusion::assert_batches_sorted_eq;
use sluice_core::config::InputSchema;
use sluice_core::schema::{FieldSpec, build_schema};
use sluice_core::{Emitter, Msg, Transform, TransformConfig, Validator};
use tokio::sync::mpsc;

use super::SqlConfig;
use crate::testutil::{build_cx, discarded, drain, emitter, recorded};

const NON_SCAN: &str = "
inputs: [bagged, scans]
window: { tumbling: 10s, allowed_lateness: 2s, context: 30s }
query: |
  SELECT b.camera, b.zone, b.track, b.class, b.score, b.ts
  FROM bagged b
  WHERE NOT EXISTS (
    SELECT 1 FROM scans s
    WHERE s.lane = b.lane
      AND s.ts BETWEEN b.ts - INTERVAL '20 seconds' AND b.ts + INTERVAL '5 seconds')
";

fn schema(cols: &[(&str, &str)], event_time: Option<&str>) -> SchemaRef {
    let cols = cols
        .iter()
        .map(|(n, t)| (*n, t.parse::<FieldSpec>().unwrap()));
    Arc::new(build_schema(cols, event_time))
}

fn bagged_schema() -> SchemaRef {
    schema(
        &[
            ("camera", "utf8"),
            ("zone", "utf8"),
            ("track", "int64"),
            ("class", "utf8"),
            ("score", "float64"),
            ("lane", "utf8"),
            ("ts", "timestamp_ms"),
        ],
        Some("ts"),
    )
}

fn scans_schema() -> SchemaRef {
    schema(
        &[("lane", "utf8"), ("sku", "utf8"), ("ts", "timestamp_ms")],
        Some("ts"),
    )
}

fn inputs() -> Vec<InputSchema> {
    vec![
        InputSchema {
            id: "bagged".into(),
            schema: bagged_schema(),
        },
        InputSchema {
            id: "scans".into(),
            schema: scans_schema(),
        },
    ]
}

/// Items `(track, lane, ts_ms)` seen in the bagging zone of camera `cam1`.
fn bagged(rows: &[(i64, &str, i64)]) -> RecordBatch {
    let n = rows.len();
    RecordBatch::try_new(
        bagged_schema(),
        vec![
            Arc::new(StringArray::from(vec!["cam1"; n])),
            Arc::new(StringArray::from(vec!["bag"; n])),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(StringArray::from(vec!["item"; n])),
            Arc::new(Float64Array::from(vec![0.9; n])),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
            Arc::new(TimestampMillisecondArray::from_iter_values(
                rows.iter().map(|r| r.2),
            )),
        ],
    )
    .unwrap()
}

/// POS scans `(lane, ts_ms)`.
fn scans(rows: &[(&str, i64)]) -> RecordBatch {
    RecordBatch::try_new(
        scans_schema(),
        vec![
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(StringArray::from(vec!["sku"; rows.len()])),
            Arc::new(TimestampMillisecondArray::from_iter_values(
                rows.iter().map(|r| r.1),
            )),
        ],
    )
    .unwrap()
}

fn config(yaml: &str) -> SqlConfig {
    serde_saphyr::from_str(yaml).unwrap()
}

struct Running {
    t: super::SqlTransform,
    out: Emitter,
    rx: mpsc::Receiver<sluice_core::Delivery>,
}

impl Running {
    fn start(yaml: &str) -> Self {
        let inputs = inputs();
        let mut cx = build_cx(&inputs[0].schema, SqlConfig::TYPE);
        cx.inputs = inputs.clone();
        let t = config(yaml).build(&cx).unwrap();
        let (out, rx) = emitter(&cx);
        Self { t, out, rx }
    }

    async fn push(&mut self, input: usize, batch: RecordBatch) -> Vec<RecordBatch> {
        self.t
            .process_input(input, Msg::Rows(batch), &mut self.out)
            .await
            .unwrap();
        drain(&mut self.rx)
    }

    async fn bagged(&mut self, rows: &[(i64, &str, i64)]) -> Vec<RecordBatch> {
        self.push(0, bagged(rows)).await
    }

    async fn scans(&mut self, rows: &[(&str, i64)]) -> Vec<RecordBatch> {
        self.push(1, scans(rows)).await
    }

    /// Rows of the driving input still waiting for their window.
    fn driving_rows(&self) -> usize {
        self.t.buffered_rows() - self.t.context_rows()
    }
}

fn tracks(batches: &[RecordBatch]) -> Vec<i64> {
    let mut t: Vec<i64> = batches
        .iter()
        .flat_map(|b| b.column(4).as_primitive::<Int64Type>().values().to_vec())
        .collect();
    t.sort_unstable();
    t
}

fn window_starts(batches: &[RecordBatch]) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_primitive::<TimestampMillisecondType>()
                .values()
                .to_vec()
        })
        .collect()
}

#[test]
fn a_matched_item_gives_no_row() {
    recorded(|_| async {
        let mut r = Running::start(NON_SCAN);
        assert!(r.scans(&[("l1", 3_000)]).await.is_empty());
        assert!(r.bagged(&[(1, "l1", 5_000)]).await.is_empty());
        // Watermark 50 s - 2 s passes 10 s + 30 s of context: [0, 10) closes.
        let out = r.bagged(&[(2, "l2", 50_000)]).await;
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(r.driving_rows(), 1, "item 1 was evaluated, item 2 waits");
    });
}

#[test]
fn an_unmatched_item_gives_exactly_one_row() {
    recorded(|_| async {
        let mut r = Running::start(NON_SCAN);
        r.scans(&[("l2", 4_000)]).await;
        r.bagged(&[(1, "l1", 5_000), (2, "l2", 6_000)]).await;
        let out = r.bagged(&[(3, "l3", 50_000)]).await;
        assert_batches_sorted_eq!(
            [
                "+---------------------+---------------------+--------+------+-------+-------+-------+---------------------+",
                "| window_start        | window_end          | camera | zone | track | class | score | ts                  |",
                "+---------------------+---------------------+--------+------+-------+-------+-------+---------------------+",
                "| 1970-01-01T00:00:00 | 1970-01-01T00:00:10 | cam1   | bag  | 1     | item  | 0.9   | 1970-01-01T00:00:05 |",
                "+---------------------+---------------------+--------+------+-------+-------+-------+---------------------+",
            ],
            &out
        );
    });
}

#[test]
fn scans_in_the_previous_and_next_window_within_context_still_match() {
    recorded(|_| async {
        let mut r = Running::start(NON_SCAN);
        // Window [10 s, 20 s): item 1 scanned 4 s before in the previous
        // window, item 2 scanned 3 s after in the next one, item 3 never.
        r.scans(&[("l1", 8_000)]).await;
        r.bagged(&[(1, "l1", 12_000), (2, "l2", 18_000), (3, "l3", 15_000)])
            .await;
        // The window's end has passed, but not its end plus context: the
        // scan of item 2 that arrives now still counts.
        assert!(r.bagged(&[(4, "l4", 25_000)]).await.is_empty());
        assert!(r.scans(&[("l2", 21_000)]).await.is_empty());
        let out = r.bagged(&[(5, "l5", 70_000)]).await;
        assert_eq!(tracks(&out), [3, 4]);
    });
}

#[test]
fn each_driving_row_is_evaluated_once_across_consecutive_windows() {
    recorded(|_| async {
        let mut r = Running::start(NON_SCAN);
        r.bagged(&[(1, "l1", 5_000), (2, "l1", 15_000)]).await;
        r.bagged(&[(3, "l1", 25_000), (4, "l1", 35_000)]).await;
        let mut out = r.bagged(&[(5, "l1", 100_000)]).await;
        out.extend(r.bagged(&[(6, "l1", 200_000)]).await);
        assert_eq!(tracks(&out), [1, 2, 3, 4, 5]);
        assert_eq!(
            window_starts(&out),
            [0, 10_000, 20_000, 30_000, 100_000],
            "each item once, in its own window, in window order"
        );
    });
}

#[test]
fn late_rows_of_both_inputs_are_counted_and_dropped() {
    recorded(|s| async move {
        let mut r = Running::start(NON_SCAN);
        r.bagged(&[(1, "l1", 5_000)]).await;
        r.bagged(&[(2, "l1", 100_000)]).await;
        // Watermark 98 s closed every window ending by 68 s.
        r.bagged(&[(3, "l1", 7_000), (4, "l1", 65_000)]).await;
        assert_eq!(discarded(&s, "late"), 1, "[60 s, 70 s) is still open");
        // Windows from [60 s, 70 s) on read scans from 30 s on.
        r.scans(&[("l1", 29_999), ("l1", 30_000)]).await;
        assert_eq!(discarded(&s, "late"), 1);
        assert_eq!(r.t.context_rows(), 1);
    });
}

#[test]
fn rows_of_the_other_input_are_released_once_no_open_window_reads_them() {
    recorded(|_| async {
        let mut r = Running::start(NON_SCAN);
        r.scans(&[("l1", 1_000), ("l1", 11_000), ("l2", 21_000)])
            .await;
        r.bagged(&[(1, "l1", 5_000)]).await;
        assert_eq!(r.t.context_rows(), 3);
        // Watermark 58 s: windows through [10 s, 20 s) closed; the open ones
        // read scans from 20 s - 30 s = -10 s on.
        r.bagged(&[(2, "l9", 60_000)]).await;
        assert_eq!(r.t.context_rows(), 3);
        r.bagged(&[(3, "l9", 200_000)]).await;
        assert_eq!(r.t.context_rows(), 0);
        assert_eq!(r.driving_rows(), 1);
    });
}

#[test]
fn shutdown_flushes_open_windows_with_their_context() {
    recorded(|_| async {
        let mut r = Running::start(NON_SCAN);
        r.bagged(&[(1, "l1", 5_000), (2, "l2", 6_000)]).await;
        r.scans(&[("l1", 9_000)]).await;
        r.t.finish(&mut r.out).await.unwrap();
        assert_eq!(tracks(&drain(&mut r.rx)), [2]);
        assert_eq!(r.t.buffered_rows(), 0);
    });
}

// --- checks ---

fn check_errors(yaml: &str, inputs: &[InputSchema]) -> Vec<(Vec<String>, String)> {
    let mut v = Validator::new();
    let out = config(yaml).check(inputs, &mut v);
    let issues: Vec<_> = v
        .into_issues()
        .into_iter()
        .map(|i| (i.path, i.message))
        .collect();
    assert!(out.is_none() || !issues.is_empty(), "{issues:?}");
    issues
}

#[test]
fn joined_mode_needs_two_inputs_named_as_tables() {
    assert!(config(NON_SCAN).joins_inputs());
    assert!(config(NON_SCAN).reads_inputs_apart());
    let over_input = "inputs: [bagged, scans]\nquery: SELECT * FROM input\n";
    assert!(!config(over_input).joins_inputs());
    let one_input = "inputs: [bagged]\nquery: SELECT * FROM bagged\n";
    assert!(!config(one_input).joins_inputs());
}

#[test]
fn check_returns_window_bounds_then_the_joined_query_columns() {
    let out = config(NON_SCAN)
        .check(&inputs(), &mut Validator::new())
        .unwrap();
    let names: Vec<_> = out.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        names,
        [
            "window_start",
            "window_end",
            "camera",
            "zone",
            "track",
            "class",
            "score",
            "ts"
        ]
    );
}

#[test]
fn an_unknown_table_is_reported_at_query_with_the_tables() {
    let yaml = NON_SCAN.replace("FROM scans s", "FROM scan s");
    let errors = check_errors(&yaml, &inputs());
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, ["query"]);
    assert_eq!(errors[0].1, "unknown table `scan`");
}

#[test]
fn table_input_is_not_defined_in_joined_mode() {
    let yaml = NON_SCAN.replace("FROM scans s", "FROM input s");
    let errors = check_errors(&yaml, &inputs());
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, ["query"]);
    assert!(
        errors[0].1.starts_with("table `input` is not defined"),
        "{errors:?}"
    );
}

#[test]
fn context_without_a_join_is_rejected_at_its_key() {
    let yaml = "inputs: [bagged]\nquery: SELECT count(*) AS n FROM input\nwindow: { tumbling: 10s, context: 30s }\n";
    let mut v = Validator::new();
    config(yaml).check(&sluice_core::InputSchema::only(bagged_schema()), &mut v);
    let issues = v.into_issues();
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert_eq!(issues[0].path, ["window", "context"]);
}

#[test]
fn a_column_missing_from_its_table_is_reported_at_query() {
    let yaml = NON_SCAN.replace("s.lane = b.lane", "s.sku = b.sku");
    let errors = check_errors(&yaml, &inputs());
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, ["query"]);
    assert!(errors[0].1.contains("b.sku"), "{errors:?}");
}

#[test]
fn a_join_needs_a_window() {
    let yaml = "inputs: [bagged, scans]\nquery: SELECT b.track FROM bagged b JOIN scans s ON s.lane = b.lane\n";
    let errors = check_errors(yaml, &inputs());
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, ["query"]);
    assert!(errors[0].1.contains("needs a `window`"), "{errors:?}");
}

#[test]
fn inputs_with_and_without_event_time_are_reported_at_the_input() {
    let mut inputs = inputs();
    inputs[1].schema = schema(
        &[("lane", "utf8"), ("sku", "utf8"), ("ts", "timestamp_ms")],
        None,
    );
    let errors = check_errors(NON_SCAN, &inputs);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, ["inputs", "1"]);
}

#[test]
fn build_without_the_schema_of_each_input_fails() {
    let cx = build_cx(&bagged_schema(), SqlConfig::TYPE);
    let err = config(NON_SCAN).build(&cx).unwrap_err();
    assert!(err.to_string().contains("are not all known"), "{err}");
}
