//! The posterior map after query k, recomputed from what `report.json` and
//! `prior.npy` already hold: each observation's stored GP input, objective
//! value and the length scales fitted once it was in. The GP with those
//! length scales is exact (no refit), so the map after the last query is the
//! refined map up to float rounding; the run stays as it was (no extra
//! files, no extra cost for runs nobody looks at), and the recompute is a
//! posterior mean per step on the CPU twin (no model, no fit).

use super::views::RefineReportView;
use crate::compute::{cpu::CpuGpSession, GpSession};
use crate::error::{BorexError, Result};
use crate::gp::{CandidateGrid, Gp};
use crate::refine::PriorMean;
use ndarray::{Array2, ArrayView2};

/// Maps after some of the queries.
pub struct Steps {
    /// `(k, map)`: the posterior-mean map after the first k queries.
    pub maps: Vec<(usize, Array2<f32>)>,
}

/// Which queries get a map: all of them up to `max`, else `max` evenly spaced ones ending at the last.
pub fn chosen(n: usize, max: usize) -> Vec<usize> {
    if n <= max {
        return (1..=n).collect();
    }
    let mut ks: Vec<usize> = (1..=max).map(|i| (i * n).div_ceil(max)).collect();
    ks.dedup();
    ks
}

/// The posterior-mean maps after the queries [`chosen`] (at most `max`).
/// `prior` is `prior.npy`: the prior in the GP's units (a·S0 + b with the
/// report's final a, b).
pub fn posterior_steps(report: &RefineReportView, prior: ArrayView2<f32>, max: usize) -> Result<Steps> {
    let settings = report.settings_view();
    let knobs = &settings.refine;
    let detail = match knobs.readout.as_str() {
        "window" => false,
        "detail" => true,
        other => {
            return Err(BorexError::invalid(format!(
                "the step-through covers the window and detail readouts, not {other:?}"
            )))
        }
    };
    let (prior_mean, alpha) = (knobs.prior_mean, knobs.alpha);
    let (h, w) = prior.dim();
    let grid = match settings.grid.sizes {
        s if !s.is_empty() => CandidateGrid::new(h as u32, w as u32, s),
        _ => CandidateGrid::reference(h as u32, w as u32),
    };
    let obs = &report.observations;
    if obs.is_empty() {
        return Err(BorexError::invalid("report.json lists no observations"));
    }
    if obs.iter().any(|o| o.length_scales.iter().any(|l| !(l.is_finite() && *l > 0.0))) {
        return Err(BorexError::invalid("report.json: an observation has no fitted length scales"));
    }
    // S0 back from prior.npy = a·S0 + b, then the covariate the GP's mean is built on.
    let (a_end, b_end) = (report.refined.prior_scale.unwrap_or(1.0), report.refined.prior_offset.unwrap_or(0.0));
    if a_end == 0.0 || !a_end.is_finite() {
        return Err(BorexError::invalid("report.json: refined.prior_scale is 0"));
    }
    let s0 = prior.mapv(|v| ((v as f64 - b_end) / a_end) as f32);
    // The detail readout's S0 − S̄0, added (times each step's a) to every step's window map.
    let below_box = detail.then(|| &s0 - &crate::refine::box_average(&grid, s0.view()));
    let covariate = match prior_mean {
        PriorMean::Scaled => s0,
        PriorMean::Fitted => crate::refine::box_average(&grid, s0.view()),
    };
    let cov_slice = covariate.as_standard_layout().to_owned();
    let mut maps = vec![];
    for k in chosen(obs.len(), max) {
        let first = &obs[..k];
        let covs: Vec<f64> = first
            .iter()
            .map(|o| covariate.get([o.row as usize, o.col as usize]).copied().unwrap_or(0.0) as f64)
            .collect();
        let fs: Vec<f64> = first.iter().map(|o| o.f).collect();
        let (a, b) = prior_mean.affine(&covs, &fs);
        let ys: Vec<f64> = fs.iter().zip(&covs).map(|(f, c)| f - (a * c + b)).collect();
        let xs: Vec<f64> = first.iter().flat_map(|o| o.stored).collect();
        let x = ndarray::ArrayView2::from_shape((k, 3), &xs).expect("k×3");
        let gp = Gp::with_length_scales(x, &ys, &first[k - 1].length_scales, alpha)?;
        let mut inputs = gp.posterior_inputs();
        inputs.weights.iter_mut().for_each(|v| *v /= a as f32);
        let mut session = CpuGpSession::new(&grid, cov_slice.as_slice().expect("standard layout"))?;
        session.set_gp(&inputs)?;
        let m = session.mean_map()?;
        let mut map = Array2::from_shape_vec((h, w), m.into_iter().map(|v| (a * v as f64 + b) as f32).collect())
            .map_err(|e| BorexError::invalid(format!("posterior map: {e}")))?;
        if let Some(d) = &below_box {
            map.zip_mut_with(d, |m, d| *m += (a * *d as f64) as f32);
        }
        maps.push((k, map));
    }
    Ok(Steps { maps })
}

#[cfg(test)]
mod tests {
    use super::chosen;

    #[test]
    fn chosen_steps_end_at_the_last_query() {
        assert_eq!(chosen(5, 10), vec![1, 2, 3, 4, 5]);
        let c = chosen(100, 25);
        assert_eq!((c.len(), c[0], *c.last().unwrap()), (25, 4, 100));
        assert!(c.windows(2).all(|w| w[1] > w[0]));
    }
}
