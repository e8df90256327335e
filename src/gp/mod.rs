//! Gaussian-process regression with an anisotropic Matérn ν=3/2 kernel, as the
//! BOREx reference uses it through scikit-learn: unit signal variance, `alpha`
//! added to the diagonal, zero mean (the prior map is subtracted beforehand),
//! length scales fitted by maximising the log marginal likelihood with L-BFGS-B
//! over log length scales within bounds.

mod grid;

pub use grid::{CandidateGrid, TimeAxis};

use crate::error::{BorexError, Result};
use nalgebra::{Cholesky, DMatrix, DVector, Dyn};
use ndarray::{Array1, Array2, ArrayView2};

const SQRT3: f64 = 1.732_050_807_568_877_2;

/// Matérn 3/2 between two points with per-dimension length scales.
#[inline]
pub fn matern32(a: &[f64], b: &[f64], length_scales: &[f64]) -> f64 {
    matern32_parts(a, b, length_scales).0
}

/// Matérn 3/2 and its factor exp(−√3 r), which the LML gradient reuses.
#[inline]
fn matern32_parts(a: &[f64], b: &[f64], length_scales: &[f64]) -> (f64, f64) {
    let d2: f64 = a.iter().zip(b).zip(length_scales).map(|((x, y), l)| ((x - y) / l).powi(2)).sum();
    let t = SQRT3 * d2.sqrt();
    let e = (-t).exp();
    ((1.0 + t) * e, e)
}

/// How the length scales are chosen.
#[derive(Debug, Clone, PartialEq)]
pub struct FitOptions {
    /// Added to the kernel diagonal (observation noise / jitter).
    pub alpha: f64,
    /// Starting point of every fit (the reference restarts from here each time).
    pub init: Vec<f64>,
    /// Bounds of every length scale.
    pub bounds: (f64, f64),
    /// When false the length scales stay at `init`.
    pub optimise: bool,
}

impl Default for FitOptions {
    /// The BOREx reference: start [12, 12, 10], bounds [1, 20], alpha 0.01.
    fn default() -> Self {
        Self { alpha: 0.01, init: vec![12.0, 12.0, 10.0], bounds: (1.0, 20.0), optimise: true }
    }
}

/// A fitted GP: training inputs, Cholesky factor of K + αI and K⁻¹y.
#[derive(Debug, Clone)]
pub struct Gp {
    x: Array2<f64>,
    length_scales: Vec<f64>,
    chol: Cholesky<f64, Dyn>,
    weights: DVector<f64>,
    lml: f64,
    /// Why the length-scale optimisation failed, when it did (the fit then
    /// kept the starting length scales).
    fit_failure: Option<String>,
}

fn kernel_matrix(x: ArrayView2<f64>, ls: &[f64], alpha: f64) -> DMatrix<f64> {
    kernel_matrix_parts(x, ls, alpha).0
}

/// K + αI and exp(−√3 r) of every pair. Each pair is computed once: the
/// kernel is symmetric bit for bit, as (a − b)² = (b − a)² exactly.
fn kernel_matrix_parts(x: ArrayView2<f64>, ls: &[f64], alpha: f64) -> (DMatrix<f64>, DMatrix<f64>) {
    let n = x.nrows();
    let (mut k, mut e) = (DMatrix::zeros(n, n), DMatrix::zeros(n, n));
    for i in 0..n {
        let a = x.row(i);
        let a = a.as_slice().expect("standard layout");
        for j in 0..=i {
            let (kij, eij) = matern32_parts(a, x.row(j).as_slice().expect("standard layout"), ls);
            (k[(i, j)], k[(j, i)], e[(i, j)], e[(j, i)]) = (kij, kij, eij, eij);
        }
        k[(i, i)] += alpha;
    }
    (k, e)
}

