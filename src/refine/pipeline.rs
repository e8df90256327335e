//! `refine` end to end: image → preprocess → class → prior → BOREx → metrics →
//! outputs. `borex refine` calls [`run_refine`] (which writes the outputs),
//! [`crate::engine::Engine::refine`] calls [`refine_source`] (in memory); the
//! report types are in [`super::report`].

use super::{refine, RefineConfig, Refined};
use crate::compute::Backend;
use crate::error::Result;
use crate::explain::{explain, ExplainInput, Method};
use crate::job::description::{setting, Settings};
pub use crate::job::Source;
use crate::job::{
    causal_metrics, causal_metrics_with_curves, ms, read_map, CausalScores, ClassSpec, DeviceReport, Prepared,
};
use crate::metrics::InsertionStart;
use crate::model::{Classifier, Scorer};
use crate::output;
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Instant;

pub use super::report::{
    FullResReport, MetricsInfo, PriorReport, PriorSetting, RefineCurves, RefineReport, RefineSettingsReport,
    RefineTimingsMs, RefinedReport,
};

/// Where the prior map comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum PriorSpec {
    /// One of borex's explainers.
    Method(Method),
    /// A map from another tool: `.npy` (float32/float64, H×W) or a grayscale PNG.
    File(PathBuf),
    /// A map given in memory (the library's callers): at the model input's
    /// size, or the original image's (brought through its resize and crop,
    /// like a file's).
    Map(Array2<f32>),
}

impl PriorSpec {
    /// `--prior`: a method's name (with its seed), else a map file's path.
    pub fn parse(s: &str, seed: u64) -> Self {
        Method::parse(s, seed).map(PriorSpec::Method).unwrap_or_else(|| PriorSpec::File(PathBuf::from(s)))
    }

    /// The prior's name for reports: the method, `file:PATH` or `array`.
    pub fn method(&self) -> String {
        match self {
            PriorSpec::Method(m) => m.name(),
            PriorSpec::File(p) => format!("file:{}", p.display()),
            PriorSpec::Map(_) => "array".into(),
        }
    }
}

/// Everything a refine needs besides the model and the backend.
#[derive(Debug, Clone)]
pub struct RefineJob {
    /// The image file (the name reports give an in-memory image).
    pub image: PathBuf,
    /// The class to explain.
    pub class: ClassSpec,
    /// Where the prior comes from.
    pub prior: PriorSpec,
    /// The loop's settings.
    pub config: RefineConfig,
    /// OUTDIR.
    pub out_dir: PathBuf,
    /// Also write the refined map at the original image resolution.
    pub full_res: bool,
    /// Insertion starts to score; the first is the report's `insertion`.
    pub insertion_starts: Vec<InsertionStart>,
    /// Compute insertion/deletion of both maps.
    pub metrics: bool,
    /// Images per model call.
    pub batch: usize,
    /// What making the job decided that its report should say (how `--budget` was split).
    pub notes: Vec<String>,
}

impl PriorSpec {
    /// The prior as a job setting: a method's name, or a map file's path and content hash.
    pub fn setting(&self) -> Result<PriorId> {
        Ok(match self {
            PriorSpec::Method(m) => PriorId::Method(m.name()),
            PriorSpec::File(p) => PriorId::File {
                file: p.clone(),
                sha256: crate::job::description::sha256_file(p, crate::limits::MAX_NPY_FILE_BYTES, "prior map")?,
            },
            // An in-memory map (the library's Engine) has no file to hash: its shape and values name it.
            PriorSpec::Map(m) => {
                let bytes: Vec<u8> = m.iter().flat_map(|v| v.to_le_bytes()).collect();
                PriorId::Array { array: [m.nrows(), m.ncols()], sha256: crate::job::description::sha256_bytes(&bytes) }
            }
        })
    }
}

/// The prior as `job.json`'s `--prior` setting records it: what makes two
/// runs' priors the same (a method by name, a map by its content's hash).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PriorId {
    /// One of borex's explainers, by name.
    Method(String),
    /// A map file.
    File {
        /// The file as given.
        file: PathBuf,
        /// SHA-256 of its content, lowercase hex.
        sha256: String,
    },
    /// A map given in memory.
    Array {
        /// Its rows and columns.
        array: [usize; 2],
        /// SHA-256 of its values (f32, little-endian, row-major), lowercase hex.
        sha256: String,
    },
}

