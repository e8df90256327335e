//! Clip mode's GP over a space-time candidate grid (5-D inputs: row, column,
//! size, centre frame, temporal half-width) against scikit-learn's
//! GaussianProcessRegressor with an anisotropic Matérn 3/2 and a brute-force
//! numpy clip map (tests/fixtures/gp_sklearn_time.json, made by
//! scripts/make_gp_time_fixture.py): the length-scale fit, the posterior mean
//! and std at every candidate and the T×H×W map, on the CPU twin and on the
//! GPU kernels, and the GPU session against the CPU one step by step
//! (full recompute, incremental append, UCB argmax).

mod common;

use borex::compute::cpu::CpuKernels;
use borex::compute::gpu::GpuKernels;
use borex::compute::GpKernels;
use borex::gp::{CandidateGrid, FitOptions, Gp, TimeAxis};
use common::{gpu_or_skip, max_abs_diff};
use ndarray::Array2;
use serde_json::Value;

struct Case {
    x: Array2<f64>,
    y: Vec<f64>,
    length_scales: Vec<f64>,
    lml: f64,
    prior: Vec<f32>,
    mean: Vec<f32>,
    std: Vec<f32>,
    map: Vec<f32>,
}

fn load() -> (CandidateGrid, FitOptions, Vec<Case>) {
    let text = std::fs::read_to_string(common::fixture("gp_sklearn_time.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let g = &v["grid"];
    let u = |k: &str| g[k].as_u64().unwrap() as u32;
    let list = |k: &str| -> Vec<u32> { serde_json::from_value(g[k].clone()).unwrap() };
    let grid = CandidateGrid {
        time: Some(TimeAxis { frames: u("frames"), spans: list("spans"), unit: g["unit"].as_f64().unwrap() as f32 }),
        ..CandidateGrid::new(u("height"), u("width"), list("sizes"))
    };
    let bounds: Vec<f64> = serde_json::from_value(g["bounds"].clone()).unwrap();
    let opts = FitOptions {
        alpha: g["alpha"].as_f64().unwrap(),
        init: serde_json::from_value(g["init"].clone()).unwrap(),
        bounds: (bounds[0], bounds[1]),
        optimise: true,
    };
    let f64s = |c: &Value, k: &str| -> Vec<f64> { serde_json::from_value(c[k].clone()).unwrap() };
    let f32s = |c: &Value, k: &str| -> Vec<f32> { f64s(c, k).into_iter().map(|v| v as f32).collect() };
    let cases = v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let rows: Vec<Vec<f64>> = serde_json::from_value(c["x"].clone()).unwrap();
            Case {
                x: Array2::from_shape_fn((rows.len(), 5), |(i, j)| rows[i][j]),
                y: f64s(c, "y"),
                length_scales: f64s(c, "length_scales"),
                lml: c["log_marginal_likelihood"].as_f64().unwrap(),
                prior: f32s(c, "prior"),
                mean: f32s(c, "mean"),
                std: f32s(c, "std"),
                map: f32s(c, "map"),
            }
        })
        .collect();
    (grid, opts, cases)
}

/// Posterior (μ without the prior, σ) and the clip map of `kernels` at sklearn's length scales.
fn evaluate(kernels: &dyn GpKernels, grid: &CandidateGrid, c: &Case) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let gp = Gp::with_length_scales(c.x.view(), &c.y, &c.length_scales, 0.01).unwrap();
    let mut s = kernels.session(grid, &c.prior).unwrap();
    s.set_gp(&gp.posterior_inputs()).unwrap();
    let (mu, sigma) = s.posterior().unwrap();
    let hw = grid.pixels();
    let mu = mu.iter().enumerate().map(|(i, m)| m - c.prior[grid.decode_time(i).0 as usize * hw + i % hw]).collect();
    (mu, sigma, s.mean_map().unwrap())
}

fn check(path: &str, grid: &CandidateGrid, c: &Case, (mu, sigma, map): (Vec<f32>, Vec<f32>, Vec<f32>)) {
    let (dm, ds, dmap) = (max_abs_diff(&mu, &c.mean), max_abs_diff(&sigma, &c.std), max_abs_diff(&map, &c.map));
    assert!(dm < 2e-4 && ds < 2e-3 && dmap < 2e-4, "{path}: μ {dm}, σ {ds}, map {dmap} off sklearn/numpy");
    assert_eq!(map.len(), grid.time.as_ref().unwrap().frames as usize * grid.pixels());
}

