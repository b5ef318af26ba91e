//! `type: summarize`: validation against the input schema, the output
//! schema, and building the running transform.

use std::path::Path;
use std::sync::Arc;

use sluice_core::InputSchema;
use sluice_core::arrow_schema::{DataType, Field, Schema, SchemaRef};
use sluice_core::schema::{TIMESTAMP_MS, event_time_column};
use sluice_core::{BufferConfig, BuildCx, BuildError, TransformConfig, Validator};

use crate::config::{FACTS_PLACEHOLDER, SamplingConfig, SummarizeConfig};
use crate::engine::{self, EngineError, LoraSpec, ModelSpec};
use crate::escalate::Escalator;
use crate::facts::Layout;
use crate::transform::SummarizeTransform;

/// Key columns used when `keys` is not set, when the input has them.
pub const DEFAULT_KEYS: [&str; 2] = ["device", "zone"];

/// How to get the default model, for error messages.
pub const FETCH_HELP: &str = "run `models/slm/fetch.sh` to fetch the default model \
(SmolLM2-135M-Instruct.Q4_1.gguf into models/slm/), or point `model` at any \
llama-architecture GGUF file";

/// The digest rows: one per closed, non-empty window. The last three
/// columns are null without `escalate:`: the endpoint's answer (null when it
/// failed or escalation is paused), the request bytes sent, and the window's
/// events as JSON lines in bytes (what sending them raw would cost).
pub fn output_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("window_start", TIMESTAMP_MS, false),
        Field::new("window_end", TIMESTAMP_MS, false),
        Field::new("summary", DataType::Utf8, false),
        Field::new("severity", DataType::Utf8, false),
        Field::new("event_count", DataType::UInt64, false),
        Field::new("facts", DataType::Utf8, false),
        Field::new("model", DataType::Utf8, false),
        Field::new("prompt_tokens", DataType::UInt32, false),
        Field::new("generated_tokens", DataType::UInt32, false),
        Field::new("generation_seconds", DataType::Float64, false),
        Field::new("escalated_summary", DataType::Utf8, true),
        Field::new("escalation_bytes", DataType::UInt64, true),
        Field::new("window_bytes", DataType::UInt64, true),
    ]))
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

fn is_key(t: &DataType) -> bool {
    is_text(t) || t.is_integer()
}

fn is_time(t: &DataType) -> bool {
    matches!(t, DataType::Timestamp(..) | DataType::Int64)
}

