//! Equal-budget baselines for refinement: the RISE prior continued with more
//! masks of the same seed. Mask i of a seed is the same whatever N is, so
//! RISE-N continued from the prior's N0 masks is RISE-N computed directly:
//! the prior's masks are its first N0, and one streamed session yields the map
//! at every requested count.

use crate::error::{BorexError, Result};
use crate::explain::rise::RiseParams;
use crate::explain::Method;
use crate::model::Scorer;
use ndarray::{Array2, ArrayView3};

/// One `--baselines` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RiseBaseline {
    /// As many model evaluations as the prior and a refinement together (N0 + 2 per query).
    EqualBudget,
    /// A fixed mask count.
    Masks(usize),
}

impl RiseBaseline {
    /// Parse `equal-budget` or a RISE mask count, or an error naming the value.
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim();
        if s == "equal-budget" {
            return Ok(Self::EqualBudget);
        }
        let n: usize = s.parse().map_err(|_| {
            BorexError::invalid(format!(
                "unknown baseline {s:?}: expected equal-budget or a RISE mask count such as 1000"
            ))
        })?;
        crate::limits::in_range("baselines", n, 1, crate::limits::MAX_MASKS)?;
        Ok(Self::Masks(n))
    }

    /// The baseline's label in tables (`equal-budget` or the count).
    pub fn label(&self) -> String {
        match self {
            Self::EqualBudget => "equal-budget".into(),
            Self::Masks(n) => n.to_string(),
        }
    }

    /// The mask count for a prior of `prior_masks` masks and a refinement of `iters` queries.
    pub fn masks(&self, prior_masks: usize, iters: usize) -> usize {
        match self {
            Self::EqualBudget => prior_masks + 2 * iters,
            Self::Masks(n) => *n,
        }
    }
}

/// The RISE parameters of a method that can be continued, else a one-line error.
pub fn rise_params(method: &str) -> Result<RiseParams> {
    match Method::parse(method, 0) {
        Some(Method::Rise(p)) => Ok(p),
        _ => Err(BorexError::invalid(format!(
            "--baselines continue a RISE prior with more masks; method {method:?} is not RISE (use rise-fast or rise)"
        ))),
    }
}

/// The name `borex eval --methods` gives RISE with `n` masks and the parameters of `method`
/// (e.g. `rise-fast+masks=200`): a baseline's maps are stored as that method's maps, so a
/// baseline and the same method evaluated directly share their records.
pub fn method_name(method: &str, n: usize) -> Result<String> {
    let p = rise_params(method)?;
    Ok(Method::Rise(RiseParams { n, ..p }).name())
}

/// RISE maps of `params`' seed, grid and keep probability at each of `counts` masks
/// (ascending, distinct), from one streamed session: masks `0..counts.last()` are scored
/// once, batch by batch, and each map is read out when its count is reached. Each map is
/// what [`crate::explain::rise::rise`] computes with that many masks: the same masks, folded
/// in the same order, normalised the same way.
pub fn rise_continued(
    scorer: &Scorer,
    image: ArrayView3<f32>,
    class: usize,
    params: &RiseParams,
    counts: &[usize],
) -> Result<Vec<Array2<f32>>> {
    if counts.is_empty() || counts.windows(2).any(|w| w[0] >= w[1]) {
        return Err(BorexError::invalid("RISE continuation needs ascending, distinct mask counts"));
    }
    let last = *counts.last().expect("not empty");
    let full = RiseParams { n: last, ..*params };
    full.validate()?;
    let mut session = scorer.kernels.rise_session(image, &full, 1)?;
    let chunk = scorer.batch.max(1);
    let mut maps = Vec::with_capacity(counts.len());
    let mut start = 0;
    for &stop in counts {
        while start < stop {
            // Batches as a direct run would cut them, and one more cut at each count.
            let count = chunk.min(stop - start).min(chunk - start % chunk);
            let masked = session.masked(start, count)?;
            let p = scorer.score_batch(masked.view())?;
            let weights = crate::model::class_column(&p, class)?;
            session.accumulate(&weights)?;
            start += count;
        }
        let (sums, _) = session.finish()?;
        let mut sal = sums.into_iter().next().expect("one accumulator");
        sal /= stop as f32 * params.p;
        maps.push(sal);
    }
    Ok(maps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baselines_parse_and_size() {
        assert_eq!(RiseBaseline::parse("equal-budget").unwrap(), RiseBaseline::EqualBudget);
        assert_eq!(RiseBaseline::parse(" 1000").unwrap(), RiseBaseline::Masks(1000));
        assert!(RiseBaseline::parse("budget").unwrap_err().to_string().contains("unknown baseline \"budget\""));
        assert!(RiseBaseline::parse("0").unwrap_err().to_string().contains("baselines 0 is out of range"));
        assert!(RiseBaseline::parse("1000001").unwrap_err().to_string().contains("1000000"));
        assert_eq!(RiseBaseline::EqualBudget.masks(100, 50), 200);
        assert_eq!(RiseBaseline::Masks(1000).masks(100, 50), 1000);
        assert_eq!(method_name("rise-fast", 200).unwrap(), "rise-fast+masks=200");
        assert_eq!(method_name("rise-fast", 100).unwrap(), "rise-fast");
        assert_eq!(method_name("rise+masks=10", 30).unwrap(), "rise+masks=30");
        assert!(method_name("gradcam", 200).unwrap_err().to_string().contains("not RISE"));
    }
}
