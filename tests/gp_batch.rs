//! The GPU GP batch of a lockstep group (`GpuGpBatch`: F loops' posterior,
//! UCB argmax and maps in one pass per stage) against the CPU twin run loop
//! by loop (`CpuGpSession`, itself checked against scikit-learn in
//! tests/gp_sklearn.rs). Three loops over one grid shape with their own
//! priors, observations, length scales and κ, through the paths a lockstep
//! step takes: a first full recompute for all, then in one step an append
//! (loop 0), a full recompute with new length scales (loop 1) and a new κ
//! only (loop 2), then the maps of two loops out of slot order; with every
//! loop's kernel rows in one buffer, in a cache group per loop (as when the
//! rows exceed one binding), and with a cache too small for them
//! (every step recomputed in chunks of candidates).
//! What it catches: a loop reading its neighbour's segment (prior, μ, σ²,
//! kernel rows), a wrong per-loop offset (observations, coefficients, map
//! output), an argmax crossing segment boundaries or returning a batch-wide
//! index (loop 0's prior holds the batch's largest UCB by far).

mod common;

use borex::compute::cpu::CpuGpSession;
use borex::compute::gpu::{GpuContext, GpuGpBatch};
use borex::compute::{BatchStep, GpBatch, GpSession, PosteriorUpdates};
use borex::gp::{CandidateGrid, Gp, PosteriorInputs};
use common::{gpu_or_skip, max_abs_diff};
use ndarray::Array2;

