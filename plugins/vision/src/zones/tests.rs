//! Zone and line rules over scripted tracks.

use super::config::EventKind;
use super::state::{Line, Zone};
use super::*;

const SQUARE: [Point; 4] = [
    [100.0, 100.0],
    [200.0, 100.0],
    [200.0, 200.0],
    [100.0, 200.0],
];

fn zone(when: When, dwell_ms: Option<i64>) -> Zone {
    Zone {
        name: "stockroom".into(),
        camera: "back".into(),
        polygon: SQUARE.to_vec(),
        events: vec![EventKind::Enter, EventKind::Exit, EventKind::Dwell],
        dwell_ms,
        classes: vec!["person".into()],
        when,
    }
}

fn at(track_id: i64, ts: i64, x: f64, y: f64) -> Sighting {
    Sighting {
        camera: "back".into(),
        ts,
        track_id,
        class: "person".into(),
        score: 0.8,
        point: [x, y],
        thumbnail: None,
    }
}

fn kinds(events: &[Event]) -> Vec<(&'static str, i64, i64)> {
    events.iter().map(|e| (e.event, e.track_id, e.ts)).collect()
}

/// Hours 08:00-21:00 UTC; 2026-11-20 is a Friday.
fn hours() -> Hours {
    Schedule {
        open: "08:00".into(),
        close: "21:00".into(),
        utc_offset: "+00:00".into(),
        closed_days: vec![],
    }
    .parse()
    .unwrap()
}
const FRIDAY_MIDNIGHT: i64 = 1_795_132_800_000;
const HOUR: i64 = 3_600_000;

#[test]
fn enter_dwell_and_exit_of_one_person() {
    let mut s = ZoneState::new(vec![zone(When::Always, Some(5000))], vec![], None);
    let mut out = Vec::new();
    s.observe(at(1, 0, 50.0, 150.0), &mut out);
    s.observe(at(1, 1000, 150.0, 150.0), &mut out);
    s.observe(at(1, 4000, 150.0, 160.0), &mut out);
    s.observe(at(1, 6000, 150.0, 170.0), &mut out);
    s.observe(at(1, 7000, 150.0, 180.0), &mut out);
    s.observe(at(1, 8000, 250.0, 180.0), &mut out);
    assert_eq!(
        kinds(&out),
        [("enter", 1, 1000), ("dwell", 1, 6000), ("exit", 1, 8000)]
    );
    assert_eq!(out[1].dwell_seconds, Some(5.0));
    assert_eq!(out[2].dwell_seconds, Some(7.0));
}

