//! `type: csv`: replays a recorded CSV file as a stream. Rows go out in file
//! order, in batches, as fast as the pipeline takes them; at the end of the
//! file the source ends and the pipeline drains and stops. A row that does
//! not fit `schema` is dropped, counted and logged with its line number.

use std::fs::File;
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;
use sluice_core::arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int64Builder, StringBuilder, TimestampMillisecondBuilder,
};
use sluice_core::arrow_array::{ArrayRef, RecordBatch};
use sluice_core::arrow_schema::SchemaRef;
use sluice_core::schema::{FieldSpec, FieldType, build_schema, check_declared, schema_ref};
use sluice_core::{
    BuildCx, BuildError, ComponentError, EnvString, LogLimiter, Source, SourceConfig, SourceCx,
    Validator, blocking,
};
use tracing::warn;

/// Config of the CSV replay source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct CsvSourceConfig {
    /// The file to replay; its first line names the columns.
    pub path: EnvString,
    /// Columns to read, by header name, in output order (`name: type`, a
    /// trailing `?` for optional); other columns of the file are ignored.
    pub schema: IndexMap<String, FieldSpec>,
    /// Column with each row's event time (a `timestamp_ms` of `schema`).
    #[serde(default)]
    pub event_time: Option<String>,
    /// Rows per batch.
    #[serde(default = "default_max_batch_rows")]
    pub max_batch_rows: NonZeroUsize,
    /// Adds an `int64` column of this name, last, with each row's number
    /// among the file's data rows (0 for the line after the header), so
    /// outputs can be matched to the file even where rows were dropped.
    #[serde(default)]
    pub row_number: Option<String>,
}

fn default_max_batch_rows() -> NonZeroUsize {
    NonZeroUsize::new(1024).unwrap_or(NonZeroUsize::MIN)
}

impl CsvSourceConfig {
    fn output_schema(&self) -> SchemaRef {
        let number = FieldSpec {
            ty: FieldType::Int64,
            nullable: false,
        };
        schema_ref(build_schema(
            self.schema
                .iter()
                .map(|(n, s)| (n.as_str(), *s))
                .chain(self.row_number.as_deref().map(|n| (n, number))),
            self.event_time.as_deref(),
        ))
    }

