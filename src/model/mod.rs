//! The classifier: a [`Model`] (an ONNX Runtime session, or any other
//! implementation such as the Python package's callable) plus everything
//! needed to feed it (preprocessing config, labels) and read it (logits or
//! probabilities).

mod labels;
mod onnx;
pub(crate) mod onnx_graph;
mod runtime;
mod scorer;

pub use labels::Labels;
pub use onnx::OnnxModel;
pub(crate) use runtime::session;
pub use runtime::{available_providers, runtime, version as runtime_version, ExecutionProvider, InitializerOverride};
pub use scorer::Scorer;

use crate::error::{BorexError, Result};
use crate::image::Preprocess;
use ndarray::{s, Array2, ArrayView4, Axis};
use ort::value::ValueType;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// What the model's class output holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputKind {
    /// Unnormalised scores: softmax is applied.
    Logits,
    /// Probabilities already: used as they are.
    Probabilities,
}

named_enum!(OutputKind, "output kind", { Logits => "logits", Probabilities => "probabilities" });

/// How to load a model; `None` fields come from the model's JSON sidecar
/// (`model.json` beside `model.onnx`), else from defaults.
#[derive(Debug, Clone)]
pub struct ModelOptions {
    /// The ONNX model file.
    pub path: PathBuf,
    /// The ONNX Runtime shared library to load (`libonnxruntime.so`).
    pub ort_lib: PathBuf,
    /// The execution provider to run on.
    pub ep: ExecutionProvider,
    /// A labels file (one per line, or JSON), overriding the sidecar's.
    pub labels: Option<PathBuf>,
    /// Whether the model outputs logits or probabilities.
    pub output: Option<OutputKind>,
    /// The model input (height, width), in pixels.
    pub input_size: Option<(u32, u32)>,
    /// The shorter side the image is resized to before the centre crop.
    pub resize: Option<u32>,
    /// Per-channel mean subtracted after scaling to [0, 1] (RGB).
    pub mean: Option<[f32; 3]>,
    /// Per-channel std divided by after the mean (RGB).
    pub std: Option<[f32; 3]>,
    /// Weights replaced at load time.
    pub overrides: Vec<InitializerOverride>,
}

impl ModelOptions {
    /// Options for the model at `path`: the bundled ONNX Runtime, the CPU provider, everything else from the sidecar.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            ort_lib: crate::paths::default_ort_lib(),
            ep: ExecutionProvider::Cpu,
            labels: None,
            output: None,
            input_size: None,
            resize: None,
            mean: None,
            std: None,
            overrides: vec![],
        }
    }
}

/// The optional `model.json` beside a model.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Sidecar {
    input_size: Option<u32>,
    resize: Option<u32>,
    mean: Option<[f32; 3]>,
    std: Option<[f32; 3]>,
    output: Option<OutputKind>,
    pub(crate) labels: Option<PathBuf>,
    /// Whether the model was trained to be adversarially robust (reported by `counterfactual`).
    robust: Option<bool>,
    /// The forward+gradient graph (`counterfactual`), relative to the sidecar.
    pub(crate) gradient: Option<PathBuf>,
    /// The model reads the channel mean: a grey image (counterfactuals change all three channels alike).
    grayscale: Option<bool>,
}

impl Sidecar {
    pub(crate) fn load(model: &Path) -> Result<Self> {
        let path = model.with_extension("json");
        if !path.exists() {
            return Ok(Self::default());
        }
        let text = crate::limits::read_text_bounded(&path, crate::limits::MAX_LABELS_BYTES, "model config")?;
        let mut s: Self =
            serde_json::from_str(&text).map_err(|e| BorexError::model(&path, format!("bad model config: {e}")))?;
        if let Some(l) = &s.labels {
            s.labels = Some(path.parent().unwrap_or(Path::new(".")).join(l));
        }
        if let Some(g) = &s.gradient {
            s.gradient = Some(path.parent().unwrap_or(Path::new(".")).join(g));
        }
        Ok(s)
    }
}

/// One predicted class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    /// The class index.
    pub class: usize,
    /// Its label, when the model has labels.
    pub label: Option<String>,
    /// The model's probability of it.
    pub probability: f32,
}

