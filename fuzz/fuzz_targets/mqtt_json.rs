//! The MQTT source's JSON decoder: payload bytes in, Arrow rows or a drop
//! reason out.
//!
//! The input is split at NUL bytes (never valid JSON outside a string, and
//! not inside one either) into several payloads decoded into one batch, so
//! a dropped message followed by a good one is exercised. Invariants: the
//! batch has exactly the accepted rows, and `finish` always succeeds (a
//! non-nullable column never receives a null).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_core::arrow_array::Array;
use sluice_core::schema::{FieldSpec, TOPIC_COLUMN, build_schema, schema_ref};
use sluice_plugin_mqtt::JsonDecoder;

/// Every column type, required and optional.
const FIELDS: &[(&str, &str)] = &[
    ("device", "utf8"),
    ("ts", "timestamp_ms"),
    ("temperature", "float64"),
    ("count", "int64?"),
    ("ok", "bool?"),
    ("label", "utf8?"),
    ("at", "timestamp_ms?"),
];

fn decoder() -> JsonDecoder {
    let fields: Vec<(String, FieldSpec)> = FIELDS
        .iter()
        .map(|(n, t)| ((*n).to_owned(), t.parse().expect("a valid column type")))
        .collect();
    let utf8: FieldSpec = "utf8".parse().expect("a valid column type");
    let all = fields
        .iter()
        .map(|(n, s)| (n.as_str(), *s))
        .chain([(TOPIC_COLUMN, utf8)]);
    let schema = schema_ref(build_schema(all, Some("ts")));
    JsonDecoder::new(fields, schema, 4)
}

fuzz_target!(|data: &[u8]| {
    let mut d = decoder();
    let mut accepted = 0;
    for (i, payload) in data.split(|b| *b == 0).enumerate() {
        let topic = if i % 2 == 0 { "plant/line3/a" } else { "b" };
        if d.decode(payload, topic).is_ok() {
            accepted += 1;
        }
        assert_eq!(d.rows(), accepted);
    }
    let batch = d.finish().expect("decoded rows always make a valid batch");
    assert_eq!(batch.num_rows(), accepted);
    assert_eq!(batch.num_columns(), FIELDS.len() + 1);
    for (col, (_, ty)) in batch.columns().iter().zip(FIELDS) {
        if !ty.ends_with('?') {
            assert_eq!(col.null_count(), 0);
        }
    }
    assert_eq!(d.rows(), 0);
});
