//! The retail demo's sample frames (`examples/retail/`) through the real
//! `detect` (two workers, thumbnails on), `track` and `zones` transforms:
//! each camera yields the events its scenario is made for, at the times
//! `scenario.json` gives, with a thumbnail on the box.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::Arc;

use sluice_core::arrow_array::Array;
use sluice_core::arrow_array::cast::AsArray;
use sluice_core::arrow_array::types::{Float64Type, Int64Type, TimestampMillisecondType};
use sluice_core::bytes::Bytes;
use sluice_core::{
    Frame, FrameEncoding, InputSchema, Msg, TransformConfig, Validator, frame_stream_schema,
};
use sluice_plugin_vision::frames::{list, time_from_name};
use sluice_plugin_vision::{DetectConfig, TrackConfig, ZonesConfig};
use sluice_testkit::run_transform;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The frames of `camera` in the order the `frames` source reads them,
/// `count` of them (looping over the files, as `loop: true` does), with
/// event times from the file names, or from the order at 5 fps when the
/// files are looped.
fn frames(camera: &str, count: usize) -> Vec<Msg> {
    let dir = root().join("examples/retail").join(camera);
    let files = list(dir.to_str().unwrap()).unwrap();
    let start = time_from_name(&files[0]).unwrap();
    (0..count)
        .map(|n| {
            let path = &files[n % files.len()];
            let ts = if count > files.len() {
                start + n as i64 * 200
            } else {
                time_from_name(path).unwrap()
            };
            Msg::Frame(Arc::new(Frame {
                camera: camera.into(),
                event_time_ms: ts,
                seq: n as u64,
                width: 0,
                height: 0,
                encoding: FrameEncoding::Jpeg,
                data: Bytes::from(std::fs::read(path).unwrap()),
            }))
        })
        .collect()
}

#[derive(Debug)]
struct Event {
    ts: i64,
    event: String,
    track_id: i64,
    class: String,
    dwell_seconds: Option<f64>,
    after_hours: Option<bool>,
    thumbnail: Option<String>,
}

/// `frames` through detect (`detect` options), track and zones (`zones`
/// options, `inputs` given here); returns the events.
async fn scenario(msgs: Vec<Msg>, detect: &str, zones: &str) -> Vec<Event> {
    let thumbs = tempfile::tempdir().unwrap();
    let model = root().join("models/detect/nanodet-g-416.onnx");
    let yaml = format!(
        "inputs: [cam]\nmodel: {}\nformat: nanodet\nworkers: 2\n\
         thumbnails: {{ dir: {}, every: 1s }}\n{detect}",
        model.display(),
        thumbs.path().display()
    );
    let detect: DetectConfig = serde_saphyr::from_str(&yaml).unwrap();
    let track: TrackConfig = serde_saphyr::from_str("inputs: [people]\nmax_age: 2s\n").unwrap();
    let zones: ZonesConfig =
        serde_saphyr::from_str(&format!("inputs: [tracked]\n{zones}")).unwrap();
    // Each stage runs through the shared harness, which also checks its
    // contract (schemas as announced, counters, acks).
    let mut v = Validator::new();
    let detected = detect
        .check(&InputSchema::only(frame_stream_schema()), &mut v)
        .unwrap();
    let tracked = track
        .check(&InputSchema::only(detected.clone()), &mut v)
        .unwrap();
    let rows = run_transform(&detect, frame_stream_schema(), msgs).await;
    let rows = run_transform(&track, detected, rows.into_iter().map(Msg::Rows).collect()).await;
    let batches = run_transform(&zones, tracked, rows.into_iter().map(Msg::Rows).collect()).await;

    let mut events = Vec::new();
    for b in &batches {
        let text = |c: &str| b.column_by_name(c).unwrap().as_string::<i32>().clone();
        let (event, class, thumb) = (text("event"), text("class"), text("thumbnail"));
        let ts = b
            .column_by_name("ts")
            .unwrap()
            .as_primitive::<TimestampMillisecondType>();
        let track = b
            .column_by_name("track_id")
            .unwrap()
            .as_primitive::<Int64Type>();
        let dwell = b
            .column_by_name("dwell_seconds")
            .unwrap()
            .as_primitive::<Float64Type>();
        let after = b.column_by_name("after_hours").unwrap().as_boolean();
        for i in 0..b.num_rows() {
            let thumbnail = thumb.is_valid(i).then(|| thumb.value(i).to_owned());
            if let Some(t) = &thumbnail {
                assert!(PathBuf::from(t).is_file(), "{t} was not written");
            }
            events.push(Event {
                ts: ts.value(i),
                event: event.value(i).to_owned(),
                track_id: track.value(i),
                class: class.value(i).to_owned(),
                dwell_seconds: dwell.is_valid(i).then(|| dwell.value(i)),
                after_hours: after.is_valid(i).then(|| after.value(i)),
                thumbnail,
            });
        }
    }
    events
}

