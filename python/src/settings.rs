//! `**settings` of the Python methods → the engine's settings structs. Names
//! are the command line's (`--insertion-start` is `insertion_start`, `--class`
//! is `class_` or `class`), defaults are the structs' `Default` (the command
//! line's); an unknown name or a value of the wrong kind is an
//! `InvalidInputError` naming it.

use crate::convert::{boolean, integer, invalid, non_negative_int, number, Integer};
use borex::compute::{Baseline, DeviceChoice};
use borex::engine::{CounterfactualSettings, EvaluateSettings, ExplainSettings, RefineSettings};
use borex::job::ClassSpec;
use borex::metrics::InsertionStart;
use borex::model::ExecutionProvider;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use std::str::FromStr;

/// `device=`: auto, gpu or cpu.
pub fn device(py: Python<'_>, s: &str) -> PyResult<DeviceChoice> {
    match s {
        "auto" => Ok(DeviceChoice::Auto),
        "gpu" => Ok(DeviceChoice::Gpu),
        "cpu" => Ok(DeviceChoice::Cpu),
        other => Err(invalid(py, format!("device must be \"auto\", \"gpu\" or \"cpu\", not {other:?}"))),
    }
}

/// `ep=`: cpu or cuda.
pub fn ep(py: Python<'_>, s: &str) -> PyResult<ExecutionProvider> {
    match s {
        "cpu" => Ok(ExecutionProvider::Cpu),
        "cuda" => Ok(ExecutionProvider::Cuda),
        other => Err(invalid(py, format!("ep (execution provider) must be \"cpu\" or \"cuda\", not {other:?}"))),
    }
}

/// A class: an int id (≥ 0) or a string (a label name, a numeric id, or `top1`).
pub fn class_spec(py: Python<'_>, obj: &Bound<'_, PyAny>, name: &str) -> PyResult<ClassSpec> {
    if let Ok(s) = obj.cast::<PyString>() {
        return ClassSpec::from_str(&s.to_string()).map_err(|e| invalid(py, format!("{name}: {e}")));
    }
    // Ints by the one rule of every int argument (numpy's integer scalars too), reported as given.
    match integer(py, obj) {
        Some(Integer::Value(v)) if v < 0 => {
            return Err(invalid(py, format!("{name}: class id {v} is negative: ids start at 0")))
        }
        Some(Integer::Value(v)) => {
            return usize::try_from(v).map(ClassSpec::Id).map_err(|_| {
                invalid(py, format!("{name}: class id {v} is out of range: no model has that many classes"))
            })
        }
        Some(Integer::Huge(v)) => {
            return Err(invalid(py, format!("{name}: class id {v} is out of range: no model has that many classes")))
        }
        None => {}
    }
    Err(invalid(py, format!("{name} must be a class id (int) or a label name (str), got {}", repr(obj))))
}

fn repr(obj: &Bound<'_, PyAny>) -> String {
    obj.repr().map(|r| r.to_string()).unwrap_or_else(|_| "?".into())
}

/// The keyword arguments of one call, taken one by one; what is left at the end is unknown.
pub struct Settings<'py> {
    py: Python<'py>,
    command: &'static str,
    items: Vec<(String, Bound<'py, PyAny>)>,
    known: Vec<&'static str>,
}

