//! The capture thread: opens the camera, grabs buffers, turns them into
//! frames and queues them; a camera that fails or disappears is counted,
//! logged at most every 10 s and reopened with backoff until the source stops.
//!
//! Camera drivers block, so this runs on its own OS thread, never on the
//! async reactor. Stopping is checked between buffers and while waiting to
//! reopen.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use metrics::Counter;
use sluice_core::bytes::Bytes;
use sluice_core::{Backoff, ComponentError, ComponentMetrics, Frame, LatestQueue, ReadyFlag};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::convert::{BadFrame, frame_data};
use crate::mode::Mode;
use crate::names;

/// At most one warning per this interval for each kind of problem.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// How often a wait before reopening checks whether the source must stop.
const STOP_POLL: Duration = Duration::from_millis(50);
/// A camera that delivered frames this long before failing starts its
/// backoff over; one that fails sooner keeps backing off.
const HEALTHY_RUN: Duration = Duration::from_secs(10);
/// Largest accepted gap between a driver timestamp and the wall clock;
/// beyond it the frame is stamped on arrival.
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5);

/// One buffer from a camera.
#[derive(Debug, Clone)]
pub struct Grabbed {
    /// The buffer as the camera delivered it.
    pub data: Bytes,
    /// Capture time since the Unix epoch, when the driver reports one.
    pub captured: Option<Duration>,
}

/// Opens a camera; called on the capture thread, again after every failure.
pub trait Open: Send + 'static {
    /// An open, streaming camera.
    type Camera: Grab;
    /// Opens the camera; the error says which camera and why, in words an
    /// operator can act on.
    fn open(&self) -> Result<Self::Camera, String>;
}

/// A streaming camera.
pub trait Grab {
    /// The mode its buffers are in.
    fn mode(&self) -> Mode;
    /// Waits for the next buffer; an error means the camera failed or is gone.
    fn grab(&mut self) -> Result<Grabbed, String>;
}

/// Kinds of rate-limited warnings.
#[derive(Clone, Copy)]
enum Warn {
    Camera = 0,
    Corrupt = 1,
    Overrun = 2,
}

/// State of the capture thread.
pub(crate) struct Capture {
    pub(crate) camera: Arc<str>,
    pub(crate) queue: Arc<LatestQueue<Arc<Frame>>>,
    pub(crate) metrics: ComponentMetrics,
    pub(crate) ready: ReadyFlag,
    pub(crate) stop: CancellationToken,
    /// Shortest interval between delivered frames.
    pub(crate) min_interval: Duration,
    pub(crate) backoff: Backoff,
    captured: Counter,
    reconnects: Counter,
    seq: u64,
    last_kept: Option<Instant>,
    last_warning: [Option<Instant>; 3],
}

impl Capture {
    /// Capture state delivering into `queue`.
    pub(crate) fn new(
        camera: Arc<str>,
        queue: Arc<LatestQueue<Arc<Frame>>>,
        metrics: ComponentMetrics,
        ready: ReadyFlag,
        stop: CancellationToken,
        min_interval: Duration,
        backoff: Backoff,
    ) -> Self {
        Self {
            captured: metrics.counter(names::FRAMES_CAPTURED_TOTAL),
            reconnects: metrics.counter(names::FRAMES_RECONNECTS_TOTAL),
            camera,
            queue,
            metrics,
            ready,
            stop,
            min_interval,
            backoff,
            seq: 0,
            last_kept: None,
            last_warning: [None; 3],
        }
    }

    /// Captures until `stop` fires, reopening the camera whenever it fails.
    pub(crate) fn run<O: Open>(&mut self, opener: &O) {
        while !self.stop.is_cancelled() {
            let camera = match opener.open() {
                Ok(c) => c,
                Err(e) => {
                    self.failed("camera_unavailable", e);
                    if !self.pause() {
                        return;
                    }
                    continue;
                }
            };
            info!(camera = %self.camera, mode = %camera.mode(), "Camera opened.");
            self.ready.set(true);
            let started = Instant::now();
            let lost = self.stream(camera);
            self.ready.set(false);
            let Some(e) = lost else {
                return;
            };
            if started.elapsed() >= HEALTHY_RUN {
                self.backoff.reset();
            }
            self.failed("camera_lost", e);
            if !self.pause() {
                return;
            }
        }
    }

