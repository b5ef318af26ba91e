//! `type: sql`: configuration, checks and planning.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::Deserialize;
use sluice_core::schema::{TIMESTAMP_MS, event_time_column, with_event_time};
use sluice_core::{BufferConfig, BuildCx, BuildError, TransformConfig, Validator};

use super::transform::SqlTransform;
use crate::engine::{INPUT_TABLE, QueryEngine};
use crate::util::errors_to_build_error;
use crate::window::{WindowConfig, WindowSpec};

/// Name of the first output column of a windowed query.
pub const WINDOW_START: &str = "window_start";
/// Name of the second output column of a windowed query.
pub const WINDOW_END: &str = "window_end";

/// DataFusion SQL over table `input`, per closed window or per batch.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct SqlConfig {
    /// Upstream component ids.
    pub inputs: Vec<String>,
    /// Input edge settings.
    #[serde(default)]
    pub buffer: BufferConfig,
    /// A DataFusion `SELECT` reading table `input` (the input stream's columns).
    pub query: String,
    /// Run the query once per closed window; without it the query runs on
    /// every batch (projection, filter, per-row functions).
    #[serde(default)]
    pub window: Option<WindowConfig>,
    /// Emit every open window when the inputs close (shutdown or upstream
    /// end) so a clean stop loses nothing. Default `true`; `false` drops the
    /// buffered rows and counts them as `shutdown`.
    #[serde(default = "default_true")]
    pub flush_on_shutdown: bool,
}

fn default_true() -> bool {
    true
}

impl SqlConfig {
    /// The `type` of this component in pipeline YAML.
    pub const TYPE: &'static str = "sql";
}

/// Everything `check` and `build` derive from the config and input schema.
#[derive(Debug)]
pub(crate) struct Planned {
    pub engine: QueryEngine,
    pub window: Option<WindowSpec>,
    /// Index of the event-time column (windowed queries over event time).
    pub event_time: Option<usize>,
    pub output_schema: SchemaRef,
}

impl SqlConfig {
    pub(crate) fn plan(&self, input: &SchemaRef, v: &mut Validator) -> Option<Planned> {
        let window = self.window.as_ref().map(|w| (w, w.resolve(v)));
        let event_time = match &window {
            Some((w, _)) => check_event_time(input, w, v),
            None => Ok(None),
        };
        let engine = match QueryEngine::plan(&self.query, input) {
            Ok(e) => Some(e),
            Err(e) => {
                let columns: Vec<&str> = input.fields().iter().map(|f| f.name().as_str()).collect();
                v.error(&["query"], format!("invalid query: {e}"))
                    .help(format!(
                        "the query reads table `{INPUT_TABLE}` with columns {}",
                        columns.join(", ")
                    ));
                None
            }
        };
        let engine = engine?;
        let query_schema = engine.output_schema().clone();
        let output_schema = match &window {
            Some(_) => windowed_schema(&query_schema, v)?,
            None => Arc::new(carry_event_time(input, &query_schema)),
        };
        let window = match window {
            Some((_, spec)) => Some(spec?),
            None => None,
        };
        Some(Planned {
            engine,
            window,
            event_time: event_time.ok()?,
            output_schema,
        })
    }
}

/// Finds the event-time column of a windowed query's input, if declared.
fn check_event_time(
    input: &SchemaRef,
    w: &WindowConfig,
    v: &mut Validator,
) -> Result<Option<usize>, ()> {
    let Some(col) = event_time_column(input) else {
        let ignored = [
            ("allowed_lateness", w.allowed_lateness),
            ("idle_timeout", w.idle_timeout),
        ];
        for (key, value) in ignored {
            if value.is_some() {
                v.warn(&["window", key], format!("`{key}` is ignored: the input has no event time, so windows follow the wall clock"))
                    .help("declare `event_time: <column>` on the source to window by event time");
            }
        }
        return Ok(None);
    };
    let Ok(idx) = input.index_of(col) else {
        v.error(
            &["window"],
            format!("the input's event-time column `{col}` is not one of its columns"),
        );
        return Err(());
    };
    match input.field(idx).data_type() {
        DataType::Timestamp(TimeUnit::Millisecond, _) => Ok(Some(idx)),
        other => {
            v.error(
                &["window"],
                format!(
                    "the input's event-time column `{col}` is {other}, expected {TIMESTAMP_MS}"
                ),
            )
            .help("declare the column as `timestamp_ms` in the source schema");
            Err(())
        }
    }
}

/// `window_start`, `window_end`, then the query's columns; event time is
/// `window_start`.
fn windowed_schema(query: &SchemaRef, v: &mut Validator) -> Option<SchemaRef> {
    for name in [WINDOW_START, WINDOW_END] {
        if query.column_with_name(name).is_some() {
            v.error(
                &["query"],
                format!("the query returns a column `{name}`, which the window adds"),
            )
            .help("rename it: every output row starts with `window_start` and `window_end`");
            return None;
        }
    }
    let mut fields = vec![
        Arc::new(Field::new(WINDOW_START, TIMESTAMP_MS, false)),
        Arc::new(Field::new(WINDOW_END, TIMESTAMP_MS, false)),
    ];
    fields.extend(query.fields().iter().cloned());
    Some(Arc::new(with_event_time(Schema::new(fields), WINDOW_START)))
}

/// A per-batch query keeps the input's event time when it passes that column
/// through unchanged in name and type.
fn carry_event_time(input: &SchemaRef, query: &SchemaRef) -> Schema {
    let schema = Schema::new(query.fields().clone());
    match event_time_column(input) {
        Some(col)
            if query.field_with_name(col).ok().map(Field::data_type)
                == input.field_with_name(col).ok().map(Field::data_type) =>
        {
            with_event_time(schema, col)
        }
        _ => schema,
    }
}

impl TransformConfig for SqlConfig {
    type Component = SqlTransform;

    fn inputs(&self) -> &[String] {
        &self.inputs
    }

    fn buffer(&self) -> BufferConfig {
        self.buffer
    }

    fn check(&self, input: &SchemaRef, v: &mut Validator) -> Option<SchemaRef> {
        self.plan(input, v).map(|p| p.output_schema)
    }

    fn build(&self, cx: &BuildCx) -> Result<SqlTransform, BuildError> {
        let input = cx.require_input_schema()?;
        let mut v = Validator::new();
        match self.plan(&input, &mut v) {
            Some(planned) if !v.has_errors() => Ok(SqlTransform::new(self, planned, input, cx)),
            _ => Err(errors_to_build_error(&cx.id, v)),
        }
    }
}
