//! Timings quoted in the README. Run with
//! `cargo test -p sluice-plugin-sql --lib measure -- --ignored --nocapture`.

use std::time::{Duration, Instant};

use datafusion::arrow::array::RecordBatch;
use sluice_core::{Msg, Transform, TransformConfig};

use crate::engine::QueryEngine;
use crate::sql::SqlConfig;
use crate::testutil::{build_cx, drain, emitter, recorded, rows, telemetry_schema};

fn telemetry(batches: i64, per_batch: i64) -> Vec<RecordBatch> {
    let schema = telemetry_schema(true);
    let devices: Vec<String> = (0..100).map(|d| format!("device-{d}")).collect();
    (0..batches)
        .map(|b| {
            let data: Vec<(&str, i64, f64)> = (0..per_batch)
                .map(|i| {
                    let ts = (b * per_batch + i) * 10_000 / (batches * per_batch);
                    (devices[(i % 100) as usize].as_str(), ts, i as f64)
                })
                .collect();
            rows(&schema, &data)
        })
        .collect()
}

#[tokio::test]
#[ignore = "timing only"]
async fn measure_per_batch_query_cost() {
    let schema = telemetry_schema(true);
    let batch = telemetry(1, 1024).remove(0);
    for sql in [
        "SELECT device, v * 2 AS v2 FROM input WHERE v > 10",
        "SELECT device, avg(v) AS m FROM input GROUP BY device",
        "SELECT device, v, now() AS at FROM input",
    ] {
        let e = QueryEngine::plan(sql, &schema).unwrap();
        let runs = 500;
        let started = Instant::now();
        for _ in 0..runs {
            e.run(vec![batch.clone()]).await.unwrap();
        }
        let each = started.elapsed() / runs;
        eprintln!(
            "{sql}: {each:?} per 1024-row batch (plan reused: {})",
            e.reuses_plan()
        );
    }
}

#[test]
#[ignore = "timing only"]
fn measure_million_row_window() {
    recorded(|_| async {
        let schema = telemetry_schema(true);
        let yaml = "inputs: [src]\nquery: SELECT device, avg(v) AS mean, max(v) AS peak, \
                    count(*) AS n FROM input GROUP BY device\n\
                    window: { tumbling: 10s, allowed_lateness: 2s }\n";
        let cx = build_cx(&schema, SqlConfig::TYPE);
        let mut t = serde_saphyr::from_str::<SqlConfig>(yaml)
            .unwrap()
            .build(&cx)
            .unwrap();
        let (mut out, mut rx) = emitter(&cx);
        let batches = telemetry(1000, 1000);
        let started = Instant::now();
        for b in batches {
            t.process(Msg::Rows(b), &mut out).await.unwrap();
        }
        let buffered = started.elapsed();
        let started = Instant::now();
        t.process(Msg::Rows(rows(&schema, &[("x", 20_000, 0.0)])), &mut out)
            .await
            .unwrap();
        let closed = started.elapsed();
        assert_eq!(
            drain(&mut rx)
                .iter()
                .map(RecordBatch::num_rows)
                .sum::<usize>(),
            100
        );
        eprintln!(
            "1M rows: buffering {buffered:?} ({:?} per 1000-row batch), closing {closed:?}",
            buffered / 1000
        );
        assert!(closed < Duration::from_secs(1));
    });
}
