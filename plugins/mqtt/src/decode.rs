//! JSON payloads straight into Arrow column builders.
//!
//! Each payload is parsed once with a serde visitor that borrows strings from
//! the payload and converts every declared field to its column type on the
//! fly; undeclared keys are skipped without allocation. A message is validated
//! completely before anything is appended, so a dropped message never leaves
//! partial values in the builders.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use sluice_core::arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int64Builder, StringBuilder, TimestampMillisecondBuilder,
};
use sluice_core::arrow_array::{ArrayRef, RecordBatch};
use sluice_core::arrow_schema::{ArrowError, SchemaRef};
use sluice_core::schema::{FieldSpec, FieldType};

/// Why a message was dropped; the `reason` label of the discarded-rows counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Not valid JSON, or not a JSON object.
    MalformedJson,
    /// A required field is absent or `null`.
    MissingField,
    /// A field has a value of the wrong type.
    SchemaMismatch,
}

impl DropReason {
    /// Every reason, in a fixed order.
    pub const ALL: [DropReason; 3] = [
        DropReason::MalformedJson,
        DropReason::MissingField,
        DropReason::SchemaMismatch,
    ];

    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::MalformedJson => "malformed_json",
            DropReason::MissingField => "missing_field",
            DropReason::SchemaMismatch => "schema_mismatch",
        }
    }

    /// Position in [`DropReason::ALL`].
    pub fn index(self) -> usize {
        match self {
            DropReason::MalformedJson => 0,
            DropReason::MissingField => 1,
            DropReason::SchemaMismatch => 2,
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed field value, already converted to its column type.
#[derive(Debug, Clone, PartialEq)]
enum Slot<'a> {
    Absent,
    Null,
    Str(Cow<'a, str>),
    Int(i64),
    Float(f64),
    Bool(bool),
    Mismatch,
}

enum Column {
    Utf8(StringBuilder),
    Int64(Int64Builder),
    Float64(Float64Builder),
    Bool(BooleanBuilder),
    TimestampMs(TimestampMillisecondBuilder),
}

impl Column {
    fn new(ty: FieldType, capacity: usize) -> Self {
        match ty {
            FieldType::Utf8 => Column::Utf8(StringBuilder::with_capacity(capacity, capacity * 16)),
            FieldType::Int64 => Column::Int64(Int64Builder::with_capacity(capacity)),
            FieldType::Float64 => Column::Float64(Float64Builder::with_capacity(capacity)),
            FieldType::Bool => Column::Bool(BooleanBuilder::with_capacity(capacity)),
            FieldType::TimestampMs => {
                Column::TimestampMs(TimestampMillisecondBuilder::with_capacity(capacity))
            }
        }
    }

    /// Appends a validated slot: its variant matches the column type, or it is
    /// `Absent`/`Null` for a nullable column.
    fn append(&mut self, slot: &Slot<'_>) {
        match (self, slot) {
            (Column::Utf8(b), Slot::Str(s)) => b.append_value(s),
            (Column::Int64(b), Slot::Int(v)) => b.append_value(*v),
            (Column::TimestampMs(b), Slot::Int(v)) => b.append_value(*v),
            (Column::Float64(b), Slot::Float(v)) => b.append_value(*v),
            (Column::Bool(b), Slot::Bool(v)) => b.append_value(*v),
            (Column::Utf8(b), _) => b.append_null(),
            (Column::Int64(b), _) => b.append_null(),
            (Column::TimestampMs(b), _) => b.append_null(),
            (Column::Float64(b), _) => b.append_null(),
            (Column::Bool(b), _) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Column::Utf8(b) => Arc::new(b.finish()),
            Column::Int64(b) => Arc::new(b.finish()),
            Column::Float64(b) => Arc::new(b.finish()),
            Column::Bool(b) => Arc::new(b.finish()),
            Column::TimestampMs(b) => Arc::new(b.finish()),
        }
    }
}

/// Decodes JSON objects into rows of a declared schema plus a `_topic` column.
pub struct JsonDecoder {
    schema: SchemaRef,
    names: Vec<String>,
    specs: Vec<FieldSpec>,
    columns: Vec<Column>,
    topics: StringBuilder,
    rows: usize,
}

impl fmt::Debug for JsonDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonDecoder")
            .field("fields", &self.names)
            .field("rows", &self.rows)
            .finish()
    }
}

