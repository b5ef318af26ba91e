use std::sync::Arc;

use sluice_core::arrow_array::{Float64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use sluice_core::arrow_schema::{DataType, Field, Schema, TimeUnit};

use super::*;

const T0: i64 = 1_709_280_000_000; // 2024-03-01T08:00:00Z

fn layout(max_keys: usize) -> Layout {
    Layout {
        time: Some("ts".into()),
        kind: Some("kind".into()),
        keys: vec!["device".into(), "zone".into()],
        measures: vec!["score".into()],
        severity: SeverityRules::default(),
        max_keys,
    }
}

/// (seconds after T0, kind, device, zone, score)
type Row<'a> = (i64, &'a str, Option<&'a str>, Option<&'a str>, Option<f64>);

fn batch(rows: &[Row<'_>]) -> RecordBatch {
    let schema = Schema::new(vec![
        Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        Field::new("kind", DataType::Utf8, true),
        Field::new("device", DataType::Utf8, true),
        Field::new("zone", DataType::Utf8, true),
        Field::new("score", DataType::Float64, true),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(TimestampMillisecondArray::from_iter_values(
                rows.iter().map(|r| T0 + r.0 * 1000),
            )),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
            Arc::new(StringArray::from_iter(rows.iter().map(|r| r.2))),
            Arc::new(StringArray::from_iter(rows.iter().map(|r| r.3))),
            Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.4))),
        ],
    )
    .unwrap()
}

fn sample() -> RecordBatch {
    batch(&[
        (5, "anomaly", Some("press-7"), None, Some(0.62)),
        (9, "anomaly", Some("press-7"), None, Some(0.97)),
        (2, "anomaly", Some("press-3"), None, Some(f64::NAN)),
        (30, "item_not_scanned", None, Some("checkout-2"), None),
    ])
}

#[test]
fn counts_times_and_peaks_come_from_the_rows() {
    let mut c = Collector::new(layout(100));
    let dropped = c.add(&sample(), 0..4, 0).unwrap();
    assert!(dropped.is_empty());
    let f = c.take().unwrap();
    assert_eq!(f.events, 4);
    assert_eq!((f.first_ms, f.last_ms), (T0 + 2000, T0 + 30_000));
    let kinds = f.kinds.as_ref().unwrap();
    assert_eq!(kinds.top().unwrap().name, "anomaly");
    assert_eq!(
        f.keys[0].counts[0],
        Counted {
            name: "press-7".into(),
            events: 2
        }
    );
    assert_eq!(
        f.keys[0].counts[1],
        Counted {
            name: "press-3".into(),
            events: 1
        }
    );
    assert_eq!(
        f.keys[1].counts,
        vec![Counted {
            name: "checkout-2".into(),
            events: 1
        }]
    );
    assert_eq!(f.peaks.len(), 1);
    assert_eq!(f.peaks[0].value, 0.97);
    assert_eq!(f.peaks[0].at_ms, T0 + 9000);
    assert_eq!(
        f.peaks[0].keys,
        vec![("device".to_owned(), "press-7".to_owned())]
    );
}

#[test]
fn take_empties_the_window_and_an_empty_window_has_no_facts() {
    let mut c = Collector::new(layout(100));
    assert!(c.take().is_none());
    c.add(&sample(), 0..2, 0).unwrap();
    assert!(c.take().is_some());
    assert_eq!(c.events(), 0);
    assert!(c.take().is_none());
}

#[test]
fn rows_with_unusable_names_are_left_out_and_reported() {
    let long = "x".repeat(65);
    let b = batch(&[
        (1, "anomaly", Some("press-7"), None, None),
        (2, "anomaly", Some(long.as_str()), None, None),
        (3, "anomaly", Some("bad\u{7}name"), None, None),
        (4, " ", Some("press-7"), None, None),
    ]);
    let mut c = Collector::new(layout(100));
    let dropped = c.add(&b, 0..4, 0).unwrap();
    assert_eq!(dropped, vec![(RowIssue::InvalidName, 3)]);
    assert_eq!(c.take().unwrap().events, 1);
}

