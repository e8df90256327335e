//! `borex video --mode clip`: for a classifier whose input has a time axis
//! (N×T×C×H×W), the selected frames are cut into clips of T frames (every
//! `stride` frames) and each clip is one BOREx problem over space-time boxes
//! ([`crate::refine::clip`]). OUTDIR gets `maps/clip_NNNNNN.npy` (T×H×W per
//! clip), `clips.csv`, `overlay.mp4` (each frame with its clip's map at that
//! frame) and `report.json`. A clip is a unit of work of the resumable folder
//! (`resume`), as a group is in frame mode: its map, overlay segment
//! and record are committed as it finishes, so a killed run resumes at the
//! next clip, `--shard I/N` takes a contiguous slice of the clips, and
//! [`merge`] joins the shards; the tables, `overlay.mp4` and `report.json` are
//! built from the records at the end. Frames stream through a window of one
//! clip, so memory does not grow with the video.

use super::resume::{self, Record, UnitJob, UnitRun};
use super::run::rounded;
use super::{overlay_rate, FrameSelection, Input, VideoInfo};
use crate::compute::Backend;
use crate::error::{BorexError, Result};
use crate::explain::Method;
use crate::image::Preprocessed;
use crate::job::description::{setting, Inputs, ModelId};
use crate::job::Shard;
use crate::job::{ms, JobDescription, JobKind};
use crate::model::{Classifier, InputKind, Scorer};
use crate::output;
use crate::refine::clip::{refine_clip, ClipConfig};
use crate::refine::{ClassSpec, PriorSpec};
use ndarray::{Array3, Array4, Axis};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Clip length when neither the model nor `--clip-len` fixes it.
pub const DEFAULT_CLIP_LEN: usize = 8;

/// A `borex video --mode clip` run.
pub struct ClipJob {
    /// The video file or frame folder.
    pub input: PathBuf,
    /// Frame rate of a frame folder (a video file states its own).
    pub folder_fps: f64,
    /// Which frames are cut into clips.
    pub selection: FrameSelection,
    /// Frames per clip; `None`: the model's, else [`DEFAULT_CLIP_LEN`].
    pub clip_len: Option<usize>,
    /// Frames from one clip's start to the next; `None`: the clip length.
    pub stride: Option<usize>,
    /// The class to explain (`top1`: each clip's top class).
    pub class: ClassSpec,
    /// RISE (rise-fast, rise; each mask covers every frame of the clip alike) or an H×W map file.
    pub prior: PriorSpec,
    /// The space-time refine loop's settings.
    pub config: ClipConfig,
    /// Images per model call (clips per call: batch / T, at least 2).
    pub batch: usize,
    /// `--shard I/N`: this run's share of the clips.
    pub shard: Shard,
    /// OUTDIR.
    pub out_dir: PathBuf,
}

/// Clip mode's plan (the `plan` of `job.json`): the input, its clips, and
/// what `report.json` states; a resumed run or a shard being merged must match it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClipJobFile {
    /// The video file or frame folder.
    pub input: String,
    /// Its frames' size, rate and count.
    pub info: VideoInfo,
    /// Which frames are cut into clips.
    pub selection: FrameSelection,
    /// Frames per clip (T).
    pub clip_len: usize,
    /// Frames from one clip's start to the next.
    pub clip_stride: usize,
    /// The settings `report.json` states (class, prior, refine config, temporal sizes, model and its input).
    pub settings: ClipSettings,
    /// Clips of the job.
    pub clips: usize,
    /// Selected frames after the last whole clip, left out.
    pub left_over_frames: usize,
}

/// The refine settings of a clip-mode run, as `report.json` states them (at its top level).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClipSettings {
    /// The class asked for (`top1`, an id or a label).
    pub class: ClassSpec,
    /// The prior's method (`rise-fast`, `rise`) or `file:PATH`.
    pub prior: String,
    /// Every knob of the loop.
    pub refine: crate::refine::RefineConfig,
    /// What removed pixels become.
    pub baseline: crate::compute::Baseline,
    /// The boxes' lengths in frames.
    pub temporal_sizes: Vec<u32>,
    /// The ONNX model file.
    pub model: PathBuf,
    /// The model's input shape (`?` for a free axis).
    pub model_input: String,
}

impl UnitJob for ClipJobFile {
    type Row = ClipRow;
    type Entry = ClipEntry;
    const KIND: JobKind = JobKind::VideoClip;
    const UNIT: &'static str = "clip";
    fn units(&self) -> usize {
        self.clips
    }
}

/// `clips.csv`'s columns: [`ClipRow`]'s fields, in order.
pub const CSV_HEADER: [&str; 11] = [
    "clip",
    "first_frame",
    "last_frame",
    "start_time",
    "end_time",
    "class",
    "label",
    "probability",
    "peak_frame",
    "model_evaluations",
    "time_ms",
];