impl JsonDecoder {
    /// A decoder for `fields` (in order); `schema` is the output schema: those
    /// fields followed by the topic column.
    pub fn new(fields: Vec<(String, FieldSpec)>, schema: SchemaRef, capacity: usize) -> Self {
        let (names, specs): (Vec<String>, Vec<FieldSpec>) = fields.into_iter().unzip();
        let columns = specs.iter().map(|s| Column::new(s.ty, capacity)).collect();
        Self {
            schema,
            names,
            specs,
            columns,
            topics: StringBuilder::with_capacity(capacity, capacity * 32),
            rows: 0,
        }
    }

    /// Rows decoded since the last [`JsonDecoder::finish`].
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Decodes one payload into a row, or says why it was dropped. On error
    /// nothing is appended.
    pub fn decode(&mut self, payload: &[u8], topic: &str) -> Result<(), DropReason> {
        let mut slots: Vec<Slot<'_>> = vec![Slot::Absent; self.names.len()];
        let mut de = serde_json::Deserializer::from_slice(payload);
        let visitor = ObjectVisitor {
            names: &self.names,
            specs: &self.specs,
            slots: &mut slots,
        };
        de.deserialize_map(visitor)
            .map_err(|_| DropReason::MalformedJson)?;
        de.end().map_err(|_| DropReason::MalformedJson)?;
        let mut missing = false;
        for (slot, spec) in slots.iter().zip(&self.specs) {
            match slot {
                Slot::Mismatch => return Err(DropReason::SchemaMismatch),
                Slot::Absent | Slot::Null if !spec.nullable => missing = true,
                _ => {}
            }
        }
        if missing {
            return Err(DropReason::MissingField);
        }
        for (col, slot) in self.columns.iter_mut().zip(&slots) {
            col.append(slot);
        }
        self.topics.append_value(topic);
        self.rows += 1;
        Ok(())
    }

    /// The decoded rows as one batch; the decoder starts a new batch.
    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let mut arrays: Vec<ArrayRef> = self.columns.iter_mut().map(Column::finish).collect();
        arrays.push(Arc::new(self.topics.finish()));
        self.rows = 0;
        RecordBatch::try_new(self.schema.clone(), arrays)
    }
}

struct ObjectVisitor<'s, 'de> {
    names: &'s [String],
    specs: &'s [FieldSpec],
    slots: &'s mut [Slot<'de>],
}

