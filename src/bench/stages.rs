//! The timed stages of `borex bench`: for each stage and path, a [`Runner`]
//! (an untimed setup and the timed run), built on synthetic, deterministic
//! inputs (boxes, a prior, GP observations) where the stage needs them.

use super::{BenchOptions, BenchPath, Breakdown, Stage};
use crate::compute::gpu::GpuContext;
use crate::compute::{gaussian_kernel_1d, BoxMask, GpKernels, ImageKernels, Keep, Masks, BLUR_KERNEL_SIZE, BLUR_SIGMA};
use crate::error::Result;
use crate::explain::{rise, RiseParams};
use crate::gp::{CandidateGrid, FitOptions, Gp, PosteriorInputs};
use crate::job::{causal_metrics, ms};
use crate::metrics::InsertionStart;
use crate::model::{Classifier, Scorer};
use crate::refine::{refine, RefineConfig};
use ndarray::{s, Array2, Array3, Array4, ArrayView3, Axis};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

pub(super) type Step<'a> = Box<dyn FnMut() -> Result<()> + 'a>;

/// One thing to time: an untimed `setup`, then the timed `run`.
pub(super) struct Runner<'a> {
    pub(super) setup: Step<'a>,
    pub(super) run: Step<'a>,
    /// Work units per run (for the throughput).
    pub(super) units: f64,
    pub(super) unit: &'static str,
    pub(super) note: Option<String>,
    /// Per run (warm-up first), where the time went.
    pub(super) breakdown: Option<Rc<RefCell<Vec<Breakdown>>>>,
}

impl<'a> Runner<'a> {
    fn new(units: f64, unit: &'static str, run: impl FnMut() -> Result<()> + 'a) -> Self {
        Self { setup: Box::new(|| Ok(())), run: Box::new(run), units, unit, note: None, breakdown: None }
    }

    fn note(mut self, note: String) -> Self {
        self.note = Some(note);
        self
    }
}

/// What every stage's runner is built from.
pub(super) struct Ctx<'a> {
    pub(super) model: &'a Classifier,
    pub(super) x: ArrayView3<'a, f32>,
    pub(super) class: usize,
    pub(super) opts: &'a BenchOptions,
    /// The GPU path's context (its submission and readback counters).
    pub(super) gpu: Option<&'a GpuContext>,
}

impl<'a> Ctx<'a> {
    /// The batch sizes of a stage's model calls, in order.
    pub(super) fn plan(&self, stage: Stage) -> Vec<usize> {
        let (h, b) = (self.x.dim().1, self.opts.batch);
        let chunks = |n: usize| (0..n).step_by(b).map(move |s| b.min(n - s));
        match stage {
            Stage::Rise => chunks(self.opts.masks).collect(),
            Stage::Refine => chunks(RiseParams::fast(0).n).chain(std::iter::repeat_n(2, self.opts.iters)).collect(),
            // Deletion and insertion: h + 1 points each (one step per image row's worth of pixels).
            Stage::Insdel => chunks(h + 1).chain(chunks(h + 1)).collect(),
            // Every query of the F loops: the default objective's two inputs each, one call.
            Stage::Video => std::iter::repeat_n(2 * self.opts.lockstep, self.opts.iters).collect(),
            _ => vec![],
        }
    }

