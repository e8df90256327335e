//! [`Engine`]: borex as a library. One classifier session and one compute
//! backend, built once and reused by every call; plain values in (an image
//! file or an RGB image, a prior map as an array or a method name, settings
//! structs whose `Default` is the command line's), typed results out.
//!
//! The engine is a facade over the pipelines the `borex` command runs
//! ([`crate::refine::pipeline`], [`crate::explain::pipeline`],
//! [`crate::counterfactual`], [`crate::metrics`]): the same settings give the
//! same maps as the command, bit for bit, without writing any file.

#![warn(missing_docs)]

use crate::compute::{Backend, Baseline, DeviceChoice};
use crate::counterfactual::{AfwConfig, CounterfactualJob, GradientModel, Targets};
use crate::error::{BorexError, Result};
use crate::explain::{ExplainJob, Method, OcclusionParams, RiseParams};
use crate::job::{CausalScores, ClassSpec, Prepared, Source};
use crate::metrics::InsertionStart;
use crate::model::{Classifier, ExecutionProvider, ModelOptions, Prediction, Scorer};
use crate::refine::bulk::{drive, UnitResult};
use crate::refine::pipeline::RefineUnit;
use crate::refine::{PriorSpec, RefineConfig, RefineJob, RefineOutcome};
use ndarray::{Array2, ArrayView2, ArrayView3};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

pub use crate::counterfactual::Outcome as CounterfactualOutcome;
pub use crate::explain::ExplainOutcome;

/// How to build an [`Engine`]. `Default` is the command line's: the bundled
/// model, `--device auto`, `--ep cpu`, the ONNX Runtime the setup installed.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// An ONNX classifier; `None` is the bundled EfficientNet-Lite0 (with its
    /// feature output, which the CAM methods need).
    pub model: Option<PathBuf>,
    /// Class labels (one per line, or JSON); `None` takes the model's sidecar's.
    pub labels: Option<PathBuf>,
    /// Where the kernels run.
    pub device: DeviceChoice,
    /// ONNX Runtime's execution provider.
    pub ep: ExecutionProvider,
    /// The ONNX Runtime library; `None` is `$ORT_DYLIB_PATH`, else the setup's.
    pub ort_lib: Option<PathBuf>,
}

/// An image to work on: a file (PNG or JPEG), or an RGB image in memory.
#[derive(Debug, Clone)]
pub enum Image {
    /// An image file.
    Path(PathBuf),
    /// A decoded image and the name errors and reports give it.
    Rgb {
        /// The pixels.
        rgb: image::RgbImage,
        /// What errors and reports call it.
        name: String,
    },
}

impl Image {
    /// An RGB image in memory, named `name` in errors and reports.
    pub fn rgb(rgb: image::RgbImage, name: impl Into<String>) -> Self {
        Image::Rgb { rgb, name: name.into() }
    }

    /// An H×W×3 array of 8-bit RGB values (any strides).
    pub fn from_array(a: ArrayView3<u8>) -> Result<Self> {
        let (h, w) = check_hwc(a.dim())?;
        let rgb = image::RgbImage::from_fn(w as u32, h as u32, |x, y| {
            let (y, x) = (y as usize, x as usize);
            image::Rgb([a[[y, x, 0]], a[[y, x, 1]], a[[y, x, 2]]])
        });
        Ok(Image::rgb(rgb, "array"))
    }

    /// An H×W×3 array of RGB values in [0, 1] (any strides), rounded to 8 bits
    /// as an image file would hold them.
    pub fn from_float_array(a: ArrayView3<f32>) -> Result<Self> {
        let (h, w) = check_hwc(a.dim())?;
        if let Some(((y, x, c), v)) = a.indexed_iter().find(|(_, v)| !(v.is_finite() && (0.0..=1.0).contains(*v))) {
            return Err(BorexError::invalid(format!(
                "image value {v} at ({y}, {x}, {c}) is not in [0, 1]: a float image holds RGB values in [0, 1]"
            )));
        }
        let rgb = image::RgbImage::from_fn(w as u32, h as u32, |x, y| {
            let px = |c: usize| (a[[y as usize, x as usize, c]] * 255.0).round() as u8;
            image::Rgb([px(0), px(1), px(2)])
        });
        Ok(Image::rgb(rgb, "array"))
    }

