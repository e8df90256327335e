//! A Python callable as a borex model: the second implementation of
//! [`borex::model::Model`], beside the ONNX Runtime session. `fn` takes an
//! N×3×H×W float32 numpy array and returns N×C class scores (a numpy array,
//! or anything with `__array__` or `__dlpack__`, such as a torch tensor).
//!
//! The GIL is taken for the call only (the rest of a refine runs without
//! it). Each call's result is checked before borex uses it, and a failure
//! names what was wrong and which call; the callable's own exception rides
//! along in [`BorexError::ModelCall`] and is chained (`__cause__`) when the
//! error reaches Python. A `KeyboardInterrupt` (Ctrl-C while the callable
//! ran) stops the run as the cancel check does and is what the call raises.

use borex::error::ForeignCause;
use borex::model::{Model, ModelInfo};
use borex::BorexError;
use ndarray::{Array2, ArrayView4};
use numpy::{PyArray2, PyArray4, PyArrayDescrMethods, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

thread_local! {
    /// A `KeyboardInterrupt` (or other non-`Exception`, e.g. `SystemExit`) a
    /// callable raised on this thread: the run stops as interrupted, and
    /// [`crate::convert::compute`] raises this instead.
    static PENDING: RefCell<Option<PyErr>> = const { RefCell::new(None) };
}

/// The exception a callable raised that must end the call as it is (Ctrl-C), if any; cleared.
pub fn take_pending() -> Option<PyErr> {
    PENDING.with(|p| p.borrow_mut().take())
}

/// A Python function as a model.
pub struct CallableModel {
    func: Py<PyAny>,
    name: PathBuf,
    info: ModelInfo,
    /// Calls so far: each error names its call by number.
    calls: AtomicU64,
    /// The class count of the first call (0: none yet); every later call must return as many.
    width: AtomicUsize,
}

impl CallableModel {
    /// `func` with what borex needs to know of it; its name is its `__qualname__` (else its type's).
    pub fn new(py: Python<'_>, func: Py<PyAny>, info: ModelInfo) -> Self {
        let f = func.bind(py);
        let name = f
            .getattr("__qualname__")
            .or_else(|_| f.get_type().getattr("__qualname__"))
            .and_then(|n| n.extract::<String>())
            .unwrap_or_else(|_| "?".into());
        Self {
            func,
            name: PathBuf::from(format!("model callable {name}")),
            info,
            calls: AtomicU64::new(0),
            width: AtomicUsize::new(0),
        }
    }

    /// One call, the GIL held: the checked scores, or why not.
    fn call(&self, py: Python<'_>, batch: ArrayView4<f32>, call: u64) -> borex::Result<Array2<f32>> {
        let n = batch.dim().0;
        let fail = |what: String, cause: Option<PyErr>| BorexError::ModelCall {
            model: self.name.display().to_string(),
            reason: format!("call {call} (a batch of {n} image{}) {what}", if n == 1 { "" } else { "s" }),
            cause: cause.map(|e| ForeignCause(Arc::new(e))),
        };
        // A copy the callable owns: it may keep or change it without touching borex's buffers.
        let input = PyArray4::from_array(py, &batch);
        let out = match self.func.bind(py).call1((input,)) {
            Ok(out) => out,
            Err(e) if !e.is_instance_of::<PyException>(py) => {
                // Ctrl-C inside the callable (or SystemExit): stop the run, then raise it as it is.
                PENDING.with(|p| *p.borrow_mut() = Some(e));
                return Err(BorexError::Interrupted);
            }
            Err(e) => {
                let what = format!("raised {}", one_line(py, &e));
                return Err(fail(what, Some(e)));
            }
        };
        let arr = as_numpy(py, &out).map_err(|(what, e)| fail(what, e))?;
        let shape = arr.shape().to_vec();
        let dtype = arr.dtype();
        if dtype.kind() != b'f' {
            let name = dtype.str().map(|s| s.to_string()).unwrap_or_else(|_| "?".into());
            return Err(fail(
                format!(
                    "returned scores of dtype {name}; expected floating-point scores (float32; float16 and float64 are converted)"
                ),
                None,
            ));
        }
        if shape.len() != 2 || shape[0] != n {
            return Err(fail(
                format!(
                    "returned an array of shape {}; expected ({n}, classes): one row of class scores per image",
                    shape_text(&shape)
                ),
                None,
            ));
        }
        let classes = shape[1];
        if classes == 0 {
            return Err(fail("returned no class scores (shape (N, 0))".into(), None));
        }
        if let Some(l) = &self.info.labels {
            if classes != l.len() {
                return Err(fail(
                    format!("returned {classes} class scores per image, but labels names {}", l.len()),
                    None,
                ));
            }
        }
        match self.width.compare_exchange(0, classes, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => {}
            Err(first) if first == classes => {}
            Err(first) => {
                return Err(fail(
                    format!("returned {classes} class scores per image; the first call returned {first}"),
                    None,
                ))
            }
        }
        let scores: Array2<f32> = {
            let typed = match arr.cast::<PyArray2<f32>>() {
                Ok(a) => a.clone(),
                // float16/float64, or float32 in the other byte order: numpy converts.
                Err(_) => arr
                    .call_method1("astype", ("=f4",))
                    .and_then(|a| Ok(a.cast_into::<PyArray2<f32>>()?))
                    .map_err(|e| fail("returned scores numpy cannot convert to float32".into(), Some(e)))?,
            };
            let ro =
                typed.try_readonly().map_err(|e| fail(format!("returned an array borex cannot read: {e}"), None))?;
            ro.as_array().to_owned()
        };
        let bad: Vec<usize> = scores
            .rows()
            .into_iter()
            .enumerate()
            .filter(|(_, r)| r.iter().any(|v| !v.is_finite()))
            .map(|(i, _)| i)
            .collect();
        if let Some(first) = bad.first() {
            return Err(fail(
                format!(
                    "returned NaN or infinite scores for {} of {n} images (the first is image {first} of the batch)",
                    bad.len()
                ),
                None,
            ));
        }
        Ok(scores)
    }
}

impl Model for CallableModel {
    fn name(&self) -> &Path {
        &self.name
    }

    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn run(&self, batch: ArrayView4<f32>) -> borex::Result<Array2<f32>> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        Python::attach(|py| self.call(py, batch, call))
    }

    fn runs_on(&self) -> &str {
        "python"
    }
}

