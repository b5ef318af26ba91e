//! Digests written by the real model.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::names::SUMMARIZE_FALLBACKS_TOTAL;
use sluice_core::{Msg, Validator};
use sluice_testkit::MetricsCapture;

use super::events::{self, BATCHES};
use super::*;
use crate::facts::{Collector, Facts};

/// The facts the transform computed for `batch`, recomputed independently.
fn facts_of(cfg: &SummarizeConfig, batch: &RecordBatch) -> Facts {
    let layout = cfg
        .layout(&events::schema(), &mut Validator::new())
        .unwrap();
    let mut c = Collector::new(layout);
    c.add(batch, 0..batch.num_rows(), 0).unwrap();
    c.take().unwrap()
}

/// Every run of digits (with `:` and `.` inside, as times and decimals) and
/// every hyphenated or underscored identifier in `summary` that does not
/// appear as a whole word in the facts shown to the model. Independent of
/// the crate's own checker.
fn unsupported(summary: &str, facts_text: &str) -> Vec<String> {
    let known: BTreeSet<&str> = facts_text
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | '(' | ')'))
        .map(|w| w.trim_end_matches(['.', ':']))
        .collect();
    summary
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '(' | ')'))
        .map(|w| w.trim_end_matches(['.', ':']).trim_end_matches("'s"))
        .filter(|w| {
            w.chars()
                .any(|c| c.is_ascii_digit() || c == '-' || c == '_')
        })
        .filter(|w| !known.contains(w))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digests_of_the_fixed_batches_are_grounded_and_name_the_top_device_and_zone() {
    let cfg = config("max_events: 1000\n");
    let mut by_model = 0;
    let mut report = Vec::new();
    for i in 0..BATCHES {
        let batch = events::batch(i);
        let facts = facts_of(&cfg, &batch);
        let mut h = harness(&cfg, events::schema(), None);
        let rows = h.run(vec![batch.clone()]).await;
        assert_eq!(rows.len(), 1, "batch {i}");
        let row = &rows[0];
        let text = facts.prompt_text(cfg.top.get());
        let bad = unsupported(&row.summary, &text);
        assert!(
            bad.is_empty(),
            "batch {i}: {bad:?} not in the facts\n{text}\n=> {}",
            row.summary
        );
        for b in &facts.keys {
            let top = &b.top().unwrap().name;
            assert!(
                ground::words(&row.summary).contains(&top.as_str()),
                "batch {i}: top {} `{top}` not mentioned: {}",
                b.column,
                row.summary
            );
        }
        assert_eq!(row.event_count, batch.num_rows() as u64);
        assert_eq!(row.severity, facts.severity.as_str());
        assert_eq!(row.facts, facts.to_json().to_string());
        if row.model == MODEL_FILE {
            by_model += 1;
            assert!(row.generated_tokens > 0 && row.prompt_tokens > 0);
        } else {
            assert_eq!(row.model, "template");
        }
        report.push(format!("{i:2} [{}] {}", row.model, row.summary));
    }
    let report = report.join("\n");
    // The grammar makes most answers acceptable on the first or second try;
    // the template covering every digest would hide a broken model path.
    assert!(
        by_model * 4 >= BATCHES * 3,
        "only {by_model}/{BATCHES} digests by the model:\n{report}"
    );
    eprintln!("{by_model}/{BATCHES} digests written by the model:\n{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_input_gives_the_same_digest_twice() {
    let cfg = config("max_events: 1000\n");
    for i in [0, 1, 7] {
        let first = harness(&cfg, events::schema(), None)
            .run(vec![events::batch(i)])
            .await;
        let again = harness(&cfg, events::schema(), None)
            .run(vec![events::batch(i)])
            .await;
        assert_eq!(first[0].summary, again[0].summary, "batch {i}");
        assert_eq!(first[0].model, again[0].model, "batch {i}");
        assert_eq!(
            first[0].generated_tokens, again[0].generated_tokens,
            "batch {i}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_sampling_is_reproducible_too() {
    let cfg = config("max_events: 1000\nsampling: {seed: 11, temperature: 0.8}\n");
    let first = harness(&cfg, events::schema(), None)
        .run(vec![events::batch(3)])
        .await;
    let again = harness(&cfg, events::schema(), None)
        .run(vec![events::batch(3)])
        .await;
    assert_eq!(first[0].summary, again[0].summary);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_events_closes_a_window_per_that_many_events() {
    let cfg = config("max_events: 10\nattempts: 1\n");
    let batches = vec![events::batch(5), events::batch(6)];
    let total: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let rows = harness(&cfg, events::schema(), None).run(batches).await;
    let counts: Vec<u64> = rows.iter().map(|r| r.event_count).collect();
    let mut expected = vec![10; total / 10];
    if !total.is_multiple_of(10) {
        expected.push((total % 10) as u64);
    }
    assert_eq!(counts, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_closes_the_window_on_a_tick_and_empty_windows_emit_nothing() {
    let cfg = config("every: 2s\nattempts: 1\n");
    let mut h = harness(&cfg, events::schema(), None);
    let start = tokio::time::Instant::now();
    h.t.tick(start).await.unwrap();
    assert!(h.drain().is_empty());
    h.t.push_rows(events::batch(2)).await.unwrap();
    h.t.tick(tokio::time::Instant::now()).await.unwrap();
    assert!(h.drain().is_empty(), "closed before `every`");
    let later = tokio::time::Instant::now() + Duration::from_secs(3);
    h.t.tick(later).await.unwrap();
    assert_eq!(h.drain().len(), 1);
    h.t.tick(later + Duration::from_secs(3)).await.unwrap();
    h.t.finish().await.unwrap();
    assert!(h.drain().is_empty(), "an empty window emitted a digest");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_out_of_time_uses_the_template_and_counts_the_fallback() {
    let capture = MetricsCapture::new();
    let cfg = config("max_events: 1000\ntimeout: 1ms\n");
    let mut h = harness(&cfg, events::schema(), Some(&capture));
    let batch = events::batch(4);
    let rows = h.run(vec![batch.clone()]).await;
    assert_eq!(rows[0].model, "template");
    let facts = facts_of(&cfg, &batch);
    assert_eq!(rows[0].summary, template::summary(&facts, cfg.top.get()));
    let labels = [("component_id", "digest"), ("reason", "timeout")];
    assert_eq!(capture.counter(SUMMARIZE_FALLBACKS_TOTAL, &labels), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelines_naming_the_same_model_share_one_engine() {
    let cfg = config("max_events: 1000\n");
    let a = harness(&cfg, events::schema(), None);
    let b = harness(&cfg, events::schema(), None);
    let (ea, eb) = (a.t.transform.digester(), b.t.transform.digester());
    assert!(ea.shares_engine_with(eb));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_transform_keeps_the_component_contract() {
    let cfg = config("max_events: 1000\n");
    let input = vec![Msg::Rows(events::batch(1)), Msg::Rows(events::batch(2))];
    let out = sluice_testkit::run_transform(&cfg, events::schema(), input).await;
    // One window, closed at finish.
    assert_eq!(out.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
}