    /// The pipelines' view of it.
    fn source(&self) -> Source<'_> {
        match self {
            Image::Path(p) => Source::File(p),
            Image::Rgb { rgb, name } => Source::Rgb(rgb, name),
        }
    }

    /// The name reports give it: the path, or the in-memory image's name.
    fn report_name(&self) -> PathBuf {
        match self {
            Image::Path(p) => p.clone(),
            Image::Rgb { name, .. } => PathBuf::from(name),
        }
    }
}

fn check_hwc((h, w, c): (usize, usize, usize)) -> Result<(usize, usize)> {
    if c != 3 || h == 0 || w == 0 {
        return Err(BorexError::invalid(format!("an image array must be H×W×3 with H, W ≥ 1 (RGB), not {h}×{w}×{c}")));
    }
    if h > crate::limits::MAX_IMAGE_SIDE as usize || w > crate::limits::MAX_IMAGE_SIDE as usize {
        return Err(BorexError::invalid(format!(
            "an image array of {h}×{w} is larger than the {} pixels a side borex reads",
            crate::limits::MAX_IMAGE_SIDE
        )));
    }
    Ok((h, w))
}

impl From<PathBuf> for Image {
    fn from(p: PathBuf) -> Self {
        Image::Path(p)
    }
}

impl From<&Path> for Image {
    fn from(p: &Path) -> Self {
        Image::Path(p.to_path_buf())
    }
}

impl From<&PathBuf> for Image {
    fn from(p: &PathBuf) -> Self {
        Image::Path(p.clone())
    }
}

impl From<&str> for Image {
    fn from(p: &str) -> Self {
        Image::Path(PathBuf::from(p))
    }
}

impl From<String> for Image {
    fn from(p: String) -> Self {
        Image::Path(PathBuf::from(p))
    }
}

impl From<image::RgbImage> for Image {
    fn from(rgb: image::RgbImage) -> Self {
        Image::rgb(rgb, "image")
    }
}

impl From<&image::RgbImage> for Image {
    fn from(rgb: &image::RgbImage) -> Self {
        Image::rgb(rgb.clone(), "image")
    }
}

impl From<&Image> for Image {
    fn from(i: &Image) -> Self {
        i.clone()
    }
}

/// Where a refine's prior map comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Prior {
    /// One of borex's explainers by name, as `--prior` takes it (`rise-fast`,
    /// `rise`, `occlusion`, `cam`, `gradcam`, `gradcam++`, `cameras`,
    /// `undesirable`, `rise+masks=N`); its seed is the refine's.
    Method(String),
    /// A map file (`.npy` float32/float64, or a grayscale PNG).
    File(PathBuf),
    /// A map in memory, at the model input's size or the original image's.
    Map(Array2<f32>),
}

impl Default for Prior {
    /// `rise-fast`, the command line's default.
    fn default() -> Self {
        Prior::Method("rise-fast".into())
    }
}

impl From<Array2<f32>> for Prior {
    fn from(m: Array2<f32>) -> Self {
        Prior::Map(m)
    }
}

impl Prior {
    fn spec(&self, seed: u64) -> Result<PriorSpec> {
        Ok(match self {
            Prior::Method(name) => {
                let m = Method::parse(name, seed).ok_or_else(|| crate::explain::unknown_method(name))?;
                m.validate()?;
                PriorSpec::Method(m)
            }
            Prior::File(p) => PriorSpec::File(p.clone()),
            Prior::Map(m) => PriorSpec::Map(m.clone()),
        })
    }
}

/// Settings of [`Engine::refine`]; `Default` is `borex refine`'s.
#[derive(Debug, Clone)]
pub struct RefineSettings {
    /// The class to explain (`--class`).
    pub class: ClassSpec,
    /// The prior map (`--prior`).
    pub prior: Prior,
    /// The loop's knobs (`--iters`, `--seed`, `--sizes`, `--kappa`, `--gain`,
    /// `--objective`, `--baseline`, ...).
    pub config: RefineConfig,
    /// Insertion starts to score; the first is the report's `insertion` (`--insertion-start`).
    pub insertion_starts: Vec<InsertionStart>,
    /// Score insertion/deletion of both maps (`--no-metrics` turns it off).
    pub metrics: bool,
    /// Images per model call (`--batch`).
    pub batch: usize,
    /// Also evaluate the refined map at the original resolution (`--full-res`).
    pub full_res: bool,
    /// Model evaluations of the prior and the queries together (`--budget`):
    /// replaces `config.iters` and, unless the prior's name gives `+masks=N`,
    /// a RISE prior's mask count ([`crate::refine::budget`]).
    pub budget: Option<usize>,
}

