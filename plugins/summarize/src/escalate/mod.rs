//! `escalate:`: the hybrid half of a digest. When set, each digest's local
//! summary and compact facts (never the events) go to an OpenAI-compatible
//! chat endpoint, and its answer fills the row's `escalated_summary`.
//!
//! The local digest never waits longer than `timeout` for it and never
//! changes: an endpoint that is offline, slow, hanging or answering garbage
//! leaves `escalated_summary` null, counts the failure
//! (`sluice_summarize_escalation_failures_total{reason}`), and pauses
//! escalation (from `pause`, doubling per further failure up to ten times
//! that), so a dead uplink does not delay every digest.

mod chat;
mod endpoint;
mod http;

use std::time::Duration;

use crate::names::{
    SUMMARIZE_ESCALATION_FAILURES_TOTAL, SUMMARIZE_ESCALATION_SENT_BYTES_TOTAL,
    SUMMARIZE_ESCALATION_WINDOW_BYTES_TOTAL, SUMMARIZE_ESCALATIONS_TOTAL,
};
use metrics::Counter;
use serde::Deserialize;
use sluice_core::LogLimiter;
use sluice_core::{Backoff, ComponentMetrics, EnvString, HumanDuration, Validator};
use tokio::time::Instant;
use tracing::warn;

pub use chat::{AnswerError, DEFAULT_SYSTEM, answer, request};
pub use endpoint::{CHAT_PATH, Endpoint, UrlError};
pub use http::{Client, HttpError};

/// Every `reason` of `sluice_summarize_escalation_failures_total`.
pub const FAILURE_REASONS: [&str; 6] = [
    "connect",
    "timeout",
    "tls",
    "http_status",
    "bad_answer",
    "transport",
];

/// At most one warning per this interval.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// `escalate:` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct EscalateConfig {
    /// Base URL of an OpenAI-compatible server, e.g.
    /// `http://127.0.0.1:8080` or `https://api.openai.com`; requests go to
    /// `<url>/v1/chat/completions` (a URL already ending in `/v1` or
    /// `/chat/completions` is used as it is).
    pub url: EnvString,
    /// `model` field of the request. Servers of a single model (llama.cpp,
    /// llama-cpp-python) ignore it; hosted APIs require it.
    #[serde(default)]
    pub model: Option<String>,
    /// Name of an environment variable holding a bearer token, sent as
    /// `Authorization: Bearer <token>`.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Longest wait for an answer (connect, TLS, request and response); the
    /// digest goes out without one after it.
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// After a failure, digests are not escalated for this long; each
    /// further failure doubles it, up to ten times this. A success resets it.
    #[serde(default = "default_pause")]
    pub pause: HumanDuration,
    /// `max_tokens` of the request.
    #[serde(default = "default_max_tokens")]
    pub max_tokens: usize,
    /// System message of the request.
    #[serde(default = "default_system")]
    pub system: String,
}

fn default_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(5))
}
fn default_pause() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}
fn default_max_tokens() -> usize {
    160
}
fn default_system() -> String {
    DEFAULT_SYSTEM.to_owned()
}

impl EscalateConfig {
    /// Reports a bad `url`, timeout or token variable; returns the endpoint
    /// and the token when all is well.
    pub fn check(&self, v: &mut Validator) -> Option<(Endpoint, Option<String>)> {
        let mut ok = true;
        let endpoint = match Endpoint::parse(self.url.as_str()) {
            Ok(e) => Some(e),
            Err(e) => {
                v.error(&["escalate", "url"], e.to_string()).help(
                    "e.g. `url: http://127.0.0.1:8080` (requests go to <url>/v1/chat/completions)",
                );
                None
            }
        };
        if self.timeout.get().is_zero() {
            v.error(&["escalate", "timeout"], "`timeout` must be positive");
            ok = false;
        }
        if self.max_tokens == 0 {
            v.error(&["escalate", "max_tokens"], "`max_tokens` must be positive");
            ok = false;
        }
        let token = match &self.api_key_env {
            None => None,
            Some(var) => match std::env::var(var) {
                Ok(t) if !t.trim().is_empty() => Some(t.trim().to_owned()),
                _ => {
                    v.error(
                        &["escalate", "api_key_env"],
                        format!("environment variable `{var}` is not set or empty"),
                    )
                    .help("set it to the endpoint's API key, or leave `api_key_env` out");
                    ok = false;
                    None
                }
            },
        };
        endpoint.filter(|_| ok).map(|e| (e, token))
    }
}

