//! What every image job shares: load and preprocess the image, pick the
//! class, read external maps, score maps with insertion/deletion.

use crate::compute::ImageKernels;
use crate::error::{BorexError, Result};
use crate::image::Preprocessed;
use crate::metrics::{causal_curve, CausalMetric, InsertionStart};
use crate::model::{Classifier, Scorer};
use ndarray::{Array2, ArrayView2, ArrayView3};
use serde_json::json;
use std::path::Path;

/// Which class to explain.
#[derive(Debug, Clone, PartialEq)]
pub enum ClassSpec {
    Top1,
    Id(usize),
    Name(String),
}

impl std::str::FromStr for ClassSpec {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Ok(match s.trim() {
            "top1" => ClassSpec::Top1,
            t => t.parse::<usize>().map(ClassSpec::Id).unwrap_or_else(|_| ClassSpec::Name(t.to_string())),
        })
    }
}

impl ClassSpec {
    pub fn resolve(&self, model: &Classifier, probs: &[f32]) -> Result<usize> {
        match self {
            ClassSpec::Top1 => Ok(probs.iter().enumerate().fold((0, f32::MIN), |b, (i, v)| if *v > b.1 { (i, *v) } else { b }).0),
            ClassSpec::Id(i) if *i < probs.len() => Ok(*i),
            ClassSpec::Id(i) => Err(BorexError::invalid(format!("class {i} is out of range: the model has {} classes (0–{})", probs.len(), probs.len() - 1))),
            ClassSpec::Name(n) => model
                .labels()
                .ok_or_else(|| BorexError::invalid(format!("class name {n:?} given but the model has no labels; pass --labels or a class id")))?
                .find(n),
        }
    }
}

/// An image ready for a method: model input, its RGB crop, and the class.
pub struct Prepared {
    pub pre: Preprocessed,
    /// The model-input crop as RGB (for overlays and rescaling methods).
    pub rgb: image::RgbImage,
    pub probs: Vec<f32>,
    pub class: usize,
}

impl Prepared {
    pub fn new(image: &Path, model: &Classifier, scorer: &Scorer, class: &ClassSpec) -> Result<Self> {
        let pre = model.preprocess().apply(&crate::image::load_rgb(image)?);
        let rgb = crate::output::denormalise(pre.tensor.view(), model.preprocess());
        let probs = scorer.probabilities(pre.tensor.view())?;
        let class = class.resolve(model, &probs)?;
        Ok(Self { pre, rgb, probs, class })
    }
}

/// Read an external map: `.npy` (f32 or f64, 2-D) or a grayscale/colour PNG (luminance).
pub fn read_map(path: &Path) -> Result<Array2<f32>> {
    if !path.is_file() {
        return Err(BorexError::invalid(format!("prior map {} not found", path.display())));
    }
    let bad = |r: String| BorexError::invalid(format!("prior map {}: {r}", path.display()));
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy")) {
        if let Ok(a) = ndarray_npy::read_npy::<_, Array2<f32>>(path) {
            return Ok(a);
        }
        return ndarray_npy::read_npy::<_, Array2<f64>>(path)
            .map(|a| a.mapv(|v| v as f32))
            .map_err(|e| bad(format!("not a 2-D float32/float64 .npy ({e})")));
    }
    let img = image::open(path).map_err(|e| bad(e.to_string()))?.to_luma32f();
    Ok(Array2::from_shape_fn((img.height() as usize, img.width() as usize), |(y, x)| img.get_pixel(x as u32, y as u32)[0]))
}

/// Insertion and deletion AUC of a map, as JSON: `insertion` uses the first
/// of `starts`; every start also gets its own `insertion_<start>` entry.
pub fn causal_metrics(scorer: &Scorer, kernels: &dyn ImageKernels, x: ArrayView3<f32>, map: ArrayView2<f32>, class: usize, starts: &[InsertionStart]) -> Result<serde_json::Value> {
    let mut out = json!({"deletion": causal_curve(scorer, kernels, x, map, class, CausalMetric::Deletion, InsertionStart::Blur)?.auc});
    for (i, &start) in starts.iter().enumerate() {
        let auc = causal_curve(scorer, kernels, x, map, class, CausalMetric::Insertion, start)?.auc;
        if i == 0 {
            out["insertion"] = json!(auc);
        }
        out[format!("insertion_{}", start.name())] = json!(auc);
    }
    Ok(out)
}

/// Milliseconds with two decimals, for reports.
pub fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e5).round() / 100.0
}
