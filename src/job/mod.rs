//! What every image job shares: load and preprocess the image, pick the
//! class, read external maps, score maps with insertion/deletion; and what
//! every resumable run shares: its description ([`description`]), safe names
//! for its sub-folders (`names`) and its slice of the units ([`Shard`]).
//! The lock on its folder is `output::lock`'s.

pub mod description;
pub(crate) mod names;
mod shard;

pub use description::{begin_run, JobDescription, JobKind};
pub use shard::Shard;

use crate::compute::ImageKernels;
use crate::error::{BorexError, Result};
use crate::image::Preprocessed;
use crate::metrics::{causal_curve, CausalMetric, InsertionStart};
use crate::model::{Classifier, Scorer};
use ndarray::{ArrayView2, ArrayView3};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub use crate::image::read_map;

/// Which class to explain.
#[derive(Debug, Clone, PartialEq)]
pub enum ClassSpec {
    /// The model's most probable class.
    Top1,
    /// A class index.
    Id(usize),
    /// A label name (needs the model's labels).
    Name(String),
}

impl std::str::FromStr for ClassSpec {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let t = s.trim();
        if t == "top1" {
            return Ok(ClassSpec::Top1);
        }
        if let Ok(i) = t.parse::<i64>() {
            return usize::try_from(i)
                .map(ClassSpec::Id)
                .map_err(|_| format!("class id {i} is negative: ids start at 0"));
        }
        Ok(ClassSpec::Name(t.to_string()))
    }
}

/// As `--class` takes it: `top1`, a class id, or a label name.
impl std::fmt::Display for ClassSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClassSpec::Top1 => f.write_str("top1"),
            ClassSpec::Id(i) => write!(f, "{i}"),
            ClassSpec::Name(n) => f.write_str(n),
        }
    }
}

/// As the user wrote it: `"top1"`, a class id, or a label name (job descriptions, reports).
impl serde::Serialize for ClassSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            ClassSpec::Top1 => s.serialize_str("top1"),
            ClassSpec::Id(i) => s.serialize_u64(*i as u64),
            ClassSpec::Name(n) => s.serialize_str(n),
        }
    }
}

/// Read back as written: `"top1"`, a class id, or a label name.
impl<'de> serde::Deserialize<'de> for ClassSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Id(usize),
            Text(String),
        }
        Ok(match Raw::deserialize(d)? {
            Raw::Id(i) => ClassSpec::Id(i),
            Raw::Text(t) if t == "top1" => ClassSpec::Top1,
            Raw::Text(t) => ClassSpec::Name(t),
        })
    }
}

impl ClassSpec {
    /// The class index this spec names given the model's probabilities: the top-1, an id in range, or a label's index.
    pub fn resolve(&self, model: &Classifier, probs: &[f32]) -> Result<usize> {
        match self {
            ClassSpec::Top1 => {
                Ok(probs.iter().enumerate().fold((0, f32::MIN), |b, (i, v)| if *v > b.1 { (i, *v) } else { b }).0)
            }
            ClassSpec::Id(i) if *i < probs.len() => Ok(*i),
            ClassSpec::Id(i) => Err(BorexError::invalid(format!(
                "class {i} is out of range: the model has {} classes (0–{})",
                probs.len(),
                probs.len() - 1
            ))),
            ClassSpec::Name(n) => model
                .labels()
                .ok_or_else(|| {
                    BorexError::invalid(format!(
                        "class name {n:?} given but the model has no labels; pass --labels or a class id"
                    ))
                })?
                .find(n),
        }
    }
}

/// Where a job's image comes from.
#[derive(Clone, Copy)]
pub enum Source<'a> {
    /// An image file.
    File(&'a Path),
    /// A decoded image (a video frame, an image given in memory) and how errors name it.
    Rgb(&'a image::RgbImage, &'a str),
}

/// An image ready for a method: model input, its RGB crop, and the class.
pub struct Prepared {
    /// The preprocessed model input (C×H×W) and its crop.
    pub pre: Preprocessed,
    /// The model-input crop as RGB (for overlays and rescaling methods).
    pub rgb: image::RgbImage,
    /// The model's class probabilities on the clean input.
    pub probs: Vec<f32>,
    /// The chosen class.
    pub class: usize,
    /// What decoding dropped (an alpha channel), for the report's notes.
    pub notes: Vec<String>,
}

impl Prepared {
    /// Load `image`, preprocess it, score it and choose the class.
    pub fn new(image: &Path, model: &Classifier, scorer: &Scorer, class: &ClassSpec) -> Result<Self> {
        let (pre, notes) = crate::image::load_input(image, model.preprocess())?;
        Self::from_input(pre, notes, model, scorer, class)
    }

