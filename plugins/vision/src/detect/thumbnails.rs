//! Thumbnails of frames with detections: small JPEGs that stay on the box,
//! under a retention limit on file count, bytes and age.
//!
//! Layout: `{dir}/{camera}/{event_time_ms}.jpg`. A file is written under a
//! temporary name (`.{event_time_ms}.jpg.tmp`, same directory) and renamed,
//! so readers never see a partial image. The store remembers the files it
//! keeps (found at start-up plus those it wrote), oldest first by
//! modification time, and deletes the oldest whenever a limit is exceeded:
//! at start-up and after each write. Only names of that form are counted or
//! deleted; other files in `dir` are left alone.
//!
//! Every failure (unwritable directory, full disk, encoding) is counted in
//! `sluice_detect_thumbnail_errors_total{reason}`, logged at most every 10 s,
//! and makes that frame's `thumbnail` null; detection goes on.

use std::collections::{HashMap, VecDeque};
use std::io::ErrorKind;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use image::{ExtendedColorType, ImageBuffer, ImageEncoder};
use metrics::Counter;
use serde::Deserialize;
use sluice_core::{ByteSize, ComponentMetrics, EnvString, HumanDuration, Validator};
use tracing::warn;

use super::preprocess::Rgb;
use crate::names;

/// At most one warning per this interval.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// `thumbnails:` of a `detect` transform: where and how often to keep a
/// downscaled JPEG of a frame with detections, and how many to keep.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct ThumbnailsConfig {
    /// Directory of the thumbnails, one sub-directory per camera; created
    /// when missing. Give each `detect` transform its own.
    pub dir: EnvString,
    /// Width in pixels (the height keeps the aspect ratio); frames narrower
    /// than this are not enlarged.
    #[serde(default = "default_width")]
    pub width: NonZeroU32,
    /// At most one thumbnail per camera per this much event time.
    #[serde(default = "default_every")]
    pub every: HumanDuration,
    /// JPEG quality, 1 to 100.
    #[serde(default = "default_quality")]
    pub quality: u8,
    /// Most files kept; the oldest beyond it are deleted.
    #[serde(default = "default_max_files")]
    pub max_files: NonZeroUsize,
    /// Most bytes kept; the oldest files beyond it are deleted.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: ByteSize,
    /// Files older than this (modification time) are deleted.
    #[serde(default = "default_max_age")]
    pub max_age: HumanDuration,
}

fn default_width() -> NonZeroU32 {
    NonZeroU32::new(320).unwrap_or(NonZeroU32::MIN)
}
fn default_every() -> HumanDuration {
    HumanDuration(Duration::from_secs(1))
}
fn default_quality() -> u8 {
    80
}
fn default_max_files() -> NonZeroUsize {
    NonZeroUsize::new(500).unwrap_or(NonZeroUsize::MIN)
}
fn default_max_bytes() -> ByteSize {
    ByteSize(50_000_000)
}
fn default_max_age() -> HumanDuration {
    HumanDuration(Duration::from_secs(7 * 86_400))
}

impl ThumbnailsConfig {
    /// Reports invalid values under `thumbnails`.
    pub(crate) fn check(&self, v: &mut Validator) -> bool {
        let mut ok = true;
        if !(1..=100).contains(&self.quality) {
            v.error(&["thumbnails", "quality"], "must be between 1 and 100");
            ok = false;
        }
        if self.dir.as_str().is_empty() {
            v.error(&["thumbnails", "dir"], "must not be empty");
            ok = false;
        }
        if self.max_bytes.bytes() == 0 {
            v.error(&["thumbnails", "max_bytes"], "must be above 0");
            ok = false;
        }
        if self.max_age.get().is_zero() {
            v.error(&["thumbnails", "max_age"], "must be above 0");
            ok = false;
        }
        ok
    }
}

/// A file the store keeps.
#[derive(Debug, Clone)]
struct Kept {
    path: PathBuf,
    modified: SystemTime,
    bytes: u64,
}

