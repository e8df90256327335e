//! `**settings` of the Python methods → the library's settings types
//! ([`borex::engine::RefineSettings`], ...), through one generic path: each
//! keyword argument becomes a serde value and the library's type reads it
//! (its serde names, defaults and value syntax are the only ones). Python's
//! own spellings are applied first: a trailing `_` (`class_`), dashes, and
//! the command line's negated flags (`no_metrics=True` is `metrics=False`).
//!
//! An unknown keyword is a `TypeError` naming it and the nearest known name;
//! a value of the wrong type is a `TypeError` naming the argument; a value of
//! the right type that the setting refuses is an `InvalidInputError`.

use crate::convert::{integer, invalid, Integer};
use borex::compute::DeviceChoice;
use borex::job::ClassSpec;
use borex::model::ExecutionProvider;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyList, PyString, PyTuple};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

/// `device=`: the library's names (auto, gpu, cpu), through its own parser.
pub fn device(py: Python<'_>, s: &str) -> PyResult<DeviceChoice> {
    s.parse().map_err(|e: String| invalid(py, format!("device: {e}")))
}

/// `ep=`: the library's names (cpu, cuda), through its own parser.
pub fn ep(py: Python<'_>, s: &str) -> PyResult<ExecutionProvider> {
    s.parse().map_err(|e: String| invalid(py, format!("ep (execution provider): {e}")))
}

/// A class given as a positional argument (`target`): read as the `class` setting is.
pub fn class_spec(py: Python<'_>, obj: &Bound<'_, PyAny>, name: &str) -> PyResult<ClassSpec> {
    let v = value(py, obj, name)?;
    serde_json::from_value::<borex::engine::EvaluateSettings>(serde_json::json!({ "class": v }))
        .map(|s| s.class)
        .map_err(|e| value_error(py, name, obj, &e.to_string()))
}

/// The command line's negated flags: (Python's name, the setting it negates).
const NEGATED: &[(&str, &str)] = &[("no_metrics", "metrics")];

/// Keyword arguments as the library's settings type `T`: `base` (its
/// `Default`, or a front end's own base) with each given keyword laid over it.
/// `extra` are the method's own named arguments that are settings (`iters`,
/// `seed`; left out when not given); `hidden` are `T`'s settings this method
/// does not take.
pub fn settings<'py, T: Serialize + DeserializeOwned>(
    py: Python<'py>,
    call: &str,
    base: &T,
    kwargs: Option<&Bound<'py, PyDict>>,
    extra: &[(&str, Bound<'py, PyAny>)],
    hidden: &[&str],
) -> PyResult<T> {
    let Value::Object(mut map) = serde_json::to_value(base).map_err(|e| invalid(py, format!("{call}: {e}")))? else {
        unreachable!("a settings type serializes to a map")
    };
    for h in hidden {
        map.remove(*h);
    }
    let known: Vec<String> = map.keys().cloned().collect();
    // (setting, the Python name it came as, the Python object, its value)
    let mut given: Vec<(String, String, Bound<'py, PyAny>, Value)> = vec![];
    let mut add = |raw: String, obj: Bound<'py, PyAny>| -> PyResult<()> {
        let mut name = raw.trim_end_matches('_').replace('-', "_");
        let mut negate = false;
        if let Some((_, of)) = NEGATED.iter().find(|(n, of)| *n == name && known.iter().any(|k| k == of)) {
            name = of.to_string();
            negate = true;
        }
        if !known.contains(&name) {
            return Err(unknown(call, &raw, &known));
        }
        if let Some((_, first, _, _)) = given.iter().find(|(n, ..)| *n == name) {
            return Err(PyTypeError::new_err(format!(
                "{call}() got the setting {} twice (as {first:?} and as {raw:?})",
                shown(&name)
            )));
        }
        let mut v = value(py, &obj, &raw)?;
        if negate {
            v = match v {
                Value::Bool(b) => Value::Bool(!b),
                _ => return Err(type_error(&raw, &obj, "True or False")),
            };
        }
        given.push((name, raw, obj, v));
        Ok(())
    };
    for (k, v) in extra {
        add(k.to_string(), v.clone())?;
    }
    if let Some(kw) = kwargs {
        for (k, v) in kw.iter() {
            add(k.extract::<String>()?, v)?;
        }
    }
    let mut all = map.clone();
    for (name, _, _, v) in &given {
        all.insert(name.clone(), v.clone());
    }
    match serde_json::from_value::<T>(Value::Object(all)) {
        Ok(t) => Ok(t),
        Err(whole) => {
            // serde's error does not say which field: the first argument that fails alone is the one.
            for (name, raw, obj, v) in &given {
                let mut one: Map<String, Value> = map.clone();
                one.insert(name.clone(), v.clone());
                if let Err(e) = serde_json::from_value::<T>(Value::Object(one)) {
                    return Err(value_error(py, raw, obj, &e.to_string()));
                }
            }
            Err(invalid(py, format!("{call}: {whole}")))
        }
    }
}

/// A setting's Python spelling: `class` is a keyword, so `class_`.
fn shown(name: &str) -> String {
    match name {
        "class" => "class_".into(),
        n => n.into(),
    }
}

/// `TypeError: refine() got an unexpected keyword argument 'budgett'; did you mean 'budget'?`
fn unknown(call: &str, raw: &str, known: &[String]) -> PyErr {
    let negated = NEGATED.iter().filter(|(_, of)| known.iter().any(|k| k == of)).map(|(n, _)| n.to_string());
    let names: Vec<String> = known.iter().map(|k| shown(k)).chain(negated).collect();
    let nearest = names
        .iter()
        .map(|n| (strsim::jaro_winkler(raw.trim_end_matches('_'), n.trim_end_matches('_')), n))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, n)| n.clone())
        .unwrap_or_default();
    let mut sorted = names;
    sorted.sort();
    PyTypeError::new_err(format!(
        "{call}() got an unexpected keyword argument {raw:?}; did you mean {nearest:?}? (settings: {})",
        sorted.join(", ")
    ))
}

