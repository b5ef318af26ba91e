//! `type: camera`: configuration and checks.

use std::fmt;
use std::num::NonZeroUsize;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, IntoDeserializer, SeqAccess, Visitor};
use sluice_core::arrow_schema::SchemaRef;
use sluice_core::{
    BuildCx, BuildError, EnvString, HumanDuration, SourceConfig, Validator, frame_stream_schema,
};

use crate::device::DeviceOpener;
use crate::source::CameraSource;

/// A local camera (V4L2 on Linux, through nokhwa).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct CameraConfig {
    /// Camera id every frame carries.
    pub camera: String,
    /// Which camera: an index (`0` is `/dev/video0`), a device path
    /// (`/dev/video2`, or a stable `/dev/v4l/by-id/...` link), or part of the
    /// device name (`"C920"`, case-insensitive).
    #[serde(default)]
    pub device: DeviceSelector,
    /// Frame size the camera must deliver (`640x480` or `[640, 480]`);
    /// without it, the size the camera offers closest to 640x480.
    #[serde(default)]
    pub resolution: Option<Resolution>,
    /// Most frames per second delivered (default 5). The camera runs at a
    /// rate it offers at or above this (the highest it has, if none is);
    /// faster frames are skipped and counted as `fps_limit`.
    #[serde(default)]
    pub fps: Option<f64>,
    /// Frames waiting for downstream; when full the oldest is dropped and
    /// counted (`drop_oldest`), so a slow detector never builds a backlog.
    #[serde(default = "default_queue")]
    pub queue: NonZeroUsize,
    /// First delay before reopening a camera that failed; doubles per failure.
    #[serde(default = "default_min_backoff")]
    pub min_backoff: HumanDuration,
    /// Longest delay before reopening a camera that failed.
    #[serde(default = "default_max_backoff")]
    pub max_backoff: HumanDuration,
}

/// Frames per second without `fps`, as for the `frames` source.
pub(crate) const DEFAULT_FPS: f64 = 5.0;

/// Largest accepted width or height.
const MAX_SIDE: u32 = 16_384;

fn default_queue() -> NonZeroUsize {
    NonZeroUsize::new(2).unwrap_or(NonZeroUsize::MIN)
}
fn default_min_backoff() -> HumanDuration {
    HumanDuration(Duration::from_millis(500))
}
fn default_max_backoff() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

impl CameraConfig {
    /// The `type` of this component in pipeline YAML.
    pub const TYPE: &'static str = "camera";

    /// Reports every problem; true when there is none.
    fn validate(&self, v: &mut Validator) -> bool {
        let mut ok = true;
        if self.camera.trim().is_empty() {
            v.error(&["camera"], "camera id must not be empty");
            ok = false;
        }
        if !self
            .fps
            .is_none_or(|f| f.is_finite() && f > 0.0 && f <= 1000.0)
        {
            v.error(&["fps"], "fps must be a number above 0 and at most 1000");
            ok = false;
        }
        ok
    }

    /// Frames per second delivered.
    pub(crate) fn fps(&self) -> f64 {
        self.fps.unwrap_or(DEFAULT_FPS)
    }
}

impl SourceConfig for CameraConfig {
    const TYPE: &'static str = "camera";
    const METRICS: &'static [sluice_core::metrics::MetricDoc] =
        sluice_core::metrics::FRAME_SOURCE_METRICS;
    type Component = CameraSource;

    fn check(&self, v: &mut Validator) -> Option<SchemaRef> {
        self.validate(v).then(frame_stream_schema)
    }

    /// Opens the camera once to check that it exists, is free and offers a
    /// usable format, then closes it again; capture reopens it when the
    /// source runs. A missing camera is therefore a start-up error.
    fn build(&self, cx: &BuildCx) -> Result<CameraSource, BuildError> {
        let mut v = Validator::new();
        if !self.validate(&mut v) {
            return Err(v.into_build_error(&cx.id));
        }
        let opener = DeviceOpener::new(self.device.clone(), self.resolution, self.fps());
        // A panic inside the driver library must not take the gateway down.
        let probed =
            std::panic::catch_unwind(AssertUnwindSafe(|| opener.probe())).unwrap_or_else(|_| {
                Err(format!(
                    "cannot open {}: the camera library panicked while opening it",
                    self.device
                ))
            });
        let mode =
            probed.map_err(|e| BuildError::msg(format!("camera source `{}`: {e}", self.camera)))?;
        tracing::info!(camera = %self.camera, device = %self.device, %mode, "Camera found.");
        Ok(CameraSource::new(self, opener))
    }
}

/// Which local camera to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceSelector {
    /// `/dev/video<N>`.
    Index(u32),
    /// A device node or a link to one, resolved at every open.
    Path(PathBuf),
    /// Part of the device name, case-insensitive.
    Name(String),
}

impl Default for DeviceSelector {
    fn default() -> Self {
        Self::Index(0)
    }
}