/// A classifier's forward pass, the seam every black-box path goes through
/// (classify, RISE, occlusion, undesirable, refine, evaluate): a batch of
/// preprocessed images in, one row of raw class scores per image out, and
/// what the pipeline must know to feed and read it ([`ModelInfo`]). Two
/// implementations: [`OnnxModel`] (an ONNX Runtime session) and, in the
/// Python package, a Python callable. [`Classifier`] wraps either and does
/// what is the same for both (the cancel check, the checks of the scores,
/// softmax), as the compute seam's GPU and CPU kernels sit behind one trait.
pub trait Model: Send + Sync {
    /// What errors and reports call the model: the ONNX file, or a callable's name.
    fn name(&self) -> &Path;

    /// What the pipeline needs to know to feed and read the model.
    fn info(&self) -> &ModelInfo;

    /// Raw class scores (logits or probabilities) of `batch`, N×3×H×W at
    /// `info().preprocess.input_size`: one row per image.
    fn run(&self, batch: ArrayView4<f32>) -> Result<Array2<f32>>;

    /// What runs it, for reports: ONNX Runtime's execution provider (`cpu`, `cuda`), or e.g. `python`.
    fn runs_on(&self) -> &str;

    /// The ONNX model behind it, for what needs its graph (the CAM family,
    /// gradients, the sanity check, clips); `None` for a black box.
    fn onnx(&self) -> Option<&OnnxModel> {
        None
    }
}

/// What the pipeline needs to know about a model: how to bring an image to
/// its input, what its output holds, and what its classes are called.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    /// How images are brought to the model input (its size included).
    pub preprocess: Preprocess,
    /// The class labels, when the model has them.
    pub labels: Option<Labels>,
    /// What the class output holds, when declared; `None`: detected on the first call.
    pub output: Option<OutputKind>,
    /// The number of classes, when known before the first call.
    pub classes: Option<usize>,
}

/// An image classifier: a [`Model`] with what borex does around every call
/// (the cancel check, refusing unusable scores, softmax of logits).
pub struct Classifier {
    model: Box<dyn Model>,
    output_kind: OnceLock<OutputKind>,
}

/// What one model input holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// N×C×H×W images.
    Images,
    /// N×T×C×H×W clips of T frames; `frames` when the model fixes T.
    Clips {
        /// T when the model fixes it, `None` when the axis is free.
        frames: Option<usize>,
    },
}

fn dims(t: &ValueType) -> Option<Vec<i64>> {
    t.tensor_shape().map(|s| s.iter().copied().collect())
}

impl Classifier {
    /// Load an ONNX model and check its input and output, or an error naming the file and what is wrong.
    pub fn load(opts: &ModelOptions) -> Result<Self> {
        Self::new(Box::new(OnnxModel::load(opts)?))
    }

    /// A classifier over any [`Model`], its info checked: a usable preprocessing, as many labels as classes.
    pub fn new(model: Box<dyn Model>) -> Result<Self> {
        let info = model.info();
        {
            use crate::limits::{in_range, MAX_INPUT, MAX_RESIZE};
            let (h, w) = info.preprocess.input_size;
            in_range("input_size", h, 1, MAX_INPUT)?;
            in_range("input_size", w, 1, MAX_INPUT)?;
            if let Some(r) = info.preprocess.resize {
                in_range("resize", r, 1, MAX_RESIZE)?;
            }
        }
        if info.preprocess.std.iter().any(|s| *s == 0.0 || !s.is_finite()) {
            return Err(BorexError::invalid("--std values must be finite and non-zero"));
        }
        if let (Some(l), Some(n)) = (&info.labels, info.classes) {
            if l.len() != n {
                return Err(BorexError::model(
                    model.name(),
                    format!("model has {n} classes but the labels list {}", l.len()),
                ));
            }
        }
        if info.classes == Some(1) && info.output != Some(OutputKind::Probabilities) {
            return Err(one_class(model.name()));
        }
        let output_kind = OnceLock::new();
        if let Some(k) = info.output {
            let _ = output_kind.set(k);
        }
        Ok(Self { model, output_kind })
    }

    /// The model behind it.
    pub fn model(&self) -> &dyn Model {
        self.model.as_ref()
    }

    /// The ONNX model behind it, `None` for a black box (a Python callable).
    pub fn onnx(&self) -> Option<&OnnxModel> {
        self.model.onnx()
    }

