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

use crate::compute::{Backend, DeviceChoice};
use crate::counterfactual::{GradientModel, Targets};
use crate::error::{BorexError, Result};
use crate::explain::Method;
use crate::job::{CausalScores, ClassSpec, Prepared, Source};
use crate::model::{Classifier, ExecutionProvider, ModelOptions, Prediction, Scorer};
use crate::progress::{Quiet, Reporter};
use crate::refine::bulk::{drive, UnitResult};
use crate::refine::pipeline::RefineUnit;
use crate::refine::{PriorSpec, RefineOutcome};
use ndarray::{Array2, ArrayView2, ArrayView3};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

mod settings;

pub use crate::counterfactual::Outcome as CounterfactualOutcome;
pub use crate::explain::ExplainOutcome;
pub use settings::{CounterfactualSettings, EvaluateSettings, ExplainSettings, RefineSettings};

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

    /// An H×W×3 array of 8-bit RGB values (any strides; a row-major one is copied in one piece).
    pub fn from_array(a: ArrayView3<u8>) -> Result<Self> {
        let (h, w) = check_hwc(a.dim())?;
        let buf = match a.as_slice() {
            Some(s) => s.to_vec(),
            // Any other layout, read in the array's logical order.
            None => a.iter().copied().collect(),
        };
        let rgb = image::RgbImage::from_raw(w as u32, h as u32, buf).expect("h·w·3 values");
        Ok(Image::rgb(rgb, "array"))
    }

    /// An H×W×3 array of RGB values in [0, 1] (float32 or float64, any
    /// strides), rounded to 8 bits as an image file would hold them.
    pub fn from_float_array<F: Copy + Into<f64>>(a: ArrayView3<F>) -> Result<Self> {
        let (h, w) = check_hwc(a.dim())?;
        let mut buf = Vec::with_capacity(h * w * 3);
        for ((y, x, c), v) in a.indexed_iter() {
            let v: f64 = (*v).into();
            if !(0.0..=1.0).contains(&v) {
                return Err(BorexError::invalid(format!(
                    "float image values must be in [0, 1]; pixel ({y}, {x}) channel {c} is {v}"
                )));
            }
            buf.push((v * 255.0).round() as u8);
        }
        let rgb = image::RgbImage::from_raw(w as u32, h as u32, buf).expect("h·w·3 values");
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

/// An image array's shape, checked by the one rule of every front end: H×W×3,
/// at least 2×2 pixels (one pixel cannot be explained), at most
/// [`crate::limits::MAX_IMAGE_SIDE`] a side and
/// [`crate::limits::MAX_IMAGE_PIXELS`] in all (what borex decodes from a file).
pub fn check_hwc((h, w, c): (usize, usize, usize)) -> Result<(usize, usize)> {
    if c != 3 {
        return Err(BorexError::invalid(format!("an image array must be H×W×3 (RGB), not {h}×{w}×{c}")));
    }
    if h < 2 || w < 2 {
        return Err(BorexError::invalid(format!(
            "image array is {h}×{w}: an image needs at least 2×2 pixels to be explained"
        )));
    }
    let limit = crate::limits::MAX_IMAGE_SIDE as usize;
    if h > limit || w > limit || (h as u64) * (w as u64) > crate::limits::MAX_IMAGE_PIXELS {
        return Err(BorexError::invalid(format!(
            "image array is {h}×{w}, larger than borex takes ({limit} per side, {} pixels)",
            crate::limits::MAX_IMAGE_PIXELS
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

/// As `--prior` takes it: the method's name or the map file's path (`array` for a map in memory).
impl std::fmt::Display for Prior {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Prior::Method(m) => f.write_str(m),
            Prior::File(p) => write!(f, "{}", p.display()),
            Prior::Map(_) => f.write_str("array"),
        }
    }
}

impl From<Array2<f32>> for Prior {
    fn from(m: Array2<f32>) -> Self {
        Prior::Map(m)
    }
}

impl Prior {
    /// A prior given as text (`--prior`, Python's `prior="..."`): a method's
    /// name when it is one, else a map file's path. The one place every front
    /// end resolves a prior's text.
    pub fn parse(text: &str) -> Self {
        match Method::parse(text, 0) {
            Some(_) => Prior::Method(text.to_string()),
            None => Prior::File(PathBuf::from(text)),
        }
    }

    /// Whether the prior's name fixes a RISE prior's mask count (`rise-fast+masks=N`).
    pub fn masks_given(&self) -> bool {
        matches!(self, Prior::Method(name) if crate::refine::budget::masks_given(name))
    }

    /// Checked before any model is loaded: a method's parameters, a map file readable.
    pub fn check(&self, seed: u64) -> Result<()> {
        match self {
            Prior::Method(_) => self.spec(seed).map(|_| ()),
            Prior::File(p) => {
                if !p.exists() {
                    return Err(BorexError::setting(
                        "prior",
                        Some(p.display().to_string()),
                        format!(": not a method ({}) nor an existing map file", Method::NAMES.join(", ")),
                    ));
                }
                crate::limits::check_readable(p, crate::limits::MAX_NPY_FILE_BYTES, "prior map").map(|_| ())
            }
            Prior::Map(_) => Ok(()),
        }
    }

    /// The pipelines' form, a method's name parsed with `seed` and checked.
    pub fn spec(&self, seed: u64) -> Result<PriorSpec> {
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

/// Insertion and deletion of a map, for one class.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct MapScores {
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
/// // BOREx's box queries (a RISE prior's default is the antithetic continuation, which has none).
/// settings.objective = Some(borex::refine::RefineObjective::BOXES_DEFAULT);
/// settings.iters = 3;
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
    /// Where calls report progress ([`Engine::with_progress`]); [`Quiet`] by default.
    reporter: Box<dyn Reporter>,
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

    /// An engine over a model and a backend the caller built: any [`ModelOptions`], or any
    /// [`crate::model::Model`] through [`Classifier::new`] (the Python package's callables).
    pub fn from_parts(model: Classifier, backend: Backend) -> Self {
        Self {
            model,
            backend,
            bundled: false,
            gradient: OnceLock::new(),
            gradient_init: Mutex::new(()),
            reporter: Box::new(Quiet),
        }
    }

    /// Report every call's progress to `reporter` (terminal bars, a notebook
    /// widget, a log) instead of nothing: the stages a call runs (a refine's
    /// prior, its queries) each start their own progress from it.
    pub fn with_progress(mut self, reporter: impl Reporter + 'static) -> Self {
        self.reporter = Box::new(reporter);
        self
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
        let job = settings.job(image.report_name(), PathBuf::new())?;
        crate::explain::pipeline::explain_source(&job, image.source(), &self.model, &self.backend, &*self.reporter)
    }

    /// Refine `image`'s prior map with BOREx: what `borex refine` computes, in memory.
    pub fn refine(&self, image: impl Into<Image>, settings: &RefineSettings) -> Result<RefineOutcome> {
        let image = image.into();
        let (job, _) = settings.budgeted_job(image.report_name(), PathBuf::new(), &settings.prior, &self.model)?;
        crate::refine::pipeline::refine_source(&job, image.source(), &self.model, &self.backend, &*self.reporter)
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
            .map(|(i, img)| {
                let prior = priors.map_or(&settings.prior, |p| &p[i]);
                settings.budgeted_job(img.report_name(), PathBuf::new(), prior, &self.model).map(|(job, _)| job)
            })
            .collect::<Result<Vec<_>>>()?;
        let Some(first) = jobs.first() else { return Ok(vec![]) };
        let mut results: Vec<Option<Result<RefineOutcome>>> = (0..jobs.len()).map(|_| None).collect();
        drive(
            0..jobs.len(),
            lockstep,
            first,
            &self.model,
            &self.backend,
            |&i| {
                RefineUnit::prepare(
                    &jobs[i],
                    images[i].source(),
                    &self.model,
                    &self.backend,
                    &*self.reporter,
                    Instant::now(),
                )
            },
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
    ) -> Result<MapScores> {
        let image = image.into();
        settings.validate()?;
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
        Ok(MapScores {
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
        let job = settings.job(image.report_name(), targets, PathBuf::new())?;
        let pair = self.gradient_pair()?;
        let model = pair.model.as_ref().unwrap_or(&self.model);
        crate::counterfactual::counterfactual_source(&job, image.source(), model, &pair.grad, &*self.reporter)
    }

    /// The gradient graph, loaded on first use. The bundled model's belongs to
    /// its logits-only twin (what `borex counterfactual` loads), so that twin is
    /// loaded beside the engine's model.
    fn gradient_pair(&self) -> Result<&GradientPair> {
        if let Some(p) = self.gradient.get() {
            return Ok(p);
        }
        let onnx = self.model.require_onnx("a counterfactual (it follows the model's gradient)")?;
        let _once = self.gradient_init.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = self.gradient.get() {
            return Ok(p);
        }
        let pair = if self.bundled {
            let mut o = ModelOptions::new(crate::paths::default_model());
            o.ort_lib = onnx.options().ort_lib.clone();
            o.ep = onnx.ep();
            o.labels = onnx.options().labels.clone();
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
        let one = ndarray::Array3::<u8>::zeros((1, 1, 3));
        assert!(Image::from_array(one.view()).unwrap_err().to_string().contains("1×1: an image needs at least 2×2"));
        let mut f = ndarray::Array3::<f32>::zeros((2, 2, 3));
        f[[1, 0, 2]] = 1.5;
        assert!(Image::from_float_array(f.view()).unwrap_err().to_string().contains("pixel (1, 0) channel 2 is 1.5"));
        // Transposed (non-contiguous) views are read by index, not by memory order.
        let a = ndarray::Array3::from_shape_fn((3, 2, 3), |(y, x, c)| (100 * c + 10 * y + x) as u8);
        let t = a.view().permuted_axes([1, 0, 2]);
        let Image::Rgb { rgb, .. } = Image::from_array(t).unwrap() else { unreachable!() };
        assert_eq!(rgb.dimensions(), (3, 2));
        assert_eq!(rgb.get_pixel(2, 1).0, [21, 121, 221]);
    }
}
