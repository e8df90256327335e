//! `borex video --mode clip`: for a classifier whose input has a time axis
//! (N×T×C×H×W), the selected frames are cut into clips of T frames (every
//! `stride` frames) and each clip is one BOREx problem over space-time boxes
//! ([`crate::borex::clip`]). OUTDIR gets `maps/clip_NNNNNN.npy` (T×H×W per
//! clip), `clips.csv`, `overlay.mp4` (each frame with its clip's map at that
//! frame) and `report.json`, staged and swapped in whole when the run ends.
//! Frames stream through a window of one clip, so memory does not grow with
//! the video.

use super::run::overlay_rate;
use super::{FrameSelection, Input};
use crate::borex::clip::{refine_clip, ClipConfig};
use crate::borex::{ClassSpec, PriorSpec};
use crate::compute::Backend;
use crate::error::{BorexError, Result};
use crate::explain::Method;
use crate::image::Preprocessed;
use crate::job::ms;
use crate::model::{Classifier, InputKind, Scorer};
use crate::output::{self, OutputSet};
use ndarray::{Array3, Array4, Axis};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Instant;

/// Clip length when neither the model nor `--clip-len` fixes it.
pub const DEFAULT_CLIP_LEN: usize = 8;

/// A `borex video --mode clip` run.
pub struct ClipJob {
    pub input: PathBuf,
    pub folder_fps: f64,
    pub selection: FrameSelection,
    /// Frames per clip; `None`: the model's, else [`DEFAULT_CLIP_LEN`].
    pub clip_len: Option<usize>,
    /// Frames from one clip's start to the next; `None`: the clip length.
    pub stride: Option<usize>,
    pub class: ClassSpec,
    /// RISE (rise-fast, rise; each mask covers every frame of the clip alike) or an H×W map file.
    pub prior: PriorSpec,
    pub config: ClipConfig,
    /// Images per model call (clips per call: batch / T, at least 2).
    pub batch: usize,
    pub out_dir: PathBuf,
}

pub const CSV_HEADER: [&str; 11] =
    ["clip", "first_frame", "last_frame", "start_time", "end_time", "class", "label", "probability", "peak_frame", "model_evaluations", "time_ms"];

/// What a run did.
#[derive(Debug)]
pub struct ClipSummary {
    pub clips: usize,
    pub clip_len: usize,
    /// Selected frames after the last whole clip, left out.
    pub left_over: usize,
}

/// The clip length: the model's when it fixes T (a different `--clip-len` is
/// an error), else `asked` or the default. An image model is an error naming its input.
pub fn clip_length(model: &Classifier, asked: Option<usize>) -> Result<usize> {
    let t = match model.input_kind() {
        InputKind::Images => {
            return Err(BorexError::invalid(format!(
                "--mode clip needs a video classifier with an N×T×C×H×W input; {} takes images (input shape {}). Use a clip model (e.g. efficientnet-lite0-clip.onnx) or --mode frame",
                model.path().display(),
                model.input_shape_text()
            )))
        }
        InputKind::Clips { frames: Some(f) } => match asked {
            Some(a) if a != f => {
                return Err(BorexError::invalid(format!("--clip-len {a}: {} takes clips of exactly {f} frames (input shape {})", model.path().display(), model.input_shape_text())))
            }
            _ => f,
        },
        InputKind::Clips { frames: None } => asked.unwrap_or(DEFAULT_CLIP_LEN),
    };
    crate::limits::in_range("--clip-len", t, 1, crate::limits::MAX_CLIP_LEN)?;
    Ok(t)
}

/// Where a clip's spatial prior comes from (spread over its T frames).
enum ClipPrior {
    Rise(crate::explain::rise::RiseParams),
    /// One H×W map at the model's input size for every clip.
    Map(ndarray::Array2<f32>),
}

