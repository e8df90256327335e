//! Sparse visual counterfactual explanations (Boreiko et al., "Sparse Visual
//! Counterfactual Explanations in Image Space", 2022): the smallest change in
//! an l_p ball (p = 1.5 by default) ∩ the image box that makes the classifier
//! say class t, found by Auto-Frank-Wolfe on the input gradient from a
//! forward+gradient ONNX graph.
//!
//! Perturbations live in pixel space, \[0,1\] per channel at the model's input
//! resolution (after the resize and centre crop); a model whose sidecar says
//! `grayscale` reads the channel mean, so its perturbations are one grey
//! channel and norms count each pixel once.

pub mod afw;
pub(crate) mod gradient;
pub mod lmo;

pub use afw::{AfwConfig, AfwResult, Evaluation, Objective};
pub use gradient::GradientModel;

use crate::error::{BorexError, Result};
use crate::image::Preprocess;
use crate::model::Classifier;
use crate::output::OutputSet;
use ndarray::{Array2, Array3, Array4, ArrayView2, ArrayView3};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The model seen from pixel space: items × (channels·H·W) in \[0,1\] → log p_target and its gradient.
pub struct ModelObjective<'a> {
    /// The gradient graph.
    pub grad: &'a GradientModel,
    /// How images become model inputs (the gradient is taken through it).
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

/// Rows (targets × restarts) per forward-and-gradient call when none is
/// given. The peak memory is mostly ONNX Runtime's gradient pass over one
/// chunk and grows about linearly with it: for the bundled model at 224²,
/// about 53 MB a row over a 0.3 GB base (1.1 GB at 16, 3.7 GB at 64, with
/// `--targets 60`), so a default run stays under 2 GB for any `--targets`
/// (docs/robustness.md).
pub const DEFAULT_BATCH: usize = 16;

/// Everything a counterfactual needs besides the model and its gradient graph.
pub struct CounterfactualJob {
    /// The image file.
    pub image: PathBuf,
    /// Which classes to move it to.
    pub targets: Targets,
    /// The optimiser's settings.
    pub afw: AfwConfig,
    /// |δ| above this (in \[0,1\] pixel units, any channel) counts a pixel as changed.
    pub threshold: f32,
    /// Images per model call.
    pub batch: usize,
    /// OUTDIR.
    pub out_dir: PathBuf,
}

/// What the counterfactual produced: one changed image per target and the report.
pub struct Outcome {
    /// The report, as written to `report.json`.
    pub report: CounterfactualReport,
    /// Per target, in the report's order (empty from [`run_counterfactual`], which writes each
    /// target's files as soon as it is done instead of keeping them).
    pub targets: Vec<TargetImages>,
    /// The original image in pixel space (channels × H × W, [0, 1]).
    pub original: Array3<f32>,
    /// What the user should know (also in the report).
    pub notes: Vec<String>,
}

/// One target's arrays (the files `counterfactual[_T].npy`, `change[_T].npy`, `change_abs[_T].npy`).
pub struct TargetImages {
    /// The target class.
    pub class: usize,
    /// The changed image in pixel space (channels × H × W, [0, 1]).
    pub counterfactual: Array3<f32>,
    /// The signed change summed over channels (H × W).
    pub change: Array2<f32>,
    /// The absolute change summed over channels (H × W).
    pub change_abs: Array2<f32>,
}

/// `report.json` of `borex counterfactual`. Field names are the file's keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CounterfactualReport {
    /// The image file (or an in-memory image's name).
    pub image: PathBuf,
    /// The ONNX model file.
    pub model: PathBuf,
    /// The forward+gradient graph.
    pub gradient_graph: PathBuf,
    /// Whether the model's sidecar declares it adversarially robust.
    pub model_robust: Option<bool>,
    /// Whether the model reads grey images.
    pub grayscale_model: bool,
    /// The predicted class of the image.
    pub start_class: usize,
    /// Its label.
    pub start_label: Option<String>,
    /// Its probability.
    pub start_probability: f32,
    /// Every setting.
    pub settings: CounterfactualSettingsReport,
    /// The pixel space the change lives in.
    pub space: PixelSpace,
    /// The ONNX Runtime execution provider.
    pub ep: String,
    /// One entry per target.
    pub targets: Vec<TargetReport>,
    /// Batched model calls.
    pub model_calls: usize,
    /// Where the time went (milliseconds).
    pub timings_ms: CounterfactualTimingsMs,
    /// What the user should know.
    pub notes: Vec<String>,
    /// How to read overlay.png.
    pub overlay: String,
}