    /// The ONNX model behind it, or the one-line error that `what` needs one.
    pub fn require_onnx(&self, what: &str) -> Result<&OnnxModel> {
        self.onnx().ok_or_else(|| {
            BorexError::model(
                self.path(),
                format!("{what} needs the model's ONNX graph, and this model is one borex can only call ({}): it takes classify, refine, evaluate and the black-box methods (rise, rise-fast, occlusion, undesirable)", self.model.runs_on()),
            )
        })
    }

    /// What errors and reports call the model: its file, or a callable's name.
    pub fn path(&self) -> &Path {
        self.model.name()
    }

    /// The same model with its final linear layer's weights replaced by
    /// Gaussian noise of the same standard deviation (seeded): the model
    /// randomisation test of Adebayo et al. 2018. Returns the model and the
    /// randomised initializer's name. Needs an ONNX model.
    pub fn with_randomised_head(&self, seed: u64) -> Result<(Classifier, String)> {
        self.require_onnx("the sanity check (randomising the model's head)")?.with_randomised_head(seed)
    }

    /// A replaced initializer, if this model was loaded with one.
    pub fn initializer_override(&self, name: &str) -> Option<&InitializerOverride> {
        self.onnx().and_then(|o| o.initializer_override(name))
    }

    /// How images are brought to the model input.
    pub fn preprocess(&self) -> &Preprocess {
        &self.model.info().preprocess
    }

    /// The class labels, when the model has them.
    pub fn labels(&self) -> Option<&Labels> {
        self.model.info().labels.as_ref()
    }

    /// The execution provider the ONNX session runs on (`Cpu` for a model ONNX Runtime does not run).
    pub fn ep(&self) -> ExecutionProvider {
        self.onnx().map_or(ExecutionProvider::Cpu, |o| o.ep())
    }

    /// What runs the model, for reports: ONNX Runtime's execution provider, or e.g. `python`.
    pub fn runs_on(&self) -> &str {
        self.model.runs_on()
    }

    /// Whether the sidecar declares the model adversarially robust (`None`: it says nothing).
    pub fn robust(&self) -> Option<bool> {
        self.onnx().and_then(|o| o.robust())
    }

    /// The forward+gradient graph the sidecar names, else `<model>.grad.onnx` beside the model if it exists.
    pub fn gradient_graph(&self) -> Option<PathBuf> {
        self.onnx().and_then(|o| o.gradient_graph())
    }

    /// Whether the model reads grey images (the sidecar's `grayscale`).
    pub fn grayscale(&self) -> bool {
        self.onnx().is_some_and(|o| o.grayscale())
    }

    /// What the class output holds: as declared (`--output-kind`, the sidecar), else as
    /// detected from the first model call (`None` before it).
    pub fn output_kind(&self) -> Option<OutputKind> {
        self.output_kind.get().copied()
    }

    /// The output kind as given (`--output-kind`, the sidecar), `None` when it is left to
    /// detection: what a job description records (detection happens on a call, later).
    pub fn declared_output_kind(&self) -> Option<OutputKind> {
        self.model.info().output
    }

    /// A note when outputs taken as probabilities (declared so by `--output-kind` or the
    /// sidecar, or detected on the first call) are not: the "probabilities" used for `what`
    /// are then raw scores, such as logits, and every probability-based step misreads them.
    pub fn not_probabilities_note(&self, what: &str, row: ndarray::ArrayView1<f32>) -> Option<String> {
        if self.output_kind() != Some(OutputKind::Probabilities) || is_probability_row(row) {
            return None;
        }
        let (lo, hi) = row.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        Some(format!(
            "{what}: the model's outputs are taken as probabilities (--output-kind probabilities, or the model's sidecar) but are not: they range from {lo:.4} to {hi:.4} and sum to {:.4}, so the numbers used are raw scores; pass --output-kind logits to apply softmax",
            row.sum()
        ))
    }

    /// Number of classes, when the model states it statically.
    pub fn num_classes(&self) -> Option<usize> {
        self.model.info().classes
    }

    /// The name of the feature-map output, if the model has one (for CAM methods).
    pub fn feature_output(&self) -> Option<&str> {
        self.onnx().and_then(|o| o.feature_output())
    }

    /// Describe inputs and outputs, for `borex info`.
    pub fn describe(&self) -> Vec<String> {
        match self.onnx() {
            Some(o) => o.describe(),
            None => vec![format!("a model borex calls ({}): N×3×H×W in, N×classes out", self.runs_on())],
        }
    }

