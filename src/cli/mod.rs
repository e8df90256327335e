//! Command-line definitions (clap) and their validation, one module per subcommand.

mod bench;
mod classify;
mod counterfactual;
mod eval;
mod explain;
mod info;
pub mod progress;
mod refine;
mod report;
mod video;

use borex::compute::DeviceChoice;
use borex::model::{Classifier, ExecutionProvider, ModelOptions, OutputKind};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "borex",
    version,
    about = "Explain image classifiers and refine saliency maps with Bayesian optimisation"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// No progress bars.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Where GPU kernels run: auto picks a hardware GPU adapter, else the CPU twin (a software
    /// adapter is slower than it); gpu forces any adapter (docs/cli.md, "Devices").
    #[arg(long, global = true, default_value_t = DeviceChoice::Auto, value_parser = named::<DeviceChoice>())]
    pub device: DeviceChoice,
    /// ONNX Runtime execution provider for model inference.
    #[arg(long, global = true, default_value_t = ExecutionProvider::Cpu, value_parser = named::<ExecutionProvider>())]
    pub ep: ExecutionProvider,
    /// The ONNX Runtime library (default: $ORT_DYLIB_PATH, else the assets folder's ort/, else the
    /// onnxruntime Python package's; docs/cli.md, "Models").
    #[arg(long, global = true)]
    pub ort_lib: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Time every stage on the CPU and GPU paths against the model-only bound.
    Bench(Box<bench::BenchArgs>),
    /// Top-k classes of one or more images.
    Classify(classify::ClassifyArgs),
    /// The GPU adapter, ONNX Runtime and the model's inputs and outputs.
    Info(info::InfoArgs),
    /// A saliency map from one of borex's explainers.
    Explain(Box<explain::ExplainArgs>),
    /// Refine a saliency map with BOREx (Bayesian optimisation over box masks).
    Refine(Box<refine::RefineArgs>),
    /// Score maps (and refined maps) on image sets: insertion/deletion, paired tests, plots.
    Eval(Box<eval::EvalArgs>),
    /// Refine a saliency map for every frame of a video (or a folder of frames).
    Video(Box<video::VideoArgs>),
    /// A sparse visual counterfactual: a small change (l_p ball, p = 1.5) that makes the model say --target.
    Counterfactual(Box<counterfactual::CounterfactualArgs>),
    /// One self-contained HTML page for a run's output folder (images, maps, tables, plots).
    Report(report::ReportArgs),
}

/// `borex refine merge` and `borex video merge`: the outputs of `--shard` runs.
#[derive(Debug, Subcommand)]
pub enum MergeCommand {
    /// Join the output folders of `--shard` runs into one, with one summary.
    Merge(MergeArgs),
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The shards' output folders.
    #[arg(required = true)]
    pub shards: Vec<PathBuf>,
    /// The joined output folder.
    #[arg(short, long)]
    pub out: PathBuf,
}

/// Which model to load and how to feed it; unset values come from the model's
/// JSON sidecar, else defaults.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// ONNX classifier (default: the bundled EfficientNet-Lite0).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Class labels: one per line, or JSON.
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Model input size, N or HxW.
    #[arg(long, value_parser = parse_size)]
    pub input_size: Option<(u32, u32)>,
    /// Resize the short side to this before the centre crop.
    #[arg(long)]
    pub resize: Option<u32>,
    /// Per-channel mean on 0–255 values, "r,g,b".
    #[arg(long, value_parser = parse_triplet, allow_hyphen_values = true)]
    pub mean: Option<[f32; 3]>,
    /// Per-channel std on 0–255 values, "r,g,b" (each > 0).
    #[arg(long, value_parser = parse_std, allow_hyphen_values = true)]
    pub std: Option<[f32; 3]>,
    /// Whether the model outputs logits or probabilities (default: detected).
    #[arg(long, value_parser = named::<OutputKind>())]
    pub output_kind: Option<OutputKind>,
}

impl ModelArgs {
    /// Options for `--model`, else the bundled logits-only model.
    pub fn options(&self, global: &GlobalArgs) -> ModelOptions {
        self.options_or(global, borex::paths::default_model())
    }

    /// Options for `--model`, else the bundled model with its feature output
    /// (the same network; the CAM family needs the extra output).
    pub fn options_with_features(&self, global: &GlobalArgs) -> ModelOptions {
        self.options_or(global, borex::paths::default_features_model())
    }

    /// Options for `--model`, else the bundled clip model (video clip mode).
    pub fn options_for_clips(&self, global: &GlobalArgs) -> ModelOptions {
        self.options_or(global, borex::paths::default_clip_model())
    }