#[test]
fn other_classes_and_cameras_do_not_count() {
    let mut s = ZoneState::new(vec![zone(When::Always, None)], vec![], None);
    let mut out = Vec::new();
    s.observe(
        Sighting {
            class: "dog".into(),
            ..at(1, 0, 150.0, 150.0)
        },
        &mut out,
    );
    s.observe(
        Sighting {
            camera: "front".into(),
            ..at(2, 0, 150.0, 150.0)
        },
        &mut out,
    );
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn after_hours_rules_report_only_while_closed() {
    let mut s = ZoneState::new(vec![zone(When::AfterHours, None)], vec![], Some(hours()));
    let mut out = Vec::new();
    let (noon, night) = (FRIDAY_MIDNIGHT + 12 * HOUR, FRIDAY_MIDNIGHT + 23 * HOUR);
    s.observe(at(1, noon, 150.0, 150.0), &mut out);
    s.observe(at(2, night, 150.0, 150.0), &mut out);
    assert_eq!(kinds(&out), [("enter", 2, night)]);
    assert_eq!(out[0].after_hours, Some(true));
}

#[test]
fn line_crossings_carry_their_direction() {
    let line = Line {
        name: "door".into(),
        camera: "back".into(),
        from: [300.0, 0.0],
        to: [300.0, 400.0],
        classes: vec![],
        when: When::Always,
    };
    let mut s = ZoneState::new(vec![], vec![line], None);
    let mut out = Vec::new();
    // Facing down the line (from y=0 to y=400), x < 300 is on the right.
    s.observe(at(1, 0, 280.0, 100.0), &mut out);
    s.observe(at(1, 100, 320.0, 100.0), &mut out);
    s.observe(at(1, 200, 330.0, 100.0), &mut out);
    s.observe(at(1, 300, 290.0, 100.0), &mut out);
    let dirs: Vec<_> = out.iter().map(|e| (e.event, e.direction)).collect();
    assert_eq!(
        dirs,
        [
            ("line_cross", Some("right_to_left")),
            ("line_cross", Some("left_to_right"))
        ]
    );
}

#[test]
fn a_lost_track_exits_at_its_last_sighting() {
    let mut s = ZoneState::new(vec![zone(When::Always, None)], vec![], None);
    let mut out = Vec::new();
    s.observe(at(7, 1000, 150.0, 150.0), &mut out);
    s.observe(at(7, 1500, 150.0, 150.0), &mut out);
    s.expire(Some("back"), 1400, &mut out);
    assert_eq!(out.len(), 1, "still fresh: {out:?}");
    s.expire(Some("back"), 4000, &mut out);
    assert_eq!(kinds(&out), [("enter", 7, 1000), ("exit", 7, 1500)]);
    assert!(s.is_empty());
}

#[test]
fn check_wants_a_schedule_for_after_hours_rules() {
    let yaml = "inputs: [t]\nzones:\n  - {name: z, camera: c, polygon: [[0, 0], [1, 0], [1, 1]], when: after_hours}\n";
    let cfg: ZonesConfig = serde_saphyr::from_str(yaml).unwrap();
    let input = crate::detect::output_schema();
    let mut fields: Vec<_> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(sluice_core::arrow_schema::Field::new(
        "track_id",
        sluice_core::arrow_schema::DataType::Int64,
        false,
    ));
    let input = std::sync::Arc::new(sluice_core::arrow_schema::Schema::new(fields));
    let mut v = sluice_core::Validator::new();
    use sluice_core::TransformConfig;
    assert!(
        cfg.check(&sluice_core::InputSchema::only(input.clone()), &mut v)
            .is_none()
    );
    let issues = v.into_issues();
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert_eq!(issues[0].path, ["zones", "0", "when"]);
}

mod thumbnails {
    use std::sync::Arc;

    use sluice_core::arrow_array::cast::AsArray;
    use sluice_core::arrow_array::{
        Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray,
        TimestampMillisecondArray,
    };
    use sluice_core::arrow_schema::SchemaRef;
    use sluice_core::metrics::{ComponentKind, ComponentLabels};
    use sluice_core::{
        BuildCx, ComponentMetrics, EdgeMetrics, Emitter, Msg, Output, Transform, TransformConfig,
        Validator, WhenFull,
    };
    use tokio::sync::mpsc;

    use super::*;
    use crate::TrackConfig;
    use crate::detect::{THUMBNAIL_COLUMN, detection_schema};

    /// One person per frame on camera `back`: `(ts, x1, thumbnail)`, a
    /// 50x100 box whose bottom edge is at y = 200.
    fn detections(frames: &[(i64, f64, Option<&str>)]) -> RecordBatch {
        let n = frames.len();
        let f64s = |f: &dyn Fn(f64) -> f64| -> ArrayRef {
            Arc::new(Float64Array::from_iter_values(
                frames.iter().map(|(_, x, _)| f(*x)),
            ))
        };
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec!["back"; n])),
            Arc::new(TimestampMillisecondArray::from_iter_values(
                frames.iter().map(|(ts, _, _)| *ts),
            )),
            Arc::new(Int64Array::from_iter_values(0..n as i64)),
            Arc::new(StringArray::from(vec!["person"; n])),
            Arc::new(Int64Array::from(vec![0; n])),
            f64s(&|_| 0.8),
            f64s(&|x| x),
            f64s(&|_| 100.0),
            f64s(&|x| x + 50.0),
            f64s(&|_| 200.0),
            Arc::new(Int64Array::from(vec![640; n])),
            Arc::new(Int64Array::from(vec![480; n])),
            Arc::new(StringArray::from(
                frames.iter().map(|(_, _, t)| *t).collect::<Vec<_>>(),
            )),
        ];
        RecordBatch::try_new(detection_schema(true), columns).unwrap()
    }

    fn cx(input: SchemaRef) -> BuildCx {
        let labels = ComponentLabels::new("test", "c", ComponentKind::Transform, "test");
        BuildCx {
            pipeline: "test".into(),
            id: "c".into(),
            inputs: sluice_core::InputSchema::only(input),
            metrics: ComponentMetrics::new(labels),
        }
    }

    /// Every batch `t` emits for `batches`, then for its `finish`.
    async fn through(t: &mut impl Transform, batches: Vec<RecordBatch>) -> Vec<RecordBatch> {
        let (tx, mut rx) = mpsc::channel(64);
        let labels = ComponentLabels::new("test", "c", ComponentKind::Transform, "test");
        let output = Output {
            tx,
            when_full: WhenFull::Block,
            edge: EdgeMetrics::new("test", "c", "out"),
        };
        let mut out = Emitter::new(vec![output], ComponentMetrics::new(labels));
        for b in batches {
            t.process(Msg::Rows(b), &mut out).await.unwrap();
        }
        t.finish(&mut out).await.unwrap();
        let mut got = Vec::new();
        while let Ok(d) = rx.try_recv() {
            got.push(d.msg.into_rows().unwrap());
        }
        got
    }

    const RULES: &str = "inputs: [tracked]\nzones:\n  - {name: shelf, camera: back, \
                         polygon: [[0, 0], [300, 0], [300, 480], [0, 480]]}\n";

    #[tokio::test]
    async fn track_and_zones_carry_the_thumbnail_to_the_events() {
        let track: TrackConfig = serde_saphyr::from_str("inputs: [people]\n").unwrap();
        let tracked_schema = track
            .check(
                &sluice_core::InputSchema::only(detection_schema(true)),
                &mut Validator::new(),
            )
            .unwrap();
        assert!(tracked_schema.field_with_name(THUMBNAIL_COLUMN).is_ok());
        let zones: ZonesConfig = serde_saphyr::from_str(RULES).unwrap();
        let events_schema = zones
            .check(
                &sluice_core::InputSchema::only(tracked_schema.clone()),
                &mut Validator::new(),
            )
            .unwrap();
        assert_eq!(events_schema, super::super::events_schema(true));

        let mut tracker = track.build(&cx(detection_schema(true))).unwrap();
        let frames = [
            (0, 290.0, Some("back/0.jpg")),
            (200, 270.0, None),
            (400, 250.0, Some("back/400.jpg")),
        ];
        let batches = frames.iter().map(|f| detections(&[*f])).collect();
        let tracked = through(&mut tracker, batches).await;
        assert_eq!(tracked.len(), 3);
        let mut zones = zones.build(&cx(tracked_schema)).unwrap();
        let events = through(&mut zones, tracked).await;
        let rows: Vec<(String, Option<String>)> = events
            .iter()
            .flat_map(|b| {
                let kind = b.column_by_name("event").unwrap().as_string::<i32>();
                let thumb = b
                    .column_by_name(THUMBNAIL_COLUMN)
                    .unwrap()
                    .as_string::<i32>();
                (0..b.num_rows())
                    .map(|i| {
                        (
                            kind.value(i).to_owned(),
                            thumb.is_valid(i).then(|| thumb.value(i).to_owned()),
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        // The enter frame had none: the track's newest earlier one stands in.
        assert_eq!(
            rows,
            [
                ("enter".to_owned(), Some("back/0.jpg".to_owned())),
                ("exit".to_owned(), Some("back/400.jpg".to_owned())),
            ]
        );
    }

    #[test]
    fn zones_without_a_thumbnail_input_keep_their_schema() {
        let zones: ZonesConfig = serde_saphyr::from_str(RULES).unwrap();
        let track: TrackConfig = serde_saphyr::from_str("inputs: [people]\n").unwrap();
        let tracked = track
            .check(
                &sluice_core::InputSchema::only(detection_schema(false)),
                &mut Validator::new(),
            )
            .unwrap();
        let out = zones
            .check(
                &sluice_core::InputSchema::only(tracked.clone()),
                &mut Validator::new(),
            )
            .unwrap();
        assert_eq!(out, output_schema());
    }
}