    /// Images or clips, from the input's rank (a model without an ONNX graph takes images).
    pub fn input_kind(&self) -> InputKind {
        self.onnx().map_or(InputKind::Images, |o| o.input_kind())
    }

    /// The input's declared shape, e.g. "[batch, 3, height, width]" (named for errors).
    pub fn input_shape_text(&self) -> String {
        match self.onnx() {
            Some(o) => o.input_shape_text(),
            None => {
                let (h, w) = self.preprocess().input_size;
                format!("[?, 3, {h}, {w}]")
            }
        }
    }

    /// Class probabilities for a batch of clips (N×T×C×H×W), `max_batch` clips at a time.
    pub fn clip_probabilities(&self, clips: ndarray::ArrayView5<f32>, max_batch: usize) -> Result<Array2<f32>> {
        let onnx = self.require_onnx("clip mode (N×T×C×H×W inputs)")?;
        let InputKind::Clips { frames } = onnx.input_kind() else {
            return Err(BorexError::model(
                self.path(),
                format!("the model's input is N×C×H×W images (shape {}), not N×T×C×H×W clips; clip mode needs a video classifier", self.input_shape_text()),
            ));
        };
        let t = clips.dim().1;
        if frames.is_some_and(|f| f != t) {
            return Err(BorexError::invalid(format!(
                "clips of {t} frames for a model whose input is fixed at {} (shape {})",
                frames.unwrap_or(0),
                self.input_shape_text()
            )));
        }
        let n = clips.dim().0;
        let step = max_batch.max(1);
        let mut parts = Vec::with_capacity(n.div_ceil(step));
        for start in (0..n).step_by(step) {
            let chunk = clips.slice(s![start..(start + step).min(n), .., .., .., ..]).as_standard_layout().into_owned();
            crate::cancel::checkpoint()?;
            let raw = onnx.run_raw(chunk.into_dyn().view())?;
            parts.push(self.finish(raw)?);
        }
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        ndarray::concatenate(Axis(0), &views).map_err(|e| BorexError::Runtime(e.to_string()))
    }

    /// Class probabilities for a batch of preprocessed inputs, run `max_batch` at a time.
    pub fn probabilities(&self, batch: ArrayView4<f32>, max_batch: usize) -> Result<Array2<f32>> {
        let n = batch.len_of(Axis(0));
        let step = max_batch.max(1);
        let mut parts = Vec::with_capacity(n.div_ceil(step));
        for start in (0..n).step_by(step) {
            let chunk = batch.slice(s![start..(start + step).min(n), .., .., ..]);
            parts.push(self.run_chunk(chunk)?);
        }
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        ndarray::concatenate(Axis(0), &views).map_err(|e| BorexError::Runtime(e.to_string()))
    }

    /// One model call: the class probabilities of `chunk`.
    fn run_chunk(&self, chunk: ArrayView4<f32>) -> Result<Array2<f32>> {
        // Every model batch starts here: the place a caller's cancellation is seen.
        crate::cancel::checkpoint()?;
        let raw = self.model.run(chunk)?;
        if raw.nrows() != chunk.len_of(Axis(0)) {
            return Err(BorexError::model(
                self.path(),
                format!("the model returned {} rows of scores for {} inputs", raw.nrows(), chunk.len_of(Axis(0))),
            ));
        }
        self.finish(raw)
    }

    /// Raw class scores as probabilities: the labels' count and finiteness checked, softmax of logits.
    fn finish(&self, mut p: Array2<f32>) -> Result<Array2<f32>> {
        if let Some(l) = self.labels() {
            if p.ncols() != l.len() {
                return Err(BorexError::model(
                    self.path(),
                    format!("model has {} classes but the labels list {}", p.ncols(), l.len()),
                ));
            }
        }
        self.check_finite(p.view())?;
        let kind = *self.output_kind.get_or_init(|| detect_output_kind(p.view()));
        if kind == OutputKind::Logits {
            self.softmax(&mut p)?;
        }
        Ok(p)
    }

    /// Class probabilities and the feature map (N×K×h×w) of one batch, for
    /// models with a feature output (the CAM family).
    pub fn probabilities_and_features(&self, batch: ArrayView4<f32>) -> Result<(Array2<f32>, ndarray::Array4<f32>)> {
        let onnx = self.require_onnx("the CAM family (cam, gradcam, gradcam++, cameras)")?;
        let feat_name = onnx.feature_output().ok_or_else(|| {
            BorexError::model(self.path(), "no feature-map output: CAM methods need a model that also outputs its last feature map (N×K×h×w) before global pooling, e.g. efficientnet-lite0-features.onnx")
        })?;
        crate::cancel::checkpoint()?;
        let (raw, f) = onnx.run_with_features(batch, feat_name)?;
        Ok((self.finish(raw)?, f))
    }