/// `report.json`'s `settings` of a counterfactual.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CounterfactualSettingsReport {
    /// The l_p ball, steps, restarts, momentum and seed (flattened: the file's keys are AfwConfig's fields).
    #[serde(flatten)]
    pub afw: AfwConfig,
    /// |δ| above this counts a pixel as changed.
    pub change_threshold: f32,
    /// Items per model call.
    pub batch: usize,
}

/// `report.json`'s `space`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PixelSpace {
    /// 1 (grey) or 3.
    pub channels: usize,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// The value range.
    pub range: [f64; 2],
}

/// One target of a counterfactual report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetReport {
    /// The target class.
    pub class: usize,
    /// Its label.
    pub label: Option<String>,
    /// P(target) on the image.
    pub probability_before: f32,
    /// P(target) on the counterfactual.
    pub probability_after: f32,
    /// P(start class) on the counterfactual.
    pub start_probability_after: f32,
    /// The counterfactual's predicted class.
    pub predicted_after: usize,
    /// P(target) > 0.5 on the counterfactual.
    pub success: bool,
    /// ‖δ‖ for several p.
    pub norms: Norms,
    /// Pixels changed by more than the threshold.
    pub changed_pixels: usize,
    /// Their share of the image.
    pub changed_fraction: f64,
    /// Step halvings of the line search.
    pub step_halvings: usize,
    /// Probabilities along the run.
    pub trace: Trace,
    /// The files written for this target.
    pub files: TargetFiles,
}

/// ‖δ‖_p for p ∈ {1, 1.5, 2, ∞}.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Norms {
    /// p = 1.
    pub l1: f64,
    /// p = 1.5.
    #[serde(rename = "l1.5")]
    pub l1_5: f64,
    /// p = 2.
    pub l2: f64,
    /// p = ∞.
    pub linf: f64,
}

/// Per AFW step (0 = the start): probabilities of the start class and of the target.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Trace {
    /// P(start class).
    pub start_probability: Vec<f32>,
    /// P(target).
    pub target_probability: Vec<f32>,
}

/// The file names of one target's outputs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetFiles {
    /// The changed image (PNG).
    pub counterfactual: String,
    /// The changed image (.npy, pixel space).
    pub npy: String,
    /// The signed change (.npy).
    pub change: String,
    /// The absolute change (.npy).
    pub change_abs: String,
    /// The signed change (PNG).
    pub change_png: String,
}

/// `report.json`'s `timings_ms` of a counterfactual.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CounterfactualTimingsMs {
    /// The AFW runs.
    pub afw: f64,
    /// Per target.
    pub per_counterfactual: f64,
    /// The whole command.
    pub total: f64,
}

impl CounterfactualJob {
    /// Settings checked before any model is loaded.
    pub fn validate(&self) -> Result<()> {
        use crate::limits::*;
        self.afw.validate()?;
        in_range("steps", self.afw.steps, 1, MAX_AFW_STEPS)?;
        in_range("restarts", self.afw.restarts, 1, MAX_RESTARTS)?;
        in_range("batch", self.batch, 1, MAX_BATCH)?;
        if let Targets::TopOthers(k) = self.targets {
            in_range("targets", k, 1, MAX_TARGETS)?;
        }
        if !(self.threshold >= 0.0 && self.threshold < 1.0) {
            return Err(BorexError::setting(
                "change_threshold",
                None,
                format!("must be in [0, 1), not {}", self.threshold),
            ));
        }
        Ok(())
    }
}

/// The image in pixel space (\[0,1\], channels × H × W) at the model's input resolution.
pub fn pixel_image(pre: &Preprocess, tensor: ArrayView3<f32>) -> Array3<f32> {
    Array3::from_shape_fn(tensor.dim(), |(c, i, j)| {
        ((tensor[[c, i, j]] * pre.std[c] + pre.mean[c]) / 255.0).clamp(0.0, 1.0)
    })
}

/// ‖δ‖ for p ∈ {1, 1.5, 2, ∞}.
pub fn norms(delta: &[f32]) -> Norms {
    Norms {
        l1: lmo::norm(delta, 1.0),
        l1_5: lmo::norm(delta, 1.5),
        l2: lmo::norm(delta, 2.0),
        linf: lmo::norm(delta, f64::INFINITY),
    }
}

/// Pixels (H×W positions) whose change exceeds `threshold` in any channel.
pub fn changed_pixels(delta: &[f32], channels: usize, threshold: f32) -> usize {
    let hw = delta.len() / channels.max(1);
    (0..hw).filter(|&i| (0..channels).any(|c| delta[c * hw + i].abs() > threshold)).count()
}

