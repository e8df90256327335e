//! Sparse visual counterfactual explanations (Boreiko et al., "Sparse Visual
//! Counterfactual Explanations in Image Space", 2022): the smallest change in
//! an l_p ball (p = 1.5 by default) ∩ the image box that makes the classifier
//! say class t, found by Auto-Frank-Wolfe on the input gradient from a
//! forward+gradient ONNX graph.
//!
//! Perturbations live in pixel space, [0,1] per channel at the model's input
//! resolution (after the resize and centre crop); a model whose sidecar says
//! `grayscale` reads the channel mean, so its perturbations are one grey
//! channel and norms count each pixel once.

pub mod afw;
pub mod gradient;
pub mod lmo;

pub use afw::{AfwConfig, AfwResult, Evaluation, Objective};
pub use gradient::GradientModel;

use crate::error::{BorexError, Result};
use crate::image::Preprocess;
use crate::model::Classifier;
use crate::output::OutputSet;
use ndarray::{Array2, Array3, Array4, ArrayView2, ArrayView3};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The model seen from pixel space: items × (channels·H·W) in [0,1] → log p_target and its gradient.
pub struct ModelObjective<'a> {
    pub grad: &'a GradientModel,
    pub preprocess: &'a Preprocess,
    /// 1 for a grayscale model (one channel, fed to all three), else 3.
    pub channels: usize,
    /// Items per model call.
    pub batch: usize,
}

impl ModelObjective<'_> {
    fn hw(&self) -> (usize, usize) {
        let (h, w) = self.preprocess.input_size;
        (h as usize, w as usize)
    }

    /// Pixel-space rows → normalised model inputs N×3×H×W.
    pub fn to_input(&self, x: ArrayView2<f32>) -> Array4<f32> {
        let (h, w) = self.hw();
        let pre = self.preprocess;
        Array4::from_shape_fn((x.nrows(), 3, h, w), |(n, c, i, j)| {
            let src = if self.channels == 1 { 0 } else { c };
            (255.0 * x[[n, (src * h + i) * w + j]] - pre.mean[c]) / pre.std[c]
        })
    }
}

impl Objective for ModelObjective<'_> {
    fn eval(&self, x: ArrayView2<f32>, targets: &[usize]) -> Result<Evaluation> {
        let (h, w) = self.hw();
        let (n, d) = x.dim();
        let mut value = Vec::with_capacity(n);
        let mut grad = Array2::<f32>::zeros((n, d));
        let mut probs_rows = vec![];
        for start in (0..n).step_by(self.batch.max(1)) {
            let end = (start + self.batch.max(1)).min(n);
            let input = self.to_input(x.slice(ndarray::s![start..end, ..]));
            let (logits, g) = self.grad.logits_and_grad(input.view(), &targets[start..end])?;
            for (r, row) in logits.rows().into_iter().enumerate() {
                let m = row.fold(f32::NEG_INFINITY, |m, v| m.max(*v));
                let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f32>().ln();
                value.push(row[targets[start + r]] - lse);
                probs_rows.push(row.mapv(|v| (v - lse).exp()));
            }
            // Chain rule through z = (255·v − mean)/std; a grey channel feeds all three.
            for r in 0..end - start {
                let mut out = grad.row_mut(start + r);
                for c in 0..3 {
                    let k = 255.0 / self.preprocess.std[c];
                    let dst = if self.channels == 1 { 0 } else { c };
                    for i in 0..h {
                        for j in 0..w {
                            out[(dst * h + i) * w + j] += g[[r, c, i, j]] * k;
                        }
                    }
                }
            }
        }
        let classes = probs_rows.first().map_or(0, |r| r.len());
        let probs = Array2::from_shape_fn((n, classes), |(i, c)| probs_rows[i][c]);
        Ok(Evaluation { value, grad, probs })
    }
}

/// Which classes to explain towards.
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// One class: an id or a label name (`top1` is the predicted class itself).
    Class(crate::job::ClassSpec),
    /// The k most probable classes other than the predicted one.
    TopOthers(usize),
}

