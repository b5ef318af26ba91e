//! Declared stream schemas (`schema: { device: utf8, ts: timestamp_ms }`) and the
//! schema metadata that tells windowed transforms which column is event time.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// Schema metadata key naming the event-time column of a stream.
pub const EVENT_TIME_KEY: &str = "sluice.event_time";

/// Name of the column that carries the MQTT topic (or other origin) of a row.
pub const TOPIC_COLUMN: &str = "_topic";

/// Arrow type used for `timestamp_ms` columns: milliseconds since the Unix
/// epoch, UTC, without a zone annotation.
pub const TIMESTAMP_MS: DataType = DataType::Timestamp(TimeUnit::Millisecond, None);

/// A column type in a declared schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// UTF-8 string.
    Utf8,
    /// 64-bit signed integer.
    Int64,
    /// 64-bit float.
    Float64,
    /// Boolean.
    Bool,
    /// Milliseconds since the Unix epoch (JSON: integer ms or RFC 3339 string).
    TimestampMs,
}

impl FieldType {
    /// Names accepted in YAML, for error messages.
    pub const NAMES: &'static [&'static str] =
        &["utf8", "int64", "float64", "bool", "timestamp_ms"];

    /// The Arrow type of the column.
    pub fn data_type(self) -> DataType {
        match self {
            FieldType::Utf8 => DataType::Utf8,
            FieldType::Int64 => DataType::Int64,
            FieldType::Float64 => DataType::Float64,
            FieldType::Bool => DataType::Boolean,
            FieldType::TimestampMs => TIMESTAMP_MS,
        }
    }
}

/// A declared column: its type and whether it may be missing or `null`
/// (written with a trailing `?`, e.g. `float64?`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpec {
    /// Column type.
    pub ty: FieldType,
    /// Whether the value may be absent.
    pub nullable: bool,
}

impl FromStr for FieldSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, nullable) = match s.strip_suffix('?') {
            Some(n) => (n, true),
            None => (s, false),
        };
        let ty = match name {
            "utf8" | "string" => FieldType::Utf8,
            "int64" => FieldType::Int64,
            "float64" => FieldType::Float64,
            "bool" => FieldType::Bool,
            "timestamp_ms" => FieldType::TimestampMs,
            other => {
                return Err(format!(
                    "unknown column type `{other}`, expected one of {} (append `?` for optional)",
                    FieldType::NAMES
                        .iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        };
        Ok(Self { ty, nullable })
    }
}

impl fmt::Display for FieldSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.ty {
            FieldType::Utf8 => "utf8",
            FieldType::Int64 => "int64",
            FieldType::Float64 => "float64",
            FieldType::Bool => "bool",
            FieldType::TimestampMs => "timestamp_ms",
        };
        write!(f, "{name}{}", if self.nullable { "?" } else { "" })
    }
}

impl<'de> Deserialize<'de> for FieldSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = FieldSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a column type such as `float64` or `utf8?`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FieldSpec, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

/// Checks the columns a source declares (`schema:`) and its `event_time`
/// column, reporting into `v` at `schema` and `event_time`: at least one
/// column, no empty or `reserved` names, an event-time column that is a
/// declared, required `timestamp_ms`. Returns whether all is well.
pub fn check_declared<'a>(
    fields: impl IntoIterator<Item = (&'a str, FieldSpec)>,
    event_time: Option<&str>,
    reserved: &[(&str, &str)],
    v: &mut crate::Validator,
) -> bool {
    let fields: Vec<(&str, FieldSpec)> = fields.into_iter().collect();
    let mut ok = true;
    if fields.is_empty() {
        v.error(&["schema"], "schema must declare at least one field")
            .help("e.g. `schema: { device: utf8, ts: timestamp_ms, value: float64 }`");
        ok = false;
    }
    for (name, _) in &fields {
        if let Some((_, why)) = reserved.iter().find(|(r, _)| r == name) {
            v.error(&["schema", name], format!("`{name}` is reserved {why}"))
                .help("the source adds it itself; rename this field");
            ok = false;
        } else if name.is_empty() {
            v.error(&["schema"], "field names must not be empty");
            ok = false;
        }
    }
    if let Some(col) = event_time {
        let spec = fields.iter().find(|(n, _)| *n == col).map(|(_, s)| *s);
        match spec {
            None => {
                v.error(
                    &["event_time"],
                    format!("`{col}` is not a field of `schema`"),
                );
                ok = false;
            }
            Some(spec) if spec.ty != FieldType::TimestampMs => {
                v.error(
                    &["event_time"],
                    format!("event-time field `{col}` is `{spec}`, expected `timestamp_ms`"),
                );
                ok = false;
            }
            Some(spec) if spec.nullable => {
                v.error(
                    &["event_time"],
                    format!("event-time field `{col}` must not be optional"),
                )
                .help(format!("declare it as `{col}: timestamp_ms`"));
                ok = false;
            }
            Some(_) => {}
        }
    }
    ok
}

/// Builds an Arrow schema from declared fields, in declaration order, marking
/// `event_time` (if any) in the metadata.
pub fn build_schema<'a>(
    fields: impl IntoIterator<Item = (&'a str, FieldSpec)>,
    event_time: Option<&str>,
) -> Schema {
    let fields: Vec<Field> = fields
        .into_iter()
        .map(|(n, s)| Field::new(n, s.ty.data_type(), s.nullable))
        .collect();
    let schema = Schema::new(fields);
    match event_time {
        Some(col) => with_event_time(schema, col),
        None => schema,
    }
}

/// Returns `schema` with `col` recorded as its event-time column.
pub fn with_event_time(schema: Schema, col: &str) -> Schema {
    let mut md: HashMap<String, String> = schema.metadata().clone();
    md.insert(EVENT_TIME_KEY.to_owned(), col.to_owned());
    schema.with_metadata(md)
}

/// The event-time column recorded in `schema`, if any.
pub fn event_time_column(schema: &Schema) -> Option<&str> {
    schema.metadata().get(EVENT_TIME_KEY).map(String::as_str)
}

/// Whether two stream schemas carry the same columns with the same types
/// (metadata and nullability are ignored).
pub fn same_columns(a: &SchemaRef, b: &SchemaRef) -> bool {
    a.fields().len() == b.fields().len()
        && a.fields()
            .iter()
            .zip(b.fields().iter())
            .all(|(x, y)| x.name() == y.name() && x.data_type() == y.data_type())
}

/// Shorthand for an `Arc<Schema>`.
pub fn schema_ref(s: Schema) -> SchemaRef {
    Arc::new(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_optional_types_with_question_mark() {
        let s: FieldSpec = "float64?".parse().unwrap();
        assert_eq!(
            s,
            FieldSpec {
                ty: FieldType::Float64,
                nullable: true
            }
        );
        assert!(
            "float"
                .parse::<FieldSpec>()
                .unwrap_err()
                .contains("`float64`")
        );
    }

    #[test]
    fn records_event_time_in_metadata() {
        let ts: FieldSpec = "timestamp_ms".parse().unwrap();
        let s = build_schema([("ts", ts)], Some("ts"));
        assert_eq!(event_time_column(&s), Some("ts"));
        assert_eq!(s.field(0).data_type(), &TIMESTAMP_MS);
    }
}
