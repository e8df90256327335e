//! `borex bench`: every stage timed on the CPU twin and on the wgpu path, with
//! the model-only bound where a stage calls the model. One warm-up run per
//! stage and path is excluded; GPU timings include reading the result back,
//! so they wait for the queue. Figures are ratios within one run: the JSON
//! ([`BenchReport`], documented in docs/benchmarks.md) is what other tools read.

mod table;

pub use table::render_table;

use crate::compute::cpu::CpuKernels;
use crate::compute::gpu::{GpuContext, GpuKernels};
use crate::compute::{gaussian_kernel_1d, BoxMask, GpKernels, ImageKernels, Keep, Masks, BLUR_KERNEL_SIZE, BLUR_SIGMA};
use crate::error::{BorexError, Result};
use crate::explain::{rise, RiseParams};
use crate::gp::{CandidateGrid, FitOptions, Gp, PosteriorInputs};
use crate::job::{causal_metrics, ms};
use crate::metrics::InsertionStart;
use crate::model::{Classifier, Scorer};
use crate::refine::{refine, RefineConfig};
use ndarray::{s, Array2, Array3, Array4, ArrayView3, Axis};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Version of the JSON layout; bumped when a field changes meaning or goes away.
pub const SCHEMA: u32 = 1;

/// One timed stage of `borex bench` (its name is the kebab-case variant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// A batch of box masks applied to the image (the refine's queries).
    Masking,
    /// The insertion metric's Gaussian blur of the image.
    Blur,
    /// RISE: masks generated, applied, scored and accumulated.
    Rise,
    /// One BO iteration recomputed from scratch: posterior + UCB + argmax over every candidate.
    Posterior,
    /// The same iteration as an incremental update (one observation appended).
    PosteriorAppend,
    /// One length-scale fit (L-BFGS-B), host code on both paths.
    Fit,
    /// One image refined: RISE-100 prior, then the paper preset's loop.
    Refine,
    /// Insertion (from blur) and deletion curves of one map.
    Insdel,
    /// F frames (the image panned 4 px per frame) refined together by the
    /// lockstep driver, the bulk engine of `borex video`: one model call of 2F
    /// inputs per query, GP stages in parallel (CPU) or in turn (GPU).
    Video,
}

impl Stage {
    /// Every stage, in the order the report lists them.
    pub const ALL: [Stage; 9] = [
        Stage::Masking,
        Stage::Blur,
        Stage::Rise,
        Stage::Posterior,
        Stage::PosteriorAppend,
        Stage::Fit,
        Stage::Refine,
        Stage::Insdel,
        Stage::Video,
    ];

    /// The stage's name, as `--stages` takes it and the report writes it.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Masking => "masking",
            Stage::Blur => "blur",
            Stage::Rise => "rise",
            Stage::Posterior => "posterior",
            Stage::PosteriorAppend => "posterior-append",
            Stage::Fit => "fit",
            Stage::Refine => "refine",
            Stage::Insdel => "insdel",
            Stage::Video => "video",
        }
    }

    /// Whether the stage calls the model (and so has a model-only bound).
    pub fn calls_model(self) -> bool {
        matches!(self, Stage::Rise | Stage::Refine | Stage::Insdel | Stage::Video)
    }
}

impl std::str::FromStr for Stage {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Stage::ALL.into_iter().find(|st| st.name() == s).ok_or_else(|| {
            let names: Vec<_> = Stage::ALL.iter().map(|s| s.name()).collect();
            format!("unknown stage {s:?} (stages: all, {})", names.join(", "))
        })
    }
}

/// Which implementation of the compute stages runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BenchPath {
    /// The CPU kernels (rayon).
    Cpu,
    /// The wgpu kernels.
    Gpu,
}

impl BenchPath {
    /// `cpu` or `gpu`, as `--paths` takes it and the report writes it.
    pub fn name(self) -> &'static str {
        match self {
            BenchPath::Cpu => "cpu",
            BenchPath::Gpu => "gpu",
        }
    }
}

