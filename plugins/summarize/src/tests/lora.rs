//! `lora:` with real adapter files written here in llama.cpp's adapter GGUF
//! layout: loaded onto the real model, applied to generation, and rejected
//! at validation when missing, corrupt or made for another model.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use super::events;
use super::*;
use crate::engine::{self, GenRequest, LoraSpec, ModelSpec, Sampling};

/// Hidden size of SmolLM2-135M: its `attn_q` weights are 576 x 576.
const N_EMBD: u64 = 576;
/// Layers of SmolLM2-135M.
const N_LAYER: usize = 30;
const RANK: u64 = 4;

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

fn put_kv_str(out: &mut Vec<u8>, key: &str, value: &str) {
    put_str(out, key);
    out.extend(8u32.to_le_bytes()); // GGUF string
    put_str(out, value);
}

/// A LoRA adapter on every layer's `attn_q` (rank 4, F32) for a model of
/// hidden size `n_embd`. `b` fills the B matrices: 0 gives an adapter that
/// changes nothing; otherwise a fixed pseudo-random pattern of that size.
fn write_adapter(path: &Path, n_embd: u64, b: f32) {
    let mut tensors: Vec<(String, [u64; 2], Vec<f32>)> = Vec::new();
    let mut x: u32 = 12345;
    let mut next = move || {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (x >> 8) as f32 / (1u32 << 24) as f32 - 0.5
    };
    for layer in 0..N_LAYER {
        let name = format!("blk.{layer}.attn_q.weight");
        let a: Vec<f32> = (0..n_embd * RANK).map(|_| next() * 0.2).collect();
        let bv: Vec<f32> = (0..n_embd * RANK).map(|_| next() * b).collect();
        tensors.push((format!("{name}.lora_a"), [n_embd, RANK], a));
        tensors.push((format!("{name}.lora_b"), [RANK, n_embd], bv));
    }
    let mut out = Vec::new();
    out.extend(b"GGUF");
    out.extend(3u32.to_le_bytes());
    out.extend((tensors.len() as u64).to_le_bytes());
    out.extend(4u64.to_le_bytes());
    put_kv_str(&mut out, "general.architecture", "llama");
    put_kv_str(&mut out, "general.type", "adapter");
    put_kv_str(&mut out, "adapter.type", "lora");
    put_str(&mut out, "adapter.lora.alpha");
    out.extend(6u32.to_le_bytes()); // GGUF float32
    out.extend((RANK as f32).to_le_bytes());
    let mut offset = 0u64;
    for (name, ne, data) in &tensors {
        put_str(&mut out, name);
        out.extend(2u32.to_le_bytes());
        out.extend(ne[0].to_le_bytes());
        out.extend(ne[1].to_le_bytes());
        out.extend(0u32.to_le_bytes()); // GGML F32
        out.extend(offset.to_le_bytes());
        offset += (data.len() as u64 * 4).next_multiple_of(32);
    }
    out.resize(out.len().next_multiple_of(32), 0);
    for (_, _, data) in &tensors {
        for v in data {
            out.extend(v.to_le_bytes());
        }
        out.resize(out.len().next_multiple_of(32), 0);
    }
    std::fs::write(path, out).unwrap();
}

fn lora_config(adapter: &Path, extra: &str) -> SummarizeConfig {
    config(&format!(
        "max_events: 1000\nlora: {}\n{extra}",
        adapter.display()
    ))
}

/// Greedy free text (no grammar) from `spec`.
fn free_text(spec: &ModelSpec<'_>) -> String {
    let engine = engine::engine(spec, 1, 512, 1).unwrap();
    let prompt = engine.chat_prompt("You are a writer.", "Name three colours.");
    engine
        .generate_blocking(GenRequest {
            prompt,
            prefix: 0,
            grammar: None,
            max_tokens: 24,
            sampling: Sampling::Greedy,
            stop_at_end: true,
            timeout: Duration::from_secs(300),
        })
        .unwrap()
        .text
}

#[test]
fn an_adapter_is_applied_at_its_scale() {
    let dir = tempfile::tempdir().unwrap();
    let strong = dir.path().join("strong.gguf");
    write_adapter(&strong, N_EMBD, 0.5);
    let model = model_path();
    fn spec<'a>(path: &'a Path, lora: Option<LoraSpec<'a>>) -> ModelSpec<'a> {
        ModelSpec {
            path,
            lora,
            chat_template: None,
        }
    }
    let base = free_text(&spec(&model, None));
    let off = free_text(&spec(
        &model,
        Some(LoraSpec {
            path: &strong,
            scale: 0.0,
        }),
    ));
    let on = free_text(&spec(
        &model,
        Some(LoraSpec {
            path: &strong,
            scale: 1.0,
        }),
    ));
    assert!(!base.is_empty());
    assert_eq!(off, base, "scale 0 must leave the model as it is");
    assert_ne!(on, base, "the adapter changed nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_with_a_neutral_adapter_matches_the_base_model_and_names_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let neutral = dir.path().join("neutral.gguf");
    write_adapter(&neutral, N_EMBD, 0.0);
    let with = lora_config(&neutral, "");
    assert!(errors(&with).is_empty());
    let without = config("max_events: 1000\n");
    let batch = events::batch(0);
    let mut h = harness(&with, events::schema(), None);
    let a = h.run(vec![batch.clone()]).await;
    let mut h = harness(&without, events::schema(), None);
    let b = h.run(vec![batch]).await;
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].model, format!("{MODEL_FILE}+neutral.gguf"));
    assert_eq!(b[0].model, MODEL_FILE);
    assert_eq!(a[0].summary, b[0].summary);
}

#[test]
fn a_missing_corrupt_or_foreign_adapter_is_a_validation_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("not-there.gguf");
    let e = errors(&lora_config(&missing, ""));
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].path, vec!["lora"]);
    assert!(
        e[0].message.contains("not-there.gguf: not found"),
        "{}",
        e[0].message
    );

    let corrupt = dir.path().join("corrupt.gguf");
    std::fs::File::create(&corrupt)
        .unwrap()
        .write_all(b"<html>proxy error</html>")
        .unwrap();
    let e = errors(&lora_config(&corrupt, ""));
    assert_eq!(e[0].path, vec!["lora"], "{e:?}");
    assert!(e[0].message.contains("GGUF magic"), "{}", e[0].message);

    // Made for a model of another hidden size.
    let foreign = dir.path().join("foreign.gguf");
    write_adapter(&foreign, N_EMBD * 2, 0.1);
    let e = errors(&lora_config(&foreign, ""));
    assert_eq!(e[0].path, vec!["lora"], "{e:?}");
    assert!(
        e[0].message.contains("cannot load it onto the model"),
        "{}",
        e[0].message
    );

    // The model itself as an adapter.
    let e = errors(&lora_config(&model_path(), ""));
    assert_eq!(e[0].path, vec!["lora"], "{e:?}");

    // Cut short after the header.
    let truncated = dir.path().join("truncated.gguf");
    write_adapter(&truncated, N_EMBD, 0.1);
    let bytes = std::fs::read(&truncated).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let e = errors(&lora_config(&truncated, ""));
    assert_eq!(e[0].path, vec!["lora"], "{e:?}");

    let neutral = dir.path().join("neutral.gguf");
    write_adapter(&neutral, N_EMBD, 0.0);
    for scale in ["-1", ".nan"] {
        let e = errors(&lora_config(&neutral, &format!("lora_scale: {scale}\n")));
        assert_eq!(e[0].path, vec!["lora_scale"], "{scale}: {e:?}");
    }
}