const SCHEDULE: &str =
    "schedule: { open: \"08:00\", close: \"21:00\", utc_offset: \"+01:00\", closed_days: [sun] }\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_entering_the_stockroom_after_hours_raises_one_enter() {
    let zones = format!(
        "{SCHEDULE}zones:\n  - {{ name: stockroom, camera: stockroom, \
         polygon: [[0, 0], [640, 0], [640, 480], [0, 480]], events: [enter], when: after_hours }}\n"
    );
    let events = scenario(
        frames("stockroom", 30),
        "classes: [person]\nscore_threshold: 0.4\n",
        &zones,
    )
    .await;
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!((e.event.as_str(), e.class.as_str()), ("enter", "person"));
    assert_eq!(e.after_hours, Some(true));
    // scenario.json: start_ms 1795213800000; the person comes into view from
    // frame 6 and stands from frame 19.
    assert!(
        (1_795_213_801_200..=1_795_213_803_800).contains(&e.ts),
        "{e:?}"
    );
    assert!(e.thumbnail.is_some(), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_standing_at_the_exit_in_the_looped_frames_raises_one_dwell() {
    let zones = "zones:\n  - { name: exit_loitering, camera: exit, \
                 polygon: [[160, 200], [480, 200], [480, 480], [160, 480]], \
                 events: [dwell], dwell: 10s }\n";
    // 11 s at 5 fps: the 20 files played 2.75 times.
    let events = scenario(
        frames("exit", 55),
        "classes: [person]\nscore_threshold: 0.4\n",
        zones,
    )
    .await;
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!((e.event.as_str(), e.class.as_str()), ("dwell", "person"));
    assert_eq!(e.dwell_seconds, Some(10.0));
    assert_eq!(e.ts, 1_795_186_800_000 + 10_000);
    assert!(e.thumbnail.is_some(), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_entering_the_bagging_area_raise_an_enter_each_at_the_scenario_times() {
    let zones = "anchor: center\nzones:\n  - { name: bagging, camera: checkout, \
                 polygon: [[380, 150], [640, 150], [640, 480], [380, 480]], events: [enter] }\n";
    let events = scenario(frames("checkout", 45), "classes: [cup, vase]\n", zones).await;
    let seen: Vec<(i64, &str)> = events.iter().map(|e| (e.ts, e.class.as_str())).collect();
    // scenario.json: enters_bagging_area_ms of items 1, 2 and 3.
    assert_eq!(
        seen,
        [
            (1_795_187_401_000, "cup"),
            (1_795_187_403_600, "vase"),
            (1_795_187_406_200, "vase"),
        ],
        "{events:?}"
    );
    let mut tracks: Vec<i64> = events.iter().map(|e| e.track_id).collect();
    tracks.dedup();
    assert_eq!(tracks.len(), 3, "one track per item: {events:?}");
    assert!(
        events
            .iter()
            .all(|e| e.event == "enter" && e.thumbnail.is_some())
    );
}