/// What `borex bench` measures and how (defaults: every stage on both paths, 5 repeats).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchOptions {
    /// The stages to time.
    pub stages: Vec<Stage>,
    /// The implementations to time each stage on.
    pub paths: Vec<BenchPath>,
    /// Timed runs per stage and path (after one warm-up run).
    pub repeat: usize,
    /// RISE masks N in the `rise` stage.
    pub masks: usize,
    /// Queries of the `refine` stage.
    pub iters: usize,
    /// Observations n of the `posterior`, `posterior-append` and `fit` stages.
    pub observations: usize,
    /// Images per model call.
    pub batch: usize,
    /// Seed of the masks, the RISE prior and the refine loops.
    pub seed: u64,
    /// Frames refined in lockstep in the `video` stage (F).
    pub lockstep: usize,
    /// `refine --refit-every` of the `video` stage's loops.
    pub refit_every: usize,
    /// `refine --stride` of the `video` stage's loops.
    pub stride: usize,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            stages: Stage::ALL.to_vec(),
            paths: vec![BenchPath::Cpu, BenchPath::Gpu],
            repeat: 5,
            masks: 1000,
            iters: 50,
            observations: 50,
            batch: 32,
            seed: 0,
            lockstep: 8,
            refit_every: 1,
            stride: 1,
        }
    }
}

impl BenchOptions {
    /// Every option within its limit ([`crate::limits`]), or an error naming the flag.
    pub fn validate(&self) -> Result<()> {
        use crate::limits::{self, in_range};
        in_range("lockstep", self.lockstep, 1, limits::MAX_LOCKSTEP)?;
        in_range("repeat", self.repeat, 1, limits::MAX_REPEAT)?;
        in_range("masks", self.masks, 1, limits::MAX_MASKS)?;
        in_range("iters", self.iters, 1, limits::MAX_ITERS)?;
        in_range("batch", self.batch, 1, limits::MAX_BATCH)?;
        in_range("refit_every", self.refit_every, 1, limits::MAX_ITERS)?;
        in_range("stride", self.stride, 1, limits::MAX_STRIDE)?;
        // At least 2: the append stage adds the last one.
        in_range("observations", self.observations, 2, limits::MAX_OBSERVATIONS)?;
        if self.stages.is_empty() || self.paths.is_empty() {
            return Err(BorexError::invalid("nothing to benchmark: no stage or no path"));
        }
        Ok(())
    }

    /// Timed runs in all, for the progress bar: stages × paths plus the bounds, each with a warm-up.
    pub fn runs(&self) -> u64 {
        let stage_runs = self.stages.len() * self.paths.len();
        let bounds = self.stages.iter().filter(|s| s.calls_model()).count();
        ((stage_runs + bounds) * (self.repeat + 1)) as u64
    }
}

/// Median and spread of one measurement, in milliseconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Timing {
    /// Median of the samples.
    pub median_ms: f64,
    /// Fastest sample.
    pub min_ms: f64,
    /// Slowest sample.
    pub max_ms: f64,
    /// Every timed run, in order.
    pub samples_ms: Vec<f64>,
}

impl Timing {
    /// Median, min and max of `samples_ms` (at least one sample).
    pub fn from_samples(samples_ms: Vec<f64>) -> Self {
        let mut sorted = samples_ms.clone();
        sorted.sort_by(f64::total_cmp);
        let k = sorted.len();
        let median = if k % 2 == 1 { sorted[k / 2] } else { (sorted[k / 2 - 1] + sorted[k / 2]) / 2.0 };
        Self { median_ms: median, min_ms: sorted[0], max_ms: sorted[k - 1], samples_ms }
    }
}

