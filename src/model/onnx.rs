//! The ONNX Runtime implementation of [`Model`]: one session with the input
//! and output names borex reads, plus what only an ONNX graph has (the
//! feature map the CAM family reads, the linear head, the gradient graph,
//! clip inputs).

use super::{dims, one_class, runtime, Classifier, InitializerOverride, InputKind, Model, ModelInfo, ModelOptions};
use super::{ExecutionProvider, Labels, OutputKind, Sidecar};
use crate::error::{BorexError, Result};
use crate::image::Preprocess;
use ndarray::{Array2, Array4, ArrayView4, ArrayViewD};
use ort::value::{TensorRef, ValueType};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// An ONNX classifier: one ONNX Runtime session (calls are serialised) with its sidecar's facts.
pub struct OnnxModel {
    session: Mutex<ort::session::Session>,
    path: PathBuf,
    input: String,
    logits: String,
    features: Option<String>,
    info: ModelInfo,
    ep: ExecutionProvider,
    options: ModelOptions,
    robust: Option<bool>,
    gradient: Option<PathBuf>,
    grayscale: bool,
    /// The input's shape as the model declares it (−1 for a dynamic axis).
    input_shape: Vec<i64>,
}

impl OnnxModel {
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
        let session = super::runtime::session(env, path, opts.ep, &opts.overrides)?;

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
        Ok(Self {
            input_shape: in_dims.clone(),
            robust: sidecar.robust,
            gradient: sidecar.gradient.clone(),
            grayscale: sidecar.grayscale.unwrap_or(false),
            input: input.name().to_string(),
            logits: logits.name().to_string(),
            features,
            info: ModelInfo { preprocess, labels, output: opts.output.or(sidecar.output), classes },
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

    /// The execution provider the session runs on.
    pub fn ep(&self) -> ExecutionProvider {
        self.ep
    }

    /// Whether the sidecar declares the model adversarially robust (`None`: it says nothing).
    pub fn robust(&self) -> Option<bool> {
        self.robust
    }

    /// Whether the model reads grey images (the sidecar's `grayscale`).
    pub fn grayscale(&self) -> bool {
        self.grayscale
    }

    /// The forward+gradient graph the sidecar names, else `<model>.grad.onnx` beside the model if it exists.
    pub fn gradient_graph(&self) -> Option<PathBuf> {
        self.gradient.clone().or_else(|| Some(self.path.with_extension("grad.onnx")).filter(|p| p.is_file()))
    }

    /// A replaced initializer, if this model was loaded with one.
    pub fn initializer_override(&self, name: &str) -> Option<&InitializerOverride> {
        self.options.overrides.iter().find(|o| o.name == name)
    }

    /// The name of the feature-map output, if the model has one (for CAM methods).
    pub fn feature_output(&self) -> Option<&str> {
        self.features.as_deref()
    }

    /// The class output's name.
    pub fn logits_output(&self) -> &str {
        &self.logits
    }

    /// The same model with its final linear layer's weights replaced by
    /// Gaussian noise of the same standard deviation (seeded): the model
    /// randomisation test of Adebayo et al. 2018. Returns the model and the
    /// randomised initializer's name.
    pub fn with_randomised_head(&self, seed: u64) -> Result<(Classifier, String)> {
        use rand::SeedableRng;
        use rand_distr::{Distribution, Normal};
        let graph = super::onnx_graph::Graph::load(&self.path)?;
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

    /// Whether the input's spatial size is dynamic (any H×W is accepted).
    pub fn dynamic_spatial_size(&self) -> bool {
        let s = self.session.lock().unwrap_or_else(|p| p.into_inner());
        s.inputs().first().and_then(|i| dims(i.dtype())).is_some_and(|d| d.len() == 4 && d[2] < 0 && d[3] < 0)
    }

    /// One session run on a ready input of any rank (images or clips): the raw class output.
    pub(crate) fn run_raw(&self, chunk: ArrayViewD<f32>) -> Result<Array2<f32>> {
        let chunk = chunk.as_standard_layout();
        let tensor = TensorRef::from_array_view(&chunk)?;
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let outputs = session
            .run(ort::inputs![self.input.as_str() => tensor])
            .map_err(|e| BorexError::model(&self.path, format!("inference failed: {e}")))?;
        self.class_output(&outputs)
    }

    /// The class output (batch × classes) of one run's outputs.
    fn class_output(&self, outputs: &ort::session::SessionOutputs<'_>) -> Result<Array2<f32>> {
        let raw: ArrayViewD<f32> = outputs[self.logits.as_str()].try_extract_array()?;
        let raw = raw
            .into_dimensionality::<ndarray::Ix2>()
            .map_err(|_| BorexError::model(&self.path, "class output is not batch × classes"))?;
        Ok(raw.to_owned())
    }

    /// The raw class output and the feature map (N×K×h×w) of one batch of images.
    pub(crate) fn run_with_features(
        &self,
        batch: ArrayView4<f32>,
        features: &str,
    ) -> Result<(Array2<f32>, Array4<f32>)> {
        self.expect_images()?;
        let batch = batch.as_standard_layout();
        let tensor = TensorRef::from_array_view(&batch)?;
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let outputs = session
            .run(ort::inputs![self.input.as_str() => tensor])
            .map_err(|e| BorexError::model(&self.path, format!("inference failed: {e}")))?;
        let p = self.class_output(&outputs)?;
        let f: ArrayViewD<f32> = outputs[features].try_extract_array()?;
        let f = f
            .into_dimensionality::<ndarray::Ix4>()
            .map_err(|_| BorexError::model(&self.path, "feature output is not N×K×h×w"))?
            .to_owned();
        Ok((p, f))
    }
}

impl Model for OnnxModel {
    fn name(&self) -> &Path {
        &self.path
    }

    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn run(&self, batch: ArrayView4<f32>) -> Result<Array2<f32>> {
        self.expect_images()?;
        self.run_raw(batch.into_dyn())
    }

    fn runs_on(&self) -> &str {
        self.ep.name()
    }

    fn onnx(&self) -> Option<&OnnxModel> {
        Some(self)
    }
}
