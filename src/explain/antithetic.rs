//! Antithetic continuation of a RISE prior (issue #24): the refinement's
//! evaluations go to the complements 1 − M_i of the prior's own masks (same
//! grid, same shift), then to new masks and their complements, instead of box
//! queries. A mask keeps a pixel with probability p and shows what inserting
//! it does; its complement removes that pixel with probability p and shows
//! what deleting it does, the two halves of the default metric.
//!
//! With f_i the class probability on I⊙M_i (every mask, prior's first) and
//! f'_j on I⊙(1 − M_j) (the complemented masks), v = p(1 − p):
//!
//!   ins(x) = Σ_i (f_i − f̄)(M_i(x) − p) / (N·v)
//!   del(x) = −Σ_j (f'_j − f̄')(M_j(x) − p) / (N'·v)
//!   map    = ins + del
//!
//! Each term is the regression slope of the score on the pixel's mask value
//! under independent cells; subtracting the mean score removes the noise RISE's
//! Σ f_i·M_i carries from how often each pixel happened to be kept. Since
//! Σ_i (f_i − f̄) = 0, ins = (Σ f_i M_i − f̄ Σ M_i) / (N·v): three streamed sums
//! per mask (f_i, f'_j and 1 for complemented masks) give the map.
//! docs/quality-designs.md measures it against RISE continued to the same evaluations.

use super::rise::RiseParams;
use crate::error::{BorexError, Result};
use crate::model::{class_column, Scorer};
use ndarray::{Array2, ArrayView3, Axis};

/// The antithetic continuation's maps and what it spent.
#[derive(Debug, Clone)]
pub struct Antithetic {
    /// The refined map, ins + del (H×W).
    pub map: Array2<f32>,
    /// The prior's own RISE map from the same pass (its N0 masks, as
    /// [`super::rise::rise`] computes it: bit for bit on the CPU path), so
    /// that a refine pays for the prior's masks once.
    pub prior: Array2<f32>,
    /// Time in the model on the prior's masks, and on the extra evaluations.
    pub model_time: [std::time::Duration; 2],
    /// Complements of the prior's masks that were scored.
    pub complements: usize,
    /// New (mask, complement) pairs after the prior's masks.
    pub new_pairs: usize,
    /// Model evaluations beyond the prior's N0 (complements + 2 per new pair).
    pub extra_evaluations: usize,
}

/// How `extra` evaluations are spent after a prior of `n0` masks:
/// (complements of prior masks, new pairs). Complements first; an odd evaluation left over is not spent.
pub fn plan(n0: usize, extra: usize) -> (usize, usize) {
    let complements = extra.min(n0);
    (complements, (extra - complements) / 2)
}

/// The antithetic continuation of the RISE prior `params` (its N0 = `params.n` masks are scored
/// again here, not counted in `extra_evaluations`) with `extra` more evaluations, for `class`.
pub fn antithetic(
    scorer: &Scorer,
    image: ArrayView3<f32>,
    class: usize,
    params: &RiseParams,
    extra: usize,
    progress: &dyn crate::progress::Progress,
) -> Result<Antithetic> {
    params.validate()?;
    let n0 = params.n;
    let (complements, new_pairs) = plan(n0, extra);
    if complements == 0 {
        return Err(BorexError::invalid("the antithetic continuation needs at least one more evaluation"));
    }
    let total = n0 + new_pairs;
    let full = RiseParams { n: total, ..*params };
    full.validate()?;
    // Accumulators: Σ f_i·M_i (all masks), Σ f'_j·M_j and Σ M_j (complemented masks only),
    // and Σ_{i<N0} f_i·M_i (the prior's RISE sum; a later mask adds 0·M, which leaves it exact).
    let mut session = scorer.kernels.rise_session(image, &full, 4)?;
    let mut model_time = [std::time::Duration::ZERO; 2];
    let chunk = scorer.batch.max(1);
    let (mut sum_f, mut sum_fc) = (0.0f64, 0.0f64);
    let mut start = 0;
    while start < total {
        // Batches cut at the prior's count, as RISE's own run of the prior cuts them.
        let stop = if start < n0 { n0 } else { total };
        let count = chunk.min(stop - start);
        let masked = session.masked(start, count)?;
        let before = scorer.elapsed();
        let f = class_column(&scorer.score_batch(masked.view())?, class)?;
        model_time[usize::from(start >= n0)] += scorer.elapsed() - before;
        // Complements of masks start.. that are paired: I⊙(1 − M) = I − I⊙M.
        let idx: Vec<usize> = (0..count).filter(|&k| is_paired(start + k, n0, complements)).collect();
        let mut fc = vec![0.0f32; count];
        if !idx.is_empty() {
            let mut comp = masked.select(Axis(0), &idx);
            for mut c in comp.outer_iter_mut() {
                c.zip_mut_with(&image, |m, &x| *m = x - *m);
            }
            let before = scorer.elapsed();
            let p = class_column(&scorer.score_batch(comp.view())?, class)?;
            model_time[1] += scorer.elapsed() - before;
            for (&k, v) in idx.iter().zip(p) {
                fc[k] = v;
            }
        }
        let mut weights = Vec::with_capacity(4 * count);
        for k in 0..count {
            let on = is_paired(start + k, n0, complements);
            let prior_f = if start + k < n0 { f[k] } else { 0.0 };
            weights.extend([f[k], fc[k], if on { 1.0 } else { 0.0 }, prior_f]);
            sum_f += f[k] as f64;
            sum_fc += fc[k] as f64;
        }
        session.accumulate(&weights)?;
        progress.inc((count + idx.len()) as u64);
        start += count;
    }
    let (sums, mask_sum) = session.finish()?;
    let (a_f, a_fc, s_c) = (&sums[0], &sums[1], &sums[2]);
    // As RISE normalises its map: Σ f_i·M_i / (N0·p), in f32.
    let mut prior = sums[3].clone();
    prior /= n0 as f32 * params.p;
    let p = params.p as f64;
    let v = p * (1.0 - p);
    let n_f = total as f64;
    let n_c = (complements + new_pairs) as f64;
    let (mean_f, mean_fc) = (sum_f / n_f, sum_fc / n_c);
    let mut map = Array2::<f32>::zeros(mask_sum.raw_dim());
    ndarray::Zip::from(&mut map).and(a_f).and(&mask_sum).and(a_fc).and(s_c).for_each(|m, &af, &sm, &ac, &sc| {
        let ins = (af as f64 - mean_f * sm as f64) / (n_f * v);
        let del = -(ac as f64 - mean_fc * sc as f64) / (n_c * v);
        *m = (ins + del) as f32;
    });
    Ok(Antithetic { map, prior, model_time, complements, new_pairs, extra_evaluations: complements + 2 * new_pairs })
}

/// Whether mask `i` has its complement scored: the first `complements` prior masks, and every new mask.
fn is_paired(i: usize, n0: usize, complements: usize) -> bool {
    i < complements || i >= n0
}