/// Work per second of a stage, at its median time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Throughput {
    /// Units of work per second.
    pub per_second: f64,
    /// What is counted, e.g. "images", "masks", "candidates".
    pub unit: String,
}

/// One stage on one path.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageResult {
    /// The stage.
    pub stage: Stage,
    /// The path it ran on.
    pub path: BenchPath,
    /// False when the stage or the path cannot run here (`note` says why).
    pub available: bool,
    /// Why the row is unavailable, or what to know about it.
    pub note: Option<String>,
    /// Its timing (`None` when unavailable).
    pub time: Option<Timing>,
    /// Its throughput (`None` when unavailable).
    pub throughput: Option<Throughput>,
    /// The same model evaluations (same batch sizes) on ready inputs, ONNX Runtime alone.
    pub model_bound: Option<Timing>,
    /// time.median_ms / model_bound.median_ms.
    pub bound_ratio: Option<f64>,
    /// On the GPU row: its median over the CPU row's.
    pub gpu_over_cpu: Option<f64>,
    /// Where the time went (refine: milliseconds per part, of the median run).
    pub breakdown: Option<Breakdown>,
}

/// A stage's breakdown of its median run (fields in the order the JSON has always had: sorted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Breakdown {
    /// `refine`: milliseconds per part.
    Refine {
        /// The GP fits.
        gp_fit_ms: f64,
        /// The loop's model calls.
        loop_model_ms: f64,
        /// Posterior and search.
        posterior_ms: f64,
        /// Posterior updates by path.
        posterior_updates: crate::compute::PosteriorUpdates,
        /// The RISE prior.
        prior_ms: f64,
        /// The prior's model calls.
        prior_model_ms: f64,
    },
    /// `video`: per lockstep step and per frame.
    Video {
        /// GP fits per frame (ms).
        gp_fit_ms_per_frame: f64,
        /// Device readbacks per step.
        gpu_readbacks_per_step: f64,
        /// Device submissions per step.
        gpu_submits_per_step: f64,
        /// Posterior per frame (ms).
        posterior_ms_per_frame: f64,
    },
    /// `posterior`, `posterior-append`: which path the update took.
    Update {
        /// `incremental` or `full`.
        update: String,
    },
}

/// The machine and software the figures come from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Environment {
    /// The CPU's model name (`/proc/cpuinfo`), or the architecture.
    pub cpu_model: String,
    /// Logical cores available to the process.
    pub logical_cores: usize,
    /// The wgpu adapter, or why there is none.
    pub adapter: String,
    /// Whether the adapter is a software rasteriser (lavapipe); `None` without one.
    pub adapter_is_software: Option<bool>,
    /// ONNX Runtime's execution provider (`cpu`, `cuda`).
    pub execution_provider: String,
    /// ONNX Runtime's version.
    pub onnxruntime: String,
    /// The model file.
    pub model: String,
    /// The model input (height, width) the stages ran at.
    pub input_size: [usize; 2],
    /// The benchmark image (or `synthetic`).
    pub image: String,
    /// The borex version that measured.
    pub borex_version: String,
}

impl Environment {
    /// The CPU's model name from `/proc/cpuinfo`, else the architecture.
    pub fn cpu_model() -> String {
        std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| std::env::consts::ARCH.to_string())
    }

    /// Logical cores available to this process (1 when unknown).
    pub fn logical_cores() -> usize {
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    }
}

/// The JSON report of `borex bench` (`--json`, `-o FILE`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchReport {
    /// [`SCHEMA`] of the layout.
    pub schema: u32,
    /// The machine and software.
    pub environment: Environment,
    /// What was measured.
    pub options: BenchOptions,
    /// One row per stage and path, stages in [`Stage::ALL`] order.
    pub results: Vec<StageResult>,
}

impl BenchReport {
    /// Parse a report `borex bench --json` wrote: of this [`SCHEMA`], or a one-line reason.
    pub fn from_json(text: &str) -> Result<Self> {
        Self::parse(text).map_err(BorexError::invalid)
    }

