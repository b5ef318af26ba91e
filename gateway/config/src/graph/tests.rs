use std::path::Path;

use super::*;
use crate::diagnostic::{Diagnostic, Severity};

/// Builds nodes from `(id, role, inputs)`; every id key sits on its own line
/// (node i at line i+1) and every input at column 10 + 10*k of that line.
fn nodes(spec: &[(&str, Role, Option<&[&str]>)]) -> Vec<GraphNode> {
    spec.iter()
        .enumerate()
        .map(|(i, (id, role, inputs))| {
            let line = i as u64 + 1;
            GraphNode {
                id: (*id).to_owned(),
                role: *role,
                pos: Pos::new(line, 3),
                inputs: inputs.map(|list| {
                    list.iter()
                        .enumerate()
                        .map(|(k, name)| InputRef {
                            id: (*name).to_owned(),
                            pos: Pos::new(line, 10 + 10 * k as u64),
                        })
                        .collect()
                }),
                inputs_pos: Pos::new(line, 9),
            }
        })
        .collect()
}

fn run(spec: &[(&str, Role, Option<&[&str]>)]) -> (Graph, Vec<Diagnostic>, Vec<GraphNode>) {
    let nodes = nodes(spec);
    let mut out = Collector::new(Path::new("p.yaml"));
    let graph = check(&nodes, &mut out);
    (graph, out.finish().0, nodes)
}

fn ids(graph: &Graph, nodes: &[GraphNode]) -> Vec<String> {
    graph.order.iter().map(|&i| nodes[i].id.clone()).collect()
}

use Role::{Sink, Source, Transform};

#[test]
fn valid_graph_has_no_diagnostics_and_a_data_flow_order() {
    let (g, diags, n) = run(&[
        ("out", Sink, Some(&["b"])),
        ("b", Transform, Some(&["a"])),
        ("a", Transform, Some(&["src"])),
        ("src", Source, None),
    ]);
    assert_eq!(diags, []);
    assert_eq!(ids(&g, &n), ["src", "a", "b", "out"]);
    assert_eq!(g.upstream[0], Some(vec![1]));
}

#[test]
fn unknown_input_is_an_error_at_the_entry_with_a_suggestion() {
    let (g, diags, _) = run(&[
        ("telemetry", Source, None),
        ("per_device", Transform, Some(&["telemetry"])),
        ("out", Sink, Some(&["per_device", "telemtry"])),
    ]);
    assert_eq!(diags.len(), 1, "{diags:?}");
    let d = &diags[0];
    assert_eq!((d.line, d.column), (3, 20));
    assert_eq!(
        d.message,
        "input `telemtry` of sink `out` does not match any component"
    );
    assert_eq!(d.help.as_deref(), Some("did you mean `telemetry`?"));
    assert_eq!(g.upstream[2], None);
}

#[test]
fn sink_without_inputs_is_an_error_at_its_inputs() {
    let (_, diags, _) = run(&[
        ("s", Source, None),
        ("out", Sink, Some(&[])),
        ("o2", Sink, Some(&["s"])),
    ]);
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!((diags[0].line, diags[0].column), (2, 9));
    assert_eq!(diags[0].message, "sink `out` has no inputs");
}

#[test]
fn inputs_naming_a_sink_or_the_sink_itself_are_errors() {
    let (_, diags, _) = run(&[
        ("s", Source, None),
        ("a", Sink, Some(&["s"])),
        ("b", Sink, Some(&["a", "b"])),
    ]);
    let messages: Vec<&str> = diags.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "input `a` of sink `b` is a sink; sinks have no output",
            "sink `b` lists itself as an input"
        ]
    );
}

#[test]
fn input_listed_twice_is_an_error() {
    let (_, diags, _) = run(&[("s", Source, None), ("o", Sink, Some(&["s", "s"]))]);
    assert_eq!(diags.len(), 1);
    assert_eq!((diags[0].line, diags[0].column), (2, 20));
    assert_eq!(diags[0].message, "input `s` of sink `o` is listed twice");
}

#[test]
fn unused_source_and_transform_are_warnings_at_their_ids() {
    let (_, diags, _) = run(&[
        ("s", Source, None),
        ("idle", Source, None),
        ("t", Transform, Some(&["s"])),
        ("o", Sink, Some(&["s"])),
    ]);
    assert!(
        diags.iter().all(|d| d.severity == Severity::Warning),
        "{diags:?}"
    );
    let found: Vec<(u64, &str)> = diags.iter().map(|d| (d.line, d.message.as_str())).collect();
    assert_eq!(
        found,
        [
            (2, "source `idle` is not used by any transform or sink"),
            (3, "transform `t` is not used by any transform or sink"),
        ]
    );
}

#[test]
fn unused_warnings_are_skipped_while_some_inputs_are_unknown() {
    let (_, diags, _) = run(&[("s", Source, None), ("o", Sink, None)]);
    assert_eq!(diags, []);
}

#[test]
fn cycle_is_named_in_data_flow_order_at_the_closing_input() {
    let (g, diags, n) = run(&[
        ("s", Source, None),
        ("a", Transform, Some(&["s", "c"])),
        ("b", Transform, Some(&["a"])),
        ("c", Transform, Some(&["b"])),
        ("after", Transform, Some(&["c"])),
        ("o", Sink, Some(&["after"])),
    ]);
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(
        diags[0].message,
        "transforms form a cycle: `a` -> `b` -> `c` -> `a`"
    );
    assert_eq!((diags[0].line, diags[0].column), (2, 20));
    assert_eq!(
        ids(&g, &n),
        ["s", "o"],
        "cycle members and what follows them are not ordered"
    );
}

#[test]
fn transform_reading_itself_is_reported_as_such() {
    let (_, diags, _) = run(&[
        ("s", Source, None),
        ("a", Transform, Some(&["s", "a"])),
        ("o", Sink, Some(&["a"])),
    ]);
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(diags[0].message, "transform `a` lists itself as an input");
}

#[test]
fn each_separate_cycle_is_reported() {
    let (_, diags, _) = run(&[
        ("a", Transform, Some(&["b"])),
        ("b", Transform, Some(&["a"])),
        ("c", Transform, Some(&["d"])),
        ("d", Transform, Some(&["c"])),
        ("o", Sink, Some(&["a", "c"])),
    ]);
    let messages: Vec<&str> = diags.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "transforms form a cycle: `a` -> `b` -> `a`",
            "transforms form a cycle: `c` -> `d` -> `c`"
        ]
    );
}