fn clip_prior(prior: &PriorSpec, (h, w): (u32, u32)) -> Result<ClipPrior> {
    match prior {
        PriorSpec::Method(Method::Rise(p)) => Ok(ClipPrior::Rise(*p)),
        PriorSpec::File(path) => {
            let map = crate::image::read_map(path)?.map;
            if map.dim() != (h as usize, w as usize) {
                return Err(BorexError::invalid(format!("prior map {} is {:?}; clip mode needs the model input's {h}×{w}", path.display(), map.dim())));
            }
            Ok(ClipPrior::Map(map))
        }
        other => Err(BorexError::invalid(format!("clip mode's prior is RISE (--prior rise-fast or rise) or an H×W map file, not {}", other.method()))),
    }
}

/// Refine every clip of `job.input`.
pub fn run_clips(job: &ClipJob, model: &Classifier, backend: &Backend, progress: &dyn Fn(u64) -> indicatif::ProgressBar) -> Result<ClipSummary> {
    let t = clip_length(model, job.clip_len)?;
    let stride = job.stride.unwrap_or(t);
    crate::limits::in_range("--clip-stride", stride, 1, crate::limits::MAX_FRAME as usize)?;
    job.config.validate()?;
    let (h, w) = model.preprocess().input_size;
    let prior_source = clip_prior(&job.prior, (h, w))?;
    job.config.grid(t as u32, h, w)?;
    let (input, info) = Input::open(&job.input, job.folder_fps)?;
    let indices = job.selection.indices(info.frames)?;
    if indices.len() < t {
        return Err(BorexError::invalid(format!(
            "--clip-len {t} is longer than the {} selected frames of {}: nothing to cut into clips",
            indices.len(),
            job.input.display()
        )));
    }
    let starts: Vec<usize> = (0..).step_by(stride).take_while(|s| s + t <= indices.len()).collect();
    let outputs = OutputSet::begin(&job.out_dir)?;
    for d in ["maps", "parts"] {
        output::prepare_dir(&outputs.file(d))?;
    }
    // Every selected frame a clip uses, once, in order.
    let mut wanted: Vec<usize> = starts.iter().flat_map(|&s| s..s + t).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut stream = input.frames(&info, wanted.iter().map(|&p| indices[p]).collect())?;
    let mut window: VecDeque<(usize, super::Frame, Preprocessed)> = VecDeque::with_capacity(t);
    let mut next = wanted.into_iter();

    let scorer = Scorer::new(model, backend.image.as_ref(), (job.batch / t).max(2));
    let labels = model.labels();
    let fps_out = overlay_rate(&info.fps, job.selection.every);
    let bar = progress(starts.len() as u64);
    let quiet = indicatif::ProgressBar::hidden();
    let (mut rows, mut segments, mut per_clip) = (vec![], vec![], vec![]);
    for (k, &s) in starts.iter().enumerate() {
        let t0 = Instant::now();
        let evals0 = scorer.evaluations();
        // Slide the window to positions s..s+t.
        while window.front().is_some_and(|(p, ..)| *p < s) {
            window.pop_front();
        }
        while window.back().is_none_or(|(p, ..)| *p + 1 < s + t) {
            let pos = next.next().ok_or_else(|| BorexError::Runtime("the frame stream ended early".into()))?;
            let frame = stream.next().ok_or_else(|| BorexError::Runtime("the frame stream ended early".into()))??;
            let pre = crate::image::to_input(&frame.rgb, &format!("frame {}", frame.index), model.preprocess())?;
            window.push_back((pos, frame, pre));
        }
        let views: Vec<_> = window.iter().map(|(_, _, p)| p.tensor.view()).collect();
        let clip: Array4<f32> = ndarray::stack(Axis(0), &views).map_err(|e| BorexError::Runtime(format!("clip tensor: {e}")))?;
        let probs = scorer.score_clips(clip.view().insert_axis(Axis(0)))?;
        let probs = probs.row(0).to_vec();
        let class = job.class.resolve(model, &probs)?;
        let tp = Instant::now();
        let spatial = match &prior_source {
            ClipPrior::Rise(params) => crate::explain::rise::rise_clip(&scorer, clip.view(), class, params, &quiet)?,
            ClipPrior::Map(m) => m.clone(),
        };
        let prior = Array3::from_shape_fn((t, h as usize, w as usize), |(_, y, x)| spatial[[y, x]]);
        let prior_ms = ms(tp.elapsed());
        let r = refine_clip(&scorer, backend.gp.as_ref(), clip.view(), class, prior.view(), &job.config, &quiet)?;
        output::write_npy_nd(&outputs.file(&format!("maps/clip_{k:06}.npy")), &r.map)?;
        // The overlay shows each frame once: a clip's frames up to the next clip's start.
        let shown = if k + 1 == starts.len() { t } else { stride.min(t) };
        let overlays: Vec<_> = window.iter().take(shown).enumerate().map(|(f, (_, fr, pre))| output::overlay_frame(&fr.rgb, r.map.index_axis(Axis(0), f), &pre.crop)).collect();
        let seg = outputs.file(&format!("parts/clip_{k:06}.h264"));
        output::encode_h264(&seg, &overlays, &fps_out)?;
        segments.push(seg);
        let frame_means: Vec<f32> = r.map.outer_iter().map(|m| m.mean().unwrap_or(0.0)).collect();
        let peak = frame_means.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (i, v)| if *v > b.1 { (i, *v) } else { b }).0;
        let (first, last) = (&window[0].1, &window[t - 1].1);
        let evaluations = scorer.evaluations() - evals0;
        rows.push(vec![
            k.to_string(),
            first.index.to_string(),
            last.index.to_string(),
            format!("{:.6}", first.timestamp),
            format!("{:.6}", last.timestamp),
            class.to_string(),
            labels.and_then(|l| l.name(class)).unwrap_or("").to_string(),
            format!("{:.6}", probs[class]),
            window[peak].1.index.to_string(),
            evaluations.to_string(),
            format!("{:.2}", ms(t0.elapsed())),
        ]);
        per_clip.push(serde_json::json!({
            "clip": k,
            "frames": [first.index, last.index],
            "class": class,
            "probability": probs[class],
            "model_evaluations": evaluations,
            "length_scales": r.length_scales,
            "fit_failures": r.fit_failures.len(),
            "posterior_updates": r.posterior_updates,
            "timings_ms": {"prior": prior_ms, "model": ms(r.timings.model), "gp_fit": ms(r.timings.gp_fit), "posterior": ms(r.timings.posterior), "total": ms(t0.elapsed())},
            "observations": r.observations,
        }));
        bar.inc(1);
    }
    bar.finish_and_clear();
    output::write_csv(&outputs.file("clips.csv"), &CSV_HEADER, &rows)?;
    output::join_h264(&outputs.file("overlay.mp4"), &segments, &fps_out)?;
    let parts = outputs.file("parts");
    std::fs::remove_dir_all(&parts).map_err(|e| BorexError::io(&parts, e))?;
    let left_over = indices.len() - (starts.last().map_or(0, |s| s + t)).min(indices.len());
    let report = serde_json::json!({
        "mode": "clip",
        "input": job.input.display().to_string(),
        "video": info,
        "selection": job.selection,
        "model": model.path(),
        "model_input": model.input_shape_text(),
        "clip_len": t,
        "clip_stride": stride,
        "temporal_sizes": job.config.spans(t as u32),
        "class": format!("{:?}", job.class),
        "prior": job.prior.method(),
        "refine": job.config.refine,
        "baseline": job.config.refine.baseline,
        "device": {"gp": backend.kind(), "adapter": backend.describe(), "ep": model.ep()},
        "clips": per_clip,
        "left_over_frames": left_over,
    });
    output::write_json(&outputs.file("report.json"), &report)?;
    outputs.commit()?;
    Ok(ClipSummary { clips: starts.len(), clip_len: t, left_over })
}
