//! Camera frames: their own payload, never Arrow rows.

use bytes::Bytes;

/// How the pixel bytes of a [`Frame`] are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameEncoding {
    /// A JPEG file, as cameras and MJPEG streams deliver it.
    Jpeg,
    /// A PNG file.
    Png,
    /// Packed 8-bit RGB, `width * height * 3` bytes, row-major.
    Rgb8,
}

impl FrameEncoding {
    /// Name used in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            FrameEncoding::Jpeg => "jpeg",
            FrameEncoding::Png => "png",
            FrameEncoding::Rgb8 => "rgb8",
        }
    }
}

/// One image from a camera.
///
/// Frames are shared (`Arc<Frame>`) between the components that read them:
/// cloning a [`crate::Msg::Frame`] never copies pixels.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Camera id from the source config.
    pub camera: String,
    /// Event time in milliseconds since the Unix epoch.
    pub event_time_ms: i64,
    /// Sequence number per camera, starting at 0 when the source starts.
    pub seq: u64,
    /// Width in pixels (0 when not known before decoding).
    pub width: u32,
    /// Height in pixels (0 when not known before decoding).
    pub height: u32,
    /// How `data` is encoded.
    pub encoding: FrameEncoding,
    /// The image bytes.
    pub data: Bytes,
}

impl Frame {
    /// Size of the image bytes.
    pub fn size_bytes(&self) -> usize {
        self.data.len()
    }
}
