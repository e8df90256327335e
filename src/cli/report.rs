use super::GlobalArgs;
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A run's output folder: refine (one image or many), video (frame or clip mode), eval,
    /// eval mosaic or counterfactual.
    pub dir: PathBuf,
    /// The HTML file to write (default: DIR/report.html).
    #[arg(short, long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: &ReportArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    write(&args.dir, args.out.as_deref(), global.quiet)
}

/// Render and write the page; `--report` of refine, eval and video calls this at the end of a run.
pub fn write(dir: &Path, out: Option<&Path>, quiet: bool) -> anyhow::Result<()> {
    let (kind, path, bytes) = borex::report::write_report(dir, out)?;
    if !quiet {
        println!("wrote {} ({} report, {} KB)", path.display(), kind.name(), bytes.div_ceil(1024));
    }
    Ok(())
}
