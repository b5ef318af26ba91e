//! Checks of the component graph that `inputs` describes: unknown or invalid
//! inputs, sinks without inputs, unused components and cycles. Every problem
//! is reported, and the data-flow order is computed for what remains.

use std::collections::{HashMap, VecDeque};

use crate::diagnostic::Collector;
use crate::parse::tree::Pos;
use crate::suggest;

/// The role of a component, from the section that declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Source,
    Transform,
    Sink,
}

impl Role {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Role::Source => "source",
            Role::Transform => "transform",
            Role::Sink => "sink",
        }
    }
}

/// One entry of a component's `inputs`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct InputRef {
    pub id: String,
    pub pos: Pos,
}

/// A component as the graph checks see it.
#[derive(Debug, Clone)]
pub(crate) struct GraphNode {
    pub id: String,
    pub role: Role,
    /// Position of the id key.
    pub pos: Pos,
    /// `None` when the component's inputs could not be read (its config is
    /// broken); checks that need them are skipped.
    pub inputs: Option<Vec<InputRef>>,
    /// Position of the `inputs` value, or of the component when it has none.
    pub inputs_pos: Pos,
}

/// What the checks found out about the graph.
#[derive(Debug, Default)]
pub(crate) struct Graph {
    /// Node indexes in data-flow order: sources, transforms (topologically),
    /// then sinks. Transforms on or behind a cycle are left out.
    pub order: Vec<usize>,
    /// For each node, the indexes of its inputs, or `None` when one of them is
    /// invalid or unknown (its input schema cannot be known).
    pub upstream: Vec<Option<Vec<usize>>>,
}

/// Runs every graph check, reporting into `out`.
pub(crate) fn check(nodes: &[GraphNode], out: &mut Collector) -> Graph {
    let index: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id.as_str(), i))
        .collect();
    let upstream: Vec<Option<Vec<usize>>> = nodes
        .iter()
        .map(|n| resolve_inputs(n, nodes, &index, out))
        .collect();
    report_unused(nodes, out);
    // Transform-to-transform edges, including those of components with some
    // invalid inputs: a cycle is a cycle even when another input is misspelt.
    let feeds: Vec<Vec<usize>> = nodes
        .iter()
        .map(|n| match (&n.inputs, n.role) {
            (Some(inputs), Role::Transform) => inputs
                .iter()
                .filter_map(|i| index.get(i.id.as_str()).copied())
                .filter(|&j| nodes[j].role == Role::Transform)
                .collect(),
            _ => Vec::new(),
        })
        .collect();
    let cyclic = report_cycles(nodes, &feeds, out);
    let order = data_flow_order(nodes, &feeds, &cyclic);
    Graph { order, upstream }
}

/// Checks one component's `inputs` and resolves them to node indexes.
fn resolve_inputs(
    node: &GraphNode,
    nodes: &[GraphNode],
    index: &HashMap<&str, usize>,
    out: &mut Collector,
) -> Option<Vec<usize>> {
    if node.role == Role::Source {
        return Some(Vec::new());
    }
    let inputs = node.inputs.as_ref()?;
    let (role, id) = (node.role.name(), &node.id);
    if inputs.is_empty() {
        out.error(node.inputs_pos, format!("{role} `{id}` has no inputs"))
            .help =
            Some("list the components it reads from, e.g. `inputs: [my_source]`".to_owned());
        return None;
    }
    let mut resolved = Vec::with_capacity(inputs.len());
    let mut valid = true;
    for (i, input) in inputs.iter().enumerate() {
        let name = &input.id;
        if inputs[..i].iter().any(|earlier| earlier.id == *name) {
            out.error(
                input.pos,
                format!("input `{name}` of {role} `{id}` is listed twice"),
            );
            valid = false;
            continue;
        }
        match index.get(name.as_str()) {
            None => {
                let readable = nodes
                    .iter()
                    .filter(|n| n.role != Role::Sink)
                    .map(|n| n.id.as_str());
                let help = suggest::help(name, readable);
                out.error(
                    input.pos,
                    format!("input `{name}` of {role} `{id}` does not match any component"),
                )
                .help = help;
                valid = false;
            }
            Some(&j) if nodes[j].role == Role::Sink => {
                let msg = if *name == *id {
                    format!("sink `{id}` lists itself as an input")
                } else {
                    format!("input `{name}` of {role} `{id}` is a sink; sinks have no output")
                };
                out.error(input.pos, msg).help =
                    Some("only sources and transforms can be inputs".to_owned());
                valid = false;
            }
            Some(&j) => resolved.push(j),
        }
    }
    valid.then_some(resolved)
}