/// Log marginal likelihood and its gradient with respect to log length scales.
/// Returns `None` when K + αI is not positive definite.
pub fn log_marginal_likelihood(x: ArrayView2<f64>, y: &[f64], log_ls: &[f64], alpha: f64) -> Option<(f64, Vec<f64>)> {
    let x = x.as_standard_layout();
    let n = x.nrows();
    let d = x.ncols();
    let ls: Vec<f64> = log_ls.iter().map(|t| t.exp()).collect();
    let (kernel, exps) = kernel_matrix_parts(x.view(), &ls, alpha);
    let chol = Cholesky::new(kernel)?;
    let yv = DVector::from_column_slice(y);
    let a = chol.solve(&yv);
    let log_det: f64 = chol.l_dirty().diagonal().iter().map(|v| v.ln()).sum();
    let lml = -0.5 * yv.dot(&a) - log_det - 0.5 * n as f64 * (2.0 * std::f64::consts::PI).ln();
    // ∂LML/∂θ_j = ½ tr((aaᵀ − K⁻¹) ∂K/∂θ_j),  ∂K/∂θ_j = 3 (Δ_j/ℓ_j)² exp(−√3 r).
    let k_inv = chol.inverse();
    let mut grad = vec![0.0; d];
    for i in 0..n {
        for k in 0..n {
            let w = a[i] * a[k] - k_inv[(i, k)];
            if i == k || w == 0.0 {
                continue;
            }
            let mut parts = [0.0f64; 8];
            for j in 0..d {
                parts[j] = ((x[[i, j]] - x[[k, j]]) / ls[j]).powi(2);
            }
            let e = 3.0 * exps[(i, k)];
            for j in 0..d {
                grad[j] += 0.5 * w * e * parts[j];
            }
        }
    }
    Some((lml, grad))
}

impl Gp {
    /// Fit to `x` (n×d) and `y` (n), choosing length scales per `opts`.
    pub fn fit(x: ArrayView2<f64>, y: &[f64], opts: &FitOptions) -> Result<Self> {
        let d = x.ncols();
        if x.nrows() != y.len() || x.nrows() == 0 {
            return Err(BorexError::invalid(format!(
                "GP fit needs matching, non-empty inputs ({} rows, {} targets)",
                x.nrows(),
                y.len()
            )));
        }
        if opts.init.len() != d {
            return Err(BorexError::invalid(format!("{} initial length scales for {d}-D inputs", opts.init.len())));
        }
        let (ls, failure) = if opts.optimise { fit_length_scales(x, y, opts) } else { (opts.init.clone(), None) };
        Ok(Self { fit_failure: failure, ..Self::with_length_scales(x, y, &ls, opts.alpha)? })
    }

    /// The GP with fixed length scales.
    pub fn with_length_scales(x: ArrayView2<f64>, y: &[f64], ls: &[f64], alpha: f64) -> Result<Self> {
        let x = x.as_standard_layout().to_owned();
        let chol = Cholesky::new(kernel_matrix(x.view(), ls, alpha)).ok_or_else(|| {
            BorexError::invalid("GP kernel matrix is not positive definite (duplicate inputs with alpha 0?)")
        })?;
        let yv = DVector::from_column_slice(y);
        let weights = chol.solve(&yv);
        let log_det: f64 = chol.l_dirty().diagonal().iter().map(|v| v.ln()).sum();
        let lml = -0.5 * yv.dot(&weights) - log_det - 0.5 * y.len() as f64 * (2.0 * std::f64::consts::PI).ln();
        Ok(Self { x, length_scales: ls.to_vec(), chol, weights, lml, fit_failure: None })
    }

    /// `Some(reason)` when [`Gp::fit`]'s L-BFGS-B run failed and the starting
    /// length scales were kept instead of fitted ones.
    pub fn fit_failure(&self) -> Option<&str> {
        self.fit_failure.as_deref()
    }

    /// The fitted length scales (row, column, size).
    pub fn length_scales(&self) -> &[f64] {
        &self.length_scales
    }

    /// The log marginal likelihood at the fitted length scales.
    pub fn log_marginal_likelihood(&self) -> f64 {
        self.lml
    }

