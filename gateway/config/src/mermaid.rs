//! The pipeline graph as a Mermaid flowchart, and downstream lookups.

use sluice_core::{Catalog, SinkEntry, SourceEntry, TransformEntry};

use crate::Pipeline;
use crate::graph::Role;

/// The pipeline as a Mermaid `flowchart LR`: sources are stadiums, transforms
/// rectangles, sinks cylinders; each label is `id<br/>type`. Nodes are named
/// `n0`, `n1`, … in data-flow order, since component ids such as `end` or
/// `a-b` are not safe Mermaid node names.
pub fn mermaid<C: Catalog>(p: &Pipeline<C>) -> String {
    let nodes = p
        .sources
        .iter()
        .map(|(id, c)| (id.as_str(), Role::Source, c.type_name(), &[][..]))
        .chain(
            p.transforms
                .iter()
                .map(|(id, c)| (id.as_str(), Role::Transform, c.type_name(), c.inputs())),
        )
        .chain(
            p.sinks
                .iter()
                .map(|(id, c)| (id.as_str(), Role::Sink, c.type_name(), c.inputs())),
        );
    render(&p.order, nodes)
}

/// Ids of the components that list `id` in their `inputs`: transforms, then
/// sinks, each in file order.
pub fn downstream_of<C: Catalog>(p: &Pipeline<C>, id: &str) -> Vec<String> {
    let transforms = p.transforms.iter().map(|(d, c)| (d, c.inputs()));
    let sinks = p.sinks.iter().map(|(d, c)| (d, c.inputs()));
    transforms
        .chain(sinks)
        .filter(|(_, inputs)| inputs.iter().any(|i| i == id))
        .map(|(d, _)| d.clone())
        .collect()
}

/// Renders `(id, role, type, inputs)` nodes, numbered by their place in
/// `order` (nodes missing from it are numbered after it, in the given order).
fn render<'a>(
    order: &[String],
    nodes: impl Iterator<Item = (&'a str, Role, &'a str, &'a [String])>,
) -> String {
    let mut nodes: Vec<_> = nodes.collect();
    nodes.sort_by_key(|(id, ..)| order.iter().position(|o| o == id).unwrap_or(usize::MAX));
    let name = |id: &str| {
        nodes
            .iter()
            .position(|(n, ..)| *n == id)
            .map(|i| format!("n{i}"))
    };
    let mut out = String::from("flowchart LR\n");
    for (i, (id, role, ty, _)) in nodes.iter().enumerate() {
        let label = format!("\"{id}<br/>{ty}\"");
        let shape = match role {
            Role::Source => format!("([{label}])"),
            Role::Transform => format!("[{label}]"),
            Role::Sink => format!("[({label})]"),
        };
        out.push_str(&format!("    n{i}{shape}\n"));
    }
    for (id, _, _, inputs) in &nodes {
        for input in *inputs {
            if let (Some(from), Some(to)) = (name(input), name(id)) {
                out.push_str(&format!("    {from} --> {to}\n"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_shapes_per_role_labels_and_edges_in_data_flow_order() {
        let inputs_t = vec!["telemetry".to_owned()];
        let inputs_k = vec!["per_device".to_owned(), "telemetry".to_owned()];
        let order: Vec<String> = ["telemetry", "per_device", "cloud"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let nodes = [
            ("cloud", Role::Sink, "mqtt", inputs_k.as_slice()),
            ("telemetry", Role::Source, "mqtt", &[][..]),
            ("per_device", Role::Transform, "sql", inputs_t.as_slice()),
        ];
        assert_eq!(
            render(&order, nodes.into_iter()),
            "flowchart LR\n\
             \x20   n0([\"telemetry<br/>mqtt\"])\n\
             \x20   n1[\"per_device<br/>sql\"]\n\
             \x20   n2[(\"cloud<br/>mqtt\")]\n\
             \x20   n0 --> n1\n\
             \x20   n1 --> n2\n\
             \x20   n0 --> n2\n"
        );
    }
}