#[test]
fn values_beyond_max_keys_are_counted_but_not_named() {
    let b = batch(&[
        (1, "a", Some("d1"), None, None),
        (2, "a", Some("d2"), None, None),
        (3, "a", Some("d3"), None, None),
        (4, "a", Some("d1"), None, None),
    ]);
    let mut c = Collector::new(layout(2));
    c.add(&b, 0..4, 0).unwrap();
    let f = c.take().unwrap();
    assert_eq!(f.events, 4);
    assert_eq!(f.keys[0].counts.len(), 2);
    assert_eq!(f.keys[0].untracked, 1);
}

#[test]
fn severity_follows_scores_and_counts() {
    let mut l = layout(100);
    l.severity.column = Some("score".into());
    let mut c = Collector::new(l.clone());
    c.add(&sample(), 0..1, 0).unwrap();
    assert_eq!(c.take().unwrap().severity, Severity::Warning);
    c.add(&sample(), 0..2, 0).unwrap();
    assert_eq!(c.take().unwrap().severity, Severity::Critical);
    l.severity.column = None;
    l.severity.warning_events = 3;
    let mut c = Collector::new(l);
    c.add(&sample(), 0..4, 0).unwrap();
    assert_eq!(c.take().unwrap().severity, Severity::Warning);
}

#[test]
fn rows_without_event_time_take_the_arrival_time() {
    let mut l = layout(100);
    l.time = Some("missing".into());
    let mut c = Collector::new(l);
    c.add(&sample(), 0..4, T0 + 77_000).unwrap();
    let f = c.take().unwrap();
    assert_eq!((f.first_ms, f.last_ms), (T0 + 77_000, T0 + 77_000));
}

#[test]
fn numbers_have_at_most_two_decimals_and_no_trailing_zeros() {
    assert_eq!(number(0.97), "0.97");
    assert_eq!(number(41.5), "41.5");
    assert_eq!(number(12.0), "12");
    assert_eq!(number(0.1234), "0.12");
    assert_eq!(number(-0.001), "0");
}

#[test]
fn prompt_text_and_grounding_agree() {
    let mut c = Collector::new(layout(100));
    c.add(&sample(), 0..4, 0).unwrap();
    let f = c.take().unwrap();
    assert_eq!(
        f.prompt_text(5),
        "4 events 08:00:02 to 08:00:30 UTC, severity info\n\
         kind: anomaly 3, item_not_scanned 1\n\
         device: press-7 2, press-3 1\n\
         zone: checkout-2 1\n\
         highest score 0.97 on press-7 at 08:00:09"
    );
    let g = f.grounding(5);
    for n in [
        "4", "3", "2", "1", "0.97", "08:00:02", "08:00:30", "08:00:09", "08:00",
    ] {
        assert!(g.numbers.contains(n), "{n} missing from {:?}", g.numbers);
    }
    for n in [
        "anomaly",
        "press-7",
        "press-3",
        "checkout-2",
        "score",
        "info",
    ] {
        assert!(g.names.contains(n), "{n} missing from {:?}", g.names);
    }
    assert_eq!(g.required, vec!["press-7", "checkout-2"]);
}

#[test]
fn json_has_every_count_and_rfc3339_times() {
    let mut c = Collector::new(layout(100));
    c.add(&sample(), 0..4, 0).unwrap();
    let j = c.take().unwrap().to_json();
    assert_eq!(j["events"], 4);
    assert_eq!(j["first"], "2024-03-01T08:00:02.000Z");
    assert_eq!(j["keys"][0]["counts"][0]["name"], "press-7");
    assert_eq!(j["peaks"][0]["value"], 0.97);
    assert_eq!(j["severity"], "info");
}
