//! `borex._borex`: the native half of the `borex` Python package, a thin
//! binding of [`borex::engine::Engine`]. Arguments are checked and converted
//! while the GIL is held (arrays copied then: no caller's array is read
//! without it); the work runs with the GIL released (other Python threads run
//! meanwhile, though an Engine's model calls take turns on its session) and a
//! Rust panic becomes `borex.InternalError`.
//! Maps come back as numpy arrays that take over the Rust buffers (no copy).

mod callable;
mod convert;
mod errors;
mod model_spec;
mod package;
mod settings;

use borex::engine::{self, Prior};
use convert::{compute, image_arg, invalid, map_arg, non_negative_int};
use numpy::IntoPyArray;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};
use std::path::PathBuf;

/// A serde value as Python objects (dicts, lists, str, int, float, bool, None).
fn json_to_py<'py>(py: Python<'py>, v: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    use serde_json::Value;
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => pyo3::types::PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.into_pyobject(py)?.into_any(),
            (None, Some(u)) => u.into_pyobject(py)?.into_any(),
            _ => n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any(),
        },
        Value::String(s) => s.into_pyobject(py)?.into_any(),
        Value::Array(a) => {
            let items = a.iter().map(|x| json_to_py(py, x)).collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any()
        }
        Value::Object(o) => {
            let d = PyDict::new(py);
            for (k, x) in o {
                d.set_item(k, json_to_py(py, x)?)?;
            }
            d.into_any()
        }
    })
}

/// A report (any serde type) as a Python dict.
fn report_to_py<'py>(py: Python<'py>, report: &impl serde::Serialize) -> PyResult<Bound<'py, PyAny>> {
    let v = serde_json::to_value(report).map_err(|e| invalid(py, format!("report: {e}")))?;
    json_to_py(py, &v)
}

/// What Python gets of a refine (moved out of the outcome while the GIL is released).
struct RefineParts {
    map: ndarray::Array2<f32>,
    scaled_prior: ndarray::Array2<f32>,
    full_res: Option<ndarray::Array2<f32>>,
    report: borex::refine::pipeline::RefineReport,
}

impl From<borex::refine::RefineOutcome> for RefineParts {
    fn from(o: borex::refine::RefineOutcome) -> Self {
        Self { map: o.refined.map, scaled_prior: o.refined.scaled_prior, full_res: o.full_res, report: o.report }
    }
}

/// (refined, prior, queries, report, refined_full) of one refine, maps handed to numpy without a copy.
fn refine_to_py<'py>(py: Python<'py>, out: RefineParts) -> PyResult<Bound<'py, PyTuple>> {
    let report = report_to_py(py, &out.report)?;
    let queries = report.get_item("observations")?;
    let full = match out.full_res {
        Some(f) => f.into_pyarray(py).into_any(),
        None => py.None().into_bound(py),
    };
    PyTuple::new(
        py,
        [out.map.into_pyarray(py).into_any(), out.scaled_prior.into_pyarray(py).into_any(), queries, report, full],
    )
}

/// A prior argument: a method name or a map file (str or path, resolved by
/// the library's [`Prior::parse`]), or an H×W array.
fn prior_arg(py: Python<'_>, obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Prior> {
    if let Ok(s) = obj.extract::<String>() {
        return Ok(Prior::parse(&s));
    }
    if obj.cast::<numpy::PyUntypedArray>().is_ok() {
        let m = map_arg(py, obj, what)?;
        let view = m.view();
        convert::check_finite(py, view.view(), what)?;
        return Ok(Prior::Map(view.into_owned()));
    }
    if let Ok(p) = obj.extract::<PathBuf>() {
        return Ok(Prior::File(p));
    }
    let t = obj.get_type().name().map(|n| n.to_string()).unwrap_or_default();
    Err(invalid(py, format!("{what}: expected a method name, a map file or an H×W numpy array, got {t}")))
}

/// The borex engine: a classifier session and a compute backend, loaded once.
#[pyclass(module = "borex._borex", name = "Engine", frozen)]
struct PyEngine {
    engine: engine::Engine,
}