/// The callable's result as a numpy array: an array as it is, else through
/// `__array__` (numpy.asarray) or `__dlpack__` (numpy.from_dlpack).
fn as_numpy<'py>(
    py: Python<'py>,
    out: &Bound<'py, PyAny>,
) -> Result<Bound<'py, PyUntypedArray>, (String, Option<PyErr>)> {
    if let Ok(a) = out.cast::<PyUntypedArray>() {
        return Ok(a.clone());
    }
    let t = out.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into());
    let how = if out.hasattr("__array__").unwrap_or(false) {
        "asarray"
    } else if out.hasattr("__dlpack__").unwrap_or(false) {
        "from_dlpack"
    } else {
        return Err((
            format!("returned a {t}, not an array of scores (a numpy array, or anything with __array__ or __dlpack__, such as a torch tensor)"),
            None,
        ));
    };
    py.import("numpy")
        .and_then(|np| np.call_method1(how, (out,)))
        .and_then(|a| Ok(a.cast_into::<PyUntypedArray>()?))
        .map_err(|e| (format!("returned a {t} that numpy.{how} cannot read: {}", one_line(py, &e)), Some(e)))
}

/// An exception as `Type: message`, on one line.
fn one_line(py: Python<'_>, e: &PyErr) -> String {
    let t = e.get_type(py).name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into());
    let msg = e.value(py).str().map(|s| s.to_string()).unwrap_or_default();
    let msg = msg.lines().next().unwrap_or("").trim().to_string();
    if msg.is_empty() {
        t
    } else {
        format!("{t}: {msg}")
    }
}

fn shape_text(shape: &[usize]) -> String {
    match shape {
        [one] => format!("({one},)"),
        _ => format!("({})", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    }
}