/// The flags of [`RefineConfig`]'s fields; the others are named by field.
const CONFIG_FLAGS: [&str; 11] = [
    "iters",
    "sizes",
    "kappa",
    "gain",
    "refit_every",
    "stride",
    "seed",
    "objective",
    "readout",
    "prior_mean",
    "relative_gain",
];

impl RefineJob {
    /// Every setting that changes a result (for the job description), keyed
    /// by its flag: class, prior, each refine knob, baseline, metrics. The
    /// batch size and the lockstep width change only the speed.
    pub fn settings(&self) -> Result<Settings> {
        let mut s = Settings::new();
        s.insert("--class".into(), setting(&self.class));
        s.insert("--prior".into(), setting(self.prior.setting()?));
        if let serde_json::Value::Object(fields) = setting(&self.config) {
            for (k, v) in fields {
                let key = match k.as_str() {
                    "refit" => {
                        s.insert("--fixed-length-scales".into(), setting(v == serde_json::Value::Bool(false)));
                        continue;
                    }
                    f if CONFIG_FLAGS.contains(&f) => format!("--{}", f.replace('_', "-")),
                    f => format!("config.{f}"),
                };
                s.insert(key, v);
            }
        }
        // Fields the config leaves out of JSON at their defaults, named anyway so a message shows the value.
        for (k, v) in [
            ("--refit-every", setting(1)),
            ("--stride", setting(1)),
            ("--readout", setting(super::full_res::Readout::Window)),
        ] {
            s.entry(k.to_string()).or_insert(v);
        }
        s.entry("--prior-mean".to_string()).or_insert(setting(super::PriorMean::Scaled));
        // One name for what the evaluations are spent on, as `--objective` takes it (`antithetic` included).
        s.remove("config.refiner");
        s.insert("--objective".into(), setting(super::RefineObjective::of(&self.config)));
        s.insert("--baseline".into(), setting(self.config.baseline));
        s.insert("--no-metrics".into(), setting(!self.metrics));
        if self.metrics {
            s.insert("--insertion-start".into(), setting(&self.insertion_starts));
        }
        s.insert("--full-res".into(), setting(self.full_res));
        Ok(s)
    }
}

/// What the refine produced: the maps (`prior.npy`, `refined.npy`,
/// `refined_full.npy`), the curves (`curves.json`) and the report (`report.json`).
pub struct RefineOutcome {
    /// The report, as written to `report.json`.
    pub report: RefineReport,
    /// The prior at model-input resolution, as made (before scaling).
    pub prior: Array2<f32>,
    /// The loop's result: `refined.map` is `refined.npy`, `refined.scaled_prior`
    /// is `prior.npy` (the prior in the GP's units), `refined.observations` the queries.
    pub refined: Refined,
    /// The refined map at the original resolution (`refined_full.npy`), with `full_res`.
    pub full_res: Option<Array2<f32>>,
    /// The insertion/deletion curves behind the AUCs (`curves.json`, for `borex report`), with `metrics`.
    pub curves: Option<RefineCurves>,
    /// The model-input crop as RGB (the overlay's background).
    pub rgb: image::RgbImage,
    /// What the user should know (also in the report).
    pub notes: Vec<String>,
}

impl RefineOutcome {
    /// The refined map (H×W, model-input resolution): `refined.npy`.
    pub fn map(&self) -> &Array2<f32> {
        &self.refined.map
    }

    /// Every output of `refine` into `outputs` (committed by the caller).
    pub fn write(&self, outputs: &output::OutputSet) -> Result<()> {
        // prior.npy is the scaled prior (mean |S0| = m), the GP's mean function, in the same units as refined.npy.
        output::write_npy(&outputs.file("prior.npy"), &self.refined.scaled_prior)?;
        output::write_npy(&outputs.file("refined.npy"), &self.refined.map)?;
        let maps = [self.prior.view(), self.refined.map.view()];
        let panel = output::overlay_panels(&self.rgb, &maps, self.report.overlay_scale);
        output::write_png(&outputs.file("overlay.png"), &panel)?;
        if let Some(full) = &self.full_res {
            output::write_npy(&outputs.file("refined_full.npy"), full)?;
        }
        if let Some(curves) = &self.curves {
            output::write_json(&outputs.file("curves.json"), curves)?;
        }
        output::write_report(&outputs.file("report.json"), &self.report)
    }
}

