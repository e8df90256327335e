use super::{GlobalArgs, ModelArgs};
use borex::compute::{Backend, Baseline};
use borex::engine::ExplainSettings;
use borex::explain::run_explain;
use borex::metrics::InsertionStart;
use borex::refine::ClassSpec;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// Image to explain (PNG or JPEG).
    pub image: PathBuf,
    /// rise, rise-fast, occlusion, cam, gradcam, gradcam++ or cameras.
    #[arg(long, short)]
    pub method: String,
    /// Output folder: map.npy, overlay.png, report.json.
    #[arg(short, long)]
    pub out: PathBuf,
    /// Class to explain: top1, a class id, or a label name.
    #[arg(long, default_value_t = ExplainSettings::default().class, allow_hyphen_values = true)]
    pub class: ClassSpec,
    #[arg(long, default_value_t = ExplainSettings::default().seed)]
    pub seed: u64,
    /// RISE: number of masks (overrides the preset's N).
    #[arg(long)]
    pub masks: Option<usize>,
    /// Occlusion: window side in pixels.
    #[arg(long, default_value_t = ExplainSettings::default().window)]
    pub window: u32,
    /// Occlusion: window stride in pixels.
    #[arg(long, default_value_t = ExplainSettings::default().stride)]
    pub stride: u32,
    /// CAMERAS: input sizes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "224,324,424,524")]
    pub scales: Vec<u32>,
    /// What removed pixels become (occlusion): zero, blur, or a constant.
    #[arg(long, default_value_t = ExplainSettings::default().baseline, allow_hyphen_values = true)]
    pub baseline: Baseline,
    /// Skip insertion/deletion of the map.
    #[arg(long)]
    pub no_metrics: bool,
    /// Where insertion starts; several, comma-separated, are each reported.
    #[arg(long, value_delimiter = ',', default_value = "blur", value_parser = super::named::<InsertionStart>())]
    pub insertion_start: Vec<InsertionStart>,
    /// Sanity check: re-run with the final linear layer's weights randomised and
    /// report the rank correlation between the two maps (a faithful map changes).
    #[arg(long)]
    pub sanity: bool,
    /// Images per model call.
    #[arg(long, default_value_t = ExplainSettings::default().batch)]
    pub batch: usize,
    #[command(flatten)]
    pub model: ModelArgs,
}

impl ExplainArgs {
    /// The flags as the library's settings: the one place they meet (unset flags are its defaults).
    pub fn settings(&self) -> borex::Result<ExplainSettings> {
        Ok(ExplainSettings {
            method: self.method.parse()?,
            class: self.class.clone(),
            seed: self.seed,
            masks: self.masks,
            window: self.window,
            stride: self.stride,
            scales: self.scales.clone(),
            baseline: self.baseline,
            metrics: !self.no_metrics,
            insertion_starts: self.insertion_start.clone(),
            batch: self.batch,
            sanity: self.sanity,
        })
    }
}

pub fn run(args: &ExplainArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    // Every setting is checked (by the library) before the model loads.
    let job = args.settings()?.job(args.image.clone(), args.out.clone())?;
    let backend = Backend::select(global.device)?;
    let model = args.model.classifier_with_features(global)?;
    let outcome = run_explain(&job, &model, &backend, super::progress::reporter(global.quiet))?;
    for note in &outcome.notes {
        eprintln!("note: {note}");
    }
    let r = outcome.report;
    writeln!(
        out,
        "{}: {} for class {} ({})",
        args.image.display(),
        r.method,
        r.class,
        r.label.as_deref().unwrap_or("-")
    )?;
    if !args.no_metrics {
        let m = r.metrics.unwrap_or_default();
        writeln!(
            out,
            "  insertion {:.4} deletion {:.4}",
            m.insertion.map_or(f64::NAN, f64::from),
            m.deletion.map_or(f64::NAN, f64::from)
        )?;
    }
    if let Some(rho) = r.sanity.as_ref().and_then(|s| s.spearman) {
        writeln!(
            out,
            "  sanity: Spearman ρ = {rho:.3} between the map and the map with '{}' randomised",
            r.sanity.as_ref().map_or("?", |s| s.randomised.as_str())
        )?;
    }
    writeln!(out, "  wrote {} ({} ms)", args.out.display(), r.timings_ms.total)?;
    Ok(())
}
