//! `--stride S`: the UCB search over every S-th row and column is a GP
//! session on the coarse grid, with the GP's row and column inputs and their
//! length scales divided by S. Oracle: the full grid's posterior (checked
//! against an f64 GP in the CPU twin's own tests, and against the GPU in
//! gpu_twins.rs) at the points (S·i, S·j), and a brute-force UCB argmax over them.

mod common;

use borex::compute::cpu::CpuKernels;
use borex::compute::GpKernels;
use borex::gp::{CandidateGrid, FitOptions, Gp};
use borex::refine::{coarse_grid, coarse_inputs, coarse_prior};
use ndarray::Array2;

/// A GP fitted to `n` BOREx-like observations, and a prior, on the 224×224 reference grid.
fn fitted(n: usize) -> (CandidateGrid, Array2<f32>, Gp) {
    let mut state = 12345u64;
    let mut next = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let x = Array2::from_shape_fn((n, 3), |(i, j)| match j {
        2 => [30.0, 45.0, 60.0, 75.0][i % 4] + 0.5 * next(),
        _ => 224.0 * next(),
    });
    let y: Vec<f64> = (0..n).map(|_| next() - 0.5).collect();
    let gp = Gp::fit(x.view(), &y, &FitOptions::default()).unwrap();
    let prior = Array2::from_shape_fn((224, 224), |(r, q)| 0.1 * ((r as f32 / 30.0).sin() + (q as f32 / 17.0).cos()));
    (CandidateGrid::reference(224, 224), prior, gp)
}

/// (μ, σ) per candidate.
type Posterior = Vec<(f32, f32)>;

/// (μ, σ) of the full grid at the coarse points, the coarse session's, and its UCB argmax.
fn both(
    k: &dyn GpKernels,
    grid: &CandidateGrid,
    prior: &Array2<f32>,
    gp: &Gp,
    s: u32,
) -> (Posterior, Posterior, (usize, f32)) {
    let mut full = k.session(grid, prior.as_slice().unwrap()).unwrap();
    full.set_gp(&gp.posterior_inputs()).unwrap();
    let (mu, sd) = full.posterior().unwrap();
    let coarse = coarse_grid(grid, s);
    assert_eq!((coarse.height, coarse.width), (224u32.div_ceil(s), 224u32.div_ceil(s)));
    let mut c = k.session(&coarse, coarse_prior(prior.view(), s).as_slice().unwrap()).unwrap();
    c.set_gp(&coarse_inputs(&gp.posterior_inputs(), s)).unwrap();
    let (cmu, csd) = c.posterior().unwrap();
    let mut want = vec![];
    for si in 0..grid.sizes.len() {
        for i in 0..coarse.height {
            for j in 0..coarse.width {
                let f = grid.encode(s * i, s * j, si);
                want.push((mu[f], sd[f]));
            }
        }
    }
    let got: Posterior = cmu.into_iter().zip(csd).collect();
    (want, got, c.ucb_argmax(10.0).unwrap())
}

#[test]
fn the_coarse_search_is_the_full_posterior_subsampled() {
    let (grid, prior, gp) = fitted(30);
    for s in [2u32, 4, 3] {
        let (want, got, (idx, val)) = both(&CpuKernels, &grid, &prior, &gp, s);
        assert_eq!(want.len(), got.len());
        let worst = want.iter().zip(&got).map(|(a, b)| (a.0 - b.0).abs().max((a.1 - b.1).abs())).fold(0.0f32, f32::max);
        // A power of two divides exactly, so every kernel value is the same float.
        let tol = if s.is_power_of_two() { 0.0 } else { 1e-5 };
        assert!(worst <= tol, "stride {s}: max |Δ| {worst} over the coarse points");
        // UCB argmax by brute force over the subsampled full posterior (first index on ties).
        let ucb: Vec<f32> = want.iter().map(|(m, sd)| m + 10.0 * sd).collect();
        let best = ucb.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (i, v)| if *v > b.1 { (i, *v) } else { b });
        assert!(
            idx == best.0 || (ucb[idx] - best.1).abs() <= tol.max(1e-6),
            "stride {s}: argmax {idx} ({val}) vs brute force {best:?}"
        );
    }
}

#[test]
fn the_gpu_coarse_search_matches_the_cpu_full_posterior() {
    let Some(ctx) = common::gpu_or_skip("the_gpu_coarse_search_matches_the_cpu_full_posterior") else { return };
    let gpu = borex::compute::gpu::GpuKernels::new(ctx);
    let (grid, prior, gp) = fitted(30);
    let (want, _, _) = both(&CpuKernels, &grid, &prior, &gp, 2);
    let (_, got, _) = both(&gpu, &grid, &prior, &gp, 2);
    let worst_mu = want.iter().zip(&got).map(|(a, b)| (a.0 - b.0).abs()).fold(0.0f32, f32::max);
    let worst_sd = want.iter().zip(&got).map(|(a, b)| (a.1 - b.1).abs()).fold(0.0f32, f32::max);
    assert!(worst_mu <= 1e-4 && worst_sd <= 1e-3, "GPU coarse vs CPU full: mean {worst_mu}, std {worst_sd}");
}
