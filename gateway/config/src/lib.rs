//! Pipeline YAML loading, validation with exact locations, and graph checks.
//!
//! A pipeline file declares components by id under `sources`, `transforms` and
//! `sinks`; transforms and sinks name their `inputs`. [`load_file`] reads,
//! parses and validates a file and returns either a [`Pipeline`] (possibly with
//! warnings) or every problem found, each at its exact line and column:
//!
//! ```no_run
//! # fn load<C: sluice_core::Catalog>() {
//! let pipeline = match sluice_config::load_file::<C>(std::path::Path::new("pipelines/line3.yaml")) {
//!     Ok(p) => p,
//!     Err(diagnostics) => {
//!         eprintln!("{diagnostics}");
//!         std::process::exit(1);
//!     }
//! };
//! for w in &pipeline.warnings {
//!     eprintln!("{w}");
//! }
//! # }
//! ```
//!
//! The text is parsed once into a tree of positioned nodes; each component is
//! then deserialised from its own subtree, so one broken component does not
//! hide the problems of the others. The YAML parser stays behind this crate.
#![warn(missing_docs)]

mod diagnostic;
mod graph;
mod load;
mod mermaid;
mod parse;
mod schemas;
mod suggest;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use sluice_core::Catalog;
use sluice_core::arrow_schema::SchemaRef;
use sluice_core::broker::BrokerConfig;

pub use diagnostic::{Diagnostic, Diagnostics, Severity};
pub use mermaid::{downstream_of, mermaid};

use diagnostic::Collector;
use load::Config;
use parse::tree::{self, Pos};

/// A validated pipeline file.
#[derive(Debug, Clone)]
pub struct Pipeline<C: Catalog> {
    /// The file stem, e.g. `line3` for `pipelines/line3.yaml`.
    pub name: String,
    /// The file it was loaded from.
    pub path: PathBuf,
    /// The embedded MQTT broker, when the file has a `broker:` section.
    pub broker: Option<BrokerConfig>,
    /// Sources by id, in file order.
    pub sources: IndexMap<String, C::Source>,
    /// Transforms by id, in file order.
    pub transforms: IndexMap<String, C::Transform>,
    /// Sinks by id, in file order.
    pub sinks: IndexMap<String, C::Sink>,
    /// Output schema of every source and transform whose schema is known
    /// statically.
    pub schemas: HashMap<String, SchemaRef>,
    /// Every component id in data-flow order: sources, then transforms
    /// (each after its inputs), then sinks.
    pub order: Vec<String>,
    /// Problems that do not stop the pipeline from running.
    pub warnings: Vec<Diagnostic>,
}

/// Reads, parses and validates the pipeline file at `path`, with the
/// component types of catalog `C`.
pub fn load_file<C: Catalog>(path: &Path) -> Result<Pipeline<C>, Diagnostics> {
    match std::fs::read_to_string(path) {
        Ok(text) => load_str(path, &text),
        Err(e) => Err(Diagnostics(vec![Diagnostic::error(
            path,
            0,
            0,
            format!("cannot read pipeline file: {e}"),
        )])),
    }
}

/// Parses and validates `text` as the pipeline file at `path` (used for the
/// name and in diagnostics; the file itself is not read).
pub fn load_str<C: Catalog>(path: &Path, text: &str) -> Result<Pipeline<C>, Diagnostics> {
    let mut out = Collector::new(path);
    let doc = match tree::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            out.error(e.pos.unwrap_or(Pos::START), e.message);
            return Err(out.finish());
        }
    };
    let loaded = load::sections::<C>(&doc, &mut out);
    let nodes: Vec<graph::GraphNode> = loaded.components.iter().map(|c| c.graph_node()).collect();
    let graph = graph::check(&nodes, &mut out);
    let schemas = schemas::check_all(&loaded.components, &graph, &mut out);
    if out.has_errors() {
        return Err(out.finish());
    }
    let mut pipeline = Pipeline {
        name: path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        path: path.to_owned(),
        broker: loaded.broker,
        sources: IndexMap::new(),
        transforms: IndexMap::new(),
        sinks: IndexMap::new(),
        schemas: schemas
            .into_iter()
            .map(|(i, s)| (nodes[i].id.clone(), s))
            .collect(),
        order: graph.order.iter().map(|&i| nodes[i].id.clone()).collect(),
        warnings: out.finish().0,
    };
    for c in loaded.components {
        match c.config {
            Some(Config::Source(s)) => {
                pipeline.sources.insert(c.id, s);
            }
            Some(Config::Transform(t)) => {
                pipeline.transforms.insert(c.id, t);
            }
            Some(Config::Sink(k)) => {
                pipeline.sinks.insert(c.id, k);
            }
            // Unreachable in practice: a component without a config was
            // reported as an error above.
            None => {}
        }
    }
    Ok(pipeline)
}

#[cfg(test)]
mod join_tests;
#[cfg(test)]
mod payload_tests;
#[cfg(test)]
mod tests;
