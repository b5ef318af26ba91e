//! The running `camera` source: a capture thread and an async forwarder
//! joined by a [`LatestQueue`]. Capture keeps the camera's pace whatever
//! downstream does; when downstream is slower the oldest waiting frame is
//! dropped and counted.

use std::sync::Arc;
use std::time::Duration;

use sluice_core::{Backoff, ComponentError, Frame, LatestQueue, Msg, Source, SourceCx};
use tokio::sync::oneshot;
use tracing::{debug, warn};

use crate::capture::{Capture, Open};
use crate::config::CameraConfig;
use crate::device::DeviceOpener;

/// How long a stopping source waits for the capture thread. A driver that
/// blocks longer (a stalled camera) is left to return on its own.
const THREAD_EXIT_WAIT: Duration = Duration::from_secs(2);

/// Reads frames from a local camera; see [`CameraConfig`].
#[derive(Debug)]
pub struct CameraSource {
    settings: Settings,
    opener: DeviceOpener,
}

/// What the capture thread and the forwarder need, from the config.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) camera: Arc<str>,
    pub(crate) queue: usize,
    pub(crate) min_interval: Duration,
    pub(crate) backoff: Backoff,
}

impl Settings {
    pub(crate) fn new(cfg: &CameraConfig) -> Self {
        Self {
            camera: cfg.camera.as_str().into(),
            queue: cfg.queue.get(),
            // 10% slack, so a camera running at exactly `fps` loses no frame.
            min_interval: Duration::from_secs_f64(0.9 / cfg.fps()),
            backoff: Backoff::new(cfg.min_backoff.get(), cfg.max_backoff.get()),
        }
    }
}

impl CameraSource {
    pub(crate) fn new(cfg: &CameraConfig, opener: DeviceOpener) -> Self {
        Self {
            settings: Settings::new(cfg),
            opener,
        }
    }
}

impl Source for CameraSource {
    async fn run(self, cx: SourceCx) -> Result<(), ComponentError> {
        run_with(self.settings, self.opener, cx).await
    }
}

/// Closes the queue and reports how the capture thread ended, also when it
/// ends by unwinding from a panic in a driver.
struct ThreadEnd {
    queue: Arc<LatestQueue<Arc<Frame>>>,
    done: Option<oneshot::Sender<bool>>,
}

impl Drop for ThreadEnd {
    fn drop(&mut self) {
        self.queue.close();
        if let Some(done) = self.done.take()
            && done.send(!std::thread::panicking()).is_err()
        {
            debug!("The camera source returned before its capture thread.");
        }
    }
}

/// Runs capture with `opener` on its own thread and forwards its frames
/// until shutdown.
pub(crate) async fn run_with<O: Open>(
    settings: Settings,
    opener: O,
    mut cx: SourceCx,
) -> Result<(), ComponentError> {
    let queue = LatestQueue::new(settings.queue);
    let stop = cx.shutdown.child_token();
    let mut capture = Capture::new(
        Arc::clone(&settings.camera),
        Arc::clone(&queue),
        cx.out.metrics().clone(),
        cx.ready.clone(),
        stop.clone(),
        settings.min_interval,
        settings.backoff.clone(),
    );
    let (done_tx, done_rx) = oneshot::channel();
    let end = ThreadEnd {
        queue: Arc::clone(&queue),
        done: Some(done_tx),
    };
    std::thread::Builder::new()
        .name(format!("camera-{}", settings.camera))
        .spawn(move || {
            let _end = end;
            capture.run(&opener);
        })
        .map_err(|e| {
            ComponentError::external("camera_thread", format!("starting the capture thread: {e}"))
        })?;

    let mut closing = false;
    let forwarded = loop {
        let next = tokio::select! {
            biased;
            () = stop.cancelled(), if !closing => {
                // Deliver what is already queued, then end.
                closing = true;
                queue.close();
                continue;
            }
            next = queue.pop() => next,
        };
        let Some(frame) = next else {
            break Ok(());
        };
        if let Err(e) = cx.out.emit_msg(Msg::Frame(frame)).await {
            break Err(e);
        }
    };
    stop.cancel();

    let clean = match tokio::time::timeout(THREAD_EXIT_WAIT, done_rx).await {
        Ok(Ok(clean)) => clean,
        Ok(Err(_)) => false,
        Err(_) => {
            warn!(
                camera = %settings.camera,
                "The camera driver did not return within 2 s; the capture thread ends on its own."
            );
            true
        }
    };
    forwarded?;
    if !clean {
        return Err(ComponentError::external(
            "camera_thread",
            format!(
                "camera `{}`: the capture thread stopped unexpectedly (the camera driver panicked)",
                settings.camera
            ),
        ));
    }
    Ok(())
}
