//! The classifier: an ONNX Runtime session plus everything needed to feed it
//! (preprocessing config, labels) and read it (logits or probabilities).

mod labels;
pub(crate) mod onnx_graph;
mod runtime;
mod scorer;

pub use labels::Labels;
pub(crate) use runtime::session;
pub use runtime::{available_providers, runtime, version as runtime_version, ExecutionProvider, InitializerOverride};
pub use scorer::Scorer;

use crate::error::{BorexError, Result};
use crate::image::Preprocess;
use ndarray::{s, Array2, ArrayView4, ArrayViewD, Axis};
use ort::value::{TensorRef, ValueType};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

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

/// An image classifier: one ONNX Runtime session with its preprocessing and labels (calls are serialised).
pub struct Classifier {
    session: Mutex<ort::session::Session>,
    path: PathBuf,
    input: String,
    logits: String,
    features: Option<String>,
    classes: Option<usize>,
    preprocess: Preprocess,
    labels: Option<Labels>,
    output_kind: OnceLock<OutputKind>,
    /// The output kind given (`--output-kind`, the sidecar); `None`: detected on the first call.
    declared_output: Option<OutputKind>,
    ep: ExecutionProvider,
    options: ModelOptions,
    robust: Option<bool>,
    gradient: Option<PathBuf>,
    grayscale: bool,
    /// The input's shape as the model declares it (−1 for a dynamic axis).
    input_shape: Vec<i64>,
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
    /// Load the model and check its input and output, or an error naming the file and what is wrong.
    pub fn load(opts: &ModelOptions) -> Result<Self> {
        let path = &opts.path;
        if !path.exists() {
            let why = crate::paths::missing_model_hint(path);
            return Err(BorexError::not_found(path, why.as_deref().unwrap_or("model file not found")));
        }
        // ONNX Runtime is given the file's bytes (read within the same bound); refused here first, before it loads.
        crate::limits::check_readable(path, crate::limits::MAX_MODEL_BYTES, "model")?;
        let env = runtime(&opts.ort_lib)?;
        let sidecar = Sidecar::load(path)?;
        let session = runtime::session(env, path, opts.ep, &opts.overrides)?;

        let input = session.inputs().first().ok_or_else(|| BorexError::model(path, "model has no inputs"))?;
        let in_dims = dims(input.dtype()).ok_or_else(|| BorexError::model(path, "model input is not a tensor"))?;
        if in_dims.len() != 4 && in_dims.len() != 5 {
            return Err(BorexError::model(
                path,
                format!(
                    "input '{}' has rank {} (shape {in_dims:?}); borex needs a rank-4 N×C×H×W image input (or rank-5 N×T×C×H×W clips)",
                    input.name(),
                    in_dims.len()
                ),
            ));
        }
        // Clip models (N×T×C×H×W) have the frame axis before the image's.
        let o = in_dims.len() - 4;
        if in_dims[1 + o] > 0 && in_dims[1 + o] != 3 {
            return Err(BorexError::model(
                path,
                format!("input '{}' has {} channels; borex needs 3 (RGB)", input.name(), in_dims[1 + o]),
            ));
        }
        let static_hw =
            (in_dims[2 + o] > 0 && in_dims[3 + o] > 0).then(|| (in_dims[2 + o] as u32, in_dims[3 + o] as u32));

        let outputs = session.outputs();
        let logits = outputs
            .iter()
            .find(|o| o.name() == "logits")
            .or_else(|| outputs.iter().find(|o| dims(o.dtype()).is_some_and(|d| d.len() == 2)))
            .ok_or_else(|| BorexError::model(path, "no rank-2 (batch × classes) output"))?;
        let out_dims = dims(logits.dtype()).unwrap_or_default();
        if out_dims.len() != 2 {
            return Err(BorexError::model(
                path,
                format!("output '{}' has shape {out_dims:?}; expected batch × classes", logits.name()),
            ));
        }
        let classes = (out_dims[1] > 0).then_some(out_dims[1] as usize);
        if classes == Some(1) && opts.output.or(sidecar.output) != Some(OutputKind::Probabilities) {
            return Err(one_class(path));
        }
        let features = outputs
            .iter()
            .find(|o| o.name() != logits.name() && dims(o.dtype()).is_some_and(|d| d.len() == 4))
            .map(|o| o.name().to_string());

        let input_size = match (opts.input_size.or(sidecar.input_size.map(|s| (s, s))), static_hw) {
            (Some(asked), Some(fixed)) if asked != fixed => {
                return Err(BorexError::model(
                    path,
                    format!("input size {asked:?} asked, but the model's input is fixed at {fixed:?}"),
                ));
            }
            (asked, fixed) => fixed.or(asked).unwrap_or((224, 224)),
        };
        {
            use crate::limits::{in_range, MAX_INPUT, MAX_RESIZE, MIN_INPUT};
            // A size the model fixes is the model's business; one asked for must be sensible.
            let lo = if static_hw.is_some() { 1 } else { MIN_INPUT };
            in_range("input_size", input_size.0, lo, MAX_INPUT)?;
            in_range("input_size", input_size.1, lo, MAX_INPUT)?;
            if let Some(r) = opts.resize.or(sidecar.resize) {
                in_range("resize", r, 1, MAX_RESIZE)?;
            }
        }
        let defaults = Preprocess::default();
        let preprocess = Preprocess {
            input_size,
            resize: opts.resize.or(sidecar.resize).or(if sidecar.input_size.is_some() || opts.input_size.is_some() {
                None
            } else {
                defaults.resize
            }),
            mean: opts.mean.or(sidecar.mean).unwrap_or(defaults.mean),
            std: opts.std.or(sidecar.std).unwrap_or(defaults.std),
        };
        if preprocess.std.iter().any(|s| *s == 0.0 || !s.is_finite()) {
            return Err(BorexError::invalid("--std values must be finite and non-zero"));
        }

        let labels = match opts.labels.as_ref().or(sidecar.labels.as_ref()) {
            Some(p) => Some(Labels::load(p)?),
            None => None,
        };
        if let (Some(l), Some(n)) = (&labels, classes) {
            if l.len() != n {
                return Err(BorexError::model(path, format!("model has {n} classes but the labels list {}", l.len())));
            }
        }
        let output_kind = OnceLock::new();
        let declared_output = opts.output.or(sidecar.output);
        if let Some(k) = declared_output {
            let _ = output_kind.set(k);
        }
        Ok(Self {
            input_shape: in_dims.clone(),
            robust: sidecar.robust,
            gradient: sidecar.gradient.clone(),
            grayscale: sidecar.grayscale.unwrap_or(false),
            input: input.name().to_string(),
            logits: logits.name().to_string(),
            features,
            classes,
            preprocess,
            labels,
            output_kind,
            declared_output,
            ep: opts.ep,
            options: opts.clone(),
            path: path.clone(),
            session: Mutex::new(session),
        })
    }

