//! Evaluating saliency maps.

pub(crate) mod causal;
pub mod stats;

pub use causal::{auc, causal_curve, CausalMetric, Curve, InsertionStart};
pub use stats::{krippendorff_alpha_ordinal, spearman, wilcoxon, Wilcoxon, WilcoxonMethod};

use crate::error::{BorexError, Result};
use ndarray::ArrayView2;

/// A map scored by insertion/deletion must rank some pixels above others:
/// finite, and not constant (all zero, one value everywhere, a single
/// pixel). Such a map would be scored like any other (pixels taken in index
/// order) and its AUCs read as the map's. The one rule `borex eval` and
/// [`crate::engine::Engine::evaluate`] apply; `what` names the map.
pub fn check_ranks(map: ArrayView2<f32>, what: &str) -> Result<()> {
    if map.is_empty() {
        return Err(BorexError::invalid(format!("{what} is empty")));
    }
    if let Some((r, c)) = crate::image::first_non_finite(map) {
        return Err(BorexError::invalid(format!("{what} has a non-finite value (NaN or infinity) at ({r}, {c})")));
    }
    let (lo, hi) = map.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    if lo == hi {
        let why = "it ranks no pixel above another (insertion and deletion would score pixel order, not the map)";
        let what_is = match map.dim() {
            (1, 1) => "is a single pixel".to_string(),
            _ if lo == 0.0 => "is all zero".to_string(),
            _ => format!("is constant ({lo} everywhere)"),
        };
        return Err(BorexError::invalid(format!("{what} {what_is}: {why}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_that_rank_nothing_are_refused() {
        for (m, words) in [
            (ndarray::Array2::<f32>::zeros((4, 4)), "the map is all zero: it ranks no pixel"),
            (ndarray::Array2::<f32>::from_elem((3, 5), 0.25), "the map is constant (0.25 everywhere): it ranks no"),
            (ndarray::Array2::<f32>::from_elem((1, 1), 7.0), "the map is a single pixel: it ranks no pixel"),
            (ndarray::Array2::<f32>::from_elem((2, 2), f32::NAN), "non-finite value (NaN or infinity) at (0, 0)"),
            (ndarray::Array2::<f32>::zeros((0, 3)), "is empty"),
        ] {
            let e = check_ranks(m.view(), "the map").unwrap_err().to_string();
            assert!(e.contains(words), "{e}");
        }
        let mut ok = ndarray::Array2::<f32>::zeros((2, 2));
        ok[[1, 1]] = 1e-30;
        assert!(check_ranks(ok.view(), "the map").is_ok());
    }
}