/// One row of `clips.csv` (and of a clip's record): one refined clip, its
/// values rounded as the table has always shown them (6 decimals, the time 2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClipRow {
    /// The clip's number (0-based).
    pub clip: usize,
    /// Its first frame's index in the input.
    pub first_frame: u64,
    /// Its last frame's index in the input.
    pub last_frame: u64,
    /// The first frame's time, in seconds.
    pub start_time: f64,
    /// The last frame's time, in seconds.
    pub end_time: f64,
    /// The explained class.
    pub class: usize,
    /// Its label ("" when the model has no labels).
    pub label: String,
    /// The model's probability of `class` on the clip.
    pub probability: f64,
    /// The frame with the highest mean map value.
    pub peak_frame: u64,
    /// Frames the model scored for this clip.
    pub model_evaluations: u64,
    /// The clip's milliseconds, prior to last query.
    pub time_ms: f64,
}

impl ClipRow {
    /// Read `clips.csv`: its rows, or a one-line error naming the file.
    pub fn read_csv(path: &Path) -> Result<Vec<Self>> {
        crate::output::read_csv_rows(path, &CSV_HEADER)
    }
}

/// What a run did.
#[derive(Debug)]
pub struct ClipSummary {
    /// Clips of the run (of this shard).
    pub clips: usize,
    /// Clips this run refined (the others were done by an earlier run).
    pub refined: usize,
    /// Clips an earlier run had done (kept).
    pub kept: usize,
    /// Frames per clip (T).
    pub clip_len: usize,
    /// Selected frames after the last whole clip, left out.
    pub left_over: usize,
    /// The outputs are complete; false for a shard.
    pub finished: bool,
}

/// A finished clip-mode folder holds these (and no `parts/`).
const FINISHED: [&str; 3] = ["clips.csv", "overlay.mp4", "report.json"];

fn map_name(clip: usize) -> String {
    format!("maps/clip_{clip:06}.npy")
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
    crate::limits::in_range("clip_len", t, 1, crate::limits::MAX_CLIP_LEN)?;
    Ok(t)
}

/// The job description of a clip-mode run: the refine knobs, the clip
/// geometry (T, stride, temporal sizes) and the frame selection.
fn description(job: &ClipJob, model: &Classifier, t: usize, stride: usize) -> Result<JobDescription> {
    let refine = crate::refine::RefineJob {
        image: PathBuf::new(),
        class: job.class.clone(),
        prior: job.prior.clone(),
        config: job.config.refine.clone(),
        out_dir: PathBuf::new(),
        full_res: false,
        insertion_starts: vec![],
        metrics: false,
        batch: job.batch,
        notes: vec![],
    };
    let mut settings = refine.settings()?;
    // Clip mode scores no insertion/deletion: the metric flags do not apply.
    settings.remove("--full-res");
    settings.remove("--no-metrics");
    settings.insert("--clip-len".into(), setting(t));
    settings.insert("--clip-stride".into(), setting(stride));
    settings.insert("--temporal-sizes".into(), setting(job.config.spans(t as u32)));
    settings.insert("--every".into(), setting(job.selection.every));
    settings.insert("--frames".into(), setting((job.selection.start, job.selection.end)));
    Ok(JobDescription::new(
        JobKind::VideoClip,
        ModelId::of(model)?,
        settings,
        Inputs::of(std::slice::from_ref(&job.input)),
        job.shard,
    ))
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
                return Err(BorexError::invalid(format!(
                    "prior map {} is {:?}; clip mode needs the model input's {h}×{w}",
                    path.display(),
                    map.dim()
                )));
            }
            Ok(ClipPrior::Map(map))
        }
        other => Err(BorexError::invalid(format!(
            "clip mode's prior is RISE (--prior rise-fast or rise) or an H×W map file, not {}",
            other.method()
        ))),
    }
}

