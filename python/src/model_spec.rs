//! What a model callable's keyword arguments declare (`input_size`,
//! `resize`, `mean`, `std`, `labels`, `output`), as the library's
//! [`ModelInfo`]: the facts an ONNX model's sidecar gives, with its defaults
//! and the command line's rule for `resize`.

use crate::convert::{invalid, to_py};
use borex::image::Preprocess;
use borex::model::{Labels, ModelInfo, OutputKind};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use std::path::PathBuf;

/// The keyword arguments as given (`None`: not given).
pub struct CallableSpec<'a, 'py> {
    pub labels: Option<&'a Bound<'py, PyAny>>,
    pub input_size: Option<&'a Bound<'py, PyAny>>,
    pub resize: Option<&'a Bound<'py, PyAny>>,
    pub mean: Option<&'a Bound<'py, PyAny>>,
    pub std: Option<&'a Bound<'py, PyAny>>,
    pub output: Option<&'a Bound<'py, PyAny>>,
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into())
}

/// Three numbers (R, G, B), finite.
fn rgb(py: Python<'_>, obj: &Bound<'_, PyAny>, name: &str) -> PyResult<[f32; 3]> {
    let v: [f32; 3] = obj.extract::<Vec<f32>>().ok().and_then(|v| v.try_into().ok()).ok_or_else(|| {
        PyTypeError::new_err(format!(
            "{name} must be three numbers (R, G, B, on 0–255 values as --{name} takes them), got {}",
            obj.repr().map(|r| r.to_string()).unwrap_or_else(|_| type_name(obj))
        ))
    })?;
    if v.iter().any(|x| !x.is_finite()) {
        return Err(invalid(py, format!("{name}={v:?}: every value must be finite")));
    }
    Ok(v)
}

impl CallableSpec<'_, '_> {
    /// The declared facts, checked; the rest from borex's defaults (torchvision's ImageNet preprocessing).
    pub fn info(&self, py: Python<'_>) -> PyResult<ModelInfo> {
        use borex::limits::{in_range, MAX_INPUT, MAX_RESIZE, MIN_INPUT};
        let defaults = Preprocess::default();
        let input_size = match self.input_size {
            None => None,
            Some(s) => {
                Some(s.extract::<u32>().map(|v| (v, v)).or_else(|_| s.extract::<(u32, u32)>()).map_err(|_| {
                    PyTypeError::new_err(format!(
                        "input_size must be an int or (height, width), got {}",
                        s.repr().map(|r| r.to_string()).unwrap_or_else(|_| type_name(s))
                    ))
                })?)
            }
        };
        if let Some((h, w)) = input_size {
            in_range("input_size", h, MIN_INPUT, MAX_INPUT).map_err(|e| to_py(py, e))?;
            in_range("input_size", w, MIN_INPUT, MAX_INPUT).map_err(|e| to_py(py, e))?;
        }
        let resize = match self.resize {
            None => None,
            Some(r) => {
                let v = r.extract::<u32>().map_err(|_| {
                    PyTypeError::new_err(format!(
                        "resize must be an int (the shorter side before the centre crop), got {}",
                        type_name(r)
                    ))
                })?;
                in_range("resize", v, 1, MAX_RESIZE).map_err(|e| to_py(py, e))?;
                Some(v)
            }
        };
        let mean = self.mean.map(|m| rgb(py, m, "mean")).transpose()?;
        let std = self.std.map(|s| rgb(py, s, "std")).transpose()?;
        if let Some(s) = std.filter(|s| s.contains(&0.0)) {
            return Err(invalid(py, format!("std={s:?}: every value must be non-zero")));
        }
        let output = match self.output {
            None => None,
            Some(o) => {
                let s: String = o.extract().map_err(|_| {
                    PyTypeError::new_err(format!(
                        "output must be \"logits\" or \"probabilities\", got {}",
                        type_name(o)
                    ))
                })?;
                Some(s.parse::<OutputKind>().map_err(|e| invalid(py, format!("output: {e}")))?)
            }
        };
        let labels = match self.labels {
            None => None,
            Some(l) => Some(labels(py, l)?),
        };
        Ok(ModelInfo {
            preprocess: Preprocess {
                input_size: input_size.unwrap_or(defaults.input_size),
                // As `--input-size` without `--resize`: a given input size is resized to straight.
                resize: resize.or(if input_size.is_some() { None } else { defaults.resize }),
                mean: mean.unwrap_or(defaults.mean),
                std: std.unwrap_or(defaults.std),
            },
            classes: labels.as_ref().map(Labels::len),
            labels,
            output,
        })
    }
}

/// `labels=`: a labels file, or a list of names (one per class).
fn labels(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Labels> {
    if let Ok(p) = obj.extract::<PathBuf>() {
        return Labels::load(&p).map_err(|e| to_py(py, e));
    }
    let names: Vec<String> = obj.extract().map_err(|_| {
        PyTypeError::new_err(format!("labels must be a labels file or a list of names (str), got {}", type_name(obj)))
    })?;
    Labels::from_names(names).map_err(|e| to_py(py, e))
}
