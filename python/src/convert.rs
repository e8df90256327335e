//! Python values → borex inputs: images (paths or arrays), maps (arrays), and
//! borex errors → the `borex.errors` exception classes.
//!
//! Arrays are read through numpy's own strides (rust-numpy's views), so a
//! transposed, sliced or negative-stride array reads as numpy shows it; a
//! C-contiguous array of the wanted dtype is borrowed without a copy.

use borex::engine::Image;
use borex::BorexError;
use ndarray::{Array2, ArrayView2, CowArray, Ix2};
use numpy::{PyArrayDyn, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::prelude::*;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

/// A `borex.errors.<name>` exception carrying `msg`.
pub fn error(py: Python<'_>, name: &str, msg: impl Into<String>) -> PyErr {
    match crate::errors::class(py, name) {
        Ok(cls) => PyErr::from_type(cls, (msg.into(),)),
        Err(e) => e,
    }
}

/// `borex.InvalidInputError(msg)`.
pub fn invalid(py: Python<'_>, msg: impl Into<String>) -> PyErr {
    error(py, "InvalidInputError", msg)
}

/// The library's error as the fitting `borex` exception, with its one-line
/// message (a setting named as a keyword argument: `budget=5 is …`).
pub fn to_py(py: Python<'_>, e: BorexError) -> PyErr {
    to_py_about(py, "", &e)
}

/// [`to_py`] with the message after `about` (`images[3]: `), and the Python
/// exception `e` carries (a model callable's, with its traceback) as its
/// `__cause__`, as `raise err from cause` would.
pub fn to_py_about(py: Python<'_>, about: &str, e: &BorexError) -> PyErr {
    let msg = e.render(borex::error::Spelling::Keyword);
    let err = error(py, crate::errors::class_name(e), format!("{about}{msg}"));
    if let BorexError::ModelCall { cause: Some(c), .. } = e {
        if let Some(cause) = c.0.downcast_ref::<PyErr>() {
            err.set_cause(py, Some(cause.clone_ref(py)));
        }
    }
    err
}

/// A Rust panic as `borex.InternalError` (never an abort, never a BaseException).
pub fn panic_to_py(py: Python<'_>, payload: Box<dyn std::any::Any + Send>) -> PyErr {
    let what = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into());
    error(py, "InternalError", format!("internal error in borex (a bug; please report it): {what}"))
}

/// The process that first made an engine (0: none yet). A child forked after
/// that inherits this value but none of the threads behind it.
static STARTED_IN: AtomicU32 = AtomicU32::new(0);

/// Refuse to work in a child forked from a process that had started borex:
/// rayon's pool, ONNX Runtime's threads and the GPU driver's exist only in
/// the parent, so the child's first parallel step would wait forever (even
/// with a new `Engine`: the pools are process-wide). Then record this process.
pub fn check_fork(py: Python<'_>) -> PyResult<()> {
    let me = std::process::id();
    match STARTED_IN.compare_exchange(0, me, Ordering::SeqCst, Ordering::SeqCst) {
        Ok(_) => Ok(()),
        Err(p) if p == me => Ok(()),
        Err(parent) => Err(error(
            py,
            "BorexRuntimeError",
            format!(
                "borex was started in process {parent} and this process is a fork of it: its thread pools and ONNX Runtime sessions do not survive os.fork(), so work here would hang; start workers with multiprocessing's \"spawn\" (or \"forkserver\") method, e.g. multiprocessing.get_context(\"spawn\")"
            ),
        )),
    }
}

/// Whether this is the interpreter's main thread, the only one Python runs signal handlers on.
fn is_main_thread(py: Python<'_>) -> bool {
    let Ok(threading) = py.import("threading") else { return false };
    match (threading.call_method0("main_thread"), threading.call_method0("current_thread")) {
        (Ok(a), Ok(b)) => a.is(&b),
        _ => false,
    }
}

/// Run `f` with the GIL released, a panic caught and the error mapped. On
/// the main thread, Python's signal handlers run before every model batch
/// (`borex::cancel`): Ctrl-C stops the call within a batch and its
/// `KeyboardInterrupt` (or whatever the handler raised) is what the call raises.
pub fn compute<T: Send>(py: Python<'_>, f: impl FnOnce() -> borex::Result<T> + Send) -> PyResult<T> {
    check_fork(py)?;
    let main = is_main_thread(py);
    // A callable's Ctrl-C from an earlier call that ended otherwise must not be raised by this one.
    drop(crate::callable::take_pending());
    let raised: Arc<Mutex<Option<PyErr>>> = Arc::new(Mutex::new(None));
    let slot = raised.clone();
    let result = py.detach(move || {
        let run = || std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        if !main {
            return run();
        }
        let check = move || {
            let mut s = slot.lock().unwrap_or_else(|p| p.into_inner());
            if s.is_some() {
                return true; // stays cancelled: the rest of the call stops at its next batch too
            }
            match Python::attach(|py| py.check_signals()) {
                Ok(()) => false,
                Err(e) => {
                    *s = Some(e);
                    true
                }
            }
        };
        borex::cancel::with_check(check, run)
    });
    // A handler that raised wins over whatever the call returned: its exception must not be lost.
    if let Some(e) = raised.lock().unwrap_or_else(|p| p.into_inner()).take() {
        return Err(e);
    }
    match result {
        Ok(Ok(v)) => Ok(v),
        // Ctrl-C while a model callable ran: its KeyboardInterrupt, with its traceback, is what the call raises.
        Ok(Err(BorexError::Interrupted)) => {
            Err(crate::callable::take_pending().unwrap_or_else(|| to_py(py, BorexError::Interrupted)))
        }
        Ok(Err(e)) => Err(to_py(py, e)),
        Err(payload) => Err(panic_to_py(py, payload)),
    }
}

