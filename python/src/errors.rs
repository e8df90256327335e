//! borex's exception classes, as Rust types.
//!
//! The classes are defined once, in Python (`borex/errors.py`), because each
//! derives from two bases (`BorexError` and the built-in a user would catch,
//! e.g. `ValueError`), which `create_exception!` cannot express. PyO3's
//! `import_exception!` binds each to a Rust type whose class object is looked
//! up on first use and cached: no module import per error.

use borex::error::ErrorKind;
use borex::BorexError;

pub use python::class;

/// The Python classes, one Rust type each (named as in Python, so apart from the library's `BorexError`).
mod python {
    use pyo3::prelude::*;
    use pyo3::types::PyType;
    use pyo3::PyTypeInfo;

    macro_rules! classes {
        ($($name:ident),* $(,)?) => {
            $(pyo3::import_exception!(borex.errors, $name);)*

            /// The class `borex.errors.<name>`.
            pub fn class<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyType>> {
                match name {
                    $(stringify!($name) => Ok($name::type_object(py)),)*
                    _ => Err(pyo3::exceptions::PyRuntimeError::new_err(format!("borex has no exception class {name}"))),
                }
            }
        };
    }

    classes!(
        BorexError,
        BorexIOError,
        BorexRuntimeError,
        ImageError,
        InternalError,
        InvalidInputError,
        MissingFileError,
        ModelError,
    );
}

/// The class of a library error, by its kind (never by its message, nor by
/// looking at the file system when the error is shown).
pub fn class_name(e: &BorexError) -> &'static str {
    match e.kind() {
        ErrorKind::NotFound => "MissingFileError",
        ErrorKind::Io => "BorexIOError",
        ErrorKind::Image => "ImageError",
        ErrorKind::Model => "ModelError",
        ErrorKind::InvalidInput => "InvalidInputError",
        ErrorKind::Runtime | ErrorKind::Interrupted => "BorexRuntimeError",
    }
}