/// Change `job.image` towards its targets and write the outputs into `job.out_dir` (staged, swapped in at the end).
pub fn run_counterfactual(
    job: &CounterfactualJob,
    model: &Classifier,
    grad: &GradientModel,
    reporter: &dyn crate::progress::Reporter,
) -> Result<Outcome> {
    job.validate()?;
    let out = OutputSet::begin_locked(&job.out_dir)?;
    // Each target's files are written as its chunk finishes and its arrays dropped, so memory
    // follows --batch, not --targets; only the overlay's small panels are kept.
    let mut strip_rows = vec![];
    let mut original_rgb = None;
    let (report, original, notes) = counterfactual_stream(
        job,
        crate::job::Source::File(&job.image),
        model,
        grad,
        reporter,
        &mut |original, files, t| {
            let rgb = original_rgb.get_or_insert_with(|| pixel_rgb(original));
            strip_rows.push(write_target(&out, rgb, &files.files, &t)?);
            Ok(())
        },
    )?;
    crate::output::write_png(&out.file("overlay.png"), &strip(&strip_rows))?;
    crate::output::write_report(&out.file("report.json"), &report)?;
    out.commit()?;
    Ok(Outcome { report, targets: vec![], original, notes })
}

/// The original image (channels × H × W, [0, 1]) as RGB.
fn pixel_rgb(a: &Array3<f32>) -> image::RgbImage {
    let (channels, h, w) = a.dim();
    to_rgb(a.as_standard_layout().as_slice().expect("standard layout"), channels, h, w)
}

/// One target's files into `out`; returns its overlay row.
fn write_target(
    out: &OutputSet,
    original_rgb: &image::RgbImage,
    files: &TargetFiles,
    t: &TargetImages,
) -> Result<[image::RgbImage; 4]> {
    let cf_rgb = pixel_rgb(&t.counterfactual);
    let change_rgb = diverging(t.change.view());
    write_npy3(&out.file(&files.npy), &t.counterfactual)?;
    crate::output::write_png(&out.file(&files.counterfactual), &cf_rgb)?;
    crate::output::write_npy(&out.file(&files.change), &t.change)?;
    crate::output::write_npy(&out.file(&files.change_abs), &t.change_abs)?;
    crate::output::write_png(&out.file(&files.change_png), &change_rgb)?;
    Ok([original_rgb.clone(), cf_rgb, change_rgb, crate::output::colorize(t.change_abs.view())])
}

impl Outcome {
    /// Every output of `counterfactual` into `out` (committed by the caller).
    pub fn write(&self, out: &OutputSet) -> Result<()> {
        let original_rgb = pixel_rgb(&self.original);
        let mut strip_rows = vec![];
        for (t, files) in self.targets.iter().zip(&self.report.targets) {
            strip_rows.push(write_target(out, &original_rgb, &files.files, t)?);
        }
        crate::output::write_png(&out.file("overlay.png"), &strip(&strip_rows))?;
        crate::output::write_report(&out.file("report.json"), &self.report)
    }
}

/// A target's report and arrays, handed over as soon as its chunk is done; also gets the original image.
pub type TargetSink<'a> = dyn FnMut(&Array3<f32>, &TargetReport, TargetImages) -> Result<()> + 'a;

/// A counterfactual of one image, in memory: what [`run_counterfactual`] computes, without files.
pub fn counterfactual_source(
    job: &CounterfactualJob,
    source: crate::job::Source,
    model: &Classifier,
    grad: &GradientModel,
    reporter: &dyn crate::progress::Reporter,
) -> Result<Outcome> {
    let mut images = vec![];
    let (report, original, notes) = counterfactual_stream(job, source, model, grad, reporter, &mut |_, _, t| {
        images.push(t);
        Ok(())
    })?;
    Ok(Outcome { report, targets: images, original, notes })
}