/// The array in the machine's byte order: a big-endian array (`>f8`, from a
/// FITS or network file) is converted, as numpy itself would compute with it;
/// typed views need native order.
fn native_order<'py>(a: &Bound<'py, PyUntypedArray>) -> PyResult<Bound<'py, PyUntypedArray>> {
    let dtype = a.dtype();
    let order: String = dtype.getattr("byteorder")?.extract()?;
    let native = if cfg!(target_endian = "little") { "<" } else { ">" };
    if order == "=" || order == "|" || order == native {
        return Ok(a.clone());
    }
    let swapped = dtype.call_method1("newbyteorder", ("=",))?;
    Ok(a.call_method1("astype", (swapped,))?.cast_into::<PyUntypedArray>()?)
}

fn dtype_name(a: &Bound<'_, PyUntypedArray>) -> String {
    a.dtype().str().map(|s| s.to_string()).unwrap_or_else(|_| "?".into())
}

fn shape_text(shape: &[usize]) -> String {
    let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("({})", parts.join(", "))
}

/// An image argument: a path (str or os.PathLike), or an H×W×3 array of
/// uint8 (0–255) or float32/float64 in [0, 1] (rounded to 8 bits, the
/// precision every borex image has). PIL images arrive as arrays (the
/// Python layer converts them).
pub fn image_arg(py: Python<'_>, obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Image> {
    if let Ok(a) = obj.cast::<PyUntypedArray>() {
        return image_from_array(py, &native_order(a)?, what).map(|rgb| Image::rgb(rgb, what));
    }
    if let Ok(p) = obj.extract::<PathBuf>() {
        return Ok(Image::Path(p));
    }
    let t = obj.get_type().name().map(|n| n.to_string()).unwrap_or_default();
    Err(invalid(py, format!("{what}: expected a path, a numpy array (H×W×3) or a PIL image, got {t}")))
}

fn image_from_array(py: Python<'_>, a: &Bound<'_, PyUntypedArray>, what: &str) -> PyResult<image::RgbImage> {
    let shape = a.shape().to_vec();
    if shape.len() != 3 || shape[2] != 3 {
        let hint = match shape.as_slice() {
            [_, _] => " (a grayscale H×W array: stack it to H×W×3, e.g. np.repeat(a[..., None], 3, axis=2))",
            [_, _, 4] => " (RGBA: drop the alpha channel, a[..., :3])",
            [3, _, _] => " (channels first: transpose to H×W×3, a.transpose(1, 2, 0))",
            _ => "",
        };
        return Err(invalid(
            py,
            format!("{what}: image array must be H×W×3 (RGB), got shape {}{hint}", shape_text(&shape)),
        ));
    }
    // The library's one conversion (its shape and size limits, its [0, 1] check for floats).
    let from_library = |r: borex::Result<Image>| -> PyResult<image::RgbImage> {
        match r {
            Ok(Image::Rgb { rgb, .. }) => Ok(rgb),
            Ok(Image::Path(_)) => unreachable!("an array is an image in memory"),
            Err(e) => Err(invalid(py, format!("{what}: {}", e.to_string().trim_start_matches("invalid input: ")))),
        }
    };
    fn three<T>(v: ndarray::ArrayViewD<'_, T>) -> ndarray::ArrayView3<'_, T> {
        v.into_dimensionality::<ndarray::Ix3>().expect("checked: H×W×3")
    }
    if let Ok(arr) = a.cast::<PyArrayDyn<u8>>() {
        let ro = arr.readonly();
        from_library(Image::from_array(three(ro.as_array())))
    } else if let Ok(arr) = a.cast::<PyArrayDyn<f32>>() {
        let ro = arr.readonly();
        from_library(Image::from_float_array(three(ro.as_array())))
    } else if let Ok(arr) = a.cast::<PyArrayDyn<f64>>() {
        let ro = arr.readonly();
        from_library(Image::from_float_array(three(ro.as_array())))
    } else {
        Err(invalid(
            py,
            format!(
                "{what}: image array dtype {} is not supported: pass uint8 (0–255) or float32/float64 in [0, 1]",
                dtype_name(a)
            ),
        ))
    }
}

/// A 2-D map argument (a prior or a saliency map) as float32: borrowed when it
/// is float32 already (any strides), converted from float64; any other
/// dtype or rank is an error. Values are not checked here (the library names
/// the first non-finite one).
pub enum MapArg<'py> {
    F32(numpy::PyReadonlyArray2<'py, f32>),
    Owned(Array2<f32>),
}

impl MapArg<'_> {
    /// The map as a float32 view, row-major when numpy's was (no copy), else copied to row-major.
    pub fn view(&self) -> CowArray<'_, f32, Ix2> {
        match self {
            MapArg::F32(r) => {
                let v = r.as_array();
                if v.is_standard_layout() {
                    CowArray::from(v)
                } else {
                    CowArray::from(v.as_standard_layout().into_owned())
                }
            }
            MapArg::Owned(a) => CowArray::from(a.view()),
        }
    }
}

