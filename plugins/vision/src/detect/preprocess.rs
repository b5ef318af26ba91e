//! From a frame's bytes to the model's input tensor: decode, resize (stretch
//! or letterbox, bilinear), channel order and normalisation, NCHW or NHWC.

use serde::Deserialize;
use sluice_core::{Frame, FrameEncoding};

/// How a frame is fitted to the model input.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resize {
    /// Scale each axis independently to the input size (NanoDet's training).
    #[default]
    Stretch,
    /// Keep the aspect ratio, centre the image and pad the rest (YOLO's).
    Letterbox,
}

/// Order of the colour channels the model expects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channels {
    /// Red, green, blue.
    #[default]
    Rgb,
    /// Blue, green, red (OpenCV-trained models).
    Bgr,
}

/// Memory layout of the input tensor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// `[1, 3, height, width]`.
    #[default]
    Nchw,
    /// `[1, height, width, 3]`.
    Nhwc,
}

/// Everything that shapes the input tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Preprocess {
    /// Input width.
    pub width: usize,
    /// Input height.
    pub height: usize,
    /// Fitting.
    pub resize: Resize,
    /// Channel order.
    pub channels: Channels,
    /// Tensor layout.
    pub layout: Layout,
    /// Per channel (in model order), subtracted from the 0..255 value.
    pub mean: [f32; 3],
    /// Per channel, the difference is divided by it.
    pub std: [f32; 3],
    /// Value (0..255) of letterbox padding.
    pub pad_value: f32,
}

/// Maps model-input pixels back to frame pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Geometry {
    /// Frame width.
    pub frame_width: u32,
    /// Frame height.
    pub frame_height: u32,
    scale_x: f32,
    scale_y: f32,
    pad_x: f32,
    pad_y: f32,
}

impl Geometry {
    /// A frame x coordinate, clamped to the frame.
    pub fn x(&self, x: f32) -> f32 {
        ((x - self.pad_x) / self.scale_x).clamp(0.0, self.frame_width as f32)
    }

    /// A frame y coordinate, clamped to the frame.
    pub fn y(&self, y: f32) -> f32 {
        ((y - self.pad_y) / self.scale_y).clamp(0.0, self.frame_height as f32)
    }
}

/// Why a frame could not be turned into a tensor.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The image bytes do not decode.
    #[error("cannot decode {encoding} frame: {message}")]
    Decode {
        /// Declared encoding.
        encoding: &'static str,
        /// Decoder message.
        message: String,
    },
    /// Raw RGB with a size that does not match its dimensions.
    #[error("rgb8 frame of {width}x{height} has {len} bytes, expected {expected}")]
    RawSize {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// Bytes present.
        len: usize,
        /// Bytes expected.
        expected: usize,
    },
    /// A zero-sized image.
    #[error("the frame is empty (0 pixels)")]
    Empty,
}

