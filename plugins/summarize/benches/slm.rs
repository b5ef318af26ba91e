//! Prompt and generation speed, load time, memory and digest latency of the
//! `summarize` runtime on a GGUF model.
//!
//! `cargo bench -p sluice-plugin-summarize --bench slm -- [--model PATH]
//! [--threads 1,2] [--reps 5] [--digests 10]` prints one JSON object per line.
//! `bench/slm/run.py` runs it next to llama.cpp's own measurement on the same
//! file and thread counts and prints both side by side.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use sluice_core::Validator;
use sluice_core::arrow_array::{Float64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use sluice_core::arrow_schema::{DataType, Field, Schema, SchemaRef};
use sluice_core::schema::{TIMESTAMP_MS, with_event_time};
use sluice_plugin_summarize::engine::{self, GenRequest, Sampling};
use sluice_plugin_summarize::facts::Collector;
use sluice_plugin_summarize::{Author, Digester, SummarizeConfig};

/// Context size: the `context` default, which holds the 512-token prompt
/// and the 128 generated tokens of the speed test.
const CONTEXT: u32 = 1024;

const N_PROMPT: usize = 512;
const N_GEN: usize = 128;
const EVENTS: usize = 20;

struct Args {
    model: PathBuf,
    threads: Vec<usize>,
    reps: usize,
    digests: usize,
}

fn args() -> Args {
    let mut a = Args {
        model: Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../models/slm/SmolLM2-135M-Instruct.Q4_1.gguf"),
        threads: vec![1, 2],
        reps: 5,
        digests: 10,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        match k.as_str() {
            "--model" => a.model = it.next().unwrap().into(),
            "--threads" => {
                a.threads = it
                    .next()
                    .unwrap()
                    .split(',')
                    .map(|t| t.parse().unwrap())
                    .collect();
            }
            "--reps" => a.reps = it.next().unwrap().parse().unwrap(),
            "--digests" => a.digests = it.next().unwrap().parse().unwrap(),
            _ => {} // cargo bench passes `--bench`
        }
    }
    assert!(
        a.model.is_file(),
        "{} is missing: run models/slm/fetch.sh",
        a.model.display()
    );
    a
}

fn rss_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(-1.0, |kib| kib / 1024.0)
}

fn schema() -> SchemaRef {
    std::sync::Arc::new(with_event_time(
        Schema::new(vec![
            Field::new("ts", TIMESTAMP_MS, false),
            Field::new("kind", DataType::Utf8, false),
            Field::new("device", DataType::Utf8, false),
            Field::new("zone", DataType::Utf8, false),
            Field::new("score", DataType::Float64, false),
        ]),
        "ts",
    ))
}

