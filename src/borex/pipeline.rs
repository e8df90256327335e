//! `refine` end to end: image → preprocess → class → prior → BOREx → metrics →
//! outputs. The CLI and library users call [`run_refine`].

use super::{refine, RefineConfig, Refined};
use crate::compute::Backend;
use crate::error::Result;
use crate::explain::{explain, ExplainInput, Method};
use crate::job::{causal_metrics, ms, read_map, ClassSpec, Prepared};
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
    output::prepare_dir(&job.out_dir)?;
    let scorer = Scorer::new(model, backend.image.as_ref(), job.batch);
    let prepared = Prepared::new(&job.image, model, &scorer, &job.class)?;
    let (x, class, probs, pre) = (prepared.pre.tensor.view(), prepared.class, &prepared.probs, &prepared.pre);
    let (_, h, w) = x.dim();
    let mut notes = vec![];

    // GP stages: the GPU session holds a bounded number of observations.
    let gp_on_cpu = backend.gpu.is_some() && job.config.iters > crate::compute::gpu::MAX_OBS;
    let gp_kernels: std::sync::Arc<dyn crate::compute::GpKernels> = if gp_on_cpu {
        notes.push(format!(
            "--iters {} exceeds the GPU posterior's {} observations: GP stages run on the CPU",
            job.config.iters,
            crate::compute::gpu::MAX_OBS
        ));
        std::sync::Arc::new(crate::compute::cpu::CpuKernels)
    } else {
        backend.gp.clone()
    };
    let gp_device = if gp_on_cpu { "cpu" } else { backend.kind() };

    let tp = Instant::now();
    let prior = compute_prior(&job.prior, model, &scorer, &prepared, job.config.baseline, quiet, &mut notes)?;
    let prior_ms = ms(tp.elapsed());

    let bar = crate::progress::bar(job.config.iters as u64, "refine", quiet);
    let refined = refine(&scorer, gp_kernels.as_ref(), x, class, prior.view(), &job.config, &bar)?;
    bar.finish_and_clear();

    let tm = Instant::now();
    let metrics = |m: ArrayView2<f32>| -> Result<serde_json::Value> {
        if !job.metrics {
            return Ok(json!(null));
        }
        causal_metrics(&scorer, backend.image.as_ref(), x, m, class, &job.insertion_starts)
    };
    let (prior_metrics, refined_metrics) = (metrics(prior.view())?, metrics(refined.map.view())?);
    let metrics_ms = ms(tm.elapsed());

    // Outputs, each written atomically.
    output::write_npy(&job.out_dir.join("prior.npy"), &prior)?;
    output::write_npy(&job.out_dir.join("refined.npy"), &refined.map)?;
    let panel = output::overlay_panels(&prepared.rgb, &[prior.view(), refined.map.view()]);
    output::write_png(&job.out_dir.join("overlay.png"), &panel)?;
    if job.full_res {
        let full = super::full_res::refined_full_res(&refined, &job.config, &pre.crop, gp_kernels.as_ref())?;
        output::write_npy(&job.out_dir.join("refined_full.npy"), &full)?;
        notes.push(format!("refined_full.npy: {}×{} (original resolution)", full.dim().0, full.dim().1));
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
        "refined": with_fields(json!({"length_scales": refined.gp.length_scales()}), &refined_metrics),
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
        "model_evaluations": scorer.evaluations(),
        "observations": refined.observations,
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
    output::write_json(&job.out_dir.join("report.json"), &report)?;
    Ok(RefineOutcome { report, prior, refined, notes })
}

/// The prior map of `spec` at the model-input resolution (an explainer's map, or a
/// map file resized with a note).
pub fn compute_prior(spec: &PriorSpec, model: &Classifier, scorer: &Scorer, prepared: &Prepared, baseline: crate::compute::Baseline, quiet: bool, notes: &mut Vec<String>) -> Result<Array2<f32>> {
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
            let m = read_map(path)?;
            if m.dim() != (h, w) {
                notes.push(format!("prior {} is {}×{}: resized to the model input {h}×{w}", path.display(), m.dim().0, m.dim().1));
                output::resize_map(m.view(), h, w)
            } else {
                m
            }
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
