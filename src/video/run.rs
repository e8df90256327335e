//! `borex video` frame mode: the selected frames are cut into groups of F (the
//! lockstep window); each group is a unit of work of the resumable folder
//! (`resume`): per-frame maps (`maps/`), then the group's overlay
//! segment and record, so a killed run resumes from the groups whose record
//! exists. The last step joins the records into `frames.csv` and the segments
//! into `overlay.mp4`. `--shard I/N` takes a slice of the groups; [`merge`]
//! joins the shards' folders and finishes the same way.
//!
//! With a warm start ([`WarmStart`]) the selected frames are cut into chains
//! of C consecutive frames and a group is F chains, in lockstep (one frame of
//! each per step), each chain in time order: its first frame (a keyframe,
//! every C-th selected frame) takes the job's prior, every next frame the
//! previous frame's refined map. A chain never crosses
//! a group, so a resumed run or a shard starts each group cold at its
//! keyframes and the maps do not depend on how the run was split or stopped.

use super::resume::{self, NoEntry, Record, UnitJob, UnitRun};
use super::{overlay_rate, FrameSelection, Input, VideoInfo};
use crate::compute::Backend;
use crate::error::{BorexError, Result};
use crate::job::description::{setting, Inputs, ModelId};
use crate::job::Shard;
use crate::job::{ms, JobDescription, JobKind};
use crate::model::Classifier;
use crate::output;
use crate::refine::bulk::{drive_groups, UnitResult};
use crate::refine::pipeline::{RefineJob, RefineUnit, Source};
use crate::refine::RefineConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A `borex video` run.
pub struct VideoJob<'a> {
    /// The video file or frame folder.
    pub input: PathBuf,
    /// Frame rate of a frame folder (a video file states its own).
    pub folder_fps: f64,
    /// Which frames to refine.
    pub selection: FrameSelection,
    /// Frames refined in lockstep (F): one model call of 2F inputs per query.
    pub lockstep: usize,
    /// `--shard I/N`: this run's share of the groups.
    pub shard: Shard,
    /// One N×H×W `maps.npy` instead of one `.npy` per frame.
    pub stack: bool,
    /// What every frame shares (its `image` and `out_dir` are unused).
    pub refine: &'a RefineJob,
    /// OUTDIR.
    pub out_dir: PathBuf,
    /// Temporal warm start; `None` refines every frame from the job's prior.
    pub warm: Option<WarmStart>,
}

/// `--warm-start`: frames after a chain's keyframe start from the previous
/// frame's refined map instead of a prior of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarmStart {
    /// Frames per chain (C): a keyframe, then C − 1 warm frames.
    pub keyframe_every: usize,
    /// Queries of a warm frame.
    pub iters: usize,
}

/// Frame mode's plan (the `plan` of `job.json`): the input, its frames and
/// how they are cut into groups; a resumed run or a shard being merged must match it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobFile {
    /// The video file or frame folder.
    pub input: String,
    /// Its frames' size, rate and count.
    pub info: VideoInfo,
    /// Which frames are refined.
    pub selection: FrameSelection,
    /// Frames per lockstep group (F).
    pub lockstep: usize,
    /// One `maps.npy` instead of one `.npy` per frame.
    pub stack: bool,
    /// Selected frames and the groups of `lockstep` they form.
    pub frames: usize,
    /// Groups of the job.
    pub groups: usize,
    /// The warm start, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm: Option<WarmStart>,
}

impl UnitJob for JobFile {
    type Row = FrameRow;
    type Entry = NoEntry;
    const KIND: JobKind = JobKind::VideoFrame;
    const UNIT: &'static str = "group";
    fn units(&self) -> usize {
        self.groups
    }
}

/// A group being finished: its number and each done frame's (index, row, overlay frame).
type PendingGroup = (usize, Vec<(u64, FrameRow, Overlay)>);

