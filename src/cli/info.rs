use super::{GlobalArgs, ModelArgs};
use borex::compute::Backend;
use borex::model::{available_providers, runtime, runtime_version, Classifier};
use clap::Args;
use std::io::Write;

#[derive(Debug, Args)]
pub struct InfoArgs {
    #[command(flatten)]
    pub model: ModelArgs,
}

pub fn run(args: &InfoArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for line in borex::paths::describe_home() {
        writeln!(out, "{line}")?;
    }
    let backend = Backend::select(global.device)?;
    writeln!(out, "compute device: {} ({})", backend.describe(), backend.kind())?;
    if let Some(why) = &backend.fallback_reason {
        writeln!(out, "  GPU path not used by --device {:?}: {why}", global.device)?;
    }
    match borex::compute::gpu::GpuContext::shared() {
        Ok(g) => {
            let i = g.adapter_info();
            writeln!(
                out,
                "  wgpu adapter: {} | driver: {} {} | backend: {:?} | type: {:?}",
                i.name, i.driver, i.driver_info, i.backend, i.device_type
            )?;
            if g.is_software() {
                writeln!(out, "  (software adapter: tested against the CPU twin, used with --device gpu)")?;
            }
        }
        Err(e) => writeln!(out, "  wgpu adapter: none ({e})")?,
    }
    let opts = args.model.options(global);
    runtime(&opts.ort_lib)?;
    let source = match &global.ort_lib {
        Some(_) => "--ort-lib",
        None => borex::paths::locate_ort_lib().1.describe(),
    };
    writeln!(out, "ONNX Runtime: {} from {} ({source})", runtime_version(&opts.ort_lib), opts.ort_lib.display())?;
    writeln!(out, "  execution providers: {}", available_providers().join(", "))?;
    let model = Classifier::load(&opts)?;
    writeln!(out, "model: {} (ep: {})", model.path().display(), model.ep().name())?;
    for line in model.describe() {
        writeln!(out, "  {line}")?;
    }
    if let borex::model::InputKind::Clips { frames } = model.input_kind() {
        let t = frames.map_or("any T (--clip-len, default 8)".to_string(), |t| format!("T = {t}"));
        writeln!(out, "  input: clips of {t} frames (N×T×C×H×W): borex video --mode clip")?;
    }
    let p = model.preprocess();
    writeln!(
        out,
        "  preprocess: input {}x{}, resize {:?}, mean {:?}, std {:?}",
        p.input_size.0, p.input_size.1, p.resize, p.mean, p.std
    )?;
    match model.labels() {
        Some(l) => writeln!(out, "  labels: {} classes", l.len()),
        None => writeln!(out, "  labels: none (classes shown by index)"),
    }?;
    Ok(())
}
