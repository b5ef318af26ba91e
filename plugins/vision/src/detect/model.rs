//! Loading a detector with tract and running it on one frame.
//!
//! The model is parsed without the exports' symbolic value-info and output
//! shapes, given a concrete input shape, optimised once and shared: running
//! it needs only `&self`, so frames can be detected on several threads.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;

use super::decode::{DecodeParams, Format, Head, LayoutError};
use super::nms::{Detection, nms};
use super::preprocess::{Geometry, Layout, Preprocess, Rgb};

/// Why a detector could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The file could not be read.
    #[error("reading model {path}: {source}")]
    Read {
        /// Model path.
        path: PathBuf,
        /// I/O error.
        source: std::io::Error,
    },
    /// tract could not parse, type or optimise the model.
    #[error("loading model {path}: {message}")]
    Load {
        /// Model path.
        path: PathBuf,
        /// tract's error chain.
        message: String,
    },
    /// The input size is neither in the model nor configured.
    #[error("model {path} {problem}")]
    Input {
        /// Model path.
        path: PathBuf,
        /// What does not fit.
        problem: String,
    },
    /// The outputs do not have the configured layout.
    #[error("model {path}: {source}")]
    Layout {
        /// Model path.
        path: PathBuf,
        /// What does not fit.
        source: LayoutError,
    },
    /// Inference failed.
    #[error("running the detector: {0}")]
    Run(String),
}

/// Box filtering after decoding.
#[derive(Debug, Clone)]
pub struct PostProcess {
    /// Decoder parameters (threshold, classes, strides).
    pub params: DecodeParams,
    /// Output layout.
    pub format: Format,
    /// Overlap above which a weaker box of the same class is dropped.
    pub nms_iou: f32,
    /// Most detections per frame.
    pub max_detections: usize,
}

/// An optimised detector; what the transform runs, public for benchmarks.
#[derive(Debug, Clone)]
pub struct Detector {
    plan: Arc<TypedRunnableModel>,
    pre: Preprocess,
    post: PostProcess,
}

/// Reads the model's input size for `layout`, when the model fixes it.
fn model_input_size(fact: &InferenceFact, layout: Layout) -> Option<(usize, usize)> {
    let dims: Vec<Option<usize>> = fact
        .shape
        .dims()
        .map(|d| {
            d.concretize()
                .and_then(|d| d.to_i64().ok())
                .and_then(|d| usize::try_from(d).ok())
        })
        .collect();
    match (layout, dims.as_slice()) {
        (Layout::Nchw, [_, _, Some(h), Some(w)]) | (Layout::Nhwc, [_, Some(h), Some(w), _]) => {
            Some((*w, *h))
        }
        _ => None,
    }
}

impl Detector {
    /// Loads and optimises `path`. `size` (width, height) overrides the
    /// model's own input size and is required when the model leaves it open.
    /// `pre.width`/`pre.height` and `post.params.input_*` are set from it.
    /// The model is run once on a blank input to check the output layout.
    pub fn load(
        path: &Path,
        size: Option<(usize, usize)>,
        mut pre: Preprocess,
        mut post: PostProcess,
    ) -> Result<Self, ModelError> {
        let load_err = |e: &dyn std::fmt::Display| ModelError::Load {
            path: path.to_owned(),
            message: format!("{e:#}"),
        };
        let bytes = std::fs::read(path).map_err(|source| ModelError::Read {
            path: path.to_owned(),
            source,
        })?;
        let model = tract_onnx::onnx()
            .with_ignore_value_info(true)
            .with_ignore_output_shapes(true)
            .model_for_read(&mut bytes.as_slice())
            .map_err(|e| load_err(&e))?;
        if model.inputs.len() != 1 {
            return Err(ModelError::Input {
                path: path.to_owned(),
                problem: format!(
                    "has {} inputs, expected one image input",
                    model.inputs.len()
                ),
            });
        }
        let fact = model.input_fact(0).map_err(|e| load_err(&e))?;
        let Some((width, height)) = size.or_else(|| model_input_size(fact, pre.layout)) else {
            return Err(ModelError::Input {
                path: path.to_owned(),
                problem: "does not fix its input size; set `input_size: [width, height]`".into(),
            });
        };
        let shape = match pre.layout {
            Layout::Nchw => [1, 3, height, width],
            Layout::Nhwc => [1, height, width, 3],
        };
        let plan = model
            .with_input_fact(0, f32::fact(shape).into())
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(|e| load_err(&e))?;
        (pre.width, pre.height) = (width, height);
        (post.params.input_width, post.params.input_height) = (width, height);
        let detector = Self { plan, pre, post };
        let blank = vec![0.0; 3 * width * height];
        detector.infer(blank).map_err(|e| match e {
            ModelError::Layout { source, .. } => ModelError::Layout {
                path: path.to_owned(),
                source,
            },
            other => other,
        })?;
        Ok(detector)
    }

    /// The preprocessing the model was loaded with.
    pub fn preprocess(&self) -> &Preprocess {
        &self.pre
    }

    /// Detects objects in `img`; boxes are in image pixels, best first.
    pub fn detect(&self, img: &Rgb) -> Result<(Vec<Detection>, Geometry), ModelError> {
        let mut input = vec![0.0; 3 * self.pre.width * self.pre.height];
        let geometry = self.pre.fill(img, &mut input);
        let mut dets = self.infer(input)?;
        for d in &mut dets {
            d.bbox.x1 = geometry.x(d.bbox.x1);
            d.bbox.x2 = geometry.x(d.bbox.x2);
            d.bbox.y1 = geometry.y(d.bbox.y1);
            d.bbox.y2 = geometry.y(d.bbox.y2);
        }
        Ok((dets, geometry))
    }

    /// Runs the model on a prepared input tensor and decodes the outputs;
    /// boxes are in model-input pixels.
    pub fn infer(&self, input: Vec<f32>) -> Result<Vec<Detection>, ModelError> {
        let run = |e: &dyn std::fmt::Display| ModelError::Run(format!("{e:#}"));
        let shape = match self.pre.layout {
            Layout::Nchw => vec![1, 3, self.pre.height, self.pre.width],
            Layout::Nhwc => vec![1, self.pre.height, self.pre.width, 3],
        };
        let tensor = Tensor::from_shape(&shape, &input).map_err(|e| run(&e))?;
        let outputs = self.plan.run(tvec!(tensor.into())).map_err(|e| run(&e))?;
        let mut views = Vec::with_capacity(outputs.len());
        for o in &outputs {
            let data = o
                .try_as_plain_ram()
                .and_then(|v| v.as_slice::<f32>())
                .map_err(|e| run(&e))?;
            views.push(Head {
                shape: o.shape(),
                data,
            });
        }
        let candidates = self
            .post
            .format
            .decode(&views, &self.post.params)
            .map_err(|source| ModelError::Layout {
                path: PathBuf::new(),
                source,
            })?;
        Ok(nms(candidates, self.post.nms_iou, self.post.max_detections))
    }
}