fn repr(obj: &Bound<'_, PyAny>) -> String {
    obj.repr().map(|r| r.to_string()).unwrap_or_else(|_| "?".into())
}

fn type_error(raw: &str, obj: &Bound<'_, PyAny>, expected: &str) -> PyErr {
    PyTypeError::new_err(format!("{} must be {expected}, got {}", shown(raw.trim_end_matches('_')), repr(obj)))
}

/// serde's complaint about one argument: a wrong type is a `TypeError`, a refused value an `InvalidInputError`.
fn value_error(py: Python<'_>, raw: &str, obj: &Bound<'_, PyAny>, e: &str) -> PyErr {
    // serde_json appends the position in its own text ("at line 1 column 2"); a keyword has none.
    let e = e.split(" at line ").next().unwrap_or(e);
    if let Some(rest) = e.strip_prefix("invalid type: ") {
        let expected = rest.rsplit_once("expected ").map_or(rest, |(_, x)| x);
        return type_error(raw, obj, &readable(expected));
    }
    let e = e.strip_prefix("invalid value: ").unwrap_or(e);
    invalid(py, format!("{}={}: {e}", shown(raw.trim_end_matches('_')), repr(obj)))
}

/// serde's type names as a Python user reads them.
fn readable(expected: &str) -> String {
    match expected {
        "usize" | "u64" | "u32" => "a non-negative int".into(),
        "f32" | "f64" => "a number".into(),
        "a boolean" => "True or False".into(),
        "a string" => "a str".into(),
        "a sequence" => "a list".into(),
        other => other.into(),
    }
}

/// A Python value as a serde value: None, bools, ints (and anything
/// `operator.index` takes, numpy's integers), floats, str, paths, lists,
/// tuples and numpy arrays; anything else is a `TypeError` naming the argument.
fn value(py: Python<'_>, obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Value> {
    if obj.is_none() {
        return Ok(Value::Null);
    }
    let t = obj.get_type().name().map(|n| n.to_string()).unwrap_or_default();
    // numpy's bool scalars (`bool` in numpy 2, `bool_` before) are bools, not numbers.
    if obj.is_instance_of::<PyBool>() || t == "bool" || t == "bool_" {
        return Ok(Value::Bool(obj.is_truthy()?));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::String(s.to_string()));
    }
    match integer(py, obj) {
        Some(Integer::Value(v)) => {
            return i64::try_from(v)
                .map(Value::from)
                .or_else(|_| u64::try_from(v).map(Value::from))
                .map_err(|_| too_large(py, name, &v.to_string()))
        }
        Some(Integer::Huge(v)) => return Err(too_large(py, name, &v)),
        None => {}
    }
    if obj.is_instance_of::<PyFloat>() || obj.hasattr("__float__")? && !obj.hasattr("__len__")? {
        let f: f64 = obj.extract()?;
        return serde_json::Number::from_f64(f).map(Value::Number).ok_or_else(|| {
            invalid(py, format!("{}={}: must be a finite number", shown(name.trim_end_matches('_')), repr(obj)))
        });
    }
    if obj.hasattr("__fspath__")? {
        let p = py.import("os")?.call_method1("fspath", (obj,))?;
        return value(py, &p, name);
    }
    if obj.cast::<numpy::PyUntypedArray>().is_ok() {
        return value(py, &obj.call_method0("tolist")?, name);
    }
    if obj.cast::<PyList>().is_ok() || obj.cast::<PyTuple>().is_ok() {
        let items: Vec<Bound<'_, PyAny>> = obj.try_iter()?.collect::<PyResult<_>>()?;
        return items.iter().map(|x| value(py, x, name)).collect::<PyResult<Vec<_>>>().map(Value::Array);
    }
    Err(PyTypeError::new_err(format!(
        "{} got a {t} ({}), which is not a setting value (a number, str, bool, list or None)",
        shown(name.trim_end_matches('_')),
        repr(obj)
    )))
}

fn too_large(py: Python<'_>, name: &str, v: &str) -> PyErr {
    invalid(
        py,
        format!("{}={v} is out of range: no setting takes a number that large", shown(name.trim_end_matches('_'))),
    )
}