    /// Grabs until the camera fails (returns why) or `stop` fires (`None`).
    fn stream<C: Grab>(&mut self, mut camera: C) -> Option<String> {
        let mode = camera.mode();
        while !self.stop.is_cancelled() {
            match camera.grab() {
                Ok(g) => self.offer(g, mode),
                Err(e) => return Some(e),
            }
        }
        None
    }

    /// Counts and logs a failed or lost camera.
    fn failed(&mut self, code: &'static str, detail: String) {
        let err = ComponentError::external(code, detail);
        self.metrics.error(&err, "receiving");
        self.reconnects.increment(1);
        if self.may_warn(Warn::Camera) {
            warn!(camera = %self.camera, code, error = %err, "Camera failed; reopening with backoff.");
        }
    }

    /// Waits before the next open; false when the source must stop.
    fn pause(&mut self) -> bool {
        let until = Instant::now() + self.backoff.next_delay();
        loop {
            if self.stop.is_cancelled() {
                return false;
            }
            let now = Instant::now();
            if now >= until {
                return true;
            }
            std::thread::sleep((until - now).min(STOP_POLL));
        }
    }

    /// Turns a buffer into a frame and queues it. Buffers faster than the
    /// configured rate are skipped (`fps_limit`), unusable ones dropped
    /// (`corrupt_frame`); when the queue is full its oldest frame is
    /// dropped (`drop_oldest`).
    fn offer(&mut self, g: Grabbed, mode: Mode) {
        let now = Instant::now();
        if self
            .last_kept
            .is_some_and(|t| now.duration_since(t) < self.min_interval)
        {
            self.metrics.discarded("fps_limit", true, 1);
            return;
        }
        self.metrics.received(1, g.data.len());
        let (encoding, data) = match frame_data(mode.pixel, mode.size, &g.data) {
            Ok(d) => d,
            Err(BadFrame(why)) => {
                self.metrics.discarded("corrupt_frame", false, 1);
                if self.may_warn(Warn::Corrupt) {
                    warn!(camera = %self.camera, error = %why, "Dropped a corrupt frame.");
                }
                return;
            }
        };
        self.last_kept = Some(now);
        self.captured.increment(1);
        let frame = Arc::new(Frame {
            camera: self.camera.to_string(),
            event_time_ms: event_time_ms(g.captured, SystemTime::now()),
            seq: self.seq,
            width: mode.size.width,
            height: mode.size.height,
            encoding,
            data,
        });
        self.seq += 1;
        if self.queue.push(frame).is_some() {
            self.metrics.discarded("drop_oldest", false, 1);
            if self.may_warn(Warn::Overrun) {
                warn!(
                    camera = %self.camera,
                    "Downstream is slower than the camera; dropping the oldest frames."
                );
            }
        }
    }

    /// Whether a warning of `kind` may be logged now; at most one per [`LOG_EVERY`].
    fn may_warn(&mut self, kind: Warn) -> bool {
        let now = Instant::now();
        let last = &mut self.last_warning[kind as usize];
        if last.is_none_or(|t| now.duration_since(t) >= LOG_EVERY) {
            *last = Some(now);
            true
        } else {
            false
        }
    }
}

/// Event time of a frame in ms since the Unix epoch: the driver's capture
/// time when it is plausible, else `now`.
fn event_time_ms(captured: Option<Duration>, now: SystemTime) -> i64 {
    let now = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let at = captured
        .filter(|c| c.abs_diff(now) <= MAX_CLOCK_SKEW)
        .unwrap_or(now);
    i64::try_from(at.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_time_is_the_driver_capture_time_when_plausible() {
        let now = UNIX_EPOCH + Duration::from_millis(1_700_000_000_500);
        let at = |ms: u64| Some(Duration::from_millis(ms));
        assert_eq!(event_time_ms(at(1_700_000_000_480), now), 1_700_000_000_480);
        // A driver clock that is off by minutes is ignored.
        assert_eq!(event_time_ms(at(1_699_999_000_000), now), 1_700_000_000_500);
        assert_eq!(event_time_ms(None, now), 1_700_000_000_500);
    }
}