/// What escalating one digest brought.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Escalation {
    /// The endpoint's answer.
    pub answer: Option<String>,
    /// Request bytes sent; `None` when nothing was sent (paused).
    pub sent_bytes: Option<u64>,
}

/// Why an escalation brought no answer.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("unusable answer: {0}")]
    Answer(#[from] AnswerError),
}

impl Failure {
    fn reason(&self) -> &'static str {
        match self {
            Failure::Http(e) => e.reason(),
            Failure::Timeout(_) => "timeout",
            Failure::Answer(_) => "bad_answer",
        }
    }
}

/// Sends digests to the endpoint, pausing after failures.
#[derive(Debug)]
pub struct Escalator {
    client: Client,
    model: Option<String>,
    system: String,
    max_tokens: usize,
    timeout: Duration,
    backoff: Backoff,
    paused_until: Option<Instant>,
    answered: Counter,
    failed: Counter,
    paused: Counter,
    failures: Vec<(&'static str, Counter)>,
    sent_bytes: Counter,
    window_bytes: Counter,
    warnings: LogLimiter,
}

impl Escalator {
    /// An escalator for `cfg`, with `endpoint` and `token` from
    /// [`EscalateConfig::check`]; counters are registered on `metrics`.
    pub fn new(
        cfg: &EscalateConfig,
        endpoint: Endpoint,
        token: Option<String>,
        metrics: &ComponentMetrics,
    ) -> Result<Self, String> {
        let outcome = |o| metrics.counter_with(SUMMARIZE_ESCALATIONS_TOTAL, &[("outcome", o)]);
        let pause = cfg.pause.get();
        Ok(Self {
            client: Client::new(endpoint, token)?,
            model: cfg.model.clone(),
            system: cfg.system.clone(),
            max_tokens: cfg.max_tokens,
            timeout: cfg.timeout.get(),
            backoff: Backoff::new(pause, pause.saturating_mul(10)),
            paused_until: None,
            answered: outcome("answered"),
            failed: outcome("failed"),
            paused: outcome("paused"),
            failures: FAILURE_REASONS
                .iter()
                .map(|r| {
                    let c =
                        metrics.counter_with(SUMMARIZE_ESCALATION_FAILURES_TOTAL, &[("reason", r)]);
                    (*r, c)
                })
                .collect(),
            sent_bytes: metrics.counter(SUMMARIZE_ESCALATION_SENT_BYTES_TOTAL),
            window_bytes: metrics.counter(SUMMARIZE_ESCALATION_WINDOW_BYTES_TOTAL),
            warnings: LogLimiter::new(LOG_EVERY),
        })
    }

    /// Sends `digest` and `facts` (the compact facts text) unless paused,
    /// waiting at most the timeout. `window_bytes` (the window's events as
    /// JSON lines) is counted against the bytes sent.
    pub async fn escalate(&mut self, digest: &str, facts: &str, window_bytes: u64) -> Escalation {
        let now = Instant::now();
        if self.paused_until.is_some_and(|t| now < t) {
            self.paused.increment(1);
            return Escalation::default();
        }
        let body = request(
            self.model.as_deref(),
            &self.system,
            digest,
            facts,
            self.max_tokens,
        );
        let sent = body.len() as u64;
        self.sent_bytes.increment(sent);
        self.window_bytes.increment(window_bytes);
        let result = match tokio::time::timeout(self.timeout, self.client.post_json(body)).await {
            Err(_) => Err(Failure::Timeout(self.timeout)),
            Ok(Err(e)) => Err(Failure::Http(e)),
            Ok(Ok(bytes)) => answer(&bytes).map_err(Failure::Answer),
        };
        match result {
            Ok(text) => {
                self.answered.increment(1);
                self.backoff.reset();
                self.paused_until = None;
                Escalation {
                    answer: Some(text),
                    sent_bytes: Some(sent),
                }
            }
            Err(f) => {
                self.failed.increment(1);
                let reason = f.reason();
                if let Some((_, c)) = self.failures.iter().find(|(r, _)| *r == reason) {
                    c.increment(1);
                }
                let pause = self.backoff.next_delay();
                self.paused_until = Some(Instant::now() + pause);
                if self.warnings.ready(now) {
                    let e = self.client.endpoint();
                    warn!(endpoint = %format!("{}:{}{}", e.host, e.port, e.path), reason,
                        error = %f, pause_seconds = pause.as_secs_f64(),
                        "Escalation failed; the local digest went out without it.");
                }
                Escalation {
                    answer: None,
                    sent_bytes: Some(sent),
                }
            }
        }
    }
}
