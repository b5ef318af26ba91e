//! Walks the top level of a pipeline file and deserialises every component on
//! its own, so that each broken component reports its own problem.

use std::collections::HashMap;

use sluice_core::Validator;
use sluice_core::broker::BrokerConfig;
use sluice_core::{Catalog, SinkEntry, SourceEntry, TransformEntry};

use crate::diagnostic::Collector;
use crate::graph::{GraphNode, InputRef, Role};
use crate::parse::de::{self, from_node};
use crate::parse::tree::{Entry, Node, Pos};
use crate::suggest;

/// The top-level keys of a pipeline file.
const SECTIONS: &[&str] = &["broker", "sources", "transforms", "sinks"];

/// A deserialised component config.
#[derive(Debug)]
pub(crate) enum Config<C: Catalog> {
    Source(C::Source),
    Transform(C::Transform),
    Sink(C::Sink),
}

impl<C: Catalog> Config<C> {
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Config::Source(c) => c.type_name(),
            Config::Transform(c) => c.type_name(),
            Config::Sink(c) => c.type_name(),
        }
    }

    pub(crate) fn inputs(&self) -> &[String] {
        match self {
            Config::Source(_) => &[],
            Config::Transform(c) => c.inputs(),
            Config::Sink(c) => c.inputs(),
        }
    }
}

/// One component of the file, with or without a usable config.
#[derive(Debug)]
pub(crate) struct Component<'t, C: Catalog> {
    pub id: String,
    pub role: Role,
    /// Position of the id key.
    pub pos: Pos,
    /// The component's map (or whatever was written instead).
    pub node: &'t Node,
    /// `None` when deserialisation failed (already reported).
    pub config: Option<Config<C>>,
}

impl<C: Catalog> Component<'_, C> {
    /// The component as the graph checks see it. Inputs come from the config
    /// when it parsed, else from the tree when they are readable there, so a
    /// broken component still takes part in the graph checks.
    pub(crate) fn graph_node(&self) -> GraphNode {
        let inputs_node = self.node.get("inputs");
        let inputs = match &self.config {
            Some(config) => Some(
                config
                    .inputs()
                    .iter()
                    .enumerate()
                    .map(|(i, id)| InputRef {
                        id: id.clone(),
                        pos: self.node.find(&["inputs".to_owned(), i.to_string()]).pos,
                    })
                    .collect(),
            ),
            None => inputs_node.and_then(|n| {
                n.as_seq()?
                    .iter()
                    .map(|item| {
                        Some(InputRef {
                            id: item.as_text()?.to_owned(),
                            pos: item.pos,
                        })
                    })
                    .collect()
            }),
        };
        GraphNode {
            id: self.id.clone(),
            role: self.role,
            pos: self.pos,
            inputs,
            inputs_pos: inputs_node.map_or(self.node.pos, |n| n.pos),
        }
    }
}

/// Everything read from the file.
#[derive(Debug)]
pub(crate) struct Loaded<'t, C: Catalog> {
    pub broker: Option<BrokerConfig>,
    /// Components with unique ids, sources first, then transforms, then sinks,
    /// each in file order.
    pub components: Vec<Component<'t, C>>,
}

/// Reads the sections of `doc`, reporting every problem into `out`.
pub(crate) fn sections<'t, C: Catalog>(doc: &'t Node, out: &mut Collector) -> Loaded<'t, C> {
    let mut loaded = Loaded {
        broker: None,
        components: Vec::new(),
    };
    let Some(entries) = doc.as_map() else {
        let msg = if doc.is_null() {
            "the pipeline file is empty".to_owned()
        } else {
            format!(
                "a pipeline file must be a map of sections, found {}",
                doc.describe()
            )
        };
        out.error(doc.pos, msg).help =
            Some("start with `sources:` and `sinks:` (and optionally `transforms:`)".to_owned());
        return loaded;
    };
    let mut by_role: [Option<&Entry>; 3] = [None; 3];
    for entry in entries {
        let key = entry.key.as_text().unwrap_or_default();
        match key {
            "broker" => loaded.broker = broker(&entry.value, out),
            "sources" => by_role[0] = Some(entry),
            "transforms" => by_role[1] = Some(entry),
            "sinks" => by_role[2] = Some(entry),
            other => {
                let help = suggest::help(other, SECTIONS.iter().copied());
                out.error(
                    entry.key.pos,
                    format!("unknown section `{other}`, {}", de::one_of(SECTIONS)),
                )
                .help = help;
            }
        }
    }
    let mut seen: HashMap<String, (Role, Pos)> = HashMap::new();
    let roles = [Role::Source, Role::Transform, Role::Sink];
    for (role, entry) in roles.into_iter().zip(by_role) {
        let section = section_name(role);
        let Some(entry) = entry else {
            if role != Role::Transform {
                out.error(doc.pos, format!("missing `{section}` section"))
                    .help = Some(format!("a pipeline needs at least one {}", role.name()));
            }
            continue;
        };
        let components: &[Entry] = match entry.value.as_map() {
            Some(map) => map,
            None if entry.value.is_null() => &[],
            None => {
                out.error(
                    entry.value.pos,
                    format!(
                        "`{section}` must be a map from component id to component, found {}",
                        entry.value.describe()
                    ),
                );
                continue;
            }
        };
        if components.is_empty() && role != Role::Transform {
            out.error(entry.key.pos, format!("`{section}` is empty"))
                .help = Some(format!("a pipeline needs at least one {}", role.name()));
        }
        for c in components {
            if let Some(component) = component(role, c, &mut seen, out) {
                loaded.components.push(component);
            }
        }
    }
    loaded
}

