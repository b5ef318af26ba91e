//! The running `summarize` transform: windows rows by `every` and/or
//! `max_events`, then turns each closed, non-empty window into one digest row.

use sluice_core::{LogLimiter, now_ms};
use std::sync::Arc;
use std::time::Duration;

use crate::names::{SUMMARIZE_FALLBACKS_TOTAL, SUMMARIZE_REGENERATIONS_TOTAL};
use metrics::Counter;
use sluice_core::arrow_array::{
    ArrayRef, Float64Array, RecordBatch, StringArray, TimestampMillisecondArray, UInt32Array,
    UInt64Array,
};
use sluice_core::arrow_schema::SchemaRef;
use sluice_core::{BuildCx, ComponentError, ComponentMetrics, Emitter, Msg, Transform};
use tokio::time::Instant;
use tracing::warn;

use crate::check::output_schema;
use crate::config::SummarizeConfig;
use crate::digest::{Author, Digest, Digester};
use crate::engine::Engine;
use crate::escalate::{Escalation, Escalator};
use crate::facts::{Collector, Facts, Layout};

/// At most one warning per this interval for each kind of problem.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Every `reason` of `sluice_summarize_fallbacks_total`; handles are
/// registered at build so they report to the recorder of that moment.
pub const FALLBACK_REASONS: [&str; 9] = [
    "ungrounded",
    "missing_top",
    "incomplete",
    "empty",
    "timeout",
    "prompt_too_long",
    "grammar_error",
    "model_error",
    "model_unavailable",
];

/// Writes a digest per window; see [`SummarizeConfig`].
#[derive(Debug)]
pub struct SummarizeTransform {
    digester: Digester,
    collector: Collector,
    every: Option<Duration>,
    max_events: Option<u64>,
    /// When the open window got its first row (tick clock and wall clock).
    opened: Option<(Instant, i64)>,
    schema: SchemaRef,
    metrics: ComponentMetrics,
    regenerations: Counter,
    fallbacks: Vec<(&'static str, Counter)>,
    pipeline: Arc<str>,
    id: Arc<str>,
    warnings: LogLimiter,
    escalator: Option<Escalator>,
    /// The open window's events as JSON lines, in bytes; counted only with
    /// an escalator (it is what escalation is compared against).
    window_bytes: u64,
}

impl SummarizeTransform {
    pub(crate) fn new(
        cfg: &SummarizeConfig,
        cx: &BuildCx,
        layout: Layout,
        engine: Arc<Engine>,
        escalator: Option<Escalator>,
    ) -> Self {
        Self {
            digester: Digester::new(cfg, engine),
            collector: Collector::new(layout),
            every: cfg.every.map(|e| e.get()),
            max_events: cfg.max_events.map(|m| m.get()),
            opened: None,
            schema: output_schema(),
            metrics: cx.metrics.clone(),
            regenerations: cx.metrics.counter(SUMMARIZE_REGENERATIONS_TOTAL),
            fallbacks: FALLBACK_REASONS
                .iter()
                .map(|r| {
                    let c = cx
                        .metrics
                        .counter_with(SUMMARIZE_FALLBACKS_TOTAL, &[("reason", r)]);
                    (*r, c)
                })
                .collect(),
            pipeline: cx.pipeline.clone(),
            id: cx.id.clone(),
            warnings: LogLimiter::new(LOG_EVERY),
            escalator,
            window_bytes: 0,
        }
    }

    /// The digester, for tools that summarise facts directly.
    pub fn digester(&self) -> &Digester {
        &self.digester
    }

    fn should_warn(&mut self) -> bool {
        self.warnings.ready(Instant::now())
    }

    fn row(
        &self,
        facts: &Facts,
        d: &Digest,
        escalated: Option<(Escalation, u64)>,
        (start, end): (i64, i64),
    ) -> Result<RecordBatch, ComponentError> {
        let model = match d.author {
            Author::Model => self.digester.model_name().to_owned(),
            Author::Template => "template".to_owned(),
        };
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(TimestampMillisecondArray::from(vec![start])),
            Arc::new(TimestampMillisecondArray::from(vec![end])),
            Arc::new(StringArray::from(vec![d.summary.as_str()])),
            Arc::new(StringArray::from(vec![facts.severity.as_str()])),
            Arc::new(UInt64Array::from(vec![facts.events])),
            Arc::new(StringArray::from(vec![facts.to_json().to_string()])),
            Arc::new(StringArray::from(vec![model])),
            Arc::new(UInt32Array::from(vec![clamp(d.prompt_tokens)])),
            Arc::new(UInt32Array::from(vec![clamp(d.generated_tokens)])),
            Arc::new(Float64Array::from(vec![d.generation_seconds])),
            Arc::new(StringArray::from(vec![
                escalated.as_ref().and_then(|(e, _)| e.answer.as_deref()),
            ])),
            Arc::new(UInt64Array::from(vec![
                escalated.as_ref().and_then(|(e, _)| e.sent_bytes),
            ])),
            Arc::new(UInt64Array::from(vec![escalated.as_ref().map(|(_, w)| *w)])),
        ];
        RecordBatch::try_new(self.schema.clone(), columns).map_err(|e| {
            ComponentError::internal("digest_row", format!("building the digest row: {e}"))
        })
    }

