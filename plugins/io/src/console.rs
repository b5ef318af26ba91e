//! `type: console`: prints rows to standard output.

use serde::Deserialize;
use sluice_core::arrow_schema::SchemaRef;
use sluice_core::{
    BufferConfig, BuildCx, BuildError, ComponentError, Msg, Sink, SinkConfig, Validator,
};
use tokio::io::{AsyncWriteExt, Stdout};

/// How rows are printed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsoleFormat {
    /// One JSON object per line.
    #[default]
    Json,
    /// An aligned text table per batch, prefixed with the component id.
    Table,
}

/// Config of the console sink.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct ConsoleSinkConfig {
    /// Upstream component ids.
    pub inputs: Vec<String>,
    /// Input edge settings.
    #[serde(default)]
    pub buffer: BufferConfig,
    /// `json` (default) or `table`.
    #[serde(default)]
    pub format: ConsoleFormat,
}

impl SinkConfig for ConsoleSinkConfig {
    const TYPE: &'static str = "console";
    type Component = ConsoleSink;

    fn inputs(&self) -> &[String] {
        &self.inputs
    }

    fn buffer(&self) -> BufferConfig {
        self.buffer
    }

    fn check(&self, _input: &SchemaRef, _v: &mut Validator) {}

    fn build(&self, cx: &BuildCx) -> Result<ConsoleSink, BuildError> {
        Ok(ConsoleSink {
            id: cx.id.to_string(),
            format: self.format,
            out: tokio::io::stdout(),
        })
    }
}

/// Running console sink.
#[derive(Debug)]
pub struct ConsoleSink {
    id: String,
    format: ConsoleFormat,
    out: Stdout,
}

/// Renders a batch the way the console sink prints it.
pub fn render(id: &str, format: ConsoleFormat, msg: &Msg) -> Result<Vec<u8>, ComponentError> {
    let batch = msg.rows()?;
    let encode = |e: sluice_core::arrow_schema::ArrowError| {
        ComponentError::internal("encode", format!("formatting rows: {e}"))
    };
    match format {
        ConsoleFormat::Json => sluice_core::json::to_json_lines(batch).map_err(encode),
        ConsoleFormat::Table => {
            let table = arrow_cast::pretty::pretty_format_batches(std::slice::from_ref(batch))
                .map_err(encode)?;
            Ok(format!("[{id}]\n{table}\n").into_bytes())
        }
    }
}

impl Sink for ConsoleSink {
    async fn write(&mut self, msg: &Msg) -> Result<(), ComponentError> {
        let text = render(&self.id, self.format, msg)?;
        self.out
            .write_all(&text)
            .await
            .map_err(|e| ComponentError::external("stdout", format!("writing to stdout: {e}")))
    }

    async fn flush(&mut self) -> Result<(), ComponentError> {
        self.out
            .flush()
            .await
            .map_err(|e| ComponentError::external("stdout", format!("flushing stdout: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sluice_core::arrow_array::{Int64Array, RecordBatch};

    use super::*;

    #[test]
    fn table_format_names_the_component_and_shows_values() {
        let b =
            RecordBatch::try_from_iter([("n", Arc::new(Int64Array::from(vec![42])) as _)]).unwrap();
        let text =
            String::from_utf8(render("digest", ConsoleFormat::Table, &Msg::Rows(b)).unwrap())
                .unwrap();
        assert!(text.starts_with("[digest]\n"), "{text}");
        assert!(text.contains("| 42 |"), "{text}");
    }
}
