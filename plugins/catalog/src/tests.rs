//! Component types resolve through the catalog's type-first deserialiser.

use sluice_core::{Payload, Validator};

use crate::AnySourceConfig;

fn source(yaml: &str) -> Result<AnySourceConfig, String> {
    serde_saphyr::from_str(yaml).map_err(|e| e.to_string())
}

#[test]
fn camera_sources_parse_and_validate_as_frame_streams() {
    let cfg =
        source("type: camera\ncamera: shelf\ndevice: 0\nresolution: 640x480\nfps: 15\nqueue: 2\n")
            .unwrap();
    assert_eq!(cfg.type_name(), "camera");
    let mut v = Validator::new();
    let schema = cfg.check(&mut v);
    assert!(v.into_issues().is_empty());
    assert_eq!(Payload::of(&schema.unwrap()), Payload::Frames);
}

#[test]
fn camera_sources_reject_unknown_keys_and_bad_values() {
    let e = source("type: camera\ncamera: c\nfsp: 5\n").unwrap_err();
    assert!(e.contains("unknown field `fsp`"), "{e}");
    let e = source("type: camera\ncamera: c\nresolution: big\n").unwrap_err();
    assert!(e.contains("invalid resolution `big`"), "{e}");
    let cfg = source("type: camera\ncamera: c\nfps: 0\n").unwrap();
    let mut v = Validator::new();
    assert!(cfg.check(&mut v).is_none());
    assert_eq!(v.into_issues()[0].path, ["fps"]);
}

#[test]
fn unknown_source_types_list_camera_among_the_kinds() {
    let e = source("type: webcam\n").unwrap_err();
    assert!(e.contains("expected one of mqtt, frames, camera"), "{e}");
}
