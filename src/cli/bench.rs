use super::{GlobalArgs, ModelArgs};
use borex::bench::{render_table, run_bench, BenchInput, BenchOptions, BenchPath, Environment, Stage};
use borex::compute::gpu::GpuContext;
use borex::compute::DeviceChoice;
use borex::model::{runtime, runtime_version, Classifier};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Stages, comma-separated: all, or any of masking, blur, rise-masks, rise, posterior,
    /// posterior-append, fit, refine, insdel, video. Paths follow the global --device: auto = cpu and gpu, cpu, or gpu.
    #[arg(long, value_delimiter = ',', default_value = "all")]
    pub stages: Vec<String>,
    /// Timed runs per stage and path, after one warm-up run.
    #[arg(long, default_value_t = 5)]
    pub repeat: usize,
    /// Model input size (square), e.g. 224 or 1024.
    #[arg(long)]
    pub size: Option<u32>,
    /// RISE masks N in the rise stage.
    #[arg(long, default_value_t = 1000)]
    pub masks: usize,
    /// Queries of the refine stage.
    #[arg(long, default_value_t = 50)]
    pub iters: usize,
    /// Observations n of the posterior and fit stages.
    #[arg(long, default_value_t = 50)]
    pub observations: usize,
    /// Images per model call.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Frames refined in lockstep (F) in the video stage.
    #[arg(long, default_value_t = 8)]
    pub lockstep: usize,
    /// Length-scale refit every K-th query in the video stage (refine --refit-every).
    #[arg(long, default_value_t = 1)]
    pub refit_every: usize,
    /// Candidate stride of the UCB search in the video stage (refine --stride).
    #[arg(long, default_value_t = 1)]
    pub stride: usize,
    /// Image to run on (default: the bundled sample, else a synthetic pattern).
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// Print the JSON report instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON report to FILE.
    #[arg(short, long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
}

pub fn run(args: &BenchArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let stages = if args.stages.iter().any(|s| s == "all") {
        Stage::ALL.to_vec()
    } else {
        args.stages
            .iter()
            .map(|s| s.parse::<Stage>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("--stages: {e}"))?
    };
    let paths = match global.device {
        DeviceChoice::Auto => vec![BenchPath::Cpu, BenchPath::Gpu],
        DeviceChoice::Cpu => vec![BenchPath::Cpu],
        DeviceChoice::Gpu => vec![BenchPath::Gpu],
    };
    if let Some(s) = args.size {
        borex::limits::in_range("size", s, borex::limits::MIN_INPUT, borex::limits::MAX_INPUT)?;
    }
    if let Some(o) = &args.out {
        anyhow::ensure!(!o.is_dir(), "--out {} is a folder; give a file name for the JSON report", o.display());
        // A device or FIFO there is refused before the benchmarks run, not after.
        borex::output::check_replaceable(o)?;
    }
    let opts = BenchOptions {
        stages,
        paths: paths.clone(),
        repeat: args.repeat,
        masks: args.masks,
        iters: args.iters,
        observations: args.observations,
        batch: args.batch,
        seed: args.seed,
        lockstep: args.lockstep,
        refit_every: args.refit_every,
        stride: args.stride,
    };
    opts.validate()?;

    let mut model_opts = args.model.options(global);
    if let Some(s) = args.size {
        model_opts.input_size = Some((s, s));
    }
    runtime(&model_opts.ort_lib)?;
    let model = Classifier::load(&model_opts)?;
    let (rgb, image_name) = match &args.image {
        Some(p) => (borex::image::load_rgb(p)?, p.display().to_string()),
        None => {
            let sample = borex::paths::sample_image("chelsea.png");
            if sample.is_file() {
                (borex::image::load_rgb(&sample)?, sample.display().to_string())
            } else {
                let pattern = image::RgbImage::from_fn(300, 300, |x, y| {
                    image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x * y) % 251) as u8])
                });
                (pattern, "synthetic pattern".into())
            }
        }
    };
    let tensor = model.preprocess().apply(&rgb).tensor;
    let gpu = if paths.contains(&BenchPath::Gpu) {
        GpuContext::shared().map_err(|e| e.to_string())
    } else {
        Err("not requested (--device cpu)".into())
    };
    let environment = Environment {
        cpu_model: Environment::cpu_model(),
        logical_cores: Environment::logical_cores(),
        adapter: match &gpu {
            Ok(ctx) => ctx.describe(),
            Err(e) => format!("none ({e})"),
        },
        adapter_is_software: gpu.as_ref().ok().map(|c| c.is_software()),
        execution_provider: model.ep().name().into(),
        onnxruntime: runtime_version(&model_opts.ort_lib),
        model: model.path().display().to_string(),
        input_size: [tensor.dim().1, tensor.dim().2],
        image: image_name,
        borex_version: env!("CARGO_PKG_VERSION").into(),
    };
    let bar = super::progress::reporter(global.quiet).start(opts.runs(), "bench");
    let input = BenchInput { model: &model, image: tensor, gpu };
    let report = run_bench(&input, &opts, environment, &bar)?;
    bar.finish();
    if let Some(o) = &args.out {
        borex::output::write_json(o, &report)?;
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        write!(out, "{}", render_table(&report))?;
    }
    Ok(())
}
