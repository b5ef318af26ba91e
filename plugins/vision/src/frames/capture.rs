//! The capture loops of the `frames` source: files, snapshots, MJPEG.

use tokio::time::{Instant, MissedTickBehavior, interval};

use super::config::Timestamps;
use super::files::time_from_name;
use super::http::{HttpError, HttpUrl, get, read_body};
use super::mjpeg::{PartReader, boundary};
use sluice_core::now_ms;

use super::source::{Capture, FramesSource, Input, Warn};

impl FramesSource {
    /// Captures until the input ends (files without `loop`) or `stop` fires.
    pub(super) async fn capture(&self, c: &mut Capture) -> Result<(), sluice_core::ComponentError> {
        match &self.input {
            Input::Files(files) => self.files(files, c).await,
            Input::Snapshot(url) => self.snapshots(url, c).await,
            Input::Mjpeg(url) => self.mjpeg(url, c).await,
        }
        Ok(())
    }

    async fn files(&self, files: &[std::path::PathBuf], c: &mut Capture) {
        let mut tick = interval(self.period);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let start = now_ms();
        let mut n: u32 = 0;
        loop {
            for path in files {
                tokio::select! {
                    _ = c.stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let order_time = start + (self.period * n).as_millis() as i64;
                n = n.saturating_add(1);
                let ts = match self.timestamps {
                    Timestamps::Order => order_time,
                    Timestamps::Name => time_from_name(path).unwrap_or(order_time),
                };
                match tokio::fs::read(path).await {
                    Ok(data) if data.len() <= self.max_frame => c.offer(data, ts),
                    Ok(_) => c.warn(
                        Warn::Corrupt,
                        &format!("{} is larger than the frame limit", path.display()),
                    ),
                    Err(e) => c.connection_failed(
                        "frame_file",
                        format!("reading {}: {e}", path.display()),
                    ),
                }
            }
            if !self.repeat {
                return;
            }
        }
    }

    async fn snapshots(&self, url: &HttpUrl, c: &mut Capture) {
        let mut backoff = self.backoff.clone();
        let mut tick = interval(self.period);
        tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = c.stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let fetched = tokio::select! {
                _ = c.stop.cancelled() => return,
                r = self.snapshot(url) => r,
            };
            match fetched {
                Ok(data) => {
                    backoff.reset();
                    c.offer(data, now_ms());
                }
                Err(e) => {
                    c.connection_failed(error_code(&e), format!("{}: {e}", url.path));
                    c.reconnects.increment(1);
                    if !c.pause(backoff.next_delay()).await {
                        return;
                    }
                }
            }
        }
    }

    async fn snapshot(&self, url: &HttpUrl) -> Result<Vec<u8>, HttpError> {
        let mut resp = get(url, self.timeout).await?;
        read_body(&mut resp, self.max_frame, self.timeout).await
    }

    async fn mjpeg(&self, url: &HttpUrl, c: &mut Capture) {
        let mut backoff = self.backoff.clone();
        let stop = c.stop.clone();
        loop {
            let result = tokio::select! {
                _ = stop.cancelled() => return,
                r = self.stream(url, c, &mut backoff) => r,
            };
            let e = match result {
                Ok(()) => HttpError::Malformed("the stream ended".into()),
                Err(e) => e,
            };
            c.connection_failed(error_code(&e), format!("MJPEG stream: {e}"));
            c.reconnects.increment(1);
            if !c.pause(backoff.next_delay()).await {
                return;
            }
        }
    }

    /// Reads one connection's frames until it ends or fails.
    async fn stream(
        &self,
        url: &HttpUrl,
        c: &mut Capture,
        backoff: &mut sluice_core::Backoff,
    ) -> Result<(), HttpError> {
        let resp = get(url, self.timeout).await?;
        let content_type = resp.header("content-type").unwrap_or("").to_owned();
        let Some(b) = boundary(&content_type) else {
            return Err(HttpError::Malformed(format!(
                "expected a multipart stream, got content-type `{content_type}`"
            )));
        };
        let mut parts = PartReader::new(resp.body, &b, self.max_frame, self.timeout);
        let mut last: Option<Instant> = None;
        while let Some(data) = parts.next_part().await? {
            backoff.reset();
            let now = Instant::now();
            // Frames faster than `fps` are skipped; `min_interval` has 10%
            // slack so a camera at exactly `fps` loses none.
            if let (Some(t), Some(min)) = (last, self.min_interval)
                && now.duration_since(t) < min
            {
                c.metrics.discarded("fps_limit", true, 1);
                continue;
            }
            last = Some(now);
            c.offer(data, now_ms());
        }
        Ok(())
    }
}

fn error_code(e: &HttpError) -> &'static str {
    match e {
        HttpError::Stalled(_) => "camera_stalled",
        HttpError::Status(_) => "camera_http_status",
        HttpError::Malformed(_) | HttpError::TooLarge(_) => "camera_bad_stream",
        HttpError::Io(_) | HttpError::Url(_) => "camera_unreachable",
    }
}
