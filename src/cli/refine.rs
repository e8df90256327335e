use super::{GlobalArgs, MergeCommand, ModelArgs};
use anyhow::Context;
use borex::compute::{Backend, Baseline};
use borex::engine::{Prior, RefineSettings};
use borex::metrics::InsertionStart;
use borex::model::Classifier;
use borex::refine::{run_refine, ClassSpec, RefineJob};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct RefineArgs {
    #[command(subcommand)]
    pub merge: Option<MergeCommand>,
    /// Images to explain (PNG or JPEG). With one image OUTDIR gets its outputs;
    /// with several (or --manifest), one sub-folder per image and summary.csv.
    #[arg(required_unless_present = "manifest")]
    pub image: Vec<PathBuf>,
    /// A file listing images, one per line (relative to the file's folder; # comments).
    #[arg(long, conflicts_with = "image")]
    pub manifest: Option<PathBuf>,
    /// BO loops advanced together (several images): each step scores 2F boxes in one model call.
    #[arg(long, default_value_t = 1)]
    pub lockstep: usize,
    /// Only the I-th of N slices of the images (0-based), for job arrays; `borex refine merge` joins the outputs.
    #[arg(long, allow_hyphen_values = true)]
    pub shard: Option<borex::job::Shard>,
    /// Output folder: prior.npy, refined.npy, overlay.png, report.json.
    #[arg(short, long, required = true)]
    pub out: Option<PathBuf>,
    /// Also write refined_full.npy at the original image resolution.
    #[arg(long)]
    pub full_res: bool,
    /// Print where the time went.
    #[arg(long)]
    pub timings: bool,
    /// Also write OUTDIR/report.html (`borex report`) at the end.
    #[arg(long)]
    pub report: bool,
    /// Model evaluations of the prior and the queries together, split by borex: a RISE prior
    /// (without +masks=N) gets a quarter, the queries the rest; any other prior costs what it costs.
    #[arg(long, conflicts_with = "iters")]
    pub budget: Option<usize>,
    #[command(flatten)]
    pub settings: RefineFlags,
}

/// What every refine shares, whether of one image, many, or video frames:
/// the library's [`RefineSettings`] as flags ([`RefineFlags::settings`]),
/// their defaults read from its `Default`.
#[derive(Debug, Args)]
pub struct RefineFlags {
    /// Class to explain: top1, a class id, or a label name.
    #[arg(long, default_value_t = RefineSettings::default().class, allow_hyphen_values = true)]
    pub class: ClassSpec,
    /// Prior map: a method (rise-fast = RISE N=100 s=8 p=0.3, rise = N=4000 s=7 p=0.5, occlusion,
    /// cam, gradcam, gradcam++, cameras) or a map file (.npy / .png).
    #[arg(long, default_value_t = RefineSettings::default().prior.to_string())]
    pub prior: String,
    /// Observations (each is two model evaluations).
    #[arg(long, default_value_t = RefineSettings::default().iters)]
    pub iters: usize,
    /// Seed of the prior's masks and the query jitter.
    #[arg(long, default_value_t = RefineSettings::default().seed)]
    pub seed: u64,
    /// Box half-widths in model pixels, comma-separated (default: 30,45,60,75 scaled to the input).
    #[arg(long, value_delimiter = ',')]
    pub sizes: Option<Vec<u32>>,
    /// UCB exploration weight κ.
    #[arg(long, default_value_t = RefineSettings::default().kappa, allow_hyphen_values = true)]
    pub kappa: f32,
    /// Objective gain g: f = 2·(sigmoid(g·(P_in − P_out)) − 0.5); 0 uses the raw difference.
    #[arg(long, default_value_t = RefineSettings::default().gain, allow_hyphen_values = true)]
    pub gain: f32,
    /// Keep the length scales at their initial values instead of refitting each iteration.
    #[arg(long)]
    pub fixed_length_scales: bool,
    /// Refit the length scales (L-BFGS-B) only every K-th query and keep them in between
    /// (each step is then a rank-one posterior append); 1 refits after every query.
    #[arg(long, default_value_t = RefineSettings::default().refit_every)]
    pub refit_every: usize,
    /// Search for the next box on every S-th row and column only (S² fewer candidates per
    /// step; the map is still read at every pixel); 1 searches every pixel.
    #[arg(long, default_value_t = RefineSettings::default().stride)]
    pub stride: usize,
    /// What removed pixels become: zero (the mean colour), blur, or a constant.
    #[arg(long, default_value_t = RefineSettings::default().baseline, allow_hyphen_values = true)]
    pub baseline: Baseline,
    /// What a query measures: paper (P(box kept) − P(box removed), both on --baseline; the BOREx
    /// authors' objective), matched (box kept on blur − box removed to zero: the default metric's
    /// substrates), insertion (box kept on blur − all blurred), deletion (image − box removed to zero);
    /// or antithetic: no box queries, the same evaluations (2 per --iters) go to the complements
    /// of the RISE prior's own masks (needs a RISE prior; `borex refine` only; the map of
    /// `borex explain --method rise-fast+antithetic=100`). Default: antithetic with a RISE prior,
    /// unless a box-only setting is given (--sizes, --kappa, --gain, --fixed-length-scales,
    /// --refit-every, --stride, --readout, --prior-mean, --relative-gain, --full-res); else matched.
    #[arg(long)]
    pub objective: Option<borex::refine::RefineObjective>,
    /// How the map is read from the GP posterior mean: window (the paper's box-window average),
    /// point (the mean at each pixel as a box centre, no window average) or detail (window plus
    /// the prior's detail below box scale).
    #[arg(long, default_value_t = RefineSettings::default().readout)]
    pub readout: borex::refine::full_res::Readout,
    /// The GP's prior mean from the prior map: scaled (the paper's: the map scaled to mean |S0| = 0.1)
    /// or fitted (a·S0 + b, scale and offset fitted to the observations by least squares).
    #[arg(long, default_value_t = RefineSettings::default().prior_mean)]
    pub prior_mean: borex::refine::PriorMean,
    /// Divide the gain by the class's probability P on the whole image (floored at 0.2):
    /// g·0.2/max(P, 0.2), so a confident class's box scores do not saturate (one more evaluation).
    #[arg(long)]
    pub relative_gain: bool,
    /// Where insertion starts (blur: the RISE reference; zero: the BOREx code);
    /// several, comma-separated, are each reported (the first is `insertion`).
    #[arg(long, value_delimiter = ',', default_value = "blur", value_parser = super::named::<InsertionStart>())]
    pub insertion_start: Vec<InsertionStart>,
    /// Skip insertion/deletion of the two maps.
    #[arg(long)]
    pub no_metrics: bool,
    /// Images per model call (RISE masks, metric steps).
    #[arg(long, default_value_t = RefineSettings::default().batch)]
    pub batch: usize,
    #[command(flatten)]
    pub model: ModelArgs,
}

