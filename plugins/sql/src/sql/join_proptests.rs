//! A join's output does not depend on how the two inputs' rows are cut into
//! batches and interleaved, as long as no row is later than
//! `allowed_lateness` and the query's time condition stays within `context`.
//!
//! Unlike a single input, both inputs cannot arrive "at once": whichever
//! comes second would be late. The reference is a row-by-row model instead.

use std::sync::Arc;

use datafusion::arrow::array::{AsArray, Int64Array, RecordBatch, TimestampMillisecondArray};
use datafusion::arrow::datatypes::{Int64Type, SchemaRef, TimestampMillisecondType};
use proptest::prelude::*;
use sluice_core::config::InputSchema;
use sluice_core::schema::{FieldSpec, build_schema};
use sluice_core::{Msg, Transform, TransformConfig};

use super::SqlConfig;
use crate::testutil::{build_cx, discarded, drain, emitter, recorded};

/// How far before and after an item a scan on its lane matches it.
const BEFORE_MS: i64 = 15;
const AFTER_MS: i64 = 10;

fn schema(cols: &[&str]) -> SchemaRef {
    let spec = |t: &str| t.parse::<FieldSpec>().unwrap();
    let fields = cols
        .iter()
        .map(|c| (*c, spec(if *c == "ts" { "timestamp_ms" } else { "int64" })));
    Arc::new(build_schema(fields, Some("ts")))
}

fn inputs() -> Vec<InputSchema> {
    vec![
        InputSchema {
            id: "bagged".into(),
            schema: schema(&["track", "lane", "ts"]),
        },
        InputSchema {
            id: "scans".into(),
            schema: schema(&["lane", "ts"]),
        },
    ]
}

fn yaml(size: i64, lateness: i64) -> String {
    format!(
        "inputs: [bagged, scans]
window: {{ tumbling: {size}ms, allowed_lateness: {lateness}ms, context: 20ms }}
query: >
  SELECT b.track FROM bagged b WHERE NOT EXISTS (SELECT 1 FROM scans s
  WHERE s.lane = b.lane AND s.ts BETWEEN b.ts - INTERVAL '{BEFORE_MS} milliseconds'
  AND b.ts + INTERVAL '{AFTER_MS} milliseconds')
"
    )
}

/// An event `(input, lane, ts)`; a bagged item's track is its index.
type Event = (usize, i64, i64);

/// A batch of one input: `(input, rows of (track, lane, ts))`.
type Batch = (usize, Vec<(i64, i64, i64)>);

/// `(window_start, track)` of every unmatched item, sorted.
type Output = Vec<(i64, i64)>;

fn model(size: i64, events: &[Event]) -> Output {
    let mut out: Output = events
        .iter()
        .enumerate()
        .filter(|(_, (input, lane, ts))| {
            *input == 0
                && !events.iter().any(|(i, l, t)| {
                    *i == 1 && l == lane && *t >= ts - BEFORE_MS && *t <= ts + AFTER_MS
                })
        })
        .map(|(track, (_, _, ts))| (ts.div_euclid(size) * size, track as i64))
        .collect();
    out.sort();
    out
}

/// One input's rows `(track, lane, ts)` as a batch of that input.
fn batch(input: usize, rows: &[(i64, i64, i64)]) -> RecordBatch {
    let lane = Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1)));
    let ts = Arc::new(TimestampMillisecondArray::from_iter_values(
        rows.iter().map(|r| r.2),
    ));
    let columns: Vec<Arc<dyn datafusion::arrow::array::Array>> = if input == 0 {
        let track = Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0)));
        vec![track, lane, ts]
    } else {
        vec![lane, ts]
    };
    RecordBatch::try_new(inputs()[input].schema.clone(), columns).unwrap()
}

/// Feeds `batches` `(input, rows)` in order, then finishes; returns the
/// output and the rows counted as late.
fn run(yaml: &str, batches: Vec<Batch>) -> (Output, u64) {
    recorded(|metrics| async move {
        let inputs = inputs();
        let mut cx = build_cx(&inputs[0].schema, SqlConfig::TYPE);
        cx.inputs = inputs.clone();
        let config: SqlConfig = serde_saphyr::from_str(yaml).unwrap();
        let mut t = config.build(&cx).unwrap();
        let (mut out, mut rx) = emitter(&cx);
        let mut emitted = Vec::new();
        for (input, rows) in batches {
            t.process_input(input, Msg::Rows(batch(input, &rows)), &mut out)
                .await
                .unwrap();
            emitted.extend(drain(&mut rx));
        }
        t.finish(&mut out).await.unwrap();
        emitted.extend(drain(&mut rx));
        let mut got: Output = emitted
            .iter()
            .flat_map(|b| {
                let start = b.column(0).as_primitive::<TimestampMillisecondType>();
                let track = b.column(2).as_primitive::<Int64Type>();
                (0..b.num_rows()).map(move |i| (start.value(i), track.value(i)))
            })
            .collect();
        got.sort();
        (got, discarded(&metrics, "late"))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn joined_output_is_independent_of_batching_and_bounded_disorder(
        size in prop_oneof![Just(10i64), Just(20), Just(40)],
        lateness in 0i64..=25,
        events in prop::collection::vec((0usize..2, 0i64..3, 0i64..300), 0..60),
        jitter in prop::collection::vec(0.0f64..=1.0, 60),
        cuts in prop::collection::vec(1usize..8, 1..20),
    ) {
        let yaml = yaml(size, lateness);
        let expected = model(size, &events);
        let row = |i: usize| (i as i64, events[i].1, events[i].2);

        // Arrival sorted by `ts + delay` with `delay <= lateness`: every row
        // arrives at most `lateness` behind the newest event time of either input.
        let mut arrival: Vec<(i64, usize)> = events
            .iter()
            .enumerate()
            .map(|(i, e)| (e.2 + (jitter[i] * lateness as f64) as i64, i))
            .collect();
        arrival.sort();
        let mut batches: Vec<Batch> = Vec::new();
        let mut cut = cuts.iter().cycle();
        let mut limit = 0;
        for (_, i) in arrival {
            let input = events[i].0;
            match batches.last_mut() {
                Some((last, rows)) if *last == input && rows.len() < limit => rows.push(row(i)),
                _ => {
                    limit = *cut.next().unwrap_or(&1);
                    batches.push((input, vec![row(i)]));
                }
            }
        }
        let (streamed, late) = run(&yaml, batches);
        prop_assert_eq!(late, 0);
        prop_assert_eq!(streamed, expected);
    }
}