/// Refine `job.image` and write its outputs into `job.out_dir` (staged, swapped in at the end).
pub fn run_refine(
    job: &RefineJob,
    model: &Classifier,
    backend: &Backend,
    reporter: &dyn crate::progress::Reporter,
) -> Result<RefineOutcome> {
    job.config.validate()?;
    let outputs = output::OutputSet::begin_locked(&job.out_dir)?;
    let outcome = refine_source(job, Source::File(&job.image), model, backend, reporter)?;
    outcome.write(&outputs)?;
    outputs.commit()?;
    Ok(outcome)
}

/// Refine one image, in memory: what [`run_refine`] computes, without files.
pub fn refine_source(
    job: &RefineJob,
    source: Source,
    model: &Classifier,
    backend: &Backend,
    reporter: &dyn crate::progress::Reporter,
) -> Result<RefineOutcome> {
    let t0 = Instant::now();
    job.config.validate()?;
    let unit = RefineUnit::prepare(job, source, model, backend, reporter, t0)?;
    if let Some(refined) = unit.continued()? {
        return unit.conclude(refined);
    }
    let bar = reporter.start(job.config.iters as u64, "refine");
    let loop_scorer = Scorer::new(model, backend.image.as_ref(), job.batch);
    let refined = refine(
        &loop_scorer,
        unit.gp_kernels.as_ref(),
        unit.input(),
        unit.prepared.class,
        unit.prior.view(),
        &job.config,
        &bar,
    )?;
    bar.finish();
    unit.conclude(refined)
}

/// One refine up to its BO loop (image prepared, class chosen, prior made),
/// so that a driver can run the loops of many units in lockstep
/// ([`super::lockstep`]) and finish each one after.
pub struct RefineUnit<'a> {
    job: &'a RefineJob,
    model: &'a Classifier,
    backend: &'a Backend,
    /// This unit's own model calls (class choice, prior, metrics); the loop's
    /// are counted from its observations.
    scorer: Scorer<'a>,
    /// The image, its class and probabilities.
    pub prepared: Prepared,
    /// The prior at model-input resolution, before scaling.
    pub prior: Array2<f32>,
    /// What the user should know so far.
    pub notes: Vec<String>,
    /// The kernels this unit's GP stages run on.
    pub gp_kernels: std::sync::Arc<dyn crate::compute::GpKernels>,
    gp_device: &'static str,
    prior_ms: f64,
    t0: Instant,
    /// The antithetic continuation, computed with the prior in one pass (no box loop).
    continued: Option<crate::explain::antithetic::Antithetic>,
}

impl<'a> RefineUnit<'a> {
    /// Prepare one refine: load and score the image, choose the class, make the prior.
    pub fn prepare(
        job: &'a RefineJob,
        source: Source,
        model: &'a Classifier,
        backend: &'a Backend,
        reporter: &dyn crate::progress::Reporter,
        t0: Instant,
    ) -> Result<Self> {
        Self::prepare_with_prior(job, source, model, backend, None, reporter, t0)
    }

    /// [`prepare`](Self::prepare), with the prior given (model-input size)
    /// instead of made from `job.prior`: a video frame's warm start.
    pub fn prepare_with_prior(
        job: &'a RefineJob,
        source: Source,
        model: &'a Classifier,
        backend: &'a Backend,
        given: Option<Array2<f32>>,
        reporter: &dyn crate::progress::Reporter,
        t0: Instant,
    ) -> Result<Self> {
        let scorer = Scorer::new(model, backend.image.as_ref(), job.batch);
        let prepared = Prepared::from_source(source, model, &scorer, &job.class)?;
        let x = prepared.pre.tensor.view();
        let (_, h, w) = x.dim();
        crate::limits::batch_fits(job.batch, x.dim())?;
        let mut notes = job.notes.clone();
        notes.extend(prepared.notes.iter().cloned());
        notes.extend(job.config.check_sizes(h as u32, w as u32)?);
        notes.extend(confident_note(&job.prior, &job.config, prepared.probs[prepared.class]));

        let gp_kernels = backend.gp.clone();
        let gp_device = backend.kind();

        let tp = Instant::now();
        let antithetic = !job.config.refiner.is_boxes();
        let mut continued = None;
        let prior = match given {
            Some(_) if antithetic => {
                return Err(crate::error::BorexError::invalid(
                    "objective antithetic continues the RISE prior's own masks, and a given prior map (a video frame's warm start) has none: use a box objective (matched)",
                ))
            }
            Some(p) if p.dim() == (h, w) => p,
            Some(p) => {
                return Err(crate::error::BorexError::invalid(format!(
                    "given prior is {:?}, the model input {h}×{w}",
                    p.dim()
                )))
            }
            None if antithetic => {
                let a = antithetic_continuation(job, &scorer, &prepared, reporter)?;
                let prior = a.prior.clone();
                continued = Some(a);
                prior
            }
            None => compute_prior(&job.prior, model, &scorer, &prepared, job.config.baseline, reporter, &mut notes)?,
        };
        // The continuation's extra evaluations are the refinement's (`timings_ms.model`), not the prior's.
        let extra = continued.as_ref().map_or(std::time::Duration::ZERO, |a| a.model_time[1]);
        let prior_ms = ms(tp.elapsed().saturating_sub(extra));

        Ok(Self { job, model, backend, scorer, prior, notes, gp_kernels, gp_device, prior_ms, t0, prepared, continued })
    }

