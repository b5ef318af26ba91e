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
//!   max_tokens: 96
//! ```
//!
//! Per closed, non-empty window the transform counts events per kind and per
//! key value, finds first/last times and the maxima of the measures, decides
//! the severity ([`facts`]), and asks the model for a summary under a grammar
//! that only admits the facts' numbers and names ([`grammar`]). A checker
//! ([`ground`]) verifies the answer; a failing answer is regenerated, and
//! after the last attempt replaced by a deterministic [`template`] summary,
//! counted in `sluice_summarize_fallbacks_total{reason}`.
//!
//! The model runs with llama.cpp on its own OS thread ([`engine`]), shared by
//! every pipeline naming the same file.
#![warn(missing_docs)]

mod check;
mod config;
pub mod digest;
pub mod engine;
pub mod eval;
pub mod facts;
pub mod grammar;
pub mod ground;
pub mod lexicon;
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