pub fn map_arg<'py>(py: Python<'py>, obj: &Bound<'py, PyAny>, what: &str) -> PyResult<MapArg<'py>> {
    let a = obj.cast::<PyUntypedArray>().map_err(|_| {
        let t = obj.get_type().name().map(|n| n.to_string()).unwrap_or_default();
        invalid(py, format!("{what}: expected a 2-D numpy array (H×W float32), got {t}"))
    })?;
    if a.ndim() != 2 {
        return Err(invalid(py, format!("{what}: a map must be 2-D (H×W), got shape {}", shape_text(a.shape()))));
    }
    let a = &native_order(a)?;
    if a.shape().contains(&0) {
        return Err(invalid(py, format!("{what}: the map is empty, shape {}", shape_text(a.shape()))));
    }
    if let Ok(arr) = a.cast::<numpy::PyArray2<f32>>() {
        return Ok(MapArg::F32(arr.readonly()));
    }
    if let Ok(arr) = a.cast::<numpy::PyArray2<f64>>() {
        return Ok(MapArg::Owned(arr.readonly().as_array().mapv(|v| v as f32)));
    }
    Err(invalid(py, format!("{what}: map dtype {} is not supported: pass float32 or float64", dtype_name(a))))
}

/// A map's first non-finite value, as an error naming it.
pub fn check_finite(py: Python<'_>, map: ArrayView2<'_, f32>, what: &str) -> PyResult<()> {
    if let Some(((r, c), v)) = map.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(invalid(py, format!("{what}: the map must be finite; value at ({r}, {c}) is {v}")));
    }
    Ok(())
}

/// An integer argument's value.
pub enum Integer {
    /// Within i128.
    Value(i128),
    /// Beyond i128, as Python writes it (reported as given, never clamped).
    Huge(String),
}

/// An integer argument, by one rule everywhere: a Python int or anything
/// `operator.index` takes (numpy's integer scalars), never a bool (Python's
/// or numpy's); `None` for anything else.
pub fn integer(py: Python<'_>, obj: &Bound<'_, PyAny>) -> Option<Integer> {
    let t = obj.get_type().name().map(|n| n.to_string()).unwrap_or_default();
    if obj.is_none() || obj.is_instance_of::<pyo3::types::PyBool>() || t == "bool" || t == "bool_" {
        return None;
    }
    let index = py.import("operator").and_then(|op| op.call_method1("index", (obj,))).ok()?;
    Some(match index.extract::<i128>() {
        Ok(v) => Integer::Value(v),
        Err(_) => Integer::Huge(index.str().map(|s| s.to_string()).unwrap_or_default()),
    })
}

/// What an argument is, for errors: `None`, `a bool`, or its type's name.
fn kind(obj: &Bound<'_, PyAny>) -> String {
    if obj.is_none() {
        return "None".into();
    }
    let t = obj.get_type().name().map(|n| n.to_string()).unwrap_or_default();
    if obj.is_instance_of::<pyo3::types::PyBool>() || t == "bool" || t == "bool_" {
        return "a bool".into();
    }
    t
}

/// A Python int that must be ≥ 0 (usize), named in the error otherwise (`iters=-1`, `seed=None`).
pub fn non_negative_int(py: Python<'_>, obj: &Bound<'_, PyAny>, name: &str) -> PyResult<u64> {
    match integer(py, obj) {
        Some(Integer::Value(v)) if v >= 0 && v <= u64::MAX as i128 => Ok(v as u64),
        Some(Integer::Value(v)) if v > 0 => {
            Err(invalid(py, format!("{name} must be a non-negative integer below 2**64, got {v}")))
        }
        Some(Integer::Value(v)) => Err(invalid(py, format!("{name} must be a non-negative integer, got {v}"))),
        Some(Integer::Huge(v)) => {
            Err(invalid(py, format!("{name} must be a non-negative integer below 2**64, got {v}")))
        }
        None => Err(invalid(py, format!("{name} must be a non-negative integer, got {}", kind(obj)))),
    }
}