#[pymethods]
impl PyEngine {
    #[new]
    #[pyo3(signature = (model=None, device="auto", ep="cpu", labels=None, input_size=None, resize=None, mean=None, std=None, output=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        model: Option<&Bound<'_, PyAny>>,
        device: &str,
        ep: &str,
        labels: Option<&Bound<'_, PyAny>>,
        input_size: Option<&Bound<'_, PyAny>>,
        resize: Option<&Bound<'_, PyAny>>,
        mean: Option<&Bound<'_, PyAny>>,
        std: Option<&Bound<'_, PyAny>>,
        output: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        convert::check_fork(py)?;
        let device = settings::device(py, device)?;
        let ep = settings::ep(py, ep)?;
        if let Some(f) = model.filter(|m| m.extract::<PathBuf>().is_err() && m.is_callable()) {
            let spec = model_spec::CallableSpec { labels, input_size, resize, mean, std, output };
            let info = spec.info(py)?;
            if ep != borex::model::ExecutionProvider::Cpu {
                return Err(invalid(
                    py,
                    "ep is ONNX Runtime's execution provider; a model callable runs wherever its own code puts it: leave ep out",
                ));
            }
            let model = callable::CallableModel::new(py, f.clone().unbind(), info);
            let engine = compute(py, move || {
                let classifier = borex::model::Classifier::new(Box::new(model))?;
                Ok(engine::Engine::from_parts(classifier, borex::compute::Backend::select(device)?))
            })?;
            return Ok(Self { engine });
        }
        let model = match model {
            None => None,
            Some(m) => Some(m.extract::<PathBuf>().map_err(|_| {
                let t = m.get_type().name().map(|n| n.to_string()).unwrap_or_default();
                PyTypeError::new_err(format!(
                    "model must be a path to an ONNX file or a callable (an N×3×H×W float32 array in, N×classes scores out), not {t}"
                ))
            })?),
        };
        let given = [("input_size", input_size), ("resize", resize), ("mean", mean), ("std", std), ("output", output)];
        if let Some((name, _)) = given.iter().find(|(_, v)| v.is_some()) {
            return Err(invalid(
                py,
                format!("{name} describes a model callable; an ONNX model's preprocessing and output kind come from its JSON sidecar (model.json beside model.onnx)"),
            ));
        }
        let labels = match labels {
            None => None,
            Some(l) => Some(l.extract::<PathBuf>().map_err(|_| {
                PyTypeError::new_err("labels of an ONNX model must be a labels file (one name per line, or JSON); a list of names is for a model callable")
            })?),
        };
        let options = engine::EngineOptions { model, labels, device, ep, ort_lib: None };
        let engine = compute(py, || engine::Engine::new(&options))?;
        Ok(Self { engine })
    }

    /// Model, device and execution provider, for repr().
    fn describe(&self) -> String {
        let m = self.engine.model();
        format!(
            "model={:?}, device={:?}, ep={:?}",
            m.path().display().to_string(),
            self.engine.backend().kind(),
            m.runs_on()
        )
    }

    /// [(id, label, probability)] of the `top` most probable classes.
    fn classify(
        &self,
        py: Python<'_>,
        image: &Bound<'_, PyAny>,
        top: &Bound<'_, PyAny>,
    ) -> PyResult<Vec<(usize, String, f32)>> {
        let image = image_arg(py, image, "image")?;
        let top = non_negative_int(py, top, "top")? as usize;
        let preds = compute(py, || self.engine.classify(image, top))?;
        Ok(preds.into_iter().map(|p| (p.class, p.label.unwrap_or_default(), p.probability)).collect())
    }

    /// The method's map (H×W float32).
    fn explain<'py>(
        &self,
        py: Python<'py>,
        image: &Bound<'py, PyAny>,
        method: &Bound<'py, PyAny>,
        settings: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let image = image_arg(py, image, "image")?;
        // Python gets the map only: its insertion/deletion are not computed (Engine.evaluate scores a map).
        let base = engine::ExplainSettings { metrics: false, ..Default::default() };
        let hidden = ["method", "metrics", "insertion_start", "sanity"];
        let mut es = settings::settings(py, "explain", &base, Some(settings), &[], &hidden)?;
        let name = method.extract::<String>().map_err(|_| invalid(py, "method must be a string, e.g. \"rise\""))?;
        es.method = name.parse().map_err(|e| convert::to_py(py, e))?;
        // undesirable: the signed map S±_c its docstring promises, not the CLI's primary target.npy.
        let map = compute(py, || self.engine.explain(image, &es).map(|o| o.into_signed_or_primary()))?;
        Ok(map.into_pyarray(py).into_any())
    }

    /// (refined, prior, queries, report, refined_full or None).
    fn refine<'py>(
        &self,
        py: Python<'py>,
        image: &Bound<'py, PyAny>,
        prior: &Bound<'py, PyAny>,
        iters: &Bound<'py, PyAny>,
        seed: &Bound<'py, PyAny>,
        settings: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let image = image_arg(py, image, "image")?;
        let mut rs = refine_settings(py, "refine", iters, seed, settings)?;
        rs.prior = prior_arg(py, prior, "prior")?;
        let out = compute(py, || self.engine.refine(image, &rs).map(RefineParts::from))?;
        refine_to_py(py, out)
    }

    /// One item per image, in order: its refine tuple, or the exception its
    /// failure raises (the Python layer raises it or returns it in its slot).
    /// `prior` is every image's prior unless `priors` gives one per image.
    #[allow(clippy::too_many_arguments)]
    fn refine_many<'py>(
        &self,
        py: Python<'py>,
        images: &Bound<'py, PyList>,
        prior: &Bound<'py, PyAny>,
        priors: Option<&Bound<'py, PyList>>,
        lockstep: &Bound<'py, PyAny>,
        iters: &Bound<'py, PyAny>,
        seed: &Bound<'py, PyAny>,
        settings: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyList>> {
        let imgs = images
            .iter()
            .enumerate()
            .map(|(i, x)| image_arg(py, &x, &format!("images[{i}]")))
            .collect::<PyResult<Vec<_>>>()?;
        let lockstep = non_negative_int(py, lockstep, "lockstep")? as usize;
        let mut rs = refine_settings(py, "refine_many", iters, seed, settings)?;
        rs.prior = prior_arg(py, prior, "prior")?;
        let priors = match priors {
            Some(p) => Some(
                p.iter()
                    .enumerate()
                    .map(|(i, x)| prior_arg(py, &x, &format!("priors[{i}]")))
                    .collect::<PyResult<Vec<_>>>()?,
            ),
            None => None,
        };
        let results = compute(py, || {
            self.engine
                .refine_many(&imgs, priors.as_deref(), &rs, lockstep)
                .map(|rs| rs.into_iter().map(|r| r.map(RefineParts::from)).collect::<Vec<_>>())
        })?;
        let out = PyList::empty(py);
        for (i, r) in results.into_iter().enumerate() {
            match r {
                Ok(parts) => out.append(refine_to_py(py, parts)?)?,
                Err(e) => out.append(convert::to_py_about(py, &format!("images[{i}]: "), &e).into_value(py))?,
            }
        }
        Ok(out)
    }

    /// Insertion/deletion of a map, as a dict.
    fn evaluate<'py>(
        &self,
        py: Python<'py>,
        image: &Bound<'py, PyAny>,
        saliency_map: &Bound<'py, PyAny>,
        settings: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let image = image_arg(py, image, "image")?;
        let m = map_arg(py, saliency_map, "saliency_map")?;
        let es = settings::settings(py, "evaluate", &engine::EvaluateSettings::default(), Some(settings), &[], &[])?;
        // Copied while the GIL is held: the work runs without it, and another Python
        // thread may write to the caller's array meanwhile (one pass over the map, small next to the call).
        let map = m.view().into_owned();
        drop(m);
        let out = compute(py, || self.engine.evaluate(image, map.view(), &es))?;
        report_to_py(py, &out)
    }

    /// ([(counterfactual H×W×3 in [0, 1], change H×W)] one per target, report):
    /// towards `target`, or (`targets=k`) the k most probable classes other
    /// than the predicted one, as `borex counterfactual --targets k`.
    #[allow(clippy::too_many_arguments)]
    fn counterfactual<'py>(
        &self,
        py: Python<'py>,
        image: &Bound<'py, PyAny>,
        target: &Bound<'py, PyAny>,
        targets: &Bound<'py, PyAny>,
        eps: &Bound<'py, PyAny>,
        p: &Bound<'py, PyAny>,
        settings: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let image = image_arg(py, image, "image")?;
        let targets = match (target.is_none(), targets.is_none()) {
            (false, true) => borex::counterfactual::Targets::Class(settings::class_spec(py, target, "target")?),
            (true, false) => {
                borex::counterfactual::Targets::TopOthers(non_negative_int(py, targets, "targets")? as usize)
            }
            _ => {
                return Err(invalid(
                    py,
                    "give target (a class) or targets (how many of the next most probable classes), not both",
                ))
            }
        };
        let extra = [("eps", eps.clone()), ("p", p.clone())];
        let cs = settings::settings(
            py,
            "counterfactual",
            &engine::CounterfactualSettings::default(),
            Some(settings),
            &extra,
            &[],
        )?;
        let out = compute(py, || self.engine.counterfactual(image, targets, &cs))?;
        let report = report_to_py(py, &out.report)?;
        let per_target = PyList::empty(py);
        for t in out.targets {
            // C×H×W → H×W×3, the layout of every image array in this package.
            let cf = t.counterfactual.permuted_axes([1, 2, 0]).as_standard_layout().into_owned();
            per_target
                .append(PyTuple::new(py, [cf.into_pyarray(py).into_any(), t.change.into_pyarray(py).into_any()])?)?;
        }
        PyTuple::new(py, [per_target.into_any(), report])
    }
}

