//! `borex._borex`: the native half of the `borex` Python package.

mod convert;

use pyo3::prelude::*;

#[pymodule]
fn _borex(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