impl<'de> Visitor<'de> for ObjectVisitor<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // Producers usually send keys in a fixed order, so the next declared
        // field is tried first.
        let mut hint = 0;
        while let Some(idx) = map.next_key_seed(KeySeed {
            names: self.names,
            hint,
        })? {
            match idx {
                Some(i) => {
                    let ty = self.specs.get(i).map(|s| s.ty).unwrap_or(FieldType::Utf8);
                    let value = map.next_value_seed(ValueSeed(ty))?;
                    if let Some(slot) = self.slots.get_mut(i) {
                        *slot = value;
                    }
                    hint = i + 1;
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// Resolves a key to the index of the declared field, if any.
struct KeySeed<'s> {
    names: &'s [String],
    hint: usize,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Option<usize>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Option<usize>, E> {
        if self.names.get(self.hint).is_some_and(|n| n == key) {
            return Ok(Some(self.hint));
        }
        Ok(self.names.iter().position(|n| n == key))
    }
}

/// Converts one JSON value to the slot of a column type.
struct ValueSeed(FieldType);

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Slot<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Slot<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed {
    type Value = Slot<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Slot<'de>, E> {
        Ok(Slot::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Slot<'de>, E> {
        Ok(Slot::Null)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Slot<'de>, E> {
        Ok(match self.0 {
            FieldType::Bool => Slot::Bool(v),
            _ => Slot::Mismatch,
        })
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Slot<'de>, E> {
        Ok(match self.0 {
            FieldType::Int64 | FieldType::TimestampMs => Slot::Int(v),
            FieldType::Float64 => Slot::Float(v as f64),
            FieldType::Utf8 | FieldType::Bool => Slot::Mismatch,
        })
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Slot<'de>, E> {
        Ok(match (self.0, i64::try_from(v)) {
            (FieldType::Int64 | FieldType::TimestampMs, Ok(i)) => Slot::Int(i),
            (FieldType::Float64, _) => Slot::Float(v as f64),
            _ => Slot::Mismatch,
        })
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Slot<'de>, E> {
        Ok(match self.0 {
            FieldType::Float64 => Slot::Float(v),
            _ => Slot::Mismatch,
        })
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Slot<'de>, E> {
        Ok(match self.0 {
            FieldType::Utf8 => Slot::Str(Cow::Borrowed(v)),
            other => string_slot(other, v),
        })
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Slot<'de>, E> {
        Ok(match self.0 {
            FieldType::Utf8 => Slot::Str(Cow::Owned(v.to_owned())),
            other => string_slot(other, v),
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Slot<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Slot::Mismatch)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Slot<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Slot::Mismatch)
    }
}

/// A string for a non-string column: only timestamps accept one (RFC 3339).
fn string_slot(ty: FieldType, v: &str) -> Slot<'static> {
    match ty {
        FieldType::TimestampMs => match chrono::DateTime::parse_from_rfc3339(v) {
            Ok(t) => Slot::Int(t.timestamp_millis()),
            Err(_) => Slot::Mismatch,
        },
        _ => Slot::Mismatch,
    }
}

#[cfg(test)]
mod tests {
    use sluice_core::arrow_array::Array;
    use sluice_core::arrow_array::cast::AsArray;
    use sluice_core::arrow_array::types::{Float64Type, Int64Type, TimestampMillisecondType};
    use sluice_core::schema::{TOPIC_COLUMN, build_schema, schema_ref};

    use super::*;

    fn decoder(fields: &[(&str, &str)]) -> JsonDecoder {
        let fields: Vec<(String, FieldSpec)> = fields
            .iter()
            .map(|(n, t)| ((*n).to_owned(), t.parse().unwrap()))
            .collect();
        let utf8: FieldSpec = "utf8".parse().unwrap();
        let all = fields
            .iter()
            .map(|(n, s)| (n.as_str(), *s))
            .chain([(TOPIC_COLUMN, utf8)]);
        let schema = schema_ref(build_schema(all, None));
        JsonDecoder::new(fields, schema, 16)
    }

    #[test]
    fn decodes_declared_fields_in_schema_order_ignoring_others() {
        let mut d = decoder(&[
            ("device", "utf8"),
            ("v", "float64"),
            ("n", "int64?"),
            ("ok", "bool"),
        ]);
        d.decode(
            br#"{"extra":{"deep":[1,2]},"ok":true,"v":3,"device":"d\"1"}"#,
            "t/1",
        )
        .unwrap();
        d.decode(br#"{"device":"d2","v":1.5,"n":7,"ok":false}"#, "t/2")
            .unwrap();
        let b = d.finish().unwrap();
        assert_eq!(b.num_rows(), 2);
        let dev = b.column(0).as_string::<i32>();
        assert_eq!((dev.value(0), dev.value(1)), ("d\"1", "d2"));
        let v = b.column(1).as_primitive::<Float64Type>();
        assert_eq!((v.value(0), v.value(1)), (3.0, 1.5));
        let n = b.column(2).as_primitive::<Int64Type>();
        assert!(n.is_null(0));
        assert_eq!(n.value(1), 7);
        let ok = b.column(3).as_boolean();
        assert_eq!((ok.value(0), ok.value(1)), (true, false));
        let topic = b.column(4).as_string::<i32>();
        assert_eq!((topic.value(0), topic.value(1)), ("t/1", "t/2"));
        assert_eq!(d.rows(), 0);
    }

    #[test]
    fn timestamps_accept_epoch_millis_and_rfc3339() {
        let mut d = decoder(&[("ts", "timestamp_ms")]);
        d.decode(br#"{"ts":1700000000123}"#, "t").unwrap();
        d.decode(br#"{"ts":"2023-11-14T22:13:20.123Z"}"#, "t")
            .unwrap();
        d.decode(br#"{"ts":"2023-11-14T23:13:20.123+01:00"}"#, "t")
            .unwrap();
        assert_eq!(
            d.decode(br#"{"ts":"yesterday"}"#, "t"),
            Err(DropReason::SchemaMismatch)
        );
        assert_eq!(
            d.decode(br#"{"ts":1.5}"#, "t"),
            Err(DropReason::SchemaMismatch)
        );
        let b = d.finish().unwrap();
        let ts = b.column(0).as_primitive::<TimestampMillisecondType>();
        assert_eq!(ts.values().to_vec(), vec![1_700_000_000_123; 3]);
    }

    #[test]
    fn classifies_bad_messages_by_reason() {
        let mut d = decoder(&[("device", "utf8"), ("v", "float64"), ("n", "int64?")]);
        let cases: [(&[u8], DropReason); 10] = [
            (b"not json", DropReason::MalformedJson),
            (b"[1,2]", DropReason::MalformedJson),
            (b"\"str\"", DropReason::MalformedJson),
            (
                br#"{"device":"a","v":1} trailing"#,
                DropReason::MalformedJson,
            ),
            (br#"{"device":"a","v":1"#, DropReason::MalformedJson),
            (br#"{"v":1}"#, DropReason::MissingField),
            (br#"{"device":null,"v":1}"#, DropReason::MissingField),
            (br#"{"device":"a","v":"1.0"}"#, DropReason::SchemaMismatch),
            (
                br#"{"device":"a","v":1,"n":1.5}"#,
                DropReason::SchemaMismatch,
            ),
            (br#"{"device":7,"v":{"x":1}}"#, DropReason::SchemaMismatch),
        ];
        for (payload, reason) in cases {
            assert_eq!(
                d.decode(payload, "t"),
                Err(reason),
                "{}",
                String::from_utf8_lossy(payload)
            );
        }
        assert_eq!(d.rows(), 0);
    }

    #[test]
    fn a_dropped_message_leaves_no_partial_values() {
        let mut d = decoder(&[("device", "utf8"), ("v", "float64")]);
        d.decode(br#"{"device":"a","v":1}"#, "t").unwrap();
        assert!(d.decode(br#"{"device":"b","v":"x"}"#, "t").is_err());
        assert!(d.decode(br#"{"device":"c"}"#, "t").is_err());
        d.decode(br#"{"device":"d","v":2}"#, "t").unwrap();
        let b = d.finish().unwrap();
        let dev = b.column(0).as_string::<i32>();
        assert_eq!(dev.iter().flatten().collect::<Vec<_>>(), vec!["a", "d"]);
        assert_eq!(b.column(2).len(), 2);
    }

    #[test]
    fn integers_outside_int64_are_a_mismatch_but_fit_float64() {
        let mut d = decoder(&[("n", "int64?"), ("f", "float64?")]);
        let big = br#"{"n":18446744073709551615}"#;
        assert_eq!(d.decode(big, "t"), Err(DropReason::SchemaMismatch));
        d.decode(br#"{"f":18446744073709551615}"#, "t").unwrap();
        let b = d.finish().unwrap();
        assert_eq!(
            b.column(1).as_primitive::<Float64Type>().value(0),
            18446744073709551615.0
        );
    }
}
