use super::{GlobalArgs, ModelArgs};
use borex::compute::{Backend, Baseline};
use borex::eval::mosaic::{run_mosaic as run_mosaic_job, MosaicJob};
use borex::eval::{read_manifest, run_eval, summary, EvalJob, RiseBaseline, Variant};
use borex::refine::{Objective, RefineConfig};
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct EvalArgs {
    #[command(subcommand)]
    pub sub: Option<EvalCommand>,
    /// Images to evaluate (PNG or JPEG).
    pub images: Vec<PathBuf>,
    /// A text file listing images, one per line (relative to the file; # comments).
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// Explainers whose maps are scored, comma-separated; `file:PATTERN` reads a map per image
    /// (.npy or PNG) with `{stem}` replaced by the image's file stem.
    #[arg(long, value_delimiter = ',', default_value = "rise-fast")]
    pub methods: Vec<String>,
    /// Seeds (each is one map per method, and one refinement per objective), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0")]
    pub seeds: Vec<u64>,
    /// Also refine every map and test refined vs prior.
    #[arg(long)]
    pub refine: bool,
    /// Refinements to compare (with --refine), comma-separated:
    /// OBJECTIVE[:BASELINE] then `+` suffixes: a readout (window, point), a prior mean (scaled,
    /// fitted), relative-gain, or kappa=K, gain=G, iters=T, sizes=A/B/…; e.g.
    /// paper,paper:blur,matched+relative-gain (default: matched, the box refinement); `antithetic`
    /// spends the same evaluations on the complements of a RISE prior's own masks
    /// (docs/quality-designs.md).
    #[arg(long, value_delimiter = ',')]
    pub objectives: Vec<String>,
    /// Refinement queries.
    #[arg(long, default_value_t = borex::engine::RefineSettings::default().iters)]
    pub iters: usize,
    /// Baselines for the refinements, comma-separated: RISE continued from each RISE prior's own
    /// masks to `equal-budget` (the prior's masks + 2 per query: as many model evaluations as
    /// prior and refinement together) or to a fixed mask count, e.g. `equal-budget,1000`.
    #[arg(long, value_delimiter = ',')]
    pub baselines: Vec<String>,
    /// What removed pixels become for the explainers: zero, blur or a constant.
    #[arg(long, default_value_t = borex::engine::ExplainSettings::default().baseline)]
    pub baseline: Baseline,
    /// Images per model call.
    #[arg(long, default_value_t = borex::engine::ExplainSettings::default().batch)]
    pub batch: usize,
    /// Output folder: results.csv, summary.md, summary.json, plots/, runs/ (kept for resuming).
    #[arg(short, long)]
    pub out: Option<PathBuf>,
    /// Also write OUTDIR/report.html (`borex report`) at the end.
    #[arg(long)]
    pub report: bool,
    /// Compute nothing: write the tables for the images whose maps are all in OUTDIR/runs
    /// (e.g. put together from one run per seed) and name the others.
    #[arg(long)]
    pub summary_only: bool,
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Mosaic metrics (docs/algorithms.md §3) and their reliability (Krippendorff's α, Spearman)
    /// on a folder with one sub-folder per class (named by class id or label).
    Mosaic(MosaicArgs),
}

#[derive(Debug, Args)]
pub struct MosaicArgs {
    /// Folder with one sub-folder per class, each with at least two images.
    pub dir: PathBuf,
    /// Number of 2×2 mosaics.
    #[arg(long, default_value_t = 20)]
    pub mosaics: usize,
    /// Seed of the mosaics (tiles, positions) and of the random methods.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Explainers to compare, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "rise-fast,gradcam,gradcam++")]
    pub methods: Vec<String>,
    /// What removed pixels become for the explainers: zero, blur or a constant.
    #[arg(long, default_value_t = borex::engine::ExplainSettings::default().baseline)]
    pub baseline: Baseline,
    /// Images per model call.
    #[arg(long, default_value_t = borex::engine::ExplainSettings::default().batch)]
    pub batch: usize,
    /// Output folder: mosaics.csv, summary.md, summary.json, mosaics/.
    #[arg(short, long)]
    pub out: PathBuf,
    /// Also write OUTDIR/report.html (`borex report`) at the end.
    #[arg(long)]
    pub report: bool,
    #[command(flatten)]
    pub model: ModelArgs,
}

fn command_line() -> String {
    std::iter::once("borex".to_string()).chain(std::env::args().skip(1)).collect::<Vec<_>>().join(" ")
}

fn run_mosaic(args: &MosaicArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    borex::limits::in_range("batch", args.batch, 1, borex::limits::MAX_BATCH)?;
    borex::limits::in_range("mosaics", args.mosaics, 1, borex::limits::MAX_MOSAICS)?;
    anyhow::ensure!(args.dir.is_dir(), "mosaic folder {} is not a folder", args.dir.display());
    let job = MosaicJob {
        dir: args.dir.clone(),
        mosaics: args.mosaics,
        seed: args.seed,
        methods: args.methods.iter().map(|m| m.trim().to_string()).collect(),
        baseline: args.baseline,
        out_dir: args.out.clone(),
        batch: args.batch,
        command: command_line(),
    };
    for (i, m) in job.methods.iter().enumerate() {
        anyhow::ensure!(borex::explain::Method::parse(m, 0).is_some(), "{}", borex::explain::unknown_method(m));
        anyhow::ensure!(!job.methods[..i].contains(m), "--methods lists {m} twice");
    }
    let backend = Backend::select(global.device)?;
    let model = args.model.classifier_with_features(global)?;
    let o = run_mosaic_job(&job, &model, &backend, super::progress::reporter(global.quiet))?;
    for r in &o.reliability {
        let a = r.alpha.map_or("undefined".into(), |a| format!("{a:.3}"));
        println!("{:<12} α (ordinal) {a}", r.metric);
    }
    println!("wrote {}", args.out.join("summary.md").display());
    if args.report {
        super::report::write(&args.out, None, global.quiet)?;
    }
    Ok(())
}

pub fn run(args: &EvalArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    if let Some(EvalCommand::Mosaic(m)) = &args.sub {
        return run_mosaic(m, global);
    }
    let Some(out) = &args.out else { anyhow::bail!("-o OUTDIR is required") };
    borex::limits::in_range("batch", args.batch, 1, borex::limits::MAX_BATCH)?;
    borex::limits::in_range("iters", args.iters, 1, borex::limits::MAX_ITERS)?;
    anyhow::ensure!(args.refine || args.objectives.is_empty(), "--objectives needs --refine");
    let mut images = args.images.clone();
    if let Some(m) = &args.manifest {
        let listed = read_manifest(m)?;
        // A study runs for hours: a manifest naming a missing file stops it before it starts.
        if let Some(p) = listed.iter().find(|p| !p.exists()) {
            anyhow::bail!("manifest {} names {}, which does not exist", m.display(), p.display());
        }
        images.extend(listed);
    }
    let baselines = args.baselines.iter().map(|b| RiseBaseline::parse(b)).collect::<Result<Vec<_>, _>>()?;
    let base = RefineConfig { iters: args.iters, ..RefineConfig::default() };
    let specs: Vec<String> = if !args.refine {
        vec![]
    } else if args.objectives.is_empty() {
        vec![Objective::default().name().to_string()]
    } else {
        args.objectives.clone()
    };
    let variants = specs.iter().map(|s| Variant::parse(s, &base)).collect::<Result<Vec<_>, _>>()?;
    let job = EvalJob {
        images,
        methods: args.methods.iter().map(|m| m.trim().to_string()).collect(),
        seeds: args.seeds.clone(),
        variants,
        baselines,
        baseline: args.baseline,
        out_dir: out.clone(),
        batch: args.batch,
        command: command_line(),
        summary_only: args.summary_only,
    };
    job.validate()?;
    let backend = Backend::select(global.device)?;
    let model = args.model.classifier_with_features(global)?;
    let outcome = run_eval(&job, &model, &backend, super::progress::reporter(global.quiet))?;
    let model_name = model.path().file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let summary = summary::write_all(&job, &outcome, &model_name)?;
    for m in &summary.methods {
        for v in &m.variants {
            if let Some(t) = v.tests.iter().find(|t| t.metric == summary::DEFAULT_METRIC) {
                println!(
                    "{} refined `{}`: insertion(blur) − deletion better on {}/{} pairs, mean gain {:+.4}, Wilcoxon p {}",
                    m.method,
                    v.variant,
                    t.wins,
                    t.n,
                    t.mean_gain,
                    t.wilcoxon.as_ref().map_or("undefined".into(), |w| summary::fmt_p(w.p))
                );
            }
        }
    }
    println!(
        "{} rows computed, {} already done; wrote {}",
        outcome.computed,
        outcome.skipped,
        out.join("summary.md").display()
    );
    for f in &outcome.failures {
        eprintln!("failed: {} ({}): {}", f.image.display(), f.what, f.error);
    }
    if args.report {
        super::report::write(out, None, global.quiet)?;
    }
    anyhow::ensure!(
        outcome.failures.is_empty(),
        "{} of {} images had failures (the rest are in {})",
        outcome.failures.iter().map(|f| &f.image).collect::<std::collections::BTreeSet<_>>().len(),
        job.images.len(),
        out.display()
    );
    Ok(())
}
