//! The digest evaluation harness: replays the batches of
//! `bench/digests/batches.json` through the real `summarize` transform and
//! scores every digest (`sluice_plugin_summarize::eval`).
//!
//! ```sh
//! cargo run --release -p sluice-plugin-summarize --example eval-digests -- \
//!     --out bench/digests/results.json
//! ```
//!
//! Options: `--model PATH` (default: the shipped SmolLM2 file), `--batches
//! PATH`, `--only f03,r10`, `--set KEY=JSON` (a `summarize` setting for every
//! batch, e.g. `--set max_tokens=128`; repeatable), `--dict PATH` (English
//! word list, default `/usr/share/dict/words`), `--label TEXT` (stored in the
//! JSON), `--rescore RESULTS.json` (score the digests of an earlier run again,
//! e.g. after a scoring change, keeping its tokens and times; no model run).
//! Prints one line per digest, a table of totals and a one-line total.
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};
use sluice_plugin_summarize::eval::{self, DEFAULT_DICTIONARY, Dictionary, Score};
use sluice_plugin_summarize::{FALLBACK_REASONS, engine, escalate};

struct Args {
    model: PathBuf,
    batches: PathBuf,
    out: Option<PathBuf>,
    only: Option<Vec<String>>,
    extra: serde_json::Map<String, Value>,
    dict: PathBuf,
    label: String,
    rescore: Option<PathBuf>,
}

fn args() -> Args {
    let mut a = Args {
        model: common::default_model(),
        batches: common::default_batches(),
        out: None,
        only: None,
        extra: serde_json::Map::new(),
        dict: PathBuf::from(DEFAULT_DICTIONARY),
        label: String::new(),
        rescore: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--model" => a.model = v().into(),
            "--batches" => a.batches = v().into(),
            "--out" => a.out = Some(v().into()),
            "--only" => a.only = Some(v().split(',').map(str::to_owned).collect()),
            "--dict" => a.dict = v().into(),
            "--label" => a.label = v(),
            "--rescore" => a.rescore = Some(v().into()),
            "--set" => {
                let kv = v();
                let (key, val) = kv.split_once('=').expect("--set KEY=JSON");
                let val = serde_json::from_str(val).unwrap_or(Value::String(val.to_owned()));
                a.extra.insert(key.to_owned(), val);
            }
            other => panic!("unknown option {other}"),
        }
    }
    assert!(
        a.model.is_file(),
        "{} is missing: run models/slm/fetch.sh",
        a.model.display()
    );
    a
}

fn status_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(-1.0, |kib| kib / 1024.0)
}

/// A digest of an earlier run, for `--rescore`.
fn earlier_digest(run: &Value, id: &str, model_name: &str) -> common::Replayed {
    let d = run["digests"]
        .as_array()
        .and_then(|ds| ds.iter().find(|d| d["id"] == id))
        .unwrap_or_else(|| panic!("no digest {id} in the earlier run"));
    let n = |k: &str| d[k].as_f64().unwrap_or(0.0);
    common::Replayed {
        summary: d["summary"].as_str().unwrap_or_default().to_owned(),
        severity: String::new(),
        model: if d["author"] == "model" {
            model_name.to_owned()
        } else {
            "template".to_owned()
        },
        event_count: d["events"].as_u64().unwrap_or(0),
        prompt_tokens: n("prompt_tokens") as u32,
        generated_tokens: n("generated_tokens") as u32,
        generation_seconds: n("generation_seconds"),
        wall_seconds: n("wall_seconds"),
        fallback: FALLBACK_REASONS
            .iter()
            .copied()
            .find(|r| d["fallback"].as_str() == Some(*r)),
    }
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

fn flag(b: bool) -> &'static str {
    if b { "y" } else { "-" }
}

fn short(list: &[String]) -> String {
    if list.is_empty() {
        "0".into()
    } else {
        list.len().to_string()
    }
}