impl<'py> Settings<'py> {
    pub fn new(py: Python<'py>, dict: &Bound<'py, PyDict>, command: &'static str) -> PyResult<Self> {
        let mut items: Vec<(String, Bound<'py, PyAny>)> = Vec::new();
        for (k, v) in dict.iter() {
            let raw: String = k.extract()?;
            // class_ (Python keyword) and the command line's dashes.
            let name = raw.trim_end_matches('_').replace('-', "_");
            if items.iter().any(|(n, _)| *n == name) {
                return Err(invalid(py, format!("setting {name:?} given twice (as {raw:?} and another spelling)")));
            }
            items.push((name, v));
        }
        Ok(Self { py, command, items, known: vec![] })
    }

    fn take(&mut self, name: &'static str) -> Option<Bound<'py, PyAny>> {
        self.known.push(name);
        let i = self.items.iter().position(|(n, _)| n == name)?;
        Some(self.items.remove(i).1)
    }

    fn usize(&mut self, name: &'static str, into: &mut usize) -> PyResult<()> {
        if let Some(v) = self.take(name) {
            *into = usize::try_from(non_negative_int(self.py, &v, name)?).unwrap_or(usize::MAX);
        }
        Ok(())
    }

    fn u32(&mut self, name: &'static str, into: &mut u32) -> PyResult<()> {
        if let Some(v) = self.take(name) {
            let n = non_negative_int(self.py, &v, name)?;
            *into = u32::try_from(n).map_err(|_| invalid(self.py, format!("{name} = {n} is too large")))?;
        }
        Ok(())
    }

    fn f32(&mut self, name: &'static str, into: &mut f32) -> PyResult<()> {
        if let Some(v) = self.take(name) {
            *into = number(self.py, &v, name)? as f32;
        }
        Ok(())
    }

    fn bool(&mut self, name: &'static str, into: &mut bool) -> PyResult<()> {
        if let Some(v) = self.take(name) {
            *into = boolean(self.py, &v, name)?;
        }
        Ok(())
    }

    /// A value the library parses from text (`objective="paper"`).
    fn parsed<T: FromStr<Err = String>>(&mut self, name: &'static str, into: &mut T) -> PyResult<()> {
        if let Some(v) = self.take(name) {
            let s = v
                .cast::<PyString>()
                .map_err(|_| invalid(self.py, format!("{name} must be a string, got {}", repr(&v))))?;
            *into = T::from_str(&s.to_string()).map_err(|e| invalid(self.py, format!("{name}: {e}")))?;
        }
        Ok(())
    }

    /// `baseline`: "zero", "blur" or a number.
    fn baseline(&mut self, into: &mut Baseline) -> PyResult<()> {
        if let Some(v) = self.take("baseline") {
            let text = match v.cast::<PyString>() {
                Ok(s) => s.to_string(),
                Err(_) => number(self.py, &v, "baseline")?.to_string(),
            };
            *into = Baseline::from_str(&text).map_err(|e| invalid(self.py, e))?;
        }
        Ok(())
    }

    /// A list of ints, or the command line's comma-separated text (`sizes=[30, 45]`, `sizes="30,45"`).
    fn u32_list(&mut self, name: &'static str) -> PyResult<Option<Vec<u32>>> {
        let Some(v) = self.take(name) else { return Ok(None) };
        let py = self.py;
        let bad =
            || invalid(py, format!("{name} must be a list of non-negative ints or \"A,B,...\", got {}", repr(&v)));
        if let Ok(s) = v.cast::<PyString>() {
            return s
                .to_string()
                .split(',')
                .map(|t| t.trim().parse::<u32>().map_err(|_| bad()))
                .collect::<PyResult<_>>()
                .map(Some);
        }
        let items: Vec<Bound<'py, PyAny>> = v.try_iter().map_err(|_| bad())?.collect::<PyResult<_>>()?;
        items
            .iter()
            .map(|x| non_negative_int(py, x, name).and_then(|n| u32::try_from(n).map_err(|_| bad())))
            .collect::<PyResult<_>>()
            .map(Some)
    }

    /// `insertion_start`: "blur", "zero", "blur,zero" or a list of them.
    fn insertion_starts(&mut self, into: &mut Vec<InsertionStart>) -> PyResult<()> {
        let Some(v) = self.take("insertion_start") else { return Ok(()) };
        let py = self.py;
        let names: Vec<String> = match v.cast::<PyString>() {
            Ok(s) => s.to_string().split(',').map(|t| t.trim().to_string()).collect(),
            Err(_) => v
                .try_iter()
                .and_then(|it| it.map(|x| x?.extract::<String>()).collect::<PyResult<Vec<_>>>())
                .map_err(|_| {
                    invalid(
                        py,
                        format!(
                            "insertion_start must be \"blur\", \"zero\", \"blur,zero\" or a list of them, got {}",
                            repr(&v)
                        ),
                    )
                })?,
        };
        *into = names
            .iter()
            .map(|n| match n.as_str() {
                "blur" => Ok(InsertionStart::Blur),
                "zero" => Ok(InsertionStart::Zero),
                other => Err(invalid(py, format!("insertion_start: unknown start {other:?} (expected blur or zero)"))),
            })
            .collect::<PyResult<_>>()?;
        Ok(())
    }

    fn class(&mut self, into: &mut ClassSpec) -> PyResult<()> {
        if let Some(v) = self.take("class") {
            *into = class_spec(self.py, &v, "class_")?;
        }
        Ok(())
    }

    /// `metrics=False` or the command line's `no_metrics=True`.
    fn metrics(&mut self, into: &mut bool) -> PyResult<()> {
        self.bool("metrics", into)?;
        let mut no = !*into;
        self.bool("no_metrics", &mut no)?;
        *into = !no;
        Ok(())
    }

    /// `borex refine`'s settings (besides the image, the prior, iters and seed).
    pub fn refine(&mut self) -> PyResult<RefineSettings> {
        let mut s = RefineSettings::default();
        self.class(&mut s.class)?;
        s.config.sizes = self.u32_list("sizes")?.or(s.config.sizes);
        self.f32("kappa", &mut s.config.kappa)?;
        self.f32("gain", &mut s.config.gain)?;
        let mut fixed = !s.config.refit;
        self.bool("fixed_length_scales", &mut fixed)?;
        s.config.refit = !fixed;
        self.usize("refit_every", &mut s.config.refit_every)?;
        self.usize("stride", &mut s.config.stride)?;
        self.baseline(&mut s.config.baseline)?;
        self.parsed("objective", &mut s.config.objective)?;
        self.parsed("readout", &mut s.config.readout)?;
        self.parsed("prior_mean", &mut s.config.prior_mean)?;
        self.bool("relative_gain", &mut s.config.relative_gain)?;
        if let Some(v) = self.take("budget") {
            if !v.is_none() {
                s.budget = Some(usize::try_from(non_negative_int(self.py, &v, "budget")?).unwrap_or(usize::MAX));
            }
        }
        self.insertion_starts(&mut s.insertion_starts)?;
        self.metrics(&mut s.metrics)?;
        self.usize("batch", &mut s.batch)?;
        self.bool("full_res", &mut s.full_res)?;
        Ok(s)
    }

    /// `borex explain`'s settings that shape the map (besides the image and the method).
    pub fn explain(&mut self) -> PyResult<ExplainSettings> {
        // Python gets the map only: its insertion/deletion are not computed (Engine.evaluate scores a map).
        let mut s = ExplainSettings { metrics: false, ..ExplainSettings::default() };
        self.class(&mut s.class)?;
        if let Some(v) = self.take("seed") {
            s.seed = non_negative_int(self.py, &v, "seed")?;
        }
        if let Some(v) = self.take("masks") {
            s.masks = Some(usize::try_from(non_negative_int(self.py, &v, "masks")?).unwrap_or(usize::MAX));
        }
        self.u32("window", &mut s.occlusion.window)?;
        self.u32("stride", &mut s.occlusion.stride)?;
        if let Some(scales) = self.u32_list("scales")? {
            s.scales = scales;
        }
        self.baseline(&mut s.baseline)?;
        self.usize("batch", &mut s.batch)?;
        Ok(s)
    }

    /// What `Engine.evaluate` takes: the class, the insertion starts, the batch.
    pub fn evaluate(&mut self) -> PyResult<EvaluateSettings> {
        let mut s = EvaluateSettings::default();
        self.class(&mut s.class)?;
        self.insertion_starts(&mut s.insertion_starts)?;
        self.usize("batch", &mut s.batch)?;
        Ok(s)
    }

    /// `borex counterfactual`'s settings (besides the image, the target, eps and p).
    pub fn counterfactual(&mut self) -> PyResult<CounterfactualSettings> {
        let mut s = CounterfactualSettings::default();
        self.usize("steps", &mut s.steps)?;
        self.usize("restarts", &mut s.restarts)?;
        if let Some(v) = self.take("seed") {
            s.seed = non_negative_int(self.py, &v, "seed")?;
        }
        self.f32("change_threshold", &mut s.change_threshold)?;
        self.usize("batch", &mut s.batch)?;
        Ok(s)
    }

    /// Every keyword was a known setting, or an error naming the first unknown one and the known ones.
    pub fn finish(self) -> PyResult<()> {
        if let Some((name, _)) = self.items.first() {
            return Err(invalid(
                self.py,
                format!("unknown setting {name:?} for {}; known: {}", self.command, self.known.join(", ")),
            ));
        }
        Ok(())
    }
}
