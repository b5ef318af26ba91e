//! Windowed output does not depend on how rows are cut into micro-batches, nor
//! on their arrival order as long as no row is later than `allowed_lateness`.

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Float64Type, Int64Type, TimestampMillisecondType};
use proptest::prelude::*;
use sluice_core::{Msg, Transform, TransformConfig};

use super::SqlConfig;
use crate::testutil::{build_cx, discarded, drain, emitter, recorded, rows, telemetry_schema};

const DEVICES: [&str; 3] = ["a", "b", "c"];

/// `(window_start, window_end, device, n, total)`, sorted.
type Output = Vec<(i64, i64, String, i64, i64)>;

fn flatten(batches: &[RecordBatch]) -> Output {
    let mut out: Output = Vec::new();
    for b in batches {
        let start = b.column(0).as_primitive::<TimestampMillisecondType>();
        let end = b.column(1).as_primitive::<TimestampMillisecondType>();
        let device = b.column(2).as_string::<i32>();
        let n = b.column(3).as_primitive::<Int64Type>();
        let total = b.column(4).as_primitive::<Float64Type>();
        for i in 0..b.num_rows() {
            out.push((
                start.value(i),
                end.value(i),
                device.value(i).to_owned(),
                n.value(i),
                total.value(i) as i64,
            ));
        }
    }
    out.sort();
    out
}

/// Feeds `batches` in order, then finishes; returns the output and the rows
/// counted as late.
fn run(yaml: &str, batches: Vec<Vec<(usize, i64, i64)>>) -> (Output, u64) {
    recorded(|metrics| async move {
        let schema = telemetry_schema(true);
        let cx = build_cx(&schema, SqlConfig::TYPE);
        let config: SqlConfig = serde_saphyr::from_str(yaml).unwrap();
        let mut t = config.build(&cx).unwrap();
        let (mut out, mut rx) = emitter(&cx);
        let mut emitted = Vec::new();
        for batch in batches {
            let data: Vec<(&str, i64, f64)> = batch
                .iter()
                .map(|&(d, ts, v)| (DEVICES[d], ts, v as f64))
                .collect();
            t.process(Msg::Rows(rows(&schema, &data)), &mut out)
                .await
                .unwrap();
            emitted.extend(drain(&mut rx));
        }
        t.finish(&mut out).await.unwrap();
        emitted.extend(drain(&mut rx));
        (flatten(&emitted), discarded(&metrics, "late"))
    })
}

/// A window `(size_ms, every_ms)` (tumbling when equal) and a lateness.
fn window() -> impl Strategy<Value = (i64, i64, i64)> {
    let shape = prop_oneof![
        (1i64..=4).prop_map(|k| (10 * k, 10 * k)),
        (1i64..=4, 1i64..=3).prop_map(|(k, every)| (5 * every * k, 5 * every)),
    ];
    (shape, 0i64..=25).prop_map(|((size, every), lateness)| (size, every, lateness))
}

fn yaml(size: i64, every: i64, lateness: i64) -> String {
    let w = if size == every {
        format!("tumbling: {size}ms")
    } else {
        format!("sliding: {size}ms, every: {every}ms")
    };
    format!(
        "inputs: [src]\nquery: SELECT device, count(*) AS n, sum(v) AS total FROM input \
         GROUP BY device\nwindow: {{ {w}, allowed_lateness: {lateness}ms }}\n"
    )
}

/// The expected output computed row by row: each row counts in the windows
/// starting at the multiples of `every` within `size` before it.
fn model(size: i64, every: i64, data: &[(usize, i64, i64)]) -> Output {
    let mut agg: std::collections::BTreeMap<(i64, usize), (i64, i64)> = Default::default();
    for &(d, ts, v) in data {
        let last = ts.div_euclid(every) * every;
        for j in 0..size / every {
            let e = agg.entry((last - j * every, d)).or_default();
            e.0 += 1;
            e.1 += v;
        }
    }
    agg.into_iter()
        .map(|((start, d), (n, total))| (start, start + size, DEVICES[d].to_owned(), n, total))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn windowed_output_is_independent_of_batching_and_bounded_disorder(
        (size, every, lateness) in window(),
        data in prop::collection::vec((0usize..3, 0i64..300, 0i64..100), 0..80),
        jitter in prop::collection::vec(0.0f64..=1.0, 80),
        cuts in prop::collection::vec(1usize..12, 1..40),
    ) {
        let yaml = yaml(size, every, lateness);
        let expected = model(size, every, &data);
        let (at_once, late) = run(&yaml, vec![data.clone()]);
        prop_assert_eq!(late, 0);
        prop_assert_eq!(&at_once, &expected);

        // Arrival order sorted by `ts + delay` with `delay <= lateness`: every
        // row arrives at most `lateness` behind the newest event time seen.
        let mut arrival: Vec<(i64, usize)> = data
            .iter()
            .enumerate()
            .map(|(i, r)| (r.1 + (jitter[i] * lateness as f64) as i64, i))
            .collect();
        arrival.sort();
        let mut rest: Vec<(usize, i64, i64)> = arrival.into_iter().map(|(_, i)| data[i]).collect();
        let mut batches = Vec::new();
        for n in cuts.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let tail = rest.split_off((*n).min(rest.len()));
            batches.push(std::mem::replace(&mut rest, tail));
        }
        let (streamed, late) = run(&yaml, batches);
        prop_assert_eq!(late, 0);
        prop_assert_eq!(streamed, expected);
    }
}