impl Default for RefineSettings {
    fn default() -> Self {
        Self {
            class: ClassSpec::Top1,
            prior: Prior::default(),
            config: RefineConfig::default(),
            insertion_starts: vec![InsertionStart::Blur],
            metrics: true,
            batch: 32,
            full_res: false,
            budget: None,
        }
    }
}

impl RefineSettings {
    /// The pipeline's job for `image` with `prior` on `model`; every setting
    /// checked, the budget spent.
    fn job(&self, image: &Image, prior: &Prior, model: &Classifier) -> Result<RefineJob> {
        self.config.validate()?;
        crate::limits::in_range("--batch", self.batch, 1, crate::limits::MAX_BATCH)?;
        if self.insertion_starts.is_empty() && self.metrics {
            return Err(BorexError::invalid("insertion_starts is empty: give at least one start (blur or zero)"));
        }
        let mut job = RefineJob {
            image: image.report_name(),
            class: self.class.clone(),
            prior: prior.spec(self.config.seed)?,
            config: self.config.clone(),
            out_dir: PathBuf::new(),
            full_res: self.full_res,
            insertion_starts: self.insertion_starts.clone(),
            metrics: self.metrics,
            batch: self.batch,
            notes: vec![],
        };
        if let Some(b) = self.budget {
            let given = matches!(prior, Prior::Method(name) if crate::refine::budget::masks_given(name));
            crate::refine::budget::apply(&mut job, b, given, model)?;
        }
        Ok(job)
    }
}

/// Settings of [`Engine::explain`]; `Default` is `borex explain -m rise`'s.
#[derive(Debug, Clone)]
pub struct ExplainSettings {
    /// The method's name (`-m`): rise, rise-fast, occlusion, cam, gradcam,
    /// gradcam++, cameras, undesirable.
    pub method: String,
    /// The class to explain (`--class`).
    pub class: ClassSpec,
    /// Seed of RISE's masks (`--seed`).
    pub seed: u64,
    /// RISE: the number of masks, overriding the preset's (`--masks`).
    pub masks: Option<usize>,
    /// Occlusion: window side and stride in pixels (`--window`, `--stride`).
    pub occlusion: OcclusionParams,
    /// CAMERAS: input sizes (`--scales`).
    pub scales: Vec<u32>,
    /// What removed pixels become (`--baseline`).
    pub baseline: Baseline,
    /// Score insertion/deletion of the map (`--no-metrics` turns it off).
    pub metrics: bool,
    /// Insertion starts to score (`--insertion-start`).
    pub insertion_starts: Vec<InsertionStart>,
    /// Images per model call (`--batch`).
    pub batch: usize,
    /// Also explain the model with its head randomised and compare (`--sanity`).
    pub sanity: bool,
}

impl Default for ExplainSettings {
    fn default() -> Self {
        Self {
            method: "rise".into(),
            class: ClassSpec::Top1,
            seed: 0,
            masks: None,
            occlusion: OcclusionParams::default(),
            scales: vec![224, 324, 424, 524],
            baseline: Baseline::Zero,
            metrics: true,
            insertion_starts: vec![InsertionStart::Blur],
            batch: 32,
            sanity: false,
        }
    }
}

impl ExplainSettings {
    /// The method with these settings' parameters, checked (what `borex explain` runs).
    pub fn method(&self) -> Result<Method> {
        let mut method =
            Method::parse(&self.method, self.seed).ok_or_else(|| crate::explain::unknown_method(&self.method))?;
        match &mut method {
            Method::Rise(p) | Method::RiseAntithetic { rise: p, .. } => {
                if let Some(n) = self.masks {
                    *p = RiseParams { n, ..*p };
                }
            }
            // Undesirable pixels are made from RISE masks: `--masks` counts them too.
            Method::Undesirable(p) => {
                if let Some(n) = self.masks {
                    p.rise = RiseParams { n, ..p.rise };
                }
            }
            Method::Occlusion(p) => *p = self.occlusion,
            Method::Cameras { scales } => *scales = self.scales.clone(),
            _ => {}
        }
        method.validate()?;
        Ok(method)
    }
}

/// Settings of [`Engine::evaluate`]; `Default` scores like `borex refine`'s metrics.
#[derive(Debug, Clone)]
pub struct EvaluateSettings {
    /// The class whose probability is scored.
    pub class: ClassSpec,
    /// Insertion starts to score; the first is `insertion`.
    pub insertion_starts: Vec<InsertionStart>,
    /// Images per model call.
    pub batch: usize,
}

