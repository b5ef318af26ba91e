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
    assert!(cfg.check(&input, &mut v).is_none());
    let issues = v.into_issues();
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert_eq!(issues[0].path, ["zones", "0", "when"]);
}