    /// Closes the open window; emits its digest unless it is empty.
    async fn close(&mut self, out: &mut Emitter) -> Result<(), ComponentError> {
        let opened_ms = self.opened.take().map_or_else(now_ms, |(_, ms)| ms);
        let Some(facts) = self.collector.take() else {
            return Ok(());
        };
        let digest = self.digester.digest(&facts).await;
        if digest.attempts > 1 {
            self.regenerations.increment((digest.attempts - 1) as u64);
        }
        if let Some(reason) = digest.fallback {
            if let Some((_, c)) = self.fallbacks.iter().find(|(r, _)| *r == reason) {
                c.increment(1);
            }
            if self.should_warn() {
                warn!(pipeline = %self.pipeline, component_id = %self.id, reason,
                    "Model summary unusable; used the template summary.");
            }
        }
        let window_bytes = std::mem::take(&mut self.window_bytes);
        let escalated = match &mut self.escalator {
            Some(esc) => {
                let text = self.digester.facts_text(&facts);
                Some((
                    esc.escalate(&digest.summary, &text, window_bytes).await,
                    window_bytes,
                ))
            }
            None => None,
        };
        let row = self.row(&facts, &digest, escalated, (opened_ms, now_ms()))?;
        out.emit(row).await
    }
}

/// Bytes of `rows` of `batch` as JSON lines: what shipping them raw costs.
fn json_bytes(batch: &RecordBatch, rows: std::ops::Range<usize>) -> u64 {
    let slice = batch.slice(rows.start, rows.len());
    sluice_core::json::to_json_lines(&slice).map_or(0, |b| b.len() as u64)
}

impl Transform for SummarizeTransform {
    async fn process(&mut self, msg: Msg, out: &mut Emitter) -> Result<(), ComponentError> {
        let batch = msg.into_rows()?;
        let arrival = now_ms();
        let n = batch.num_rows();
        let mut start = 0;
        while start < n {
            if self.opened.is_none() {
                self.opened = Some((Instant::now(), arrival));
            }
            let room = self.max_events.map_or(n - start, |m| {
                usize::try_from(m.saturating_sub(self.collector.events())).unwrap_or(usize::MAX)
            });
            let end = start + room.clamp(1, n - start);
            if self.escalator.is_some() {
                self.window_bytes += json_bytes(&batch, start..end);
            }
            let dropped = self
                .collector
                .add(&batch, start..end, arrival)
                .map_err(|e| {
                    ComponentError::user("bad_column", format!("reading the input columns: {e}"))
                })?;
            for (issue, rows) in dropped {
                self.metrics.discarded(issue.reason(), false, rows);
                if self.should_warn() {
                    warn!(pipeline = %self.pipeline, component_id = %self.id, rows,
                        reason = issue.reason(), "Dropped rows with unusable names.");
                }
            }
            start = end;
            if self
                .max_events
                .is_some_and(|m| self.collector.events() >= m)
            {
                self.close(out).await?;
            }
        }
        Ok(())
    }

    fn tick_interval(&self) -> Option<Duration> {
        self.every
            .map(|e| (e / 10).clamp(Duration::from_millis(10), Duration::from_secs(1)))
    }

    async fn on_tick(&mut self, now: Instant, out: &mut Emitter) -> Result<(), ComponentError> {
        let due = match (self.every, self.opened) {
            (Some(every), Some((opened, _))) => now.saturating_duration_since(opened) >= every,
            _ => false,
        };
        if due {
            self.close(out).await?;
        }
        Ok(())
    }

    async fn finish(&mut self, out: &mut Emitter) -> Result<(), ComponentError> {
        self.close(out).await
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::FALLBACK_REASONS;
    use crate::engine::EngineError;
    use crate::ground::Verdict;

    #[test]
    fn every_fallback_reason_has_a_registered_counter() {
        let engine = [
            EngineError::Missing {
                path: PathBuf::new(),
            },
            EngineError::Load {
                path: PathBuf::new(),
                reason: String::new(),
            },
            EngineError::ChatTemplate {
                name: String::new(),
                reason: String::new(),
            },
            EngineError::Runtime(String::new()),
            EngineError::PromptTooLong {
                prompt: 1,
                max_tokens: 1,
                n_ctx: 1,
            },
            EngineError::Grammar(String::new()),
            EngineError::Decode(String::new()),
            EngineError::Timeout(Duration::ZERO),
            EngineError::Stopped,
        ]
        .map(|e| e.reason());
        let ungrounded = Verdict {
            ungrounded: vec!["x".into()],
            missing: vec![],
        }
        .reason();
        let missing = Verdict {
            ungrounded: vec![],
            missing: vec!["x".into()],
        }
        .reason();
        for r in engine
            .into_iter()
            .chain([ungrounded, missing, "incomplete", "empty"])
        {
            assert!(FALLBACK_REASONS.contains(&r), "{r}");
        }
    }
}
