//! Choosing a capture mode (size, pixel format, frame rate) among those a
//! camera offers.

use std::fmt;

use crate::config::Resolution;

/// Size used when the config names none.
const DEFAULT_SIZE: Resolution = Resolution {
    width: 640,
    height: 480,
};

/// Pixel formats read from a camera, best first: MJPEG is passed through
/// as JPEG without decoding; the others are converted to RGB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pixel {
    /// Motion JPEG: every frame is a JPEG image.
    Mjpeg,
    /// Packed YUV 4:2:2 (`Y0 U Y1 V`).
    Yuyv,
    /// Planar Y then interleaved UV at half resolution (4:2:0).
    Nv12,
    /// Packed 8-bit RGB.
    Rgb,
    /// Packed 8-bit BGR.
    Bgr,
    /// 8-bit luma only.
    Gray,
}

impl Pixel {
    /// Name used in logs and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Pixel::Mjpeg => "MJPEG",
            Pixel::Yuyv => "YUYV",
            Pixel::Nv12 => "NV12",
            Pixel::Rgb => "RGB",
            Pixel::Bgr => "BGR",
            Pixel::Gray => "GRAY",
        }
    }
}

/// One way a camera can capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mode {
    /// Frame size.
    pub size: Resolution,
    /// Pixel format.
    pub pixel: Pixel,
    /// Frames per second.
    pub fps: u32,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} at {} fps",
            self.size,
            self.pixel.as_str(),
            self.fps
        )
    }
}

/// The mode to capture in: the requested size (else the offered size
/// closest to 640x480); among its modes with a frame rate of at least `fps`,
/// the best pixel format at its lowest such rate; without any, the highest
/// rate. The error says what the camera offers instead.
pub fn choose(offered: &[Mode], size: Option<Resolution>, fps: f64) -> Result<Mode, String> {
    if offered.is_empty() {
        return Err(
            "it offers no format Sluice reads (MJPEG, YUYV, NV12, RGB, BGR or GRAY)".to_owned(),
        );
    }
    let size = match size {
        Some(s) if offered.iter().any(|m| m.size == s) => s,
        Some(s) => {
            return Err(format!(
                "it does not offer {s}; it offers {}",
                sizes(offered)
            ));
        }
        None => closest_size(offered),
    };
    // `fps` is at most 1000 (checked), so this cannot truncate.
    let need = fps.ceil() as u32;
    offered
        .iter()
        .filter(|m| m.size == size)
        .min_by_key(|m| {
            let pixel = m.pixel as u32;
            if m.fps >= need {
                (0, pixel, m.fps)
            } else {
                (1, u32::MAX - m.fps, pixel)
            }
        })
        .copied()
        .ok_or_else(|| format!("it does not offer {size}"))
}

/// The offered size whose pixel count is closest to 640x480; the larger
/// one on a tie.
fn closest_size(offered: &[Mode]) -> Resolution {
    let area = |r: Resolution| u64::from(r.width) * u64::from(r.height);
    let target = area(DEFAULT_SIZE);
    offered
        .iter()
        .map(|m| m.size)
        .min_by_key(|s| (area(*s).abs_diff(target), u64::MAX - area(*s)))
        .unwrap_or(DEFAULT_SIZE)
}

/// The distinct offered sizes, largest first, with their pixel formats:
/// `1280x720 (MJPEG), 640x480 (MJPEG, YUYV)`.
fn sizes(offered: &[Mode]) -> String {
    let mut all: Vec<(Resolution, Pixel)> = offered.iter().map(|m| (m.size, m.pixel)).collect();
    all.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    all.dedup();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < all.len() {
        let size = all[i].0;
        let pixels: Vec<&str> = all[i..]
            .iter()
            .take_while(|(s, _)| *s == size)
            .map(|(_, p)| p.as_str())
            .collect();
        i += pixels.len();
        out.push(format!("{size} ({})", pixels.join(", ")));
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(w: u32, h: u32, pixel: Pixel, fps: u32) -> Mode {
        Mode {
            size: Resolution::new(w, h).unwrap(),
            pixel,
            fps,
        }
    }

    fn webcam() -> Vec<Mode> {
        vec![
            mode(1280, 720, Pixel::Yuyv, 10),
            mode(1280, 720, Pixel::Mjpeg, 30),
            mode(640, 480, Pixel::Yuyv, 30),
            mode(640, 480, Pixel::Yuyv, 15),
            mode(640, 480, Pixel::Mjpeg, 30),
            mode(640, 480, Pixel::Mjpeg, 15),
            mode(320, 240, Pixel::Yuyv, 30),
        ]
    }

    #[test]
    fn prefers_mjpeg_at_the_lowest_sufficient_rate() {
        let m = choose(&webcam(), Resolution::new(640, 480).ok(), 5.0).unwrap();
        assert_eq!(m, mode(640, 480, Pixel::Mjpeg, 15));
        let m = choose(&webcam(), Resolution::new(640, 480).ok(), 20.0).unwrap();
        assert_eq!(m, mode(640, 480, Pixel::Mjpeg, 30));
    }

    #[test]
    fn a_sufficient_rate_beats_a_cheaper_pixel_format() {
        let offered = [
            mode(800, 600, Pixel::Mjpeg, 5),
            mode(800, 600, Pixel::Yuyv, 15),
        ];
        assert_eq!(choose(&offered, None, 10.0).unwrap().pixel, Pixel::Yuyv);
    }

    #[test]
    fn without_a_sufficient_rate_takes_the_fastest() {
        let offered = [
            mode(800, 600, Pixel::Mjpeg, 5),
            mode(800, 600, Pixel::Yuyv, 10),
        ];
        assert_eq!(choose(&offered, None, 30.0).unwrap().fps, 10);
    }

    #[test]
    fn without_a_size_takes_the_one_closest_to_vga() {
        assert_eq!(choose(&webcam(), None, 5.0).unwrap().size.width, 640);
        let offered = [
            mode(1920, 1080, Pixel::Mjpeg, 30),
            mode(320, 240, Pixel::Yuyv, 30),
        ];
        assert_eq!(choose(&offered, None, 5.0).unwrap().size.width, 320);
    }

    #[test]
    fn an_unoffered_size_lists_what_the_camera_offers() {
        let e = choose(&webcam(), Resolution::new(1920, 1080).ok(), 5.0).unwrap_err();
        assert_eq!(
            e,
            "it does not offer 1920x1080; it offers 1280x720 (MJPEG, YUYV), \
             640x480 (MJPEG, YUYV), 320x240 (YUYV)"
        );
    }

    #[test]
    fn a_camera_without_readable_formats_is_an_error() {
        assert!(choose(&[], None, 5.0).unwrap_err().contains("no format"));
    }
}