    /// The classifier of [`options`](Self::options), then the missing-sidecar note (after the
    /// load: a model that fails to load gets its one-line error alone).
    pub fn classifier(&self, global: &GlobalArgs) -> borex::Result<Classifier> {
        self.load_noting(global, &self.options(global))
    }

    /// The classifier of [`options_with_features`](Self::options_with_features), then the note.
    pub fn classifier_with_features(&self, global: &GlobalArgs) -> borex::Result<Classifier> {
        self.load_noting(global, &self.options_with_features(global))
    }

    /// The classifier of [`options_for_clips`](Self::options_for_clips), then the note.
    pub fn classifier_for_clips(&self, global: &GlobalArgs) -> borex::Result<Classifier> {
        self.load_noting(global, &self.options_for_clips(global))
    }

    fn load_noting(&self, global: &GlobalArgs, opts: &ModelOptions) -> borex::Result<Classifier> {
        let model = Classifier::load(opts)?;
        if let (Some(note), false) = (self.no_preprocessing_note(), global.quiet) {
            eprintln!("note: {note}");
        }
        Ok(model)
    }

    fn options_or(&self, global: &GlobalArgs, default: std::path::PathBuf) -> ModelOptions {
        let mut o = ModelOptions::new(self.model.clone().unwrap_or(default));
        if let Some(lib) = &global.ort_lib {
            o.ort_lib = lib.clone();
        }
        o.ep = global.ep;
        o.labels = self.labels.clone();
        o.output = self.output_kind;
        o.input_size = self.input_size;
        o.resize = self.resize;
        o.mean = self.mean;
        o.std = self.std;
        o
    }
}

impl ModelArgs {
    /// A user's model with no preprocessing sidecar and no preprocessing flag is fed with torchvision's
    /// defaults: right for many PyTorch exports, silently wrong for others (EfficientNet-Lite, Keras), so say so.
    fn no_preprocessing_note(&self) -> Option<String> {
        let model = self.model.as_ref()?;
        let sidecar = model.with_extension("json");
        let flags = self.input_size.is_some() || self.resize.is_some() || self.mean.is_some() || self.std.is_some();
        (!flags && model.exists() && !sidecar.exists()).then(|| {
            format!(
                "no {} beside the model and no --input-size/--resize/--mean/--std: using torchvision's ImageNet \
                 preprocessing (224×224 centre crop of the short side resized to 256, mean 0.485/0.456/0.406, \
                 std 0.229/0.224/0.225 × 255); docs/models.md says how to declare yours",
                sidecar.display()
            )
        })
    }
}

/// A library enum as a clap value: its names are the possible values (listed
/// in `--help` and in the error for any other), parsed through its `FromStr`.
pub fn named<T: Named>() -> impl clap::builder::TypedValueParser<Value = T> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(T::NAMES).map(|s| s.parse::<T>().expect("a listed name parses"))
}

/// The library enums the command line takes by name.
pub trait Named: std::str::FromStr<Err = String> + Clone + Send + Sync + 'static {
    /// Every value's name.
    const NAMES: &'static [&'static str];
}

impl Named for DeviceChoice {
    const NAMES: &'static [&'static str] = DeviceChoice::NAMES;
}
impl Named for ExecutionProvider {
    const NAMES: &'static [&'static str] = ExecutionProvider::NAMES;
}
impl Named for OutputKind {
    const NAMES: &'static [&'static str] = OutputKind::NAMES;
}
impl Named for borex::metrics::InsertionStart {
    const NAMES: &'static [&'static str] = borex::metrics::InsertionStart::NAMES;
}

fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let parse = |v: &str| v.trim().parse::<u32>().ok().filter(|v| *v > 0);
    match s.split_once(['x', 'X']) {
        Some((h, w)) => parse(h).zip(parse(w)),
        None => parse(s).map(|v| (v, v)),
    }
    .ok_or_else(|| format!("expected N or HxW with positive integers, not {s:?}"))
}

fn parse_triplet(s: &str) -> Result<[f32; 3], String> {
    let bad = || format!("expected three comma-separated finite numbers, not {s:?}");
    let v: Vec<f32> = s.split(',').map(|x| x.trim().parse::<f32>()).collect::<Result<_, _>>().map_err(|_| bad())?;
    let v = <[f32; 3]>::try_from(v).map_err(|_| bad())?;
    // NaN or infinity would reach the model as non-finite inputs, and the error would blame the model.
    if v.iter().any(|x| !x.is_finite()) {
        return Err(bad());
    }
    Ok(v)
}

