//! `type: file`: appends every row as one JSON object per line.

use std::path::PathBuf;

use serde::Deserialize;
use sluice_core::arrow_schema::SchemaRef;
use sluice_core::{
    BufferConfig, BuildCx, BuildError, ComponentError, EnvString, Msg, Sink, SinkConfig, Validator,
};
use tokio::fs::File;
use tokio::io::AsyncWriteExt;

/// Config of the file sink.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct FileSinkConfig {
    /// Upstream component ids.
    pub inputs: Vec<String>,
    /// Input edge settings.
    #[serde(default)]
    pub buffer: BufferConfig,
    /// File to append JSON lines to; parent directories are created.
    pub path: EnvString,
    /// `fsync` after every batch (slower, survives power loss). Default: the file
    /// is synced only on shutdown.
    #[serde(default)]
    pub sync_every_batch: bool,
}

impl SinkConfig for FileSinkConfig {
    const TYPE: &'static str = "file";
    type Component = FileSink;

    fn inputs(&self) -> &[String] {
        &self.inputs
    }

    fn buffer(&self) -> BufferConfig {
        self.buffer
    }

    fn check(&self, _input: &SchemaRef, v: &mut Validator) {
        if self.path.trim().is_empty() {
            v.error(&["path"], "`path` must not be empty");
        }
    }

    fn build(&self, _cx: &BuildCx) -> Result<FileSink, BuildError> {
        let path = PathBuf::from(self.path.as_str());
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                BuildError::context(format!("creating directory {}", dir.display()), e)
            })?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| BuildError::context(format!("opening {}", path.display()), e))?;
        Ok(FileSink {
            path,
            file: File::from_std(file),
            sync_every_batch: self.sync_every_batch,
        })
    }
}

/// Running file sink.
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    file: File,
    sync_every_batch: bool,
}

impl FileSink {
    fn io_error(&self, what: &str, e: std::io::Error) -> ComponentError {
        ComponentError::external("file_write", format!("{what} {}: {e}", self.path.display()))
            .with_source(e)
    }
}

impl Sink for FileSink {
    async fn write(&mut self, msg: &Msg) -> Result<(), ComponentError> {
        let batch = msg.rows()?;
        let lines = sluice_core::json::to_json_lines(batch)
            .map_err(|e| ComponentError::internal("json_encode", format!("encoding rows: {e}")))?;
        // One write per batch: a crash can tear at most the last line, never
        // interleave rows.
        if let Err(e) = self.file.write_all(&lines).await {
            return Err(self.io_error("writing", e));
        }
        if self.sync_every_batch
            && let Err(e) = self.file.sync_data().await
        {
            return Err(self.io_error("syncing", e));
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), ComponentError> {
        if let Err(e) = self.file.flush().await {
            return Err(self.io_error("flushing", e));
        }
        if let Err(e) = self.file.sync_all().await {
            return Err(self.io_error("syncing", e));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sluice_core::arrow_array::{Float64Array, RecordBatch, StringArray};
    use sluice_core::{ComponentKind, ComponentLabels, ComponentMetrics};

    use super::*;

    fn cx() -> BuildCx {
        BuildCx {
            pipeline: "p".into(),
            id: "out".into(),
            inputs: Vec::new(),
            metrics: ComponentMetrics::new(ComponentLabels::new(
                "p",
                "out",
                ComponentKind::Sink,
                "file",
            )),
        }
    }

    #[tokio::test]
    async fn appends_one_json_object_per_row_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/out.jsonl");
        let cfg = FileSinkConfig {
            inputs: vec!["a".into()],
            buffer: BufferConfig::default(),
            path: EnvString(path.to_string_lossy().into_owned()),
            sync_every_batch: false,
        };
        let batch = RecordBatch::try_from_iter([
            ("device", Arc::new(StringArray::from(vec!["d1", "d2"])) as _),
            ("v", Arc::new(Float64Array::from(vec![1.0, 2.5])) as _),
        ])
        .unwrap();
        for _ in 0..2 {
            let mut sink = cfg.build(&cx()).unwrap();
            sink.write(&Msg::Rows(batch.clone())).await.unwrap();
            sink.flush().await.unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let rows: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[1], serde_json::json!({"device": "d2", "v": 2.5}));
    }

    #[test]
    fn unwritable_path_is_a_build_error_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        let cfg = FileSinkConfig {
            inputs: vec![],
            buffer: BufferConfig::default(),
            path: EnvString(blocker.join("out.jsonl").to_string_lossy().into_owned()),
            sync_every_batch: false,
        };
        let err = cfg.build(&cx()).unwrap_err().to_string();
        assert!(err.contains("creating directory"), "{err}");
    }
}
