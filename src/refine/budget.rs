//! `--budget N`: a refinement's model evaluations in total, the prior's and
//! the queries', with borex splitting them. A RISE prior whose mask count the
//! user did not give gets [`RISE_SHARE`] of the budget and the queries the
//! rest; any other prior costs what it costs (a map file nothing, occlusion
//! one evaluation per window and one for the clean image, the CAM family one
//! pass per input scale) and the
//! queries get what is left. The one classification of the whole image every
//! run makes, and the metrics, are not counted.

use super::{PriorSpec, RefineConfig};
use crate::error::{BorexError, Result};
use crate::explain::rise::RiseParams;
use crate::explain::Method;
use crate::limits;
use serde::Serialize;

/// The share of a budget (after the objective's fixed evaluations) a RISE
/// prior gets when the user gave no mask count. A quarter: of 200
/// evaluations split RISE-50 + 75 queries, RISE-100 + 50 (the default
/// refine) and RISE-150 + 25, the first scored best on both metrics in the
/// screening and again in its confirmation (docs/quality-designs.md).
pub const RISE_SHARE: f64 = 0.25;

/// The fewest masks a RISE prior is given: fewer leave most pixels under no
/// mask's average.
pub const MIN_RISE_MASKS: usize = 10;

/// How a budget was spent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetPlan {
    /// The prior to compute (a RISE prior with its mask count set).
    #[serde(skip)]
    pub prior: PriorSpec,
    /// The prior's name as reports give it.
    pub prior_name: String,
    /// Queries T.
    pub iters: usize,
    /// Model evaluations of the prior.
    pub prior_evaluations: usize,
    /// Model evaluations of the queries: T per query plus the objective's constant inputs.
    pub query_evaluations: usize,
}

impl BudgetPlan {
    /// The evaluations the plan spends (at most the budget).
    pub fn total(&self) -> usize {
        self.prior_evaluations + self.query_evaluations
    }

    /// One line for stderr and the report's notes: how the budget was spent.
    pub fn note(&self, budget: usize) -> String {
        format!(
            "budget {budget}: prior {} ({} evaluations), {} queries ({} evaluations)",
            self.prior_name, self.prior_evaluations, self.iters, self.query_evaluations
        )
    }
}

/// (evaluations per query, evaluations once per image) of `cfg`'s objective:
/// one per side shown as a box, one per constant side, one more for
/// [`RefineConfig::relative_gain`]; the antithetic continuation two per query.
pub fn query_cost(cfg: &RefineConfig) -> (usize, usize) {
    // The antithetic continuation spends a query's two evaluations on masks, nothing once.
    if !cfg.refiner.is_boxes() {
        return (2, 0);
    }
    let (inside, outside, _) = cfg.objective.sides(cfg.baseline);
    let is_box = |s| matches!(s, super::objective::SideSpec::Box { .. });
    let per_query = [inside, outside].into_iter().filter(|s| is_box(*s)).count();
    (per_query, 2 - per_query + usize::from(cfg.relative_gain))
}

/// The model evaluations `method` takes on an `height`×`width` input.
pub fn prior_cost(method: &Method, height: u32, width: u32) -> usize {
    match method {
        Method::Rise(p) => p.n,
        Method::Undesirable(p) => p.rise.n,
        Method::RiseAntithetic { rise, extra } => {
            let (complements, pairs) = crate::explain::antithetic::plan(rise.n, *extra);
            rise.n + complements + 2 * pairs
        }
        // Each window, and the clean image once.
        Method::Occlusion(p) => p.windows(height, width) + 1,
        Method::Cam | Method::GradCam | Method::GradCamPlusPlus => 1,
        Method::Cameras { scales } => scales.len(),
    }
}

/// Spend `budget` evaluations on `prior` and the queries of `cfg` for an
/// input of `height`×`width`. `masks_given`: the user fixed a RISE prior's
/// mask count (`rise-fast+masks=N`), so it is not split. An error names a
/// budget below what the prior and one query need, or one that asks for more
/// queries than [`limits::MAX_ITERS`].
pub fn plan(
    budget: usize,
    prior: &PriorSpec,
    masks_given: bool,
    cfg: &RefineConfig,
    height: u32,
    width: u32,
) -> Result<BudgetPlan> {
    limits::in_range("budget", budget, 1, limits::MAX_BUDGET)?;
    let (per_query, fixed) = query_cost(cfg);
    let name = super::RefineObjective::of(cfg);
    let objective = match cfg.relative_gain {
        true => format!("objective {name} with relative gain"),
        false => format!("objective {name}"),
    };
    let (prior, prior_evaluations) = match prior {
        PriorSpec::Method(Method::Rise(p)) if !masks_given => {
            let free = budget.saturating_sub(fixed);
            // The queries' share, leaving the prior at least its minimum.
            let share = ((free as f64 * (1.0 - RISE_SHARE)) / per_query as f64).floor() as usize;
            let iters = share.min(free.saturating_sub(MIN_RISE_MASKS) / per_query);
            let needed = MIN_RISE_MASKS + per_query + fixed;
            if budget < needed || iters == 0 {
                return Err(BorexError::setting(
                    "budget",
                    Some(budget.to_string()),
                    format!("is below what a RISE prior and one query need: at least {needed} evaluations ({MIN_RISE_MASKS} masks, {per_query} per query and {fixed} once for the {objective})"),
                ));
            }
            // The remainder of the division goes to the prior, so the budget is spent exactly.
            let n = free - iters * per_query;
            (PriorSpec::Method(Method::Rise(RiseParams { n, ..*p })), n)
        }
        PriorSpec::Method(m) => (prior.clone(), prior_cost(m, height, width)),
        PriorSpec::File(_) | PriorSpec::Map(_) => (prior.clone(), 0),
    };
    let left = budget.saturating_sub(prior_evaluations + fixed);
    let iters = left / per_query;
    if iters == 0 {
        return Err(BorexError::setting(
            "budget",
            Some(budget.to_string()),
            format!(
                "is below what the prior {} and one query need: at least {} evaluations ({prior_evaluations} for the prior, {per_query} per query and {fixed} once for the {objective})",
                prior.method(),
                prior_evaluations + per_query + fixed
            ),
        ));
    }
    if iters > limits::MAX_ITERS {
        return Err(BorexError::setting(
            "budget",
            Some(budget.to_string()),
            format!(
                "leaves {iters} queries after the prior {}, more than the {} a refine makes; give the prior more of it (e.g. rise-fast+masks=N) or a smaller budget",
                prior.method(),
                limits::MAX_ITERS
            ),
        ));
    }
    Ok(BudgetPlan {
        prior_name: prior.method(),
        prior,
        iters,
        prior_evaluations,
        query_evaluations: iters * per_query + fixed,
    })
}