impl Default for EvaluateSettings {
    fn default() -> Self {
        Self { class: ClassSpec::Top1, insertion_starts: vec![InsertionStart::Blur], batch: 32 }
    }
}

/// Insertion and deletion of a map, for one class.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Evaluation {
    /// The scored class.
    pub class: usize,
    /// Its label, when the model has labels.
    pub label: Option<String>,
    /// The model's probability of `class` on the image.
    pub probability: f32,
    /// The AUCs.
    #[serde(flatten)]
    pub scores: CausalScores,
    /// What the user should know (a map brought onto the model input's grid).
    pub notes: Vec<String>,
}

/// Settings of [`Engine::counterfactual`]; `Default` is `borex counterfactual`'s.
#[derive(Debug, Clone)]
pub struct CounterfactualSettings {
    /// Radius of the l_p ball in [0, 1] pixel units (`--eps`).
    pub eps: f64,
    /// The norm's p, 1 < p < ∞ (`--p`).
    pub p: f64,
    /// Auto-Frank-Wolfe steps (`--steps`).
    pub steps: usize,
    /// Runs per target (`--restarts`).
    pub restarts: usize,
    /// Seed of the restarts (`--seed`).
    pub seed: u64,
    /// |δ| above this counts a pixel as changed (`--change-threshold`).
    pub change_threshold: f32,
    /// Images per model call (`--batch`).
    pub batch: usize,
}

impl Default for CounterfactualSettings {
    fn default() -> Self {
        Self {
            eps: 12.0,
            p: 1.5,
            steps: 75,
            restarts: 1,
            seed: 0,
            change_threshold: 0.01,
            batch: crate::counterfactual::DEFAULT_BATCH,
        }
    }
}

/// The classifier the counterfactual runs on and its gradient graph.
struct GradientPair {
    /// `None`: the engine's own model.
    model: Option<Classifier>,
    grad: GradientModel,
}

/// borex's entry point: a classifier session and a compute backend, built once.
///
/// `Engine` is `Send` and `Sync`: the ONNX Runtime session sits behind a
/// mutex, the backend's kernels are `Send + Sync` trait objects behind `Arc`s,
/// so one engine can serve several threads (their model calls take turns on
/// the session; the rest of their work runs side by side).
///
/// The example runs as a doctest (`cargo test --release --doc`) on the bundled
/// model and sample image, which `scripts/setup.sh` installs ([`crate::paths`]).
///
/// ```
/// use borex::engine::{Engine, EngineOptions, RefineSettings};
///
/// let engine = Engine::new(&EngineOptions { device: borex::compute::DeviceChoice::Cpu, ..Default::default() })?;
/// let image = borex::paths::sample_image("chelsea.png");
/// let mut settings = RefineSettings::default();
/// settings.config.iters = 3;
/// settings.metrics = false;
/// let out = engine.refine(&image, &settings)?;
/// assert_eq!(out.map().dim(), (224, 224));
/// assert_eq!(out.report.observations.len(), 3);
///
/// // The report is the serde type `report.json` is written from, and reads back through it.
/// let json = serde_json::to_string(&out.report).expect("a report serializes");
/// let back: borex::report_types::RefineReport = serde_json::from_str(&json).expect("and reads back");
/// assert_eq!(back.class, out.report.class);
/// assert_eq!(back.observations.len(), 3);
/// # Ok::<(), borex::BorexError>(())
/// ```
pub struct Engine {
    model: Classifier,
    backend: Backend,
    /// Whether `model` is the bundled one (its gradient graph belongs to the logits-only twin).
    bundled: bool,
    gradient: OnceLock<GradientPair>,
    gradient_init: Mutex<()>,
}

impl Engine {
    /// Load the model and pick the device.
    pub fn new(options: &EngineOptions) -> Result<Self> {
        let bundled = options.model.is_none();
        let mut o = ModelOptions::new(options.model.clone().unwrap_or_else(crate::paths::default_features_model));
        if let Some(lib) = &options.ort_lib {
            o.ort_lib = lib.clone();
        }
        o.ep = options.ep;
        o.labels = options.labels.clone();
        let backend = Backend::select(options.device)?;
        let model = Classifier::load(&o)?;
        Ok(Self { bundled, ..Self::from_parts(model, backend) })
    }

    /// An engine over a model and a backend the caller built (any [`ModelOptions`]).
    pub fn from_parts(model: Classifier, backend: Backend) -> Self {
        Self { model, backend, bundled: false, gradient: OnceLock::new(), gradient_init: Mutex::new(()) }
    }