impl RefineFlags {
    /// The flags as the library's settings: the one place they meet.
    pub fn settings(&self, full_res: bool, budget: Option<usize>) -> RefineSettings {
        RefineSettings {
            class: self.class.clone(),
            prior: Prior::parse(&self.prior),
            iters: self.iters,
            seed: self.seed,
            sizes: self.sizes.clone(),
            kappa: self.kappa,
            gain: self.gain,
            fixed_length_scales: self.fixed_length_scales,
            refit_every: self.refit_every,
            stride: self.stride,
            baseline: self.baseline,
            objective: self.objective,
            readout: self.readout,
            prior_mean: self.prior_mean,
            relative_gain: self.relative_gain,
            insertion_starts: self.insertion_start.clone(),
            metrics: !self.no_metrics,
            batch: self.batch,
            full_res,
            budget,
        }
    }
}

impl RefineArgs {
    /// This command's settings ([`RefineFlags::settings`] with `--full-res` and `--budget`).
    pub fn settings(&self) -> RefineSettings {
        self.settings.settings(self.full_res, self.budget)
    }
}

pub fn run(args: &RefineArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    if let Some(MergeCommand::Merge(m)) = &args.merge {
        let merged = borex::refine::bulk::merge_refine(&m.shards, &m.out)?;
        for (img, e) in &merged.failed {
            eprintln!("error: {img}: {e}");
        }
        println!("merged {} images from {} shards into {}", merged.images, m.shards.len(), m.out.display());
        // As the unsharded run would: images that failed in a shard fail the merge.
        anyhow::ensure!(
            merged.failed.is_empty(),
            "{} of {} images failed in their shards (see {}); rerun those shards, then merge again",
            merged.failed.len(),
            merged.images,
            m.out.join("summary.csv").display()
        );
        return Ok(());
    }
    let out_dir = args.out.clone().expect("clap requires --out");
    borex::limits::in_range("lockstep", args.lockstep, 1, borex::limits::MAX_LOCKSTEP)?;
    if args.image.len() == 1 && args.manifest.is_none() && args.shard.is_none() {
        return run_one(args, &args.image[0], &out_dir, global);
    }
    let images = match &args.manifest {
        Some(m) => borex::refine::bulk::read_manifest(m)?,
        None => args.image.clone(),
    };
    let shard = args.shard.unwrap_or(borex::job::Shard::ALL);
    let settings = args.settings();
    settings.validate()?;
    let backend = Backend::select(global.device)?;
    let model = args.settings.model.classifier_with_features(global)?;
    let job = make_job(&settings, PathBuf::new(), out_dir.clone(), &model, !global.quiet)?;
    let bar = super::progress::reporter(global.quiet).start(shard.range(images.len()).len() as u64, "images");
    let run = borex::refine::bulk::ManyImages {
        images: &images,
        shard,
        template: &job,
        out_dir: &out_dir,
        lockstep: args.lockstep,
    };
    let summary = borex::refine::bulk::refine_many(&run, &model, &backend, &borex::progress::Quiet, &bar)?;
    bar.finish();
    for (img, e) in &summary.failed {
        // Most errors already name their file.
        let named = e.contains(&img.display().to_string());
        eprintln!("error: {}{e}", if named { String::new() } else { format!("{}: ", img.display()) });
    }
    println!(
        "{} images: {} refined, {} kept from an earlier run, {} failed; wrote {}",
        shard.range(images.len()).len(),
        summary.done,
        summary.earlier,
        summary.failed.len(),
        out_dir.join("summary.csv").display()
    );
    if args.report {
        super::report::write(&out_dir, None, global.quiet)?;
    }
    anyhow::ensure!(
        summary.failed.is_empty(),
        "{} of {} images failed (see summary.csv)",
        summary.failed.len(),
        shard.range(images.len()).len()
    );
    Ok(())
}

