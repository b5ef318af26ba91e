//! The fixed event batches the model tests summarise: factory anomalies and
//! retail loss-prevention alerts, mixed, generated from a seed per batch so
//! every run sees the same rows.

use std::sync::Arc;

use sluice_core::arrow_array::{
    Array, Float64Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use sluice_core::arrow_schema::{DataType, Field, Schema, SchemaRef};
use sluice_core::schema::{TIMESTAMP_MS, with_event_time};

/// 2024-03-01T08:00:00Z.
pub const T0: i64 = 1_709_280_000_000;
/// Batches in the fixed set.
pub const BATCHES: usize = 24;

const FACTORY_KINDS: &[&str] = &[
    "vibration_anomaly",
    "temperature_anomaly",
    "current_anomaly",
];
const FACTORY_DEVICES: &[&str] = &["press-3", "press-7", "pump-2", "conveyor-4", "mixer-1"];
const FACTORY_ZONES: &[&str] = &["line-1", "line-2", "line-3"];
const RETAIL_KINDS: &[&str] = &[
    "item_not_scanned",
    "shelf_sweep",
    "restricted_zone",
    "loitering",
];
const RETAIL_DEVICES: &[&str] = &["cam-1", "cam-2", "cam-5", "cam-6"];
const RETAIL_ZONES: &[&str] = &["checkout-1", "checkout-2", "exit-1", "stockroom"];

/// Input schema: event time, kind, device, zone, score.
pub fn schema() -> SchemaRef {
    Arc::new(with_event_time(
        Schema::new(vec![
            Field::new("ts", TIMESTAMP_MS, false),
            Field::new("kind", DataType::Utf8, false),
            Field::new("device", DataType::Utf8, true),
            Field::new("zone", DataType::Utf8, true),
            Field::new("score", DataType::Float64, true),
        ]),
        "ts",
    ))
}

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    /// Index in `0..n`, skewed towards 0 so each batch has a clear top value.
    fn skewed(&mut self, n: usize) -> usize {
        let a = self.next() as usize % n;
        let b = self.next() as usize % n;
        a.min(b)
    }
}

/// Batch `i` of the fixed set: 6 to 25 events over up to five minutes. Even
/// batches are mostly factory anomalies, odd ones mostly retail alerts, and
/// every batch has some of the other kind.
pub fn batch(i: usize) -> RecordBatch {
    let mut r = Lcg(0x9e37_79b9 + i as u64 * 7919);
    let n = 6 + (r.next() as usize % 20);
    let offset = (i % 4) as u64;
    let (mut ts, mut kind, mut device, mut zone, mut score) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for e in 0..n {
        let factory = (e % 4 == 3) ^ i.is_multiple_of(2);
        let rot = |list: &[&'static str], k: usize| list[(k + offset as usize) % list.len()];
        if factory {
            kind.push(rot(FACTORY_KINDS, r.skewed(FACTORY_KINDS.len())));
            device.push(Some(rot(FACTORY_DEVICES, r.skewed(FACTORY_DEVICES.len()))));
            zone.push(Some(rot(FACTORY_ZONES, r.skewed(FACTORY_ZONES.len()))));
        } else {
            kind.push(rot(RETAIL_KINDS, r.skewed(RETAIL_KINDS.len())));
            device.push(Some(rot(RETAIL_DEVICES, r.skewed(RETAIL_DEVICES.len()))));
            zone.push(Some(rot(RETAIL_ZONES, r.skewed(RETAIL_ZONES.len()))));
        }
        ts.push(T0 + i as i64 * 300_000 + (r.next() % 300_000) as i64);
        score.push(Some(0.3 + (r.next() % 700) as f64 / 1000.0));
    }
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(TimestampMillisecondArray::from(ts)),
            Arc::new(StringArray::from(kind)),
            Arc::new(StringArray::from(device)),
            Arc::new(StringArray::from(zone)),
            Arc::new(Float64Array::from(score)),
        ],
    )
    .unwrap()
}

#[test]
fn the_fixed_set_mixes_anomalies_and_alerts() {
    for i in 0..BATCHES {
        let b = batch(i);
        let kinds = b.column(1).as_any().downcast_ref::<StringArray>().unwrap();
        let kinds: Vec<&str> = kinds.iter().flatten().collect();
        assert!(
            kinds.iter().any(|k| k.ends_with("_anomaly")),
            "batch {i}: {kinds:?}"
        );
        assert!(
            kinds.iter().any(|k| !k.ends_with("_anomaly")),
            "batch {i}: {kinds:?}"
        );
        assert!((6..=25).contains(&b.num_rows()));
    }
}
