//! Top-k classification of image files, batched.

use crate::error::{BorexError, Result};
use crate::model::{Classifier, Prediction};
use ndarray::{Array4, Axis};
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize)]
pub struct ImagePredictions {
    pub image: PathBuf,
    pub predictions: Vec<Prediction>,
}

/// Classify `images` in batches of `batch`, returning the top `k` classes of each.
/// Every image is decoded before any is scored, so a bad file fails fast.
pub fn classify_files(
    model: &Classifier,
    images: &[PathBuf],
    k: usize,
    batch: usize,
    progress: &indicatif::ProgressBar,
) -> Result<Vec<ImagePredictions>> {
    if k == 0 {
        return Err(BorexError::invalid("--top must be at least 1"));
    }
    if batch == 0 {
        return Err(BorexError::invalid("--batch must be at least 1"));
    }
    if let Some(n) = model.num_classes() {
        if k > n {
            return Err(BorexError::invalid(format!("--top {k} exceeds the model's {n} classes")));
        }
    }
    let inputs = images
        .iter()
        .map(|p| Ok(model.preprocess().apply(&crate::image::load_rgb(p)?).tensor))
        .collect::<Result<Vec<_>>>()?;
    let mut out = Vec::with_capacity(images.len());
    for (paths, tensors) in images.chunks(batch).zip(inputs.chunks(batch)) {
        let stacked = stack(tensors);
        let probs = model.probabilities(stacked.view(), batch)?;
        for (path, row) in paths.iter().zip(probs.axis_iter(Axis(0))) {
            out.push(ImagePredictions { image: path.clone(), predictions: model.top_k(row, k) });
        }
        progress.inc(paths.len() as u64);
    }
    Ok(out)
}

/// Stack C×H×W tensors into one N×C×H×W batch.
pub fn stack(tensors: &[ndarray::Array3<f32>]) -> Array4<f32> {
    let views: Vec<_> = tensors.iter().map(|t| t.view()).collect();
    ndarray::stack(Axis(0), &views).expect("tensors share one shape")
}

/// A short display name for a path.
pub fn display_name(p: &Path) -> String {
    p.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_else(|| p.display().to_string())
}
