//! `type: frames`: configuration and checks.

use std::num::NonZeroUsize;
use std::time::Duration;

use serde::Deserialize;
use sluice_core::arrow_schema::SchemaRef;
use sluice_core::{
    BuildCx, BuildError, ByteSize, EnvString, HumanDuration, SourceConfig, Validator,
    frame_stream_schema,
};

use super::files::{list, time_from_name};
use super::http::HttpUrl;
use super::source::{FramesSource, Input};

/// Camera frames from image files, an HTTP snapshot URL or an MJPEG stream.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct FramesConfig {
    /// Camera id every frame carries; default the component id.
    #[serde(default)]
    pub camera: Option<String>,
    /// Image files: a directory (every .jpg/.jpeg/.png) or a pattern in the
    /// file name (`frames/cam1-*.jpg`), read in name order.
    #[serde(default)]
    pub path: Option<EnvString>,
    /// An `http://` URL answering with one JPEG or PNG, polled at `fps`.
    #[serde(default)]
    pub snapshot_url: Option<EnvString>,
    /// An `http://` MJPEG stream (`multipart/x-mixed-replace`).
    #[serde(default)]
    pub mjpeg_url: Option<EnvString>,
    /// Frames per second: the pace of files and snapshots (default 5), the
    /// most taken from a stream (default: every frame; faster frames are
    /// skipped and counted as `fps_limit`).
    #[serde(default)]
    pub fps: Option<f64>,
    /// Files: start again from the first file after the last one.
    #[serde(default, rename = "loop")]
    pub repeat: bool,
    /// Files: event time from the file `order` (start time + n / fps) or
    /// from the last number in each file `name` (ms since the epoch with 13+
    /// digits, else seconds). HTTP frames are stamped on arrival.
    #[serde(default)]
    pub timestamps: Timestamps,
    /// Frames waiting for downstream; when full the oldest is dropped and
    /// counted (`drop_oldest`), so a slow detector never builds a backlog.
    #[serde(default = "default_queue")]
    pub queue: NonZeroUsize,
    /// HTTP: longest wait for a connection, an answer or the next bytes of a
    /// stream before it counts as stalled and is reconnected.
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// Largest accepted image.
    #[serde(default = "default_max_frame")]
    pub max_frame_bytes: ByteSize,
    /// HTTP: first delay before reconnecting; doubles per failure.
    #[serde(default = "default_min_backoff")]
    pub min_backoff: HumanDuration,
    /// HTTP: longest delay before reconnecting.
    #[serde(default = "default_max_backoff")]
    pub max_backoff: HumanDuration,
}

/// Where file frames get their event time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Timestamps {
    /// Start time plus `n / fps` for the n-th frame.
    #[default]
    Order,
    /// The number in the file name.
    Name,
}

/// Pace of files and snapshots without `fps`.
pub(super) const DEFAULT_FPS: f64 = 5.0;

fn default_queue() -> NonZeroUsize {
    NonZeroUsize::new(2).unwrap_or(NonZeroUsize::MIN)
}
fn default_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(5))
}
fn default_max_frame() -> ByteSize {
    ByteSize(16 * 1024 * 1024)
}
fn default_min_backoff() -> HumanDuration {
    HumanDuration(Duration::from_millis(500))
}
fn default_max_backoff() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

impl FramesConfig {
    /// The `type` of this component in pipeline YAML.
    pub const TYPE: &'static str = "frames";

    /// The input, or every problem with it.
    fn input(&self, v: &mut Validator) -> Option<Input> {
        let given = [
            ("path", &self.path),
            ("snapshot_url", &self.snapshot_url),
            ("mjpeg_url", &self.mjpeg_url),
        ];
        let set: Vec<_> = given.iter().filter(|(_, v)| v.is_some()).collect();
        if set.len() != 1 {
            v.error(
                &[],
                "set exactly one of `path`, `snapshot_url` and `mjpeg_url`",
            );
            return None;
        }
        let ok_fps = self
            .fps
            .is_none_or(|f| f.is_finite() && f > 0.0 && f <= 1000.0);
        if !ok_fps {
            v.error(&["fps"], "fps must be a number above 0 and at most 1000");
        }
        let input = match (&self.path, &self.snapshot_url, &self.mjpeg_url) {
            (Some(p), _, _) => match list(p.as_str()) {
                Ok(files) => {
                    let untimed = files.iter().find(|f| time_from_name(f).is_none());
                    if let (Timestamps::Name, Some(f)) = (self.timestamps, untimed) {
                        v.error(
                            &["timestamps"],
                            format!("no time in the name of {}", f.display()),
                        )
                        .help("use `timestamps: order` or names like `cam1-1700000000123.jpg`");
                        return None;
                    }
                    Input::Files(files)
                }
                Err(e) => {
                    v.error(&["path"], e);
                    return None;
                }
            },
            (_, Some(u), _) | (_, _, Some(u)) => {
                let key = if self.snapshot_url.is_some() {
                    "snapshot_url"
                } else {
                    "mjpeg_url"
                };
                match HttpUrl::parse(u.as_str()) {
                    Ok(url) if key == "snapshot_url" => Input::Snapshot(url),
                    Ok(url) => Input::Mjpeg(url),
                    Err(e) => {
                        v.error(&[key], e.to_string());
                        return None;
                    }
                }
            }
            (None, None, None) => return None,
        };
        ok_fps.then_some(input)
    }
}

impl SourceConfig for FramesConfig {
    const TYPE: &'static str = "frames";
    const METRICS: &'static [sluice_core::metrics::MetricDoc] =
        sluice_core::metrics::FRAME_SOURCE_METRICS;
    type Component = FramesSource;

    fn check(&self, v: &mut Validator) -> Option<SchemaRef> {
        self.input(v).map(|_| frame_stream_schema())
    }

    fn build(&self, cx: &BuildCx) -> Result<FramesSource, BuildError> {
        let mut v = Validator::new();
        let Some(input) = self.input(&mut v) else {
            return Err(v.into_build_error(&cx.id));
        };
        Ok(FramesSource::new(self, input, cx))
    }
}
