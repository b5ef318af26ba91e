//! `type: summarize`: configuration.

use std::fmt;
use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::time::Duration;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use sluice_core::{BufferConfig, EnvString, HumanDuration};

use crate::engine::Sampling;
use crate::escalate::EscalateConfig;
use crate::facts::SeverityRules;

/// Placeholder in `prompt` replaced by the facts.
pub const FACTS_PLACEHOLDER: &str = "{facts}";

/// Default system message.
pub const DEFAULT_SYSTEM: &str = "You assist the shift supervisor of a factory or a store. \
From the facts of the last window of events, say what stands out and what to check first. \
Use only the facts.";

/// Default user message; `{facts}` becomes the facts, one per line.
pub const DEFAULT_PROMPT: &str = "Facts:\n{facts}";

/// Condenses the events of a window into one digest row written by a small
/// language model, grounded in facts computed in Rust.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct SummarizeConfig {
    /// Upstream component ids.
    pub inputs: Vec<String>,
    /// Input edge settings.
    #[serde(default)]
    pub buffer: BufferConfig,
    /// Path of a llama-architecture GGUF model, e.g.
    /// `models/slm/SmolLM2-135M-Instruct.Q4_1.gguf` (fetched by
    /// `models/slm/fetch.sh`).
    pub model: EnvString,
    /// A LoRA adapter (GGUF, `general.type = adapter`) made for `model`,
    /// applied on top of it, e.g. one converted with llama.cpp's
    /// `convert_lora_to_gguf.py`.
    #[serde(default)]
    pub lora: Option<EnvString>,
    /// How strongly `lora` is applied: 1 as trained, 0 not at all.
    #[serde(default = "default_lora_scale")]
    pub lora_scale: f32,
    /// Close the window this long after it opened (processing time).
    #[serde(default)]
    pub every: Option<HumanDuration>,
    /// Close the window once it holds this many events.
    #[serde(default)]
    pub max_events: Option<NonZeroU64>,
    /// Event-time column (timestamp or integer milliseconds). Default: the
    /// input's event-time column; rows without one use their arrival time.
    #[serde(default)]
    pub time: Option<String>,
    /// Column naming the event kind, e.g. `kind` or `alert`.
    #[serde(default)]
    pub kind: Option<String>,
    /// Columns whose values are counted and named, most events first.
    /// Default: whichever of `device` and `zone` the input has.
    #[serde(default)]
    pub keys: Option<Vec<String>>,
    /// Numeric columns whose maximum (with where and when) is a fact.
    #[serde(default)]
    pub measures: Vec<String>,
    /// How the digest's severity is decided.
    #[serde(default)]
    pub severity: SeverityRules,
    /// Most distinct values counted per column; further values are counted
    /// as untracked.
    #[serde(default = "default_max_keys")]
    pub max_keys: NonZeroUsize,
    /// Values per column shown to the model (and allowed in the summary).
    #[serde(default = "default_top")]
    pub top: NonZeroUsize,
    /// System message.
    #[serde(default = "default_system")]
    pub system: String,
    /// User message template; must contain `{facts}`.
    #[serde(default = "default_prompt")]
    pub prompt: String,
    /// Most tokens generated per attempt. The longest assessment the
    /// grammar admits (peak, share, check, start) is about 100 tokens with
    /// SmolLM2's tokenizer.
    #[serde(default = "default_max_tokens")]
    pub max_tokens: NonZeroUsize,
    /// Time budget of one digest, all attempts included; past it the
    /// template summary is used.
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// Decode threads. 1 is the default: on a 2-core box a second thread
    /// collapses as soon as the other core is busy.
    #[serde(default = "default_threads")]
    pub threads: NonZeroUsize,
    /// `greedy`, or `{seed: 42, temperature: 0.7}`.
    #[serde(default)]
    pub sampling: SamplingConfig,
    /// Generations tried before the template summary is used. Retries sample
    /// with a fixed seed so they differ from a greedy first attempt and stay
    /// reproducible.
    #[serde(default = "default_attempts")]
    pub attempts: NonZeroUsize,
    /// Constrain the assessment to the sentences planned from the facts (a
    /// GBNF grammar). Without it the model writes free text, which the
    /// checker still judges.
    #[serde(default = "default_grammar")]
    pub grammar: bool,
    /// Context size in tokens (prompt plus answer). The default holds the
    /// default prompt with `top: 5` (about 230 tokens on the harness
    /// batches, 530 at most) and `max_tokens` with room to spare; the cache it needs is allocated at start-up
    /// (22.5 MiB for SmolLM2-135M at 1024), so raise it only for longer
    /// prompts.
    #[serde(default = "default_context")]
    pub context: NonZeroU32,
    /// Chat template to use instead of the one in the GGUF metadata: a
    /// llama.cpp built-in name such as `chatml`, `gemma`, `llama3`, `phi3`
    /// or `mistral-v7`. Default: the GGUF's own template, ChatML when the
    /// file carries none. Set it for files without a template (base models,
    /// some conversions).
    #[serde(default)]
    pub chat_template: Option<String>,
    /// Digests that may wait for the model thread (shared by all users of
    /// the same model and settings).
    #[serde(default = "default_queue")]
    pub queue: NonZeroUsize,
    /// Also send each digest and its compact facts (never the events) to an
    /// OpenAI-compatible chat endpoint and put its answer in
    /// `escalated_summary`; see [`EscalateConfig`].
    #[serde(default)]
    pub escalate: Option<EscalateConfig>,
}

