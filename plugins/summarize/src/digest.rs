//! From facts to a digest: a headline written in Rust, then an assessment the
//! model writes under the facts' grammar ([`crate::plan`]); the whole digest
//! is checked, a failing answer retried, and the template assessment used
//! after the last attempt.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::debug;

use crate::config::{FACTS_PLACEHOLDER, SamplingConfig, SummarizeConfig};
use crate::engine::{Engine, EngineError, GenRequest, Sampling, Stop};
use crate::facts::Facts;
use crate::plan::{self, Plan};
use crate::{ground, template};

/// Seed of retries when the first attempt was greedy.
const RETRY_SEED: u32 = 0x5eed;
/// Temperature of retries when the first attempt was greedy.
const RETRY_TEMPERATURE: f32 = 0.7;

/// Who wrote a summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Author {
    /// The model, and the checker accepted it.
    Model,
    /// The deterministic template.
    Template,
}

/// One digest's text and what producing it cost.
#[derive(Debug, Clone)]
pub struct Digest {
    /// The summary.
    pub summary: String,
    /// Who wrote it.
    pub author: Author,
    /// Why the template was used (a bounded label), if it was.
    pub fallback: Option<&'static str>,
    /// Generations run.
    pub attempts: usize,
    /// Prompt tokens, summed over attempts.
    pub prompt_tokens: usize,
    /// Generated tokens, summed over attempts.
    pub generated_tokens: usize,
    /// Model time (prompt and generation), summed over attempts.
    pub generation_seconds: f64,
}

/// Writes summaries of facts with one shared model.
#[derive(Debug, Clone)]
pub struct Digester {
    engine: Arc<Engine>,
    system: String,
    prompt: String,
    top: usize,
    max_tokens: usize,
    timeout: Duration,
    sampling: SamplingConfig,
    attempts: usize,
    grammar: bool,
}

/// What one attempt ended with, when it did not produce an accepted summary.
enum Rejected {
    /// Worth another attempt.
    Retry(&'static str),
    /// Another attempt cannot help (time is up, the prompt cannot fit).
    GiveUp(&'static str),
}

impl Digester {
    /// A digester with `cfg`'s prompt and generation settings.
    pub fn new(cfg: &SummarizeConfig, engine: Arc<Engine>) -> Self {
        Self {
            engine,
            system: cfg.system.clone(),
            prompt: cfg.prompt.clone(),
            top: cfg.top.get(),
            max_tokens: cfg.max_tokens.get(),
            timeout: cfg.timeout.get(),
            sampling: cfg.sampling,
            attempts: cfg.attempts.get(),
            grammar: cfg.grammar,
        }
    }

    /// The engine's model file name.
    pub fn model_name(&self) -> &str {
        &self.engine.info().name
    }

    /// Whether both digesters use the same model thread.
    pub fn shares_engine_with(&self, other: &Digester) -> bool {
        Arc::ptr_eq(&self.engine, &other.engine)
    }

    /// The full prompt for `facts`, chat template applied, and the length of
    /// its leading part that is the same for every window.
    pub fn prompt_for(&self, facts: &Facts) -> (String, usize) {
        self.engine.chat_prompt_with(
            &self.system,
            &self.prompt,
            FACTS_PLACEHOLDER,
            &self.facts_text(facts),
        )
    }

    /// The compact facts of `facts` as the model reads them.
    pub fn facts_text(&self, facts: &Facts) -> String {
        facts.prompt_text(self.top)
    }

    fn sampling(&self, attempt: usize) -> Sampling {
        if attempt == 0 {
            return self.sampling.to_sampling();
        }
        let step = u32::try_from(attempt).unwrap_or(u32::MAX);
        match self.sampling {
            SamplingConfig::Greedy => Sampling::Seeded {
                seed: RETRY_SEED.wrapping_add(step),
                temperature: RETRY_TEMPERATURE,
            },
            SamplingConfig::Seeded(s) => Sampling::Seeded {
                seed: s.seed.wrapping_add(step),
                temperature: s.temperature,
            },
        }
    }

    /// A summary of `facts`: the model's when it passes the checker within
    /// the attempts and the time budget, the template's otherwise.
    pub async fn digest(&self, facts: &Facts) -> Digest {
        let grounding = facts.grounding(self.top);
        let (prompt, prefix) = self.prompt_for(facts);
        let plan = Plan::new(facts, self.top);
        let gbnf = self.grammar.then(|| plan.grammar());
        let deadline = Instant::now() + self.timeout;
        let mut d = Digest {
            summary: String::new(),
            author: Author::Template,
            fallback: None,
            attempts: 0,
            prompt_tokens: 0,
            generated_tokens: 0,
            generation_seconds: 0.0,
        };
        let mut reason = "timeout";
        for attempt in 0..self.attempts {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                reason = "timeout";
                break;
            }
            d.attempts += 1;
            let req = GenRequest {
                prompt: prompt.clone(),
                prefix,
                grammar: gbnf.clone(),
                max_tokens: self.max_tokens,
                sampling: self.sampling(attempt),
                stop_at_end: true,
                timeout: remaining,
            };
            let rejected = match self.engine.generate(req).await {
                Ok(out) => {
                    d.prompt_tokens += out.prompt_tokens;
                    d.generated_tokens += out.generated_tokens;
                    d.generation_seconds += out.prompt_seconds + out.generation_seconds;
                    let summary = plan::digest(facts, &out.text);
                    let verdict = ground::check(&summary, &grounding);
                    if matches!(out.stop, Stop::MaxTokens | Stop::DeadEnd) {
                        // Cut short by `max_tokens`, or the model's
                        // vocabulary could not continue the grammar.
                        Rejected::Retry("incomplete")
                    } else if out.text.is_empty() {
                        Rejected::Retry("empty")
                    } else if verdict.is_ok() {
                        d.summary = summary;
                        d.author = Author::Model;
                        return d;
                    } else {
                        debug!(attempt, summary = %out.text, ungrounded = ?verdict.ungrounded,
                            missing = ?verdict.missing, "Summary rejected by the grounding check.");
                        Rejected::Retry(verdict.reason())
                    }
                }
                Err(e) => {
                    debug!(attempt, error = %e, "Generation failed.");
                    match e {
                        EngineError::Decode(_) | EngineError::Runtime(_) => {
                            Rejected::Retry(e.reason())
                        }
                        e => Rejected::GiveUp(e.reason()),
                    }
                }
            };
            match rejected {
                Rejected::Retry(r) => reason = r,
                Rejected::GiveUp(r) => {
                    reason = r;
                    break;
                }
            }
        }
        d.summary = template::summary(facts, self.top);
        d.fallback = Some(reason);
        d
    }
}