/// A done frame's overlay until its group is encoded: in memory, or (with a
/// warm start, whose group is F chains of up to `--keyframe-every` frames, as
/// long as the video) a raw RGB file in `parts/`, so memory does not grow with
/// the chain. The file is a borex temporary (`.….tmp`): a killed run's are removed.
enum Overlay {
    Frame(image::RgbImage),
    Spilled(std::path::PathBuf, (u32, u32)),
}

fn spill_path(out: &Path, frame: u64) -> std::path::PathBuf {
    out.join("parts").join(format!(".overlay_{frame:06}.rgb.tmp"))
}

/// One frame on its way through the lockstep driver.
struct Item {
    frame: Result<super::Frame>,
    /// The chain (lane) of the group it belongs to; 0 without warm start.
    lane: usize,
    /// Its prior is the previous frame's map (not a keyframe).
    warm: bool,
}

/// The chains of a group of `m` frames (positions 0..m): runs of `c`, the
/// last one shorter, so keyframes fall on every c-th selected frame whatever F.
fn chains(m: usize, c: usize) -> Vec<std::ops::Range<usize>> {
    (0..m).step_by(c).map(|a| a..(a + c).min(m)).collect()
}

/// `frames.csv`'s columns: [`FrameRow`]'s fields, in order.
pub const CSV_HEADER: [&str; 9] =
    ["frame", "timestamp", "class", "label", "probability", "insertion", "deletion", "model_evaluations", "time_ms"];

/// One row of `frames.csv` (and of a group's record): one refined frame.
/// Values are rounded as the table has always shown them (6 decimals, the
/// time 2), so a resumed or merged run writes the same table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrameRow {
    /// The frame's index in the input (0-based).
    pub frame: u64,
    /// Its presentation time, in seconds.
    pub timestamp: f64,
    /// The explained class.
    pub class: usize,
    /// Its label ("" when the model has no labels).
    pub label: String,
    /// The model's probability of `class` on the frame.
    pub probability: f64,
    /// The refined map's insertion AUC (empty with `--no-metrics`).
    pub insertion: Option<f64>,
    /// The refined map's deletion AUC (empty with `--no-metrics`).
    pub deletion: Option<f64>,
    /// Images the model scored for this frame (prior, loop and metrics).
    pub model_evaluations: u64,
    /// The frame's own prior, loop share and metrics time, in milliseconds.
    pub time_ms: f64,
}

/// `x` rounded to `decimals` places (the CSV tables' precision).
pub(crate) fn rounded(x: f64, decimals: i32) -> f64 {
    let k = 10f64.powi(decimals);
    (x * k).round() / k
}

impl FrameRow {
    /// Read `frames.csv`: its rows, or a one-line error naming the file.
    pub fn read_csv(path: &Path) -> Result<Vec<Self>> {
        crate::output::read_csv_rows(path, &CSV_HEADER)
    }
}

/// What a run did.
#[derive(Debug)]
pub struct VideoSummary {
    /// Frames of the run (of this shard).
    pub frames: usize,
    /// Frames this run refined (the others were done by an earlier run, or belong to other shards).
    pub refined: usize,
    /// Frames an earlier run had done (kept).
    pub kept: usize,
    /// The outputs are complete (`frames.csv`, `overlay.mp4`); false for a shard.
    pub finished: bool,
}

/// The job description of a frame-mode run: every refine setting, and the
/// video settings that change which frames are refined or how a warm chain runs.
fn description(job: &VideoJob, model: &Classifier) -> Result<JobDescription> {
    let mut settings = job.refine.settings()?;
    settings.remove("--full-res");
    settings.insert("--every".into(), setting(job.selection.every));
    settings.insert("--frames".into(), setting((job.selection.start, job.selection.end)));
    settings.insert("--lockstep".into(), setting(job.lockstep));
    settings.insert("--stack".into(), setting(job.stack));
    settings.insert("--warm-start".into(), setting(job.warm));
    Ok(JobDescription::new(
        JobKind::VideoFrame,
        ModelId::of(model)?,
        settings,
        Inputs::of(std::slice::from_ref(&job.input)),
        job.shard,
    ))
}

