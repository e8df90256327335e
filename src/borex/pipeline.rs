//! `refine` end to end: image → preprocess → class → prior → BOREx → metrics →
//! outputs. The CLI and library users call [`run_refine`].

use super::{refine, RefineConfig, Refined};
use crate::compute::Backend;
use crate::error::{BorexError, Result};
use crate::explain::{rise, RiseParams};
use crate::metrics::{causal_curve, CausalMetric, InsertionStart};
use crate::model::{Classifier, Scorer};
use crate::output;
use ndarray::{Array2, ArrayView2};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Which class to explain.
#[derive(Debug, Clone, PartialEq)]
pub enum ClassSpec {
    Top1,
    Id(usize),
    Name(String),
}

impl std::str::FromStr for ClassSpec {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Ok(match s.trim() {
            "top1" => ClassSpec::Top1,
            t => t.parse::<usize>().map(ClassSpec::Id).unwrap_or_else(|_| ClassSpec::Name(t.to_string())),
        })
    }
}

impl ClassSpec {
    pub fn resolve(&self, model: &Classifier, probs: &[f32]) -> Result<usize> {
        match self {
            ClassSpec::Top1 => Ok(probs.iter().enumerate().fold((0, f32::MIN), |b, (i, v)| if *v > b.1 { (i, *v) } else { b }).0),
            ClassSpec::Id(i) if *i < probs.len() => Ok(*i),
            ClassSpec::Id(i) => Err(BorexError::invalid(format!("class {i} is out of range: the model has {} classes (0–{})", probs.len(), probs.len() - 1))),
            ClassSpec::Name(n) => model
                .labels()
                .ok_or_else(|| BorexError::invalid(format!("class name {n:?} given but the model has no labels; pass --labels or a class id")))?
                .find(n),
        }
    }
}

/// Where the prior map comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum PriorSpec {
    Rise(RiseParams),
    /// A map from another tool: `.npy` (float32/float64, H×W) or a grayscale PNG.
    File(PathBuf),
}

impl PriorSpec {
    pub fn parse(s: &str, seed: u64) -> Self {
        match s {
            "rise" => PriorSpec::Rise(RiseParams::standard(seed)),
            "rise-fast" => PriorSpec::Rise(RiseParams::fast(seed)),
            p => PriorSpec::File(PathBuf::from(p)),
        }
    }

    pub fn method(&self) -> String {
        match self {
            PriorSpec::Rise(p) if *p == RiseParams::standard(p.seed) => "rise".into(),
            PriorSpec::Rise(p) if *p == RiseParams::fast(p.seed) => "rise-fast".into(),
            PriorSpec::Rise(p) => format!("rise(N={}, s={}, p={})", p.n, p.s, p.p),
            PriorSpec::File(p) => format!("file:{}", p.display()),
        }
    }
}

/// Read an external map: `.npy` (f32 or f64, 2-D) or a grayscale/colour PNG (luminance).
pub fn read_map(path: &Path) -> Result<Array2<f32>> {
    if !path.is_file() {
        return Err(BorexError::invalid(format!("prior map {} not found", path.display())));
    }
    let bad = |r: String| BorexError::invalid(format!("prior map {}: {r}", path.display()));
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy")) {
        if let Ok(a) = ndarray_npy::read_npy::<_, Array2<f32>>(path) {
            return Ok(a);
        }
        return ndarray_npy::read_npy::<_, Array2<f64>>(path)
            .map(|a| a.mapv(|v| v as f32))
            .map_err(|e| bad(format!("not a 2-D float32/float64 .npy ({e})")));
    }
    let img = image::open(path).map_err(|e| bad(e.to_string()))?.to_luma32f();
    Ok(Array2::from_shape_fn((img.height() as usize, img.width() as usize), |(y, x)| img.get_pixel(x as u32, y as u32)[0]))
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
    pub insertion_start: InsertionStart,
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

fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e5).round() / 100.0
}

