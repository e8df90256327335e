//! One BO iteration's posterior + UCB + argmax over the 200,704 candidates of
//! the reference grid, n = 10, 25, 50 observations, CPU twin vs GPU, recomputed
//! from scratch and as an incremental update (one observation appended, same
//! length scales); the final map (posterior mean + window averaging); and the
//! GP length-scale fit alone. `lockstep_gp_step`: one lockstep step's GP
//! stages for F = 8 loops (each appends one observation, then its UCB
//! argmax) on the GPU, as one `GpuGpBatch` step against eight sessions one
//! after another, on a small grid (where per-dispatch costs show) and on
//! the stride-2 search grid of a 224² input.

use borex::compute::cpu::CpuKernels;
use borex::compute::gpu::{GpuContext, GpuGpBatch, GpuKernels};
use borex::compute::{BatchStep, GpBatch, GpKernels, GpSession};
use borex::gp::PosteriorInputs;
use borex::gp::{CandidateGrid, FitOptions, Gp};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ndarray::Array2;

/// n BOREx-like observations: spread over the image, all four sizes, jittered.
fn observations(n: usize) -> (Array2<f64>, Vec<f64>) {
    let mut s = 12345u64;
    let mut next = || {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let x = Array2::from_shape_fn((n, 3), |(i, j)| match j {
        2 => [30.0, 45.0, 60.0, 75.0][i % 4] + next() - 0.5,
        _ => next() * 224.0,
    });
    let y = (0..n).map(|_| next() - 0.5).collect();
    (x, y)
}

fn bench(c: &mut Criterion) {
    let grid = CandidateGrid::reference(224, 224);
    let prior: Vec<f32> = (0..grid.pixels()).map(|i| ((i * 7919) % 1000) as f32 / 1e4).collect();
    let mut backends: Vec<(String, Box<dyn GpKernels>)> = vec![("cpu".into(), Box::new(CpuKernels))];
    match GpuContext::shared() {
        Ok(ctx) => backends.push((format!("gpu ({})", ctx.adapter_info().name), Box::new(GpuKernels::new(ctx)))),
        Err(e) => eprintln!("no GPU adapter, benchmarking the CPU path only: {e}"),
    }
    let mut g = c.benchmark_group("bo_iteration_200704");
    g.sample_size(10);
    let fixed = |n: usize, ls: &[f64]| {
        let (x, y) = observations(n);
        Gp::with_length_scales(x.view(), &y, ls, 0.01).unwrap().posterior_inputs()
    };
    for n in [10usize, 25, 50] {
        // Two length-scale settings taken in turn: every iteration recomputes.
        let gps = [fixed(n, &[20.0; 3]), fixed(n, &[12.0, 12.0, 10.0])];
        let (before, after) = (fixed(n - 1, &[20.0; 3]), fixed(n, &[20.0; 3]));
        for (name, k) in &backends {
            let mut session = k.session(&grid, &prior).unwrap();
            let mut t = 0;
            g.bench_with_input(BenchmarkId::new(format!("full/{name}"), n), &n, |b, _| {
                b.iter(|| {
                    t += 1;
                    session.set_gp(&gps[t % 2]).unwrap();
                    session.ucb_argmax(10.0).unwrap()
                })
            });
            g.bench_with_input(BenchmarkId::new(format!("append/{name}"), n), &n, |b, _| {
                b.iter_batched_ref(
                    || {
                        let mut s = k.session(&grid, &prior).unwrap();
                        s.set_gp(&before).unwrap();
                        s.ucb_argmax(10.0).unwrap();
                        s
                    },
                    |s| {
                        s.set_gp(&after).unwrap();
                        s.ucb_argmax(10.0).unwrap()
                    },
                    criterion::BatchSize::PerIteration,
                )
            });
        }
    }
    let (x, y) = observations(50);
    let gp = Gp::fit(x.view(), &y, &FitOptions::default()).unwrap().posterior_inputs();
    let gps = [gp, fixed(50, &[12.0, 12.0, 10.0])];
    for (name, k) in &backends {
        let mut session = k.session(&grid, &prior).unwrap();
        let mut t = 0;
        // μ from scratch (alternating GPs) + window averaging.
        g.bench_function(format!("final_map_n50/{name}"), |b| {
            b.iter(|| {
                t += 1;
                session.set_gp(&gps[t % 2]).unwrap();
                session.mean_map().unwrap()
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("gp_fit");
    for n in [10usize, 25, 50] {
        let (x, y) = observations(n);
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| Gp::fit(x.view(), &y, &FitOptions::default()).unwrap())
        });
    }
    g.finish();
}

/// Loop k's GP over `grid`: `n` observations of its own, fixed length scales.
fn loop_gp(grid: &CandidateGrid, k: usize, n: usize) -> PosteriorInputs {
    let (x, y) = observations(n + 7 * k);
    let (h, w, s) = (grid.height as f64 / 224.0, grid.width as f64 / 224.0, grid.sizes[0] as f64 / 30.0);
    let x = Array2::from_shape_fn((n, 3), |(i, j)| x[[i + 7 * k, j]] * [h, w, s][j]);
    Gp::with_length_scales(x.view(), &y[7 * k..], &[12.0 * h, 12.0 * w, 10.0 * s], 0.01).unwrap().posterior_inputs()
}

fn lockstep(c: &mut Criterion) {
    let Ok(ctx) = GpuContext::shared() else {
        eprintln!("no GPU adapter: no lockstep_gp_step bench");
        return;
    };
    const F: usize = 8;
    // 14 → 15 observations: within a session's first 16-row kernel cache (no grow in the timed step).
    const N: usize = 15;
    let mut g = c.benchmark_group("lockstep_gp_step");
    g.sample_size(10);
    for (name, grid) in [
        ("32x32x2", CandidateGrid::new(32, 32, vec![3, 6])),
        ("112x112x4", CandidateGrid::new(112, 112, vec![15, 22, 30, 37])),
    ] {
        let priors: Vec<Vec<f32>> =
            (0..F).map(|k| (0..grid.pixels()).map(|i| ((i * 7919 + k * 31) % 1000) as f32 / 1e4).collect()).collect();
        let before: Vec<PosteriorInputs> = (0..F).map(|k| loop_gp(&grid, k, N - 1)).collect();
        let after: Vec<PosteriorInputs> = (0..F).map(|k| loop_gp(&grid, k, N)).collect();
        let steps =
            |gps: &[PosteriorInputs]| -> Vec<(usize, PosteriorInputs)> { gps.iter().cloned().enumerate().collect() };
        let (before, after) = (steps(&before), steps(&after));
        g.bench_function(format!("batch/{name}"), |b| {
            b.iter_batched_ref(
                || {
                    let views: Vec<&[f32]> = priors.iter().map(Vec::as_slice).collect();
                    let mut batch = GpuGpBatch::new(ctx.clone(), &grid, &views).unwrap().with_rows(N);
                    let s: Vec<BatchStep> =
                        before.iter().map(|(k, gp)| BatchStep { slot: *k, gp, kappa: Some(10.0) }).collect();
                    batch.step(&s, &[]).unwrap();
                    batch
                },
                |batch| {
                    let s: Vec<BatchStep> =
                        after.iter().map(|(k, gp)| BatchStep { slot: *k, gp, kappa: Some(10.0) }).collect();
                    batch.step(&s, &[]).unwrap()
                },
                criterion::BatchSize::PerIteration,
            )
        });
        g.bench_function(format!("sessions/{name}"), |b| {
            b.iter_batched_ref(
                || {
                    let kernels = GpuKernels::new(ctx.clone());
                    let sessions: Vec<Box<dyn GpSession>> = before
                        .iter()
                        .map(|(k, gp)| {
                            let mut s = kernels.session(&grid, &priors[*k]).unwrap();
                            s.set_gp(gp).unwrap();
                            s.ucb_argmax(10.0).unwrap();
                            s
                        })
                        .collect();
                    sessions
                },
                |sessions| {
                    sessions
                        .iter_mut()
                        .zip(&after)
                        .map(|(s, (_, gp))| {
                            s.set_gp(gp).unwrap();
                            s.ucb_argmax(10.0).unwrap()
                        })
                        .collect::<Vec<_>>()
                },
                criterion::BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench, lockstep);
criterion_main!(benches);
