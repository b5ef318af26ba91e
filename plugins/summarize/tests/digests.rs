//! A subset of the digest harness (`bench/digests/`) with the real model:
//! every digest is grounded, on topic, made of English words and whole
//! sentences, names the top entity and kind and the first measure's peak, and
//! the same input gives the same digest twice.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use serde_json::json;
use sluice_plugin_summarize::eval::{self, DEFAULT_DICTIONARY, Dictionary};

/// Twelve batches: both domains, every layout, 1 to 500 events.
const SUBSET: [&str; 12] = [
    "f00", "f03", "f06", "f13", "f19", "f27", "r01", "r02", "r07", "r08", "r14", "r29",
];

fn settings() -> serde_json::Map<String, serde_json::Value> {
    // Content is checked here, not speed: a CI box may be busy with builds
    // (speed is the harness's and bench/slm's job).
    json!({"timeout": "300s"}).as_object().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harness_subset_digests_are_clean_and_name_what_matters() {
    let model = common::default_model();
    assert!(
        model.is_file(),
        "model file {} is missing: run models/slm/fetch.sh (scripts/setup.sh does it)",
        model.display()
    );
    let dict = Dictionary::load(Path::new(DEFAULT_DICTIONARY)).unwrap_or_else(|e| panic!("{e}"));
    let batches: Vec<_> = common::load(&common::default_batches())
        .into_iter()
        .filter(|b| SUBSET.contains(&b.id.as_str()))
        .collect();
    assert_eq!(batches.len(), SUBSET.len());
    let sizes: Vec<usize> = batches.iter().map(common::EvalBatch::events).collect();
    assert!(sizes.contains(&1) && sizes.contains(&500), "{sizes:?}");
    let mut by_model = 0;
    let mut report = Vec::new();
    for b in &batches {
        let cfg = b.config(&model, &settings());
        let facts = b.facts(&cfg);
        let r = common::replay(&cfg, b).await;
        assert_eq!(r.event_count, b.events() as u64, "{}", b.id);
        assert_eq!(r.severity, facts.severity.as_str(), "{}", b.id);
        let s = eval::score(&r.summary, &facts, cfg.top.get(), &dict);
        assert!(
            s.ungrounded.is_empty(),
            "{}: ungrounded {:?}\n{}",
            b.id,
            s.ungrounded,
            r.summary
        );
        assert!(
            s.off_topic.is_empty(),
            "{}: off-topic {:?}\n{}",
            b.id,
            s.off_topic,
            r.summary
        );
        assert!(
            s.broken.is_empty(),
            "{}: broken {:?}\n{}",
            b.id,
            s.broken,
            r.summary
        );
        assert!(
            s.dangling.is_empty(),
            "{}: dangling {:?}\n{}",
            b.id,
            s.dangling,
            r.summary
        );
        assert!(
            s.repeated.is_empty(),
            "{}: repeated {:?}\n{}",
            b.id,
            s.repeated,
            r.summary
        );
        assert!(
            s.top_entity && s.top_kind && s.peak && s.severity,
            "{}: {s:?}\n{}",
            b.id,
            r.summary
        );
        if r.model == "template" {
            report.push(format!(
                "{} [template: {:?}] {}",
                b.id, r.fallback, r.summary
            ));
        } else {
            by_model += 1;
            assert!(r.generated_tokens > 0 && r.prompt_tokens > 0, "{}", b.id);
            report.push(format!("{} [model] {}", b.id, r.summary));
        }
    }
    let report = report.join("\n");
    assert!(
        by_model >= SUBSET.len() - 1,
        "only {by_model}/{} digests by the model:\n{report}",
        SUBSET.len()
    );
    eprintln!(
        "{by_model}/{} digests by the model:\n{report}",
        SUBSET.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_batch_gives_the_same_digest_twice() {
    let model = common::default_model();
    let batches: Vec<_> = common::load(&common::default_batches())
        .into_iter()
        .filter(|b| ["f06", "r14"].contains(&b.id.as_str()))
        .collect();
    assert_eq!(batches.len(), 2);
    for b in &batches {
        let cfg = b.config(&model, &settings());
        let first = common::replay(&cfg, b).await;
        let again = common::replay(&cfg, b).await;
        assert_eq!(first.summary, again.summary, "{}", b.id);
        assert_eq!(first.model, again.model, "{}", b.id);
        assert_eq!(first.generated_tokens, again.generated_tokens, "{}", b.id);
    }
}
