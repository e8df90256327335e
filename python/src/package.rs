//! The installed package's environment (where ONNX Runtime is) and `borex.info()`.

use crate::convert::compute;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::PathBuf;

/// Called once at import by an installed (not development) package: the
/// `onnxruntime` package's library (None when it is not installed). The
/// checkout borex was built from is then never looked in.
#[pyfunction]
pub fn _set_package(ort_lib: Option<PathBuf>) {
    borex::paths::set_package(Some(borex::paths::Package { ort_lib }));
}

/// Which ONNX Runtime library is loaded and from where, its version and
/// execution providers, and the assets folder (loads the library).
#[pyfunction]
pub fn _info<'py>(py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
    let (lib, source) = borex::paths::locate_ort_lib();
    let home = borex::paths::locate();
    let d = PyDict::new(py);
    d.set_item("version", env!("CARGO_PKG_VERSION"))?;
    d.set_item("assets", home.path.clone())?;
    d.set_item("assets_lines", borex::paths::describe_home())?;
    d.set_item("ort_library", lib.clone())?;
    d.set_item("ort_source", source.describe())?;
    let l = lib.clone();
    compute(py, move || borex::model::runtime(&l).map(|_| ()))?;
    d.set_item("ort_version", borex::model::runtime_version(&lib))?;
    d.set_item("execution_providers", borex::model::available_providers())?;
    Ok(d)
}
