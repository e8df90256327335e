//! Prior saliency maps (explainers). Each scores images only through
//! [`crate::model::Scorer`] (black-box methods) or the model's feature output
//! (the CAM family).

pub mod antithetic;
pub mod cam;
pub mod occlusion;
pub mod pipeline;
pub mod rise;
pub mod undesirable;

pub use cam::{cameras, CamHead, CamKind};
pub use occlusion::{occlusion, OcclusionParams};
pub use pipeline::{run_explain, ExplainJob, ExplainOutcome};
pub use rise::{rise, RiseParams};
pub use undesirable::{removal_curve, undesirable, Undesirable, UndesirableParams};

use crate::compute::Baseline;
use crate::error::{BorexError, Result};
use crate::model::{Classifier, Scorer};
use ndarray::{Array2, ArrayView3};
use serde::Serialize;

/// Every method `borex explain` and `borex refine --prior` accept.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(tag = "method", rename_all = "lowercase")]
pub enum Method {
    /// RISE: random masks weighted by the class score (`rise`, `rise-fast`, `rise+masks=N`).
    Rise(RiseParams),
    /// A window slid over the image, the score drop where it covers.
    Occlusion(OcclusionParams),
    /// CAM: the linear head's weights over the last feature map.
    Cam,
    /// Grad-CAM: feature maps weighted by their mean gradient.
    GradCam,
    /// Grad-CAM++: Grad-CAM with higher-order pixel weights.
    #[serde(rename = "gradcam++")]
    GradCamPlusPlus,
    /// CAMERAS: CAM feature maps and gradients averaged over input scales.
    Cameras {
        /// The input sides the model is run at, in pixels.
        scales: Vec<u32>,
    },
    /// Undesirable pixels: where removing pixels raises the class (RISE-based).
    Undesirable(UndesirableParams),
    /// RISE's masks, then `extra` evaluations on their complements and new mask pairs
    /// (`rise-fast+antithetic=100`; [`antithetic`]).
    #[serde(rename = "rise-antithetic")]
    RiseAntithetic {
        /// The RISE masks continued.
        rise: RiseParams,
        /// Model evaluations after RISE's N.
        extra: usize,
    },
}

impl Method {
    /// Parse a method name; `None` for anything else (e.g. a file path).
    /// RISE presets take a mask count, `rise-fast+masks=400`, so a study can
    /// compare budgets by name (`borex eval --methods`).
    pub fn parse(name: &str, seed: u64) -> Option<Self> {
        if let Some((base, e)) = name.rsplit_once("+antithetic=") {
            let extra: usize = e.parse().ok()?;
            return match Self::parse(base, seed)? {
                Method::Rise(rise) => Some(Method::RiseAntithetic { rise, extra }),
                _ => None,
            };
        }
        if let Some((base, n)) = name.split_once("+masks=") {
            let n: usize = n.parse().ok()?;
            return match Self::parse(base, seed)? {
                Method::Rise(p) => Some(Method::Rise(RiseParams { n, ..p })),
                _ => None,
            };
        }
        Some(match name {
            "rise" => Method::Rise(RiseParams::standard(seed)),
            "rise-fast" => Method::Rise(RiseParams::fast(seed)),
            "occlusion" => Method::Occlusion(OcclusionParams::default()),
            "cam" => Method::Cam,
            "gradcam" => Method::GradCam,
            "gradcam++" => Method::GradCamPlusPlus,
            "cameras" => Method::Cameras { scales: vec![224, 324, 424, 524] },
            "undesirable" => Method::Undesirable(UndesirableParams { rise: RiseParams::standard(seed), top_k: 5 }),
            _ => return None,
        })
    }

    /// The method with its RISE masks drawn from `seed` (methods without masks are unchanged).
    pub fn with_seed(mut self, seed: u64) -> Self {
        match &mut self {
            Method::Rise(p) | Method::RiseAntithetic { rise: p, .. } => p.seed = seed,
            Method::Undesirable(p) => p.rise.seed = seed,
            _ => {}
        }
        self
    }