    /// The training inputs, n × 3.
    pub fn inputs(&self) -> ArrayView2<'_, f64> {
        self.x.view()
    }

    /// K⁻¹y: the posterior mean is `k(x, X) · weights`.
    pub fn weights(&self) -> &[f64] {
        self.weights.as_slice()
    }

    /// (K + αI)⁻¹, row-major n×n: the posterior variance is `1 − kᵀ K⁻¹ k`.
    pub fn k_inverse(&self) -> Vec<f64> {
        let inv = self.chol.inverse();
        let n = inv.nrows();
        (0..n * n).map(|i| inv[(i / n, i % n)]).collect()
    }

    /// The lower Cholesky factor L of K + αI, row-major n×n.
    pub fn cholesky_lower(&self) -> Vec<f64> {
        let l = self.chol.l();
        let n = l.nrows();
        (0..n * n).map(|i| l[(i / n, i % n)]).collect()
    }

    /// What the candidate-grid kernels need, in f32: inputs, length scales,
    /// K⁻¹y and L⁻¹ (so σ² = 1 − |L⁻¹k|² is a product, not a solve).
    pub fn posterior_inputs(&self) -> PosteriorInputs {
        let n = self.x.nrows();
        let l_inv = self.chol.l().solve_lower_triangular(&DMatrix::identity(n, n)).expect("L has a positive diagonal");
        PosteriorInputs {
            n,
            x: self.x.iter().map(|v| *v as f32).collect(),
            length_scales: self.length_scales.iter().map(|v| *v as f32).collect(),
            weights: self.weights.iter().map(|v| *v as f32).collect(),
            l_inv: (0..n * n).map(|i| l_inv[(i / n, i % n)] as f32).collect(),
        }
    }

    /// Posterior mean and standard deviation at each row of `xs`.
    pub fn predict(&self, xs: ArrayView2<f64>) -> (Array1<f64>, Array1<f64>) {
        let n = self.x.nrows();
        let mut mean = Array1::zeros(xs.nrows());
        let mut std = Array1::zeros(xs.nrows());
        for (t, row) in xs.rows().into_iter().enumerate() {
            let row = row.to_vec();
            let k = DVector::from_fn(n, |i, _| matern32(&row, self.x.row(i).as_slice().unwrap(), &self.length_scales));
            mean[t] = k.dot(&self.weights);
            let v = self.chol.l_dirty().solve_lower_triangular(&k).expect("L has a positive diagonal");
            std[t] = (1.0 - v.norm_squared()).max(0.0).sqrt();
        }
        (mean, std)
    }
}

/// A fitted GP in the form the candidate-grid kernels take (f32, row-major).
#[derive(Debug, Clone, PartialEq)]
pub struct PosteriorInputs {
    /// Number of observations.
    pub n: usize,
    /// Training inputs, n × 3 (row, column, half-width).
    pub x: Vec<f32>,
    /// Length scales (row, column, size).
    pub length_scales: Vec<f32>,
    /// (K + αI)⁻¹ y.
    pub weights: Vec<f32>,
    /// L⁻¹ with L the lower Cholesky factor of K + αI, n × n.
    pub l_inv: Vec<f32>,
}

