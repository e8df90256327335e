//! `explain` end to end: image → class → method → map, overlay, report.

use super::{explain, ExplainInput, Method};
use crate::compute::{Backend, Baseline};
use crate::error::Result;
use crate::job::{causal_metrics, ms, ClassSpec, Prepared};
use crate::metrics::{spearman, InsertionStart};
use crate::model::{Classifier, Scorer};
use crate::output;
use ndarray::Array2;
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct ExplainJob {
    pub image: PathBuf,
    pub class: ClassSpec,
    pub method: Method,
    pub baseline: Baseline,
    pub out_dir: PathBuf,
    pub metrics: bool,
    pub insertion_starts: Vec<InsertionStart>,
    pub batch: usize,
    /// Re-run with the final linear layer randomised and compare the maps.
    pub sanity: bool,
}

pub struct ExplainOutcome {
    pub map: Array2<f32>,
    pub report: serde_json::Value,
    /// What the user should know (also in the report).
    pub notes: Vec<String>,
}

pub fn run_explain(job: &ExplainJob, model: &Classifier, backend: &Backend, quiet: bool) -> Result<ExplainOutcome> {
    let t0 = Instant::now();
    let outputs = output::OutputSet::begin(&job.out_dir)?;
    let scorer = Scorer::new(model, backend.image.as_ref(), job.batch);
    let prepared = Prepared::new(&job.image, model, &scorer, &job.class)?;
    let x = prepared.pre.tensor.view();
    crate::limits::batch_fits(job.batch, x.dim())?;
    let mut notes = prepared.notes.clone();
    let bar = crate::progress::bar(0, "explain", quiet);
    let input = ExplainInput { tensor: x, rgb: &prepared.rgb, baseline: job.baseline };
    let explanation = explain(&job.method, model, &scorer, &input, prepared.class, &prepared.probs, &bar)?;
    let map = explanation.primary().clone();
    bar.finish_and_clear();
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
        causal_metrics(&scorer, backend.image.as_ref(), x, map.view(), prepared.class, &job.insertion_starts)?
    } else {
        json!(null)
    };
    // Every named map becomes NAME.npy; the overlay shows the maps a person reads (not the signed helper).
    let shown: Vec<_> = explanation.maps.iter().filter(|(n, _)| *n != "signed").map(|(_, m)| m.view()).collect();
    for (name, m) in &explanation.maps {
        output::write_npy(&outputs.file(&format!("{name}.npy")), m)?;
    }
    output::write_png(&outputs.file("overlay.png"), &output::overlay_panels(&prepared.rgb, &shown))?;
    let sanity = if job.sanity {
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
            &indicatif::ProgressBar::hidden(),
        )?
        .primary()
        .clone();
        output::write_npy(&outputs.file("sanity_map.npy"), &rmap)?;
        let rho = spearman(&map.iter().copied().collect::<Vec<_>>(), &rmap.iter().copied().collect::<Vec<_>>());
        json!({"randomised": layer, "spearman": rho, "map": "sanity_map.npy", "time_ms": ms(ts.elapsed()),
               "note": "a map that depends on what the model learned changes when its head is randomised: |rho| well below 1"})
    } else {
        json!(null)
    };
    let class = prepared.class;
    let report = json!({
        "sanity": sanity,
        "image": job.image,
        "model": model.path(),
        "method": job.method.name(),
        "parameters": job.method,
        "class": class,
        "label": model.labels().and_then(|l| l.name(class)),
        "probability": prepared.probs[class],
        "metrics": metrics,
        "maps": explanation.maps.iter().map(|(n, _)| format!("{n}.npy")).collect::<Vec<_>>(),
        "details": explanation.details,
        "baseline": job.baseline,
        "device": {"masking": backend.kind(), "adapter": backend.describe(), "ep": model.ep().name()},
        "model_evaluations": scorer.evaluations(),
        "timings_ms": {"method": method_ms, "metrics": ms(tm.elapsed()), "total": ms(t0.elapsed())},
        "notes": notes,
    });
    output::write_json(&outputs.file("report.json"), &report)?;
    outputs.commit()?;
    Ok(ExplainOutcome { map, report, notes })
}
