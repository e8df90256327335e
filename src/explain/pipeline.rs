//! `explain` end to end: image → class → method → map, overlay, report.

use super::{explain, ExplainInput, Method};
use crate::compute::{Backend, Baseline};
use crate::error::Result;
use crate::job::{causal_metrics, ms, CausalScores, ClassSpec, Prepared, Source};
use crate::metrics::{spearman, InsertionStart};
use crate::model::{Classifier, Scorer};
use crate::output;
use ndarray::Array2;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Instant;

/// Everything an explain needs besides the model and the backend.
#[derive(Debug, Clone)]
pub struct ExplainJob {
    /// The image file.
    pub image: PathBuf,
    /// The class to explain.
    pub class: ClassSpec,
    /// The explainer.
    pub method: Method,
    /// What removed pixels become.
    pub baseline: Baseline,
    /// OUTDIR.
    pub out_dir: PathBuf,
    /// Also compute insertion/deletion of the map.
    pub metrics: bool,
    /// Insertion starts to score; the first is the report's `insertion`.
    pub insertion_starts: Vec<InsertionStart>,
    /// Images per model call.
    pub batch: usize,
    /// Re-run with the final linear layer randomised and compare the maps.
    pub sanity: bool,
}

/// What the explain produced: the maps and the report.
pub struct ExplainOutcome {
    /// The method's map (`map.npy`; `target.npy` for undesirable), model-input resolution.
    pub map: Array2<f32>,
    /// Every named map the method made (each written as `NAME.npy`), the primary first.
    pub maps: Vec<(&'static str, Array2<f32>)>,
    /// The map of the model with its head randomised (`sanity_map.npy`), with `sanity`.
    pub sanity_map: Option<Array2<f32>>,
    /// The report, as written to `report.json`.
    pub report: ExplainReport,
    /// The model-input crop as RGB (the overlay's background).
    pub rgb: image::RgbImage,
    /// What the user should know (also in the report).
    pub notes: Vec<String>,
}

impl ExplainOutcome {
    /// The map a caller asking for "the method's map" gets: the signed map
    /// where the method has one (undesirable's S±_c, evidence and
    /// counter-evidence; what a refine takes as its prior), else [`Self::map`].
    pub fn into_signed_or_primary(mut self) -> Array2<f32> {
        match self.maps.iter().position(|(n, _)| *n == "signed") {
            Some(i) => self.maps.swap_remove(i).1,
            None => self.map,
        }
    }
}

/// `report.json` of `borex explain`. Field names are the file's keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExplainReport {
    /// The randomised-head check, with `--sanity`.
    pub sanity: Option<SanityReport>,
    /// The image file (or an in-memory image's name).
    pub image: PathBuf,
    /// The ONNX model file.
    pub model: PathBuf,
    /// The method's name.
    pub method: String,
    /// The method's parameters.
    pub parameters: Method,
    /// The explained class.
    pub class: usize,
    /// Its label, when the model has labels.
    pub label: Option<String>,
    /// The model's probability of `class`.
    pub probability: f32,
    /// Insertion/deletion of the map (null without metrics).
    pub metrics: Option<CausalScores>,
    /// The map files.
    pub maps: Vec<String>,
    /// Method-specific details (undesirable: rivals and removal curves; null for the others).
    pub details: Option<super::undesirable::UndesirableDetails>,
    /// What removed pixels become.
    pub baseline: Baseline,
    /// Where the work ran.
    pub device: crate::job::DeviceReport,
    /// Images scored.
    pub model_evaluations: u64,
    /// Where the time went (milliseconds).
    pub timings_ms: ExplainTimingsMs,
    /// What the user should know.
    pub notes: Vec<String>,
}

/// `report.json`'s `sanity`: the map of the model with its last layer randomised.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SanityReport {
    /// The randomised layer.
    pub randomised: String,
    /// Spearman's rho between the two maps.
    pub spearman: Option<f64>,
    /// The randomised model's map file.
    pub map: String,
    /// Milliseconds the check took.
    pub time_ms: f64,
    /// How to read rho.
    pub note: String,
}

/// `report.json`'s `timings_ms` of an explain.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExplainTimingsMs {
    /// The method.
    pub method: f64,
    /// Insertion/deletion.
    pub metrics: f64,
    /// The whole explain.
    pub total: f64,
}

impl ExplainOutcome {
    /// Every output of `explain` into `outputs` (committed by the caller).
    pub fn write(&self, outputs: &output::OutputSet) -> Result<()> {
        // Every named map becomes NAME.npy; the overlay shows the maps a person reads (not the signed helper).
        let shown: Vec<_> = self.maps.iter().filter(|(n, _)| *n != "signed").map(|(_, m)| m.view()).collect();
        for (name, m) in &self.maps {
            output::write_npy(&outputs.file(&format!("{name}.npy")), m)?;
        }
        output::write_png(
            &outputs.file("overlay.png"),
            &output::overlay_panels(&self.rgb, &shown, output::OverlayScale::MinMax),
        )?;
        if let Some(m) = &self.sanity_map {
            output::write_npy(&outputs.file("sanity_map.npy"), m)?;
        }
        output::write_report(&outputs.file("report.json"), &self.report)
    }
}