/// Batch `i`: 20 events, anomalies and loss-prevention alerts mixed.
fn batch(i: usize) -> RecordBatch {
    let kinds = [
        "vibration_anomaly",
        "item_not_scanned",
        "temperature_anomaly",
        "shelf_sweep",
    ];
    let devices = ["press-7", "cam-2", "pump-2", "cam-5", "press-3"];
    let zones = ["line-1", "checkout-2", "exit-1", "line-2"];
    let mut s = 0x2545_f491_u64 + i as u64;
    let mut next = |n: usize| {
        s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let (a, b) = ((s >> 33) as usize % n, (s >> 17) as usize % n);
        a.min(b)
    };
    let rows: Vec<_> = (0..EVENTS)
        .map(|e| (kinds[next(4)], devices[next(5)], zones[next(4)], e))
        .collect();
    RecordBatch::try_new(
        schema(),
        vec![
            std::sync::Arc::new(TimestampMillisecondArray::from_iter_values(
                rows.iter()
                    .map(|r| 1_709_280_000_000 + (i * 300 + r.3 * 13) as i64 * 1000),
            )),
            std::sync::Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
            std::sync::Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
            std::sync::Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2))),
            std::sync::Arc::new(Float64Array::from_iter_values(
                rows.iter().map(|r| 0.4 + (r.3 % 7) as f64 * 0.08),
            )),
        ],
    )
    .unwrap()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let a = args();
    let started = Instant::now();
    let spec = engine::ModelSpec {
        path: &a.model,
        lora: None,
        chat_template: None,
    };
    let first = engine::engine(&spec, a.threads[0], CONTEXT, 4).unwrap();
    let load_seconds = started.elapsed().as_secs_f64();
    let rss_after_load = rss_mib("VmRSS:");
    println!(
        "{{\"engine\":\"sluice\",\"event\":\"load\",\"load_seconds\":{load_seconds:.3},\"weights_seconds\":{:.3},\"rss_mib\":{rss_after_load:.1}}}",
        first.info().load_seconds
    );
    // About N_PROMPT tokens of plain text: the counted prompt length is reported.
    let long_prompt = "The line ran steadily through the night shift. ".repeat(N_PROMPT / 10);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for &threads in &a.threads {
        let engine = engine::engine(&spec, threads, CONTEXT, 4).unwrap();
        let run = |prompt: &str, max_tokens: usize| {
            engine
                .generate_blocking(GenRequest {
                    prompt: prompt.to_owned(),
                    prefix: 0,
                    grammar: None,
                    max_tokens,
                    sampling: Sampling::Greedy,
                    stop_at_end: false,
                    timeout: std::time::Duration::from_secs(600),
                })
                .unwrap()
        };
        run(&long_prompt, 1); // warm-up
        let (mut pp, mut tg, mut prompt_tokens) = (0.0, 0.0, 0);
        for _ in 0..a.reps {
            let o = run(&long_prompt, 1);
            prompt_tokens = o.prompt_tokens;
            pp += o.prompt_tokens as f64 / o.prompt_seconds;
            let o = run(
                &engine.chat_prompt("You are a writer.", "Write a long story."),
                N_GEN,
            );
            assert_eq!(o.generated_tokens, N_GEN);
            tg += o.generated_tokens as f64 / o.generation_seconds;
        }
        let reps = a.reps as f64;
        println!(
            "{{\"engine\":\"sluice\",\"event\":\"speed\",\"threads\":{threads},\"prompt_tokens\":{prompt_tokens},\"prompt_tokens_per_second\":{:.1},\"generated_tokens\":{N_GEN},\"generated_tokens_per_second\":{:.1}}}",
            pp / reps,
            tg / reps
        );

        let yaml = format!(
            "inputs: [events]\nmodel: {}\nmax_events: 1000\nkind: kind\nmeasures: [score]\nthreads: {threads}\ntimeout: 30s\n",
            a.model.display()
        );
        let cfg: SummarizeConfig = serde_saphyr::from_str(&yaml).unwrap();
        let layout = cfg.layout(&schema(), &mut Validator::new()).unwrap();
        let digester = Digester::new(&cfg, Arc::clone(&engine));
        let (mut times, mut by_model, mut tokens, mut prompt_tokens) = (Vec::new(), 0, 0, 0);
        for i in 0..a.digests {
            let b = batch(i);
            let t = Instant::now();
            let mut c = Collector::new(layout.clone());
            c.add(&b, 0..b.num_rows(), 0).unwrap();
            let facts = c.take().unwrap();
            let d = rt.block_on(digester.digest(&facts));
            times.push(t.elapsed().as_secs_f64());
            by_model += usize::from(d.author == Author::Model);
            tokens += d.generated_tokens;
            prompt_tokens += d.prompt_tokens;
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{{\"engine\":\"sluice\",\"event\":\"digest\",\"threads\":{threads},\"events\":{EVENTS},\"digests\":{},\"by_model\":{by_model},\"mean_prompt_tokens\":{:.1},\"mean_generated_tokens\":{:.1},\"p50_seconds\":{:.3},\"p90_seconds\":{:.3},\"max_seconds\":{:.3}}}",
            times.len(),
            prompt_tokens as f64 / times.len() as f64,
            tokens as f64 / times.len() as f64,
            percentile(&times, 0.5),
            percentile(&times, 0.9),
            times[times.len() - 1]
        );
    }
    println!(
        "{{\"engine\":\"sluice\",\"event\":\"memory\",\"rss_mib\":{:.1},\"peak_rss_mib\":{:.1}}}",
        rss_mib("VmRSS:"),
        rss_mib("VmHWM:")
    );
}