/// Refine every clip of `job.input` (or this shard's share), resuming from
/// the clips an earlier run finished; finish the outputs when the run covers
/// every clip.
pub fn run_clips(
    job: &ClipJob,
    model: &Classifier,
    backend: &Backend,
    progress: &dyn Fn(u64) -> Box<dyn crate::progress::Progress>,
) -> Result<ClipSummary> {
    let t = clip_length(model, job.clip_len)?;
    let stride = job.stride.unwrap_or(t);
    crate::limits::in_range("clip_stride", stride, 1, crate::limits::MAX_FRAME as usize)?;
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
    let left_over = indices.len() - (starts.last().map_or(0, |s| s + t)).min(indices.len());
    let file = ClipJobFile {
        input: job.input.display().to_string(),
        info: info.clone(),
        selection: job.selection,
        clip_len: t,
        clip_stride: stride,
        settings: ClipSettings {
            class: job.class.clone(),
            prior: job.prior.method(),
            refine: job.config.refine.clone(),
            baseline: job.config.refine.baseline,
            temporal_sizes: job.config.spans(t as u32),
            model: model.path().to_path_buf(),
            model_input: model.input_shape_text(),
        },
        clips: starts.len(),
        left_over_frames: left_over,
    };
    let run = UnitRun::new(description(job, model, t, stride)?, file)?;
    let file = &run.plan;
    let out = &job.out_dir;
    let in_shard = job.shard.range(starts.len()).len();
    let summary = |refined: usize, finished: bool| ClipSummary {
        clips: in_shard,
        refined,
        kept: in_shard - refined,
        clip_len: t,
        left_over,
        finished,
    };
    let begun = resume::begin(out, &run, &FINISHED)?;
    if begun.finished {
        return Ok(summary(0, true));
    }
    let todo = resume::todo(out, &run);
    // Every selected frame a clip to do uses, once, in order.
    let mut wanted: Vec<usize> = todo.iter().flat_map(|&k| starts[k]..starts[k] + t).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut stream = input.frames(&info, wanted.iter().map(|&p| indices[p]).collect())?;
    let mut window: VecDeque<(usize, super::Frame, Preprocessed)> = VecDeque::with_capacity(t);
    let mut next = wanted.into_iter();

    let scorer = Scorer::new(model, backend.image.as_ref(), (job.batch / t).max(2));
    let labels = model.labels();
    let fps_out = overlay_rate(&info.fps, job.selection.every);
    // Only this run's clips, so clips/s and the ETA are this run's.
    let bar = progress(todo.len() as u64);
    let quiet = crate::progress::NoProgress;
    for &k in &todo {
        let s = starts[k];
        let t0 = Instant::now();
        let evals0 = scorer.evaluations();
        // Slide the window to positions s..s+t (the frames of clips done earlier were never decoded).
        while window.front().is_some_and(|(p, ..)| *p < s) {
            window.pop_front();
        }
        while window.back().is_none_or(|(p, ..)| *p + 1 < s + t) {
            let pos = next.next().ok_or_else(|| BorexError::Runtime("the frame stream ended early".into()))?;
            let frame = stream.next().ok_or_else(|| BorexError::Runtime("the frame stream ended early".into()))??;
            let pre = crate::image::to_input(&frame.rgb, &format!("frame {}", frame.index), model.preprocess())?;
            window.push_back((pos, frame, pre));
        }
        debug_assert!(window.len() == t && window[0].0 == s, "the window holds clip {k}'s frames");
        let views: Vec<_> = window.iter().map(|(_, _, p)| p.tensor.view()).collect();
        let clip: Array4<f32> =
            ndarray::stack(Axis(0), &views).map_err(|e| BorexError::Runtime(format!("clip tensor: {e}")))?;
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
        output::write_npy_nd(&out.join(map_name(k)), &r.map)?;
        // The overlay shows each frame once: a clip's frames up to the next clip's start.
        let shown = if k + 1 == starts.len() { t } else { stride.min(t) };
        let overlays: Vec<_> = window
            .iter()
            .take(shown)
            .enumerate()
            .map(|(f, (_, fr, pre))| super::encode::overlay_frame(&fr.rgb, r.map.index_axis(Axis(0), f), &pre.crop))
            .collect();
        super::encode::encode_h264(&resume::segment_path::<ClipJobFile>(out, k), &overlays, &fps_out)?;
        let frame_means: Vec<f32> = r.map.outer_iter().map(|m| m.mean().unwrap_or(0.0)).collect();
        let peak = frame_means
            .iter()
            .enumerate()
            .fold((0, f32::NEG_INFINITY), |b, (i, v)| if *v > b.1 { (i, *v) } else { b })
            .0;
        let (first, last) = (&window[0].1, &window[t - 1].1);
        let evaluations = scorer.evaluations() - evals0;
        let row = ClipRow {
            clip: k,
            first_frame: first.index,
            last_frame: last.index,
            start_time: rounded(first.timestamp, 6),
            end_time: rounded(last.timestamp, 6),
            class,
            label: labels.and_then(|l| l.name(class)).unwrap_or("").to_string(),
            probability: rounded(f64::from(probs[class]), 6),
            peak_frame: window[peak].1.index,
            model_evaluations: evaluations,
            time_ms: rounded(ms(t0.elapsed()), 2),
        };
        let entry = ClipEntry {
            clip: k,
            frames: [first.index, last.index],
            class,
            probability: probs[class],
            model_evaluations: evaluations,
            length_scales: r.length_scales.clone(),
            fit_failures: r.fit_failures.len(),
            posterior_updates: r.posterior_updates,
            // Where this clip ran: shards of one job may run on different machines.
            device: ClipDevice { gp: backend.kind().into(), adapter: backend.describe(), ep: model.ep() },
            timings_ms: ClipTimingsMs {
                prior: prior_ms,
                model: ms(r.timings.model),
                gp_fit: ms(r.timings.gp_fit),
                posterior: ms(r.timings.posterior),
                total: ms(t0.elapsed()),
            },
            observations: r.observations.clone(),
        };
        // The record last: it marks the clip done.
        resume::commit_unit::<ClipJobFile>(out, &Record::new(k, vec![map_name(k)], vec![row], vec![entry]))?;
        bar.inc(1);
    }
    bar.finish();
    let finished = job.shard == Shard::ALL;
    if finished {
        finalize(out, file)?;
    }
    Ok(summary(todo.len(), finished))
}

