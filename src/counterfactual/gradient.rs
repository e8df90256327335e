//! The forward+gradient graph: one ONNX Runtime call returns a batch's logits
//! and ∂ log softmax(logits)\[target\] / ∂ input (scripts/gradient_graph.py
//! builds it; ONNX Runtime has no autograd).

use crate::error::{BorexError, Result};
use crate::model::{Classifier, ExecutionProvider};
use ndarray::{Array1, Array2, Array4, ArrayView4, ArrayViewD, Ix2, Ix4};
use ort::value::TensorRef;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Names the gradient graph's inputs and outputs must have.
const INPUT: &str = "input";
const TARGET: &str = "target";
const LOGITS: &str = "logits";
const GRAD: &str = "grad";

/// A model's gradient graph (`*.grad.onnx`): log p_target and its gradient w.r.t. the input, from ONNX Runtime.
pub struct GradientModel {
    session: Mutex<ort::session::Session>,
    path: PathBuf,
}

impl GradientModel {
    /// The gradient graph belonging to `model` (its sidecar's `gradient`, else `<model>.grad.onnx`).
    pub fn for_model(model: &Classifier) -> Result<Self> {
        let onnx = model.require_onnx("a counterfactual (it follows the model's gradient)")?;
        let path = onnx.gradient_graph().ok_or_else(|| {
            BorexError::model(
                model.path(),
                "no gradient graph: counterfactuals need the model's forward+gradient ONNX graph; make one with \
                 `scripts/convert_efficientnet.py --gradient` (the bundled model) or scripts/gradient_graph.py, and name it in \
                 the model's JSON sidecar (\"gradient\": \"model.grad.onnx\") or put it beside the model as <model>.grad.onnx",
            )
        })?;
        let g = Self::open(&path, &onnx.options().ort_lib, onnx.ep())?;
        g.check_input_size(model.preprocess().input_size)?;
        Ok(g)
    }

    /// A graph built for one input size (scripts/gradient_graph.py fixes it unless every
    /// conv pads SAME) refuses any other: say so before the first step, not as ONNX Runtime's error.
    fn check_input_size(&self, (h, w): (u32, u32)) -> Result<()> {
        let session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let dims: Option<Vec<i64>> = session
            .inputs()
            .iter()
            .find(|i| i.name() == INPUT)
            .and_then(|i| i.dtype().tensor_shape().map(|s| s.iter().copied().collect()));
        if let Some([_, _, gh, gw]) = dims.as_deref() {
            if *gh > 0 && *gw > 0 && (*gh, *gw) != (h as i64, w as i64) {
                return Err(BorexError::model(
                    &self.path,
                    format!("the gradient graph takes {gh}×{gw} inputs but the model runs at {h}×{w} (--input-size); rebuild the graph at that size or drop --input-size"),
                ));
            }
        }
        Ok(())
    }

    /// Load the gradient graph at `path`, or an error naming it.
    pub fn open(path: &Path, ort_lib: &Path, ep: ExecutionProvider) -> Result<Self> {
        if !path.exists() {
            return Err(BorexError::not_found(path, "gradient graph not found"));
        }
        let env = crate::model::runtime(ort_lib)?;
        let session = crate::model::session(env, path, ep, &[])?;
        let ins: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
        let outs: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
        if !(ins.contains(&INPUT) && ins.contains(&TARGET) && outs.contains(&LOGITS) && outs.contains(&GRAD)) {
            return Err(BorexError::model(
                path,
                format!("not a forward+gradient graph: needs inputs '{INPUT}', '{TARGET}' and outputs '{LOGITS}', '{GRAD}' (has inputs {ins:?}, outputs {outs:?})"),
            ));
        }
        Ok(Self { session: Mutex::new(session), path: path.to_path_buf() })
    }

    /// The gradient graph's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Logits (N×K) and the input gradient of log softmax(logits)\[targets\[n\]\] (N×C×H×W).
    pub fn logits_and_grad(&self, input: ArrayView4<f32>, targets: &[usize]) -> Result<(Array2<f32>, Array4<f32>)> {
        if targets.len() != input.dim().0 {
            return Err(BorexError::invalid(format!("{} targets for a batch of {}", targets.len(), input.dim().0)));
        }
        crate::cancel::checkpoint()?;
        let input = input.as_standard_layout();
        let t: Array1<i64> = targets.iter().map(|&c| c as i64).collect();
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let outputs = session
            .run(ort::inputs![INPUT => TensorRef::from_array_view(&input)?, TARGET => TensorRef::from_array_view(&t)?])
            .map_err(|e| BorexError::model(&self.path, format!("gradient graph failed: {e}")))?;
        let logits: ArrayViewD<f32> = outputs[LOGITS].try_extract_array()?;
        let logits = logits
            .into_dimensionality::<Ix2>()
            .map_err(|_| BorexError::model(&self.path, "logits are not batch × classes"))?
            .to_owned();
        let grad: ArrayViewD<f32> = outputs[GRAD].try_extract_array()?;
        let grad = grad
            .into_dimensionality::<Ix4>()
            .map_err(|_| BorexError::model(&self.path, "grad is not N×C×H×W"))?
            .to_owned();
        if grad.dim() != input.dim() {
            return Err(BorexError::model(
                &self.path,
                format!("grad has shape {:?}, the input {:?}", grad.dim(), input.dim()),
            ));
        }
        if logits.iter().chain(grad.iter()).any(|v| !v.is_finite()) {
            return Err(BorexError::model(&self.path, "the gradient graph returned non-finite values"));
        }
        Ok((logits, grad))
    }
}