    /// [`from_json`](Self::from_json) of a file; errors name it.
    pub fn read(path: &std::path::Path) -> Result<Self> {
        let text = crate::limits::read_text_bounded(path, crate::limits::MAX_JSON_BYTES, "bench report")?;
        Self::parse(&text).map_err(|e| BorexError::invalid(format!("{}: {e}", path.display())))
    }

    fn parse(text: &str) -> std::result::Result<Self, String> {
        // The schema first, so a report of another layout is refused by name, never half-read.
        #[derive(Deserialize)]
        struct Schema {
            schema: Option<u32>,
        }
        let bad = |e: serde_json::Error| format!("not a borex bench report ({e})");
        let v: Schema = serde_json::from_str(text).map_err(bad)?;
        if v.schema != Some(SCHEMA) {
            let was = v.schema.map_or("no schema".to_string(), |s| format!("schema {s}"));
            return Err(format!("a bench report of {was}; this borex reads schema {SCHEMA}"));
        }
        serde_json::from_str(text).map_err(bad)
    }
}

/// Everything a run needs: the model, a preprocessed image and the GPU context (or why there is none).
pub struct BenchInput<'a> {
    /// The classifier the model-calling stages score with.
    pub model: &'a Classifier,
    /// The preprocessed image (C×H×W).
    pub image: Array3<f32>,
    /// The GPU context, or why there is none (the GPU rows are then unavailable).
    pub gpu: std::result::Result<Arc<GpuContext>, String>,
}

/// Time every stage of `opts` on every path: one warm-up then `repeat` timed runs each, plus the model-only bounds.
pub fn run_bench(
    input: &BenchInput,
    opts: &BenchOptions,
    environment: Environment,
    progress: &dyn crate::progress::Progress,
) -> Result<BenchReport> {
    opts.validate()?;
    let x = input.image.view();
    let probe = Scorer::new(input.model, &CpuKernels, opts.batch);
    let probs = probe.probabilities(x)?;
    let class = probs.iter().enumerate().fold((0, f32::MIN), |b, (i, &p)| if p > b.1 { (i, p) } else { b }).0;
    let gpu_kernels = input.gpu.as_ref().ok().map(|ctx| GpuKernels::new(ctx.clone()));
    let ctx = Ctx { model: input.model, x, class, opts, gpu: input.gpu.as_ref().ok().map(|c| c.as_ref()) };
    let mut results = Vec::new();
    for &stage in &opts.stages {
        // Every runner of a stage (the bound and each path) takes turns, run
        // by run, so that load from elsewhere on the machine drifts into all
        // of them alike and the ratios stay fair.
        let mut runners: Vec<(Option<BenchPath>, Runner)> = Vec::new();
        if stage.calls_model() {
            runners.push((None, ctx.model_bound(ctx.plan(stage))));
        }
        let mut results_of_stage = Vec::new();
        for &path in &opts.paths {
            let r = StageResult {
                stage,
                path,
                available: false,
                note: None,
                time: None,
                throughput: None,
                model_bound: None,
                bound_ratio: None,
                gpu_over_cpu: None,
                breakdown: None,
            };
            let kernels: Option<(&dyn ImageKernels, &dyn GpKernels)> = match (path, &gpu_kernels) {
                (BenchPath::Cpu, _) => Some((&CpuKernels, &CpuKernels)),
                (BenchPath::Gpu, Some(g)) => Some((g, g)),
                (BenchPath::Gpu, None) => None,
            };
            match (stage, kernels) {
                (_, None) => {
                    let why = input.gpu.as_ref().err().map(String::as_str).unwrap_or("unknown");
                    results_of_stage.push(StageResult { note: Some(format!("no wgpu adapter: {why}")), ..r });
                }
                (_, Some((image_k, gp_k))) => {
                    runners.push((Some(path), ctx.runner(stage, path, image_k, gp_k)?));
                    results_of_stage.push(StageResult { available: true, ..r });
                }
            }
        }
        let timings = interleaved(&mut runners, opts.repeat, progress)?;
        let bound = runners.iter().zip(&timings).find(|((p, _), _)| p.is_none()).map(|(_, t)| t.clone());
        let mut cpu_median = None;
        for r in &mut results_of_stage {
            let Some(((_, runner), t)) = runners.iter().zip(&timings).find(|((p, _), _)| *p == Some(r.path)) else {
                continue;
            };
            r.throughput =
                Some(Throughput { per_second: runner.units / (t.median_ms / 1e3), unit: runner.unit.into() });
            r.model_bound = bound.clone();
            r.bound_ratio = bound.as_ref().map(|b| t.median_ms / b.median_ms);
            r.note = runner.note.clone();
            // The breakdown of the run closest to the median (the warm-up is the first entry).
            let closest = t
                .samples_ms
                .iter()
                .enumerate()
                .min_by(|a, b| (a.1 - t.median_ms).abs().total_cmp(&(b.1 - t.median_ms).abs()))
                .map(|(i, _)| i + 1);
            r.breakdown = runner.breakdown.as_ref().and_then(|b| closest.and_then(|i| b.borrow().get(i).cloned()));
            if stage == Stage::PosteriorAppend
                && r.breakdown
                    .as_ref()
                    .is_some_and(|b| !matches!(b, Breakdown::Update { update } if update == "incremental"))
            {
                r.note = Some(format!(
                    "{}; recomputed in full: the kernel rows exceed this path's cache",
                    runner.note.as_deref().unwrap_or("")
                ));
            }
            match r.path {
                BenchPath::Cpu => cpu_median = Some(t.median_ms),
                BenchPath::Gpu => r.gpu_over_cpu = cpu_median.map(|c| t.median_ms / c),
            }
            r.time = Some(t.clone());
        }
        drop(runners);
        results.extend(results_of_stage);
    }
    Ok(BenchReport { schema: SCHEMA, environment, options: opts.clone(), results })
}