/// `**settings` with the method's own `iters` and `seed` as the library's refine settings.
fn refine_settings(
    py: Python<'_>,
    call: &str,
    iters: &Bound<'_, PyAny>,
    seed: &Bound<'_, PyAny>,
    settings: &Bound<'_, PyDict>,
) -> PyResult<engine::RefineSettings> {
    // `iters=None` is "not given": the default, or what `budget` leaves for the queries.
    let mut extra = vec![("seed", seed.clone())];
    if !iters.is_none() {
        extra.push(("iters", iters.clone()));
    }
    let rs = settings::settings(py, call, &engine::RefineSettings::default(), Some(settings), &extra, &["prior"])?;
    if !iters.is_none() && rs.budget.is_some() {
        // As `borex refine --budget N --iters T` is refused: the budget decides the query count.
        return Err(invalid(
            py,
            "iters and budget cannot be given together: budget sets the number of queries (it splits the model evaluations between the prior and the queries); give one or the other",
        ));
    }
    Ok(rs)
}

/// The seconds one `Engine::refine` of `image` takes in Rust alone (no Python
/// conversions, the GIL released): the baseline of python/bench/overhead.py,
/// which times the same call through `borex.Engine.refine` in the same process.
#[cfg(feature = "test-hooks")]
#[pyfunction]
fn _time_rust_refine(
    py: Python<'_>,
    engine: &Bound<'_, PyEngine>,
    image: PathBuf,
    iters: &Bound<'_, PyAny>,
    seed: &Bound<'_, PyAny>,
    settings: &Bound<'_, PyDict>,
) -> PyResult<f64> {
    let rs = refine_settings(py, "refine", iters, seed, settings)?;
    let engine = &engine.get().engine;
    compute(py, || {
        let t = std::time::Instant::now();
        let out = engine.refine(image.as_path(), &rs)?;
        let secs = t.elapsed().as_secs_f64();
        drop(out);
        Ok(secs)
    })
}

/// Panics inside the computation path (GIL released, as every method's work
/// is): python/tests checks that it arrives as `borex.InternalError` and the
/// interpreter lives on.
#[cfg(feature = "test-hooks")]
#[pyfunction]
fn _panic_for_test(py: Python<'_>, message: String) -> PyResult<()> {
    compute(py, || -> borex::Result<()> { panic!("{message}") })
}

#[pymodule]
fn _borex(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<PyEngine>()?;
    // Test and benchmark hooks: only in the development build (scripts/python.sh), never in the wheel.
    #[cfg(feature = "test-hooks")]
    {
        m.add_function(wrap_pyfunction!(_time_rust_refine, m)?)?;
        m.add_function(wrap_pyfunction!(_panic_for_test, m)?)?;
    }
    m.add_function(wrap_pyfunction!(package::_set_package, m)?)?;
    m.add_function(wrap_pyfunction!(package::_info, m)?)?;
    Ok(())
}
