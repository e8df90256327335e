//! `refine` end to end: image → preprocess → class → prior → BOREx → metrics →
//! outputs. The CLI and library users call [`run_refine`].

use super::{refine, RefineConfig, Refined};
use crate::compute::Backend;
use crate::error::Result;
use crate::explain::{explain, ExplainInput, Method};
use crate::job::description::Settings;
use crate::job::{causal_metrics, causal_metrics_with_curves, ms, read_map, ClassSpec, Prepared};
use crate::metrics::InsertionStart;
use crate::model::{Classifier, Scorer};
use crate::output;
use ndarray::{Array2, ArrayView2};
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

/// Where the prior map comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum PriorSpec {
    /// One of borex's explainers.
    Method(Method),
    /// A map from another tool: `.npy` (float32/float64, H×W) or a grayscale PNG.
    File(PathBuf),
}

impl PriorSpec {
    pub fn parse(s: &str, seed: u64) -> Self {
        Method::parse(s, seed).map(PriorSpec::Method).unwrap_or_else(|| PriorSpec::File(PathBuf::from(s)))
    }

    pub fn method(&self) -> String {
        match self {
            PriorSpec::Method(m) => m.name(),
            PriorSpec::File(p) => format!("file:{}", p.display()),
        }
    }
}

/// Everything a refine needs besides the model and the backend.
#[derive(Debug, Clone)]
pub struct RefineJob {
    pub image: PathBuf,
    pub class: ClassSpec,
    pub prior: PriorSpec,
    pub config: RefineConfig,
    pub out_dir: PathBuf,
    /// Also write the refined map at the original image resolution.
    pub full_res: bool,
    /// Insertion starts to score; the first is the report's `insertion`.
    pub insertion_starts: Vec<InsertionStart>,
    /// Compute insertion/deletion of both maps.
    pub metrics: bool,
    pub batch: usize,
}

impl PriorSpec {
    /// The prior as a job setting: a method's name, or a map file's path and content hash.
    pub fn setting(&self) -> Result<serde_json::Value> {
        Ok(match self {
            PriorSpec::Method(m) => json!(m.name()),
            PriorSpec::File(p) => json!({"file": p, "sha256": crate::job::description::sha256_file(p)?}),
        })
    }
}

/// The flags of [`RefineConfig`]'s fields; the others are named by field.
const CONFIG_FLAGS: [&str; 10] =
    ["iters", "sizes", "kappa", "gain", "refit_every", "stride", "seed", "objective", "readout", "prior_mean"];