fn rel(p: &Path) -> String {
    let root = common::repo_root().canonicalize().unwrap_or_default();
    let p = p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    p.strip_prefix(&root).map_or_else(
        |_| {
            p.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        },
        |r| r.display().to_string(),
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = args();
    let dict = Dictionary::load(&a.dict).unwrap_or_else(|e| panic!("{e}"));
    let batches: Vec<_> = common::load(&a.batches)
        .into_iter()
        .filter(|b| a.only.as_ref().is_none_or(|o| o.contains(&b.id)))
        .collect();
    assert!(!batches.is_empty(), "no batch selected");
    let earlier: Option<Value> = a.rescore.as_ref().map(|p| {
        let text =
            std::fs::read_to_string(p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", p.display()))
    });
    // Holding the engine keeps the model loaded between batches, as a
    // running gateway would.
    let first = batches[0].config(&a.model, &a.extra);
    let load = std::time::Instant::now();
    let keep: Option<Arc<engine::Engine>> = earlier.is_none().then(|| {
        engine::engine(
            &first.model_spec(),
            first.threads.get(),
            first.context.get(),
            first.queue.get(),
        )
        .unwrap_or_else(|e| panic!("loading {}: {e}", a.model.display()))
    });
    // The `model` column names the file (and adapter) as the engine does.
    let model_name = match (&earlier, &keep) {
        (Some(e), _) => e["model"].as_str().unwrap_or_default().to_owned(),
        (None, Some(k)) => k.info().name.clone(),
        (None, None) => String::new(),
    };
    let from_earlier = |k: &str, now: f64| {
        earlier
            .as_ref()
            .map_or(now, |e| e["totals"][k].as_f64().unwrap_or(-1.0))
    };
    let load_seconds = from_earlier("load_seconds", load.elapsed().as_secs_f64());
    let rss_loaded = from_earlier("rss_after_load_mib", status_mib("VmRSS:"));

    println!(
        "{:<4} {:>4} {:<6} {:<12} {:>4} {:>4} {:>4} {:>4} {:>4} {:>3} {:>4} {:>4} {:>3} {:>5} {:>4} {:>6}",
        "id",
        "ev",
        "author",
        "fallback",
        "ungr",
        "offt",
        "brok",
        "dang",
        "rep",
        "ent",
        "kind",
        "peak",
        "sev",
        "ptok",
        "gtok",
        "secs"
    );
    let mut out = Vec::new();
    let mut fallbacks: BTreeMap<&str, usize> = BTreeMap::new();
    let mut totals = [0usize; 5];
    let (mut by_model, mut good, mut clean_all) = (0, 0, 0);
    let mut cover = [0usize; 4];
    let (mut secs20, mut secs500, mut secs_all) = (Vec::new(), Vec::new(), Vec::new());
    let (mut ptok, mut gtok) = (0u64, 0u64);
    // What `escalate:` would send for each digest against the events.
    let (mut sent20, mut sent500, mut raw20, mut raw500) = (vec![], vec![], vec![], vec![]);
    let (mut sent_all, mut raw_all) = (0u64, 0u64);
    for b in &batches {
        let cfg = b.config(&a.model, &a.extra);
        let facts = b.facts(&cfg);
        let r = match &earlier {
            Some(e) => earlier_digest(e, &b.id, &model_name),
            None => common::replay(&cfg, b).await,
        };
        let s: Score = eval::score(&r.summary, &facts, cfg.top.get(), &dict);
        let model_answer = r.model == model_name;
        let clean = s.clean();
        let is_good = model_answer && clean && s.top_entity && s.top_kind;
        by_model += usize::from(model_answer);
        good += usize::from(is_good);
        clean_all += usize::from(clean);
        for (t, l) in totals.iter_mut().zip([
            &s.ungrounded,
            &s.off_topic,
            &s.broken,
            &s.dangling,
            &s.repeated,
        ]) {
            *t += l.len();
        }
        for (c, f) in cover
            .iter_mut()
            .zip([s.top_entity, s.top_kind, s.peak, s.severity])
        {
            *c += usize::from(f);
        }
        if let Some(f) = r.fallback {
            *fallbacks.entry(f).or_default() += 1;
        }
        match b.events() {
            20 => secs20.push(r.wall_seconds),
            500 => secs500.push(r.wall_seconds),
            _ => {}
        }
        secs_all.push(r.wall_seconds);
        let sent = escalate::request(
            None,
            escalate::DEFAULT_SYSTEM,
            &r.summary,
            &facts.prompt_text(cfg.top.get()),
            160,
        )
        .len() as u64;
        let raw = sluice_core::json::to_json_lines(&b.record_batch()).map_or(0, |j| j.len() as u64);
        (sent_all, raw_all) = (sent_all + sent, raw_all + raw);
        let by_size = match b.events() {
            20 => Some((&mut sent20, &mut raw20)),
            500 => Some((&mut sent500, &mut raw500)),
            _ => None,
        };
        if let Some((s, w)) = by_size {
            s.push(sent as f64);
            w.push(raw as f64);
        }
        ptok += u64::from(r.prompt_tokens);
        gtok += u64::from(r.generated_tokens);
        println!(
            "{:<4} {:>4} {:<6} {:<12} {:>4} {:>4} {:>4} {:>4} {:>4} {:>3} {:>4} {:>4} {:>3} {:>5} {:>4} {:>6.2}",
            b.id,
            b.events(),
            if model_answer { "model" } else { "templ" },
            r.fallback.unwrap_or(""),
            short(&s.ungrounded),
            short(&s.off_topic),
            short(&s.broken),
            short(&s.dangling),
            short(&s.repeated),
            flag(s.top_entity),
            flag(s.top_kind),
            flag(s.peak),
            flag(s.severity),
            r.prompt_tokens,
            r.generated_tokens,
            r.wall_seconds
        );
        for line in r.summary.lines() {
            println!("       | {line}");
        }
        if !clean {
            println!(
                "       ! ungrounded {:?} off-topic {:?} broken {:?} dangling {:?} repeated {:?}",
                s.ungrounded, s.off_topic, s.broken, s.dangling, s.repeated
            );
        }
        out.push(json!({
            "id": b.id,
            "domain": b.domain,
            "events": b.events(),
            "summary": r.summary,
            "author": if model_answer { "model" } else { "template" },
            "fallback": r.fallback,
            "ungrounded": s.ungrounded,
            "off_topic": s.off_topic,
            "broken": s.broken,
            "dangling": s.dangling,
            "repeated": s.repeated,
            "covers": {"top_entity": s.top_entity, "top_kind": s.top_kind, "peak": s.peak,
                       "severity": s.severity},
            "clean": clean,
            "good": is_good,
            "prompt_tokens": r.prompt_tokens,
            "generated_tokens": r.generated_tokens,
            "generation_seconds": r.generation_seconds,
            "wall_seconds": r.wall_seconds,
            "escalation_request_bytes": sent,
            "event_bytes": raw,
        }));
    }
    drop(keep);
    let n = batches.len();
    let pct = |k: usize| 100.0 * k as f64 / n as f64;
    let rss_peak = from_earlier("rss_peak_mib", status_mib("VmHWM:"));
    let m20 = median(secs20.clone());
    let m500 = median(secs500.clone());
    let mall = median(secs_all.clone());
    let fmt = |m: Option<f64>| m.map_or_else(|| "n/a".into(), |v| format!("{v:.2} s"));
    println!();
    println!("model                {model_name}  (load {load_seconds:.2} s)");
    println!("digests              {n}");
    println!("by the model         {by_model} ({:.0}%)", pct(by_model));
    println!("fallbacks            {fallbacks:?}");
    println!(
        "problems (words)     ungrounded {} | off-topic {} | broken {} | dangling {} | repeated {}",
        totals[0], totals[1], totals[2], totals[3], totals[4]
    );
    println!("clean digests        {clean_all} ({:.0}%)", pct(clean_all));
    println!(
        "coverage             top entity {} | top kind {} | peak {} | severity {}",
        cover[0], cover[1], cover[2], cover[3]
    );
    println!(
        "tokens per digest    prompt {:.0} | generated {:.1}",
        ptok as f64 / n as f64,
        gtok as f64 / n as f64
    );
    println!(
        "seconds per digest   median {} | 20 events {} (n={}) | 500 events {} (n={})",
        fmt(mall),
        fmt(m20),
        secs20.len(),
        fmt(m500),
        secs500.len()
    );
    println!("RSS                  after load {rss_loaded:.0} MiB | peak {rss_peak:.0} MiB");
    let bytes = |m: Option<f64>| m.map_or_else(|| "n/a".into(), |v| format!("{v:.0} B"));
    println!(
        "escalation bytes     request {} vs events {} (20 events, median) | {} vs {} (500 events) | all {sent_all} vs {raw_all} B",
        bytes(median(sent20.clone())),
        bytes(median(raw20.clone())),
        bytes(median(sent500.clone())),
        bytes(median(raw500.clone())),
    );
    println!(
        "TOTAL {model_name}: {good}/{n} good ({:.0}%: model answer, clean, top entity and kind) | \
         model {by_model}/{n} | clean {clean_all}/{n} | problems {} | median 20-ev {} | 500-ev {} | peak RSS {rss_peak:.0} MiB",
        pct(good),
        totals.iter().sum::<usize>(),
        fmt(m20),
        fmt(m500),
    );
    if let Some(path) = &a.out {
        let doc = json!({
            "label": a.label,
            "model": model_name,
            "batches": rel(&a.batches),
            "settings": a.extra,
            "totals": {
                "digests": n,
                "good": good,
                "by_model": by_model,
                "clean": clean_all,
                "fallbacks": fallbacks,
                "ungrounded": totals[0],
                "off_topic": totals[1],
                "broken": totals[2],
                "dangling": totals[3],
                "repeated": totals[4],
                "covers_top_entity": cover[0],
                "covers_top_kind": cover[1],
                "covers_peak": cover[2],
                "covers_severity": cover[3],
                "prompt_tokens_mean": ptok as f64 / n as f64,
                "generated_tokens_mean": gtok as f64 / n as f64,
                "seconds_median": mall,
                "seconds_median_20_events": m20,
                "seconds_median_500_events": m500,
                "seconds_max": secs_all.iter().copied().fold(0.0, f64::max),
                "load_seconds": load_seconds,
                "rss_after_load_mib": rss_loaded,
                "rss_peak_mib": rss_peak,
                "escalation_request_bytes_total": sent_all,
                "event_bytes_total": raw_all,
                "escalation_request_bytes_median_20_events": median(sent20),
                "event_bytes_median_20_events": median(raw20),
                "escalation_request_bytes_median_500_events": median(sent500),
                "event_bytes_median_500_events": median(raw500),
            },
            "digests": out,
        });
        std::fs::write(path, serde_json::to_string_pretty(&doc).unwrap() + "\n")
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        println!("wrote {}", path.display());
    }
}