    /// ONNX Runtime alone on ready inputs, the same batch sizes as the stage.
    pub(super) fn model_bound(&self, plan: Vec<usize>) -> Runner<'a> {
        let (model, batch) = (self.model, self.opts.batch);
        let biggest = plan.iter().copied().max().unwrap_or(1);
        let ready: Array4<f32> = self
            .x
            .insert_axis(Axis(0))
            .broadcast((biggest, 3, self.x.dim().1, self.x.dim().2))
            .expect("broadcast")
            .to_owned();
        let evaluations: usize = plan.iter().sum();
        Runner::new(evaluations as f64, "evaluations", move || {
            for &b in &plan {
                model.probabilities(ready.slice(s![..b, .., .., ..]), batch)?;
            }
            Ok(())
        })
    }

    /// A single-threaded copy of as many bytes as the stage writes, into a
    /// buffer reused across runs: the floor a memory-bound pass can reach.
    pub(super) fn memcpy(&self, stage: Stage) -> Option<Runner<'a>> {
        let (c, h, w) = self.x.dim();
        let floats = match stage {
            Stage::Masking | Stage::RiseMasks => self.opts.batch * c * h * w,
            Stage::Blur => c * h * w,
            _ => return None,
        };
        let src: Vec<f32> = (0..floats).map(|i| i as f32).collect();
        let mut dst = vec![0.0f32; floats];
        Some(Runner::new(floats as f64 * 4.0, "bytes", move || {
            dst.copy_from_slice(std::hint::black_box(&src));
            std::hint::black_box(&mut dst);
            Ok(())
        }))
    }

    pub(super) fn runner(
        &self,
        stage: Stage,
        path: BenchPath,
        image_k: &'a dyn ImageKernels,
        gp_k: &'a dyn GpKernels,
    ) -> Result<Runner<'a>> {
        let (_, h, w) = self.x.dim();
        let (o, x, seed, model, class) = (self.opts, self.x, self.opts.seed, self.model, self.class);
        Ok(match stage {
            Stage::Masking => {
                let boxes = bench_boxes(o.batch, h as u32, w as u32, seed);
                let zero = Array3::zeros(x.raw_dim());
                Runner::new(o.batch as f64, "masked images", move || {
                    image_k.apply_masks(x, zero.view(), Masks::Boxes(&boxes)).map(drop)
                })
            }
            Stage::Blur => {
                let k = gaussian_kernel_1d(BLUR_KERNEL_SIZE, BLUR_SIGMA);
                Runner::new(1.0, "images", move || image_k.gaussian_blur(x, &k).map(drop))
            }
            Stage::RiseMasks => {
                // The refine's prior (RISE-100, s 8, p 0.3): one batch of masks
                // generated, applied and accumulated, the model left out.
                let params = RiseParams { n: o.masks.max(o.batch), ..RiseParams::fast(seed) };
                let mut session = image_k.rise_session(x, &params, 1)?;
                let weights: Vec<f32> = (0..o.batch).map(|k| (k as f32 + 0.5) / o.batch as f32).collect();
                Runner::new(o.batch as f64, "masks", move || {
                    session.masked(0, o.batch)?;
                    session.accumulate(&weights)
                })
                .note(format!("{} masks, s = {}, p = {}", o.batch, params.s, params.p))
            }
            Stage::Rise => {
                let params = RiseParams { n: o.masks, ..RiseParams::standard(seed) };
                let hidden = crate::progress::NoProgress;
                Runner::new(o.masks as f64, "masks", move || {
                    let scorer = Scorer::new(model, image_k, o.batch);
                    rise(&scorer, x, class, &params, &hidden).map(drop)
                })
                .note(format!("N = {}, s = {}, p = {}", params.n, params.s, params.p))
            }
            Stage::Posterior | Stage::PosteriorAppend => {
                let grid = CandidateGrid::reference(h as u32, w as u32);
                let prior = bench_prior(h, w);
                let session = Rc::new(RefCell::new(gp_k.session(&grid, prior.as_slice().expect("standard layout"))?));
                let n = o.observations;
                // Alternating length scales make every `posterior` run recompute;
                // `posterior-append` primes the session with n − 1 observations first.
                let gps = if stage == Stage::Posterior {
                    [bench_gp(n, &[20.0; 3], h, w, seed)?, bench_gp(n, &[12.0, 12.0, 10.0], h, w, seed)?]
                } else {
                    [bench_gp(n - 1, &[20.0; 3], h, w, seed)?, bench_gp(n, &[20.0; 3], h, w, seed)?]
                };
                let append = stage == Stage::PosteriorAppend;
                let log = Rc::new(RefCell::new(Vec::new()));
                let (primed, taken, gps) = (session.clone(), log.clone(), Rc::new(gps));
                let gps_setup = gps.clone();
                let mut k = 0;
                let mut r = Runner::new(grid.len() as f64, "candidates", move || {
                    k += 1;
                    let mut s = session.borrow_mut();
                    let before = s.updates();
                    s.set_gp(&gps[if append { 1 } else { k % 2 }])?;
                    s.ucb_argmax(10.0)?;
                    // Which path the session took (the CPU twin stops caching past its memory budget).
                    let incremental = s.updates().incremental > before.incremental;
                    taken
                        .borrow_mut()
                        .push(Breakdown::Update { update: if incremental { "incremental" } else { "full" }.into() });
                    Ok(())
                })
                .note(format!("n = {n}, {} candidates", grid.len()));
                if append {
                    r.setup = Box::new(move || {
                        let mut s = primed.borrow_mut();
                        s.set_gp(&gps_setup[0])?;
                        s.ucb_argmax(10.0).map(drop)
                    });
                }
                r.breakdown = Some(log);
                r
            }
            Stage::Fit => {
                let (xs, ys) = bench_observations(o.observations, h, w, seed);
                Runner::new(1.0, "fits", move || Gp::fit(xs.view(), &ys, &FitOptions::default()).map(drop))
                    .note(format!("n = {}; host code on both paths", o.observations))
            }
            Stage::Refine => {
                let cfg = RefineConfig { iters: o.iters, seed, ..RefineConfig::default() };
                let hidden = crate::progress::NoProgress;
                let parts = Rc::new(RefCell::new(Vec::new()));
                let log = parts.clone();
                let mut r = Runner::new(1.0, "images", move || {
                    let scorer = Scorer::new(model, image_k, o.batch);
                    let tp = Instant::now();
                    let prior = rise(&scorer, x, class, &RiseParams::fast(seed), &hidden)?;
                    let (prior_ms, prior_model_ms) = (ms(tp.elapsed()), ms(scorer.elapsed()));
                    let r = refine(&scorer, gp_k, x, class, prior.view(), &cfg, &hidden)?;
                    log.borrow_mut().push(Breakdown::Refine {
                        prior_ms,
                        prior_model_ms,
                        loop_model_ms: ms(r.timings.model),
                        gp_fit_ms: ms(r.timings.gp_fit),
                        posterior_ms: ms(r.timings.posterior),
                        posterior_updates: r.posterior_updates,
                    });
                    Ok(())
                })
                .note(format!("RISE N = 100 prior + {} queries, paper preset, no metrics", o.iters));
                r.breakdown = Some(parts);
                r
            }
            Stage::Insdel => {
                let map = bench_prior(h, w);
                Runner::new(1.0, "maps", move || {
                    let scorer = Scorer::new(model, image_k, o.batch);
                    causal_metrics(&scorer, image_k, x, map.view(), class, &[InsertionStart::Blur]).map(drop)
                })
                .note(format!("2 curves × {} points", h + 1))
            }
            Stage::Video => {
                use crate::refine::lockstep::{refine_lockstep, GpSchedule, LoopSpec};
                let f = o.lockstep;
                let frames: Vec<Array3<f32>> = (0..f).map(|k| pan(x, 4 * k)).collect();
                let prior = bench_prior(h, w);
                let cfg = RefineConfig {
                    iters: o.iters,
                    seed,
                    refit_every: o.refit_every,
                    stride: o.stride,
                    ..RefineConfig::default()
                };
                cfg.validate()?;
                let schedule = if path == BenchPath::Cpu { GpSchedule::Parallel } else { GpSchedule::Sequential };
                let gpu = if path == BenchPath::Gpu { self.gpu } else { None };
                let parts = Rc::new(RefCell::new(Vec::new()));
                let log = parts.clone();
                let mut r = Runner::new(f as f64, "frames", move || {
                    let scorer = Scorer::new(model, image_k, o.batch);
                    let specs: Vec<LoopSpec> = frames
                        .iter()
                        .map(|fr| LoopSpec { image: fr.view(), class, prior: prior.view(), config: &cfg })
                        .collect();
                    let before = gpu.map(GpuContext::counters).unwrap_or_default();
                    let (mut fit, mut posterior) = (Duration::ZERO, Duration::ZERO);
                    for r in refine_lockstep(&scorer, gp_k, &specs, schedule, &crate::progress::NoProgress)? {
                        let r = r?;
                        (fit, posterior) = (fit + r.timings.gp_fit, posterior + r.timings.posterior);
                    }
                    // Device round trips per lockstep step (masking included: one
                    // masking call per loop), and per frame the GP time.
                    let used = gpu.map(GpuContext::counters).unwrap_or_default() - before;
                    let steps = o.iters as f64;
                    log.borrow_mut().push(Breakdown::Video {
                        gpu_submits_per_step: used.submits as f64 / steps,
                        gpu_readbacks_per_step: used.readbacks as f64 / steps,
                        gp_fit_ms_per_frame: ms(fit) / f as f64,
                        posterior_ms_per_frame: ms(posterior) / f as f64,
                    });
                    Ok(())
                })
                .note(format!(
                    "F = {f} frames × {} queries in lockstep, refit every {}, stride {}",
                    o.iters, o.refit_every, o.stride
                ));
                r.breakdown = Some(parts);
                r
            }
        })
    }
}