/// An 8-bit RGB image.
#[derive(Debug, Clone)]
pub struct Rgb {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 3` bytes, row-major.
    pub data: Vec<u8>,
}

/// Decodes a frame's bytes into RGB.
pub fn decode_frame(frame: &Frame) -> Result<Rgb, FrameError> {
    let rgb = match frame.encoding {
        FrameEncoding::Rgb8 => {
            let expected = frame.width as usize * frame.height as usize * 3;
            if frame.data.len() != expected {
                return Err(FrameError::RawSize {
                    width: frame.width,
                    height: frame.height,
                    len: frame.data.len(),
                    expected,
                });
            }
            Rgb {
                width: frame.width,
                height: frame.height,
                data: frame.data.to_vec(),
            }
        }
        enc @ (FrameEncoding::Jpeg | FrameEncoding::Png) => {
            let format = match enc {
                FrameEncoding::Png => image::ImageFormat::Png,
                _ => image::ImageFormat::Jpeg,
            };
            let img = image::load_from_memory_with_format(&frame.data, format).map_err(|e| {
                FrameError::Decode {
                    encoding: enc.as_str(),
                    message: e.to_string(),
                }
            })?;
            let img = img.into_rgb8();
            Rgb {
                width: img.width(),
                height: img.height(),
                data: img.into_raw(),
            }
        }
    };
    if rgb.width == 0 || rgb.height == 0 {
        return Err(FrameError::Empty);
    }
    Ok(rgb)
}

impl Preprocess {
    /// Fills `tensor` (`3 * width * height` values) from `img` and returns how
    /// to map boxes back to the image.
    pub fn fill(&self, img: &Rgb, tensor: &mut [f32]) -> Geometry {
        let (iw, ih) = (img.width as f32, img.height as f32);
        let (w, h) = (self.width as f32, self.height as f32);
        let (sx, sy) = match self.resize {
            Resize::Stretch => (w / iw, h / ih),
            Resize::Letterbox => {
                let s = (w / iw).min(h / ih);
                (s, s)
            }
        };
        let (pad_x, pad_y) = match self.resize {
            Resize::Stretch => (0.0, 0.0),
            Resize::Letterbox => (((w - iw * sx) / 2.0).floor(), ((h - ih * sy) / 2.0).floor()),
        };
        let order: [usize; 3] = match self.channels {
            Channels::Rgb => [0, 1, 2],
            Channels::Bgr => [2, 1, 0],
        };
        let plane = self.width * self.height;
        let stride = img.width as usize * 3;
        let (max_x, max_y) = (img.width as usize - 1, img.height as usize - 1);
        for oy in 0..self.height {
            // Pixel centres map to pixel centres (half-pixel alignment).
            let fy = ((oy as f32 + 0.5 - pad_y) / sy - 0.5).max(0.0);
            let inside_y = (oy as f32) >= pad_y && (oy as f32) < pad_y + ih * sy;
            let y0 = (fy as usize).min(max_y);
            let y1 = (y0 + 1).min(max_y);
            let wy = fy - y0 as f32;
            for ox in 0..self.width {
                let fx = ((ox as f32 + 0.5 - pad_x) / sx - 0.5).max(0.0);
                let inside = inside_y && (ox as f32) >= pad_x && (ox as f32) < pad_x + iw * sx;
                let x0 = (fx as usize).min(max_x);
                let x1 = (x0 + 1).min(max_x);
                let wx = fx - x0 as f32;
                for (c, &src) in order.iter().enumerate() {
                    let v = if inside {
                        let p = |x: usize, y: usize| f32::from(img.data[y * stride + x * 3 + src]);
                        let top = p(x0, y0) * (1.0 - wx) + p(x1, y0) * wx;
                        let bottom = p(x0, y1) * (1.0 - wx) + p(x1, y1) * wx;
                        top * (1.0 - wy) + bottom * wy
                    } else {
                        self.pad_value
                    };
                    let idx = match self.layout {
                        Layout::Nchw => c * plane + oy * self.width + ox,
                        Layout::Nhwc => (oy * self.width + ox) * 3 + c,
                    };
                    tensor[idx] = (v - self.mean[c]) / self.std[c];
                }
            }
        }
        Geometry {
            frame_width: img.width,
            frame_height: img.height,
            scale_x: sx,
            scale_y: sy,
            pad_x,
            pad_y,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pre(resize: Resize, channels: Channels, layout: Layout) -> Preprocess {
        Preprocess {
            width: 4,
            height: 4,
            resize,
            channels,
            layout,
            mean: [0.0; 3],
            std: [255.0; 3],
            pad_value: 0.0,
        }
    }

    fn solid(w: u32, h: u32, rgb: [u8; 3]) -> Rgb {
        Rgb {
            width: w,
            height: h,
            data: rgb.repeat((w * h) as usize),
        }
    }

    #[test]
    fn stretch_fills_every_pixel_and_scales_to_unit_range() {
        let mut t = vec![0.0; 48];
        let g = pre(Resize::Stretch, Channels::Rgb, Layout::Nchw)
            .fill(&solid(8, 2, [255, 0, 51]), &mut t);
        assert!(t[..16].iter().all(|v| (*v - 1.0).abs() < 1e-6));
        assert!(t[16..32].iter().all(|v| *v == 0.0));
        assert!(t[32..].iter().all(|v| (*v - 0.2).abs() < 1e-6));
        assert_eq!((g.x(4.0), g.y(4.0)), (8.0, 2.0));
    }

    #[test]
    fn letterbox_pads_and_maps_boxes_back() {
        let mut t = vec![0.0; 48];
        let g = pre(Resize::Letterbox, Channels::Bgr, Layout::Nhwc)
            .fill(&solid(8, 4, [255, 0, 0]), &mut t);
        // 8x4 -> 4x2 centred: rows 0 and 3 are padding, rows 1-2 are image.
        assert_eq!(t[0..3], [0.0, 0.0, 0.0]);
        assert_eq!(t[12..15], [0.0, 0.0, 1.0]); // BGR: red is last
        assert_eq!((g.x(2.0), g.y(1.0), g.y(3.0)), (4.0, 0.0, 4.0));
    }

    #[test]
    fn corrupt_jpeg_is_an_error_not_a_panic() {
        let frame = Frame {
            camera: "c".into(),
            event_time_ms: 0,
            seq: 0,
            width: 0,
            height: 0,
            encoding: FrameEncoding::Jpeg,
            data: sluice_core::bytes::Bytes::from_static(&[0xff, 0xd8, 0xff, 0x00, 0x12]),
        };
        let err = decode_frame(&frame).unwrap_err();
        assert!(
            err.to_string().starts_with("cannot decode jpeg frame"),
            "{err}"
        );
    }
}
