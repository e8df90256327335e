//! The lockstep driver: F BOREx loops (images, or frames of a video) advance
//! together. Each step gathers the 2F boxes of the F pending queries into one
//! model batch, then runs the F loops' GP stages: on the CPU twin each loop's
//! fit and posterior in parallel (rayon); on the GPU path the fits in
//! parallel on the host, then the posterior, UCB argmax (and the final map of
//! loops that end) of every loop in one device pass per stage
//! ([`crate::compute::GpBatch`]: one submission and one readback per step).
//! On the GPU path the step's boxes are masked the same way: the loops'
//! images and substrates stay on the device for the group's life
//! ([`crate::compute::MaskStore`]) and every box of a step is masked in one
//! submission, read back once, straight into the model batch's order.
//! A loop's result does not depend on its neighbours: its queries, jitter
//! draws and GP are its own, so with the same seed it equals
//! [`super::refine`] on that input alone, provided the model scores a row the
//! same whatever else is in its batch (checked in tests/lockstep.rs).

use super::{RefineConfig, RefineLoop, Refined, SearchResult, SearchStep};
use crate::compute::{BatchStep, GpBatch, GpKernels, ImageKernels, MaskStore, StoredBox};
use crate::error::{BorexError, Result};
use crate::model::Scorer;
use ndarray::{ArrayView2, ArrayView3, Axis};
use rayon::prelude::*;
use std::time::{Duration, Instant};

/// One loop of a lockstep group.
#[derive(Clone, Copy)]
pub struct LoopSpec<'a> {
    /// The model input, C×H×W.
    pub image: ArrayView3<'a, f32>,
    /// The explained class.
    pub class: usize,
    /// The prior map S0, H×W.
    pub prior: ArrayView2<'a, f32>,
    /// The loop's settings.
    pub config: &'a RefineConfig,
}

/// Where the GP stages of a group run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpSchedule {
    /// All loops at once on the rayon pool (the CPU twin).
    Parallel,
    /// The GPU path: fits on the rayon pool, then the posterior stages of
    /// all loops in the kernels' [`GpBatch`]es, one device step each; one
    /// session per loop, one after another, where the kernels have no batch.
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
    progress: &dyn crate::progress::Progress,
) -> Result<Vec<Result<Refined>>> {
    let mut group = Group::new(loops.len());
    match (schedule, batch_plan(gp_kernels, loops)) {
        (GpSchedule::Sequential, Some(plan)) => run_batched(&mut group, scorer, gp_kernels, loops, &plan, progress)?,
        _ => run_sessions(&mut group, scorer, gp_kernels, loops, schedule, progress)?,
    }
    Ok(group.results.into_iter().map(|r| r.expect("every loop ends with a result")).collect())
}

/// Results so far and each loop's share of the model time.
struct Group {
    results: Vec<Option<Result<Refined>>>,
    model_share: Vec<Duration>,
}

impl Group {
    fn new(f: usize) -> Self {
        Self { results: (0..f).map(|_| None).collect(), model_share: vec![Duration::ZERO; f] }
    }

    fn end(&mut self, i: usize, r: Result<Refined>) {
        self.results[i] = Some(r.map(|mut refined| {
            refined.timings.model = self.model_share[i];
            refined
        }));
    }

    /// One model batch of the pending queries' inputs (up to 2F), in loop
    /// order; each loop's class probabilities come back. The inputs are
    /// masked in the group's [`GroupMasks`] (one device call), or loop by
    /// loop: with `parallel` (the CPU twin) on the rayon pool, where one
    /// after another they were a sixth of the loop's non-model time.
    fn score<'l, 'x: 'l>(
        &mut self,
        scorer: &Scorer,
        loops: &[LoopSpec],
        active: impl ExactSizeIterator<Item = (usize, &'l RefineLoop<'x>)>,
        masking: Masking,
    ) -> Result<Vec<Vec<f32>>> {
        let tm = Instant::now();
        let (ids, lps): (Vec<usize>, Vec<&RefineLoop>) = active.unzip();
        let (batch, counts) = match masking {
            Masking::Store(store) => store.batch(&ids, &lps)?,
            Masking::PerLoop { parallel } => {
                let jobs: Vec<_> =
                    lps.iter().map(|lp| lp.pending_job().expect("running loops have a pending query")).collect();
                let kernels = scorer.kernels;
                let parts: Vec<ndarray::Array4<f32>> = if parallel {
                    jobs.par_iter().map(|job| job(kernels)).collect::<Result<_>>()?
                } else {
                    jobs.iter().map(|job| job(kernels)).collect::<Result<_>>()?
                };
                (gather(&parts, parallel)?, parts.iter().map(|p| p.dim().0).collect())
            }
        };
        let probs = scorer.score_batch(batch.view())?;
        let share = tm.elapsed() / ids.len() as u32;
        let mut observed = Vec::with_capacity(ids.len());
        let mut row = 0;
        for (i, n) in ids.into_iter().zip(counts) {
            let column = crate::model::class_column(&probs, loops[i].class)?;
            observed.push(column[row..row + n].to_vec());
            row += n;
            self.model_share[i] += share;
        }
        Ok(observed)
    }
}