/// The counterfactual computation: targets × restarts rows are optimised in chunks of at most
/// `--batch` rows, and each target goes to `sink` when its chunk is done. Returns the report, the
/// original image (channels × H × W) and the notes.
fn counterfactual_stream(
    job: &CounterfactualJob,
    source: crate::job::Source,
    model: &Classifier,
    grad: &GradientModel,
    reporter: &dyn crate::progress::Reporter,
    sink: &mut TargetSink,
) -> Result<(CounterfactualReport, Array3<f32>, Vec<String>)> {
    job.validate()?;
    let t0 = Instant::now();
    let mut notes = vec![];
    let image_name = match source {
        crate::job::Source::File(p) => p.to_path_buf(),
        crate::job::Source::Rgb(_, name) => PathBuf::from(name),
    };
    let pre = match source {
        crate::job::Source::File(path) => {
            let (pre, decode_notes) = crate::image::load_input(path, model.preprocess())?;
            notes.extend(decode_notes);
            pre
        }
        crate::job::Source::Rgb(rgb, name) => crate::image::to_input(rgb, name, model.preprocess())?,
    };
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
                image_name.display(),
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
                BorexError::setting(
                    "target",
                    None,
                    format!(": {}", e.to_string().trim_start_matches("invalid input: ")),
                )
            })?;
            if t == start {
                notes.push(format!("target {t} is already the predicted class (p = {:.4}); the counterfactual only raises its probability", probs0[t]));
            }
            vec![t]
        }
        Targets::TopOthers(k) => {
            if k > classes - 1 {
                return Err(BorexError::setting(
                    "targets",
                    Some(k.to_string()),
                    format!(": the model has only {} classes besides the predicted one", classes - 1),
                ));
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
    let per_chunk = (job.batch / job.afw.restarts.max(1)).max(1);
    let chunks = n.div_ceil(per_chunk);
    let bar = reporter.start((job.afw.steps * chunks) as u64, "AFW steps");
    let mut afw_time = std::time::Duration::ZERO;
    let original = Array3::from_shape_vec((channels, h, w), x0.clone()).expect("shape");

    let label = |c: usize| model.labels().and_then(|l| l.name(c)).map(str::to_string);
    let mut per_target = vec![];
    for (chunk, chunk_targets) in targets.chunks(per_chunk).enumerate() {
        let x0s = Array2::from_shape_fn((chunk_targets.len(), d), |(_, c)| x0[c]);
        let t_afw = Instant::now();
        let starts = vec![start; chunk_targets.len()];
        let results =
            afw::run_from(&obj, x0s.view(), &starts, chunk_targets, &job.afw, chunk * per_chunk, || bar.inc(1))?;
        afw_time += t_afw.elapsed();
        for (t, r) in chunk_targets.iter().zip(results) {
            let suffix = if n == 1 { String::new() } else { format!("_{t}") };
            let delta: Vec<f32> = r.x.iter().zip(&x0).map(|(a, b)| a - b).collect();
            let signed =
                Array2::from_shape_fn((h, w), |(i, j)| (0..channels).map(|c| delta[(c * h + i) * w + j]).sum::<f32>());
            let abs = Array2::from_shape_fn((h, w), |(i, j)| {
                (0..channels).map(|c| delta[(c * h + i) * w + j].abs()).sum::<f32>()
            });
            let pred = r.probs.iter().enumerate().fold((0, f32::MIN), |b, (i, v)| if *v > b.1 { (i, *v) } else { b }).0;
            let changed = changed_pixels(&delta, channels, job.threshold);
            let report = TargetReport {
                class: *t,
                label: label(*t),
                probability_before: probs0[*t],
                probability_after: r.probs[*t],
                start_probability_after: r.probs[start],
                predicted_after: pred,
                success: r.probs[*t] > 0.5,
                norms: norms(&delta),
                changed_pixels: changed,
                changed_fraction: changed as f64 / (h * w) as f64,
                step_halvings: r.halvings,
                trace: Trace { start_probability: r.trace_start, target_probability: r.trace_target },
                files: TargetFiles {
                    counterfactual: format!("counterfactual{suffix}.png"),
                    npy: format!("counterfactual{suffix}.npy"),
                    change: format!("change{suffix}.npy"),
                    change_abs: format!("change_abs{suffix}.npy"),
                    change_png: format!("change{suffix}.png"),
                },
            };
            let cf = Array3::from_shape_vec((channels, h, w), r.x).expect("shape");
            sink(&original, &report, TargetImages { class: *t, counterfactual: cf, change: signed, change_abs: abs })?;
            per_target.push(report);
        }
    }
    bar.finish();
    let afw_ms = crate::job::ms(afw_time);
    let report = CounterfactualReport {
        image: image_name,
        model: model.path().to_path_buf(),
        gradient_graph: grad.path().to_path_buf(),
        model_robust: model.robust(),
        grayscale_model: model.grayscale(),
        start_class: start,
        start_label: label(start),
        start_probability: probs0[start],
        settings: CounterfactualSettingsReport {
            afw: job.afw.clone(),
            change_threshold: job.threshold,
            batch: job.batch,
        },
        space: PixelSpace { channels, height: h, width: w, range: [0.0, 1.0] },
        ep: model.runs_on().into(),
        targets: per_target,
        model_calls: job.afw.steps * chunks + 1,
        timings_ms: CounterfactualTimingsMs {
            afw: afw_ms,
            per_counterfactual: afw_ms / n as f64,
            total: crate::job::ms(t0.elapsed()),
        },
        notes: notes.clone(),
        overlay: "overlay.png: rows per target: image | counterfactual | signed change (blue −, red +) | |change|"
            .into(),
    };
    Ok((report, original, notes))
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
