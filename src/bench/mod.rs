//! `borex bench`: every stage timed on the CPU twin and on the wgpu path, with
//! the model-only bound where a stage calls the model. One warm-up run per
//! stage and path is excluded; GPU timings include reading the result back,
//! so they wait for the queue. Figures are ratios within one run: the JSON
//! ([`BenchReport`], documented in docs/benchmarks.md) is what other tools read.

mod schema;
mod stages;
mod table;

pub use schema::{
    BenchOptions, BenchPath, BenchReport, Breakdown, Environment, Stage, StageResult, Throughput, Timing, SCHEMA,
};
pub use table::render_table;

use crate::compute::cpu::CpuKernels;
use crate::compute::gpu::{GpuContext, GpuKernels};
use crate::compute::{GpKernels, ImageKernels};
use crate::error::Result;
use crate::model::{Classifier, Scorer};
use ndarray::Array3;
use stages::{Ctx, Runner};
use std::sync::Arc;
use std::time::Instant;

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
        // Every runner of a stage (the references and each path) takes turns,
        // run by run, so that load from elsewhere on the machine drifts into
        // all of them alike and the ratios stay fair.
        let mut runners: Vec<(Role, Runner)> = Vec::new();
        if stage.calls_model() {
            runners.push((Role::Bound, ctx.model_bound(ctx.plan(stage))));
        }
        if let Some(m) = ctx.memcpy(stage) {
            runners.push((Role::Memcpy, m));
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
                memcpy: None,
                memcpy_ratio: None,
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
                    runners.push((Role::Path(path), ctx.runner(stage, path, image_k, gp_k)?));
                    results_of_stage.push(StageResult { available: true, ..r });
                }
            }
        }
        let timings = interleaved(&mut runners, opts.repeat, progress)?;
        let of = |role: Role| runners.iter().zip(&timings).find(|((r, _), _)| *r == role).map(|(_, t)| t.clone());
        let (bound, memcpy) = (of(Role::Bound), of(Role::Memcpy));
        let mut cpu_median = None;
        for r in &mut results_of_stage {
            let Some(((_, runner), t)) = runners.iter().zip(&timings).find(|((p, _), _)| *p == Role::Path(r.path))
            else {
                continue;
            };
            r.throughput =
                Some(Throughput { per_second: runner.units / (t.median_ms / 1e3), unit: runner.unit.into() });
            r.model_bound = bound.clone();
            r.bound_ratio = bound.as_ref().map(|b| t.median_ms / b.median_ms);
            r.memcpy = memcpy.clone();
            r.memcpy_ratio = memcpy.as_ref().map(|m| t.median_ms / m.median_ms);
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

/// What a runner of a stage stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The model-only bound.
    Bound,
    /// A memcpy of the stage's output bytes.
    Memcpy,
    /// The stage on one path.
    Path(BenchPath),
}

/// One warm-up run of each runner, then `repeat` rounds with each runner once per round.
fn interleaved(
    runners: &mut [(Role, Runner)],
    repeat: usize,
    progress: &dyn crate::progress::Progress,
) -> Result<Vec<Timing>> {
    let mut wall = vec![Vec::with_capacity(repeat); runners.len()];
    let mut cpu = vec![Vec::with_capacity(repeat); runners.len()];
    for round in 0..=repeat {
        for (((_, r), w), c) in runners.iter_mut().zip(&mut wall).zip(&mut cpu) {
            (r.setup)()?;
            let (t, c0) = (Instant::now(), process_cpu_ms());
            (r.run)()?;
            if round > 0 {
                w.push(t.elapsed().as_secs_f64() * 1e3);
                if let (Some(c0), Some(c1)) = (c0, process_cpu_ms()) {
                    c.push(c1 - c0);
                }
            }
            progress.inc(1);
        }
    }
    Ok(wall.into_iter().zip(cpu).map(|(w, c)| Timing::from_samples(w).with_cpu(&c)).collect())
}

/// CPU time of the whole process so far (user + system, every thread), in milliseconds.
fn process_cpu_ms() -> Option<f64> {
    let mut u = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a whole rusage into the pointer it is given, which is valid for one.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, u.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: initialised by the successful call above.
    let u = unsafe { u.assume_init() };
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3;
    Some(ms(u.ru_utime) + ms(u.ru_stime))
}
