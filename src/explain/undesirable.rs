//! Undesirable pixels (after Kang et al. 2019, whose formulas are not public;
//! these are borex's, SPEC §2). From RISE masks, the signed map of class j
//!   S±_j = Σ_i (P_j(I⊙M_i) − mean_i P_j)·(M_i − p) / (N·p·(1−p))
//!        = (Σ_i P_j,i·M_i − mean_i P_j · Σ_i M_i) / (N·p·(1−p))
//! (the p-terms cancel), then
//!   target-hindering U_t = max(0, −S±_c): pixels whose presence lowers P_c;
//!   non-target U_o = Σ_{j ∈ top-k, j ≠ c} P_j(I)·max(0, S±_j): evidence for rivals.
//! Metric: remove the top-q of U in steps and record P_c; a faithful map beats
//! removing the same fraction at random.

use super::rise::{rise_sums, RiseParams};
use crate::compute::Masks;
use crate::error::Result;
use crate::metrics::auc;
use crate::model::Scorer;
use ndarray::{Array2, Array3, ArrayView2, ArrayView3};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Serialize;

/// Undesirable pixels' parameters: RISE's masks and how many rival classes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct UndesirableParams {
    /// The RISE masks the maps are built from.
    pub rise: RiseParams,
    /// Rival classes: the top-k of the clean image other than the target.
    pub top_k: usize,
}

/// The undesirable-pixel maps of one image and class.
pub struct Undesirable {
    /// U_t.
    pub target: Array2<f32>,
    /// U_o.
    pub others: Array2<f32>,
    /// S±_c, the signed map of the target class.
    pub signed: Array2<f32>,
    /// The rival classes U_o is made against.
    pub rivals: Vec<usize>,
}

/// The undesirable-pixel maps of `class` for input `x`, from RISE masks scored once for every class.
pub fn undesirable(
    scorer: &Scorer,
    image: ArrayView3<f32>,
    class: usize,
    clean_probs: &[f32],
    params: &UndesirableParams,
    progress: &dyn crate::progress::Progress,
) -> Result<Undesirable> {
    let mut order: Vec<usize> = (0..clean_probs.len()).collect();
    order.sort_by(|&a, &b| clean_probs[b].total_cmp(&clean_probs[a]));
    let rivals: Vec<usize> = order.into_iter().filter(|&j| j != class).take(params.top_k).collect();
    let classes: Vec<usize> = std::iter::once(class).chain(rivals.iter().copied()).collect();
    let r = &params.rise;
    let sums = rise_sums(scorer, image, &classes, r, progress)?;
    let norm = r.n as f32 * r.p * (1.0 - r.p);
    let signed: Vec<Array2<f32>> = sums
        .weighted
        .iter()
        .zip(&sums.prob_sums)
        .map(|(w, ps)| (w - &(&sums.mask_sum * (*ps / r.n as f64) as f32)) / norm)
        .collect();
    let target = signed[0].mapv(|v| (-v).max(0.0));
    let mut others = Array2::<f32>::zeros(target.raw_dim());
    for (s, &j) in signed[1..].iter().zip(&rivals) {
        others.scaled_add(clean_probs[j], &s.mapv(|v| v.max(0.0)));
    }
    Ok(Undesirable { target, others, signed: signed[0].clone(), rivals })
}

/// P_c as the top-q of `map` is removed (set to zero), q = 0, 5, …, 50 %, and
/// the same with a random pixel order; a map that finds undesirable pixels
/// raises P_c faster than random removal.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct RemovalCurve {
    /// Removed fraction at each point (0, 0.05, …, 0.5).
    pub fractions: Vec<f32>,
    /// P_c after removing the map's top fraction.
    pub scores: Vec<f32>,
    /// P_c after removing as many random pixels.
    pub random_scores: Vec<f32>,
    /// Area under `scores`.
    pub auc: f32,
    /// Area under `random_scores`.
    pub random_auc: f32,
    /// Whether the map's removal raises P_c more than random removal.
    pub beats_random: bool,
}

/// `details` of an undesirable-pixels explanation: the rival classes and
/// how P_c rises as each map's top pixels are removed.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct UndesirableDetails {
    /// The rival classes the others map is made against.
    pub rivals: Vec<usize>,
    /// The removal curves of the target and others maps.
    pub removal: Removal,
}

/// The removal curves of an undesirable-pixels explanation.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Removal {
    /// Removing the target map's top pixels.
    pub target: RemovalCurve,
    /// Removing the others map's top pixels.
    pub others: RemovalCurve,
}

/// P_c of `class` as `map`'s top pixels are removed (set to zero), with random removal for comparison.
pub fn removal_curve(
    scorer: &Scorer,
    image: ArrayView3<f32>,
    map: ArrayView2<f32>,
    class: usize,
    seed: u64,
) -> Result<RemovalCurve> {
    let (_, h, w) = image.dim();
    let fractions: Vec<f32> = (0..=10).map(|i| i as f32 * 0.05).collect();
    let mut by_map: Vec<usize> = (0..h * w).collect();
    let flat: Vec<f32> = map.iter().copied().collect();
    by_map.sort_by(|&a, &b| flat[b].total_cmp(&flat[a]).then(a.cmp(&b)));
    let mut random: Vec<usize> = (0..h * w).collect();
    random.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
    let zero = Array3::<f32>::zeros(image.raw_dim());
    let curve = |order: &[usize]| -> Result<Vec<f32>> {
        let mut rank = vec![0usize; h * w];
        for (i, &p) in order.iter().enumerate() {
            rank[p] = i;
        }
        let masks = Array3::from_shape_fn((fractions.len(), h, w), |(k, y, x)| {
            if (rank[y * w + x] as f32) < fractions[k] * (h * w) as f32 {
                0.0
            } else {
                1.0
            }
        });
        scorer.class_probs(image, zero.view(), Masks::Dense(masks.view()), class)
    };
    let (scores, random_scores) = (curve(&by_map)?, curve(&random)?);
    let (a, r) = (auc(&scores), auc(&random_scores));
    Ok(RemovalCurve { fractions, scores, random_scores, auc: a, random_auc: r, beats_random: a > r })
}