#[derive(Debug, Default)]
struct State {
    /// Oldest first.
    files: VecDeque<Kept>,
    /// Sum of `files[..].bytes`.
    bytes: u64,
    /// Per camera: event time and number of objects of the newest
    /// thumbnail claimed.
    last: HashMap<String, (i64, usize)>,
}

/// Why a thumbnail could not be kept; the metric's `reason` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Reason {
    Encode,
    Write,
    Delete,
    Scan,
}

impl Reason {
    const ALL: [Reason; 4] = [Reason::Encode, Reason::Write, Reason::Delete, Reason::Scan];

    fn as_str(self) -> &'static str {
        match self {
            Reason::Encode => "encode",
            Reason::Write => "write",
            Reason::Delete => "delete",
            Reason::Scan => "scan",
        }
    }
}

/// A thumbnail encoded on a worker, waiting for its frame's turn.
#[derive(Debug)]
pub(crate) struct Prepared {
    jpeg: Vec<u8>,
}

/// The thumbnail store of one `detect` transform, shared by its workers.
#[derive(Debug)]
pub(crate) struct Thumbnails {
    dir: PathBuf,
    width: u32,
    quality: u8,
    every_ms: i64,
    max_files: usize,
    max_bytes: u64,
    max_age: Duration,
    state: Mutex<State>,
    written: Counter,
    deleted: Counter,
    errors: HashMap<Reason, Counter>,
    id: Arc<str>,
    last_warning: Mutex<Option<Instant>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The state stays consistent between statements, so a panic elsewhere
    // while holding the lock leaves nothing half-updated to fear.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A camera id as a single, harmless directory name.
fn camera_dir(camera: &str) -> String {
    let name: String = camera
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.chars().all(|c| c == '.') {
        format!("_{name}")
    } else {
        name
    }
}

/// Whether `name` is a thumbnail this store writes: `{integer}.jpg`.
fn is_thumbnail(name: &str) -> bool {
    name.strip_suffix(".jpg")
        .is_some_and(|stem| stem.parse::<i64>().is_ok())
}

/// Whether `name` is a temporary file this store leaves behind when the
/// process stops between writing and renaming.
fn is_leftover_temp(name: &str) -> bool {
    name.strip_prefix('.')
        .and_then(|n| n.strip_suffix(".tmp"))
        .is_some_and(is_thumbnail)
}

impl Thumbnails {
    /// Opens the store: finds the thumbnails already in `dir`, removes
    /// leftover temporary files and enforces the limits. Problems with the
    /// directory are counted and logged, never fatal: writes may succeed
    /// once it is fixed.
    pub(crate) fn open(cfg: &ThumbnailsConfig, metrics: &ComponentMetrics) -> Self {
        let errors = Reason::ALL
            .iter()
            .map(|r| {
                let c = metrics.counter_with(
                    names::DETECT_THUMBNAIL_ERRORS_TOTAL,
                    &[("reason", r.as_str())],
                );
                (*r, c)
            })
            .collect();
        let store = Self {
            dir: PathBuf::from(cfg.dir.as_str()),
            width: cfg.width.get(),
            quality: cfg.quality.clamp(1, 100),
            every_ms: i64::try_from(cfg.every.get().as_millis()).unwrap_or(i64::MAX),
            max_files: cfg.max_files.get(),
            max_bytes: cfg.max_bytes.bytes(),
            max_age: cfg.max_age.get(),
            state: Mutex::new(State::default()),
            written: metrics.counter(names::DETECT_THUMBNAILS_TOTAL),
            deleted: metrics.counter(names::DETECT_THUMBNAILS_DELETED_TOTAL),
            errors,
            id: Arc::clone(&metrics.labels().component_id),
            last_warning: Mutex::new(None),
        };
        let found = store.scan();
        {
            let mut st = lock(&store.state);
            st.bytes = found.iter().map(|k| k.bytes).sum();
            st.files = found.into();
        }
        store.prune(SystemTime::now());
        store
    }

