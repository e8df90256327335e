use super::{GlobalArgs, ModelArgs};
use anyhow::Context;
use borex::borex::{run_refine, ClassSpec, PriorSpec, RefineConfig, RefineJob};
use borex::compute::{Backend, Baseline};
use borex::metrics::InsertionStart;
use borex::model::Classifier;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct RefineArgs {
    /// Image to explain (PNG or JPEG).
    pub image: PathBuf,
    /// Output folder: prior.npy, refined.npy, overlay.png, report.json.
    #[arg(short, long)]
    pub out: PathBuf,
    /// Class to explain: top1, a class id, or a label name.
    #[arg(long, default_value = "top1")]
    pub class: ClassSpec,
    /// Prior map: a method (rise-fast = RISE N=100 s=8 p=0.3, rise = N=4000 s=7 p=0.5, occlusion,
    /// cam, gradcam, gradcam++, cameras) or a map file (.npy / .png).
    #[arg(long, default_value = "rise-fast")]
    pub prior: String,
    /// Observations (each is two model evaluations).
    #[arg(long, default_value_t = 50)]
    pub iters: usize,
    /// Seed of the prior's masks and the query jitter.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Box half-widths in model pixels, comma-separated (default: 30,45,60,75 scaled to the input).
    #[arg(long, value_delimiter = ',')]
    pub sizes: Option<Vec<u32>>,
    /// UCB exploration weight κ.
    #[arg(long, default_value_t = 10.0)]
    pub kappa: f32,
    /// Objective gain g: f = 2·(sigmoid(g·(P_in − P_out)) − 0.5); 0 uses the raw difference.
    #[arg(long, default_value_t = 10.0)]
    pub gain: f32,
    /// Keep the length scales at their initial values instead of refitting each iteration.
    #[arg(long)]
    pub fixed_length_scales: bool,
    /// What removed pixels become: zero (the mean colour), blur, or a constant.
    #[arg(long, default_value = "zero")]
    pub baseline: Baseline,
    /// What a query measures: paper (P(box kept) − P(box removed), both on --baseline; the BOREx
    /// authors' objective), matched (box kept on blur − box removed to zero: the default metric's
    /// substrates), insertion (box kept on blur − all blurred), deletion (image − box removed to zero).
    #[arg(long, default_value_t = borex::borex::Objective::default())]
    pub objective: borex::borex::Objective,
    /// How the map is read from the GP posterior mean: window (the paper's box-window average)
    /// or point (the mean at each pixel as a box centre, no window average).
    #[arg(long, default_value = "window")]
    pub readout: borex::borex::full_res::Readout,
    /// Also write refined_full.npy at the original image resolution.
    #[arg(long)]
    pub full_res: bool,
    /// Where insertion starts (blur: the RISE reference; zero: the BOREx code);
    /// several, comma-separated, are each reported (the first is `insertion`).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "blur")]
    pub insertion_start: Vec<InsertionStart>,
    /// Skip insertion/deletion of the two maps.
    #[arg(long)]
    pub no_metrics: bool,
    /// Print where the time went.
    #[arg(long)]
    pub timings: bool,
    /// Images per model call (RISE masks, metric steps).
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    #[command(flatten)]
    pub model: ModelArgs,
}

pub fn run(args: &RefineArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    anyhow::ensure!(args.iters > 0, "--iters must be at least 1");
    anyhow::ensure!(args.batch > 0, "--batch must be at least 1");
    if args.out.exists() && !args.out.is_dir() {
        anyhow::bail!("output folder {} is an existing file", args.out.display());
    }
    let config = RefineConfig {
        iters: args.iters,
        sizes: args.sizes.clone(),
        kappa: args.kappa,
        gain: args.gain,
        refit: !args.fixed_length_scales,
        seed: args.seed,
        baseline: args.baseline,
        objective: args.objective,
        readout: args.readout,
        ..RefineConfig::default()
    };
    let job = RefineJob {
        image: args.image.clone(),
        class: args.class.clone(),
        prior: PriorSpec::parse(&args.prior, args.seed),
        config,
        out_dir: args.out.clone(),
        full_res: args.full_res,
        insertion_starts: args.insertion_start.clone(),
        metrics: !args.no_metrics,
        batch: args.batch,
    };
    if let PriorSpec::File(p) = &job.prior {
        anyhow::ensure!(p.is_file(), "--prior {}: not a method ({}) nor an existing map file", p.display(), borex::explain::Method::NAMES.join(", "));
    }
    let backend = Backend::select(global.device)?;
    let model = Classifier::load(&args.model.options_with_features(global))?;
    let outcome = run_refine(&job, &model, &backend, global.quiet)?;
    for note in &outcome.notes {
        eprintln!("note: {note}");
    }
    let r = &outcome.report;
    writeln!(out, "{}: class {} ({}) p={:.4}", args.image.display(), r["class"], r["label"].as_str().unwrap_or("-"), r["probability"].as_f64().unwrap_or(0.0))?;
    if !args.no_metrics {
        let f = |v: &serde_json::Value| v.as_f64().map(|x| format!("{x:.4}")).unwrap_or("-".into());
        for (who, label) in [("prior", format!("prior   ({})", r["prior"]["method"].as_str().unwrap_or(""))), ("refined", format!("refined ({} queries)", args.iters))] {
            let ins: Vec<String> = args
                .insertion_start
                .iter()
                .map(|s| format!("insertion[{}] {}", s.name(), f(&r[who][format!("insertion_{}", s.name())])))
                .collect();
            writeln!(out, "  {label}: {} deletion {}", ins.join(" "), f(&r[who]["deletion"]))?;
        }
    }
    if args.timings {
        writeln!(out, "  timings (ms): {}", serde_json::to_string(&r["timings_ms"]).context("timings")?)?;
        writeln!(out, "  device: {}", r["device"])?;
    }
    writeln!(out, "  wrote {}", args.out.display())?;
    Ok(())
}
