use super::{GlobalArgs, ModelArgs};
use anyhow::Context;
use borex::classify::{classify_files, display_name};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ClassifyArgs {
    /// Images to classify (PNG or JPEG).
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
    /// How many classes to show per image.
    #[arg(long, default_value_t = 5)]
    pub top: usize,
    /// Images per model call.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &ClassifyArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    borex::limits::in_range("top", args.top, 1, borex::limits::MAX_TOP)?;
    borex::limits::in_range("batch", args.batch, 1, borex::limits::MAX_BATCH)?;
    let model = args.model.classifier(global)?;
    let bar =
        super::progress::reporter(global.quiet || args.images.len() < 2).start(args.images.len() as u64, "classify");
    let results = classify_files(&model, &args.images, args.top, args.batch, &bar)?;
    bar.finish();
    for r in &results {
        for note in &r.notes {
            eprintln!("note: {note}");
        }
        if let Some(e) = &r.error {
            eprintln!("error: {e}");
        }
    }
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&results).context("serialising results")?)?;
    } else {
        for r in results.iter().filter(|r| r.error.is_none()) {
            writeln!(out, "{}", display_name(&r.image))?;
            for (i, p) in r.predictions.iter().enumerate() {
                writeln!(
                    out,
                    "  {}. {:>4}  {:<40} {:.4}",
                    i + 1,
                    p.class,
                    p.label.as_deref().unwrap_or("-"),
                    p.probability
                )?;
            }
        }
    }
    let failed = results.iter().filter(|r| r.error.is_some()).count();
    anyhow::ensure!(failed == 0, "{failed} of {} images could not be classified", results.len());
    Ok(())
}