    /// From a file or an image already decoded.
    pub fn from_source(source: Source, model: &Classifier, scorer: &Scorer, class: &ClassSpec) -> Result<Self> {
        match source {
            Source::File(path) => Self::new(path, model, scorer, class),
            Source::Rgb(rgb, name) => Self::from_rgb(rgb, name, model, scorer, class),
        }
    }

    /// From an image already decoded (a video frame); `name` says which in errors.
    pub fn from_rgb(
        rgb: &image::RgbImage,
        name: &str,
        model: &Classifier,
        scorer: &Scorer,
        class: &ClassSpec,
    ) -> Result<Self> {
        Self::from_input(crate::image::to_input(rgb, name, model.preprocess())?, vec![], model, scorer, class)
    }

    fn from_input(
        pre: Preprocessed,
        mut notes: Vec<String>,
        model: &Classifier,
        scorer: &Scorer,
        class: &ClassSpec,
    ) -> Result<Self> {
        let rgb = crate::output::denormalise(pre.tensor.view(), model.preprocess());
        let probs = scorer.probabilities(pre.tensor.view())?;
        notes.extend(model.not_probabilities_note("the image", ndarray::ArrayView1::from(&probs[..])));
        let class = class.resolve(model, &probs)?;
        Ok(Self { pre, rgb, probs, class, notes })
    }
}

/// `report.json`'s `device` (refine and explain): where the work ran.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceReport {
    /// Where the GP stages ran: `gpu` or `cpu`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gp: Option<String>,
    /// Where masking ran: `gpu` or `cpu`.
    pub masking: String,
    /// The adapter, in words.
    pub adapter: String,
    /// The ONNX Runtime execution provider.
    pub ep: String,
}

/// Insertion and deletion AUC of one map (a report's `metrics`, or the
/// metric fields of its `prior` and `refined`). `insertion` is the first
/// start's; every start scored also has its own `insertion_<start>` field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CausalScores {
    /// Insertion AUC from the first start asked for (`None` when metrics were off).
    pub insertion: Option<f32>,
    /// Deletion AUC (to zero).
    pub deletion: Option<f32>,
    /// Insertion AUC from a blurred copy, when that start was scored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insertion_blur: Option<f32>,
    /// Insertion AUC from zero, when that start was scored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insertion_zero: Option<f32>,
}

impl CausalScores {
    /// The insertion AUC from `start`, if it was scored.
    pub fn insertion_from(&self, start: InsertionStart) -> Option<f32> {
        match start {
            InsertionStart::Blur => self.insertion_blur,
            InsertionStart::Zero => self.insertion_zero,
        }
    }
}

/// Insertion and deletion AUC of a map: `insertion` uses the first of
/// `starts`; every start also gets its own `insertion_<start>` entry.
pub fn causal_metrics(
    scorer: &Scorer,
    kernels: &dyn ImageKernels,
    x: ArrayView3<f32>,
    map: ArrayView2<f32>,
    class: usize,
    starts: &[InsertionStart],
) -> Result<CausalScores> {
    Ok(causal_metrics_with_curves(scorer, kernels, x, map, class, starts)?.0)
}

/// One map's insertion/deletion curves, keyed `deletion` and `insertion_<start>`
/// (one per insertion start asked for, so the keys are not fixed): P_c after
/// each step, the untouched start first.
pub type Curves = std::collections::BTreeMap<String, Vec<f32>>;

/// [`causal_metrics`] and the curves themselves (`{"deletion": [...], "insertion_<start>": [...]}`:
/// P_c after each step, the untouched start first), for `curves.json` and `borex report`.
pub fn causal_metrics_with_curves(
    scorer: &Scorer,
    kernels: &dyn ImageKernels,
    x: ArrayView3<f32>,
    map: ArrayView2<f32>,
    class: usize,
    starts: &[InsertionStart],
) -> Result<(CausalScores, Curves)> {
    let deletion = causal_curve(scorer, kernels, x, map, class, CausalMetric::Deletion, InsertionStart::Blur)?;
    let mut out = CausalScores { deletion: Some(deletion.auc), ..CausalScores::default() };
    let mut curves = Curves::from([("deletion".to_string(), deletion.scores)]);
    for (i, &start) in starts.iter().enumerate() {
        let c = causal_curve(scorer, kernels, x, map, class, CausalMetric::Insertion, start)?;
        if i == 0 {
            out.insertion = Some(c.auc);
        }
        match start {
            InsertionStart::Blur => out.insertion_blur = Some(c.auc),
            InsertionStart::Zero => out.insertion_zero = Some(c.auc),
        }
        curves.insert(format!("insertion_{}", start.name()), c.scores);
    }
    Ok((out, curves))
}

/// Milliseconds with two decimals, for reports.
pub fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e5).round() / 100.0
}
