//! Camera buffers to frame bytes: MJPEG passes through as JPEG; raw formats
//! become packed RGB (`FrameEncoding::Rgb8`).
//!
//! YUV is converted with the BT.601 limited-range ("video range") integer
//! coefficients that USB cameras use: Y in 16..=235, U and V centred on 128.

use sluice_core::FrameEncoding;
use sluice_core::bytes::Bytes;

use crate::config::Resolution;
use crate::mode::Pixel;

/// Why a buffer is not a usable frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadFrame(pub String);

/// The frame bytes for a buffer of `pixel` format and `size`: the buffer
/// itself for MJPEG (no copy), packed RGB otherwise.
pub fn frame_data(
    pixel: Pixel,
    size: Resolution,
    data: &Bytes,
) -> Result<(FrameEncoding, Bytes), BadFrame> {
    let (w, h) = (size.width as usize, size.height as usize);
    let need = |n: usize| -> Result<(), BadFrame> {
        if data.len() < n {
            Err(BadFrame(format!(
                "{} frame of {} bytes, expected {n} for {size}",
                pixel.as_str(),
                data.len()
            )))
        } else {
            Ok(())
        }
    };
    match pixel {
        Pixel::Mjpeg => {
            // Every JPEG starts with SOI; a truncated USB transfer often
            // delivers a zero-filled or partial buffer.
            if data.len() < 4 || data[0] != 0xFF || data[1] != 0xD8 {
                return Err(BadFrame("MJPEG frame does not start a JPEG image".into()));
            }
            Ok((FrameEncoding::Jpeg, data.clone()))
        }
        Pixel::Yuyv => {
            need(yuyv_len(w, h))?;
            Ok((FrameEncoding::Rgb8, yuyv_to_rgb(w, h, data).into()))
        }
        Pixel::Nv12 => {
            need(nv12_len(w, h))?;
            Ok((FrameEncoding::Rgb8, nv12_to_rgb(w, h, data).into()))
        }
        Pixel::Rgb => {
            need(w * h * 3)?;
            Ok((FrameEncoding::Rgb8, data.slice(..w * h * 3)))
        }
        Pixel::Bgr => {
            need(w * h * 3)?;
            let rgb: Vec<u8> = data[..w * h * 3]
                .chunks_exact(3)
                .flat_map(|p| [p[2], p[1], p[0]])
                .collect();
            Ok((FrameEncoding::Rgb8, rgb.into()))
        }
        Pixel::Gray => {
            need(w * h)?;
            let rgb: Vec<u8> = data[..w * h].iter().flat_map(|&y| [y, y, y]).collect();
            Ok((FrameEncoding::Rgb8, rgb.into()))
        }
    }
}

/// Bytes of a YUYV frame: 4 bytes per pair of pixels.
fn yuyv_len(w: usize, h: usize) -> usize {
    w.div_ceil(2) * 4 * h
}

/// Bytes of an NV12 frame: the Y plane, then one U,V pair per 2x2 block.
fn nv12_len(w: usize, h: usize) -> usize {
    w * h + w.div_ceil(2) * 2 * h.div_ceil(2)
}

/// One pixel from BT.601 limited-range Y, U, V.
#[inline]
pub fn yuv_to_rgb(y: u8, u: u8, v: u8) -> [u8; 3] {
    let c = 298 * (i32::from(y) - 16);
    let d = i32::from(u) - 128;
    let e = i32::from(v) - 128;
    let clip = |x: i32| (x >> 8).clamp(0, 255) as u8;
    [
        clip(c + 409 * e + 128),
        clip(c - 100 * d - 208 * e + 128),
        clip(c + 516 * d + 128),
    ]
}

/// Packed `Y0 U Y1 V` to packed RGB; `data` holds at least [`yuyv_len`] bytes.
pub fn yuyv_to_rgb(w: usize, h: usize, data: &[u8]) -> Vec<u8> {
    let stride = w.div_ceil(2) * 4;
    let mut out = Vec::with_capacity(w * h * 3);
    for row in data.chunks_exact(stride).take(h) {
        for (i, q) in row.chunks_exact(4).enumerate() {
            out.extend_from_slice(&yuv_to_rgb(q[0], q[1], q[3]));
            // An odd width leaves the second pixel of the last pair unused.
            if 2 * i + 1 < w {
                out.extend_from_slice(&yuv_to_rgb(q[2], q[1], q[3]));
            }
        }
    }
    out
}