/// Explain `job.image` and write its outputs into `job.out_dir` (staged, swapped in at the end).
pub fn run_explain(
    job: &ExplainJob,
    model: &Classifier,
    backend: &Backend,
    reporter: &dyn crate::progress::Reporter,
) -> Result<ExplainOutcome> {
    let outputs = output::OutputSet::begin_locked(&job.out_dir)?;
    let outcome = explain_source(job, Source::File(&job.image), model, backend, reporter)?;
    outcome.write(&outputs)?;
    outputs.commit()?;
    Ok(outcome)
}

/// Explain one image, in memory: what [`run_explain`] computes, without files.
pub fn explain_source(
    job: &ExplainJob,
    source: Source,
    model: &Classifier,
    backend: &Backend,
    reporter: &dyn crate::progress::Reporter,
) -> Result<ExplainOutcome> {
    let t0 = Instant::now();
    crate::limits::in_range("batch", job.batch, 1, crate::limits::MAX_BATCH)?;
    job.method.validate()?;
    let scorer = Scorer::new(model, backend.image.as_ref(), job.batch);
    let prepared = Prepared::from_source(source, model, &scorer, &job.class)?;
    let x = prepared.pre.tensor.view();
    crate::limits::batch_fits(job.batch, x.dim())?;
    let mut notes = prepared.notes.clone();
    let bar = reporter.start(0, "explain");
    let input = ExplainInput { tensor: x, rgb: &prepared.rgb, baseline: job.baseline };
    let explanation = explain(&job.method, model, &scorer, &input, prepared.class, &prepared.probs, &bar)?;
    let map = explanation.primary().clone();
    bar.finish();
    if let Some((r, c)) = crate::image::first_non_finite(map.view()) {
        return Err(crate::error::BorexError::invalid(format!(
            "the {} map has a non-finite value at ({r}, {c})",
            job.method.name()
        )));
    }
    if map.iter().all(|v| *v == 0.0) {
        notes.push(format!("the {} map is all zero: it ranks no pixel above another", job.method.name()));
    }
    let method_ms = ms(t0.elapsed());
    let tm = Instant::now();
    let metrics = if job.metrics {
        Some(causal_metrics(&scorer, backend.image.as_ref(), x, map.view(), prepared.class, &job.insertion_starts)?)
    } else {
        None
    };
    let metrics_ms = ms(tm.elapsed());
    notes.extend(scorer.constant_note(prepared.class, &[]));
    let (sanity, sanity_map) = if job.sanity {
        let ts = Instant::now();
        let (random, layer) = model.with_randomised_head(0x5a17)?;
        let rscorer = Scorer::new(&random, backend.image.as_ref(), job.batch);
        let rmap = explain(
            &job.method,
            &random,
            &rscorer,
            &input,
            prepared.class,
            &prepared.probs,
            &crate::progress::NoProgress,
        )?
        .primary()
        .clone();
        let rho = spearman(&map.iter().copied().collect::<Vec<_>>(), &rmap.iter().copied().collect::<Vec<_>>());
        let report = SanityReport {
            randomised: layer,
            spearman: rho,
            map: "sanity_map.npy".into(),
            time_ms: ms(ts.elapsed()),
            note:
                "a map that depends on what the model learned changes when its head is randomised: |rho| well below 1"
                    .into(),
        };
        (Some(report), Some(rmap))
    } else {
        (None, None)
    };
    let class = prepared.class;
    let report = ExplainReport {
        sanity,
        image: job.image.clone(),
        model: model.path().to_path_buf(),
        method: job.method.name(),
        parameters: job.method.clone(),
        class,
        label: model.labels().and_then(|l| l.name(class)).map(str::to_string),
        probability: prepared.probs[class],
        metrics,
        maps: explanation.maps.iter().map(|(n, _)| format!("{n}.npy")).collect(),
        details: explanation.details,
        baseline: job.baseline,
        device: crate::job::DeviceReport {
            gp: None,
            masking: backend.kind().into(),
            adapter: backend.describe(),
            ep: model.runs_on().into(),
        },
        model_evaluations: scorer.evaluations(),
        timings_ms: ExplainTimingsMs { method: method_ms, metrics: metrics_ms, total: ms(t0.elapsed()) },
        notes: notes.clone(),
    };
    Ok(ExplainOutcome { map, maps: explanation.maps, sanity_map, report, rgb: prepared.rgb, notes })
}