/// How a step's inputs are masked.
enum Masking<'s> {
    /// Every loop's boxes in one call of the group's store.
    Store(&'s GroupMasks),
    /// Loop by loop, through the image kernels.
    PerLoop { parallel: bool },
}

/// The group's images and substrates held where the masking runs (uploaded
/// once, for the group's life), and where each loop's sit in the store.
struct GroupMasks {
    store: Box<dyn MaskStore>,
    /// By loop index: (its image, its first substrate) in the store.
    slots: Vec<Option<(usize, usize)>>,
}

impl GroupMasks {
    /// `None` where the kernels keep no store (the CPU twin) or it does not fit.
    fn new<'l, 'x: 'l>(
        kernels: &dyn ImageKernels,
        f: usize,
        loops: impl Iterator<Item = (usize, &'l RefineLoop<'x>)>,
    ) -> Result<Option<Self>> {
        let mut slots = vec![None; f];
        let (mut images, mut substrates) = (vec![], vec![]);
        for (i, lp) in loops {
            let (image, subs) = lp.mask_sources();
            slots[i] = Some((images.len(), substrates.len()));
            images.push(image);
            substrates.extend(subs);
        }
        Ok(kernels.mask_store(&images, &substrates)?.map(|store| Self { store, slots }))
    }

    /// The pending boxes of loops `ids` masked in one call, in loop order
    /// (inside side first), and how many inputs each loop has.
    fn batch(&self, ids: &[usize], lps: &[&RefineLoop]) -> Result<(ndarray::Array4<f32>, Vec<usize>)> {
        let mut boxes = vec![];
        let mut counts = vec![];
        for (&i, lp) in ids.iter().zip(lps) {
            let (image, first) = self.slots[i].expect("every loop of the group has a slot");
            let pending = lp.pending_boxes().expect("running loops have a pending query");
            counts.push(pending.len());
            boxes.extend(pending.into_iter().map(|(s, mask)| StoredBox { image, substrate: first + s, mask }));
        }
        Ok((self.store.apply(&boxes)?, counts))
    }
}

/// Each loop with its own GP session: in parallel (CPU twin) or in order.
fn run_sessions(
    group: &mut Group,
    scorer: &Scorer,
    gp_kernels: &dyn GpKernels,
    loops: &[LoopSpec],
    schedule: GpSchedule,
    progress: &dyn crate::progress::Progress,
) -> Result<()> {
    let mut active: Vec<(usize, RefineLoop)> = vec![];
    for (i, spec) in loops.iter().enumerate() {
        match RefineLoop::new(scorer, gp_kernels, spec.image, spec.class, spec.prior, spec.config) {
            Ok(lp) => active.push((i, lp)),
            Err(e) => group.end(i, Err(e)),
        }
    }
    while !active.is_empty() {
        // Loops with every query observed leave the group.
        let (done, running): (Vec<_>, Vec<_>) = active.into_iter().partition(|(_, lp)| lp.is_done());
        active = running;
        for (i, r) in run_gp(done, schedule, |lp| lp.finish(gp_kernels)) {
            group.end(i, r);
        }
        if active.is_empty() {
            break;
        }
        let observed = group.score(
            scorer,
            loops,
            active.iter().map(|(i, lp)| (*i, lp)),
            Masking::PerLoop { parallel: schedule == GpSchedule::Parallel },
        )?;
        let with_p: Vec<_> = active.into_iter().zip(observed).map(|((i, lp), p)| (i, (lp, p))).collect();
        let stepped = run_gp(with_p, schedule, |(mut lp, scores)| lp.observe_scores(&scores).map(|_| lp));
        progress.inc(stepped.len() as u64);
        active = vec![];
        for (i, r) in stepped {
            match r {
                Ok(lp) => active.push((i, lp)),
                Err(e) => group.end(i, Err(e)),
            }
        }
        active.sort_by_key(|(i, _)| *i);
    }
    Ok(())
}