fn columns(input: &SchemaRef) -> String {
    input
        .fields()
        .iter()
        .map(|f| format!("`{}`", f.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn need(
    v: &mut Validator,
    input: &SchemaRef,
    path: &str,
    name: &str,
    ok: fn(&DataType) -> bool,
    what: &str,
) -> bool {
    match input.field_with_name(name) {
        Ok(f) if ok(f.data_type()) => true,
        Ok(f) => {
            v.error(
                &[path],
                format!("`{name}` is {}, expected {what}", f.data_type()),
            );
            false
        }
        Err(_) => {
            v.error(&[path], format!("`{name}` is not a column of the input"))
                .help(format!("the input has the columns {}", columns(input)));
            false
        }
    }
}

impl SummarizeConfig {
    /// The `type` of this component in pipeline YAML.
    pub const TYPE: &'static str = "summarize";

    /// Checks everything but the model file; returns the column layout when
    /// the settings fit the input.
    pub fn layout(&self, input: &SchemaRef, v: &mut Validator) -> Option<Layout> {
        let mut ok = true;
        if self.every.is_none() && self.max_events.is_none() {
            v.error(
                &[],
                "set `every`, `max_events` or both: nothing would close a window",
            );
            ok = false;
        }
        if self.every.is_some_and(|e| e.get().is_zero()) {
            v.error(&["every"], "`every` must be positive");
            ok = false;
        }
        let time = match &self.time {
            Some(t) => {
                ok &= need(
                    v,
                    input,
                    "time",
                    t,
                    is_time,
                    "a timestamp or int64 milliseconds",
                );
                Some(t.clone())
            }
            None => event_time_column(input).map(str::to_owned),
        };
        if let Some(k) = &self.kind {
            ok &= need(v, input, "kind", k, is_key, "a string or integer column");
        }
        let keys: Vec<String> = match &self.keys {
            Some(keys) => {
                for k in keys {
                    ok &= need(v, input, "keys", k, is_key, "a string or integer column");
                }
                keys.clone()
            }
            None => DEFAULT_KEYS
                .iter()
                .filter(|k| input.field_with_name(k).is_ok())
                .map(|k| (*k).to_owned())
                .collect(),
        };
        if keys.is_empty() && self.kind.is_none() {
            v.warn(
                &["keys"],
                "no key or kind column: digests can only count events",
            )
            .help("set `keys: [device]` or `kind: <column>`");
        }
        for m in &self.measures {
            ok &= need(
                v,
                input,
                "measures",
                m,
                |t| t.is_numeric(),
                "a numeric column",
            );
        }
        if let Some(c) = &self.severity.column {
            ok &= need(
                v,
                input,
                "severity",
                c,
                |t| t.is_numeric() || is_text(t),
                "a number or a word",
            );
        }
        let s = &self.severity;
        if !(s.warning_score.is_finite() && s.critical_score.is_finite())
            || s.warning_score > s.critical_score
            || s.warning_events > s.critical_events
        {
            v.error(
                &["severity"],
                "warning thresholds must be finite and not above the critical ones",
            );
            ok = false;
        }
        if !self.prompt.contains(FACTS_PLACEHOLDER) {
            v.error(
                &["prompt"],
                format!("the prompt must contain `{FACTS_PLACEHOLDER}`"),
            );
            ok = false;
        }
        if let SamplingConfig::Seeded(s) = self.sampling
            && !(s.temperature.is_finite() && s.temperature > 0.0)
        {
            v.error(
                &["sampling", "temperature"],
                "the temperature must be above 0",
            );
            ok = false;
        }
        if self.threads.get() > 64 {
            v.error(&["threads"], "at most 64 decode threads");
            ok = false;
        }
        if self.max_tokens.get() + 64 > self.context.get() as usize {
            v.error(
                &["max_tokens"],
                format!(
                    "`max_tokens` leaves no room for the prompt in a context of {}",
                    self.context
                ),
            );
            ok = false;
        }
        if let Some(e) = &self.escalate {
            ok &= e.check(v).is_some();
        }
        ok.then(|| Layout {
            time,
            kind: self.kind.clone(),
            keys,
            measures: self.measures.clone(),
            severity: self.severity.clone(),
            max_keys: self.max_keys.get(),
        })
    }

    /// The model, adapter and template to run.
    pub fn model_spec(&self) -> ModelSpec<'_> {
        ModelSpec {
            path: Path::new(self.model.as_str()),
            lora: self.lora.as_ref().map(|l| LoraSpec {
                path: Path::new(l.as_str()),
                scale: self.lora_scale,
            }),
            chat_template: self.chat_template.as_deref(),
        }
    }

    /// Reports a model or adapter file that is missing or not loadable.
    pub fn check_model(&self, v: &mut Validator) -> bool {
        if !(self.lora_scale.is_finite() && self.lora_scale >= 0.0) {
            v.error(
                &["lora_scale"],
                format!("`lora_scale` is {}", self.lora_scale),
            )
            .help("use a number from 0 (adapter off) to 1 (as trained) or a little above");
            return false;
        }
        match engine::probe_model(&self.model_spec()) {
            Ok(()) => true,
            Err(e @ EngineError::Adapter { .. }) => {
                v.error(&["lora"], e.to_string()).help(
                    "give the path of a LoRA adapter GGUF converted for this model \
                     (llama.cpp's convert_lora_to_gguf.py), or leave `lora` out",
                );
                false
            }
            Err(e @ EngineError::Missing { .. }) => {
                v.error(&["model"], e.to_string()).help(FETCH_HELP);
                false
            }
            Err(e @ EngineError::ChatTemplate { .. }) => {
                v.error(&["chat_template"], e.to_string()).help(
                    "use a llama.cpp built-in template name (chatml, gemma, llama3, phi3, \
                     mistral-v7, ...), or leave `chat_template` out to use the GGUF's own",
                );
                false
            }
            Err(e) => {
                v.error(&["model"], e.to_string())
                    .help("the file must be a GGUF model of an architecture llama.cpp supports");
                false
            }
        }
    }
}

impl TransformConfig for SummarizeConfig {
    const TYPE: &'static str = "summarize";
    const METRICS: &'static [sluice_core::metrics::MetricDoc] = crate::names::METRICS;
    type Component = SummarizeTransform;

    fn inputs(&self) -> &[String] {
        &self.inputs
    }

    fn buffer(&self) -> BufferConfig {
        self.buffer
    }

    fn check(&self, inputs: &[InputSchema], v: &mut Validator) -> Option<SchemaRef> {
        let input = InputSchema::stream(inputs)?;
        let layout = self.layout(input, v);
        let model_ok = self.check_model(v);
        (layout.is_some() && model_ok).then(output_schema)
    }

    fn build(&self, cx: &BuildCx) -> Result<SummarizeTransform, BuildError> {
        let input = cx.require_input_schema()?;
        let mut v = Validator::new();
        let Some(layout) = self.layout(&input, &mut v) else {
            return Err(v.into_build_error(&cx.id));
        };
        let engine = engine::engine(
            &self.model_spec(),
            self.threads.get(),
            self.context.get(),
            self.queue.get(),
        )
        .map_err(|e| match e {
            EngineError::Missing { .. } => {
                BuildError::msg(format!("component `{}`: {e}; {FETCH_HELP}", cx.id))
            }
            e => BuildError::context(format!("component `{}`", cx.id), e),
        })?;
        let escalator = match &self.escalate {
            None => None,
            Some(e) => {
                let mut v = Validator::new();
                let (endpoint, token) = e.check(&mut v).ok_or_else(|| {
                    BuildError::msg(format!("component `{}`: bad `escalate` settings", cx.id))
                })?;
                let esc = Escalator::new(e, endpoint, token, &cx.metrics).map_err(|reason| {
                    BuildError::msg(format!("component `{}`: escalate: {reason}", cx.id))
                })?;
                Some(esc)
            }
        };
        Ok(SummarizeTransform::new(self, cx, layout, engine, escalator))
    }
}
