//! The incremental posterior (one appended observation, unchanged length
//! scales) against a from-scratch recompute, at every iteration of a real
//! 30-query refine, on the CPU twin and on the GPU path. The reference for
//! each iteration is a fresh session given the same GP: it has nothing cached,
//! so it can only recompute.

mod common;

use borex::compute::cpu::CpuKernels;
use borex::compute::gpu::GpuKernels;
use borex::compute::{GpKernels, GpSession, MapGrid, PosteriorUpdates};
use borex::error::Result;
use borex::gp::{CandidateGrid, PosteriorInputs};
use borex::model::{Classifier, ModelOptions, Scorer};
use borex::refine::{refine, RefineConfig};
use ndarray::{Array2, Array3};
use std::sync::{Arc, Mutex};

/// Worst differences seen, per quantity, and how many iterations were checked.
#[derive(Debug, Default)]
struct Seen {
    checks: usize,
    mu: f32,
    var: f32,
    ucb: f32,
    map: f32,
    main: PosteriorUpdates,
}

struct Checked {
    inner: Arc<dyn GpKernels>,
    seen: Arc<Mutex<Seen>>,
}

struct CheckedSession {
    inner: Arc<dyn GpKernels>,
    grid: CandidateGrid,
    prior: Vec<f32>,
    main: Box<dyn GpSession>,
    reference: Option<Box<dyn GpSession>>,
    seen: Arc<Mutex<Seen>>,
}

impl GpKernels for Checked {
    fn session(&self, grid: &CandidateGrid, prior: &[f32]) -> Result<Box<dyn GpSession>> {
        Ok(Box::new(CheckedSession {
            inner: self.inner.clone(),
            grid: grid.clone(),
            prior: prior.to_vec(),
            main: self.inner.session(grid, prior)?,
            reference: None,
            seen: self.seen.clone(),
        }))
    }

    fn map_on_grid(&self, grid: &MapGrid, gp: &PosteriorInputs) -> Result<Vec<f32>> {
        self.inner.map_on_grid(grid, gp)
    }
}

impl CheckedSession {
    fn reference(&mut self) -> &mut Box<dyn GpSession> {
        self.reference.as_mut().expect("set_gp first")
    }
}

impl GpSession for CheckedSession {
    fn set_gp(&mut self, gp: &PosteriorInputs) -> Result<()> {
        self.main.set_gp(gp)?;
        let mut fresh = self.inner.session(&self.grid, &self.prior)?;
        fresh.set_gp(gp)?;
        self.reference = Some(fresh);
        Ok(())
    }

    fn ucb_argmax(&mut self, kappa: f32) -> Result<(usize, f32)> {
        let (mu, sigma) = self.main.posterior()?;
        let (mu_ref, sigma_ref) = self.reference().posterior()?;
        let best = self.main.ucb_argmax(kappa)?;
        let best_ref = self.reference().ucb_argmax(kappa)?;
        let full = self.reference().updates();
        assert_eq!(full, PosteriorUpdates { incremental: 0, full: 1 }, "the reference must recompute");
        let mut seen = self.seen.lock().unwrap();
        seen.checks += 1;
        seen.mu = seen.mu.max(common::max_abs_diff(&mu, &mu_ref));
        // σ² rather than σ: near an observation σ² ≈ 0 and the square root magnifies rounding.
        let var = |s: &[f32]| s.iter().map(|v| v * v).collect::<Vec<_>>();
        seen.var = seen.var.max(common::max_abs_diff(&var(&sigma), &var(&sigma_ref)));
        // The argmax may differ only between candidates whose UCB ties up to rounding.
        let ucb = |i: usize, m: &[f32], s: &[f32]| m[i] + kappa * s[i];
        seen.ucb = seen.ucb.max((best.1 - best_ref.1).abs()).max((ucb(best.0, &mu_ref, &sigma_ref) - best_ref.1).abs());
        Ok(best)
    }

    fn posterior(&mut self) -> Result<(Vec<f32>, Vec<f32>)> {
        self.main.posterior()
    }

    fn mean_map(&mut self) -> Result<Vec<f32>> {
        let map = self.main.mean_map()?;
        let map_ref = self.reference().mean_map()?;
        let mut seen = self.seen.lock().unwrap();
        seen.checks += 1;
        seen.map = seen.map.max(common::max_abs_diff(&map, &map_ref));
        seen.main = self.main.updates();
        Ok(map)
    }