fn nz(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN)
}
fn default_lora_scale() -> f32 {
    1.0
}
fn default_max_keys() -> NonZeroUsize {
    nz(1000)
}
fn default_top() -> NonZeroUsize {
    nz(5)
}
fn default_system() -> String {
    DEFAULT_SYSTEM.to_owned()
}
fn default_prompt() -> String {
    DEFAULT_PROMPT.to_owned()
}
fn default_max_tokens() -> NonZeroUsize {
    nz(128)
}
fn default_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}
fn default_threads() -> NonZeroUsize {
    nz(1)
}
fn default_attempts() -> NonZeroUsize {
    nz(2)
}
fn default_grammar() -> bool {
    true
}
fn default_context() -> NonZeroU32 {
    NonZeroU32::new(1024).unwrap_or(NonZeroU32::MIN)
}
fn default_queue() -> NonZeroUsize {
    nz(4)
}

/// Token choice as configured.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum SamplingConfig {
    /// Most likely allowed token.
    #[default]
    Greedy,
    /// Seeded sampling.
    Seeded(SeededConfig),
}

/// `sampling: {seed: 42, temperature: 0.7}`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct SeededConfig {
    /// Random seed.
    pub seed: u32,
    /// Softmax temperature, above 0.
    #[serde(default = "default_temperature")]
    pub temperature: f32,
}

fn default_temperature() -> f32 {
    0.7
}

impl SamplingConfig {
    /// The runtime setting.
    pub fn to_sampling(self) -> Sampling {
        match self {
            SamplingConfig::Greedy => Sampling::Greedy,
            SamplingConfig::Seeded(s) => Sampling::Seeded {
                seed: s.seed,
                temperature: s.temperature,
            },
        }
    }
}

impl<'de> Deserialize<'de> for SamplingConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SamplingConfig;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`greedy` or `{seed: 42, temperature: 0.7}`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SamplingConfig, E> {
                match v {
                    "greedy" => Ok(SamplingConfig::Greedy),
                    other => Err(E::custom(format!(
                        "unknown sampling `{other}`, expected `greedy` or `{{seed: 42, temperature: 0.7}}`"
                    ))),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<SamplingConfig, A::Error> {
                // The same map stream goes to the struct, so unknown keys are
                // reported at their own location.
                SeededConfig::deserialize(MapAccessDeserializer::new(map))
                    .map(SamplingConfig::Seeded)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<SummarizeConfig, String> {
        serde_saphyr::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_greedy_single_threaded_and_grammar_constrained() {
        let c = parse("inputs: [a]\nmodel: m.gguf\nevery: 5m\n").unwrap();
        assert_eq!(c.every.unwrap().get(), Duration::from_secs(300));
        assert_eq!(c.sampling, SamplingConfig::Greedy);
        assert_eq!(c.threads.get(), 1);
        assert_eq!(c.max_tokens.get(), 128);
        assert_eq!(c.attempts.get(), 2);
        assert!(c.grammar);
        assert!(c.prompt.contains(FACTS_PLACEHOLDER));
    }

    #[test]
    fn seeded_sampling_is_a_map() {
        let c = parse("inputs: [a]\nmodel: m.gguf\nmax_events: 20\nsampling: {seed: 7}\n").unwrap();
        assert_eq!(
            c.sampling.to_sampling(),
            Sampling::Seeded {
                seed: 7,
                temperature: 0.7
            }
        );
    }

    #[test]
    fn escalate_takes_a_url_and_defaults_to_a_short_timeout() {
        let c = parse("inputs: [a]\nmodel: m.gguf\nevery: 5m\nescalate: {url: 'http://h:1'}\n")
            .unwrap();
        let e = c.escalate.unwrap();
        assert_eq!(e.url.as_str(), "http://h:1");
        assert_eq!(e.timeout.get(), Duration::from_secs(5));
        assert_eq!(e.pause.get(), Duration::from_secs(30));
        assert!(e.model.is_none() && e.api_key_env.is_none());
        let err =
            parse("inputs: [a]\nmodel: m.gguf\nescalate: {url: x, timout: 1s}\n").unwrap_err();
        assert!(err.contains("timout"), "{err}");
    }

    #[test]
    fn unknown_sampling_words_and_keys_are_rejected() {
        let e = parse("inputs: [a]\nmodel: m.gguf\nsampling: creative\n").unwrap_err();
        assert!(e.contains("unknown sampling `creative`"), "{e}");
        let e = parse("inputs: [a]\nmodel: m.gguf\nsampling: {seed: 1, temp: 2}\n").unwrap_err();
        assert!(e.contains("temp"), "{e}");
        assert!(parse("inputs: [a]\nmodel: m.gguf\nevry: 5m\n").is_err());
    }
}