    /// Softmax of logits; one class's softmax is 1 whatever the input (a model whose width
    /// the graph leaves dynamic gets here; a static width of 1 is refused at load).
    fn softmax(&self, p: &mut Array2<f32>) -> Result<()> {
        if p.ncols() == 1 {
            return Err(one_class(self.path()));
        }
        softmax_rows(p);
        Ok(())
    }

    /// NaN or infinite class scores would turn every later step into NaN: refuse them where they appear.
    fn check_finite(&self, raw: ndarray::ArrayView2<f32>) -> Result<()> {
        let bad = raw.rows().into_iter().filter(|r| r.iter().any(|v| !v.is_finite())).count();
        if bad > 0 {
            return Err(BorexError::model(
                self.path(),
                format!("the model returned non-finite scores (NaN or infinity) for {bad} of {} inputs", raw.nrows()),
            ));
        }
        Ok(())
    }

    /// The class output's name (`logits` for a model without an ONNX graph).
    pub fn logits_output(&self) -> &str {
        self.onnx().map_or("logits", |o| o.logits_output())
    }

    /// Whether the input's spatial size is dynamic (any H×W is accepted; never for a model without an ONNX graph).
    pub fn dynamic_spatial_size(&self) -> bool {
        self.onnx().is_some_and(|o| o.dynamic_spatial_size())
    }

    /// The `k` most probable classes of one probability row.
    pub fn top_k(&self, probs: ndarray::ArrayView1<f32>, k: usize) -> Vec<Prediction> {
        let mut idx: Vec<usize> = (0..probs.len()).collect();
        idx.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
        idx.truncate(k);
        idx.into_iter()
            .map(|class| Prediction {
                class,
                label: self.labels().and_then(|l| l.name(class)).map(str::to_string),
                probability: probs[class],
            })
            .collect()
    }
}

/// A model with one class output read as logits: its softmax is 1 for every input, so every
/// map would be flat. A sigmoid output (a binary classifier's P) is usable once declared.
fn one_class(path: &Path) -> BorexError {
    BorexError::model(
        path,
        "the model has one class output: read as logits, its softmax is 1 for every input and no map could show anything; if that output is a probability (a sigmoid), pass --output-kind probabilities",
    )
}

/// Whether one output row reads as probabilities: every value in [0, 1], summing to 1.
pub fn is_probability_row(r: ndarray::ArrayView1<f32>) -> bool {
    r.iter().all(|v| (0.0..=1.0).contains(v)) && (r.sum() - 1.0).abs() < 1e-3
}

/// Rows that are non-negative and sum to one are probabilities; anything else is logits.
fn detect_output_kind(out: ndarray::ArrayView2<f32>) -> OutputKind {
    if out.rows().into_iter().all(is_probability_row) {
        OutputKind::Probabilities
    } else {
        OutputKind::Logits
    }
}

pub(crate) fn softmax_rows(a: &mut Array2<f32>) {
    for mut row in a.rows_mut() {
        let m = row.fold(f32::NEG_INFINITY, |m, v| m.max(*v));
        row.mapv_inplace(|v| (v - m).exp());
        let s = row.sum();
        row.mapv_inplace(|v| v / s);
    }
}

/// Class `class`'s column of a batch's probabilities.
pub(crate) fn class_column(probs: &Array2<f32>, class: usize) -> Result<Vec<f32>> {
    if class >= probs.ncols() {
        return Err(BorexError::Runtime(format!(
            "model returned {} classes; class {class} is out of range",
            probs.ncols()
        )));
    }
    Ok(probs.column(class).to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn softmax_and_detection() {
        let mut a = array![[1.0f32, 2.0, 3.0], [0.0, 0.0, 0.0]];
        assert_eq!(detect_output_kind(a.view()), OutputKind::Logits);
        softmax_rows(&mut a);
        assert!((a[[0, 2]] - 0.665_240_9).abs() < 1e-6);
        assert!((a[[1, 0]] - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(detect_output_kind(a.view()), OutputKind::Probabilities);
    }
}