pub struct CounterfactualJob {
    pub image: PathBuf,
    pub targets: Targets,
    pub afw: AfwConfig,
    /// |δ| above this (in [0,1] pixel units, any channel) counts a pixel as changed.
    pub threshold: f32,
    pub batch: usize,
    pub out_dir: PathBuf,
}

pub struct Outcome {
    pub report: serde_json::Value,
    pub notes: Vec<String>,
}

impl CounterfactualJob {
    /// Settings checked before any model is loaded.
    pub fn validate(&self) -> Result<()> {
        use crate::limits::*;
        self.afw.validate()?;
        in_range("--steps", self.afw.steps, 1, MAX_AFW_STEPS)?;
        in_range("--restarts", self.afw.restarts, 1, MAX_RESTARTS)?;
        in_range("--batch", self.batch, 1, MAX_BATCH)?;
        if let Targets::TopOthers(k) = self.targets {
            in_range("--targets", k, 1, MAX_TARGETS)?;
        }
        if !(self.threshold >= 0.0 && self.threshold < 1.0) {
            return Err(BorexError::invalid(format!("--change-threshold must be in [0, 1), not {}", self.threshold)));
        }
        Ok(())
    }
}

/// The image in pixel space ([0,1], channels × H × W) at the model's input resolution.
pub fn pixel_image(pre: &Preprocess, tensor: ArrayView3<f32>) -> Array3<f32> {
    Array3::from_shape_fn(tensor.dim(), |(c, i, j)| {
        ((tensor[[c, i, j]] * pre.std[c] + pre.mean[c]) / 255.0).clamp(0.0, 1.0)
    })
}

/// ‖δ‖ for p ∈ {1, 1.5, 2, ∞}, as JSON.
pub fn norms(delta: &[f32]) -> serde_json::Value {
    json!({"l1": lmo::norm(delta, 1.0), "l1.5": lmo::norm(delta, 1.5), "l2": lmo::norm(delta, 2.0), "linf": lmo::norm(delta, f64::INFINITY)})
}

/// Pixels (H×W positions) whose change exceeds `threshold` in any channel.
pub fn changed_pixels(delta: &[f32], channels: usize, threshold: f32) -> usize {
    let hw = delta.len() / channels.max(1);
    (0..hw).filter(|&i| (0..channels).any(|c| delta[c * hw + i].abs() > threshold)).count()
}