    fn fail(&self, reason: Reason, path: &Path, error: &dyn std::fmt::Display) {
        if let Some(c) = self.errors.get(&reason) {
            c.increment(1);
        }
        let now = Instant::now();
        let mut last = lock(&self.last_warning);
        if last.is_none_or(|t| now.duration_since(t) >= LOG_EVERY) {
            *last = Some(now);
            warn!(
                component = %self.id,
                reason = reason.as_str(),
                path = %path.display(),
                error = %error,
                "Thumbnail store failed; frames go on without thumbnails."
            );
        }
    }

    /// The thumbnails under `dir`, oldest first; removes leftover temporary
    /// files.
    fn scan(&self) -> Vec<Kept> {
        let mut found = Vec::new();
        let cameras = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return found,
            Err(e) => {
                self.fail(Reason::Scan, &self.dir, &e);
                return found;
            }
        };
        for camera in cameras.filter_map(Result::ok) {
            if !camera.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let files = match std::fs::read_dir(camera.path()) {
                Ok(files) => files,
                Err(e) => {
                    self.fail(Reason::Scan, &camera.path(), &e);
                    continue;
                }
            };
            for file in files.filter_map(Result::ok) {
                let name = file.file_name();
                let Some(name) = name.to_str() else { continue };
                let path = file.path();
                if is_leftover_temp(name) {
                    if let Err(e) = std::fs::remove_file(&path) {
                        self.fail(Reason::Delete, &path, &e);
                    }
                } else if is_thumbnail(name)
                    && let Ok(meta) = file.metadata()
                    && meta.is_file()
                {
                    found.push(Kept {
                        path,
                        modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                        bytes: meta.len(),
                    });
                }
            }
        }
        found.sort_by(|a, b| (a.modified, &a.path).cmp(&(b.modified, &b.path)));
        found
    }

    /// Whether the camera is due a thumbnail of a frame at `ts` (event
    /// time, ms) showing `objects` detections: when the last one kept is at
    /// least `every` away, before or after (a file source starting its loop
    /// again gets new ones), or sooner when the frame shows more objects
    /// than that last one, so the event a newcomer raises has a picture of
    /// it. Within one `every`, that allows one thumbnail per object added,
    /// never more.
    fn due(st: &State, every_ms: i64, camera: &str, ts: i64, objects: usize) -> bool {
        !matches!(
            st.last.get(camera),
            Some((last, seen)) if ts.abs_diff(*last) < every_ms.unsigned_abs() && objects <= *seen
        )
    }

    /// Encodes a thumbnail of `img`, the frame of `camera` at `ts` with
    /// `objects` detections, when the camera may be due one; runs on a
    /// worker, in any order. Only [`Thumbnails::keep`], called in frame
    /// order, decides: with frames of one camera in event-time order, a
    /// frame it would keep is never turned away here, since the thumbnails
    /// kept meanwhile are of earlier frames, which only make the slot less
    /// free. A few extra encodes (at most one per frame running at once)
    /// are the price of workers finishing out of order.
    pub(crate) fn prepare(
        &self,
        camera: &str,
        ts: i64,
        objects: usize,
        img: &Rgb,
    ) -> Option<Prepared> {
        if !Self::due(&lock(&self.state), self.every_ms, camera, ts, objects) {
            return None;
        }
        match self.encode(img) {
            Ok(jpeg) => Some(Prepared { jpeg }),
            Err(e) => {
                let path = self.dir.join(camera_dir(camera)).join(format!("{ts}.jpg"));
                self.fail(Reason::Encode, &path, &e);
                None
            }
        }
    }

