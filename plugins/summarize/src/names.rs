//! Metric names of the `summarize` transform.

use sluice_core::metrics::{MetricDoc, Unit};

/// Digests whose model summary was replaced by the template summary, by
/// `reason` (`ungrounded`, `missing_top`, `incomplete`, `empty`, `timeout`,
/// `prompt_too_long`, `grammar_error`, `model_error`, `model_unavailable`).
pub const SUMMARIZE_FALLBACKS_TOTAL: &str = "sluice_summarize_fallbacks_total";
/// Extra generations run because an answer failed the grounding check.
pub const SUMMARIZE_REGENERATIONS_TOTAL: &str = "sluice_summarize_regenerations_total";
/// Digests a `summarize` transform with `escalate:` handled, by `outcome`:
/// `answered` (the endpoint's answer is in the row), `failed` (see
/// [`SUMMARIZE_ESCALATION_FAILURES_TOTAL`]) or `paused` (not sent: the
/// endpoint failed recently).
pub const SUMMARIZE_ESCALATIONS_TOTAL: &str = "sluice_summarize_escalations_total";
/// Escalations that brought no answer, by `reason` (`connect`, `timeout`,
/// `tls`, `http_status`, `bad_answer`, `transport`).
pub const SUMMARIZE_ESCALATION_FAILURES_TOTAL: &str = "sluice_summarize_escalation_failures_total";
/// Request bytes sent to the escalation endpoint (digest and compact facts).
pub const SUMMARIZE_ESCALATION_SENT_BYTES_TOTAL: &str =
    "sluice_summarize_escalation_sent_bytes_total";
/// Bytes of the events behind the escalated digests, as JSON lines: what
/// sending the raw events instead would have cost.
pub const SUMMARIZE_ESCALATION_WINDOW_BYTES_TOTAL: &str =
    "sluice_summarize_escalation_window_bytes_total";

/// Help texts of the metrics above.
pub const METRICS: &[MetricDoc] = &[
    MetricDoc::counter(
        SUMMARIZE_FALLBACKS_TOTAL,
        Unit::Count,
        "Digests whose model summary was replaced by the template, by reason.",
    ),
    MetricDoc::counter(
        SUMMARIZE_REGENERATIONS_TOTAL,
        Unit::Count,
        "Extra generations after an answer failed the grounding check.",
    ),
    MetricDoc::counter(
        SUMMARIZE_ESCALATIONS_TOTAL,
        Unit::Count,
        "Digests handled by a summarize escalation, by outcome.",
    ),
    MetricDoc::counter(
        SUMMARIZE_ESCALATION_FAILURES_TOTAL,
        Unit::Count,
        "Escalations that brought no answer, by reason.",
    ),
    MetricDoc::counter(
        SUMMARIZE_ESCALATION_SENT_BYTES_TOTAL,
        Unit::Bytes,
        "Request bytes sent to the escalation endpoint.",
    ),
    MetricDoc::counter(
        SUMMARIZE_ESCALATION_WINDOW_BYTES_TOTAL,
        Unit::Bytes,
        "Event bytes (JSON lines) behind the escalated digests.",
    ),
];