fn map_name(frame: u64) -> String {
    format!("maps/frame_{frame:06}.npy")
}

fn map_path(out: &Path, frame: u64) -> PathBuf {
    out.join(map_name(frame))
}

/// Refine the selected frames of `job.input` (or this shard's share), resuming
/// from the groups an earlier run finished; finish the outputs when the run
/// covers every group.
pub fn run(
    job: &VideoJob,
    model: &Classifier,
    backend: &Backend,
    progress: &dyn Fn(u64) -> Box<dyn crate::progress::Progress>,
) -> Result<VideoSummary> {
    crate::limits::in_range("lockstep", job.lockstep, 1, crate::limits::MAX_LOCKSTEP)?;
    let (input, info) = Input::open(&job.input, job.folder_fps)?;
    let indices = job.selection.indices(info.frames)?;
    let f = job.lockstep;
    if let Some(w) = job.warm {
        crate::limits::in_range("keyframe_every", w.keyframe_every, 1, crate::limits::MAX_EVERY)?;
        crate::limits::in_range("warm_iters", w.iters, 1, crate::limits::MAX_ITERS)?;
    }
    // Frames per group: F, or F chains of C with a warm start.
    let per_group = f * job.warm.map_or(1, |w| w.keyframe_every);
    let groups = indices.len().div_ceil(per_group);
    let file = JobFile {
        input: job.input.display().to_string(),
        info: info.clone(),
        selection: job.selection,
        lockstep: f,
        stack: job.stack,
        frames: indices.len(),
        groups,
        warm: job.warm,
    };
    let run = UnitRun::new(description(job, model)?, file)?;
    let file = &run.plan;
    let out = &job.out_dir;
    let begun = resume::begin(out, &run, &FINISHED)?;
    if begun.finished {
        return Ok(VideoSummary { frames: indices.len(), refined: 0, kept: indices.len(), finished: true });
    }

    let mine = job.shard.range(groups);
    let todo = resume::todo(out, &run);
    let group_frames = |g: usize| &indices[g * per_group..((g + 1) * per_group).min(indices.len())];
    let todo_frames: Vec<u64> = todo.iter().flat_map(|&g| group_frames(g).iter().copied()).collect();
    let group_of = |frame: u64| indices.binary_search(&frame).expect("a selected frame") / per_group;
    let in_shard: usize = mine.clone().map(|g| group_frames(g).len()).sum();
    // Only this run's frames, so frames/s and the ETA are this run's.
    let bar = progress(todo_frames.len() as u64);

    // The group being finished: its frames' rows and overlay frames (sorted by frame when it is written).
    let mut pending: Option<PendingGroup> = None;
    let fps_out = overlay_rate(&info.fps, job.selection.every);
    let labels = model.labels();
    // Warm frames: the job with the warm query count, and each lane's last map.
    let warm_job = job.warm.map(|w| RefineJob {
        config: RefineConfig { iters: w.iters, ..job.refine.config.clone() },
        ..job.refine.clone()
    });
    let last_maps = std::cell::RefCell::new(vec![None::<ndarray::Array2<f32>>; f]);
    let steps: Box<dyn Iterator<Item = Vec<Item>> + '_> = match job.warm {
        None => {
            let mut frames = input.frames(&info, todo_frames.clone())?.peekable();
            Box::new(std::iter::from_fn(move || {
                frames
                    .peek()
                    .is_some()
                    .then(|| frames.by_ref().take(f).map(|frame| Item { frame, lane: 0, warm: false }).collect())
            }))
        }
        Some(w) => {
            // Step j of a group: the j-th frame of each of its chains. Lane k
            // decodes chain k of every group (one decoder each, in time order).
            let mut plan: Vec<Vec<(usize, bool)>> = vec![];
            let mut lane_frames = vec![vec![]; f];
            for &g in &todo {
                let frames = group_frames(g);
                let runs = chains(frames.len(), w.keyframe_every);
                for j in 0..runs.iter().map(|r| r.len()).max().unwrap_or(0) {
                    plan.push(runs.iter().enumerate().filter(|(_, r)| j < r.len()).map(|(k, _)| (k, j > 0)).collect());
                }
                for (k, r) in runs.into_iter().enumerate() {
                    lane_frames[k].extend_from_slice(&frames[r]);
                }
            }
            let mut lanes = lane_frames.into_iter().map(|l| input.frames(&info, l)).collect::<Result<Vec<_>>>()?;
            Box::new(plan.into_iter().map(move |step| {
                step.into_iter()
                    .map(|(lane, warm)| Item {
                        frame: lanes[lane].next().expect("the plan follows each lane's frames"),
                        lane,
                        warm,
                    })
                    .collect()
            }))
        }
    };
    let mut refined = 0usize;
    drive_groups(
        steps,
        f,
        job.refine,
        model,
        backend,
        |item| {
            let fr = item.frame.as_ref().map_err(|e| BorexError::invalid(e.to_string()))?;
            let source = Source::Rgb(&fr.rgb, &format!("frame {}", fr.index));
            match (&warm_job, item.warm) {
                (Some(wj), true) => {
                    let prior = last_maps.borrow_mut()[item.lane].take();
                    let prior = prior.ok_or_else(|| {
                        BorexError::invalid(format!("frame {}: the previous frame of its chain has no map", fr.index))
                    })?;
                    RefineUnit::prepare_with_prior(
                        wj,
                        source,
                        model,
                        backend,
                        Some(prior),
                        &crate::progress::Quiet,
                        Instant::now(),
                    )
                }
                _ => RefineUnit::prepare(job.refine, source, model, backend, &crate::progress::Quiet, Instant::now()),
            }
        },
        |item, result| {
            let lane = item.lane;
            let frame = item.frame?;
            let (unit, r) = match result {
                UnitResult::Done(u, r) => (u, r),
                UnitResult::Failed(e) => return Err(BorexError::invalid(format!("frame {}: {e}", frame.index))),
            };
            let tm = Instant::now();
            let metrics = unit.map_metrics(r.map.view())?;
            let t = &r.timings;
            let time_ms = unit.prior_ms() + ms(t.model + t.gp_fit + t.posterior) + ms(tm.elapsed());
            output::write_npy(&map_path(out, frame.index), &r.map)?;
            if job.warm.is_some() {
                last_maps.borrow_mut()[lane] = Some(r.map.clone());
            }
            let class = unit.prepared.class;
            let auc = |v: Option<f32>| v.map(|x| rounded(f64::from(x), 6));
            let row = FrameRow {
                frame: frame.index,
                timestamp: rounded(frame.timestamp, 6),
                class,
                label: labels.and_then(|l| l.name(class)).unwrap_or("").to_string(),
                probability: rounded(f64::from(unit.prepared.probs[class]), 6),
                insertion: auc(metrics.and_then(|m| m.insertion)),
                deletion: auc(metrics.and_then(|m| m.deletion)),
                model_evaluations: unit.evaluations(&r),
                time_ms: rounded(time_ms, 2),
            };
            let overlay = super::encode::overlay_frame(&frame.rgb, r.map.view(), &unit.prepared.pre.crop);
            let overlay = if job.warm.is_some() {
                let p = spill_path(out, frame.index);
                output::check_replaceable(&p)?;
                std::fs::write(&p, overlay.as_raw()).map_err(|e| BorexError::io(&p, e))?;
                Overlay::Spilled(p, overlay.dimensions())
            } else {
                Overlay::Frame(overlay)
            };
            let g = group_of(frame.index);
            let entry = pending.get_or_insert_with(|| (g, vec![]));
            entry.1.push((frame.index, row, overlay));
            refined += 1;
            if entry.1.len() == group_frames(g).len() {
                let (g, mut done) = pending.take().expect("a pending group");
                done.sort_by_key(|d| d.0);
                let maps = done.iter().map(|d| map_name(d.0)).collect();
                let (rows, overlays): (Vec<_>, Vec<_>) = done.into_iter().map(|(_, row, o)| (row, o)).unzip();
                let segment = resume::segment_path::<JobFile>(out, g);
                let mut frames = vec![];
                let mut spilled = vec![];
                for o in overlays {
                    match o {
                        Overlay::Frame(f) => frames.push(f),
                        Overlay::Spilled(p, size) => spilled.push((p, size)),
                    }
                }
                if let Some(&(_, size)) = spilled.first() {
                    let files: Vec<_> = spilled.into_iter().map(|(p, _)| p).collect();
                    super::encode::encode_h264_raw_files(&segment, &files, size, &fps_out)?;
                    for f in &files {
                        let _ = std::fs::remove_file(f);
                    }
                } else {
                    super::encode::encode_h264(&segment, &frames, &fps_out)?;
                }
                // The record last: it marks the group done.
                resume::commit_unit::<JobFile>(out, &Record::new(g, maps, rows, vec![]))?;
            }
            Ok(())
        },
        &bar,
    )?;
    bar.finish();
    let finished = if job.shard == Shard::ALL {
        finalize(out, file)?;
        true
    } else {
        false
    };
    Ok(VideoSummary { frames: in_shard, refined, kept: in_shard - refined, finished })
}