type Step<'a> = Box<dyn FnMut() -> Result<()> + 'a>;

/// One thing to time: an untimed `setup`, then the timed `run`.
struct Runner<'a> {
    setup: Step<'a>,
    run: Step<'a>,
    /// Work units per run (for the throughput).
    units: f64,
    unit: &'static str,
    note: Option<String>,
    /// Per run (warm-up first), where the time went.
    breakdown: Option<Rc<RefCell<Vec<Breakdown>>>>,
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

/// One warm-up run of each runner, then `repeat` rounds with each runner once per round.
fn interleaved(
    runners: &mut [(Option<BenchPath>, Runner)],
    repeat: usize,
    progress: &dyn crate::progress::Progress,
) -> Result<Vec<Timing>> {
    let mut samples = vec![Vec::with_capacity(repeat); runners.len()];
    for round in 0..=repeat {
        for ((_, r), s) in runners.iter_mut().zip(&mut samples) {
            (r.setup)()?;
            let t = Instant::now();
            (r.run)()?;
            if round > 0 {
                s.push(t.elapsed().as_secs_f64() * 1e3);
            }
            progress.inc(1);
        }
    }
    Ok(samples.into_iter().map(Timing::from_samples).collect())
}

struct Ctx<'a> {
    model: &'a Classifier,
    x: ArrayView3<'a, f32>,
    class: usize,
    opts: &'a BenchOptions,
    /// The GPU path's context (its submission and readback counters).
    gpu: Option<&'a GpuContext>,
}

impl<'a> Ctx<'a> {
    /// The batch sizes of a stage's model calls, in order.
    fn plan(&self, stage: Stage) -> Vec<usize> {
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
    fn model_bound(&self, plan: Vec<usize>) -> Runner<'a> {
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

    fn runner(
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
