//! The set of component types a runtime is handed.
//!
//! The config loader and the topology work against these traits only; the
//! binary picks the catalog (the `catalog!` table in `sluice-plugins`) and
//! hands it to them as a type parameter. So nothing in the runtime names a
//! plugin, and editing a plugin rebuilds the catalog and the binary, not
//! the runtime.
//!
//! Each trait is the object-level view of a component config whose concrete
//! type is chosen by its `type` key: what the loader and the topology ask of
//! any source, transform or sink, whatever it is.

use std::fmt::Debug;

use arrow_schema::SchemaRef;
use serde::de::DeserializeOwned;

use crate::component::{Sink, Source, Transform};
use crate::config::{BuildCx, InputSchema};
use crate::emitter::BufferConfig;
use crate::error::BuildError;
use crate::payload::Payload;
use crate::validate::Validator;

/// The component types of a runtime: one config type per role, each
/// deserialised type-first from a component's map.
pub trait Catalog: Debug + Clone + Send + Sync + 'static {
    /// Config of any source.
    type Source: SourceEntry;
    /// Config of any transform.
    type Transform: TransformEntry;
    /// Config of any sink.
    type Sink: SinkEntry;
}

/// Config of any source of a catalog.
pub trait SourceEntry: DeserializeOwned + Debug + Clone + Send + Sync + 'static {
    /// The running source.
    type Running: Source;
    /// The `type` of the component.
    fn type_name(&self) -> &'static str;
    /// Reports problems and returns the output schema when known.
    fn check(&self, v: &mut Validator) -> Option<SchemaRef>;
    /// Builds the running source.
    fn build(&self, cx: &BuildCx) -> Result<Self::Running, BuildError>;
}

/// Config of any transform of a catalog.
pub trait TransformEntry: DeserializeOwned + Debug + Clone + Send + Sync + 'static {
    /// The running transform.
    type Running: Transform;
    /// The `type` of the component.
    fn type_name(&self) -> &'static str;
    /// What the transform reads: rows, or camera frames.
    fn input_payload(&self) -> Payload;
    /// Upstream component ids.
    fn inputs(&self) -> &[String];
    /// Input edge settings.
    fn buffer(&self) -> BufferConfig;
    /// Whether the transform reads each input apart, so its inputs may
    /// differ in columns (a `sql` query joining its inputs as tables).
    fn reads_inputs_apart(&self) -> bool;
    /// Reports problems given the schema of every input and returns the
    /// output schema.
    fn check(&self, inputs: &[InputSchema], v: &mut Validator) -> Option<SchemaRef>;
    /// Builds the running transform.
    fn build(&self, cx: &BuildCx) -> Result<Self::Running, BuildError>;
}

/// Config of any sink of a catalog.
pub trait SinkEntry: DeserializeOwned + Debug + Clone + Send + Sync + 'static {
    /// The running sink.
    type Running: Sink;
    /// The `type` of the component.
    fn type_name(&self) -> &'static str;
    /// Upstream component ids.
    fn inputs(&self) -> &[String];
    /// Input edge settings.
    fn buffer(&self) -> BufferConfig;
    /// Reports problems given the input schema.
    fn check(&self, input: &SchemaRef, v: &mut Validator);
    /// Builds the running sink.
    fn build(&self, cx: &BuildCx) -> Result<Self::Running, BuildError>;
}