    /// Every method's name, as `--prior` and `--method` take it.
    pub const NAMES: &'static [&'static str] =
        &["rise", "rise-fast", "occlusion", "cam", "gradcam", "gradcam++", "cameras", "undesirable"];

    /// The method's name (with `+masks=N` for a RISE mask count other than the standard ones).
    pub fn name(&self) -> String {
        match self {
            Method::Rise(p) if *p == RiseParams::standard(p.seed) => "rise".into(),
            Method::Rise(p) if *p == RiseParams::fast(p.seed) => "rise-fast".into(),
            Method::Rise(p) if RiseParams { n: p.n, ..RiseParams::standard(p.seed) } == *p => {
                format!("rise+masks={}", p.n)
            }
            Method::Rise(p) if RiseParams { n: p.n, ..RiseParams::fast(p.seed) } == *p => {
                format!("rise-fast+masks={}", p.n)
            }
            Method::Rise(p) => format!("rise(N={}, s={}, p={})", p.n, p.s, p.p),
            Method::Occlusion(_) => "occlusion".into(),
            Method::Cam => "cam".into(),
            Method::GradCam => "gradcam".into(),
            Method::GradCamPlusPlus => "gradcam++".into(),
            Method::Cameras { .. } => "cameras".into(),
            Method::Undesirable(_) => "undesirable".into(),
            Method::RiseAntithetic { rise, extra } => format!("{}+antithetic={extra}", Method::Rise(*rise).name()),
        }
    }

    /// Check the parameters before any work (the input-dependent checks come later).
    pub fn validate(&self) -> Result<()> {
        use crate::limits::{distinct_in_range, in_range, MAX_INPUT, MAX_SCALE, MAX_SCALES, MIN_SCALE};
        match self {
            Method::Rise(p) => p.validate(),
            Method::Undesirable(p) => p.rise.validate(),
            Method::RiseAntithetic { rise, extra } => {
                rise.validate()?;
                if !(1..=crate::limits::MAX_MASKS).contains(extra) {
                    return Err(crate::error::BorexError::invalid(format!(
                        "antithetic evaluations {extra} is out of range: it must be between 1 and {}",
                        crate::limits::MAX_MASKS
                    )));
                }
                Ok(())
            }
            Method::Occlusion(p) => {
                in_range("window", p.window, 1, MAX_INPUT)?;
                in_range("stride", p.stride, 1, MAX_INPUT).map(|_| ())
            }
            Method::Cameras { scales } => {
                distinct_in_range("scales", scales, MIN_SCALE, MAX_SCALE)?;
                if scales.len() > MAX_SCALES {
                    return Err(crate::error::BorexError::setting(
                        "scales",
                        None,
                        format!("lists {} sizes: it takes at most {MAX_SCALES}", scales.len()),
                    ));
                }
                Ok(())
            }
            Method::Cam | Method::GradCam | Method::GradCamPlusPlus => Ok(()),
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
    /// The model input, C×H×W.
    pub tensor: ArrayView3<'a, f32>,
    /// The model-input crop as RGB.
    pub rgb: &'a image::RgbImage,
    /// What removed pixels become.
    pub baseline: Baseline,
}

/// What a method produced: one or more named H×W maps (model-input
/// resolution) and method-specific details for the report.
pub struct Explanation {
    /// The first map is the method's map (`map`; `target` for undesirable).
    pub maps: Vec<(&'static str, Array2<f32>)>,
    /// Method-specific details (undesirable pixels' rivals and removal curves).
    pub details: Option<undesirable::UndesirableDetails>,
}

impl Explanation {
    fn single(map: Array2<f32>) -> Self {
        Self { maps: vec![("map", map)], details: None }
    }

    /// The method's map (the first).
    pub fn primary(&self) -> &Array2<f32> {
        &self.maps[0].1
    }

    /// The map to refine: the signed map where a method has one (undesirable's
    /// S±_c carries both evidence and counter-evidence), else the primary map.
    pub fn into_prior(mut self) -> Array2<f32> {
        match self.maps.iter().position(|(n, _)| *n == "signed") {
            Some(i) => self.maps.swap_remove(i).1,
            None => self.maps.swap_remove(0).1,
        }
    }
}

/// Run `method` for `class`. `clean_probs` are the clean image's class probabilities.
pub fn explain(
    method: &Method,
    model: &Classifier,
    scorer: &Scorer,
    input: &ExplainInput,
    class: usize,
    clean_probs: &[f32],
    progress: &dyn crate::progress::Progress,
) -> Result<Explanation> {
    let cam_map =
        |kind| -> Result<Array2<f32>> { cam::cam(model, &CamHead::from_model(model)?, input.tensor, class, kind) };
    Ok(match method {
        Method::Rise(p) => {
            progress.set_length(p.n as u64);
            Explanation::single(rise(scorer, input.tensor, class, p, progress)?)
        }
        Method::Occlusion(p) => {
            let baseline = scorer.kernels.baseline(input.tensor, input.baseline)?;
            Explanation::single(occlusion(scorer, input.tensor, baseline.view(), class, p, progress)?)
        }
        Method::Cam => Explanation::single(cam_map(CamKind::Cam)?),
        Method::GradCam => Explanation::single(cam_map(CamKind::GradCam)?),
        Method::GradCamPlusPlus => Explanation::single(cam_map(CamKind::GradCamPlusPlus)?),
        Method::Cameras { scales } => {
            Explanation::single(cameras(model, &CamHead::from_model(model)?, input.rgb, class, scales)?)
        }
        Method::RiseAntithetic { rise, extra } => {
            progress.set_length((rise.n + extra) as u64);
            Explanation::single(antithetic::antithetic(scorer, input.tensor, class, rise, *extra, progress)?.map)
        }
        Method::Undesirable(p) => {
            progress.set_length(p.rise.n as u64);
            let u = undesirable(scorer, input.tensor, class, clean_probs, p, progress)?;
            let target = removal_curve(scorer, input.tensor, u.target.view(), class, p.rise.seed)?;
            let others = removal_curve(scorer, input.tensor, u.others.view(), class, p.rise.seed)?;
            Explanation {
                details: Some(undesirable::UndesirableDetails {
                    rivals: u.rivals,
                    removal: undesirable::Removal { target, others },
                }),
                maps: vec![("target", u.target), ("others", u.others), ("signed", u.signed)],
            }
        }
    })
}

/// A method by name (its masks' seed 0: see [`Method::with_seed`]); an unknown name is an error listing the known ones.
impl std::str::FromStr for Method {
    type Err = BorexError;
    fn from_str(s: &str) -> Result<Self> {
        Method::parse(s, 0).ok_or_else(|| unknown_method(s))
    }
}

/// A user-facing error for an unknown method name.
pub fn unknown_method(name: &str) -> BorexError {
    BorexError::invalid(format!(
        "unknown method {name:?}; expected one of {} (RISE with a mask count: rise+masks=N, rise-fast+masks=N; continued on the masks' complements: rise-fast+antithetic=E)",
        Method::NAMES.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rise_mask_counts_parse_and_name_round_trip() {
        let m = Method::parse("rise-fast+masks=400", 3).unwrap();
        assert_eq!(m, Method::Rise(RiseParams { n: 400, ..RiseParams::fast(3) }));
        assert_eq!(m.name(), "rise-fast+masks=400");
        assert_eq!(Method::parse("rise+masks=10", 0).unwrap().name(), "rise+masks=10");
        // The preset's own count names the preset.
        assert_eq!(Method::parse("rise-fast+masks=100", 0).unwrap().name(), "rise-fast");
        for bad in ["gradcam+masks=4", "rise+masks=x", "rise+masks=", "rise+masks=5+masks=6", "lime+masks=3"] {
            assert!(Method::parse(bad, 0).is_none(), "{bad}");
        }
    }

    #[test]
    fn antithetic_continuation_parses_and_names_round_trip() {
        let m = Method::parse("rise-fast+masks=50+antithetic=150", 2).unwrap();
        assert_eq!(m, Method::RiseAntithetic { rise: RiseParams { n: 50, ..RiseParams::fast(2) }, extra: 150 });
        assert_eq!(m.name(), "rise-fast+masks=50+antithetic=150");
        assert_eq!(Method::parse("rise-fast+antithetic=100", 0).unwrap().name(), "rise-fast+antithetic=100");
        assert!(Method::parse("rise-fast+antithetic=0", 0).unwrap().validate().is_err());
        for bad in ["gradcam+antithetic=4", "rise+antithetic=x", "rise-fast+antithetic=", "lime+antithetic=3"] {
            assert!(Method::parse(bad, 0).is_none(), "{bad}");
        }
    }
}