fn parse_std(s: &str) -> Result<[f32; 3], String> {
    let v = parse_triplet(s)?;
    if let Some(x) = v.iter().find(|x| **x <= 0.0) {
        return Err(format!("each std must be > 0, not {x}"));
    }
    Ok(v)
}

/// A whole-number flag whose negative values reach borex (`allow_hyphen_values`) and get its
/// own message, not clap's "to pass '-1' as a value, use '-- -1'".
pub(crate) fn count<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.trim().parse::<T>().map_err(|_| {
        if s.trim_start().starts_with('-') {
            format!("must be a whole number ≥ 1, not {s}")
        } else {
            format!("expected a whole number, not {s:?}")
        }
    })
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Bench(a) => bench::run(a, &cli.global),
        Command::Classify(a) => classify::run(a, &cli.global),
        Command::Info(a) => info::run(a, &cli.global),
        Command::Refine(a) => refine::run(a, &cli.global),
        Command::Explain(a) => explain::run(a, &cli.global),
        Command::Eval(a) => eval::run(a, &cli.global),
        Command::Video(a) => video::run_video(a, &cli.global),
        Command::Counterfactual(a) => counterfactual::run(a, &cli.global),
        Command::Report(a) => report::run(a, &cli.global),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_triplets_parse() {
        assert_eq!(parse_size("224"), Ok((224, 224)));
        assert_eq!(parse_size("240x320"), Ok((240, 320)));
        assert!(parse_size("0").is_err());
        assert_eq!(parse_triplet("1, 2,3.5"), Ok([1.0, 2.0, 3.5]));
        assert!(parse_triplet("1,2").is_err());
        assert!(parse_triplet("nan,1,1").is_err() && parse_triplet("1,inf,1").is_err());
        assert_eq!(parse_triplet("-1,0,1"), Ok([-1.0, 0.0, 1.0]));
        assert_eq!(parse_std("-1,1,1"), Err("each std must be > 0, not -1".into()));
        assert_eq!(count::<u64>("-1"), Err("must be a whole number ≥ 1, not -1".into()));
    }

    impl Command {
        fn eval_sub(self) -> Option<eval::EvalCommand> {
            match self {
                Command::Eval(e) => e.sub,
                _ => None,
            }
        }
    }

    fn parse(args: &[&str]) -> Command {
        Cli::try_parse_from([&["borex"], args].concat()).expect("the command line parses").command
    }

    /// A subcommand given no flags runs with the library settings' `Default`
    /// (the flags' defaults are read from it, and the one conversion forgets no field).
    #[test]
    fn flags_left_out_are_the_library_defaults() {
        use borex::engine::{CounterfactualSettings, ExplainSettings, RefineSettings};
        let Command::Refine(a) = parse(&["refine", "img.png", "-o", "out"]) else { panic!("refine") };
        assert_eq!(a.settings(), RefineSettings::default());
        let Command::Video(v) = parse(&["video", "clip.mp4", "-o", "out"]) else { panic!("video") };
        assert_eq!(v.settings.settings(false, None), RefineSettings::default());
        let Command::Explain(e) = parse(&["explain", "img.png", "-m", "rise", "-o", "out"]) else { panic!("explain") };
        assert_eq!(e.settings().expect("rise is a method"), ExplainSettings::default());
        let Command::Counterfactual(c) = parse(&["counterfactual", "img.png", "--target", "1", "-o", "out"]) else {
            panic!("counterfactual")
        };
        assert_eq!(c.settings(), CounterfactualSettings::default());
        // `borex eval` refines and explains with the same defaults.
        let Command::Eval(v) = parse(&["eval", "img.png", "-o", "out"]) else { panic!("eval") };
        let (r, x) = (RefineSettings::default(), ExplainSettings::default());
        assert_eq!((v.iters, v.baseline, v.batch), (r.iters, x.baseline, x.batch));
        let Some(eval::EvalCommand::Mosaic(m)) = parse(&["eval", "mosaic", "dir", "-o", "out"]).eval_sub() else {
            panic!("eval mosaic")
        };
        assert_eq!((m.baseline, m.batch), (x.baseline, x.batch));
    }

    /// The library's setting errors read as flags on the command line.
    #[test]
    fn setting_errors_are_spelled_as_flags() {
        let Command::Refine(a) = parse(&["refine", "img.png", "-o", "out", "--refit-every", "0"]) else {
            panic!("refine")
        };
        let e = a.settings().validate().unwrap_err();
        assert_eq!(
            e.render(borex::error::Spelling::Flag),
            format!(
                "invalid input: --refit-every 0 is out of range: it must be between 1 and {}",
                borex::limits::MAX_ITERS
            )
        );
    }
}