/// A finished frame-mode folder holds these (and no `parts/`).
const FINISHED: [&str; 2] = ["frames.csv", "overlay.mp4"];

/// Join every group's record and segment into `frames.csv` and `overlay.mp4`
/// (and `maps.npy` with `--stack`), then drop the parts.
fn finalize(out: &Path, file: &JobFile) -> Result<()> {
    resume::finalize(out, file, &overlay_rate(&file.info.fps, file.selection.every), |records| {
        let rows: Vec<FrameRow> = records.iter().flat_map(|r| r.rows.iter().cloned()).collect();
        let frames: Vec<u64> = rows.iter().map(|r| r.frame).collect();
        if frames.len() != file.frames || frames.windows(2).any(|w| w[0] >= w[1]) {
            return Err(BorexError::invalid(format!(
                "{}: the group records hold {} frames, not the {} selected, in order",
                out.display(),
                frames.len(),
                file.frames
            )));
        }
        output::write_csv_rows(&out.join("frames.csv"), &CSV_HEADER, &rows)?;
        if file.stack {
            // maps.npy is written whole or not at all: once it is there, a run killed
            // before maps/ was removed (and reopened it empty) only removes it.
            let (stack, maps_dir) = (out.join("maps.npy"), out.join("maps"));
            if !stack.exists() {
                let maps: Vec<PathBuf> = frames.iter().map(|&i| map_path(out, i)).collect();
                let first = crate::image::read_npy_map(&maps[0], "map")?;
                super::encode::write_npy_stack(&stack, &maps, first.dim())?;
            }
            if maps_dir.exists() {
                std::fs::remove_dir_all(&maps_dir).map_err(|e| BorexError::io(&maps_dir, e))?;
            }
        }
        Ok(())
    })
}

/// Join the folders of frame-mode `video --shard` runs into `out` and finish
/// it as an unsharded run would. Returns the number of frames.
pub fn merge(shards: &[PathBuf], out: &Path) -> Result<usize> {
    let (whole, records, _lock) = resume::merge::<JobFile>(shards, out)?;
    finalize(out, &whole.plan)?;
    Ok(records.iter().map(|r| r.rows.len()).sum())
}