/// The pipeline's job from the library's settings (which check them all and
/// spend `--budget`); with `say`, how the budget was split goes to stderr now
/// (a single image prints its report's notes at the end).
fn make_job(
    settings: &RefineSettings,
    image: PathBuf,
    out_dir: PathBuf,
    model: &Classifier,
    say: bool,
) -> anyhow::Result<RefineJob> {
    let (job, plan) = settings.budgeted_job(image, out_dir, &settings.prior, model)?;
    if let (Some(plan), Some(budget), true) = (plan, settings.budget, say) {
        eprintln!("note: --{}", plan.note(budget));
    }
    Ok(job)
}

fn run_one(
    args: &RefineArgs,
    image: &std::path::Path,
    out_dir: &std::path::Path,
    global: &GlobalArgs,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let settings = args.settings();
    // Every setting is checked before the model loads.
    settings.validate()?;
    let backend = Backend::select(global.device)?;
    // Loading ONNX Runtime and building the session, which the report's total leaves out.
    let load = std::time::Instant::now();
    let model = args.settings.model.classifier_with_features(global)?;
    let load_ms = load.elapsed().as_secs_f64() * 1e3;
    let job = make_job(&settings, image.to_path_buf(), out_dir.to_path_buf(), &model, false)?;
    let outcome = run_refine(&job, &model, &backend, super::progress::reporter(global.quiet))?;
    for note in &outcome.notes {
        eprintln!("note: {note}");
    }
    let r = &outcome.report;
    writeln!(
        out,
        "{}: class {} ({}) p={:.4}",
        image.display(),
        r.class,
        r.label.as_deref().unwrap_or("-"),
        f64::from(r.probability)
    )?;
    if !args.settings.no_metrics {
        let f = |v: Option<f32>| v.map(|x| format!("{:.4}", f64::from(x))).unwrap_or("-".into());
        for (scores, label) in [
            (&r.prior.scores, format!("prior   ({})", r.prior.method)),
            (
                &r.refined.scores,
                match job.config.refiner {
                    borex::refine::Refiner::Boxes => format!("refined ({} queries)", job.config.iters),
                    borex::refine::Refiner::Antithetic => {
                        format!("refined (antithetic, {} evaluations)", 2 * job.config.iters)
                    }
                },
            ),
        ] {
            let ins: Vec<String> = args
                .settings
                .insertion_start
                .iter()
                .map(|s| format!("insertion[{}] {}", s.name(), f(scores.insertion_from(*s))))
                .collect();
            writeln!(out, "  {label}: {} deletion {}", ins.join(" "), f(scores.deletion))?;
        }
    }
    if args.timings {
        writeln!(out, "  timings (ms): {}", serde_json::to_value(&r.timings_ms).context("timings")?)?;
        writeln!(out, "  model load (ms): {load_ms:.2}")?;
        writeln!(out, "  device: {}", serde_json::to_value(&r.device).context("device")?)?;
    }
    writeln!(out, "  wrote {}", out_dir.display())?;
    drop(out);
    if args.report {
        super::report::write(out_dir, None, global.quiet)?;
    }
    Ok(())
}
