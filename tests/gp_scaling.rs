//! The GP stages past the old 128-observation limit of the GPU posterior: the
//! GPU path against its CPU twin with 200 observations (posterior, UCB argmax,
//! final map, the map on an arbitrary grid), with kernel rows cached and with
//! the chunked recompute a too-small cache falls back to. The CPU twin itself
//! is checked against the f64 GP here too.

mod common;

use borex::compute::cpu::{CpuGpSession, CpuKernels};
use borex::compute::gpu::{GpuGpSession, GpuKernels};
use borex::compute::{GpKernels, GpSession, MapGrid, PosteriorUpdates};
use borex::gp::{CandidateGrid, Gp, PosteriorInputs};
use common::max_abs_diff;
use ndarray::{array, Array2};

const N: usize = 200;

/// 200 observations spread over a 30×36 grid with three box sizes, and a prior.
fn problem() -> (CandidateGrid, Vec<f32>, Gp) {
    let grid = CandidateGrid::new(30, 36, vec![3, 6, 9]);
    let mut s = 7u64;
    let mut next = || {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let x = Array2::from_shape_fn((N, 3), |(i, j)| match j {
        0 => next() * 30.0,
        1 => next() * 36.0,
        _ => [3.0, 6.0, 9.0][i % 3] + next() - 0.5,
    });
    let y: Vec<f64> = (0..N).map(|i| ((i as f64) * 0.37).sin() * 0.5).collect();
    let gp = Gp::with_length_scales(x.view(), &y, &[5.0, 6.0, 4.0], 0.01).unwrap();
    let prior = (0..grid.pixels()).map(|i| ((i * 31) % 17) as f32 / 170.0).collect();
    (grid, prior, gp)
}

fn check(name: &str, a: &mut dyn GpSession, b: &mut dyn GpSession, inputs: &PosteriorInputs) {
    a.set_gp(inputs).unwrap();
    b.set_gp(inputs).unwrap();
    let (mu_a, sd_a) = a.posterior().unwrap();
    let (mu_b, sd_b) = b.posterior().unwrap();
    let var = |s: &[f32]| s.iter().map(|v| v * v).collect::<Vec<_>>();
    let (dm, dv) = (max_abs_diff(&mu_a, &mu_b), max_abs_diff(&var(&sd_a), &var(&sd_b)));
    eprintln!("{name}: μ diff {dm}, σ² diff {dv}");
    assert!(dm <= 1e-4 && dv <= 1e-4, "{name}: μ diff {dm}, σ² diff {dv}");
    let (ia, va) = a.ucb_argmax(3.0).unwrap();
    let (ib, vb) = b.ucb_argmax(3.0).unwrap();
    let ucb_b = |i: usize| mu_b[i] + 3.0 * sd_b[i];
    assert!(ia == ib || (ucb_b(ia) - vb).abs() <= 1e-3, "{name}: argmax {ia} ({va}) vs {ib} ({vb})");
    assert!((va - vb).abs() <= 1e-3, "{name}: UCB max {va} vs {vb}");
    let d = max_abs_diff(&a.mean_map().unwrap(), &b.mean_map().unwrap());
    assert!(d <= 1e-4, "{name}: map diff {d}");
}

#[test]
fn cpu_twin_with_200_observations_matches_the_f64_gp() {
    let (grid, prior, gp) = problem();
    let mut s = CpuGpSession::new(&grid, &prior).unwrap();
    s.set_gp(&gp.posterior_inputs()).unwrap();
    let (mu, sd) = s.posterior().unwrap();
    for idx in [0, 517, 1800, grid.len() - 1] {
        let (r, q, si) = grid.decode(idx);
        let (m, d) = gp.predict(array![[r as f64, q as f64, grid.sizes[si] as f64]].view());
        let p = prior[r as usize * 36 + q as usize];
        assert!((mu[idx] - (m[0] as f32 + p)).abs() < 1e-3, "μ at {idx}: {} vs {}", mu[idx], m[0] as f32 + p);
        assert!((sd[idx].powi(2) - (d[0] * d[0]) as f32).abs() < 1e-3, "σ at {idx}: {} vs {}", sd[idx], d[0]);
    }
    // No cache: the same numbers by the transient-block path.
    let mut t = CpuGpSession::new(&grid, &prior).unwrap().with_cache_bytes(0);
    check("cpu cached vs cpu uncached", &mut s, &mut t, &gp.posterior_inputs());
}

#[test]
fn gpu_with_200_observations_matches_the_cpu_twin() {
    let Some(ctx) = common::gpu_or_skip("gpu_with_200_observations_matches_the_cpu_twin") else { return };
    let (grid, prior, gp) = problem();
    let inputs = gp.posterior_inputs();
    let mut cpu = CpuGpSession::new(&grid, &prior).unwrap();
    let mut gpu = GpuGpSession::new(ctx.clone(), &grid, &prior).unwrap();
    check("gpu cached", &mut cpu, &mut gpu, &inputs);
    // A cache too small for 200 rows: the grid is recomputed in chunks of 500 candidates.
    let mut cpu = CpuGpSession::new(&grid, &prior).unwrap();
    let mut chunked = GpuGpSession::new(ctx.clone(), &grid, &prior).unwrap().with_cache_bytes(4 * 500 * N as u64);
    check("gpu chunked", &mut cpu, &mut chunked, &inputs);
    assert_eq!(chunked.updates(), PosteriorUpdates { incremental: 0, full: 1 });

    // The map on an arbitrary grid (the full-resolution path) with 200 observations.
    let map_grid = MapGrid {
        prior: &prior,
        prior_hw: (30, 36),
        rows: (0..45).map(|r| r as f32 * 0.66).collect(),
        cols: (0..50).map(|c| c as f32 * 0.72).collect(),
        sizes: vec![3.0, 6.0, 9.0],
        windows: vec![4, 8, 12],
    };
    let a = CpuKernels.map_on_grid(&map_grid, &inputs).unwrap();
    let b = GpuKernels::new(ctx).map_on_grid(&map_grid, &inputs).unwrap();
    let d = max_abs_diff(&a, &b);
    assert!(d <= 1e-4, "map on grid: {d}");
}