    /// The refinement when it was made with the prior (the antithetic
    /// continuation: no box loop to run), else `None`.
    pub fn continued(&self) -> Result<Option<Refined>> {
        let Some(a) = &self.continued else { return Ok(None) };
        let cfg = &self.job.config;
        Ok(Some(Refined {
            map: a.map.clone(),
            // prior.npy keeps its meaning: the prior scaled to mean |S0| = m.
            scaled_prior: super::scale_prior(self.prior.view(), cfg.prior_mean_abs)?,
            prior_affine: [1.0, 0.0],
            gain: cfg.gain,
            observations: vec![],
            gp: None,
            timings: super::RefineTimings { model: a.model_time[1], ..Default::default() },
            fit_failures: vec![],
            posterior_updates: Default::default(),
        }))
    }

    /// Whether this unit's refinement was made with its prior ([`continued`](Self::continued)).
    pub fn is_continued(&self) -> bool {
        self.continued.is_some()
    }

    /// Whether this unit's GP stages run on the GPU.
    pub fn gp_kernels_on_gpu(&self) -> bool {
        self.gp_device == "gpu"
    }

    /// The model input (C×H×W).
    pub fn input(&self) -> ndarray::ArrayView3<'_, f32> {
        self.prepared.pre.tensor.view()
    }

    /// This unit's loop, for [`super::lockstep::refine_lockstep`].
    pub fn loop_spec(&self) -> super::lockstep::LoopSpec<'_> {
        super::lockstep::LoopSpec {
            image: self.input(),
            class: self.prepared.class,
            prior: self.prior.view(),
            config: &self.job.config,
        }
    }

    /// Insertion/deletion of the prior and the refined map (empty without
    /// `metrics`), their curves (`{"prior": {...}, "refined": {...}}`, `None`
    /// without `metrics`) and the milliseconds they took.
    pub fn metrics(&self, refined: &Refined) -> Result<(CausalScores, CausalScores, Option<RefineCurves>, f64)> {
        let tm = Instant::now();
        if !self.job.metrics {
            return Ok((CausalScores::default(), CausalScores::default(), None, ms(tm.elapsed())));
        }
        let metrics = |m: ArrayView2<f32>| {
            causal_metrics_with_curves(
                &self.scorer,
                self.backend.image.as_ref(),
                self.input(),
                m,
                self.prepared.class,
                &self.job.insertion_starts,
            )
        };
        let ((p, pc), (r, rc)) = (metrics(self.prior.view())?, metrics(refined.map.view())?);
        Ok((p, r, Some(RefineCurves { prior: pc, refined: rc }), ms(tm.elapsed())))
    }

    /// Insertion/deletion of one map of this unit's input (`None` without `metrics`).
    pub fn map_metrics(&self, map: ArrayView2<f32>) -> Result<Option<CausalScores>> {
        if !self.job.metrics {
            return Ok(None);
        }
        causal_metrics(
            &self.scorer,
            self.backend.image.as_ref(),
            self.input(),
            map,
            self.prepared.class,
            &self.job.insertion_starts,
        )
        .map(Some)
    }

    /// Milliseconds the prior took.
    pub fn prior_ms(&self) -> f64 {
        self.prior_ms
    }

    /// Model evaluations of this unit: its own and its loop's two per query.
    pub fn evaluations(&self, refined: &Refined) -> u64 {
        self.scorer.evaluations() + 2 * refined.observations.len() as u64
    }

    /// Metrics, then every output of `refine` into `outputs` (committed at the end).
    pub fn finish(self, refined: Refined, outputs: output::OutputSet) -> Result<RefineOutcome> {
        let outcome = self.conclude(refined)?;
        outcome.write(&outputs)?;
        outputs.commit()?;
        Ok(outcome)
    }

    /// Metrics, the full-resolution map and the report: the outcome, in memory.
    pub fn conclude(self, refined: Refined) -> Result<RefineOutcome> {
        let (job, model, backend, gp_kernels) = (self.job, self.model, self.backend, self.gp_kernels.clone());
        let (x, class, probs, pre) =
            (self.prepared.pre.tensor.view(), self.prepared.class, &self.prepared.probs, &self.prepared.pre);
        let (_, h, w) = x.dim();
        let mut notes = self.notes.clone();
        let (prior_ms, gp_device, t0) = (self.prior_ms, self.gp_device, self.t0);
        if let Some(a) = &self.continued {
            notes.push(format!(
                "objective antithetic: the refinement's {} evaluations went to {} complements of the prior's masks and {} new mask pairs, not to box queries",
                a.extra_evaluations, a.complements, a.new_pairs
            ));
        }
        if let Some((t, why)) = refined.fit_failures.first() {
            notes.push(format!(
                "the length-scale fit (L-BFGS-B) failed in {} of {} iterations and kept the starting length scales (first at query {}: {why})",
                refined.fit_failures.len(),
                job.config.iters,
                t + 1
            ));
        }

        let (prior_metrics, refined_metrics, curves, metrics_ms) = self.metrics(&refined)?;
        // Lockstep loops score through their own scorer: their observations count too.
        let loop_scores: Vec<f32> = refined.observations.iter().flat_map(|o| [o.p_inside, o.p_outside]).collect();
        notes.extend(self.scorer.constant_note(class, &loop_scores));

        let mut full_res = None;
        let mut full_res_map = None;
        if job.full_res {
            let full = super::full_res::refined_full_res(&refined, &job.config, &pre.crop, gp_kernels.as_ref())?;
            let (fh, fw) = full.map.dim();
            let outside = full.crop.outside_fraction((fh, fw));
            notes.push(format!("refined_full.npy: {fh}×{fw} (original resolution)"));
            if outside > 0.0 {
                notes.push(format!(
                    "refined_full.npy: only rows {}..{} × columns {}..{} lie in the model's centre crop; the other {:.0}% is extrapolated (GP off its data, prior clamped at the crop edge)",
                    full.crop.rows[0], full.crop.rows[1], full.crop.cols[0], full.crop.cols[1], 100.0 * outside
                ));
            }
            full_res = Some(FullResReport { shape: [fh, fw], crop: full.crop, extrapolated_fraction: outside });
            full_res_map = Some(full.map);
        }

        let label = model.labels().and_then(|l| l.name(class)).map(str::to_string);
        let t = &refined.timings;
        let report = RefineReport {
            image: job.image.clone(),
            model: model.path().to_path_buf(),
            class,
            label,
            probability: probs[class],
            prior: PriorReport { method: job.prior.method(), scores: prior_metrics },
            refined: RefinedReport {
                length_scales: refined.gp.as_ref().map(|g| g.length_scales().to_vec()).unwrap_or_default(),
                fit_failures: refined.fit_failures.len(),
                prior_scale: refined.prior_affine[0],
                prior_offset: refined.prior_affine[1],
                relative_gain: job.config.relative_gain.then_some(refined.gain),
                scores: refined_metrics,
            },
            full_res,
            metrics: MetricsInfo {
                class,
                insertion_start: job.insertion_starts.first().copied(),
                step: w,
                baseline: "zero".into(),
            },
            settings: RefineSettingsReport {
                objective: super::RefineObjective::of(&job.config),
                preset: job.config.preset().into(),
                refine: job.config.clone(),
                baseline: job.config.baseline,
                prior: match &job.prior {
                    PriorSpec::Method(m) => PriorSetting::Method { name: m.name(), params: m.clone() },
                    PriorSpec::File(p) => PriorSetting::File { file: p.clone() },
                    PriorSpec::Map(m) => PriorSetting::Array { array: [m.nrows(), m.ncols()] },
                },
                grid: job.config.grid(h as u32, w as u32),
                input_size: [h, w],
                batch: job.batch,
                seed: job.config.seed,
            },
            device: DeviceReport {
                gp: Some(gp_device.into()),
                masking: backend.kind().into(),
                adapter: backend.describe(),
                ep: model.runs_on().into(),
            },
            model_evaluations: self.evaluations(&refined),
            observations: refined.observations.clone(),
            overlay_scale: output::OverlayScale::Percentile,
            posterior_updates: refined.posterior_updates,
            timings_ms: RefineTimingsMs {
                prior: prior_ms,
                model: ms(t.model),
                gp_fit: ms(t.gp_fit),
                posterior: ms(t.posterior),
                metrics: metrics_ms,
                total: ms(t0.elapsed()),
            },
            notes: notes.clone(),
        };
        Ok(RefineOutcome {
            report,
            prior: self.prior,
            refined,
            full_res: full_res_map,
            curves,
            rgb: self.prepared.rgb,
            notes,
        })
    }
}