impl RefineJob {
    /// Every setting that changes a result (for the job description), keyed
    /// by its flag: class, prior, each refine knob, baseline, metrics. The
    /// batch size and the lockstep width change only the speed.
    pub fn settings(&self) -> Result<Settings> {
        let mut s = Settings::new();
        s.insert("--class".into(), json!(self.class));
        s.insert("--prior".into(), self.prior.setting()?);
        if let serde_json::Value::Object(fields) = json!(self.config) {
            for (k, v) in fields {
                let key = match k.as_str() {
                    "refit" => {
                        s.insert("--fixed-length-scales".into(), json!(v == json!(false)));
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
            ("--refit-every", json!(1)),
            ("--stride", json!(1)),
            ("--readout", json!(super::full_res::Readout::Window)),
        ] {
            s.entry(k.to_string()).or_insert(v);
        }
        s.entry("--prior-mean".to_string()).or_insert(json!(super::PriorMean::Scaled));
        s.insert("--baseline".into(), json!(self.config.baseline));
        s.insert("--no-metrics".into(), json!(!self.metrics));
        if self.metrics {
            s.insert("--insertion-start".into(), json!(self.insertion_starts));
        }
        s.insert("--full-res".into(), json!(self.full_res));
        Ok(s)
    }
}

/// What the refine produced (also written to `report.json`).
pub struct RefineOutcome {
    pub report: serde_json::Value,
    pub prior: Array2<f32>,
    pub refined: Refined,
    pub notes: Vec<String>,
}

pub fn run_refine(job: &RefineJob, model: &Classifier, backend: &Backend, quiet: bool) -> Result<RefineOutcome> {
    let t0 = Instant::now();
    job.config.validate()?;
    let outputs = output::OutputSet::begin(&job.out_dir)?;
    let unit = RefineUnit::prepare(job, Source::File(&job.image), model, backend, quiet, t0)?;
    let bar = crate::progress::bar(job.config.iters as u64, "refine", quiet);
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
    bar.finish_and_clear();
    unit.finish(refined, outputs)
}

/// Where a unit's image comes from.
#[derive(Clone, Copy)]
pub enum Source<'a> {
    File(&'a std::path::Path),
    /// A decoded image (a video frame) and how errors name it.
    Rgb(&'a image::RgbImage, &'a str),
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
    pub prepared: Prepared,
    /// The prior at model-input resolution, before scaling.
    pub prior: Array2<f32>,
    pub notes: Vec<String>,
    pub gp_kernels: std::sync::Arc<dyn crate::compute::GpKernels>,
    gp_device: &'static str,
    prior_ms: f64,
    t0: Instant,
}

impl<'a> RefineUnit<'a> {
    pub fn prepare(
        job: &'a RefineJob,
        source: Source,
        model: &'a Classifier,
        backend: &'a Backend,
        quiet: bool,
        t0: Instant,
    ) -> Result<Self> {
        Self::prepare_with_prior(job, source, model, backend, None, quiet, t0)
    }

    /// [`prepare`](Self::prepare), with the prior given (model-input size)
    /// instead of made from `job.prior`: a video frame's warm start.
    pub fn prepare_with_prior(
        job: &'a RefineJob,
        source: Source,
        model: &'a Classifier,
        backend: &'a Backend,
        given: Option<Array2<f32>>,
        quiet: bool,
        t0: Instant,
    ) -> Result<Self> {
        let scorer = Scorer::new(model, backend.image.as_ref(), job.batch);
        let prepared = match source {
            Source::File(path) => Prepared::new(path, model, &scorer, &job.class)?,
            Source::Rgb(rgb, name) => Prepared::from_rgb(rgb, name, model, &scorer, &job.class)?,
        };
        let x = prepared.pre.tensor.view();
        let (_, h, w) = x.dim();
        crate::limits::batch_fits(job.batch, x.dim())?;
        let mut notes = prepared.notes.clone();
        notes.extend(job.config.check_sizes(h as u32, w as u32)?);

        let gp_kernels = backend.gp.clone();
        let gp_device = backend.kind();

        let tp = Instant::now();
        let prior = match given {
            Some(p) if p.dim() == (h, w) => p,
            Some(p) => {
                return Err(crate::error::BorexError::invalid(format!(
                    "given prior is {:?}, the model input {h}×{w}",
                    p.dim()
                )))
            }
            None => compute_prior(&job.prior, model, &scorer, &prepared, job.config.baseline, quiet, &mut notes)?,
        };
        let prior_ms = ms(tp.elapsed());

        Ok(Self { job, model, backend, scorer, prior, notes, gp_kernels, gp_device, prior_ms, t0, prepared })
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

    /// Insertion/deletion of the prior and the refined map (JSON, null without
    /// `metrics`), their curves (`{"prior": {...}, "refined": {...}}`, null
    /// without `metrics`) and the milliseconds they took.
    pub fn metrics(&self, refined: &Refined) -> Result<(serde_json::Value, serde_json::Value, serde_json::Value, f64)> {
        let tm = Instant::now();
        if !self.job.metrics {
            return Ok((json!(null), json!(null), json!(null), ms(tm.elapsed())));
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
        Ok((p, r, json!({"prior": pc, "refined": rc}), ms(tm.elapsed())))
    }

    /// Insertion/deletion of one map of this unit's input (JSON, null without `metrics`).
    pub fn map_metrics(&self, map: ArrayView2<f32>) -> Result<serde_json::Value> {
        if !self.job.metrics {
            return Ok(json!(null));
        }
        causal_metrics(
            &self.scorer,
            self.backend.image.as_ref(),
            self.input(),
            map,
            self.prepared.class,
            &self.job.insertion_starts,
        )
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
        let (job, model, backend, gp_kernels) = (self.job, self.model, self.backend, self.gp_kernels.clone());
        let (x, class, probs, pre) =
            (self.prepared.pre.tensor.view(), self.prepared.class, &self.prepared.probs, &self.prepared.pre);
        let (_, h, w) = x.dim();
        let mut notes = self.notes.clone();
        let (prior, prior_ms, gp_device, t0) = (&self.prior, self.prior_ms, self.gp_device, self.t0);
        if let Some((t, why)) = refined.fit_failures.first() {
            notes.push(format!(
                "the length-scale fit (L-BFGS-B) failed in {} of {} iterations and kept the starting length scales (first at query {}: {why})",
                refined.fit_failures.len(),
                job.config.iters,
                t + 1
            ));
        }

        let (prior_metrics, refined_metrics, curves, metrics_ms) = self.metrics(&refined)?;

        // Outputs, staged and moved into place together at the end. prior.npy is the scaled prior (mean |S0| = m),
        // the GP's mean function, in the same units as refined.npy.
        output::write_npy(&outputs.file("prior.npy"), &refined.scaled_prior)?;
        output::write_npy(&outputs.file("refined.npy"), &refined.map)?;
        let panel = output::overlay_panels(&self.prepared.rgb, &[prior.view(), refined.map.view()]);
        output::write_png(&outputs.file("overlay.png"), &panel)?;
        if !curves.is_null() {
            // The insertion/deletion curves behind the AUCs, for `borex report`.
            output::write_json(&outputs.file("curves.json"), &curves)?;
        }
        let mut full_res = json!(null);
        if job.full_res {
            let full = super::full_res::refined_full_res(&refined, &job.config, &pre.crop, gp_kernels.as_ref())?;
            output::write_npy(&outputs.file("refined_full.npy"), &full.map)?;
            let (fh, fw) = full.map.dim();
            let outside = full.crop.outside_fraction((fh, fw));
            notes.push(format!("refined_full.npy: {fh}×{fw} (original resolution)"));
            if outside > 0.0 {
                notes.push(format!(
                    "refined_full.npy: only rows {}..{} × columns {}..{} lie in the model's centre crop; the other {:.0}% is extrapolated (GP off its data, prior clamped at the crop edge)",
                    full.crop.rows[0], full.crop.rows[1], full.crop.cols[0], full.crop.cols[1], 100.0 * outside
                ));
            }
            full_res = json!({"shape": [fh, fw], "crop": full.crop, "extrapolated_fraction": outside});
        }

        let label = model.labels().and_then(|l| l.name(class)).map(str::to_string);
        let t = &refined.timings;
        let report = json!({
            "image": job.image,
            "model": model.path(),
            "class": class,
            "label": label,
            "probability": probs[class],
            "prior": with_fields(json!({"method": job.prior.method()}), &prior_metrics),
            "refined": with_fields(
                json!({"length_scales": refined.gp.length_scales(), "fit_failures": refined.fit_failures.len(), "prior_scale": refined.prior_affine[0], "prior_offset": refined.prior_affine[1]}),
                &refined_metrics
            ),
            "full_res": full_res,
            "metrics": {"class": class, "insertion_start": job.insertion_starts.first(), "step": w, "baseline": "zero"},
            "settings": {
                "preset": job.config.preset(),
                "refine": job.config,
                "baseline": job.config.baseline,
                "prior": match &job.prior {
                    PriorSpec::Method(m) => with_fields(json!({"name": m.name()}), &json!(m)),
                    PriorSpec::File(p) => json!({"file": p}),
                },
                "grid": job.config.grid(h as u32, w as u32),
                "input_size": [h, w],
                "batch": job.batch,
                "seed": job.config.seed,
            },
            "device": {"gp": gp_device, "masking": backend.kind(), "adapter": backend.describe(), "ep": model.ep().name()},
            "model_evaluations": self.evaluations(&refined),
            "observations": refined.observations,
            "posterior_updates": refined.posterior_updates,
            "timings_ms": {
                "prior": prior_ms,
                "model": ms(t.model),
                "gp_fit": ms(t.gp_fit),
                "posterior": ms(t.posterior),
                "metrics": metrics_ms,
                "total": ms(t0.elapsed()),
            },
            "notes": notes,
        });
        output::write_json(&outputs.file("report.json"), &report)?;
        outputs.commit()?;
        Ok(RefineOutcome { report, prior: self.prior, refined, notes })
    }
}

/// The prior map of `spec` at the model-input resolution (an explainer's map, or a
/// map file resized with a note).
pub fn compute_prior(
    spec: &PriorSpec,
    model: &Classifier,
    scorer: &Scorer,
    prepared: &Prepared,
    baseline: crate::compute::Baseline,
    quiet: bool,
    notes: &mut Vec<String>,
) -> Result<Array2<f32>> {
    let x = prepared.pre.tensor.view();
    let (_, h, w) = x.dim();
    Ok(match spec {
        PriorSpec::Method(m) => {
            let bar = crate::progress::bar(0, "prior", quiet);
            let input = ExplainInput { tensor: x, rgb: &prepared.rgb, baseline };
            let map = explain(m, model, scorer, &input, prepared.class, &prepared.probs, &bar)?.into_prior();
            bar.finish_and_clear();
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
    })
}

/// `base` with every field of `extra` (an object, or null for none) added.
fn with_fields(mut base: serde_json::Value, extra: &serde_json::Value) -> serde_json::Value {
    if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    } else if let Some(b) = base.as_object_mut() {
        b.insert("insertion".into(), serde_json::Value::Null);
        b.insert("deletion".into(), serde_json::Value::Null);
    }
    base
}