    /// The model file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The options this model was loaded with.
    pub fn options(&self) -> &ModelOptions {
        &self.options
    }

    /// The same model with its final linear layer's weights replaced by
    /// Gaussian noise of the same standard deviation (seeded): the model
    /// randomisation test of Adebayo et al. 2018. Returns the model and the
    /// randomised initializer's name.
    pub fn with_randomised_head(&self, seed: u64) -> Result<(Classifier, String)> {
        use rand::SeedableRng;
        use rand_distr::{Distribution, Normal};
        let graph = onnx_graph::Graph::load(&self.path)?;
        let (name, init) = graph.linear_weight(&self.logits).ok_or_else(|| {
            BorexError::model(
                &self.path,
                "no Gemm layer with a float weight produces the class output; cannot randomise the head",
            )
        })?;
        let n = init.data.len() as f64;
        let mean = init.data.iter().map(|v| *v as f64).sum::<f64>() / n;
        let std = (init.data.iter().map(|v| (*v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt().max(1e-6);
        let normal = Normal::new(0.0, std).expect("finite std");
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let data = (0..init.data.len()).map(|_| normal.sample(&mut rng) as f32).collect();
        let mut opts = self.options.clone();
        opts.overrides.retain(|o| o.name != name);
        opts.overrides.push(InitializerOverride { name: name.clone(), dims: init.dims.clone(), data });
        Ok((Classifier::load(&opts)?, name))
    }

    /// A replaced initializer, if this model was loaded with one.
    pub fn initializer_override(&self, name: &str) -> Option<&InitializerOverride> {
        self.options.overrides.iter().find(|o| o.name == name)
    }

    /// How images are brought to the model input.
    pub fn preprocess(&self) -> &Preprocess {
        &self.preprocess
    }

    /// The class labels, when the model has them.
    pub fn labels(&self) -> Option<&Labels> {
        self.labels.as_ref()
    }

    /// The execution provider the session runs on.
    pub fn ep(&self) -> ExecutionProvider {
        self.ep
    }

    /// Whether the sidecar declares the model adversarially robust (`None`: it says nothing).
    pub fn robust(&self) -> Option<bool> {
        self.robust
    }

    /// The forward+gradient graph the sidecar names, else `<model>.grad.onnx` beside the model if it exists.
    pub fn gradient_graph(&self) -> Option<PathBuf> {
        self.gradient.clone().or_else(|| Some(self.path.with_extension("grad.onnx")).filter(|p| p.is_file()))
    }

    /// Whether the model reads grey images (the sidecar's `grayscale`).
    pub fn grayscale(&self) -> bool {
        self.grayscale
    }

    /// What the class output holds: as declared (`--output-kind`, the sidecar), else as
    /// detected from the first model call (`None` before it).
    pub fn output_kind(&self) -> Option<OutputKind> {
        self.output_kind.get().copied()
    }

    /// The output kind as given (`--output-kind`, the sidecar), `None` when it is left to
    /// detection: what a job description records (detection happens on a call, later).
    pub fn declared_output_kind(&self) -> Option<OutputKind> {
        self.declared_output
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
        self.classes
    }

    /// The name of the feature-map output, if the model has one (for CAM methods).
    pub fn feature_output(&self) -> Option<&str> {
        self.features.as_deref()
    }

    /// Describe inputs and outputs, for `borex info`.
    pub fn describe(&self) -> Vec<String> {
        let s = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let fmt = |kind: &str, name: &str, t: &ValueType| format!("{kind} {name}: {:?}", dims(t).unwrap_or_default());
        s.inputs()
            .iter()
            .map(|o| fmt("input", o.name(), o.dtype()))
            .chain(s.outputs().iter().map(|o| fmt("output", o.name(), o.dtype())))
            .collect()
    }

    /// Images or clips, from the input's rank.
    pub fn input_kind(&self) -> InputKind {
        match self.input_shape.len() {
            5 => InputKind::Clips { frames: (self.input_shape[1] > 0).then_some(self.input_shape[1] as usize) },
            _ => InputKind::Images,
        }
    }

    /// The input's declared shape, e.g. "[batch, 3, height, width]" (named for errors).
    pub fn input_shape_text(&self) -> String {
        let axes: Vec<String> =
            self.input_shape.iter().map(|d| if *d > 0 { d.to_string() } else { "?".into() }).collect();
        format!("[{}]", axes.join(", "))
    }

    /// An error unless the model takes images (N×C×H×W).
    fn expect_images(&self) -> Result<()> {
        match self.input_kind() {
            InputKind::Images => Ok(()),
            InputKind::Clips { .. } => Err(BorexError::model(
                &self.path,
                format!("the model's input is N×T×C×H×W clips (shape {}), not images; use `borex video --mode clip` with it", self.input_shape_text()),
            )),
        }
    }

    /// Class probabilities for a batch of clips (N×T×C×H×W), `max_batch` clips at a time.
    pub fn clip_probabilities(&self, clips: ndarray::ArrayView5<f32>, max_batch: usize) -> Result<Array2<f32>> {
        let InputKind::Clips { frames } = self.input_kind() else {
            return Err(BorexError::model(
                &self.path,
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
            parts.push(self.run_tensor(chunk.into_dyn().view())?);
        }
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        ndarray::concatenate(Axis(0), &views).map_err(|e| BorexError::Runtime(e.to_string()))
    }

    /// Class probabilities for a batch of preprocessed inputs, run `max_batch` at a time.
    pub fn probabilities(&self, batch: ArrayView4<f32>, max_batch: usize) -> Result<Array2<f32>> {
        self.expect_images()?;
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

    fn run_chunk(&self, chunk: ArrayView4<f32>) -> Result<Array2<f32>> {
        self.run_tensor(chunk.into_dyn())
    }

    /// One model call on a ready input of any rank; the class probabilities.
    fn run_tensor(&self, chunk: ArrayViewD<f32>) -> Result<Array2<f32>> {
        // Every model batch starts here: the place a caller's cancellation is seen.
        crate::cancel::checkpoint()?;
        let chunk = chunk.as_standard_layout();
        let tensor = TensorRef::from_array_view(&chunk)?;
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let outputs = session
            .run(ort::inputs![self.input.as_str() => tensor])
            .map_err(|e| BorexError::model(&self.path, format!("inference failed: {e}")))?;
        let raw: ArrayViewD<f32> = outputs[self.logits.as_str()].try_extract_array()?;
        let raw = raw
            .into_dimensionality::<ndarray::Ix2>()
            .map_err(|_| BorexError::model(&self.path, "class output is not batch × classes"))?;
        if let Some(l) = &self.labels {
            if raw.ncols() != l.len() {
                return Err(BorexError::model(
                    &self.path,
                    format!("model has {} classes but the labels list {}", raw.ncols(), l.len()),
                ));
            }
        }
        self.check_finite(raw.view())?;
        let kind = *self.output_kind.get_or_init(|| detect_output_kind(raw.view()));
        let mut p = raw.to_owned();
        if kind == OutputKind::Logits {
            self.softmax(&mut p)?;
        }
        Ok(p)
    }

    /// Class probabilities and the feature map (N×K×h×w) of one batch, for
    /// models with a feature output (the CAM family).
    pub fn probabilities_and_features(&self, batch: ArrayView4<f32>) -> Result<(Array2<f32>, ndarray::Array4<f32>)> {
        let feat_name = self.features.as_deref().ok_or_else(|| {
            BorexError::model(&self.path, "no feature-map output: CAM methods need a model that also outputs its last feature map (N×K×h×w) before global pooling, e.g. efficientnet-lite0-features.onnx")
        })?;
        self.expect_images()?;
        crate::cancel::checkpoint()?;
        let batch = batch.as_standard_layout();
        let tensor = TensorRef::from_array_view(&batch)?;
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let outputs = session
            .run(ort::inputs![self.input.as_str() => tensor])
            .map_err(|e| BorexError::model(&self.path, format!("inference failed: {e}")))?;
        let raw: ArrayViewD<f32> = outputs[self.logits.as_str()].try_extract_array()?;
        let mut p = raw
            .into_dimensionality::<ndarray::Ix2>()
            .map_err(|_| BorexError::model(&self.path, "class output is not batch × classes"))?
            .to_owned();
        self.check_finite(p.view())?;
        if *self.output_kind.get_or_init(|| detect_output_kind(p.view())) == OutputKind::Logits {
            self.softmax(&mut p)?;
        }
        let f: ArrayViewD<f32> = outputs[feat_name].try_extract_array()?;
        let f = f
            .into_dimensionality::<ndarray::Ix4>()
            .map_err(|_| BorexError::model(&self.path, "feature output is not N×K×h×w"))?
            .to_owned();
        Ok((p, f))
    }

    /// Softmax of logits; one class's softmax is 1 whatever the input (a model whose width
    /// the graph leaves dynamic gets here; a static width of 1 is refused at load).
    fn softmax(&self, p: &mut Array2<f32>) -> Result<()> {
        if p.ncols() == 1 {
            return Err(one_class(&self.path));
        }
        softmax_rows(p);
        Ok(())
    }

    /// NaN or infinite class scores would turn every later step into NaN: refuse them where they appear.
    fn check_finite(&self, raw: ndarray::ArrayView2<f32>) -> Result<()> {
        let bad = raw.rows().into_iter().filter(|r| r.iter().any(|v| !v.is_finite())).count();
        if bad > 0 {
            return Err(BorexError::model(
                &self.path,
                format!("the model returned non-finite scores (NaN or infinity) for {bad} of {} inputs", raw.nrows()),
            ));
        }
        Ok(())
    }

    /// The class output's name.
    pub fn logits_output(&self) -> &str {
        &self.logits
    }

    /// Whether the input's spatial size is dynamic (any H×W is accepted).
    pub fn dynamic_spatial_size(&self) -> bool {
        let s = self.session.lock().unwrap_or_else(|p| p.into_inner());
        s.inputs().first().and_then(|i| dims(i.dtype())).is_some_and(|d| d.len() == 4 && d[2] < 0 && d[3] < 0)
    }

    /// The `k` most probable classes of one probability row.
    pub fn top_k(&self, probs: ndarray::ArrayView1<f32>, k: usize) -> Vec<Prediction> {
        let mut idx: Vec<usize> = (0..probs.len()).collect();
        idx.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
        idx.truncate(k);
        idx.into_iter()
            .map(|class| Prediction {
                class,
                label: self.labels.as_ref().and_then(|l| l.name(class)).map(str::to_string),
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