/// Loops (indices into the group) that share one device batch: loops whose
/// search grids have one shape, at most as many as one batch holds (split
/// evenly). `None` when the kernels have no batch, or a loop's grid is too
/// large for one.
fn batch_plan(gp_kernels: &dyn GpKernels, loops: &[LoopSpec]) -> Option<Vec<Vec<usize>>> {
    let mut by_grid: Vec<(crate::gp::CandidateGrid, Vec<usize>)> = vec![];
    for (i, spec) in loops.iter().enumerate() {
        let (_, h, w) = spec.image.dim();
        let grid = spec.config.search_grid(h as u32, w as u32);
        match by_grid.iter_mut().find(|(g, _)| *g == grid) {
            Some((_, members)) => members.push(i),
            None => by_grid.push((grid, vec![i])),
        }
    }
    let mut plan = vec![];
    for (grid, members) in by_grid {
        let cap = gp_kernels.batch_capacity(&grid);
        if cap == 0 {
            return None;
        }
        let parts = members.len().div_ceil(cap);
        let per = members.len().div_ceil(parts);
        plan.extend(members.chunks(per).map(<[usize]>::to_vec));
    }
    Some(plan)
}

/// A loop of the batched path: its index in the group, its batch and slot.
struct Member<'a> {
    i: usize,
    lp: RefineLoop<'a>,
    batch: usize,
    slot: usize,
}

/// The GPU path: every loop detached from a session of its own; per step the
/// fits on the rayon pool, then one device step per batch.
fn run_batched<'a>(
    group: &mut Group,
    scorer: &Scorer,
    gp_kernels: &dyn GpKernels,
    loops: &[LoopSpec<'a>],
    plan: &[Vec<usize>],
    progress: &dyn crate::progress::Progress,
) -> Result<()> {
    let mut batches: Vec<Box<dyn GpBatch>> = vec![];
    let mut active: Vec<Member<'a>> = vec![];
    for members in plan {
        let mut made = vec![];
        for &i in members {
            let spec = &loops[i];
            match RefineLoop::detached(scorer, spec.image, spec.class, spec.prior, spec.config) {
                Ok(lp) => made.push((i, lp)),
                Err(e) => group.end(i, Err(e)),
            }
        }
        let Some((_, first)) = made.first() else { continue };
        let priors: Vec<Vec<f32>> = made.iter().map(|(_, lp)| lp.search_prior()).collect();
        let views: Vec<&[f32]> = priors.iter().map(Vec::as_slice).collect();
        let rows = made.iter().map(|(i, _)| loops[*i].config.iters).max().unwrap_or(1);
        match gp_kernels.batch(first.search_grid(), &views, rows) {
            Ok(b) => {
                let batch = batches.len();
                batches.push(b);
                active.extend(made.into_iter().enumerate().map(|(slot, (i, lp))| Member { i, lp, batch, slot }));
            }
            Err(e) => {
                for (i, _) in made {
                    group.end(i, Err(e.duplicate()));
                }
            }
        }
    }
    let store = GroupMasks::new(scorer.kernels, loops.len(), active.iter().map(|m| (m.i, &m.lp)))?;
    let masking = || match &store {
        Some(s) => Masking::Store(s),
        None => Masking::PerLoop { parallel: false },
    };
    while !active.is_empty() {
        let observed = group.score(scorer, loops, active.iter().map(|m| (m.i, &m.lp)), masking())?;
        // The GP fits, on the host, in parallel.
        let fitted: Vec<(Member, Result<SearchStep>)> = active
            .into_par_iter()
            .zip(observed)
            .map(|(mut m, scores)| {
                let step = m.lp.fit_scores(&scores);
                (m, step)
            })
            .collect();
        progress.inc(fitted.len() as u64);
        let mut stepping: Vec<(Member, SearchStep)> = vec![];
        for (m, step) in fitted {
            match step {
                Ok(s) => stepping.push((m, s)),
                Err(e) => group.end(m.i, Err(e)),
            }
        }
        // One device step per batch: posterior, argmax, and the maps of the loops that end.
        active = vec![];
        for (b, batch) in batches.iter_mut().enumerate() {
            let (mine, rest): (Vec<_>, Vec<_>) = stepping.into_iter().partition(|(m, _)| m.batch == b);
            stepping = rest;
            if mine.is_empty() {
                continue;
            }
            let steps: Vec<BatchStep> =
                mine.iter().map(|(m, s)| BatchStep { slot: m.slot, gp: &s.inputs, kappa: s.kappa }).collect();
            let maps: Vec<usize> = mine
                .iter()
                .filter(|(m, s)| s.kappa.is_none() && m.lp.wants_search_map())
                .map(|(m, _)| m.slot)
                .collect();
            let tp = Instant::now();
            let out = batch.step(&steps, &maps);
            let share = tp.elapsed() / mine.len() as u32;
            let mut out = match out {
                Ok(o) => o,
                Err(e) => {
                    for (m, _) in mine {
                        group.end(m.i, Err(e.duplicate()));
                    }
                    continue;
                }
            };
            let mut maps = maps.into_iter().zip(out.maps.drain(..));
            for ((mut m, _), next) in mine.into_iter().zip(out.argmax) {
                if let Err(e) = m.lp.choose(next.map(|(idx, _)| idx), share) {
                    group.end(m.i, Err(e));
                } else if m.lp.is_done() {
                    let map = m.lp.wants_search_map().then(|| maps.next().expect("a map per ending loop").1);
                    let r = m.lp.finish_batched(gp_kernels, SearchResult { map, updates: batch.updates(m.slot) });
                    group.end(m.i, r);
                } else {
                    active.push(m);
                }
            }
        }
        active.sort_by_key(|m| m.i);
    }
    Ok(())
}

