//! `type: sql`: configuration, checks and planning.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::Deserialize;
use sluice_core::config::InputSchema;
use sluice_core::schema::{TIMESTAMP_MS, event_time_column, with_event_time};
use sluice_core::{BufferConfig, BuildCx, BuildError, TransformConfig, Validator};

use super::transform::SqlTransform;
use crate::engine::{INPUT_TABLE, QueryEngine};
use crate::sql::joined::Other;
use crate::window::{WindowConfig, WindowSpec};

/// Name of the first output column of a windowed query.
pub const WINDOW_START: &str = "window_start";
/// Name of the second output column of a windowed query.
pub const WINDOW_END: &str = "window_end";

/// DataFusion SQL over table `input`, per closed window or per batch; or, with
/// two or more inputs and a query that names them as tables, a windowed join
/// of the inputs (see the crate README).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct SqlConfig {
    /// Upstream component ids.
    pub inputs: Vec<String>,
    /// Input edge settings.
    #[serde(default)]
    pub buffer: BufferConfig,
    /// A DataFusion `SELECT` reading table `input` (the input stream's
    /// columns), or the inputs by id as tables to join them.
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
    /// Index of the event-time column (windowed queries over event time); of
    /// the first input in a join.
    pub event_time: Option<usize>,
    pub output_schema: SchemaRef,
    /// The inputs after the first, in `inputs` order, when the query joins
    /// its inputs; empty otherwise.
    pub others: Vec<Other>,
    /// How far around a window the other inputs' rows are visible (joins).
    pub context_ms: i64,
}

impl SqlConfig {
    pub(crate) fn plan(&self, input: &SchemaRef, v: &mut Validator) -> Option<Planned> {
        let window = self.window.as_ref().map(|w| (w, w.resolve(v)));
        if self.window.as_ref().is_some_and(|w| w.context.is_some()) {
            v.error(
                &["window", "context"],
                "`context` applies only to a query that joins two or more inputs",
            )
            .help("list two or more `inputs` and read them by id as tables, e.g. `FROM bagged b WHERE NOT EXISTS (SELECT 1 FROM scans s WHERE ...)`");
        }
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
            others: Vec::new(),
            context_ms: 0,
        })
    }
}

/// Finds the event-time column of a windowed query's input, if declared.
fn check_event_time(
    input: &SchemaRef,
    w: &WindowConfig,
    v: &mut Validator,
) -> Result<Option<usize>, ()> {
    let found = event_time_index(input, "the input", &["window"], v)?;
    if found.is_none() {
        warn_ignored_without_event_time(w, v);
    }
    Ok(found)
}

/// Warns about window keys that only apply to event time.
pub(super) fn warn_ignored_without_event_time(w: &WindowConfig, v: &mut Validator) {
    let ignored = [
        ("allowed_lateness", w.allowed_lateness),
        ("idle_timeout", w.idle_timeout),
    ];
    for (key, value) in ignored {
        if value.is_some() {
            v.warn(
                &["window", key],
                format!(
                    "`{key}` is ignored: the input has no event time, so windows follow the wall clock"
                ),
            )
            .help("declare `event_time: <column>` on the source to window by event time");
        }
    }
}

/// The index of `input`'s declared event-time column (`None` when it declares
/// none); a missing or mistyped column is reported at `path`.
pub(super) fn event_time_index(
    input: &SchemaRef,
    what: &str,
    path: &[&str],
    v: &mut Validator,
) -> Result<Option<usize>, ()> {
    let Some(col) = event_time_column(input) else {
        return Ok(None);
    };
    let Ok(idx) = input.index_of(col) else {
        v.error(
            path,
            format!("{what}'s event-time column `{col}` is not one of its columns"),
        );
        return Err(());
    };
    match input.field(idx).data_type() {
        DataType::Timestamp(TimeUnit::Millisecond, _) => Ok(Some(idx)),
        other => {
            v.error(
                path,
                format!("{what}'s event-time column `{col}` is {other}, expected {TIMESTAMP_MS}"),
            )
            .help("declare the column as `timestamp_ms` in the source schema");
            Err(())
        }
    }
}

/// `window_start`, `window_end`, then the query's columns; event time is
/// `window_start`.
pub(super) fn windowed_schema(query: &SchemaRef, v: &mut Validator) -> Option<SchemaRef> {
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
    const TYPE: &'static str = "sql";
    type Component = SqlTransform;

    fn inputs(&self) -> &[String] {
        &self.inputs
    }

    fn buffer(&self) -> BufferConfig {
        self.buffer
    }

    fn reads_inputs_apart(&self) -> bool {
        self.joins_inputs()
    }

    fn check(&self, inputs: &[InputSchema], v: &mut Validator) -> Option<SchemaRef> {
        if self.joins_inputs() {
            self.plan_joined(inputs, v).map(|p| p.output_schema)
        } else {
            self.plan(InputSchema::stream(inputs)?, v)
                .map(|p| p.output_schema)
        }
    }

    fn build(&self, cx: &BuildCx) -> Result<SqlTransform, BuildError> {
        let input = cx.require_input_schema()?;
        let mut v = Validator::new();
        let planned = if self.joins_inputs() {
            self.plan_joined(&cx.inputs, &mut v)
        } else {
            self.plan(&input, &mut v)
        };
        match planned {
            Some(planned) if !v.has_errors() => Ok(SqlTransform::new(self, planned, input, cx)),
            _ => Err(v.into_build_error(&cx.id)),
        }
    }
}