/// NV12 to packed RGB; `data` holds at least [`nv12_len`] bytes.
pub fn nv12_to_rgb(w: usize, h: usize, data: &[u8]) -> Vec<u8> {
    let (luma, chroma) = data.split_at(w * h);
    let uv_stride = w.div_ceil(2) * 2;
    let mut out = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        let uv_row = &chroma[(y / 2) * uv_stride..];
        for x in 0..w {
            let uv = (x / 2) * 2;
            out.extend_from_slice(&yuv_to_rgb(luma[y * w + x], uv_row[uv], uv_row[uv + 1]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(w: u32, h: u32) -> Resolution {
        Resolution::new(w, h).unwrap()
    }

    #[test]
    fn converts_reference_colours_of_bt601_video_range() {
        assert_eq!(yuv_to_rgb(16, 128, 128), [0, 0, 0]);
        assert_eq!(yuv_to_rgb(235, 128, 128), [255, 255, 255]);
        assert_eq!(yuv_to_rgb(126, 128, 128), [128, 128, 128]);
        assert_eq!(yuv_to_rgb(81, 90, 240), [255, 0, 0]);
        assert_eq!(yuv_to_rgb(145, 54, 34), [0, 255, 1]);
        assert_eq!(yuv_to_rgb(41, 240, 110), [0, 0, 255]);
    }

    #[test]
    fn clips_values_outside_video_range() {
        assert_eq!(yuv_to_rgb(0, 128, 128), [0, 0, 0]);
        assert_eq!(yuv_to_rgb(255, 128, 128), [255, 255, 255]);
        assert_eq!(yuv_to_rgb(255, 255, 255), [255, 125, 255]);
        assert_eq!(yuv_to_rgb(0, 0, 0), [0, 135, 0]);
    }

    #[test]
    fn yuyv_pairs_share_their_chroma() {
        // 4x2: row 0 is black, white | red, red; row 1 is blue, blue | grey, black.
        let data = [
            16, 128, 235, 128, 81, 90, 81, 240, //
            41, 240, 41, 110, 126, 128, 16, 128,
        ];
        let rgb = yuyv_to_rgb(4, 2, &data);
        let px: Vec<[u8; 3]> = rgb.chunks_exact(3).map(|p| [p[0], p[1], p[2]]).collect();
        assert_eq!(
            px,
            [
                [0, 0, 0],
                [255, 255, 255],
                [255, 0, 0],
                [255, 0, 0],
                [0, 0, 255],
                [0, 0, 255],
                [128, 128, 128],
                [0, 0, 0],
            ]
        );
    }

    #[test]
    fn yuyv_with_an_odd_width_drops_the_padding_pixel() {
        let data = [16, 128, 235, 128, 235, 128, 99, 128];
        let rgb = yuyv_to_rgb(3, 1, &data);
        assert_eq!(rgb, [0, 0, 0, 255, 255, 255, 255, 255, 255]);
    }

    #[test]
    fn nv12_shares_chroma_over_2x2_blocks() {
        // 2x2 luma, one U,V pair (red) for the block; a white-ish luma pixel
        // keeps its own brightness.
        let data = [81, 81, 81, 235, 90, 240];
        let rgb = nv12_to_rgb(2, 2, &data);
        assert_eq!(&rgb[..3], &[255, 0, 0]);
        assert_eq!(&rgb[9..], &yuv_to_rgb(235, 90, 240));
    }

    #[test]
    fn mjpeg_passes_through_without_copying() {
        let jpeg = Bytes::from_static(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]);
        let (enc, out) = frame_data(Pixel::Mjpeg, size(2, 2), &jpeg).unwrap();
        assert_eq!(enc, FrameEncoding::Jpeg);
        assert_eq!(out.as_ptr(), jpeg.as_ptr());
    }

    #[test]
    fn short_or_garbled_buffers_are_bad_frames() {
        let zeros = Bytes::from(vec![0u8; 100]);
        assert!(frame_data(Pixel::Mjpeg, size(8, 8), &zeros).is_err());
        let e = frame_data(Pixel::Yuyv, size(8, 8), &zeros).unwrap_err();
        assert_eq!(e.0, "YUYV frame of 100 bytes, expected 128 for 8x8");
        assert!(frame_data(Pixel::Nv12, size(8, 8), &zeros).is_ok());
        assert!(frame_data(Pixel::Rgb, size(8, 8), &zeros).is_err());
    }

    #[test]
    fn raw_rgb_bgr_and_gray_become_packed_rgb() {
        let bgr = Bytes::from_static(&[1, 2, 3, 4, 5, 6]);
        let (_, rgb) = frame_data(Pixel::Bgr, size(2, 1), &bgr).unwrap();
        assert_eq!(&rgb[..], &[3, 2, 1, 6, 5, 4]);
        let (_, rgb) = frame_data(Pixel::Rgb, size(2, 1), &bgr).unwrap();
        assert_eq!(&rgb[..], &[1, 2, 3, 4, 5, 6]);
        let gray = Bytes::from_static(&[7, 9]);
        let (enc, rgb) = frame_data(Pixel::Gray, size(2, 1), &gray).unwrap();
        assert_eq!(
            (enc, &rgb[..]),
            (FrameEncoding::Rgb8, &[7, 7, 7, 9, 9, 9][..])
        );
    }
}
