//! One BO iteration's posterior + UCB + argmax over the 200,704 candidates of
//! the reference grid, n = 10, 25, 50 observations, CPU twin vs GPU; the final
//! map (posterior mean + window averaging); and the GP length-scale fit alone.

use borex::compute::cpu::CpuKernels;
use borex::compute::gpu::{GpuContext, GpuKernels};
use borex::compute::GpKernels;
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
    for n in [10usize, 25, 50] {
        let (x, y) = observations(n);
        let gp = Gp::fit(x.view(), &y, &FitOptions::default()).unwrap().posterior_inputs();
        for (name, k) in &backends {
            let mut session = k.session(&grid, &prior).unwrap();
            session.set_gp(&gp).unwrap();
            g.bench_with_input(BenchmarkId::new(format!("ucb_argmax/{name}"), n), &n, |b, _| b.iter(|| session.ucb_argmax(10.0).unwrap()));
        }
    }
    let (x, y) = observations(50);
    let gp = Gp::fit(x.view(), &y, &FitOptions::default()).unwrap().posterior_inputs();
    for (name, k) in &backends {
        let mut session = k.session(&grid, &prior).unwrap();
        session.set_gp(&gp).unwrap();
        g.bench_function(format!("final_map_n50/{name}"), |b| b.iter(|| session.mean_map().unwrap()));
    }
    g.finish();

    let mut g = c.benchmark_group("gp_fit");
    for n in [10usize, 25, 50] {
        let (x, y) = observations(n);
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| b.iter(|| Gp::fit(x.view(), &y, &FitOptions::default()).unwrap()));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
