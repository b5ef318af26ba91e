//! Turning a detector's raw outputs into candidate boxes in the pixel
//! coordinates of the model input. Which layout the outputs have is chosen by
//! `format:`; see [`nanodet`](super::nanodet) and [`yolov8`](super::yolov8).

use super::nms::Detection;

/// One output tensor of the model, row-major.
#[derive(Debug, Clone, Copy)]
pub struct Head<'a> {
    /// Dimensions.
    pub shape: &'a [usize],
    /// Values.
    pub data: &'a [f32],
}

impl Head<'_> {
    /// The shape without leading dimensions of size 1 (the batch).
    pub fn dims(&self) -> &[usize] {
        let lead = self
            .shape
            .iter()
            .take_while(|d| **d == 1)
            .count()
            .min(self.shape.len().saturating_sub(2));
        &self.shape[lead..]
    }
}

/// What every decoder needs besides the outputs.
#[derive(Debug, Clone)]
pub struct DecodeParams {
    /// Width of the model input in pixels.
    pub input_width: usize,
    /// Height of the model input in pixels.
    pub input_height: usize,
    /// Number of classes the model scores.
    pub num_classes: usize,
    /// Lowest class score kept.
    pub score_threshold: f32,
    /// Per class id, whether it is reported; empty means every class.
    pub allowed: Vec<bool>,
    /// NanoDet: the largest bin of the box side distributions (bins are
    /// `0..=reg_max`).
    pub reg_max: usize,
    /// NanoDet: strides of the feature maps, smallest first.
    pub strides: Vec<usize>,
}

impl DecodeParams {
    /// The best allowed class of `scores` and its score, when it reaches the
    /// threshold.
    pub fn best_class(&self, scores: impl Iterator<Item = f32>) -> Option<(usize, f32)> {
        let mut best: Option<(usize, f32)> = None;
        for (c, s) in scores.enumerate() {
            if !self.allowed.is_empty() && !self.allowed.get(c).copied().unwrap_or(false) {
                continue;
            }
            if s >= self.score_threshold && best.is_none_or(|(_, b)| s > b) {
                best = Some((c, s));
            }
        }
        best
    }
}

/// The outputs do not have the layout the configured `format:` decodes.
#[derive(Debug, thiserror::Error)]
#[error("outputs do not fit format `{format}`: {problem}")]
pub struct LayoutError {
    /// The configured format.
    pub format: &'static str,
    /// What does not fit.
    pub problem: String,
}

/// Output layouts the `detect` transform decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// NanoDet with GFL heads: per stride, sigmoid class scores `[n, classes]`
    /// and box side distributions `[n, 4 * (reg_max + 1)]`, or both
    /// concatenated in one `[cells, classes + 4 * (reg_max + 1)]` output.
    Nanodet,
    /// YOLOv8: one output `[4 + classes, boxes]` (or transposed) of box
    /// centre, size and class scores, in input pixels.
    Yolov8,
}

impl Format {
    /// Name used in YAML and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Nanodet => "nanodet",
            Format::Yolov8 => "yolov8",
        }
    }

    /// Decodes `heads` into candidates (before NMS).
    pub fn decode(
        self,
        heads: &[Head<'_>],
        p: &DecodeParams,
    ) -> Result<Vec<Detection>, LayoutError> {
        match self {
            Format::Nanodet => super::nanodet::decode(heads, p),
            Format::Yolov8 => super::yolov8::decode(heads, p),
        }
    }
}
