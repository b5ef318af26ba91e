//! The thumbnail store on real files in temporary directories.

use std::fs;
use std::time::{Duration, SystemTime};

use sluice_core::ComponentMetrics;
use sluice_core::metrics::{ComponentKind, ComponentLabels};
use sluice_testkit::MetricsCapture;

use super::*;

const DAY: Duration = Duration::from_secs(86_400);

fn photo() -> Rgb {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/person.jpg");
    let img = image::open(path).unwrap().into_rgb8();
    Rgb {
        width: img.width(),
        height: img.height(),
        data: img.into_raw(),
    }
}

fn store(dir: &Path, extra: &str) -> (Thumbnails, MetricsCapture) {
    let yaml = format!("dir: {}\n{extra}", dir.display());
    let cfg: ThumbnailsConfig = serde_saphyr::from_str(&yaml).unwrap();
    let capture = MetricsCapture::new();
    let store = capture.scoped(|| {
        let labels = ComponentLabels::new("test", "detect", ComponentKind::Transform, "detect");
        Thumbnails::open(&cfg, &ComponentMetrics::new(labels))
    });
    (store, capture)
}

/// File names in `dir`, sorted, hidden ones included.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn touch(path: &Path, age: Duration) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, b"jpeg").unwrap();
    let file = fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - age).unwrap();
}

#[test]
fn writes_a_downscaled_jpeg_named_by_camera_and_event_time() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, metrics) = store(tmp.path(), "");
    let path = store.offer("exit", 1_700_000_000_123, 1, &photo()).unwrap();
    assert_eq!(
        PathBuf::from(&path),
        tmp.path().join("exit/1700000000123.jpg")
    );
    let thumb = image::open(&path).unwrap();
    assert_eq!((thumb.width(), thumb.height()), (320, 212));
    // Written under a temporary name and renamed: nothing else is left.
    assert_eq!(names(&tmp.path().join("exit")), ["1700000000123.jpg"]);
    assert_eq!(metrics.counter(names::DETECT_THUMBNAILS_TOTAL, &[]), 1);
}

#[test]
fn at_most_one_thumbnail_per_camera_per_interval_of_event_time() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, _) = store(tmp.path(), "every: 1s\n");
    let img = photo();
    // ("a", 600) finished after ("a", 1000) on another worker; ("a", -5000)
    // is a file source starting its loop again.
    let kept: Vec<bool> = [
        ("a", 0),
        ("a", 999),
        ("b", 500),
        ("a", 1000),
        ("b", 1200),
        ("a", 600),
        ("a", -5000),
    ]
    .iter()
    .map(|(camera, ts)| store.offer(camera, *ts, 1, &img).is_some())
    .collect();
    assert_eq!(kept, [true, false, true, true, false, false, true]);
}

#[test]
fn more_objects_than_in_the_last_thumbnail_get_one_sooner() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, _) = store(tmp.path(), "every: 1s\n");
    let img = photo();
    // (ts, objects): an item put down at 200 ms and another at 600 ms get
    // their own; the count going down and back up within `every` does not.
    let kept: Vec<bool> = [(0, 1), (200, 2), (400, 1), (500, 2), (600, 3), (1600, 1)]
        .iter()
        .map(|(ts, objects)| store.offer("a", *ts, *objects, &img).is_some())
        .collect();
    assert_eq!(kept, [true, true, false, false, true, true]);
}

#[test]
fn frames_finishing_out_of_order_are_kept_as_in_frame_order() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, _) = store(tmp.path(), "every: 1s\n");
    let img = photo();
    // Two workers: the frame at 2200 ms finishes before the one at 2000 ms,
    // where a person first shows. Both are prepared; the earlier frame,
    // kept first, gets the thumbnail and the later one, within `every` and
    // showing no more, gets none.
    let late = store.prepare("a", 2200, 1, &img).unwrap();
    let early = store.prepare("a", 2000, 1, &img).unwrap();
    assert!(store.keep("a", 2000, 1, early).is_some());
    assert_eq!(store.keep("a", 2200, 1, late), None);
    // Once a thumbnail is kept, frames within `every` are not even encoded.
    assert!(store.prepare("a", 2400, 1, &img).is_none());
    assert_eq!(names(&tmp.path().join("a")), ["2000.jpg"]);
}

#[test]
fn a_camera_id_cannot_leave_the_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, _) = store(tmp.path(), "");
    let path = store.offer("../up", 5, 1, &photo()).unwrap();
    assert_eq!(PathBuf::from(path), tmp.path().join(".._up/5.jpg"));
    assert_eq!(camera_dir(".."), "_..");
}

#[test]
fn keeps_only_the_newest_max_files() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, metrics) = store(tmp.path(), "every: 1ms\nmax_files: 3\n");
    let img = photo();
    for ts in 1..=5 {
        assert!(store.offer("cam", ts, 1, &img).is_some());
    }
    assert_eq!(names(&tmp.path().join("cam")), ["3.jpg", "4.jpg", "5.jpg"]);
    assert_eq!(store.usage().0, 3);
    assert_eq!(
        metrics.counter(names::DETECT_THUMBNAILS_DELETED_TOTAL, &[]),
        2
    );
}

