//! Component types resolve through the catalog's type-first deserialiser.

use sluice_core::{Payload, SourceEntry, TransformEntry, Validator};

use crate::AnySourceConfig;

fn source(yaml: &str) -> Result<AnySourceConfig, String> {
    serde_saphyr::from_str(yaml).map_err(|e| e.to_string())
}

#[test]
fn camera_sources_parse_and_validate_as_frame_streams() {
    let cfg =
        source("type: camera\ncamera: shelf\ndevice: 0\nresolution: 640x480\nfps: 15\nqueue: 2\n")
            .unwrap();
    assert_eq!(cfg.type_name(), "camera");
    let mut v = Validator::new();
    let schema = cfg.check(&mut v);
    assert!(v.into_issues().is_empty());
    assert_eq!(Payload::of(&schema.unwrap()), Payload::Frames);
}

#[test]
fn camera_sources_reject_unknown_keys_and_bad_values() {
    let e = source("type: camera\ncamera: c\nfsp: 5\n").unwrap_err();
    assert!(e.contains("unknown field `fsp`"), "{e}");
    let e = source("type: camera\ncamera: c\nresolution: big\n").unwrap_err();
    assert!(e.contains("invalid resolution `big`"), "{e}");
    let cfg = source("type: camera\ncamera: c\nfps: 0\n").unwrap();
    let mut v = Validator::new();
    assert!(cfg.check(&mut v).is_none());
    assert_eq!(v.into_issues()[0].path, ["fps"]);
}

#[test]
fn unknown_source_types_list_camera_among_the_kinds() {
    let e = source("type: webcam\n").unwrap_err();
    assert!(e.contains("expected one of mqtt, frames, camera"), "{e}");
}

/// A component that exists only in this test: `type: tag` adds a constant
/// string column.
mod tag {
    use std::sync::Arc;

    use serde::Deserialize;
    use sluice_core::arrow_array::{ArrayRef, RecordBatch, StringArray};
    use sluice_core::arrow_schema::{DataType, Field, Schema, SchemaRef};
    use sluice_core::{
        BufferConfig, BuildCx, BuildError, ComponentError, Emitter, InputSchema, Msg, Transform,
        TransformConfig, Validator,
    };

    #[derive(Debug, Clone, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct TagConfig {
        pub inputs: Vec<String>,
        pub value: String,
    }

    pub struct Tag {
        value: String,
        schema: SchemaRef,
    }

    fn with_tag(input: &SchemaRef) -> SchemaRef {
        let mut fields = input.fields().to_vec();
        fields.push(Arc::new(Field::new("tag", DataType::Utf8, false)));
        Arc::new(Schema::new(fields))
    }

    impl TransformConfig for TagConfig {
        const TYPE: &'static str = "tag";
        type Component = Tag;
        fn inputs(&self) -> &[String] {
            &self.inputs
        }
        fn buffer(&self) -> BufferConfig {
            BufferConfig::default()
        }
        fn check(&self, inputs: &[InputSchema], v: &mut Validator) -> Option<SchemaRef> {
            let input = InputSchema::stream(inputs)?;
            if input.field_with_name("tag").is_ok() {
                v.error(&["value"], "the input already has a `tag` column");
                return None;
            }
            Some(with_tag(input))
        }
        fn build(&self, cx: &BuildCx) -> Result<Tag, BuildError> {
            Ok(Tag {
                value: self.value.clone(),
                schema: with_tag(&cx.require_input_schema()?),
            })
        }
    }

    impl Transform for Tag {
        async fn process(&mut self, msg: Msg, out: &mut Emitter) -> Result<(), ComponentError> {
            let batch = msg.into_rows()?;
            let tags: ArrayRef = Arc::new(StringArray::from(vec![
                self.value.as_str();
                batch.num_rows()
            ]));
            let mut columns = batch.columns().to_vec();
            columns.push(tags);
            let tagged = RecordBatch::try_new(self.schema.clone(), columns)
                .map_err(|e| ComponentError::internal("tag", e.to_string()))?;
            out.emit(tagged).await
        }
    }
}

/// A catalog with a test-only component: the `Tag` line is all it takes.
// The test drives the transform side; sources and sinks are generated too.
#[allow(dead_code)]
mod with_tag {
    sluice_core::catalog! {
        sources {
            Mqtt(sluice_plugin_mqtt::MqttSourceConfig),
        }
        transforms {
            Filter(sluice_plugin_sql::FilterConfig),
            Tag(super::tag::TagConfig),
        }
        sinks {
            File(sluice_plugin_io::FileSinkConfig),
        }
    }
}

#[tokio::test]
async fn a_component_added_by_one_table_line_parses_checks_builds_and_runs() {
    use std::sync::Arc;

    use sluice_core::arrow_array::{Int64Array, RecordBatch};
    use sluice_core::arrow_schema::{DataType, Field, Schema};
    use sluice_core::metrics::{ComponentKind, ComponentLabels};
    use sluice_core::{
        BuildCx, ComponentMetrics, Delivery, EdgeMetrics, Emitter, Msg, Output, Transform, WhenFull,
    };

    assert_eq!(with_tag::TRANSFORM_KINDS, ["filter", "tag"]);
    assert_eq!(with_tag::SOURCE_KINDS, ["mqtt"]);
    assert_eq!(with_tag::SINK_KINDS, ["file"]);
    let cfg: with_tag::AnyTransformConfig =
        serde_saphyr::from_str("type: tag\ninputs: [a]\nvalue: line-3\n").unwrap();
    assert_eq!(cfg.type_name(), "tag");
    assert_eq!(cfg.input_payload(), Payload::Rows);
    assert_eq!(cfg.inputs(), ["a"]);
    let e =
        serde_saphyr::from_str::<with_tag::AnyTransformConfig>("type: tag\ninputs: [a]\nvalu: x\n")
            .unwrap_err()
            .to_string();
    assert!(e.contains("unknown field `valu`"), "{e}");
    let e = serde_saphyr::from_str::<with_tag::AnyTransformConfig>("type: tga\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("expected one of filter, tag"), "{e}");

    let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
    let mut v = Validator::new();
    let out_schema = cfg
        .check(&sluice_core::InputSchema::only(schema.clone()), &mut v)
        .unwrap();
    assert!(v.into_issues().is_empty());
    assert_eq!(out_schema.field(1).name(), "tag");
    let mut v = Validator::new();
    assert!(
        cfg.check(&sluice_core::InputSchema::only(out_schema.clone()), &mut v)
            .is_none()
    );
    assert_eq!(v.into_issues()[0].path, ["value"]);

    let labels = ComponentLabels::new("p", "t", ComponentKind::Transform, "tag");
    let metrics = ComponentMetrics::new(labels);
    let cx = BuildCx {
        pipeline: "p".into(),
        id: "t".into(),
        inputs: sluice_core::InputSchema::only(schema.clone()),
        metrics: metrics.clone(),
    };
    let mut t = cfg.build(&cx).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let output = Output {
        tx,
        when_full: WhenFull::Block,
        edge: EdgeMetrics::new("p", "t", "out"),
    };
    let mut emitter = Emitter::new(vec![output], metrics);
    let batch = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1, 2]))]).unwrap();
    t.process(Msg::Rows(batch), &mut emitter).await.unwrap();
    t.finish(&mut emitter).await.unwrap();
    let Delivery { msg, .. } = rx.try_recv().unwrap();
    let rows = msg.into_rows().unwrap();
    assert_eq!(rows.schema(), out_schema);
    assert_eq!(rows.num_rows(), 2);
}