/// Warns about sources and transforms that no component reads. Skipped when
/// some component's inputs are unknown: it may be the reader.
fn report_unused(nodes: &[GraphNode], out: &mut Collector) {
    if nodes
        .iter()
        .any(|n| n.role != Role::Source && n.inputs.is_none())
    {
        return;
    }
    for node in nodes.iter().filter(|n| n.role != Role::Sink) {
        let read = nodes
            .iter()
            .filter(|n| n.id != node.id)
            .filter_map(|n| n.inputs.as_ref())
            .any(|inputs| inputs.iter().any(|i| i.id == node.id));
        if !read {
            let what = match node.role {
                Role::Source => "its data is received and dropped",
                _ => "its output is discarded",
            };
            out.warn(
                node.pos,
                format!(
                    "{} `{}` is not used by any transform or sink",
                    node.role.name(),
                    node.id
                ),
            )
            .help = Some(format!(
                "{what}; list it in some component's `inputs` or remove it"
            ));
        }
    }
}

/// Reports one cycle per strongly connected group of transforms and returns,
/// per node, whether it lies on a cycle.
fn report_cycles(nodes: &[GraphNode], feeds: &[Vec<usize>], out: &mut Collector) -> Vec<bool> {
    let mut cyclic = vec![false; nodes.len()];
    let mut groups = strongly_connected(feeds);
    groups.sort_by_key(|g| g.iter().copied().min());
    for mut group in groups {
        group.sort_unstable();
        let start = group[0];
        if group.len() == 1 && !feeds[start].contains(&start) {
            continue;
        }
        for &m in &group {
            cyclic[m] = true;
        }
        let path = cycle_through(start, &group, feeds);
        // The last hop closes the cycle: `start` lists it as an input.
        let closing = path.iter().rev().nth(1).copied().unwrap_or(start);
        let pos = nodes[start]
            .inputs
            .iter()
            .flatten()
            .find(|i| i.id == nodes[closing].id)
            .map_or(nodes[start].pos, |i| i.pos);
        let message = if path.len() == 2 {
            format!("transform `{}` lists itself as an input", nodes[start].id)
        } else {
            let names: Vec<String> = path.iter().map(|&i| format!("`{}`", nodes[i].id)).collect();
            format!("transforms form a cycle: {}", names.join(" -> "))
        };
        out.error(pos, message).help =
            Some("data must flow from sources to sinks without coming back".to_owned());
    }
    cyclic
}

/// Tarjan's algorithm over `feeds` (node -> its upstream nodes). Groups come
/// out in no particular order; each lists its members.
fn strongly_connected(feeds: &[Vec<usize>]) -> Vec<Vec<usize>> {
    struct State<'a> {
        feeds: &'a [Vec<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        groups: Vec<Vec<usize>>,
    }
    fn visit(s: &mut State<'_>, v: usize) {
        s.index[v] = Some(s.next);
        s.low[v] = s.next;
        s.next += 1;
        s.stack.push(v);
        s.on_stack[v] = true;
        for &w in &s.feeds[v] {
            match s.index[w] {
                None => {
                    visit(s, w);
                    s.low[v] = s.low[v].min(s.low[w]);
                }
                Some(iw) if s.on_stack[w] => s.low[v] = s.low[v].min(iw),
                Some(_) => {}
            }
        }
        if Some(s.low[v]) == s.index[v] {
            let mut group = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack[w] = false;
                group.push(w);
                if w == v {
                    break;
                }
            }
            s.groups.push(group);
        }
    }
    let n = feeds.len();
    let mut s = State {
        feeds,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        groups: Vec::new(),
    };
    for v in 0..n {
        if s.index[v].is_none() {
            visit(&mut s, v);
        }
    }
    s.groups
}

/// A shortest cycle through `start` inside `group`, in data-flow direction,
/// beginning and ending with `start`.
fn cycle_through(start: usize, group: &[usize], feeds: &[Vec<usize>]) -> Vec<usize> {
    let mut prev: HashMap<usize, usize> = HashMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        if feeds[start].contains(&v) {
            let mut path = vec![v];
            let mut cur = v;
            while cur != start {
                cur = prev.get(&cur).copied().unwrap_or(start);
                path.push(cur);
            }
            path.reverse();
            path.push(start);
            return path;
        }
        // Downstream of `v` inside the group, in file order.
        for &w in group.iter().filter(|&&w| feeds[w].contains(&v)) {
            if w != start && !prev.contains_key(&w) {
                prev.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    vec![start, start]
}

/// Sources in file order, transforms in topological order (file order among
/// those that are ready together), then sinks in file order.
fn data_flow_order(nodes: &[GraphNode], feeds: &[Vec<usize>], cyclic: &[bool]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..nodes.len())
        .filter(|&i| nodes[i].role == Role::Source)
        .collect();
    let mut pending: Vec<usize> = (0..nodes.len())
        .filter(|&i| nodes[i].role == Role::Transform && !cyclic[i])
        .collect();
    let mut done = vec![false; nodes.len()];
    while let Some(k) = pending
        .iter()
        .position(|&i| feeds[i].iter().all(|&u| done[u]))
    {
        let i = pending.remove(k);
        done[i] = true;
        order.push(i);
    }
    order.extend((0..nodes.len()).filter(|&i| nodes[i].role == Role::Sink));
    order
}

#[cfg(test)]
mod tests;