    /// The classifier.
    pub fn model(&self) -> &Classifier {
        &self.model
    }

    /// The compute backend (GPU or CPU kernels).
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// The `top` most probable classes of `image`, most probable first.
    pub fn classify(&self, image: impl Into<Image>, top: usize) -> Result<Vec<Prediction>> {
        let image = image.into();
        if top == 0 {
            return Err(BorexError::invalid("top must be at least 1"));
        }
        if let Some(n) = self.model.num_classes() {
            if top > n {
                return Err(BorexError::invalid(format!("top {top} exceeds the model's {n} classes")));
            }
        }
        let scorer = Scorer::new(&self.model, self.backend.image.as_ref(), 1);
        let prepared = Prepared::from_source(image.source(), &self.model, &scorer, &ClassSpec::Top1)?;
        Ok(self.model.top_k(ndarray::ArrayView1::from(&prepared.probs), top))
    }

    /// A saliency map of `image` from one of borex's explainers.
    pub fn explain(&self, image: impl Into<Image>, settings: &ExplainSettings) -> Result<ExplainOutcome> {
        let image = image.into();
        let job = ExplainJob {
            image: image.report_name(),
            class: settings.class.clone(),
            method: settings.method()?,
            baseline: settings.baseline,
            out_dir: PathBuf::new(),
            metrics: settings.metrics,
            insertion_starts: settings.insertion_starts.clone(),
            batch: settings.batch,
            sanity: settings.sanity,
        };
        crate::explain::pipeline::explain_source(&job, image.source(), &self.model, &self.backend, true)
    }

    /// Refine `image`'s prior map with BOREx: what `borex refine` computes, in memory.
    pub fn refine(&self, image: impl Into<Image>, settings: &RefineSettings) -> Result<RefineOutcome> {
        let image = image.into();
        let job = settings.job(&image, &settings.prior, &self.model)?;
        crate::refine::pipeline::refine_source(&job, image.source(), &self.model, &self.backend, true)
    }

    /// Refine several images, `lockstep` BO loops at a time (each step scores
    /// the 2·lockstep boxes of the group in one model call). `priors`, when
    /// given, has one prior per image; else every image takes `settings.prior`.
    /// The outer error is a bad setting; each image has its own result.
    pub fn refine_many(
        &self,
        images: &[Image],
        priors: Option<&[Prior]>,
        settings: &RefineSettings,
        lockstep: usize,
    ) -> Result<Vec<Result<RefineOutcome>>> {
        crate::limits::in_range("lockstep", lockstep, 1, crate::limits::MAX_LOCKSTEP)?;
        if let Some(p) = priors {
            if p.len() != images.len() {
                return Err(BorexError::invalid(format!(
                    "{} priors for {} images: give one per image",
                    p.len(),
                    images.len()
                )));
            }
        }
        let jobs = images
            .iter()
            .enumerate()
            .map(|(i, img)| settings.job(img, priors.map_or(&settings.prior, |p| &p[i]), &self.model))
            .collect::<Result<Vec<_>>>()?;
        let Some(first) = jobs.first() else { return Ok(vec![]) };
        let mut results: Vec<Option<Result<RefineOutcome>>> = (0..jobs.len()).map(|_| None).collect();
        drive(
            0..jobs.len(),
            lockstep,
            first,
            &self.model,
            &self.backend,
            |&i| RefineUnit::prepare(&jobs[i], images[i].source(), &self.model, &self.backend, true, Instant::now()),
            |i, result| {
                let r = match result {
                    UnitResult::Done(unit, refined) => unit.conclude(refined),
                    UnitResult::Failed(e) => Err(e),
                };
                // A cancelled call ends here: the images after this one are not started.
                if matches!(r, Err(BorexError::Interrupted)) {
                    return Err(BorexError::Interrupted);
                }
                results[i] = Some(r);
                Ok(())
            },
            &crate::progress::NoProgress,
        )?;
        Ok(results.into_iter().map(|r| r.expect("every image has a result")).collect())
    }

