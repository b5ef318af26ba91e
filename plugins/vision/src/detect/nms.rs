//! Boxes and greedy per-class non-maximum suppression.

/// An axis-aligned box in pixels: `x1, y1` top left, `x2, y2` bottom right.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BBox {
    /// Left edge.
    pub x1: f32,
    /// Top edge.
    pub y1: f32,
    /// Right edge.
    pub x2: f32,
    /// Bottom edge.
    pub y2: f32,
}

impl BBox {
    /// Area; zero for degenerate boxes.
    pub fn area(&self) -> f32 {
        (self.x2 - self.x1).max(0.0) * (self.y2 - self.y1).max(0.0)
    }

    /// Intersection over union with `other`, in 0..=1.
    pub fn iou(&self, other: &BBox) -> f32 {
        let w = (self.x2.min(other.x2) - self.x1.max(other.x1)).max(0.0);
        let h = (self.y2.min(other.y2) - self.y1.max(other.y1)).max(0.0);
        let inter = w * h;
        let union = self.area() + other.area() - inter;
        if union > 0.0 { inter / union } else { 0.0 }
    }
}

/// One candidate or final detection, in the coordinates of the step that made it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// Class id (index into the label list).
    pub class: usize,
    /// Confidence in 0..1.
    pub score: f32,
    /// Where.
    pub bbox: BBox,
}

/// Keeps the best-scoring detections: a candidate is dropped when it
/// overlaps a kept one of the same class by more than `iou`. At most `max`
/// survive, best first.
pub fn nms(mut dets: Vec<Detection>, iou: f32, max: usize) -> Vec<Detection> {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut keep: Vec<Detection> = Vec::with_capacity(max.min(dets.len()));
    for d in dets {
        if keep.len() >= max {
            break;
        }
        if keep
            .iter()
            .all(|k| k.class != d.class || k.bbox.iou(&d.bbox) <= iou)
        {
            keep.push(d);
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(class: usize, score: f32, x1: f32) -> Detection {
        Detection {
            class,
            score,
            bbox: BBox {
                x1,
                y1: 0.0,
                x2: x1 + 10.0,
                y2: 10.0,
            },
        }
    }

    #[test]
    fn iou_of_half_overlapping_boxes_is_one_third() {
        let a = det(0, 1.0, 0.0).bbox;
        let b = det(0, 1.0, 5.0).bbox;
        assert!((a.iou(&b) - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(a.iou(&det(0, 1.0, 20.0).bbox), 0.0);
    }

    #[test]
    fn suppresses_overlapping_boxes_of_the_same_class_only() {
        let kept = nms(
            vec![
                det(0, 0.5, 1.0),
                det(0, 0.9, 0.0),
                det(1, 0.4, 0.0),
                det(0, 0.3, 30.0),
            ],
            0.5,
            10,
        );
        let got: Vec<(usize, f32)> = kept.iter().map(|d| (d.class, d.score)).collect();
        assert_eq!(got, vec![(0, 0.9), (1, 0.4), (0, 0.3)]);
    }

    #[test]
    fn keeps_at_most_max_detections() {
        let dets = (0..5)
            .map(|i| det(0, 0.1 * i as f32, 100.0 * i as f32))
            .collect();
        assert_eq!(nms(dets, 0.5, 2).len(), 2);
    }
}
