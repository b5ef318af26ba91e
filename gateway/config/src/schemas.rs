//! Runs every component's own `check` in data-flow order, handing each the
//! schema of its input, and checks that components with several inputs get
//! the same columns from all of them. A transform that reads its inputs apart
//! (a `sql` query joining its inputs as tables) instead gets the schema of
//! each input and checks them itself.

use std::collections::HashMap;

use sluice_core::arrow_schema::{DataType, SchemaRef};
use sluice_core::config::InputSchema;
use sluice_core::schema::same_columns;
use sluice_core::{Catalog, Payload, SinkEntry, SourceEntry, TransformEntry, Validator};

use crate::diagnostic::Collector;
use crate::graph::Graph;
use crate::load::{Component, Config, report_issues};

/// Checks every component whose config parsed; returns the output schema of
/// each source and transform, by node index, where known.
pub(crate) fn check_all<C: Catalog>(
    components: &[Component<'_, C>],
    graph: &Graph,
    out: &mut Collector,
) -> HashMap<usize, SchemaRef> {
    let mut schemas: HashMap<usize, SchemaRef> = HashMap::new();
    for &i in &graph.order {
        let c = &components[i];
        let Some(config) = &c.config else { continue };
        let mut v = Validator::new();
        let output = match config {
            Config::Source(s) => s.check(&mut v),
            Config::Transform(t) if t.reads_inputs_apart() => {
                input_schemas(i, components, graph, &schemas)
                    .filter(|inputs| {
                        // Every input is checked, so each mismatch is reported.
                        inputs.iter().enumerate().fold(true, |fits, (k, input)| {
                            payload_fits(i, k, t.input_payload(), &input.schema, components, out)
                                && fits
                        })
                    })
                    .and_then(|inputs| t.check(&inputs, &mut v))
            }
            // Without a known input schema (upstream broken, or an invalid
            // input) the component's checks cannot run: they all need it.
            Config::Transform(t) => input_schema(i, components, graph, &schemas, out)
                .filter(|s| payload_fits(i, 0, t.input_payload(), s, components, out))
                .and_then(|_| input_schemas(i, components, graph, &schemas))
                .and_then(|inputs| t.check(&inputs, &mut v)),
            Config::Sink(k) => {
                if let Some(s) = input_schema(i, components, graph, &schemas, out)
                    .filter(|s| payload_fits(i, 0, Payload::Rows, s, components, out))
                {
                    k.check(&s, &mut v);
                }
                None
            }
        };
        report_issues(v, c.node, out);
        if let Some(schema) = output {
            schemas.insert(i, schema);
        }
    }
    schemas
}

/// Whether the payload flowing into component `i` (rows or camera frames)
/// on its input `k` is the one it takes; reports the mismatch at that input.
fn payload_fits<C: Catalog>(
    i: usize,
    k: usize,
    takes: Payload,
    input: &SchemaRef,
    components: &[Component<'_, C>],
    out: &mut Collector,
) -> bool {
    let carries = Payload::of(input);
    if carries == takes {
        return true;
    }
    let c = &components[i];
    let pos = c.node.find(&["inputs".to_owned(), k.to_string()]).pos;
    let kind = c.config.as_ref().map_or("", Config::type_name);
    let upstream = c
        .config
        .as_ref()
        .and_then(|config| config.inputs().get(k).cloned())
        .unwrap_or_default();
    out.error(
        pos,
        format!(
            "`{}` (type `{kind}`) takes {}, but its input `{upstream}` carries {}",
            c.id,
            takes.as_str(),
            carries.as_str()
        ),
    )
    .help = Some(match carries {
        Payload::Frames => {
            "camera frames go to a `detect` transform first; read its rows".to_owned()
        }
        Payload::Rows => {
            "this component reads camera frames from a `frames` or `camera` source".to_owned()
        }
    });
    false
}

/// The schema flowing into component `i`: that of its inputs, which must all
/// have the same columns. `None` when some input's schema is unknown or they
/// disagree (reported).
fn input_schema<C: Catalog>(
    i: usize,
    components: &[Component<'_, C>],
    graph: &Graph,
    schemas: &HashMap<usize, SchemaRef>,
    out: &mut Collector,
) -> Option<SchemaRef> {
    let upstream = graph.upstream.get(i)?.as_deref()?;
    let known: Vec<&SchemaRef> = upstream
        .iter()
        .map(|u| schemas.get(u))
        .collect::<Option<_>>()?;
    let (first, rest) = known.split_first()?;
    let mut agree = true;
    for (k, schema) in rest.iter().enumerate() {
        if !same_columns(first, schema) {
            let (a, b) = (&components[upstream[0]].id, &components[upstream[k + 1]].id);
            let pos = components[i]
                .node
                .find(&["inputs".to_owned(), (k + 1).to_string()])
                .pos;
            out.error(
                pos,
                format!(
                    "schema mismatch between inputs `{a}` and `{b}`: {}",
                    column_diff(first, schema, a, b)
                ),
            )
            .help = Some(same_columns_help(&components[i]));
            agree = false;
        }
    }
    agree.then(|| (*first).clone())
}

/// The schema of every input of component `i`, in `inputs` order. `None`
/// when some input's schema is unknown (its problem is reported elsewhere).
fn input_schemas<C: Catalog>(
    i: usize,
    components: &[Component<'_, C>],
    graph: &Graph,
    schemas: &HashMap<usize, SchemaRef>,
) -> Option<Vec<InputSchema>> {
    let upstream = graph.upstream.get(i)?.as_deref()?;
    upstream
        .iter()
        .map(|&u| {
            Some(InputSchema {
                id: components[u].id.as_str().into(),
                schema: schemas.get(&u)?.clone(),
            })
        })
        .collect()
}

/// How to fix inputs whose columns differ; a `sql` transform can join them.
fn same_columns_help<C: Catalog>(c: &Component<'_, C>) -> String {
    let rule = "all inputs of a component must have the same columns, in the same order";
    match &c.config {
        Some(Config::Transform(t)) if t.type_name() == "sql" => {
            let tables: Vec<String> = t.inputs().iter().map(|id| format!("`{id}`")).collect();
            format!(
                "{rule}; to join inputs with different columns, read each as a table named by its id ({}) instead of `input`, and set a `window`",
                tables.join(", ")
            )
        }
        _ => rule.to_owned(),
    }
}

/// Describes how the columns of `a` and `b` differ.
pub(crate) fn column_diff(a: &SchemaRef, b: &SchemaRef, a_name: &str, b_name: &str) -> String {
    let ty = |s: &SchemaRef, name: &str| -> Option<DataType> {
        s.field_with_name(name).ok().map(|f| f.data_type().clone())
    };
    let mut parts = Vec::new();
    for f in a.fields() {
        match ty(b, f.name()) {
            None => parts.push(format!("`{}` only in `{a_name}`", f.name())),
            Some(t) if &t != f.data_type() => parts.push(format!(
                "`{}` is {} in `{a_name}` but {t} in `{b_name}`",
                f.name(),
                f.data_type()
            )),
            Some(_) => {}
        }
    }
    for f in b.fields() {
        if ty(a, f.name()).is_none() {
            parts.push(format!("`{}` only in `{b_name}`", f.name()));
        }
    }
    if parts.is_empty() {
        let names = |s: &SchemaRef| {
            s.fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "same columns in a different order ({}) vs ({})",
            names(a),
            names(b)
        )
    } else {
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sluice_core::arrow_schema::{Field, Schema};

    use super::*;

    fn schema(cols: &[(&str, DataType)]) -> SchemaRef {
        Arc::new(Schema::new(
            cols.iter()
                .map(|(n, t)| Field::new(*n, t.clone(), true))
                .collect::<Vec<_>>(),
        ))
    }

    #[test]
    fn column_diff_lists_missing_and_retyped_columns() {
        let a = schema(&[
            ("device", DataType::Utf8),
            ("t", DataType::Float64),
            ("x", DataType::Int64),
        ]);
        let b = schema(&[
            ("device", DataType::Utf8),
            ("t", DataType::Int64),
            ("y", DataType::Boolean),
        ]);
        assert_eq!(
            column_diff(&a, &b, "a", "b"),
            "`t` is Float64 in `a` but Int64 in `b`; `x` only in `a`; `y` only in `b`"
        );
    }

    #[test]
    fn column_diff_explains_a_different_order() {
        let a = schema(&[("p", DataType::Utf8), ("q", DataType::Utf8)]);
        let b = schema(&[("q", DataType::Utf8), ("p", DataType::Utf8)]);
        assert_eq!(
            column_diff(&a, &b, "a", "b"),
            "same columns in a different order (p, q) vs (q, p)"
        );
    }
}