#[test]
fn keeps_only_what_fits_in_max_bytes() {
    let img = photo();
    let probe = tempfile::tempdir().unwrap();
    let size = {
        let (store, _) = store(probe.path(), "");
        let path = store.offer("cam", 0, 1, &img).unwrap();
        fs::metadata(path).unwrap().len()
    };
    let tmp = tempfile::tempdir().unwrap();
    let limit = 2 * size + size / 2;
    let (store, _) = store(tmp.path(), &format!("every: 1ms\nmax_bytes: {limit}\n"));
    for ts in 1..=4 {
        assert!(store.offer("cam", ts, 1, &img).is_some());
    }
    assert_eq!(names(&tmp.path().join("cam")), ["3.jpg", "4.jpg"]);
    assert_eq!(store.usage(), (2, 2 * size));
}

#[test]
fn a_thumbnail_larger_than_max_bytes_is_not_kept_and_not_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, _) = store(tmp.path(), "max_bytes: 100\n");
    assert_eq!(store.offer("cam", 1, 1, &photo()), None);
    assert!(names(&tmp.path().join("cam")).is_empty());
}

#[test]
fn deletes_files_older_than_max_age_after_a_write() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, _) = store(tmp.path(), "every: 1ms\nmax_age: 1h\n");
    let img = photo();
    store.offer("cam", 1, 1, &img).unwrap();
    store.offer("cam", 2, 1, &img).unwrap();
    let later = SystemTime::now() + Duration::from_secs(2 * 3600);
    assert_eq!(store.prune(later).len(), 2);
    assert!(names(&tmp.path().join("cam")).is_empty());
    assert_eq!(store.usage(), (0, 0));
}

#[test]
fn start_up_deletes_old_files_and_leftovers_and_keeps_other_files() {
    let tmp = tempfile::tempdir().unwrap();
    let cam = tmp.path().join("cam");
    touch(&cam.join("100.jpg"), 8 * DAY);
    touch(&cam.join("200.jpg"), Duration::from_secs(60));
    touch(&cam.join(".300.jpg.tmp"), Duration::from_secs(60));
    touch(&cam.join("notes.txt"), 30 * DAY);
    let (store, metrics) = store(tmp.path(), "max_age: 7d\n");
    assert_eq!(names(&cam), ["200.jpg", "notes.txt"]);
    assert_eq!(store.usage(), (1, 4));
    assert_eq!(
        metrics.counter(names::DETECT_THUMBNAILS_DELETED_TOTAL, &[]),
        1
    );
}

#[test]
fn start_up_enforces_max_files_on_what_it_finds_oldest_first() {
    let tmp = tempfile::tempdir().unwrap();
    let cam = tmp.path().join("cam");
    touch(&cam.join("3.jpg"), Duration::from_secs(30));
    touch(&cam.join("1.jpg"), Duration::from_secs(10));
    touch(&cam.join("2.jpg"), Duration::from_secs(20));
    let (store, _) = store(tmp.path(), "max_files: 2\n");
    assert_eq!(names(&cam), ["1.jpg", "2.jpg"]);
    assert_eq!(store.usage().0, 2);
}

#[test]
fn an_unwritable_directory_is_counted_and_gives_no_path() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-dir");
    fs::write(&file, b"x").unwrap();
    let (store, metrics) = store(&file, "every: 1s\n");
    let img = photo();
    let errors = || metrics.counter(names::DETECT_THUMBNAIL_ERRORS_TOTAL, &[("reason", "write")]);
    assert_eq!(store.offer("cam", 0, 1, &img), None);
    assert_eq!(errors(), 1);
    // A failed write keeps its slot: one attempt per `every`, not per frame.
    assert_eq!(store.offer("cam", 500, 1, &img), None);
    assert_eq!(errors(), 1);
    assert_eq!(store.offer("cam", 1000, 1, &img), None);
    assert_eq!(errors(), 2);
    assert_eq!(metrics.counter(names::DETECT_THUMBNAILS_TOTAL, &[]), 0);
}

#[test]
fn check_reports_a_quality_out_of_range() {
    let cfg: ThumbnailsConfig = serde_saphyr::from_str("dir: t\nquality: 0\n").unwrap();
    let mut v = Validator::new();
    assert!(!cfg.check(&mut v));
    let issues = v.into_issues();
    assert_eq!(issues[0].path, ["thumbnails", "quality"]);
}

#[test]
fn parses_the_documented_example() {
    let yaml = "{ dir: data/thumbnails, width: 320, every: 1s, max_files: 500, \
                max_bytes: 50MB, max_age: 7d }";
    let cfg: ThumbnailsConfig = serde_saphyr::from_str(yaml).unwrap();
    assert_eq!(cfg.max_bytes.bytes(), 50_000_000);
    assert_eq!(cfg.max_age.get(), 7 * DAY);
    assert_eq!((cfg.width.get(), cfg.max_files.get()), (320, 500));
}

#[test]
fn the_block_style_example_with_an_env_default_parses_in_a_detect_config() {
    let yaml = "inputs: [cam]\nmodel: m.onnx\nformat: nanodet\nworkers: 2\nthumbnails:\n  \
                dir: ${SLUICE_DATA_DIR:-data}/thumbnails\n  max_bytes: 50MB\n";
    let cfg: crate::DetectConfig =
        sluice_core::env::with_vars(&[("SLUICE_DATA_DIR", "/srv")], || {
            serde_saphyr::from_str(yaml).unwrap()
        });
    assert_eq!(cfg.workers.get(), 2);
    assert_eq!(cfg.thumbnails.unwrap().dir.as_str(), "/srv/thumbnails");
}
