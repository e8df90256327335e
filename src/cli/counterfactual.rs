use super::{GlobalArgs, ModelArgs};
use borex::counterfactual::{run_counterfactual, GradientModel, Targets};
use borex::engine::CounterfactualSettings;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["target", "targets"])))]
pub struct CounterfactualArgs {
    /// Image to change (PNG or JPEG).
    pub image: PathBuf,
    /// Output folder: counterfactual.png/.npy, change.npy/.png, change_abs.npy, overlay.png, report.json.
    #[arg(short, long)]
    pub out: PathBuf,
    /// The class the changed image should get: a class id or a label name.
    #[arg(long, allow_hyphen_values = true)]
    pub target: Option<String>,
    /// Instead of --target: the k most probable classes other than the predicted one, in one batched run.
    #[arg(long)]
    pub targets: Option<usize>,
    /// Radius of the l_p ball, in [0,1] pixel units (the paper: 12 for l1.5 on 224² ImageNet images).
    #[arg(long, default_value_t = CounterfactualSettings::default().eps, allow_hyphen_values = true)]
    pub eps: f64,
    /// The norm's p, 1 < p < ∞ (1.5: sparse changes; 2: the l2 ball).
    #[arg(long, default_value_t = CounterfactualSettings::default().p, allow_hyphen_values = true)]
    pub p: f64,
    /// Auto-Frank-Wolfe steps (one batched model call each).
    #[arg(long, default_value_t = CounterfactualSettings::default().steps)]
    pub steps: usize,
    /// Runs per target (the first from the image, the rest from random points of the ball); the best is kept.
    #[arg(long, default_value_t = CounterfactualSettings::default().restarts)]
    pub restarts: usize,
    /// Seed of the random restarts.
    #[arg(long, default_value_t = CounterfactualSettings::default().seed)]
    pub seed: u64,
    /// A pixel counts as changed when |δ| exceeds this in some channel ([0,1] units).
    #[arg(long, default_value_t = CounterfactualSettings::default().change_threshold, allow_hyphen_values = true)]
    pub change_threshold: f32,
    /// Images per model call; targets × restarts are optimised in chunks of this many. Peak memory
    /// grows about linearly with it: for a 224² model like the bundled one about 53 MB per image
    /// over a 0.3 GB base (about 1.1 GB at 16, 3.7 GB at 64), whatever --targets is.
    #[arg(long, default_value_t = CounterfactualSettings::default().batch)]
    pub batch: usize,
    #[command(flatten)]
    pub model: ModelArgs,
}

impl CounterfactualArgs {
    /// The flags as the library's settings: the one place they meet.
    pub fn settings(&self) -> CounterfactualSettings {
        CounterfactualSettings {
            eps: self.eps,
            p: self.p,
            steps: self.steps,
            restarts: self.restarts,
            seed: self.seed,
            change_threshold: self.change_threshold,
            batch: self.batch,
        }
    }
}

pub fn run(args: &CounterfactualArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let targets = match (args.target.as_deref(), args.targets) {
        (Some(t), _) => Targets::Class(t.parse().map_err(|e: String| anyhow::anyhow!("--target {t}: {e}"))?),
        (None, Some(k)) => Targets::TopOthers(k),
        (None, None) => anyhow::bail!("give --target CLASS or --targets K"),
    };
    // Every setting is checked (by the library) before the model loads.
    let job = args.settings().job(args.image.clone(), targets, args.out.clone())?;
    let model = args.model.classifier(global)?;
    let grad = GradientModel::for_model(&model)?;
    let outcome = run_counterfactual(&job, &model, &grad, super::progress::reporter(global.quiet))?;
    for note in &outcome.notes {
        eprintln!("note: {note}");
    }
    let r = &outcome.report;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}: predicted {} p={:.4}", args.image.display(), r.start_class, f64::from(r.start_probability))?;
    for t in &r.targets {
        writeln!(
            out,
            "  → {}: p {:.4} → {:.4} ({}), ‖δ‖_{} = {:.3}, {:.1} % of pixels changed",
            t.class,
            f64::from(t.probability_before),
            f64::from(t.probability_after),
            if t.success { "reached" } else { "not reached" },
            args.p,
            if args.p == 2.0 { t.norms.l2 } else { t.norms.l1_5 },
            100.0 * t.changed_fraction,
        )?;
    }
    writeln!(out, "  {:.1} ms per counterfactual; wrote {}", r.timings_ms.per_counterfactual, args.out.display())?;
    Ok(())
}
