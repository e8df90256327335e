use super::refine::RefineFlags;
use super::{GlobalArgs, MergeCommand};
use borex::compute::Backend;
use borex::job::Shard;
use borex::refine::clip::ClipConfig;
use borex::video::clip::{run_clips, ClipJob};
use borex::video::merge_shards;
use borex::video::run::{run, VideoJob, WarmStart};
use borex::video::FrameSelection;
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct VideoArgs {
    #[command(subcommand)]
    pub merge: Option<MergeCommand>,
    /// A video file (any container or codec FFmpeg reads) or a folder of frames (PNG/JPEG, in name order).
    #[arg(required = true)]
    pub input: Option<PathBuf>,
    /// Output folder: maps/ (one .npy per frame; clip mode: per clip), frames.csv (clip mode:
    /// clips.csv, report.json), overlay.mp4, job.json. Rerunning the same command into it resumes
    /// an interrupted run.
    #[arg(short, long, required = true)]
    pub out: Option<PathBuf>,
    /// Refine every K-th frame.
    #[arg(long, default_value_t = 1, allow_hyphen_values = true, value_parser = super::count::<u64>)]
    pub every: u64,
    /// Frames A:B (0-based, B excluded; A: or :B leave an end open).
    #[arg(long, value_parser = FrameSelection::parse_range)]
    pub frames: Option<(u64, Option<u64>)>,
    /// BO loops advanced together: F frames per step, 2F boxes in one model call.
    #[arg(long, default_value_t = 8)]
    pub lockstep: usize,
    /// One stacked maps.npy (N×H×W, frames in order) instead of maps/.
    #[arg(long)]
    pub stack: bool,
    /// Also write OUTDIR/report.html (`borex report`) at the end (when the run is finished, not a shard).
    #[arg(long)]
    pub report: bool,
    /// Frame rate of a frame folder.
    #[arg(long, default_value_t = 25.0)]
    pub fps: f64,
    /// Only the I-th of N slices of the frame groups (clip mode: of the clips; 0-based), for job
    /// arrays; `borex video merge` joins them.
    #[arg(long, allow_hyphen_values = true)]
    pub shard: Option<Shard>,
    /// frame: one BO problem per frame (an image classifier); clip: one per clip of
    /// --clip-len frames over space-time boxes (a classifier with an N×T×C×H×W input;
    /// the bundled efficientnet-lite0-clip.onnx by default).
    #[arg(long, value_enum, default_value_t = VideoMode::Frame)]
    pub mode: VideoMode,
    /// Clip mode: frames per clip (the model's T when it fixes one; else 8).
    #[arg(long)]
    pub clip_len: Option<usize>,
    /// Clip mode: frames from one clip's start to the next (default: the clip length).
    #[arg(long)]
    pub clip_stride: Option<usize>,
    /// Clip mode: temporal half-widths τ of the boxes in frames (a box covers [t−τ, t+τ];
    /// default 1 and T/2).
    #[arg(long, value_delimiter = ',')]
    pub temporal_sizes: Option<Vec<u32>>,
    /// Temporal warm start: the frames are cut into chains of --keyframe-every frames; a
    /// chain's first frame takes --prior, every next one the previous frame's refined map
    /// (no prior of its own). F chains advance in lockstep.
    #[arg(long)]
    pub warm_start: bool,
    /// With --warm-start: frames per chain (C). A resumed run or a shard starts at a chain's
    /// first frame, so the maps do not depend on how a run was split or stopped.
    #[arg(long, default_value_t = 8, requires = "warm_start")]
    pub keyframe_every: usize,
    /// With --warm-start: queries of a warm frame (default: --iters).
    #[arg(long, requires = "warm_start")]
    pub warm_iters: Option<usize>,
    #[command(flatten)]
    pub settings: RefineFlags,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum VideoMode {
    Frame,
    Clip,
}

pub fn run_video(args: &VideoArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    if let Some(MergeCommand::Merge(m)) = &args.merge {
        let (mode, n) = merge_shards(&m.shards, &m.out)?;
        let what = if mode == "clip" { "clips" } else { "frames" };
        println!("merged {n} {what} from {} shards into {}", m.shards.len(), m.out.display());
        return Ok(());
    }
    let (input, out) =
        (args.input.clone().expect("clap requires INPUT"), args.out.clone().expect("clap requires --out"));
    anyhow::ensure!(args.fps.is_finite() && args.fps > 0.0, "--fps must be a number > 0, not {}", args.fps);
    borex::limits::in_range("every", args.every as usize, 1, borex::limits::MAX_EVERY)?;
    borex::limits::in_range("lockstep", args.lockstep, 1, borex::limits::MAX_LOCKSTEP)?;
    let warm = args.warm_start.then(|| WarmStart {
        keyframe_every: args.keyframe_every,
        iters: args.warm_iters.unwrap_or(args.settings.iters),
    });
    if let Some(w) = warm {
        borex::limits::in_range("keyframe_every", w.keyframe_every, 1, borex::limits::MAX_EVERY)?;
        borex::limits::in_range("warm_iters", w.iters, 1, borex::limits::MAX_ITERS)?;
    }
    let (start, end) = args.frames.unwrap_or((0, None));
    borex::limits::in_range("frames", end.unwrap_or(start), 0, borex::limits::MAX_FRAME)?;
    let mut settings = args.settings.settings(false, None);
    // The antithetic continuation has no box loop for warm starts or a clip's time axis:
    // an unset objective is the box default here.
    let objective = settings.objective.get_or_insert(borex::refine::RefineObjective::BOXES_DEFAULT);
    anyhow::ensure!(
        *objective != borex::refine::RefineObjective::Antithetic,
        "--objective antithetic is for still images (borex refine): borex video refines with box queries; use --objective matched (or paper, insertion, deletion)"
    );
    let refine = settings.job(PathBuf::new(), out.clone(), &settings.prior)?;
    if args.mode == VideoMode::Clip {
        return run_clip_mode(args, global, input, out, refine);
    }
    let clip_only = [
        ("--clip-len", args.clip_len.is_some()),
        ("--clip-stride", args.clip_stride.is_some()),
        ("--temporal-sizes", args.temporal_sizes.is_some()),
    ];
    if let Some((flag, _)) = clip_only.iter().find(|(_, given)| *given) {
        anyhow::bail!("{flag} applies to --mode clip only");
    }
    let backend = Backend::select(global.device)?;
    let model = args.settings.model.classifier_with_features(global)?;
    let vjob = VideoJob {
        input,
        folder_fps: args.fps,
        selection: FrameSelection { start, end, every: args.every },
        lockstep: args.lockstep,
        shard: args.shard.unwrap_or(Shard::ALL),
        stack: args.stack,
        refine: &refine,
        out_dir: out.clone(),
        warm,
    };
    let quiet = global.quiet;
    let s = run(&vjob, &model, &backend, &|n| super::progress::reporter(quiet).start_rate(n, "frames"))?;
    let done = if s.finished {
        format!("wrote {}", out.display())
    } else {
        "this shard is done; `borex video merge` joins the shards".into()
    };
    println!("{} frames: {} refined, {} done by an earlier run; {done}", s.frames, s.refined, s.kept);
    if args.report && s.finished {
        super::report::write(&out, None, global.quiet)?;
    }
    Ok(())
}

fn run_clip_mode(
    args: &VideoArgs,
    global: &GlobalArgs,
    input: PathBuf,
    out: PathBuf,
    refine: borex::refine::RefineJob,
) -> anyhow::Result<()> {
    // What clip mode does not do (yet): say so rather than ignore it.
    for (flag, given) in [("--stack", args.stack), ("--warm-start", args.warm_start)] {
        anyhow::ensure!(!given, "{flag} is not supported with --mode clip");
    }
    if let Some(s) = args.clip_stride {
        borex::limits::in_range("clip_stride", s, 1, borex::limits::MAX_FRAME as usize)?;
    }
    if let Some(t) = args.clip_len {
        borex::limits::in_range("clip_len", t, 1, borex::limits::MAX_CLIP_LEN)?;
    }
    let backend = Backend::select(global.device)?;
    let model = args.settings.model.classifier_for_clips(global)?;
    let (start, end) = args.frames.unwrap_or((0, None));
    let cjob = ClipJob {
        input,
        folder_fps: args.fps,
        selection: FrameSelection { start, end, every: args.every },
        clip_len: args.clip_len,
        stride: args.clip_stride,
        class: refine.class.clone(),
        prior: refine.prior.clone(),
        config: ClipConfig { refine: refine.config.clone(), spans: args.temporal_sizes.clone() },
        batch: args.settings.batch,
        shard: args.shard.unwrap_or(Shard::ALL),
        out_dir: out.clone(),
    };
    let quiet = global.quiet;
    let s = run_clips(&cjob, &model, &backend, &|n| super::progress::reporter(quiet).start_rate(n, "clips"))?;
    let left = if s.left_over > 0 {
        format!(" ({} frames after the last whole clip left out)", s.left_over)
    } else {
        String::new()
    };
    let done = if s.finished {
        format!("wrote {}", out.display())
    } else {
        "this shard is done; `borex video merge` joins the shards".into()
    };
    println!(
        "{} clips of {} frames: {} refined, {} done by an earlier run{left}; {done}",
        s.clips, s.clip_len, s.refined, s.kept
    );
    if args.report && s.finished {
        super::report::write(&out, None, global.quiet)?;
    }
    Ok(())
}
