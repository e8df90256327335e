//! Top-k classification of image files, batched.

use crate::error::{BorexError, Result};
use crate::model::{Classifier, Prediction};
use ndarray::{Array4, Axis};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The top-k classes of one image file.
#[derive(Debug, Clone, Serialize)]
pub struct ImagePredictions {
    /// The image file.
    pub image: PathBuf,
    /// Empty when the image could not be classified (see `error`).
    pub predictions: Vec<Prediction>,
    /// Why this image was skipped (missing, not an image, too large).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What decoding dropped (an alpha channel).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Classify `images` in batches of `batch`, returning the top `k` classes of
/// each, in order. A file that cannot be read is reported in its entry and the
/// rest go on; errors of the model or the settings stop the run.
pub fn classify_files(
    model: &Classifier,
    images: &[PathBuf],
    k: usize,
    batch: usize,
    progress: &dyn crate::progress::Progress,
) -> Result<Vec<ImagePredictions>> {
    if k == 0 {
        return Err(BorexError::invalid("--top must be at least 1"));
    }
    crate::limits::in_range("batch", batch, 1, crate::limits::MAX_BATCH)?;
    if let Some(n) = model.num_classes() {
        if k > n {
            return Err(BorexError::invalid(format!("--top {k} exceeds the model's {n} classes")));
        }
    }
    let mut out: Vec<ImagePredictions> = Vec::with_capacity(images.len());
    // Decode one batch at a time: memory stays bounded by the batch.
    for paths in images.chunks(batch) {
        let mut tensors = Vec::with_capacity(paths.len());
        let first = out.len();
        for path in paths {
            let (predictions, error, notes) = match crate::image::load_input(path, model.preprocess()) {
                Ok((pre, notes)) => {
                    tensors.push(pre.tensor);
                    (vec![], None, notes)
                }
                Err(e) => (vec![], Some(e.to_string()), vec![]),
            };
            out.push(ImagePredictions { image: path.clone(), predictions, error, notes });
        }
        if !tensors.is_empty() {
            let probs = model.probabilities(stack(&tensors).view(), batch)?;
            let mut rows = probs.axis_iter(Axis(0));
            for entry in out[first..].iter_mut().filter(|e| e.error.is_none()) {
                let row = rows.next().expect("one row per decoded image");
                entry.notes.extend(model.not_probabilities_note(&entry.image.display().to_string(), row));
                entry.predictions = model.top_k(row, k);
            }
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