    /// Insertion and deletion AUC of `map` (model-input size, or the original
    /// image's) for `settings.class`, as the reports compute them.
    pub fn evaluate(
        &self,
        image: impl Into<Image>,
        map: ArrayView2<f32>,
        settings: &EvaluateSettings,
    ) -> Result<Evaluation> {
        let image = image.into();
        crate::limits::in_range("--batch", settings.batch, 1, crate::limits::MAX_BATCH)?;
        if settings.insertion_starts.is_empty() {
            return Err(BorexError::invalid("insertion_starts is empty: give at least one start (blur or zero)"));
        }
        // `borex eval`'s rule for a map file, one function: a map must rank some pixel above another.
        crate::metrics::check_ranks(map, "the map")?;
        let scorer = Scorer::new(&self.model, self.backend.image.as_ref(), settings.batch);
        let prepared = Prepared::from_source(image.source(), &self.model, &scorer, &settings.class)?;
        let x = prepared.pre.tensor.view();
        let (_, h, w) = x.dim();
        crate::limits::batch_fits(settings.batch, x.dim())?;
        let (map, note) = crate::image::map_to_input(map.to_owned(), &prepared.pre.crop, h, w, "the map")?;
        let mut notes = prepared.notes.clone();
        notes.extend(note);
        let class = prepared.class;
        let scores = crate::job::causal_metrics(
            &scorer,
            self.backend.image.as_ref(),
            x,
            map.view(),
            class,
            &settings.insertion_starts,
        )?;
        Ok(Evaluation {
            class,
            label: self.model.labels().and_then(|l| l.name(class)).map(str::to_string),
            probability: prepared.probs[class],
            scores,
            notes,
        })
    }

    /// A sparse visual counterfactual of `image` towards `targets`. Needs the
    /// model's forward+gradient graph (the bundled model has one).
    pub fn counterfactual(
        &self,
        image: impl Into<Image>,
        targets: Targets,
        settings: &CounterfactualSettings,
    ) -> Result<CounterfactualOutcome> {
        let image = image.into();
        let job = CounterfactualJob {
            image: image.report_name(),
            targets,
            afw: AfwConfig {
                eps: settings.eps,
                p: settings.p,
                steps: settings.steps,
                restarts: settings.restarts,
                seed: settings.seed,
                ..AfwConfig::default()
            },
            threshold: settings.change_threshold,
            batch: settings.batch,
            out_dir: PathBuf::new(),
        };
        job.validate()?;
        let pair = self.gradient_pair()?;
        let model = pair.model.as_ref().unwrap_or(&self.model);
        crate::counterfactual::counterfactual_source(&job, image.source(), model, &pair.grad, true)
    }

    /// The gradient graph, loaded on first use. The bundled model's belongs to
    /// its logits-only twin (what `borex counterfactual` loads), so that twin is
    /// loaded beside the engine's model.
    fn gradient_pair(&self) -> Result<&GradientPair> {
        if let Some(p) = self.gradient.get() {
            return Ok(p);
        }
        let _once = self.gradient_init.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = self.gradient.get() {
            return Ok(p);
        }
        let pair = if self.bundled {
            let mut o = ModelOptions::new(crate::paths::default_model());
            o.ort_lib = self.model.options().ort_lib.clone();
            o.ep = self.model.ep();
            o.labels = self.model.options().labels.clone();
            let twin = Classifier::load(&o)?;
            let grad = GradientModel::for_model(&twin)?;
            GradientPair { model: Some(twin), grad }
        } else {
            GradientPair { model: None, grad: GradientModel::for_model(&self.model)? }
        };
        Ok(self.gradient.get_or_init(|| pair))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Engine>();
    }

    #[test]
    fn image_arrays_must_be_rgb() {
        let bad = ndarray::Array3::<u8>::zeros((4, 4, 4));
        assert!(Image::from_array(bad.view()).unwrap_err().to_string().contains("4×4×4"));
        let empty = ndarray::Array3::<u8>::zeros((0, 4, 3));
        assert!(Image::from_array(empty.view()).is_err());
        let mut f = ndarray::Array3::<f32>::zeros((2, 2, 3));
        f[[1, 0, 2]] = 1.5;
        assert!(Image::from_float_array(f.view()).unwrap_err().to_string().contains("(1, 0, 2)"));
        // Transposed (non-contiguous) views are read by index, not by memory order.
        let a = ndarray::Array3::from_shape_fn((3, 2, 3), |(y, x, c)| (100 * c + 10 * y + x) as u8);
        let t = a.view().permuted_axes([1, 0, 2]);
        let Image::Rgb { rgb, .. } = Image::from_array(t).unwrap() else { unreachable!() };
        assert_eq!(rgb.dimensions(), (3, 2));
        assert_eq!(rgb.get_pixel(2, 1).0, [21, 121, 221]);
    }
}
