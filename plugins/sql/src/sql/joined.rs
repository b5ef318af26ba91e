//! `type: sql` over several inputs joined as tables: mode detection and
//! planning with one table per input.

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::TableReference;
use sluice_core::Validator;
use sluice_core::config::InputSchema;

use super::config::{
    Planned, SqlConfig, event_time_index, warn_ignored_without_event_time, windowed_schema,
};
use crate::engine::{INPUT_TABLE, QueryEngine, table_references};

/// An input after the first (driving) one of a join.
#[derive(Debug, Clone)]
pub(crate) struct Other {
    pub schema: SchemaRef,
    /// Event-time column; `None` keeps rows by arrival time.
    pub event_time: Option<usize>,
}

/// The input id a table reference names, if it is a bare name in `inputs`.
fn input_named<'a>(r: &TableReference, inputs: &'a [String]) -> Option<&'a str> {
    match r {
        TableReference::Bare { table } => inputs
            .iter()
            .find(|i| i.as_str() == table.as_ref())
            .map(String::as_str),
        _ => None,
    }
}

fn quoted_list(ids: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    ids.into_iter()
        .map(|i| format!("`{}`", i.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

impl SqlConfig {
    /// Whether the query joins the inputs: there are two or more and the
    /// query reads at least one of them by id as a table. Each input is then
    /// a table of its own (the first drives the windows) and table `input`
    /// does not exist.
    pub fn joins_inputs(&self) -> bool {
        self.inputs.len() >= 2
            && table_references(&self.query)
                .is_ok_and(|refs| refs.iter().any(|r| input_named(r, &self.inputs).is_some()))
    }

    /// Plans a joined query with one table per input (`inputs` in the order
    /// of the config's `inputs`).
    pub(crate) fn plan_joined(&self, inputs: &[InputSchema], v: &mut Validator) -> Option<Planned> {
        let ids: Vec<&str> = inputs.iter().map(|i| i.id.as_ref()).collect();
        if ids.len() != self.inputs.len()
            || ids.iter().zip(&self.inputs).any(|(a, b)| *a != b.as_str())
        {
            v.error(
                &["inputs"],
                format!(
                    "the schemas of inputs {} are not all known",
                    quoted_list(&self.inputs)
                ),
            );
            return None;
        }
        let Some(window) = &self.window else {
            v.error(
                &["query"],
                format!(
                    "a query that joins its inputs ({}) needs a `window`",
                    quoted_list(&ids)
                ),
            )
            .help("add e.g. `window: { tumbling: 10s, context: 30s }`: the first input's rows are evaluated once per window, against the other inputs' rows within `context` of it");
            return None;
        };
        let spec = window.resolve(v);
        let context_ms = window.context_ms(v);
        let tables_ok = self.check_tables(&ids, v);
        let event_times = event_times(inputs, v);
        if let Ok(times) = &event_times
            && times.iter().all(Option::is_none)
        {
            warn_ignored_without_event_time(window, v);
        }

        let tables: Vec<(&str, SchemaRef)> = inputs
            .iter()
            .map(|i| (i.id.as_ref(), i.schema.clone()))
            .collect();
        let engine = match QueryEngine::plan_tables(&self.query, &tables) {
            Ok(e) => Some(e),
            // Unknown tables were reported with a clearer message already.
            Err(_) if !tables_ok => None,
            Err(e) => {
                let described: Vec<String> = inputs
                    .iter()
                    .map(|i| {
                        let cols: Vec<&str> = i
                            .schema
                            .fields()
                            .iter()
                            .map(|f| f.name().as_str())
                            .collect();
                        format!("`{}` ({})", i.id, cols.join(", "))
                    })
                    .collect();
                v.error(&["query"], format!("invalid query: {e}"))
                    .help(format!(
                        "the query reads one table per input: {}",
                        described.join("; ")
                    ));
                None
            }
        }?;
        let output_schema = windowed_schema(engine.output_schema(), v)?;
        let mut event_times = event_times.ok()?.into_iter();
        let event_time = event_times.next()?;
        let others = inputs
            .iter()
            .skip(1)
            .zip(event_times)
            .map(|(i, event_time)| Other {
                schema: i.schema.clone(),
                event_time,
            })
            .collect();
        Some(Planned {
            engine,
            window: Some(spec?),
            event_time,
            output_schema,
            others,
            context_ms: context_ms?,
        })
    }

    /// Reports tables the query reads that are not inputs; `false` if any.
    fn check_tables(&self, ids: &[&str], v: &mut Validator) -> bool {
        let Ok(refs) = table_references(&self.query) else {
            // A parse error is reported by planning.
            return true;
        };
        let mut ok = true;
        for r in refs {
            if input_named(&r, &self.inputs).is_some() {
                continue;
            }
            ok = false;
            let name = r.to_string();
            if name == INPUT_TABLE {
                v.error(
                    &["query"],
                    format!(
                        "table `{INPUT_TABLE}` is not defined: this query joins its inputs, so each input is a table named by its id"
                    ),
                )
                .help(format!("read {} instead", quoted_list(ids)));
            } else {
                v.error(&["query"], format!("unknown table `{name}`"))
                    .help(format!(
                        "the tables are the inputs {} (quote ids with `-`: \"line-3\")",
                        quoted_list(ids)
                    ));
            }
        }
        ok
    }
}

/// The event-time column of every input. A join windows all inputs by event
/// time or all by arrival time; a mix is reported at the first input that
/// differs from the first one.
fn event_times(inputs: &[InputSchema], v: &mut Validator) -> Result<Vec<Option<usize>>, ()> {
    let mut found = Vec::with_capacity(inputs.len());
    let mut ok = true;
    for (k, input) in inputs.iter().enumerate() {
        let at = k.to_string();
        let what = format!("input `{}`", input.id);
        match event_time_index(&input.schema, &what, &["inputs", &at], v) {
            Ok(t) => found.push(t),
            Err(()) => ok = false,
        }
    }
    if !ok {
        return Err(());
    }
    if let Some(first) = found.first() {
        let driving = &inputs[0].id;
        if let Some(k) = found.iter().position(|t| t.is_some() != first.is_some()) {
            let (with, without) = if first.is_some() {
                (driving, &inputs[k].id)
            } else {
                (&inputs[k].id, driving)
            };
            v.error(
                &["inputs", &k.to_string()],
                format!(
                    "input `{with}` has an event time but `{without}` has none: a join windows all of its inputs by event time, or all by arrival time"
                ),
            )
            .help("declare `event_time: <column>` on the source of every input");
            return Err(());
        }
    }
    Ok(found)
}