pub fn run_counterfactual(
    job: &CounterfactualJob,
    model: &Classifier,
    grad: &GradientModel,
    quiet: bool,
) -> Result<Outcome> {
    job.validate()?;
    let t0 = Instant::now();
    let out = OutputSet::begin(&job.out_dir)?;
    let mut notes = vec![];
    let (pre, decode_notes) = crate::image::load_input(&job.image, model.preprocess())?;
    notes.extend(decode_notes);
    let pixels = pixel_image(model.preprocess(), pre.tensor.view());
    let (_, h, w) = pixels.dim();
    let channels = if model.grayscale() { 1 } else { 3 };
    if model.grayscale() {
        let colour = pixels
            .outer_iter()
            .skip(1)
            .any(|ch| ch.iter().zip(pixels.index_axis(ndarray::Axis(0), 0)).any(|(a, b)| (a - b).abs() > 1.5 / 255.0));
        if colour {
            return Err(BorexError::invalid(format!(
                "{}: a colour image, but {} reads grey images (its sidecar says \"grayscale\": true); convert the image to greyscale",
                job.image.display(),
                model.path().display()
            )));
        }
    }
    let x0: Vec<f32> = pixels.iter().take(channels * h * w).copied().collect();
    let probs0 = model.probabilities(pre.tensor.view().insert_axis(ndarray::Axis(0)), 1)?;
    let probs0 = probs0.row(0).to_vec();
    let classes = probs0.len();
    let start = probs0.iter().enumerate().fold((0, f32::MIN), |b, (i, v)| if *v > b.1 { (i, *v) } else { b }).0;
    let targets: Vec<usize> = match job.targets {
        Targets::Class(ref spec) => {
            let t = spec.resolve(model, &probs0).map_err(|e| {
                BorexError::invalid(format!("--target: {}", e.to_string().trim_start_matches("invalid input: ")))
            })?;
            if t == start {
                notes.push(format!("--target {t} is already the predicted class (p = {:.4}); the counterfactual only raises its probability", probs0[t]));
            }
            vec![t]
        }
        Targets::TopOthers(k) => {
            if k > classes - 1 {
                return Err(BorexError::invalid(format!(
                    "--targets {k}: the model has only {} classes besides the predicted one",
                    classes - 1
                )));
            }
            let mut idx: Vec<usize> = (0..classes).filter(|&c| c != start).collect();
            idx.sort_by(|&a, &b| probs0[b].total_cmp(&probs0[a]).then(a.cmp(&b)));
            idx.truncate(k);
            idx
        }
    };
    match model.robust() {
        Some(true) => {}
        Some(false) => notes.push("the model is declared not robust (sidecar \"robust\": false): expect adversarial-looking changes rather than meaningful ones".into()),
        None => notes.push("the model's sidecar does not declare it robust: on a non-robust model a counterfactual is usually an adversarial-looking pattern, not a meaningful change".into()),
    }

    let n = targets.len();
    let d = x0.len();
    let obj = ModelObjective { grad, preprocess: model.preprocess(), channels, batch: job.batch };
    // Targets × restarts rows are optimised together; in chunks of at most --batch rows, so memory
    // follows --batch, not --targets (each chunk's outputs are written before the next starts).
    let per_chunk = (job.batch / job.afw.restarts.max(1)).max(1);
    let chunks = n.div_ceil(per_chunk);
    let bar = crate::progress::bar((job.afw.steps * chunks) as u64, "AFW steps", quiet);
    let mut afw_time = std::time::Duration::ZERO;

    let label = |c: usize| model.labels().and_then(|l| l.name(c)).map(str::to_string);
    let mut per_target = vec![];
    let mut strip_rows = vec![];
    let original_rgb = to_rgb(&x0, channels, h, w);
    for (chunk, chunk_targets) in targets.chunks(per_chunk).enumerate() {
        let x0s = Array2::from_shape_fn((chunk_targets.len(), d), |(_, c)| x0[c]);
        let t_afw = Instant::now();
        let starts = vec![start; chunk_targets.len()];
        let results =
            afw::run_from(&obj, x0s.view(), &starts, chunk_targets, &job.afw, chunk * per_chunk, || bar.inc(1))?;
        afw_time += t_afw.elapsed();
        for (t, r) in chunk_targets.iter().zip(&results) {
            let suffix = if n == 1 { String::new() } else { format!("_{t}") };
            let delta: Vec<f32> = r.x.iter().zip(&x0).map(|(a, b)| a - b).collect();
            let cf = Array3::from_shape_vec((channels, h, w), r.x.clone()).expect("shape");
            let signed =
                Array2::from_shape_fn((h, w), |(i, j)| (0..channels).map(|c| delta[(c * h + i) * w + j]).sum::<f32>());
            let abs = Array2::from_shape_fn((h, w), |(i, j)| {
                (0..channels).map(|c| delta[(c * h + i) * w + j].abs()).sum::<f32>()
            });
            let cf_rgb = to_rgb(&r.x, channels, h, w);
            let change_rgb = diverging(signed.view());
            write_npy3(&out.file(&format!("counterfactual{suffix}.npy")), &cf)?;
            crate::output::write_png(&out.file(&format!("counterfactual{suffix}.png")), &cf_rgb)?;
            crate::output::write_npy(&out.file(&format!("change{suffix}.npy")), &signed)?;
            crate::output::write_npy(&out.file(&format!("change_abs{suffix}.npy")), &abs)?;
            crate::output::write_png(&out.file(&format!("change{suffix}.png")), &change_rgb)?;
            strip_rows.push([original_rgb.clone(), cf_rgb, change_rgb, crate::output::colorize(abs.view())]);
            let pred = r.probs.iter().enumerate().fold((0, f32::MIN), |b, (i, v)| if *v > b.1 { (i, *v) } else { b }).0;
            let changed = changed_pixels(&delta, channels, job.threshold);
            per_target.push(json!({
                "class": t, "label": label(*t),
                "probability_before": probs0[*t], "probability_after": r.probs[*t],
                "start_probability_after": r.probs[start],
                "predicted_after": pred, "success": r.probs[*t] > 0.5,
                "norms": norms(&delta),
                "changed_pixels": changed, "changed_fraction": changed as f64 / (h * w) as f64,
                "step_halvings": r.halvings,
                "trace": {"start_probability": r.trace_start, "target_probability": r.trace_target},
                "files": {"counterfactual": format!("counterfactual{suffix}.png"), "npy": format!("counterfactual{suffix}.npy"),
                          "change": format!("change{suffix}.npy"), "change_abs": format!("change_abs{suffix}.npy"), "change_png": format!("change{suffix}.png")},
            }));
        }
    }
    bar.finish_and_clear();
    let afw_ms = crate::job::ms(afw_time);
    crate::output::write_png(&out.file("overlay.png"), &strip(&strip_rows))?;
    let report = json!({
        "image": job.image, "model": model.path(), "gradient_graph": grad.path(),
        "model_robust": model.robust(), "grayscale_model": model.grayscale(),
        "start_class": start, "start_label": label(start), "start_probability": probs0[start],
        "settings": {"eps": job.afw.eps, "p": job.afw.p, "steps": job.afw.steps, "restarts": job.afw.restarts,
                     "momentum": job.afw.momentum, "seed": job.afw.seed, "change_threshold": job.threshold, "batch": job.batch},
        "space": {"channels": channels, "height": h, "width": w, "range": [0.0, 1.0]},
        "ep": model.ep().name(),
        "targets": per_target,
        "model_calls": job.afw.steps * chunks + 1,
        "timings_ms": {"afw": afw_ms, "per_counterfactual": afw_ms / n as f64, "total": crate::job::ms(t0.elapsed())},
        "notes": notes,
        "overlay": "overlay.png: rows per target: image | counterfactual | signed change (blue −, red +) | |change|",
    });
    crate::output::write_json(&out.file("report.json"), &report)?;
    out.commit()?;
    Ok(Outcome { report, notes })
}

