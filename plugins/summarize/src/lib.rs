//! `type: summarize`: event digests written by a small language model, in
//! process and grounded in facts computed in Rust.
//!
//! ```yaml
//! digest:
//!   type: summarize
//!   inputs: [anomaly]
//!   model: models/slm/SmolLM2-135M-Instruct.Q4_1.gguf
//!   every: 5m
//!   max_events: 200
//!   kind: kind
//!   keys: [device, zone]
//!   measures: [anomaly_score]
//!   max_tokens: 128
//! ```
//!
//! Per closed, non-empty window the transform counts events per kind and per
//! key value, finds first/last times and the maxima of the measures, decides
//! the severity ([`facts`]). The digest's first line is a headline written in
//! Rust ([`plan::headline`]); under it the model writes the assessment, what
//! stands out and what to check first, choosing among sentences that already
//! hold the facts ([`plan::Plan`], enforced by a grammar). A checker
//! ([`ground`]) verifies the digest; a failing answer is regenerated, and
//! after the last attempt replaced by a deterministic [`template`]
//! assessment, counted in `sluice_summarize_fallbacks_total{reason}`.
//!
//! The model runs with llama.cpp on its own OS thread ([`engine`]), shared by
//! every pipeline naming the same file.
//!
//! With `escalate:` set, each digest and its compact facts also go to an
//! OpenAI-compatible chat endpoint, whose answer fills `escalated_summary`
//! of the same row when it comes within the timeout ([`escalate`]).
#![warn(missing_docs)]

mod check;
mod config;
pub mod digest;
pub mod engine;
pub mod escalate;
pub mod eval;
pub mod facts;
pub mod grammar;
pub mod ground;
pub mod lexicon;
pub mod names;
pub mod plan;
pub mod template;
mod transform;

#[cfg(test)]
mod tests;

pub use check::{DEFAULT_KEYS, FETCH_HELP, output_schema};
pub use config::{
    DEFAULT_PROMPT, DEFAULT_SYSTEM, FACTS_PLACEHOLDER, SamplingConfig, SeededConfig,
    SummarizeConfig,
};
pub use digest::{Author, Digest, Digester};
pub use transform::{FALLBACK_REASONS, SummarizeTransform};