fn lcg(seed: u64) -> impl FnMut() -> f64 {
    let mut s = seed;
    move || {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (s >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn grid() -> CandidateGrid {
    CandidateGrid::new(20, 24, vec![3, 6])
}

/// Loop k's prior: a bump in its own place; loop 0's is tall, so the batch's
/// largest UCB is in loop 0's segment.
fn prior(k: usize) -> Vec<f32> {
    let (cr, cq, height) = [(4.0, 18.0, 5.0), (15.0, 5.0, 0.3), (10.0, 11.0, 0.2)][k];
    (0..20 * 24)
        .map(|i| {
            let (r, q) = ((i / 24) as f32, (i % 24) as f32);
            height * (-((r - cr) * (r - cr) + (q - cq) * (q - cq)) / 20.0).exp() + 0.01 * ((i * 7) % 5) as f32
        })
        .collect()
}

/// Observations of loop k: `n` points drawn from the loop's own generator.
fn observations(k: usize, n: usize) -> (Array2<f64>, Vec<f64>) {
    let mut next = lcg(100 + k as u64);
    let x = Array2::from_shape_fn((n, 3), |(i, j)| match j {
        0 => next() * 20.0,
        1 => next() * 24.0,
        _ => [3.0, 6.0][i % 2] + next() - 0.5,
    });
    let y = (0..n).map(|i| ((i + 3 * k) as f64 * 0.61).sin() * 0.4).collect();
    (x, y)
}

fn gp(k: usize, n: usize, ls: [f64; 3]) -> PosteriorInputs {
    let (x, y) = observations(k, n);
    Gp::with_length_scales(x.view(), &y, &ls, 0.01).unwrap().posterior_inputs()
}

/// Slot `slot` of the batch against loop `slot`'s CPU session (both loaded
/// with the same GP; the CPU one asked for the UCB argmax with `kappa`).
fn compare(
    name: &str,
    batch: &mut GpuGpBatch,
    slot: usize,
    cpu: &mut CpuGpSession,
    gpu_argmax: Option<(usize, f32)>,
    kappa: f32,
) {
    let (mu_a, sd_a) = cpu.posterior().unwrap();
    let (mu_b, sd_b) = batch.posterior(slot).unwrap();
    let (dm, ds) = (max_abs_diff(&mu_a, &mu_b), max_abs_diff(&sd_a, &sd_b));
    assert!(dm <= 1e-4 && ds <= 1e-3, "{name} loop {slot}: mean diff {dm}, std diff {ds}");
    let (ia, va) = cpu.ucb_argmax(kappa).unwrap();
    let (ib, vb) = gpu_argmax.expect("an argmax was asked for");
    assert!(
        ib < mu_b.len(),
        "{name} loop {slot}: argmax {ib} is not an index into the loop's own {} candidates",
        mu_b.len()
    );
    // Same winner, or a near-tie the two paths' rounding may order differently.
    let ucb_b = |i: usize| mu_b[i] + kappa * sd_b[i];
    assert!(ia == ib || (ucb_b(ia) - vb).abs() <= 1e-3, "{name} loop {slot}: argmax {ia} ({va}) vs {ib} ({vb})");
    assert!((va - vb).abs() <= 1e-3, "{name} loop {slot}: UCB max {va} vs {vb}");
}

#[test]
fn three_loops_in_one_batch_match_three_cpu_sessions() {
    let Some(ctx) = gpu_or_skip("three_loops_in_one_batch_match_three_cpu_sessions") else { return };
    let grid = grid();
    let priors: Vec<Vec<f32>> = (0..3).map(prior).collect();
    let views: Vec<&[f32]> = priors.iter().map(Vec::as_slice).collect();
    let row = (grid.len() * 4) as u64;
    three_loops("one cache", GpuGpBatch::new(ctx.clone(), &grid, &views).unwrap(), &priors, true);
    // Room for one loop's 8 rows per cache group: three groups, a loop's rows
    // at its place in its group (at its place in the batch, loop 1's 8th row
    // would fall past its group's buffer).
    three_loops(
        "three cache groups",
        GpuGpBatch::new(ctx.clone(), &grid, &views).unwrap().with_cache_bytes(8 * row).with_rows(8),
        &priors,
        true,
    );
    // Room for 4 rows per loop: 5 to 8 observations are recomputed in chunks.
    three_loops("chunked", GpuGpBatch::new(ctx, &grid, &views).unwrap().with_cache_bytes(3 * 4 * row), &priors, false);
}

/// The three steps of the test on `batch`; `cached`: appends are appends.
fn three_loops(name: &str, mut batch: GpuGpBatch, priors: &[Vec<f32>], cached: bool) {
    let grid = grid();
    let mut cpu: Vec<CpuGpSession> = priors.iter().map(|p| CpuGpSession::new(&grid, p).unwrap()).collect();

    // Step 1: every loop's first GP (full recompute), each with its own n, length scales and κ.
    let first = [gp(0, 5, [4.0, 5.0, 3.0]), gp(1, 7, [6.0, 3.0, 5.0]), gp(2, 4, [3.0, 3.0, 2.0])];
    let kappas = [2.0f32, 3.0, 1.5];
    let steps: Vec<BatchStep> = (0..3).map(|k| BatchStep { slot: k, gp: &first[k], kappa: Some(kappas[k]) }).collect();
    let out = batch.step(&steps, &[]).unwrap();
    assert_eq!(out.argmax.len(), 3);
    for k in 0..3 {
        cpu[k].set_gp(&first[k]).unwrap();
        compare(&format!("{name}, first step"), &mut batch, k, &mut cpu[k], out.argmax[k], kappas[k]);
    }
    // The loops' winners differ: one loop's result copied to another would not pass.
    assert_ne!(out.argmax[0].unwrap().0, out.argmax[1].unwrap().0);
    // Loop 0's UCB maximum is the batch's largest; the others still find their own.
    assert!(out.argmax[0].unwrap().1 > 2.0 * out.argmax[1].unwrap().1.max(out.argmax[2].unwrap().1));

    // Step 2, listed out of slot order: loop 2 a new κ only, loop 0 one more
    // observation with the same length scales (append), loop 1 new length scales (full).
    let second = [gp(0, 6, [4.0, 5.0, 3.0]), gp(1, 8, [5.0, 4.0, 6.0])];
    let kappas = [2.5f32, 1.0, 4.0];
    let steps = [
        BatchStep { slot: 2, gp: &first[2], kappa: Some(kappas[2]) },
        BatchStep { slot: 0, gp: &second[0], kappa: Some(kappas[0]) },
        BatchStep { slot: 1, gp: &second[1], kappa: Some(kappas[1]) },
    ];
    let out = batch.step(&steps, &[]).unwrap();
    cpu[0].set_gp(&second[0]).unwrap();
    cpu[1].set_gp(&second[1]).unwrap();
    for (e, k) in [2, 0, 1].into_iter().enumerate() {
        compare(&format!("{name}, second step"), &mut batch, k, &mut cpu[k], out.argmax[e], kappas[k]);
    }
    let appended = if cached {
        PosteriorUpdates { incremental: 1, full: 1 }
    } else {
        PosteriorUpdates { incremental: 0, full: 2 }
    };
    assert_eq!(batch.updates(0), appended, "{name}: loop 0 appended");
    assert_eq!(batch.updates(1), PosteriorUpdates { incremental: 0, full: 2 }, "{name}: loop 1 recomputed");
    assert_eq!(batch.updates(2), PosteriorUpdates { incremental: 0, full: 1 }, "{name}: loop 2 only reweighted");
    if cached {
        assert_eq!((batch.updates(0), batch.updates(1)), (cpu[0].updates(), cpu[1].updates()));
    }

    // The maps of loops 2 and 0, in that order, with loop 1 stepping (no argmax) alongside.
    let out = batch.step(&[BatchStep { slot: 1, gp: &second[1], kappa: None }], &[2, 0]).unwrap();
    assert_eq!(out.argmax, vec![None], "{name}");
    assert_eq!(out.maps.len(), 2);
    for (map, k) in out.maps.iter().zip([2, 0]) {
        let want = cpu[k].mean_map().unwrap();
        assert_eq!(map.len(), 20 * 24);
        let d = max_abs_diff(&want, map);
        assert!(d <= 1e-4, "{name}: map of loop {k}: diff {d}");
    }
}

/// A lockstep step is one submission and one readback whatever F is, with
/// every loop appending (the steady state) or recomputing.
#[test]
fn a_batch_step_is_one_submission_and_one_readback() {
    if gpu_or_skip("a_batch_step_is_one_submission_and_one_readback").is_none() {
        return;
    }
    // A context of its own: other tests' work on the shared one would count.
    let ctx = std::sync::Arc::new(GpuContext::new().unwrap());
    let grid = grid();
    let row = (grid.len() * 4) as u64;
    // One cache, or (the last) a cache group per loop: still one submission.
    for (f, cache_bytes) in [(1usize, 1 << 30), (3, 1 << 30), (3, 8 * row)] {
        let priors: Vec<Vec<f32>> = (0..f).map(prior).collect();
        let views: Vec<&[f32]> = priors.iter().map(Vec::as_slice).collect();
        let mut batch = GpuGpBatch::new(ctx.clone(), &grid, &views).unwrap().with_cache_bytes(cache_bytes).with_rows(8);
        for n in 4..7 {
            let gps: Vec<PosteriorInputs> = (0..f).map(|k| gp(k, n, [4.0, 5.0, 3.0])).collect();
            let steps: Vec<BatchStep> =
                gps.iter().enumerate().map(|(k, g)| BatchStep { slot: k, gp: g, kappa: Some(2.0) }).collect();
            let before = ctx.counters();
            let last = n == 6;
            let out = batch.step(&steps, if last { &[0] } else { &[] }).unwrap();
            let used = ctx.counters() - before;
            assert_eq!((used.submits, used.readbacks), (1, 1), "F = {f}, cache {cache_bytes} B, n = {n}");
            assert_eq!(out.argmax.iter().flatten().count(), f);
            assert_eq!(out.maps.len(), last as usize);
        }
        // n = 4 was a full recompute, 5 and 6 appends.
        assert_eq!(batch.updates(f - 1), PosteriorUpdates { incremental: 2, full: 1 });
    }
}