fn section_name(role: Role) -> &'static str {
    match role {
        Role::Source => "sources",
        Role::Transform => "transforms",
        Role::Sink => "sinks",
    }
}

fn broker(node: &Node, out: &mut Collector) -> Option<BrokerConfig> {
    let config: BrokerConfig = if node.is_null() {
        BrokerConfig::default()
    } else {
        match from_node(node) {
            Ok(c) => c,
            Err(e) => {
                report_de_error(&e, node, out);
                return None;
            }
        }
    };
    let mut v = Validator::new();
    config.check(&mut v);
    report_issues(v, node, out);
    Some(config)
}

/// Checks the id and deserialises one component. Returns `None` for a
/// duplicate id: it is reported, and the first component with that id is the
/// one the graph sees.
fn component<'t, C: Catalog>(
    role: Role,
    entry: &'t Entry,
    seen: &mut HashMap<String, (Role, Pos)>,
    out: &mut Collector,
) -> Option<Component<'t, C>> {
    let id = entry.key.as_text().unwrap_or_default().to_owned();
    let pos = entry.key.pos;
    if !valid_id(&id) {
        out.error(pos, format!("invalid component id `{id}`")).help =
            Some("ids use lowercase letters, digits, `_` and `-`".to_owned());
    }
    let duplicate = match seen.get(&id) {
        Some((first_role, first)) => {
            out.error(
                pos,
                format!(
                    "duplicate id `{id}`: already used by the {} at {first}",
                    first_role.name()
                ),
            )
            .help = Some("ids must be unique across sources, transforms and sinks".to_owned());
            true
        }
        None => {
            seen.insert(id.clone(), (role, pos));
            false
        }
    };
    let node = &entry.value;
    let config = if node.as_map().is_none() {
        let found = node.describe();
        out.error(
            if node.is_null() { pos } else { node.pos },
            format!(
                "{} `{id}` must be a map starting with `type`, found {found}",
                role.name()
            ),
        );
        None
    } else {
        let parsed = match role {
            Role::Source => from_node(node).map(Config::Source),
            Role::Transform => from_node(node).map(Config::Transform),
            Role::Sink => from_node(node).map(Config::Sink),
        };
        match parsed {
            Ok(config) => Some(config),
            Err(e) => {
                report_component_error(role, &e, node, out);
                None
            }
        }
    };
    (!duplicate).then_some(Component {
        id,
        role,
        pos,
        node,
        config,
    })
}

/// Whether `id` is a valid component id: `[a-z0-9_-]+`.
pub(crate) fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Reports a component's deserialisation error; an unknown `type` is phrased
/// for the role, with a suggestion.
fn report_component_error(role: Role, e: &de::Error, node: &Node, out: &mut Collector) {
    let type_pos = node.get("type").map(|t| t.pos);
    match &e.unknown_variant {
        Some(u) if e.pos.is_some() && e.pos == type_pos => {
            let msg = format!(
                "unknown {} type `{}`, {}",
                role.name(),
                u.found,
                de::one_of(u.expected)
            );
            out.error(e.pos.unwrap_or(node.pos), msg).help =
                suggest::help(&u.found, u.expected.iter().copied());
        }
        _ => report_de_error(e, node, out),
    }
}

fn report_de_error(e: &de::Error, node: &Node, out: &mut Collector) {
    out.error(e.pos.unwrap_or(node.pos), e.message.clone());
}

/// Reports the issues of a `check`, each at the node its path names (or the
/// nearest node that exists).
pub(crate) fn report_issues(v: Validator, node: &Node, out: &mut Collector) {
    for issue in v.into_issues() {
        let pos = node.find(&issue.path).pos;
        out.issue(pos, issue.severity, issue.message, issue.help);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_lowercase_digits_underscore_and_dash() {
        assert!(valid_id("per_device-2"));
        assert!(!valid_id("PerDevice"));
        assert!(!valid_id("a.b"));
        assert!(!valid_id(""));
    }
}
