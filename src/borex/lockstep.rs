//! The lockstep driver: F BOREx loops (images, or frames of a video) advance
//! together. Each step gathers the 2F boxes of the F pending queries into one
//! model batch, then runs the F loops' GP stages (fit, posterior, UCB argmax)
//! in parallel on the CPU twin (rayon), or one after another on the GPU path
//! (each loop keeps its own GPU session). A loop's result does not depend on
//! its neighbours: its queries, jitter draws and GP are its own, so with the
//! same seed it equals [`super::refine`] on that input alone, provided the
//! model scores a row the same whatever else is in its batch (checked in
//! tests/lockstep.rs).

use super::{RefineConfig, RefineLoop, Refined};
use crate::compute::GpKernels;
use crate::error::{BorexError, Result};
use crate::model::Scorer;
use ndarray::{ArrayView2, ArrayView3, Axis};
use rayon::prelude::*;
use std::time::Instant;

/// One loop of a lockstep group.
#[derive(Clone, Copy)]
pub struct LoopSpec<'a> {
    pub image: ArrayView3<'a, f32>,
    pub class: usize,
    pub prior: ArrayView2<'a, f32>,
    pub config: &'a RefineConfig,
}

/// Where the GP stages of a group run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpSchedule {
    /// All loops at once on the rayon pool (the CPU twin).
    Parallel,
    /// One loop after another (the GPU path: one session per loop).
    Sequential,
}

/// Run every loop of `loops` to the end in lockstep. The outer error is a
/// model failure (it stops the whole group); an inner one is that loop's own
/// problem (a bad prior, a failed GP stage), and the other loops carry on.
/// `scorer.batch` should be at least 2F so each step is one model call.
/// Each result's `timings.model` is its share of the group's model time.
pub fn refine_lockstep(
    scorer: &Scorer,
    gp_kernels: &dyn GpKernels,
    loops: &[LoopSpec],
    schedule: GpSchedule,
    progress: &indicatif::ProgressBar,
) -> Result<Vec<Result<Refined>>> {
    let mut results: Vec<Option<Result<Refined>>> = (0..loops.len()).map(|_| None).collect();
    let mut model_share = vec![std::time::Duration::ZERO; loops.len()];
    let mut active: Vec<(usize, RefineLoop)> = vec![];
    for (i, spec) in loops.iter().enumerate() {
        match RefineLoop::new(scorer, gp_kernels, spec.image, spec.class, spec.prior, spec.config) {
            Ok(lp) => active.push((i, lp)),
            Err(e) => results[i] = Some(Err(e)),
        }
    }
    while !active.is_empty() {
        // Loops with every query observed leave the group.
        let (done, running): (Vec<_>, Vec<_>) = active.into_iter().partition(|(_, lp)| lp.is_done());
        active = running;
        let finished = run_gp(done, schedule, |lp| lp.finish(gp_kernels));
        for (i, r) in finished {
            results[i] = Some(r.map(|mut refined| {
                refined.timings.model = model_share[i];
                refined
            }));
        }
        if active.is_empty() {
            break;
        }

        // One batch of the F pending queries' inputs (up to 2F), in loop order.
        let tm = Instant::now();
        let mut parts = Vec::with_capacity(active.len());
        for (_, lp) in &active {
            parts.push(lp.pending_inputs(scorer.kernels)?.expect("running loops have a pending query"));
        }
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        let batch = ndarray::concatenate(Axis(0), &views).map_err(|e| BorexError::Runtime(format!("lockstep batch: {e}")))?;
        let counts: Vec<usize> = parts.iter().map(|p| p.dim().0).collect();
        drop(parts);
        let probs = scorer.score_batch(batch.view())?;
        let share = tm.elapsed() / active.len() as u32;
        let mut observed = Vec::with_capacity(active.len());
        let mut row = 0;
        for ((i, _), n) in active.iter().zip(counts) {
            let column = super::class_column(&probs, loops[*i].class)?;
            observed.push(column[row..row + n].to_vec());
            row += n;
            model_share[*i] += share;
        }

        // GP stages of every running loop.
        let with_p: Vec<_> = active.into_iter().zip(observed).map(|((i, lp), p)| (i, (lp, p))).collect();
        let stepped = run_gp(with_p, schedule, |(mut lp, scores)| lp.observe_scores(&scores).map(|_| lp));
        progress.inc(stepped.len() as u64);
        active = vec![];
        for (i, r) in stepped {
            match r {
                Ok(lp) => active.push((i, lp)),
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        active.sort_by_key(|(i, _)| *i);
    }
    Ok(results.into_iter().map(|r| r.expect("every loop ends with a result")).collect())
}

/// `f` on every item, on the rayon pool or in order.
fn run_gp<T: Send, R: Send>(items: Vec<(usize, T)>, schedule: GpSchedule, f: impl Fn(T) -> R + Sync + Send) -> Vec<(usize, R)> {
    match schedule {
        GpSchedule::Parallel => items.into_par_iter().map(|(i, t)| (i, f(t))).collect(),
        GpSchedule::Sequential => items.into_iter().map(|(i, t)| (i, f(t))).collect(),
    }
}