    /// Keeps `prepared`, the thumbnail of the frame of `camera` at `ts` with
    /// `objects` detections, when the camera is still due one; call in
    /// frame order. Returns its path, or `None` when none is due or it could
    /// not be written. A failed write keeps the slot, so a broken disk costs
    /// one attempt per slot, not one per frame.
    pub(crate) fn keep(
        &self,
        camera: &str,
        ts: i64,
        objects: usize,
        prepared: Prepared,
    ) -> Option<String> {
        {
            let mut st = lock(&self.state);
            if !Self::due(&st, self.every_ms, camera, ts, objects) {
                return None;
            }
            st.last.insert(camera.to_owned(), (ts, objects));
        }
        let jpeg = prepared.jpeg;
        let dir = self.dir.join(camera_dir(camera));
        let path = dir.join(format!("{ts}.jpg"));
        if let Err(e) = write_atomically(&dir, ts, &path, &jpeg) {
            self.fail(Reason::Write, &path, &e);
            return None;
        }
        self.written.increment(1);
        let kept = Kept {
            path: path.clone(),
            modified: SystemTime::now(),
            bytes: jpeg.len() as u64,
        };
        {
            let mut st = lock(&self.state);
            // Same camera and event time again (`every: 0s`): the file was
            // replaced, so its old size no longer counts.
            if let Some(i) = st.files.iter().position(|k| k.path == path)
                && let Some(old) = st.files.remove(i)
            {
                st.bytes = st.bytes.saturating_sub(old.bytes);
            }
            st.bytes += kept.bytes;
            st.files.push_back(kept);
        }
        let deleted = self.prune(SystemTime::now());
        if deleted.contains(&path) {
            // Larger than `max_bytes` on its own: not kept, so not reported.
            return None;
        }
        Some(path.to_string_lossy().into_owned())
    }

    /// [`Thumbnails::prepare`] and [`Thumbnails::keep`] in one go, for a
    /// single frame in order.
    #[cfg(test)]
    pub(crate) fn offer(&self, camera: &str, ts: i64, objects: usize, img: &Rgb) -> Option<String> {
        let prepared = self.prepare(camera, ts, objects, img)?;
        self.keep(camera, ts, objects, prepared)
    }

    fn encode(&self, img: &Rgb) -> Result<Vec<u8>, image::ImageError> {
        let view: ImageBuffer<image::Rgb<u8>, &[u8]> =
            ImageBuffer::from_raw(img.width, img.height, img.data.as_slice()).ok_or_else(|| {
                image::ImageError::Parameter(image::error::ParameterError::from_kind(
                    image::error::ParameterErrorKind::DimensionMismatch,
                ))
            })?;
        let width = self.width.min(img.width).max(1);
        let height = ((u64::from(img.height) * u64::from(width) + u64::from(img.width) / 2)
            / u64::from(img.width))
        .clamp(1, u64::from(u32::MAX)) as u32;
        let small = image::imageops::resize(&view, width, height, FilterType::Triangle);
        let mut jpeg = Vec::with_capacity(16 * 1024);
        JpegEncoder::new_with_quality(&mut jpeg, self.quality).write_image(
            small.as_raw(),
            width,
            height,
            ExtendedColorType::Rgb8,
        )?;
        Ok(jpeg)
    }

    /// Deletes the oldest files while any limit is exceeded at `now`;
    /// returns the paths it removed from the store.
    pub(crate) fn prune(&self, now: SystemTime) -> Vec<PathBuf> {
        let oldest_allowed = now.checked_sub(self.max_age);
        let mut victims = Vec::new();
        {
            let mut st = lock(&self.state);
            while let Some(front) = st.files.front() {
                let too_old = oldest_allowed.is_some_and(|t| front.modified < t);
                if st.files.len() <= self.max_files && st.bytes <= self.max_bytes && !too_old {
                    break;
                }
                if let Some(k) = st.files.pop_front() {
                    st.bytes = st.bytes.saturating_sub(k.bytes);
                    victims.push(k.path);
                }
            }
        }
        for path in &victims {
            match std::fs::remove_file(path) {
                Ok(()) => self.deleted.increment(1),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => self.fail(Reason::Delete, path, &e),
            }
        }
        victims
    }

    /// Files and bytes the store keeps.
    #[cfg(test)]
    pub(crate) fn usage(&self) -> (usize, u64) {
        let st = lock(&self.state);
        (st.files.len(), st.bytes)
    }
}

/// Writes `bytes` to a temporary file next to `path`, then renames it.
fn write_atomically(dir: &Path, ts: i64, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{ts}.jpg.tmp"));
    let written = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        // Best effort: a leftover is removed at the next start-up.
        std::fs::remove_file(&tmp).ok();
    }
    written
}

#[cfg(test)]
#[path = "thumbnails_tests.rs"]
mod tests;