/// The parts (N_k × C × H × W each) stacked along the batch axis; with
/// `parallel` the copies run on the rayon pool.
fn gather(parts: &[ndarray::Array4<f32>], parallel: bool) -> Result<ndarray::Array4<f32>> {
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    let stack =
        || ndarray::concatenate(Axis(0), &views).map_err(|e| BorexError::Runtime(format!("lockstep batch: {e}")));
    let Some(first) = parts.first() else { return stack() };
    let (_, c, h, w) = first.dim();
    // Mismatched parts: concatenate says what is wrong.
    if !parallel || parts.iter().any(|p| p.dim() != (p.dim().0, c, h, w) || !p.is_standard_layout()) {
        return stack();
    }
    let n: usize = parts.iter().map(|p| p.dim().0).sum();
    let mut batch = ndarray::Array4::<f32>::uninit((n, c, h, w));
    let mut rest = batch.as_slice_mut().expect("fresh array is contiguous");
    let mut dst = Vec::with_capacity(parts.len());
    for p in parts {
        let (d, r) = rest.split_at_mut(p.len());
        dst.push(d);
        rest = r;
    }
    dst.into_par_iter().zip(parts).for_each(|(d, p)| {
        for (d, s) in d.iter_mut().zip(p.as_slice().expect("standard layout")) {
            d.write(*s);
        }
    });
    // SAFETY: the parts have the batch's C×H×W and together its N rows, and
    // each was copied in full into its own run of the batch.
    Ok(unsafe { batch.assume_init() })
}

/// `f` on every item, on the rayon pool or in order.
fn run_gp<T: Send, R: Send>(
    items: Vec<(usize, T)>,
    schedule: GpSchedule,
    f: impl Fn(T) -> R + Sync + Send,
) -> Vec<(usize, R)> {
    match schedule {
        GpSchedule::Parallel => items.into_par_iter().map(|(i, t)| (i, f(t))).collect(),
        GpSchedule::Sequential => items.into_iter().map(|(i, t)| (i, f(t))).collect(),
    }
}