/// `x` shifted left by `dx` columns, wrapping: a panning camera.
fn pan(x: ArrayView3<f32>, dx: usize) -> Array3<f32> {
    let w = x.dim().2;
    Array3::from_shape_fn(x.raw_dim(), |(c, r, q)| x[[c, r, (q + dx) % w]])
}

/// `count` boxes of the reference sizes at pseudo-random centres, alternately kept and removed.
fn bench_boxes(count: usize, h: u32, w: u32, seed: u64) -> Vec<BoxMask> {
    let grid = CandidateGrid::reference(h, w);
    let mut next = lcg(seed);
    (0..count)
        .map(|i| {
            let (r, q) = ((next() * h as f64) as u32, (next() * w as f64) as u32);
            let keep = if i % 2 == 0 { Keep::Inside } else { Keep::Outside };
            crate::refine::candidate_box(r, q, grid.sizes[i % grid.sizes.len()], h, w, keep)
        })
        .collect()
}

/// A smooth saliency-like map: a bump off centre.
fn bench_prior(h: usize, w: usize) -> Array2<f32> {
    Array2::from_shape_fn((h, w), |(r, q)| {
        let (dr, dq) = (r as f32 / h as f32 - 0.4, q as f32 / w as f32 - 0.55);
        (-(dr * dr + dq * dq) * 8.0).exp()
    })
}

/// n BOREx-like observations: spread over the image, every box size, jittered.
fn bench_observations(n: usize, h: usize, w: usize, seed: u64) -> (Array2<f64>, Vec<f64>) {
    let sizes = CandidateGrid::reference(h as u32, w as u32).sizes;
    let mut next = lcg(seed);
    let x = Array2::from_shape_fn((n, 3), |(i, j)| match j {
        0 => next() * h as f64,
        1 => next() * w as f64,
        _ => sizes[i % sizes.len()] as f64 + next() - 0.5,
    });
    let y = (0..n).map(|_| next() - 0.5).collect();
    (x, y)
}

/// The GP of the first `n` bench observations with fixed length scales.
fn bench_gp(n: usize, length_scales: &[f64], h: usize, w: usize, seed: u64) -> Result<PosteriorInputs> {
    let (x, y) = bench_observations(n, h, w, seed);
    Ok(Gp::with_length_scales(x.view(), &y, length_scales, FitOptions::default().alpha)?.posterior_inputs())
}

/// A small deterministic generator of uniforms in [0, 1) (the inputs only need to be spread out).
fn lcg(seed: u64) -> impl FnMut() -> f64 {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(12345);
    move || {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (s >> 11) as f64 / (1u64 << 53) as f64
    }
}