fn write_npy3(path: &Path, a: &Array3<f32>) -> Result<()> {
    use ndarray_npy::WriteNpyExt;
    crate::output::write_atomic(path, |w| a.write_npy(w).map_err(std::io::Error::other))
}

fn to_rgb(x: &[f32], channels: usize, h: usize, w: usize) -> image::RgbImage {
    image::RgbImage::from_fn(w as u32, h as u32, |j, i| {
        let px = |c: usize| {
            (x[(c.min(channels - 1) * h + i as usize) * w + j as usize] * 255.0).round().clamp(0.0, 255.0) as u8
        };
        image::Rgb([px(0), px(1), px(2)])
    })
}

/// Signed map → blue (−) / white (0) / red (+), symmetric about 0.
fn diverging(m: ArrayView2<f32>) -> image::RgbImage {
    let s = m.iter().fold(0.0f32, |a, v| a.max(v.abs())).max(1e-12);
    let (h, w) = m.dim();
    image::RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let c =
            colorous::RED_BLUE.eval_continuous((0.5 - 0.5 * m[[y as usize, x as usize]] / s).clamp(0.0, 1.0) as f64);
        image::Rgb([c.r, c.g, c.b])
    })
}

/// Panels side by side, one row per target, enlarged (nearest neighbour) to at least 112 px for small inputs.
fn strip(rows: &[[image::RgbImage; 4]]) -> image::RgbImage {
    const GAP: u32 = 4;
    let (w0, h0) = rows[0][0].dimensions();
    let k = (112 / h0.min(w0).max(1)).max(1);
    let (w, h) = (w0 * k, h0 * k);
    let mut out =
        image::RgbImage::from_pixel(4 * w + 3 * GAP, rows.len() as u32 * (h + GAP) - GAP, image::Rgb([255, 255, 255]));
    for (r, row) in rows.iter().enumerate() {
        for (c, p) in row.iter().enumerate() {
            let big = image::imageops::resize(p, w, h, image::imageops::FilterType::Nearest);
            image::imageops::overlay(&mut out, &big, (c as u32 * (w + GAP)) as i64, (r as u32 * (h + GAP)) as i64);
        }
    }
    out
}