    fn updates(&self) -> PosteriorUpdates {
        self.main.updates()
    }
}

/// A 30-query refine of a 32×40 image through the region model, each
/// iteration's posterior checked against a recompute.
fn refine_checked(kernels: Arc<dyn GpKernels>, refit: bool) -> (Seen, PosteriorUpdates) {
    let model = Classifier::load(&ModelOptions::new(common::fixture("region_hinders_0.onnx"))).unwrap();
    let scorer = Scorer::new(&model, &CpuKernels, 8);
    // A deterministic texture so that every box changes the region's mean differently.
    let image = Array3::from_shape_fn((3, 32, 40), |(c, r, q)| (((r * 7 + q * 13 + c * 5) % 17) as f32) / 17.0);
    let prior = Array2::from_shape_fn((32, 40), |(r, q)| 1.0 + ((r * 3 + q) % 11) as f32 / 11.0);
    let cfg = RefineConfig { iters: 30, sizes: Some(vec![3, 5, 8]), refit, ..RefineConfig::default() };
    let seen = Arc::new(Mutex::new(Seen::default()));
    let checked = Checked { inner: kernels, seen: seen.clone() };
    let refined = refine(&scorer, &checked, image.view(), 0, prior.view(), &cfg, &borex::progress::NoProgress).unwrap();
    drop(checked);
    let seen = Arc::try_unwrap(seen).unwrap().into_inner().unwrap();
    assert_eq!(seen.checks, 30, "29 acquisitions and the final map, each checked");
    assert_eq!(refined.posterior_updates, seen.main);
    (seen, refined.posterior_updates)
}

fn assert_close(name: &str, seen: &Seen) {
    eprintln!("{name}: {seen:?}");
    // f32 rounding (the maps are O(1)); a wrong row, weight or stale cache is off by far more.
    assert!(seen.mu < 1e-5, "{name}: μ differs by {}", seen.mu);
    assert!(seen.var < 1e-5, "{name}: σ² differs by {}", seen.var);
    assert!(seen.ucb < 1e-4, "{name}: UCB maximum differs by {}", seen.ucb);
    assert!(seen.map < 1e-5, "{name}: final map differs by {}", seen.map);
}

#[test]
fn cpu_incremental_posterior_equals_full_recompute() {
    // Fixed length scales: every iteration after the first can append.
    let (seen, updates) = refine_checked(Arc::new(CpuKernels), false);
    assert_close("cpu, fixed length scales", &seen);
    assert_eq!(updates, PosteriorUpdates { incremental: 29, full: 1 });
    // Refitted length scales: appends where they stay put, recomputes where they move.
    let (seen, updates) = refine_checked(Arc::new(CpuKernels), true);
    assert_close("cpu, refitted", &seen);
    assert_eq!(updates.incremental + updates.full, 30);
    assert!(updates.full >= 1, "{updates:?}");
}

#[test]
fn gpu_incremental_posterior_equals_full_recompute() {
    let Some(ctx) = common::gpu_or_skip("gpu_incremental_posterior_equals_full_recompute") else { return };
    let (seen, updates) = refine_checked(Arc::new(GpuKernels::new(ctx.clone())), false);
    assert_close("gpu, fixed length scales", &seen);
    assert_eq!(updates, PosteriorUpdates { incremental: 29, full: 1 });
    let (seen, updates) = refine_checked(Arc::new(GpuKernels::new(ctx)), true);
    assert_close("gpu, refitted", &seen);
    assert_eq!(updates.incremental + updates.full, 30);
}

#[test]
fn report_counts_the_posterior_paths() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let image = common::asset(borex::paths::sample_image("chelsea.png"));
    let run = common::run_borex(
        &[
            "--device",
            "cpu",
            "-q",
            "refine",
            image.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--iters",
            "6",
            "--no-metrics",
            "--fixed-length-scales",
        ],
        &[],
    );
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    // Fixed length scales: only the first query recomputes.
    assert_eq!(r["posterior_updates"], serde_json::json!({"incremental": 5, "full": 1}));
}
