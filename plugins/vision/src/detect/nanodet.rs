//! NanoDet (GFL heads). Per feature map of stride `s` (a grid of
//! `ceil(W/s) x ceil(H/s)` cells, row-major), each cell has sigmoid class
//! scores and, per box side (left, top, right, bottom), a distribution over
//! `0..=reg_max` bins. The side's distance from the cell centre is the
//! distribution's expectation times `s`.
//!
//! Two export layouts are read: one class output and one box output per
//! stride (TF.js / older ONNX exports), or one output with both concatenated
//! per cell and every stride's cells one after another (NanoDet-Plus).

use super::decode::{DecodeParams, Head, LayoutError};
use super::nms::{BBox, Detection};

fn layout_error(problem: impl Into<String>) -> LayoutError {
    LayoutError {
        format: "nanodet",
        problem: problem.into(),
    }
}

/// One feature map: its stride, grid width and its cells' class scores and
/// box distributions (`cells x classes` and `cells x 4 * bins`).
struct Level<'a> {
    stride: usize,
    grid_w: usize,
    cells: usize,
    cls: Strided<'a>,
    reg: Strided<'a>,
}

/// Rows of `len` values starting at `offset` every `step` values.
#[derive(Clone, Copy)]
struct Strided<'a> {
    data: &'a [f32],
    offset: usize,
    step: usize,
    len: usize,
}

impl<'a> Strided<'a> {
    fn row(&self, i: usize) -> &'a [f32] {
        let start = i * self.step + self.offset;
        &self.data[start..start + self.len]
    }
}

fn grid(p: &DecodeParams, stride: usize) -> (usize, usize) {
    (
        p.input_width.div_ceil(stride),
        p.input_height.div_ceil(stride),
    )
}

/// Decodes NanoDet outputs into candidates.
pub fn decode(heads: &[Head<'_>], p: &DecodeParams) -> Result<Vec<Detection>, LayoutError> {
    let levels = levels(heads, p)?;
    let bins = p.reg_max + 1;
    let mut out = Vec::new();
    for level in &levels {
        let s = level.stride as f32;
        for i in 0..level.cells {
            let Some((class, score)) = p.best_class(level.cls.row(i).iter().copied()) else {
                continue;
            };
            let reg = level.reg.row(i);
            let side = |k: usize| expectation(&reg[k * bins..(k + 1) * bins]) * s;
            let cx = ((i % level.grid_w) as f32 + 0.5) * s;
            let cy = ((i / level.grid_w) as f32 + 0.5) * s;
            out.push(Detection {
                class,
                score,
                bbox: BBox {
                    x1: cx - side(0),
                    y1: cy - side(1),
                    x2: cx + side(2),
                    y2: cy + side(3),
                },
            });
        }
    }
    Ok(out)
}

/// Expected bin index under the softmax of `logits`.
fn expectation(logits: &[f32]) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let (mut sum, mut weighted) = (0.0f32, 0.0f32);
    for (k, l) in logits.iter().enumerate() {
        let e = (l - max).exp();
        sum += e;
        weighted += e * k as f32;
    }
    if sum > 0.0 { weighted / sum } else { 0.0 }
}

