//! The pipeline loader: YAML text in, a validated pipeline or diagnostics out.
//!
//! The catalog holds light real components (the MQTT source and sink, the
//! file and console sinks) and a pass-through transform defined here, so
//! the loader, the type-first deserialiser, the graph and schema checks and
//! the rendering of every diagnostic run without the heavy plugins.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

/// `type: pass`: forwards its input unchanged; `require` names columns the
/// input must have.
mod pass {
    use serde::Deserialize;
    use sluice_core::arrow_schema::SchemaRef;
    use sluice_core::{
        BufferConfig, BuildCx, BuildError, ComponentError, Emitter, InputSchema, Msg, Transform,
        TransformConfig, Validator,
    };

    /// Config of the pass-through transform.
    #[derive(Debug, Clone, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct PassConfig {
        inputs: Vec<String>,
        #[serde(default)]
        buffer: BufferConfig,
        #[serde(default)]
        require: Vec<String>,
    }

    /// The running pass-through transform.
    pub struct Pass;

    impl TransformConfig for PassConfig {
        const TYPE: &'static str = "pass";
        type Component = Pass;

        fn inputs(&self) -> &[String] {
            &self.inputs
        }

        fn buffer(&self) -> BufferConfig {
            self.buffer
        }

        fn check(&self, inputs: &[InputSchema], v: &mut Validator) -> Option<SchemaRef> {
            let input = InputSchema::stream(inputs)?;
            for (i, column) in self.require.iter().enumerate() {
                if input.field_with_name(column).is_err() {
                    v.error(
                        &["require", &i.to_string()],
                        format!("the input has no column `{column}`"),
                    );
                }
            }
            Some(input.clone())
        }

        fn build(&self, _cx: &BuildCx) -> Result<Pass, BuildError> {
            Ok(Pass)
        }
    }

    impl Transform for Pass {
        async fn process(&mut self, msg: Msg, out: &mut Emitter) -> Result<(), ComponentError> {
            out.emit_msg(msg).await
        }
    }
}

/// The catalog the loader is fuzzed with.
// Only the config side is driven; the running enums are generated too.
#[allow(dead_code)]
mod catalog {
    sluice_core::catalog! {
        sources {
            Mqtt(sluice_plugin_mqtt::MqttSourceConfig),
        }
        transforms {
            Pass(super::pass::PassConfig),
        }
        sinks {
            Mqtt(sluice_plugin_mqtt::MqttSinkConfig),
            File(sluice_plugin_io::FileSinkConfig),
            Console(sluice_plugin_io::ConsoleSinkConfig),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match sluice_config::load_str::<catalog::Catalog>(Path::new("fuzz.yaml"), text) {
        Ok(pipeline) => {
            for w in &pipeline.warnings {
                std::hint::black_box(w.to_string());
            }
            std::hint::black_box(sluice_config::mermaid(&pipeline));
            for id in &pipeline.order {
                std::hint::black_box(sluice_config::downstream_of(&pipeline, id));
            }
        }
        Err(diagnostics) => {
            let rendered = diagnostics.to_string();
            assert!(
                diagnostics.0.is_empty() || !rendered.is_empty(),
                "diagnostics render to nothing"
            );
            std::hint::black_box(rendered);
        }
    }
});