#[test]
fn fit_matches_scikit_learn_in_five_dimensions() {
    let (_, opts, cases) = load();
    assert_eq!(cases.len(), 4);
    for (k, c) in cases.iter().enumerate() {
        let gp = Gp::fit(c.x.view(), &c.y, &opts).unwrap();
        assert_eq!(gp.fit_failure(), None);
        assert_eq!(gp.length_scales().len(), 5);
        let close = gp.length_scales().iter().zip(&c.length_scales).all(|(a, b)| (a - b).abs() <= 1e-3 * b);
        // Where the likelihood is flat the optimisers may stop apart; borex's optimum is then no worse.
        assert!(
            close || gp.log_marginal_likelihood() >= c.lml - 1e-6 * c.lml.abs(),
            "case {k}: {:?} vs sklearn {:?}",
            gp.length_scales(),
            c.length_scales
        );
        assert!(
            gp.log_marginal_likelihood() >= c.lml - 1e-6 * c.lml.abs(),
            "case {k}: LML {} below sklearn's {}",
            gp.log_marginal_likelihood(),
            c.lml
        );
        let at = Gp::with_length_scales(c.x.view(), &c.y, &c.length_scales, opts.alpha).unwrap();
        assert!(
            (at.log_marginal_likelihood() - c.lml).abs() < 1e-7 * c.lml.abs().max(1.0),
            "case {k}: LML at sklearn's length scales"
        );
    }
}

#[test]
fn cpu_posterior_and_clip_map_match_scikit_learn() {
    let (grid, _, cases) = load();
    for c in &cases {
        check("cpu", &grid, c, evaluate(&CpuKernels, &grid, c));
    }
}

#[test]
fn gpu_posterior_and_clip_map_match_scikit_learn_and_the_cpu_twin() {
    let Some(ctx) = gpu_or_skip("gpu_posterior_and_clip_map_match_scikit_learn_and_the_cpu_twin") else { return };
    let gpu = GpuKernels::new(ctx);
    let (grid, _, cases) = load();
    for c in &cases {
        check("gpu", &grid, c, evaluate(&gpu, &grid, c));
    }
    // Step by step on one case: a full recompute, then an append (same length
    // scales, one more observation), each compared with the CPU twin.
    let c = &cases[3];
    let n = c.y.len();
    let (mut a, mut b) = (CpuKernels.session(&grid, &c.prior).unwrap(), gpu.session(&grid, &c.prior).unwrap());
    for m in [n - 1, n] {
        let gp = Gp::with_length_scales(c.x.slice(ndarray::s![..m, ..]), &c.y[..m], &c.length_scales, 0.01).unwrap();
        a.set_gp(&gp.posterior_inputs()).unwrap();
        b.set_gp(&gp.posterior_inputs()).unwrap();
        let ((ia, va), (ib, vb)) = (a.ucb_argmax(10.0).unwrap(), b.ucb_argmax(10.0).unwrap());
        let ((ma, sa), (mb, sb)) = (a.posterior().unwrap(), b.posterior().unwrap());
        assert!(max_abs_diff(&ma, &mb) < 1e-5 && max_abs_diff(&sa, &sb) < 1e-3, "{m} observations");
        assert!((va - vb).abs() < 1e-3, "UCB max {va} vs {vb}");
        // The argmax may differ only between near-ties.
        let ucb = |i: usize| ma[i] + 10.0 * sa[i];
        assert!(ia == ib || (ucb(ia) - ucb(ib)).abs() < 1e-3, "argmax {ia} vs {ib}");
        assert!(max_abs_diff(&a.mean_map().unwrap(), &b.mean_map().unwrap()) < 1e-5);
    }
    assert_eq!((a.updates().incremental, b.updates().incremental), (1, 1));
}

#[test]
fn a_clip_grid_refuses_three_dimensional_gp_inputs() {
    let (grid, _, cases) = load();
    let x = Array2::from_shape_vec((1, 3), vec![1.0, 2.0, 2.0]).unwrap();
    let gp = Gp::with_length_scales(x.view(), &[0.5], &[3.0; 3], 0.01).unwrap();
    let mut s = CpuKernels.session(&grid, &cases[0].prior).unwrap();
    let err = s.set_gp(&gp.posterior_inputs()).expect_err("3-D inputs on a 5-D grid").to_string();
    assert!(err.contains("5-D GP inputs"), "{err}");
    // The prior has one plane per frame.
    assert!(CpuKernels
        .session(&grid, &cases[0].prior[..grid.pixels()])
        .err()
        .unwrap()
        .to_string()
        .contains("prior has"));
}
