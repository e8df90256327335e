//! Prior saliency maps (explainers). Each scores images only through
//! [`crate::model::Scorer`] (black-box methods) or the model's feature output
//! (the CAM family).

pub mod cam;
pub mod occlusion;
pub mod pipeline;
pub mod rise;

pub use cam::{cameras, CamHead, CamKind};
pub use occlusion::{occlusion, OcclusionParams};
pub use pipeline::{run_explain, ExplainJob, ExplainOutcome};
pub use rise::{rise, RiseParams};

use crate::compute::Baseline;
use crate::error::{BorexError, Result};
use crate::model::{Classifier, Scorer};
use ndarray::{Array2, ArrayView3};
use serde::Serialize;

/// Every method `borex explain` and `borex refine --prior` accept.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "method", rename_all = "lowercase")]
pub enum Method {
    Rise(RiseParams),
    Occlusion(OcclusionParams),
    Cam,
    GradCam,
    #[serde(rename = "gradcam++")]
    GradCamPlusPlus,
    Cameras { scales: Vec<u32> },
}

impl Method {
    /// Parse a method name; `None` for anything else (e.g. a file path).
    pub fn parse(name: &str, seed: u64) -> Option<Self> {
        Some(match name {
            "rise" => Method::Rise(RiseParams::standard(seed)),
            "rise-fast" => Method::Rise(RiseParams::fast(seed)),
            "occlusion" => Method::Occlusion(OcclusionParams::default()),
            "cam" => Method::Cam,
            "gradcam" => Method::GradCam,
            "gradcam++" => Method::GradCamPlusPlus,
            "cameras" => Method::Cameras { scales: vec![224, 324, 424, 524] },
            _ => return None,
        })
    }

    pub const NAMES: &'static [&'static str] = &["rise", "rise-fast", "occlusion", "cam", "gradcam", "gradcam++", "cameras"];

    pub fn name(&self) -> String {
        match self {
            Method::Rise(p) if *p == RiseParams::standard(p.seed) => "rise".into(),
            Method::Rise(p) if *p == RiseParams::fast(p.seed) => "rise-fast".into(),
            Method::Rise(p) => format!("rise(N={}, s={}, p={})", p.n, p.s, p.p),
            Method::Occlusion(_) => "occlusion".into(),
            Method::Cam => "cam".into(),
            Method::GradCam => "gradcam".into(),
            Method::GradCamPlusPlus => "gradcam++".into(),
            Method::Cameras { .. } => "cameras".into(),
        }
    }

    /// Whether the method needs the model's feature output.
    pub fn needs_features(&self) -> bool {
        matches!(self, Method::Cam | Method::GradCam | Method::GradCamPlusPlus | Method::Cameras { .. })
    }
}

/// What a method needs besides the model: the preprocessed input, the crop it
/// came from (for CAMERAS' rescaling), the baseline for removed pixels.
pub struct ExplainInput<'a> {
    pub tensor: ArrayView3<'a, f32>,
    /// The model-input crop as RGB.
    pub rgb: &'a image::RgbImage,
    pub baseline: Baseline,
}

/// The saliency map (H×W at model-input resolution) of `class`.
pub fn explain(method: &Method, model: &Classifier, scorer: &Scorer, input: &ExplainInput, class: usize, progress: &indicatif::ProgressBar) -> Result<Array2<f32>> {
    let cam_map = |kind| -> Result<Array2<f32>> { cam::cam(model, &CamHead::from_model(model)?, input.tensor, class, kind) };
    match method {
        Method::Rise(p) => {
            progress.set_length(p.n as u64);
            rise(scorer, input.tensor, class, p, progress)
        }
        Method::Occlusion(p) => {
            let baseline = scorer.kernels.baseline(input.tensor, input.baseline)?;
            occlusion(scorer, input.tensor, baseline.view(), class, p, progress)
        }
        Method::Cam => cam_map(CamKind::Cam),
        Method::GradCam => cam_map(CamKind::GradCam),
        Method::GradCamPlusPlus => cam_map(CamKind::GradCamPlusPlus),
        Method::Cameras { scales } => cameras(model, &CamHead::from_model(model)?, input.rgb, class, scales),
    }
}

/// A user-facing error for an unknown method name.
pub fn unknown_method(name: &str) -> BorexError {
    BorexError::invalid(format!("unknown method {name:?}; expected one of {}", Method::NAMES.join(", ")))
}
