//! What `borex bench` is asked to measure ([`BenchOptions`]) and the JSON
//! report it writes ([`BenchReport`], versioned by [`SCHEMA`]).

use crate::error::{BorexError, Result};
use serde::{Deserialize, Serialize};

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
    /// One batch of RISE's host work: masks generated, applied and accumulated (no model call).
    RiseMasks,
    /// One BO iteration recomputed from scratch (new length scales): the UCB argmax over every candidate.
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
    pub const ALL: [Stage; 10] = [
        Stage::Masking,
        Stage::Blur,
        Stage::RiseMasks,
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
            Stage::RiseMasks => "rise-masks",
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

    /// Whether the stage is a memory-bound pass over the image (and so is compared with a memcpy of its output).
    pub fn has_memcpy_reference(self) -> bool {
        matches!(self, Stage::Masking | Stage::Blur | Stage::RiseMasks)
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
    /// Every option within its limit ([`crate::limits`]), or an error naming the setting.
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
        let bounds = self.stages.iter().filter(|s| s.calls_model() || s.has_memcpy_reference()).count();
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
    /// Median CPU time of the runs (user + system, every thread of the process): what
    /// the stage costs the machine, steadier than wall time when other work shares the cores.
    #[serde(default)]
    pub cpu_median_ms: Option<f64>,
}

impl Timing {
    /// Median, min and max of `samples_ms` (at least one sample).
    pub fn from_samples(samples_ms: Vec<f64>) -> Self {
        let mut sorted = samples_ms.clone();
        sorted.sort_by(f64::total_cmp);
        let k = sorted.len();
        Self {
            median_ms: median(&samples_ms),
            min_ms: sorted[0],
            max_ms: sorted[k - 1],
            samples_ms,
            cpu_median_ms: None,
        }
    }

    /// The same, with the runs' CPU times (milliseconds, one per sample).
    pub fn with_cpu(mut self, cpu_ms: &[f64]) -> Self {
        self.cpu_median_ms = (!cpu_ms.is_empty()).then(|| median(cpu_ms));
        self
    }
}

/// The median of at least one value.
fn median(v: &[f64]) -> f64 {
    let mut sorted = v.to_vec();
    sorted.sort_by(f64::total_cmp);
    let k = sorted.len();
    if k % 2 == 1 {
        sorted[k / 2]
    } else {
        (sorted[k / 2 - 1] + sorted[k / 2]) / 2.0
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
    /// A single-threaded memcpy of the stage's output bytes (memory-bound stages: masking, blur, rise-masks).
    #[serde(default)]
    pub memcpy: Option<Timing>,
    /// time.median_ms / memcpy.median_ms.
    #[serde(default)]
    pub memcpy_ratio: Option<f64>,
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