fn levels<'a>(heads: &[Head<'a>], p: &DecodeParams) -> Result<Vec<Level<'a>>, LayoutError> {
    let reg_w = 4 * (p.reg_max + 1);
    let nc = p.num_classes;
    let mut levels = Vec::with_capacity(p.strides.len());
    if let [head] = heads {
        let [cells, width] = *head.dims() else {
            return Err(layout_error(format!(
                "expected [cells, {}], got {:?}",
                nc + reg_w,
                head.dims()
            )));
        };
        if width != nc + reg_w {
            return Err(layout_error(format!(
                "the output has {width} values per cell, expected {nc} classes + {reg_w} box bins"
            )));
        }
        let mut start = 0;
        for &stride in &p.strides {
            let (gw, gh) = grid(p, stride);
            let at = |offset, len| Strided {
                data: head.data,
                offset: start * width + offset,
                step: width,
                len,
            };
            levels.push(Level {
                stride,
                grid_w: gw,
                cells: gw * gh,
                cls: at(0, nc),
                reg: at(nc, reg_w),
            });
            start += gw * gh;
        }
        if start != cells || head.data.len() != cells * width {
            return Err(layout_error(format!(
                "{cells} cells do not match strides {:?} on a {}x{} input ({start} cells)",
                p.strides, p.input_width, p.input_height
            )));
        }
        return Ok(levels);
    }
    for &stride in &p.strides {
        let (gw, gh) = grid(p, stride);
        let cells = gw * gh;
        let find = |width: usize| {
            heads
                .iter()
                .find(|h| h.dims() == [cells, width] && h.data.len() == cells * width)
        };
        let (Some(cls), Some(reg)) = (find(nc), find(reg_w)) else {
            let shapes: Vec<&[usize]> = heads.iter().map(|h| h.dims()).collect();
            return Err(layout_error(format!(
                "no pair of outputs [{cells}, {nc}] and [{cells}, {reg_w}] for stride {stride}; \
                 the outputs are {shapes:?}"
            )));
        };
        let rows = |data, len| Strided {
            data,
            offset: 0,
            step: len,
            len,
        };
        levels.push(Level {
            stride,
            grid_w: gw,
            cells,
            cls: rows(cls.data, nc),
            reg: rows(reg.data, reg_w),
        });
    }
    if heads.len() != 2 * p.strides.len() {
        return Err(layout_error(format!(
            "{} outputs for {} strides; expected one class and one box output per stride",
            heads.len(),
            p.strides.len()
        )));
    }
    Ok(levels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> DecodeParams {
        DecodeParams {
            input_width: 16,
            input_height: 8,
            num_classes: 2,
            score_threshold: 0.5,
            allowed: Vec::new(),
            reg_max: 1,
            strides: vec![8],
        }
    }

    /// Distributions putting (almost) all weight on bin `k` of two bins.
    fn sure(k: usize) -> [f32; 2] {
        if k == 0 { [20.0, -20.0] } else { [-20.0, 20.0] }
    }

    #[test]
    fn decodes_distances_from_the_cell_centre() {
        // Grid 2x1 at stride 8; the second cell is a class-1 box with sides
        // left 1 bin, top 0, right 1, bottom 1 (bins of 8 px).
        let cls = [0.1, 0.2, 0.3, 0.9];
        let mut reg = vec![0.0; 16];
        for (k, bin) in [1, 0, 1, 1].into_iter().enumerate() {
            reg[8 + 2 * k..8 + 2 * k + 2].copy_from_slice(&sure(bin));
        }
        let (s_cls, s_reg) = ([1, 2, 2], [1, 2, 8]);
        let heads = [
            Head {
                shape: &s_cls,
                data: &cls,
            },
            Head {
                shape: &s_reg,
                data: &reg,
            },
        ];
        let dets = decode(&heads, &params()).unwrap();
        assert_eq!(dets.len(), 1);
        assert_eq!((dets[0].class, dets[0].score), (1, 0.9));
        let b = dets[0].bbox;
        assert!(
            (b.x1 - 4.0).abs() < 1e-3 && (b.x2 - 20.0).abs() < 1e-3,
            "{b:?}"
        );
        assert!(
            (b.y1 - 4.0).abs() < 1e-3 && (b.y2 - 12.0).abs() < 1e-3,
            "{b:?}"
        );
    }

    #[test]
    fn reads_the_concatenated_layout() {
        let mut data = vec![0.0; 2 * 10];
        data[10] = 0.7; // cell 1, class 0
        let shape = [1, 2, 10];
        let dets = decode(
            &[Head {
                shape: &shape,
                data: &data,
            }],
            &params(),
        )
        .unwrap();
        assert_eq!(dets.len(), 1);
        // Uniform distributions over 2 bins: every side is half a bin.
        assert!((dets[0].bbox.x1 - 8.0).abs() < 1e-3, "{:?}", dets[0].bbox);
    }

    #[test]
    fn names_the_missing_outputs_when_the_layout_differs() {
        let data = [0.0; 6];
        let shape = [1, 2, 3];
        let heads = [
            Head {
                shape: &shape,
                data: &data,
            },
            Head {
                shape: &shape,
                data: &data,
            },
        ];
        let err = decode(&heads, &params()).unwrap_err().to_string();
        assert!(err.contains("[2, 2] and [2, 8] for stride 8"), "{err}");
    }
}