impl fmt::Display for DeviceSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Index(i) => write!(f, "camera {i}"),
            Self::Path(p) => write!(f, "camera {}", p.display()),
            Self::Name(n) => write!(f, "camera named `{n}`"),
        }
    }
}

impl DeviceSelector {
    /// Reads a string form: digits are an index, a leading `/` a path,
    /// anything else part of a name.
    fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err(
                "empty device: expected an index, a path like /dev/video0 or part of a device name"
                    .to_owned(),
            );
        }
        if s.bytes().all(|b| b.is_ascii_digit()) {
            return s
                .parse()
                .map(Self::Index)
                .map_err(|_| format!("device index `{s}` is too large"));
        }
        if s.starts_with('/') {
            return Ok(Self::Path(PathBuf::from(s)));
        }
        Ok(Self::Name(s.to_owned()))
    }
}

impl<'de> Deserialize<'de> for DeviceSelector {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DeviceSelector;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a device index (0), a path (/dev/video0) or part of a device name")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<DeviceSelector, E> {
                u32::try_from(v)
                    .map(DeviceSelector::Index)
                    .map_err(|_| E::custom(format!("device index {v} is too large")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<DeviceSelector, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom(format!("device index {v} must not be negative")))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DeviceSelector, E> {
                let raw: de::value::StrDeserializer<'_, E> = v.into_deserializer();
                let value = EnvString::deserialize(raw)?;
                DeviceSelector::parse(value.as_str()).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A frame size in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Resolution {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl fmt::Display for Resolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

impl Resolution {
    /// A checked size: both sides between 1 and 16384.
    pub fn new(width: u32, height: u32) -> Result<Self, String> {
        if (1..=MAX_SIDE).contains(&width) && (1..=MAX_SIDE).contains(&height) {
            Ok(Self { width, height })
        } else {
            Err(format!(
                "invalid resolution {width}x{height}: width and height must be between 1 and {MAX_SIDE}"
            ))
        }
    }
}

impl std::str::FromStr for Resolution {
    type Err = String;

    /// Parses `WIDTHxHEIGHT`, e.g. `640x480`.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("invalid resolution `{s}`: expected WIDTHxHEIGHT, e.g. `640x480`");
        let (w, h) = s.trim().split_once(['x', 'X']).ok_or_else(bad)?;
        let side = |t: &str| -> Result<u32, String> {
            let t = t.trim();
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            t.parse().map_err(|_| bad())
        };
        Self::new(side(w)?, side(h)?)
    }
}

impl<'de> Deserialize<'de> for Resolution {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Resolution;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a resolution like `640x480` or [640, 480]")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Resolution, E> {
                v.parse().map_err(E::custom)
            }
            // YAML reads `0x480` as a hexadecimal number.
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Resolution, E> {
                Err(E::custom(format!(
                    "invalid resolution: the number {v} is not WIDTHxHEIGHT, e.g. `640x480`"
                )))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Resolution, E> {
                Err(E::custom(format!(
                    "invalid resolution: the number {v} is not WIDTHxHEIGHT, e.g. `640x480`"
                )))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Resolution, A::Error> {
                let width: u32 = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let height: u32 = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                if seq.next_element::<de::IgnoredAny>()?.is_some() {
                    return Err(de::Error::invalid_length(3, &self));
                }
                Resolution::new(width, height).map_err(de::Error::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use sluice_core::ComponentMetrics;
    use sluice_core::metrics::{ComponentKind, ComponentLabels};

    use super::*;

    fn parse(yaml: &str) -> Result<CameraConfig, String> {
        serde_saphyr::from_str(yaml).map_err(|e| e.to_string())
    }

    fn issues(cfg: &CameraConfig) -> Vec<(Vec<String>, String)> {
        let mut v = Validator::new();
        let schema = cfg.check(&mut v);
        let issues: Vec<_> = v
            .into_issues()
            .into_iter()
            .map(|i| (i.path, i.message))
            .collect();
        assert_eq!(schema.is_some(), issues.is_empty());
        issues
    }

    #[test]
    fn reads_every_key_with_the_documented_defaults() {
        let cfg = parse("camera: shelf\n").unwrap();
        assert_eq!(cfg.device, DeviceSelector::Index(0));
        assert_eq!(cfg.resolution, None);
        assert_eq!(cfg.fps(), DEFAULT_FPS);
        assert_eq!(cfg.queue.get(), 2);
        assert_eq!(cfg.min_backoff.get(), Duration::from_millis(500));
        assert_eq!(cfg.max_backoff.get(), Duration::from_secs(30));

        let cfg = parse(
            "camera: shelf\ndevice: 2\nresolution: 1280x720\nfps: 15\nqueue: 4\n\
             min_backoff: 1s\nmax_backoff: 1m\n",
        )
        .unwrap();
        assert_eq!(cfg.device, DeviceSelector::Index(2));
        assert_eq!(cfg.resolution, Some(Resolution::new(1280, 720).unwrap()));
        assert_eq!((cfg.fps(), cfg.queue.get()), (15.0, 4));
        assert!(issues(&cfg).is_empty());
    }

    #[test]
    fn device_is_an_index_a_path_or_part_of_a_name() {
        let device = |y: &str| parse(&format!("camera: c\ndevice: {y}\n")).map(|c| c.device);
        assert_eq!(device("3"), Ok(DeviceSelector::Index(3)));
        assert_eq!(device("\"1\""), Ok(DeviceSelector::Index(1)));
        assert_eq!(
            device("/dev/video2"),
            Ok(DeviceSelector::Path("/dev/video2".into()))
        );
        assert_eq!(
            device("\"HD Pro Webcam\""),
            Ok(DeviceSelector::Name("HD Pro Webcam".into()))
        );
        assert!(device("-1").unwrap_err().contains("must not be negative"));
        assert!(device("\"\"").unwrap_err().contains("empty device"));
    }

    #[test]
    fn device_strings_take_environment_variables() {
        let cfg = sluice_core::env::with_vars(&[("SHELF_CAM", "/dev/video4")], || {
            parse("camera: c\ndevice: ${SHELF_CAM}\n")
        })
        .unwrap();
        assert_eq!(cfg.device, DeviceSelector::Path("/dev/video4".into()));
    }

    #[test]
    fn resolution_is_width_x_height_or_a_pair() {
        let res = |y: &str| parse(&format!("camera: c\nresolution: {y}\n")).map(|c| c.resolution);
        let vga = Some(Resolution::new(640, 480).unwrap());
        assert_eq!(res("640x480"), Ok(vga));
        assert_eq!(res("[640, 480]"), Ok(vga));
    }

    #[test]
    fn bad_resolutions_say_what_is_expected() {
        let err = |y: &str| {
            parse(&format!("camera: c\nresolution: {y}\n"))
                .map(|c| c.resolution)
                .unwrap_err()
        };
        assert!(
            err("640*480").contains("invalid resolution `640*480`: expected WIDTHxHEIGHT"),
            "{}",
            err("640*480")
        );
        assert!(err("x480").contains("expected WIDTHxHEIGHT"));
        assert!(err("\"0x480\"").contains("between 1 and 16384"));
        assert!(err("0x480").contains("the number 1152 is not WIDTHxHEIGHT"));
        assert!(err("640").contains("the number 640 is not WIDTHxHEIGHT"));
        assert!(
            err("[640]").contains("invalid length 1"),
            "{}",
            err("[640]")
        );
        assert!(err("[640, 480, 3]").contains("invalid length 3"));
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let e = parse("camera: c\nresoluton: 640x480\n").unwrap_err();
        assert!(e.contains("unknown field `resoluton`"), "{e}");
    }

    #[test]
    fn the_camera_id_is_required() {
        let e = parse("device: 0\n").unwrap_err();
        assert!(e.contains("missing field `camera`"), "{e}");
    }

    #[test]
    fn fps_must_be_above_zero() {
        for fps in ["0", "-5", "1001", ".nan"] {
            let cfg = parse(&format!("camera: c\nfps: {fps}\n")).unwrap();
            assert_eq!(
                issues(&cfg),
                [(
                    vec!["fps".to_owned()],
                    "fps must be a number above 0 and at most 1000".to_owned()
                )],
                "fps {fps}"
            );
        }
        let cfg = parse("camera: c\nfps: 0.5\n").unwrap();
        assert!(issues(&cfg).is_empty());
    }

    /// The start-up path on machines without cameras (CI, build machines):
    /// building the source fails at once with the camera id, the device and
    /// where it looked, which `sluice run` reports before exiting with 1.
    #[test]
    fn build_fails_with_a_clear_error_when_no_camera_is_attached() {
        let found = crate::device::scan(
            std::path::Path::new("/dev"),
            std::path::Path::new("/sys/class/video4linux"),
        );
        if !found.is_empty() {
            eprintln!("skipped: this machine has /dev/video* devices");
            return;
        }
        let cfg = parse("camera: shelf\ndevice: 0\nresolution: 640x480\n").unwrap();
        let labels = ComponentLabels::new("p", "shelf_cam", ComponentKind::Source, "camera");
        let cx = BuildCx {
            pipeline: "p".into(),
            id: "shelf_cam".into(),
            inputs: Vec::new(),
            metrics: ComponentMetrics::new(labels),
        };
        let e = cfg.build(&cx).unwrap_err().to_string();
        assert_eq!(
            e,
            "camera source `shelf`: cannot open camera 0: no video devices found \
             (looked for /dev/video*)"
        );
    }

    #[test]
    fn check_describes_a_frame_stream_without_touching_devices() {
        // `sluice validate` must work on a machine without the camera.
        let cfg = parse("camera: c\ndevice: /dev/no-such-video-node\n").unwrap();
        let mut v = Validator::new();
        let schema = cfg.check(&mut v).unwrap();
        assert_eq!(
            sluice_core::Payload::of(&schema),
            sluice_core::Payload::Frames
        );
    }
}