    /// Opens the file and maps each declared column to its position.
    fn open(&self) -> Result<(csv::Reader<File>, Vec<usize>), String> {
        let path = Path::new(self.path.as_str());
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .from_path(path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let headers = reader
            .headers()
            .map_err(|e| format!("cannot read the header line of {}: {e}", path.display()))?
            .clone();
        let positions = self
            .schema
            .keys()
            .map(|name| {
                headers
                    .iter()
                    .position(|h| h.trim() == name)
                    .ok_or_else(|| {
                        format!(
                            "{} has no column `{name}` (columns: {})",
                            path.display(),
                            headers.iter().collect::<Vec<_>>().join(", ")
                        )
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok((reader, positions))
    }
}

impl SourceConfig for CsvSourceConfig {
    const TYPE: &'static str = "csv";
    type Component = CsvSource;

    fn check(&self, v: &mut Validator) -> Option<SchemaRef> {
        let reserved: Vec<(&str, &str)> = self
            .row_number
            .as_deref()
            .map(|n| (n, "for `row_number`"))
            .into_iter()
            .collect();
        let declared = check_declared(
            self.schema.iter().map(|(n, s)| (n.as_str(), *s)),
            self.event_time.as_deref(),
            &reserved,
            v,
        );
        let numbered = match self.row_number.as_deref() {
            Some("") => {
                v.error(&["row_number"], "`row_number` must not be empty");
                false
            }
            _ => true,
        };
        let file_ok = match self.open() {
            Ok(_) => true,
            Err(e) => {
                v.error(&["path"], e);
                false
            }
        };
        (declared && numbered && file_ok).then(|| self.output_schema())
    }

    fn build(&self, cx: &BuildCx) -> Result<CsvSource, BuildError> {
        let mut v = Validator::new();
        self.check(&mut v);
        if v.has_errors() {
            return Err(v.into_build_error(&cx.id));
        }
        let (reader, positions) = self.open().map_err(BuildError::msg)?;
        Ok(CsvSource {
            reader: Some(reader),
            columns: positions
                .into_iter()
                .zip(self.schema.values().copied())
                .collect(),
            schema: self.output_schema(),
            batch_rows: self.max_batch_rows.get(),
            numbered: self.row_number.is_some(),
            next_row: 0,
        })
    }
}

/// Running CSV replay source.
pub struct CsvSource {
    reader: Option<csv::Reader<File>>,
    /// Position in the file and type of each output column.
    columns: Vec<(usize, FieldSpec)>,
    schema: SchemaRef,
    batch_rows: usize,
    /// Whether the last column is the row number.
    numbered: bool,
    /// Number of the next data row of the file.
    next_row: i64,
}

/// One batch read from the file, and the rows that did not fit.
struct Chunk {
    batch: RecordBatch,
    bad: Vec<(u64, String)>,
    end: bool,
    /// Number of the next data row.
    next_row: i64,
}

impl Source for CsvSource {
    async fn run(mut self, cx: SourceCx) -> Result<(), ComponentError> {
        let SourceCx {
            mut out,
            shutdown,
            ready,
            ..
        } = cx;
        let metrics = out.metrics().clone();
        let mut limiter = LogLimiter::new(Duration::from_secs(10));
        ready.set(true);
        let Some(mut reader) = self.reader.take() else {
            return Ok(());
        };
        loop {
            let read = Read {
                columns: self.columns.clone(),
                schema: self.schema.clone(),
                rows: self.batch_rows,
                numbered: self.numbered,
                first_row: self.next_row,
            };
            let (back, chunk) = blocking(move || {
                let chunk = read.chunk(&mut reader);
                (reader, chunk)
            })
            .await?;
            reader = back;
            let chunk = chunk?;
            self.next_row = chunk.next_row;
            if !chunk.bad.is_empty() {
                metrics.discarded("malformed_csv", false, chunk.bad.len() as u64);
                if let Some(held) = limiter.check(tokio::time::Instant::now()) {
                    let (line, why) = &chunk.bad[0];
                    warn!(line, error = %why, dropped = chunk.bad.len(), earlier_unlogged = held, "CSV rows do not fit the schema; dropped.");
                }
            }
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return Ok(()),
                r = out.emit(chunk.batch) => r?,
            }
            if chunk.end || shutdown.is_cancelled() {
                return Ok(());
            }
        }
    }
}

/// What one read of the file takes.
struct Read {
    /// Position in the file and type of each declared column.
    columns: Vec<(usize, FieldSpec)>,
    schema: SchemaRef,
    rows: usize,
    numbered: bool,
    /// Number of the first data row this read sees.
    first_row: i64,
}

impl Read {
    /// Reads up to `rows` rows that fit into a batch of `schema`.
    fn chunk(self, reader: &mut csv::Reader<File>) -> Result<Chunk, ComponentError> {
        let mut builders: Vec<ColumnBuilder> = self
            .columns
            .iter()
            .map(|(_, s)| ColumnBuilder::new(s.ty))
            .collect();
        let mut numbers = Int64Builder::new();
        let mut record = csv::StringRecord::new();
        let mut bad = Vec::new();
        let mut row = self.first_row;
        let mut taken = 0;
        let mut end = false;
        while taken < self.rows {
            match reader.read_record(&mut record) {
                Ok(true) => {}
                Ok(false) => {
                    end = true;
                    break;
                }
                Err(e) if e.is_io_error() => {
                    return Err(ComponentError::external("csv_read", e.to_string()));
                }
                Err(e) => {
                    let line = e.position().map_or(0, |p| p.line());
                    bad.push((line, e.to_string()));
                    row += 1;
                    continue;
                }
            }
            let line = record.position().map_or(0, |p| p.line());
            let parsed: Result<Vec<Value>, String> = self
                .columns
                .iter()
                .map(|(i, spec)| parse(record.get(*i).unwrap_or(""), *spec))
                .collect();
            match parsed {
                Ok(values) => {
                    for (b, v) in builders.iter_mut().zip(values) {
                        b.push(v);
                    }
                    numbers.append_value(row);
                    taken += 1;
                }
                Err(why) => bad.push((line, why)),
            }
            row += 1;
        }
        let mut arrays: Vec<ArrayRef> = builders.into_iter().map(ColumnBuilder::finish).collect();
        if self.numbered {
            arrays.push(Arc::new(numbers.finish()));
        }
        let batch = RecordBatch::try_new(self.schema, arrays)
            .map_err(|e| ComponentError::internal("csv_batch", e.to_string()))?;
        Ok(Chunk {
            batch,
            bad,
            end,
            next_row: row,
        })
    }
}

/// One parsed field.
enum Value {
    Null,
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

fn parse(field: &str, spec: FieldSpec) -> Result<Value, String> {
    let s = field.trim();
    if s.is_empty() {
        return match spec.ty {
            _ if spec.nullable => Ok(Value::Null),
            FieldType::Utf8 => Ok(Value::Text(String::new())),
            _ => Err(format!("an empty `{spec}` field")),
        };
    }
    let bad = || format!("`{s}` is not a {spec}");
    Ok(match spec.ty {
        FieldType::Utf8 => Value::Text(field.to_owned()),
        FieldType::Int64 => Value::Int(s.parse().map_err(|_| bad())?),
        FieldType::Float64 => Value::Float(s.parse().map_err(|_| bad())?),
        FieldType::Bool => Value::Bool(match s {
            "true" | "True" | "TRUE" | "1" => true,
            "false" | "False" | "FALSE" | "0" => false,
            _ => return Err(bad()),
        }),
        FieldType::TimestampMs => Value::Int(match s.parse::<i64>() {
            Ok(ms) => ms,
            Err(_) => arrow_cast::parse::string_to_timestamp_nanos(s)
                .map(|ns| ns.div_euclid(1_000_000))
                .map_err(|_| format!("`{s}` is not a time (integer milliseconds or RFC 3339)"))?,
        }),
    })
}

/// A typed column under construction.
enum ColumnBuilder {
    Utf8(StringBuilder),
    Int64(Int64Builder),
    Float64(Float64Builder),
    Bool(BooleanBuilder),
    Time(TimestampMillisecondBuilder),
}

impl ColumnBuilder {
    fn new(ty: FieldType) -> Self {
        match ty {
            FieldType::Utf8 => Self::Utf8(StringBuilder::new()),
            FieldType::Int64 => Self::Int64(Int64Builder::new()),
            FieldType::Float64 => Self::Float64(Float64Builder::new()),
            FieldType::Bool => Self::Bool(BooleanBuilder::new()),
            FieldType::TimestampMs => Self::Time(TimestampMillisecondBuilder::new()),
        }
    }

    /// Appends `v`, which [`parse`] produced for this column's type.
    fn push(&mut self, v: Value) {
        match (self, v) {
            (Self::Utf8(b), Value::Text(s)) => b.append_value(s),
            (Self::Int64(b), Value::Int(i)) => b.append_value(i),
            (Self::Float64(b), Value::Float(f)) => b.append_value(f),
            (Self::Bool(b), Value::Bool(x)) => b.append_value(x),
            (Self::Time(b), Value::Int(ms)) => b.append_value(ms),
            (Self::Utf8(b), _) => b.append_null(),
            (Self::Int64(b), _) => b.append_null(),
            (Self::Float64(b), _) => b.append_null(),
            (Self::Bool(b), _) => b.append_null(),
            (Self::Time(b), _) => b.append_null(),
        }
    }

    fn finish(self) -> ArrayRef {
        match self {
            Self::Utf8(mut b) => Arc::new(b.finish()),
            Self::Int64(mut b) => Arc::new(b.finish()),
            Self::Float64(mut b) => Arc::new(b.finish()),
            Self::Bool(mut b) => Arc::new(b.finish()),
            Self::Time(mut b) => Arc::new(b.finish()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use sluice_core::arrow_array::Array;
    use sluice_core::arrow_array::cast::AsArray;
    use sluice_core::arrow_array::types::{Float64Type, Int64Type, TimestampMillisecondType};
    use sluice_core::metrics::names::COMPONENT_DISCARDED_ROWS_TOTAL;
    use sluice_core::schema::event_time_column;
    use sluice_core::{Msg, SourceConfig, Validator};
    use sluice_testkit::{MetricsCapture, run_source};

    use super::*;

    const WAIT: Duration = Duration::from_secs(10);

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    fn config(path: &Path, extra: &str) -> CsvSourceConfig {
        serde_saphyr::from_str(&format!(
            "path: {}\nschema: {{ device: utf8, ts: timestamp_ms, v: float64? }}\nevent_time: ts\n{extra}",
            path.display()
        ))
        .unwrap()
    }

    fn rows(msgs: &[Msg]) -> Vec<(String, i64, Option<f64>)> {
        let mut out = Vec::new();
        for m in msgs {
            let b = m.rows().unwrap();
            let d = b.column(0).as_string::<i32>();
            let t = b.column(1).as_primitive::<TimestampMillisecondType>();
            let v = b.column(2).as_primitive::<Float64Type>();
            for i in 0..b.num_rows() {
                out.push((
                    d.value(i).to_owned(),
                    t.value(i),
                    v.is_valid(i).then(|| v.value(i)),
                ));
            }
        }
        out
    }

    #[tokio::test]
    async fn replays_rows_in_file_order_in_batches_then_ends() {
        let f = file(
            "v,extra,ts,device\n1.5,x,1700000000000,a\n,y,2023-11-14T22:13:21Z,b\n3,z,1700000002000,a\n",
        );
        let cfg = config(f.path(), "max_batch_rows: 2\n");
        // The source ends at the end of the file, closing its output.
        let msgs = run_source(&cfg, async {}, |_| false, WAIT).await;
        assert_eq!(msgs.len(), 2);
        assert_eq!(
            rows(&msgs),
            [
                ("a".to_owned(), 1_700_000_000_000, Some(1.5)),
                ("b".to_owned(), 1_700_000_001_000, None),
                ("a".to_owned(), 1_700_000_002_000, Some(3.0)),
            ]
        );
        let schema = msgs[0].rows().unwrap().schema();
        assert_eq!(event_time_column(&schema), Some("ts"));
    }

    #[test]
    fn rows_that_do_not_fit_are_dropped_and_counted() {
        let f = file("device,ts,v\na,1,1\nb,not-a-time,2\nc,3,three\n,4,4\nd,5\n");
        let cfg = config(f.path(), "row_number: line\nmax_batch_rows: 2\n");
        let capture = MetricsCapture::new();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let msgs = capture.scoped(|| runtime.block_on(run_source(&cfg, async {}, |_| false, WAIT)));
        // An empty text is an empty string; a missing optional value is null.
        assert_eq!(
            rows(&msgs),
            [
                ("a".to_owned(), 1, Some(1.0)),
                (String::new(), 4, Some(4.0)),
                ("d".to_owned(), 5, None),
            ]
        );
        assert_eq!(
            capture.counter(
                COMPONENT_DISCARDED_ROWS_TOTAL,
                &[("reason", "malformed_csv")]
            ),
            2
        );
        // Row numbers count the dropped rows too: they match the file.
        let numbers: Vec<i64> = msgs
            .iter()
            .flat_map(|m| {
                let b = m.rows().unwrap();
                let n = b
                    .column_by_name("line")
                    .unwrap()
                    .as_primitive::<Int64Type>();
                n.values().to_vec()
            })
            .collect();
        assert_eq!(numbers, [0, 3, 4]);
    }

    #[test]
    fn a_missing_file_or_column_is_an_error_at_path() {
        let mut v = Validator::new();
        assert!(
            config(Path::new("/nonexistent/replay.csv"), "")
                .check(&mut v)
                .is_none()
        );
        let issues = v.into_issues();
        assert_eq!(issues[0].path, ["path"]);
        assert!(
            issues[0].message.contains("cannot open"),
            "{}",
            issues[0].message
        );

        let f = file("device,time,v\na,1,1\n");
        let mut v = Validator::new();
        assert!(config(f.path(), "").check(&mut v).is_none());
        let issues = v.into_issues();
        assert_eq!(issues[0].path, ["path"]);
        assert!(
            issues[0]
                .message
                .contains("no column `ts` (columns: device, time, v)"),
            "{}",
            issues[0].message
        );
    }

    #[test]
    fn the_event_time_column_must_be_a_declared_time() {
        let f = file("device,ts,v\n");
        let cfg: CsvSourceConfig = serde_saphyr::from_str(&format!(
            "path: {}\nschema: {{ device: utf8, ts: int64 }}\nevent_time: ts\n",
            f.path().display()
        ))
        .unwrap();
        let mut v = Validator::new();
        assert!(cfg.check(&mut v).is_none());
        assert_eq!(v.into_issues()[0].path, ["event_time"]);
    }
}
