//! RISE (Petsiuk et al. 2018), as the authors' code computes it:
//! saliency = Σ_i P_c(I⊙M_i)·M_i / (N·p), masks from
//! `compute::rise_masks`. Masks are generated, applied and
//! accumulated by the compute backend in batches, so memory stays flat
//! whatever N is.

pub use crate::compute::rise_masks::{hash, masks, pcg, unit, RiseParams};

use crate::error::Result;
use crate::model::Scorer;
use ndarray::{Array2, ArrayView3};

/// Streamed RISE sums for several classes.
pub struct RiseSums {
    /// Σ_i P_j(I⊙M_i)·M_i for each requested class j.
    pub weighted: Vec<Array2<f32>>,
    /// Σ_i M_i.
    pub mask_sum: Array2<f32>,
    /// Σ_i P_j(I⊙M_i) for each requested class j.
    pub prob_sums: Vec<f64>,
}

/// RISE's weighted sums for `classes`: each mask's scores times the mask, with the mask and probability sums.
pub fn rise_sums(
    scorer: &Scorer,
    image: ArrayView3<f32>,
    classes: &[usize],
    params: &RiseParams,
    progress: &dyn crate::progress::Progress,
) -> Result<RiseSums> {
    params.validate()?;
    let mut session = scorer.kernels.rise_session(image, params, classes.len())?;
    let mut prob_sums = vec![0.0f64; classes.len()];
    let chunk = scorer.batch.max(1);
    for start in (0..params.n).step_by(chunk) {
        let count = chunk.min(params.n - start);
        let masked = session.masked(start, count)?;
        let p = scorer.score_batch(masked.view())?;
        let mut weights = Vec::with_capacity(count * classes.len());
        for row in p.rows() {
            for (j, &c) in classes.iter().enumerate() {
                weights.push(row[c]);
                prob_sums[j] += row[c] as f64;
            }
        }
        session.accumulate(&weights)?;
        progress.inc(count as u64);
    }
    let (weighted, mask_sum) = session.finish()?;
    Ok(RiseSums { weighted, mask_sum, prob_sums })
}

/// The RISE saliency map of `class`.
pub fn rise(
    scorer: &Scorer,
    image: ArrayView3<f32>,
    class: usize,
    params: &RiseParams,
    progress: &dyn crate::progress::Progress,
) -> Result<Array2<f32>> {
    let sums = rise_sums(scorer, image, &[class], params, progress)?;
    let mut sal = sums.weighted.into_iter().next().expect("one class");
    sal /= params.n as f32 * params.p;
    Ok(sal)
}

/// RISE for a clip model on a clip (T×C×H×W): each mask is applied to every
/// frame alike, so the map is spatial (H×W); the same normalisation as [`rise`].
/// Clip mode's prior: the time axis is left to the refinement.
pub fn rise_clip(
    scorer: &Scorer,
    clip: ndarray::ArrayView4<f32>,
    class: usize,
    params: &RiseParams,
    progress: &dyn crate::progress::Progress,
) -> Result<Array2<f32>> {
    use crate::compute::Masks;
    use ndarray::Axis;
    params.validate()?;
    let mut session = scorer.kernels.rise_session(clip.index_axis(Axis(0), 0), params, 1)?;
    let zero = ndarray::Array3::<f32>::zeros(clip.index_axis(Axis(0), 0).raw_dim());
    let (nt, c, h, w) = clip.dim();
    let chunk = scorer.batch.max(1);
    for start in (0..params.n).step_by(chunk) {
        let count = chunk.min(params.n - start);
        // The session masks frame 0; the same masks go over the other frames.
        let first = session.masked(start, count)?;
        let masks = session.last_masks()?;
        let mut clips = ndarray::Array5::<f32>::zeros((count, nt, c, h, w));
        clips.index_axis_mut(Axis(1), 0).assign(&first);
        for (f, frame) in clip.outer_iter().enumerate().skip(1) {
            let masked = scorer.kernels.apply_masks(frame, zero.view(), Masks::Dense(masks.view()))?;
            clips.index_axis_mut(Axis(1), f).assign(&masked);
        }
        let p = scorer.score_clips(clips.view())?;
        let weights = crate::model::class_column(&p, class)?;
        session.accumulate(&weights)?;
        progress.inc(count as u64);
    }
    let (weighted, _) = session.finish()?;
    let mut sal = weighted.into_iter().next().expect("one class");
    sal /= params.n as f32 * params.p;
    Ok(sal)
}