/// Whether a `--prior` name fixes a RISE prior's mask count (`rise-fast+masks=N`).
pub fn masks_given(prior_name: &str) -> bool {
    prior_name.contains("+masks=")
}

/// Spend `budget` on `job` for `model`'s input: its prior and query count
/// set by [`plan`] (`masks_given` as there).
pub fn apply(
    job: &mut super::RefineJob,
    budget: usize,
    masks_given: bool,
    model: &crate::model::Classifier,
) -> Result<BudgetPlan> {
    let (h, w) = model.preprocess().input_size;
    let p = plan(budget, &job.prior, masks_given, &job.config, h, w)?;
    job.prior = p.prior.clone();
    job.config.iters = p.iters;
    // In the report too, not only on stderr: the report says what the run spent.
    job.notes.push(p.note(budget));
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explain::occlusion::OcclusionParams;
    use crate::refine::Objective;

    fn rise_fast() -> PriorSpec {
        PriorSpec::parse("rise-fast", 0)
    }

    #[test]
    fn a_rise_prior_gets_a_quarter() {
        // 200 evaluations with the matched objective: RISE-50 and 75 queries of 2 images.
        let p = plan(200, &rise_fast(), false, &RefineConfig::default(), 224, 224).unwrap();
        assert_eq!(
            (p.prior_name.as_str(), p.iters, p.prior_evaluations, p.query_evaluations),
            ("rise-fast+masks=50", 75, 50, 150)
        );
        // An odd budget: the spare evaluations go to the prior, the budget is spent exactly.
        let p = plan(301, &rise_fast(), false, &RefineConfig::default(), 224, 224).unwrap();
        assert_eq!((p.iters, p.prior_evaluations, p.total()), (112, 77, 301));
        // A small budget keeps the prior's minimum: 14 = 10 masks + 2 queries, not 4 masks + 5 queries.
        let p = plan(14, &rise_fast(), false, &RefineConfig::default(), 224, 224).unwrap();
        assert_eq!((p.prior_evaluations, p.iters), (MIN_RISE_MASKS, 2));
    }

    #[test]
    fn constant_sides_and_relative_gain_are_counted_once() {
        // Insertion: one box per query plus the all-blurred input once; relative gain one more.
        let cfg = RefineConfig { objective: Objective::Insertion, relative_gain: true, ..RefineConfig::default() };
        assert_eq!(query_cost(&cfg), (1, 2));
        let p = plan(202, &rise_fast(), false, &cfg, 224, 224).unwrap();
        assert_eq!((p.iters, p.prior_evaluations, p.query_evaluations), (150, 50, 152));
        assert_eq!(query_cost(&RefineConfig::paper()), (2, 0));
    }

    #[test]
    fn fixed_priors_cost_what_they_cost() {
        let cfg = RefineConfig::default();
        let file = PriorSpec::File("map.npy".into());
        assert_eq!(plan(101, &file, false, &cfg, 224, 224).unwrap().iters, 50);
        let given = PriorSpec::parse("rise-fast+masks=60", 0);
        let p = plan(200, &given, true, &cfg, 224, 224).unwrap();
        assert_eq!((p.prior_evaluations, p.iters), (60, 70));
        // Occlusion at 224 px, window 32, stride 8: 25 starts per axis, brute force below.
        let occ = OcclusionParams::default();
        let starts = (0..=224 - 32).step_by(8).count();
        assert_eq!(occ.windows(224, 224), starts * starts);
        let p = plan(1000, &PriorSpec::Method(Method::Occlusion(occ)), false, &cfg, 224, 224).unwrap();
        assert_eq!(p.iters, (1000 - starts * starts - 1) / 2);
    }

    #[test]
    fn bad_budgets_are_named() {
        let cfg = RefineConfig::default();
        let e = plan(11, &rise_fast(), false, &cfg, 224, 224).unwrap_err().to_string();
        assert!(e.contains("budget 11 is below") && e.contains("at least 12"), "{e}");
        let occ = PriorSpec::parse("occlusion", 0);
        let e = plan(500, &occ, false, &cfg, 224, 224).unwrap_err().to_string();
        assert!(e.contains("prior occlusion") && e.contains("at least 628"), "{e}");
        let e = plan(0, &rise_fast(), false, &cfg, 224, 224).unwrap_err().to_string();
        assert!(e.contains("budget 0 is out of range"), "{e}");
        let file = PriorSpec::File("map.npy".into());
        let e = plan(5000, &file, false, &cfg, 224, 224).unwrap_err().to_string();
        assert!(e.contains("2500 queries") && e.contains("more than the 2000"), "{e}");
    }
}