/// Maximise the LML over log length scales with L-BFGS-B (scipy's defaults as
/// scikit-learn uses them: m = 10, factr = 1e7, pgtol = 1e-5). When the
/// optimiser fails, the (clamped) starting point is returned with the reason.
fn fit_length_scales(x: ArrayView2<f64>, y: &[f64], opts: &FitOptions) -> (Vec<f64>, Option<String>) {
    use rcompat_lbfgsb::{optim_lbfgsb_with_gradient, Bounds, OptimControl};
    let d = x.ncols();
    let (lo, hi) = (opts.bounds.0.ln(), opts.bounds.1.ln());
    let theta0: Vec<f64> = opts.init.iter().map(|l| l.ln().clamp(lo, hi)).collect();
    // One evaluation serves both the value and the gradient callbacks.
    let cache = std::cell::RefCell::new((Vec::<f64>::new(), f64::INFINITY, vec![0.0; d]));
    let eval = |t: &[f64]| {
        let mut c = cache.borrow_mut();
        if c.0 != t {
            let (f, g) = match log_marginal_likelihood(x, y, t, opts.alpha) {
                Some((lml, g)) => (-lml, g.into_iter().map(|v| -v).collect()),
                None => (f64::INFINITY, vec![0.0; d]),
            };
            *c = (t.to_vec(), f, g);
        }
        (c.1, c.2.clone())
    };
    let control =
        OptimControl { maxit: 15000, factr: 1e7, pgtol: 1e-5, lmm: 10, ..OptimControl::default_for_dimension(d) };
    let bounds = Bounds::new(vec![lo; d], vec![hi; d]).expect("valid bounds");
    let result = optim_lbfgsb_with_gradient(theta0.clone(), bounds, |t| eval(t).0, |t| eval(t).1, control);
    let (theta, failure) = match result {
        Ok(r) if r.value.is_finite() => (r.par, None),
        Ok(r) => (theta0, Some(format!("non-finite log marginal likelihood {}", -r.value))),
        Err(e) => (theta0, Some(e.to_string())),
    };
    (theta.iter().map(|t| t.exp().clamp(opts.bounds.0, opts.bounds.1)).collect(), failure)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn gradient_matches_finite_differences() {
        let x = array![[0.0, 0.0, 30.0], [5.0, 3.0, 45.0], [12.0, -4.0, 30.0], [2.0, 9.0, 60.0], [20.0, 1.0, 75.0]];
        let y = [0.3, -0.1, 0.5, 0.0, -0.4];
        let t = [2.0f64.ln(), 7.0f64.ln(), 11.0f64.ln()];
        let (_, g) = log_marginal_likelihood(x.view(), &y, &t, 0.01).unwrap();
        for j in 0..3 {
            let h = 1e-6;
            let (mut tp, mut tm) = (t, t);
            tp[j] += h;
            tm[j] -= h;
            let fd = (log_marginal_likelihood(x.view(), &y, &tp, 0.01).unwrap().0
                - log_marginal_likelihood(x.view(), &y, &tm, 0.01).unwrap().0)
                / (2.0 * h);
            assert!((fd - g[j]).abs() < 1e-5 * (1.0 + fd.abs()), "dim {j}: fd {fd} vs analytic {}", g[j]);
        }
    }

    #[test]
    fn a_failed_fit_is_reported_and_keeps_the_start() {
        let x = array![[0.0, 0.0, 30.0], [5.0, 3.0, 45.0], [12.0, -4.0, 30.0]];
        let opts = FitOptions::default();
        let ok = Gp::fit(x.view(), &[0.3, -0.1, 0.5], &opts).unwrap();
        assert_eq!(ok.fit_failure(), None);
        // y² overflows: the LML is −∞ at every length scale, so L-BFGS-B cannot start.
        let bad = Gp::fit(x.view(), &[1e200, -1e200, 1e200], &opts).unwrap();
        assert!(bad.fit_failure().is_some_and(|w| !w.is_empty()), "{:?}", bad.fit_failure());
        assert!(
            bad.length_scales().iter().zip([12.0, 12.0, 10.0]).all(|(a, b)| (a - b).abs() < 1e-12),
            "{:?}",
            bad.length_scales()
        );
    }

    #[test]
    fn posterior_interpolates_observations() {
        let x = array![[0.0, 0.0, 30.0], [10.0, 0.0, 30.0]];
        let gp = Gp::with_length_scales(x.view(), &[1.0, -1.0], &[5.0, 5.0, 5.0], 1e-8).unwrap();
        let (m, s) = gp.predict(x.view());
        assert!((m[0] - 1.0).abs() < 1e-6 && (m[1] + 1.0).abs() < 1e-6);
        assert!(s[0] < 1e-3 && s[1] < 1e-3);
        let (m, s) = gp.predict(array![[500.0, 500.0, 30.0]].view());
        assert!(m[0].abs() < 1e-9 && (s[0] - 1.0).abs() < 1e-9, "far away: prior mean 0, std 1");
    }
}