/// The RISE prior of `job` and its antithetic continuation with the
/// refinement's 2·iters evaluations, in one pass over the prior's masks.
fn antithetic_continuation(
    job: &RefineJob,
    scorer: &Scorer,
    prepared: &Prepared,
    reporter: &dyn crate::progress::Reporter,
) -> Result<crate::explain::antithetic::Antithetic> {
    let PriorSpec::Method(Method::Rise(params)) = &job.prior else {
        return Err(crate::error::BorexError::invalid(format!(
            "objective antithetic continues a RISE prior's masks, and the prior {} is not RISE: use the prior rise-fast (or rise), or a box objective ({})",
            job.prior.method(),
            super::Objective::NAMES.join(", ")
        )));
    };
    let extra = 2 * job.config.iters;
    let bar = reporter.start((params.n + extra) as u64, "prior + antithetic");
    let a = crate::explain::antithetic::antithetic(
        scorer,
        prepared.pre.tensor.view(),
        prepared.class,
        params,
        extra,
        &bar,
    )?;
    bar.finish();
    Ok(a)
}

/// The explained class's probability from which `refine` names the equal-budget alternative.
pub const CONFIDENT_P: f32 = 0.5;

/// For a confident class (P ≥ [`CONFIDENT_P`]) with a RISE prior and box queries: a note that
/// there the box refinement did not beat RISE continued to the same evaluations on every image set
/// measured (issue #24, docs/quality.md), naming the default objective that did and the plain
/// RISE command.
pub fn confident_note(prior: &PriorSpec, cfg: &RefineConfig, p: f32) -> Option<String> {
    let PriorSpec::Method(Method::Rise(rise)) = prior else { return None };
    if p < CONFIDENT_P || !cfg.refiner.is_boxes() {
        return None;
    }
    let n = rise.n + 2 * cfg.iters;
    let continued = Method::Rise(crate::explain::RiseParams { n, ..*rise });
    Some(format!(
        "the class is confident (P = {p:.2} ≥ {CONFIDENT_P}): there the box refinement did not beat RISE continued to the same {n} evaluations on every image set measured (docs/quality.md); the default objective, antithetic, spends them on the complements of the prior's masks, and RISE continued alone is `borex explain --method {}`",
        continued.name()
    ))
}