pub fn run_refine(job: &RefineJob, model: &Classifier, backend: &Backend, quiet: bool) -> Result<RefineOutcome> {
    let t0 = Instant::now();
    job.config.validate()?;
    output::prepare_dir(&job.out_dir)?;
    let rgb = crate::image::load_rgb(&job.image)?;
    let pre = model.preprocess().apply(&rgb);
    let x = pre.tensor.view();
    let (_, h, w) = x.dim();
    let scorer = Scorer::new(model, backend.image.as_ref(), job.batch);
    let probs = scorer.probabilities(x)?;
    let class = job.class.resolve(model, &probs)?;
    let mut notes = vec![];

    // GP stages: the GPU session holds a bounded number of observations.
    let gp_kernels = match &backend.gpu {
        Some(_) if job.config.iters > crate::compute::gpu::MAX_OBS => {
            notes.push(format!("--iters {} exceeds the GPU posterior's {} observations: GP stages run on the CPU", job.config.iters, crate::compute::gpu::MAX_OBS));
            std::sync::Arc::new(crate::compute::cpu::CpuKernels) as std::sync::Arc<dyn crate::compute::GpKernels>
        }
        _ => backend.gp.clone(),
    };
    let gp_device = if notes.is_empty() { backend.kind() } else { "cpu" };

    let tp = Instant::now();
    let prior = match &job.prior {
        PriorSpec::Rise(p) => {
            let bar = crate::progress::bar(p.n as u64, "prior", quiet);
            let m = rise(&scorer, x, class, p, &bar)?;
            bar.finish_and_clear();
            m
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
    };
    let prior_ms = ms(tp.elapsed());

    let bar = crate::progress::bar(job.config.iters as u64, "refine", quiet);
    let refined = refine(&scorer, gp_kernels.as_ref(), x, class, prior.view(), &job.config, &bar)?;
    bar.finish_and_clear();

    let tm = Instant::now();
    let metrics = |m: ArrayView2<f32>| -> Result<serde_json::Value> {
        if !job.metrics {
            return Ok(json!(null));
        }
        let curve = |metric| causal_curve(&scorer, backend.image.as_ref(), x, m, class, metric, job.insertion_start);
        Ok(json!({"insertion": curve(CausalMetric::Insertion)?.auc, "deletion": curve(CausalMetric::Deletion)?.auc}))
    };
    let (prior_metrics, refined_metrics) = (metrics(prior.view())?, metrics(refined.map.view())?);
    let metrics_ms = ms(tm.elapsed());

    // Outputs, each written atomically.
    output::write_npy(&job.out_dir.join("prior.npy"), &prior)?;
    output::write_npy(&job.out_dir.join("refined.npy"), &refined.map)?;
    let panel = output::overlay_panels(&output::denormalise(x, model.preprocess()), &[prior.view(), refined.map.view()]);
    output::write_png(&job.out_dir.join("overlay.png"), &panel)?;
    if job.full_res {
        let full = super::full_res::refined_full_res(&refined, &prior, &job.config, &pre.crop, gp_kernels.as_ref())?;
        output::write_npy(&job.out_dir.join("refined_full.npy"), &full)?;
        notes.push(format!("refined_full.npy: {}×{} (original resolution)", full.dim().0, full.dim().1));
    }

    let label = model.labels().and_then(|l| l.name(class)).map(str::to_string);
    let t = &refined.timings;
    let report = json!({
        "image": job.image,
        "class": class,
        "label": label,
        "probability": probs[class],
        "prior": {"method": job.prior.method(), "insertion": prior_metrics["insertion"], "deletion": prior_metrics["deletion"]},
        "refined": {"insertion": refined_metrics["insertion"], "deletion": refined_metrics["deletion"], "length_scales": refined.gp.length_scales()},
        "metrics": {"class": class, "insertion_start": job.insertion_start, "step": w, "baseline": "zero"},
        "settings": {
            "preset": if job.config == (RefineConfig { seed: job.config.seed, ..Default::default() }) { "paper" } else { "custom" },
            "refine": job.config,
            "baseline": job.config.baseline,
            "prior": match &job.prior { PriorSpec::Rise(p) => json!(p), PriorSpec::File(p) => json!({"file": p}) },
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
