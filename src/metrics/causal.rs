//! Insertion and deletion (Petsiuk et al. 2018), as the RISE authors' code
//! computes them: pixels in descending saliency order, `W` pixels per step
//! (224 for 224×224, so 225 points); deletion replaces them with the baseline
//! (zero), insertion starts from a blurred copy (Gaussian, kernel 11, σ 5) and
//! restores them; the score is `P_c`; AUC = (Σ − first/2 − last/2)/(n − 1).

use crate::compute::{ImageKernels, Masks};
use crate::error::{BorexError, Result};
use crate::model::Scorer;
use ndarray::{Array3, ArrayView2, ArrayView3};
use rayon::prelude::*;
use serde::Serialize;

/// Which causal metric a curve is: insertion (pixels added, most salient first) or deletion (removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CausalMetric {
    /// Pixels inserted into a start image, most salient first (higher is better).
    Insertion,
    /// Pixels removed from the image, most salient first (lower is better).
    Deletion,
}

/// Where insertion starts: the reference's blurred image, or zeros (the BOREx code's choice).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InsertionStart {
    /// From the RISE reference's blurred image.
    #[default]
    Blur,
    /// From zeros (the dataset's mean colour).
    Zero,
}

named_enum!(InsertionStart, "insertion start", { Blur => "blur", Zero => "zero" });

/// One causal curve and its area.
#[derive(Debug, Clone, Serialize)]
pub struct Curve {
    /// Insertion or deletion.
    pub metric: CausalMetric,
    /// Area under the curve (trapezoid rule over [0, 1]).
    pub auc: f32,
    /// `P_c` after each step, the untouched start first.
    pub scores: Vec<f32>,
}

/// Area under a curve sampled at equal steps, normalised to [0, 1] on the x axis.
pub fn auc(scores: &[f32]) -> f32 {
    let n = scores.len();
    if n < 2 {
        return scores.first().copied().unwrap_or(0.0);
    }
    let sum: f32 = scores.iter().sum();
    (sum - scores[0] / 2.0 - scores[n - 1] / 2.0) / (n - 1) as f32
}

/// Pixel order by descending saliency; ties keep numpy's `flip(argsort)` order
/// (later pixels first).
fn salient_order(map: ArrayView2<f32>) -> Result<Vec<usize>> {
    let flat: Vec<f32> = map.iter().copied().collect();
    if flat.iter().any(|v| !v.is_finite()) {
        return Err(BorexError::invalid("saliency map has non-finite values"));
    }
    let mut order: Vec<usize> = (0..flat.len()).collect();
    order.sort_by(|&a, &b| flat[b].total_cmp(&flat[a]).then(b.cmp(&a)));
    Ok(order)
}

/// The insertion or deletion curve of `map` for `class`.
pub fn causal_curve(
    scorer: &Scorer,
    kernels: &dyn ImageKernels,
    image: ArrayView3<f32>,
    map: ArrayView2<f32>,
    class: usize,
    metric: CausalMetric,
    start: InsertionStart,
) -> Result<Curve> {
    let (_, h, w) = image.dim();
    if map.dim() != (h, w) {
        return Err(BorexError::invalid(format!("map is {:?} but the image is {h}×{w}", map.dim())));
    }
    let order = salient_order(map)?;
    // rank[p] = position of pixel p in the order; mask_i(p) = rank[p] < i·step takes the "finish" value.
    let mut rank = vec![0usize; h * w];
    for (i, &p) in order.iter().enumerate() {
        rank[p] = i;
    }
    let step = w;
    let n_steps = (h * w).div_ceil(step);
    let image_owned = image.to_owned();
    let (from, to) = match (metric, start) {
        (CausalMetric::Deletion, _) => (image_owned, Array3::zeros(image.raw_dim())),
        (CausalMetric::Insertion, InsertionStart::Blur) => {
            (kernels.baseline(image, crate::compute::Baseline::Blur)?, image_owned)
        }
        (CausalMetric::Insertion, InsertionStart::Zero) => (Array3::zeros(image.raw_dim()), image_owned),
    };
    let mut scores = Vec::with_capacity(n_steps + 1);
    let chunk = scorer.batch.max(1);
    // One buffer for every batch, its masks made in parallel.
    let mut masks = Array3::<f32>::zeros((chunk.min(n_steps + 1), h, w));
    for first in (0..=n_steps).step_by(chunk) {
        let count = chunk.min(n_steps + 1 - first);
        let flat = masks.as_slice_mut().expect("fresh array is contiguous");
        flat[..count * h * w].par_chunks_mut((h * w).max(1)).enumerate().for_each(|(k, m)| {
            let done = (first + k) * step;
            for (v, &r) in m.iter_mut().zip(&rank) {
                *v = if r < done { 1.0 } else { 0.0 };
            }
        });
        let batch = masks.slice(ndarray::s![..count, .., ..]);
        scores.extend(scorer.class_probs(to.view(), from.view(), Masks::Dense(batch), class)?);
    }
    Ok(Curve { metric, auc: auc(&scores), scores })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn auc_is_the_trapezoid_rule() {
        assert_eq!(auc(&[1.0, 1.0, 1.0]), 1.0);
        assert_eq!(auc(&[1.0, 0.0]), 0.5);
        assert!((auc(&[0.0, 0.5, 1.0, 0.5]) - 1.75 / 3.0).abs() < 1e-7);
    }

    #[test]
    fn order_is_descending_with_numpy_tie_order() {
        let m = array![[0.1f32, 0.9], [0.5, 0.5]];
        assert_eq!(salient_order(m.view()).unwrap(), vec![1, 3, 2, 0]);
        assert!(salient_order(array![[f32::NAN]].view()).is_err());
    }
}
