//! The running `frames` source. Capture and delivery are two loops joined by
//! a [`LatestQueue`]: capture keeps its pace whatever downstream does, and
//! when downstream is slower the oldest waiting frame is dropped and counted.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use metrics::Counter;
use sluice_core::LogLimiter;
use sluice_core::{
    Backoff, BuildCx, ComponentError, ComponentMetrics, Frame, FrameEncoding, LatestQueue, Msg,
    Source, SourceCx, bytes::Bytes,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::config::{DEFAULT_FPS, FramesConfig, Timestamps};
use super::http::HttpUrl;
use crate::names;

/// At most one warning per this interval for each kind of problem.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// What a `frames` source reads.
#[derive(Debug, Clone)]
pub enum Input {
    /// Image files in order.
    Files(Vec<PathBuf>),
    /// A snapshot URL polled at the configured rate.
    Snapshot(HttpUrl),
    /// An MJPEG stream.
    Mjpeg(HttpUrl),
}

/// Reads frames; see [`FramesConfig`].
#[derive(Debug)]
pub struct FramesSource {
    pub(super) camera: Arc<str>,
    pub(super) input: Input,
    /// Pace of files and snapshots.
    pub(super) period: Duration,
    /// Shortest interval between stream frames, when `fps` is set.
    pub(super) min_interval: Option<Duration>,
    pub(super) repeat: bool,
    pub(super) timestamps: Timestamps,
    pub(super) queue: usize,
    pub(super) timeout: Duration,
    pub(super) max_frame: usize,
    pub(super) backoff: Backoff,
}

impl FramesSource {
    pub(super) fn new(cfg: &FramesConfig, input: Input, cx: &BuildCx) -> Self {
        Self {
            camera: cfg.camera.as_deref().unwrap_or(&cx.id).into(),
            input,
            period: Duration::from_secs_f64(1.0 / cfg.fps.unwrap_or(DEFAULT_FPS)),
            min_interval: cfg.fps.map(|f| Duration::from_secs_f64(0.9 / f)),
            repeat: cfg.repeat,
            timestamps: cfg.timestamps,
            queue: cfg.queue.get(),
            timeout: cfg.timeout.get(),
            max_frame: usize::try_from(cfg.max_frame_bytes.bytes()).unwrap_or(usize::MAX),
            backoff: Backoff::new(cfg.min_backoff.get(), cfg.max_backoff.get()),
        }
    }
}

/// The capture side: turns image bytes into frames and queues them.
pub(super) struct Capture {
    pub(super) camera: Arc<str>,
    pub(super) queue: Arc<LatestQueue<Arc<Frame>>>,
    pub(super) metrics: ComponentMetrics,
    pub(super) stop: CancellationToken,
    captured: Counter,
    pub(super) reconnects: Counter,
    seq: u64,
    warnings: [LogLimiter; 3],
}

/// Kinds of rate-limited warnings.
#[derive(Clone, Copy)]
pub(super) enum Warn {
    Corrupt = 0,
    Connection = 1,
    Overrun = 2,
}

impl Capture {
    /// Logs at most one warning per kind per [`LOG_EVERY`].
    pub(super) fn warn(&mut self, kind: Warn, message: &str) {
        let now = Instant::now();
        if self.warnings[kind as usize].ready(now) {
            warn!(camera = %self.camera, "{message}");
        }
    }

    /// Counts a failed or stalled connection.
    pub(super) fn connection_failed(&mut self, code: &'static str, message: String) {
        let err = ComponentError::external(code, message);
        self.metrics.error(&err, "receiving");
        self.warn(
            Warn::Connection,
            &format!("camera connection: {err}; reconnecting"),
        );
    }

    /// Sleeps for `d`; returns false when the source must stop.
    pub(super) async fn pause(&self, d: Duration) -> bool {
        tokio::select! {
            _ = self.stop.cancelled() => false,
            _ = tokio::time::sleep(d) => true,
        }
    }

    /// Checks `data` is an image, reads its size and queues it as a frame.
    /// Corrupt images are counted and dropped.
    pub(super) fn offer(&mut self, data: Vec<u8>, event_time_ms: i64) {
        self.metrics.received(1, data.len());
        let format = image::guess_format(&data).ok();
        let encoding = match format {
            Some(image::ImageFormat::Jpeg) => FrameEncoding::Jpeg,
            Some(image::ImageFormat::Png) => FrameEncoding::Png,
            _ => return self.corrupt("not a JPEG or PNG image"),
        };
        let reader = image::ImageReader::with_format(
            std::io::Cursor::new(&data),
            format.unwrap_or(image::ImageFormat::Jpeg),
        );
        let (width, height) = match reader.into_dimensions() {
            Ok(d) if d.0 > 0 && d.1 > 0 => d,
            Ok(_) => return self.corrupt("image of 0 pixels"),
            Err(e) => return self.corrupt(&e.to_string()),
        };
        self.captured.increment(1);
        let frame = Arc::new(Frame {
            camera: self.camera.to_string(),
            event_time_ms,
            seq: self.seq,
            width,
            height,
            encoding,
            data: Bytes::from(data),
        });
        self.seq += 1;
        if self.queue.push(frame).is_some() {
            self.metrics.discarded("drop_oldest", false, 1);
            self.warn(
                Warn::Overrun,
                "downstream is slower than the camera; dropping the oldest frames",
            );
        }
    }

    fn corrupt(&mut self, why: &str) {
        self.metrics.discarded("corrupt_frame", false, 1);
        self.warn(Warn::Corrupt, &format!("dropping a corrupt frame: {why}"));
    }
}

impl Source for FramesSource {
    async fn run(self, mut cx: SourceCx) -> Result<(), ComponentError> {
        let queue = LatestQueue::new(self.queue);
        let stop = cx.shutdown.child_token();
        let metrics = cx.out.metrics().clone();
        let mut capture = Capture {
            camera: Arc::clone(&self.camera),
            queue: Arc::clone(&queue),
            captured: metrics.counter(names::FRAMES_CAPTURED_TOTAL),
            reconnects: metrics.counter(names::FRAMES_RECONNECTS_TOTAL),
            metrics,
            stop: stop.clone(),
            seq: 0,
            warnings: std::array::from_fn(|_| LogLimiter::new(LOG_EVERY)),
        };
        cx.ready.set(true);
        let producer = async {
            let result = self.capture(&mut capture).await;
            queue.close();
            result
        };
        let forwarder = async {
            while let Some(frame) = queue.pop().await {
                if let Err(e) = cx.out.emit_msg(Msg::Frame(frame)).await {
                    stop.cancel();
                    return Err(e);
                }
            }
            Ok(())
        };
        let (captured, forwarded) = tokio::join!(producer, forwarder);
        captured.and(forwarded)
    }
}