/// `report.json` of `borex video --mode clip`. Field names are the file's keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClipReport {
    /// `clip`.
    pub mode: String,
    /// The video file or frame folder.
    pub input: String,
    /// The video's properties.
    pub video: VideoInfo,
    /// Which frames were used.
    pub selection: FrameSelection,
    /// Frames per clip.
    pub clip_len: usize,
    /// Frames from one clip's start to the next.
    pub clip_stride: usize,
    /// Selected frames after the last whole clip, left out.
    pub left_over_frames: usize,
    /// Every refine setting (class, prior, refine, baseline, temporal_sizes,
    /// model, model_input), at the top level.
    #[serde(flatten)]
    pub settings: ClipSettings,
    /// One entry per clip, in order.
    pub clips: Vec<ClipEntry>,
}

/// One clip of a clip-mode report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClipEntry {
    /// The clip's number.
    pub clip: usize,
    /// Its first and last frame.
    pub frames: [u64; 2],
    /// The explained class.
    pub class: usize,
    /// The model's probability of it.
    pub probability: f32,
    /// Clips scored for this clip (each T frames).
    pub model_evaluations: u64,
    /// The last GP's length scales.
    pub length_scales: Vec<f64>,
    /// Iterations whose length-scale fit failed.
    pub fit_failures: usize,
    /// Posterior updates by path.
    pub posterior_updates: crate::compute::PosteriorUpdates,
    /// Where this clip ran.
    pub device: ClipDevice,
    /// Where the time went (milliseconds).
    pub timings_ms: ClipTimingsMs,
    /// Every space-time query.
    pub observations: Vec<crate::refine::clip::ClipObservation>,
}

/// Where a clip ran (shards of one job may run on different machines).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClipDevice {
    /// `gpu` or `cpu`.
    pub gp: String,
    /// The adapter, in words.
    pub adapter: String,
    /// ONNX Runtime's execution provider.
    pub ep: crate::model::ExecutionProvider,
}

/// A clip's `timings_ms`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClipTimingsMs {
    /// The RISE prior.
    pub prior: f64,
    /// The loop's model calls.
    pub model: f64,
    /// Length-scale fits.
    pub gp_fit: f64,
    /// Posterior and search.
    pub posterior: f64,
    /// The whole clip.
    pub total: f64,
}

/// Join every clip's record and segment into `clips.csv`, `report.json` and
/// `overlay.mp4`, then drop the parts.
fn finalize(out: &Path, file: &ClipJobFile) -> Result<()> {
    resume::finalize(out, file, &overlay_rate(&file.info.fps, file.selection.every), |records| {
        let rows: Vec<ClipRow> = records.iter().flat_map(|r| r.rows.iter().cloned()).collect();
        let entries: Vec<ClipEntry> = records.iter().flat_map(|r| r.report.iter().cloned()).collect();
        if rows.len() != file.clips || entries.len() != file.clips || rows.iter().enumerate().any(|(k, r)| r.clip != k)
        {
            return Err(BorexError::invalid(format!(
                "{}: the clip records hold {} clips, not the {} of the job, in order",
                out.display(),
                rows.len(),
                file.clips
            )));
        }
        output::write_csv_rows(&out.join("clips.csv"), &CSV_HEADER, &rows)?;
        let report = ClipReport {
            mode: "clip".into(),
            input: file.input.clone(),
            video: file.info.clone(),
            selection: file.selection,
            clip_len: file.clip_len,
            clip_stride: file.clip_stride,
            left_over_frames: file.left_over_frames,
            settings: file.settings.clone(),
            clips: entries,
        };
        output::write_report(&out.join("report.json"), &report)
    })
}

/// Join the folders of clip-mode `video --shard` runs into `out` and finish
/// it as an unsharded run would. Returns the number of clips.
pub fn merge(shards: &[PathBuf], out: &Path) -> Result<usize> {
    let (whole, records, _lock) = resume::merge::<ClipJobFile>(shards, out)?;
    finalize(out, &whole.plan)?;
    Ok(records.len())
}
