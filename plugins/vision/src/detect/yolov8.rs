//! YOLOv8 outputs: one tensor `[4 + classes, boxes]` (as exported) or
//! `[boxes, 4 + classes]`, each box `cx, cy, w, h` in input pixels followed
//! by its class scores (already in 0..1).

use super::decode::{DecodeParams, Head, LayoutError};
use super::nms::{BBox, Detection};

fn layout_error(problem: impl Into<String>) -> LayoutError {
    LayoutError {
        format: "yolov8",
        problem: problem.into(),
    }
}

/// Decodes the single YOLOv8 output into candidates.
pub fn decode(heads: &[Head<'_>], p: &DecodeParams) -> Result<Vec<Detection>, LayoutError> {
    let [head] = heads else {
        return Err(layout_error(format!(
            "expected one output, the model has {}",
            heads.len()
        )));
    };
    let width = 4 + p.num_classes;
    let (boxes, channels_first) = match head.dims() {
        [c, n] if *c == width => (*n, true),
        [n, c] if *c == width => (*n, false),
        other => {
            return Err(layout_error(format!(
                "expected an output of shape [{width}, boxes] for {} classes, got {other:?}",
                p.num_classes
            )));
        }
    };
    if head.data.len() != boxes * width {
        return Err(layout_error("output size does not match its shape"));
    }
    let at = |b: usize, k: usize| -> f32 {
        if channels_first {
            head.data[k * boxes + b]
        } else {
            head.data[b * width + k]
        }
    };
    let mut out = Vec::new();
    for b in 0..boxes {
        let Some((class, score)) = p.best_class((0..p.num_classes).map(|c| at(b, 4 + c))) else {
            continue;
        };
        let (cx, cy, w, h) = (at(b, 0), at(b, 1), at(b, 2), at(b, 3));
        out.push(Detection {
            class,
            score,
            bbox: BBox {
                x1: cx - w / 2.0,
                y1: cy - h / 2.0,
                x2: cx + w / 2.0,
                y2: cy + h / 2.0,
            },
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(classes: usize) -> DecodeParams {
        DecodeParams {
            input_width: 640,
            input_height: 640,
            num_classes: classes,
            score_threshold: 0.5,
            allowed: Vec::new(),
            reg_max: 0,
            strides: Vec::new(),
        }
    }

    #[test]
    fn decodes_centre_size_boxes_from_the_exported_layout() {
        // Two boxes, two classes, channels first: [cx, cy, w, h, s0, s1] x boxes.
        let data = [
            100.0, 300.0, // cx
            50.0, 300.0, // cy
            20.0, 10.0, // w
            40.0, 10.0, // h
            0.9, 0.1, // class 0
            0.2, 0.3, // class 1
        ];
        let shape = [1, 6, 2];
        let dets = decode(
            &[Head {
                shape: &shape,
                data: &data,
            }],
            &params(2),
        )
        .unwrap();
        assert_eq!(dets.len(), 1);
        assert_eq!(dets[0].class, 0);
        assert_eq!(
            dets[0].bbox,
            BBox {
                x1: 90.0,
                y1: 30.0,
                x2: 110.0,
                y2: 70.0
            }
        );
    }

    #[test]
    fn reads_the_transposed_layout_too() {
        let data = [10.0, 10.0, 4.0, 4.0, 0.1, 0.8];
        let shape = [1, 1, 6];
        let dets = decode(
            &[Head {
                shape: &shape,
                data: &data,
            }],
            &params(2),
        )
        .unwrap();
        assert_eq!((dets[0].class, dets[0].bbox.x1), (1, 8.0));
    }

    #[test]
    fn refuses_outputs_of_another_width() {
        let data = [0.0; 14];
        let shape = [1, 7, 2];
        let err = decode(
            &[Head {
                shape: &shape,
                data: &data,
            }],
            &params(2),
        )
        .unwrap_err();
        assert!(err.to_string().contains("[6, boxes]"), "{err}");
    }
}