/// The prior map of `spec` at the model-input resolution (an explainer's map, or a
/// map file resized with a note).
pub fn compute_prior(
    spec: &PriorSpec,
    model: &Classifier,
    scorer: &Scorer,
    prepared: &Prepared,
    baseline: crate::compute::Baseline,
    reporter: &dyn crate::progress::Reporter,
    notes: &mut Vec<String>,
) -> Result<Array2<f32>> {
    let x = prepared.pre.tensor.view();
    let (_, h, w) = x.dim();
    Ok(match spec {
        PriorSpec::Method(m) => {
            let bar = reporter.start(0, "prior");
            let input = ExplainInput { tensor: x, rgb: &prepared.rgb, baseline };
            let map = explain(m, model, scorer, &input, prepared.class, &prepared.probs, &bar)?.into_prior();
            bar.finish();
            map
        }
        PriorSpec::File(path) => {
            let file = read_map(path)?;
            notes.extend(file.notes);
            let (m, note) =
                crate::image::map_to_input(file.map, &prepared.pre.crop, h, w, &format!("prior {}", path.display()))?;
            notes.extend(note);
            m
        }
        PriorSpec::Map(map) => {
            if map.is_empty() {
                return Err(crate::error::BorexError::invalid("the prior map is empty"));
            }
            if let Some((r, c)) = crate::image::first_non_finite(map.view()) {
                return Err(crate::error::BorexError::invalid(format!(
                    "the prior map has a non-finite value (NaN or infinity) at ({r}, {c})"
                )));
            }
            let (m, note) = crate::image::map_to_input(map.clone(), &prepared.pre.crop, h, w, "the prior map")?;
            notes.extend(note);
            m
        }
    })
}
