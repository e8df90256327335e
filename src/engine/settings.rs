//! One settings type per operation: the single source of every setting's
//! name, default and check, for every front end. The command line turns its
//! flags into these types (one conversion per subcommand, defaults read from
//! `Default`), Python its keyword arguments (through serde, one generic path),
//! a config file could deserialize them. A bad value is a
//! [`BorexError::Setting`] naming the setting by the field's name here, which
//! each front end spells its own way (`--budget`, `budget=`).
//!
//! The serde form is flat and uses the command line's value syntax: a class
//! is `"top1"`, an id or a label; a prior a method name or a map file; a list
//! a list or the flag's comma-separated text (`"blur,zero"`); a baseline
//! `"zero"`, `"blur"` or a number.

use super::Prior;
use crate::compute::Baseline;
use crate::error::{BorexError, Result};
use crate::explain::{Method, OcclusionParams, RiseParams};
use crate::job::ClassSpec;
use crate::metrics::InsertionStart;
use crate::model::Classifier;
use crate::refine::budget::BudgetPlan;
use crate::refine::full_res::Readout;
use crate::refine::{PriorMean, RefineConfig, RefineJob, RefineObjective};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Settings of [`super::Engine::refine`] and `borex refine`; `Default` is the command line's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RefineSettings {
    /// The class to explain.
    #[serde(with = "class_text")]
    pub class: ClassSpec,
    /// The prior map: a method's name or a map file (a map in memory has no serde form).
    #[serde(with = "prior_text")]
    pub prior: Prior,
    /// Observations (each is two model evaluations).
    pub iters: usize,
    /// Seed of the prior's masks and the query jitter.
    pub seed: u64,
    /// Box half-widths in model pixels; `None` scales 30, 45, 60, 75 to the input.
    #[serde(with = "opt_list_text")]
    pub sizes: Option<Vec<u32>>,
    /// UCB exploration weight κ.
    pub kappa: f32,
    /// Objective gain g.
    pub gain: f32,
    /// Keep the length scales at their initial values instead of refitting them.
    pub fixed_length_scales: bool,
    /// Refit the length scales only every K-th query.
    pub refit_every: usize,
    /// Search for the next box on every S-th row and column only.
    pub stride: usize,
    /// What removed pixels become.
    #[serde(with = "baseline_text")]
    pub baseline: Baseline,
    /// What a query measures, or `antithetic`: the same evaluations on the
    /// complements of the RISE prior's masks instead of box queries. `None`
    /// (the default): [`objective_for`](Self::objective_for) the prior.
    pub objective: Option<RefineObjective>,
    /// How the map is read from the GP posterior mean.
    #[serde(with = "parsed")]
    pub readout: Readout,
    /// The GP's prior mean from the prior map.
    #[serde(with = "parsed")]
    pub prior_mean: PriorMean,
    /// Divide the gain by the class's probability on the whole image.
    pub relative_gain: bool,
    /// Insertion starts to score; the first is the report's `insertion`.
    #[serde(rename = "insertion_start", with = "list_text")]
    pub insertion_starts: Vec<InsertionStart>,
    /// Score insertion/deletion of both maps.
    pub metrics: bool,
    /// Images per model call.
    pub batch: usize,
    /// Also evaluate the refined map at the original resolution.
    pub full_res: bool,
    /// Model evaluations of the prior and the queries together: replaces
    /// `iters` and, unless the prior's name gives `+masks=N`, a RISE prior's
    /// mask count ([`crate::refine::budget`]).
    pub budget: Option<usize>,
}

impl Default for RefineSettings {
    fn default() -> Self {
        let c = RefineConfig::default();
        Self {
            class: ClassSpec::Top1,
            prior: Prior::default(),
            iters: c.iters,
            seed: c.seed,
            sizes: c.sizes.clone(),
            kappa: c.kappa,
            gain: c.gain,
            fixed_length_scales: !c.refit,
            refit_every: c.refit_every,
            stride: c.stride,
            baseline: c.baseline,
            objective: None,
            readout: c.readout,
            prior_mean: c.prior_mean,
            relative_gain: c.relative_gain,
            insertion_starts: vec![InsertionStart::Blur],
            metrics: true,
            batch: 32,
            full_res: false,
            budget: None,
        }
    }
}

impl RefineSettings {
    /// The objective these settings run with `prior`: the one given, else the
    /// default, decided here and nowhere else: `antithetic` for a RISE prior
    /// (`rise-fast`, the default prior, `rise`, `+masks=N`; issue #24,
    /// docs/quality.md), unless a setting that only box queries use
    /// differs from its default (then the box default, `matched`, as for any
    /// other prior: it has no masks to continue).
    pub fn objective_for(&self, prior: &Prior) -> Result<RefineObjective> {
        if let Some(o) = self.objective {
            return Ok(o);
        }
        let rise = self.is_rise(prior)?;
        Ok(if rise && !self.asks_for_boxes() { RefineObjective::Antithetic } else { RefineObjective::BOXES_DEFAULT })
    }

    /// Whether `prior` is RISE (its masks are what the antithetic continuation continues).
    fn is_rise(&self, prior: &Prior) -> Result<bool> {
        Ok(matches!(prior.spec(self.seed)?, crate::refine::PriorSpec::Method(crate::explain::Method::Rise(_))))
    }

    /// Whether a setting only box queries use differs from its default.
    fn asks_for_boxes(&self) -> bool {
        let d = Self::default();
        self.sizes != d.sizes
            || self.kappa != d.kappa
            || self.gain != d.gain
            || self.fixed_length_scales != d.fixed_length_scales
            || self.refit_every != d.refit_every
            || self.stride != d.stride
            || self.readout != d.readout
            || self.prior_mean != d.prior_mean
            || self.relative_gain
            || self.full_res
    }

    /// The loop's knobs with `prior`'s objective ([`objective_for`](Self::objective_for));
    /// the rest of [`RefineConfig`] keeps its defaults.
    pub fn config_for(&self, prior: &Prior) -> Result<RefineConfig> {
        let mut c = self.knobs();
        self.objective_for(prior)?.apply(&mut c);
        Ok(c)
    }

    fn knobs(&self) -> RefineConfig {
        RefineConfig {
            iters: self.iters,
            sizes: self.sizes.clone(),
            kappa: self.kappa,
            gain: self.gain,
            refit: !self.fixed_length_scales,
            refit_every: self.refit_every,
            stride: self.stride,
            seed: self.seed,
            baseline: self.baseline,
            readout: self.readout,
            prior_mean: self.prior_mean,
            relative_gain: self.relative_gain,
            ..RefineConfig::default()
        }
    }

    /// Every setting checked, before any model is loaded (the prior: `prior`).
    pub fn validate_with(&self, prior: &Prior) -> Result<()> {
        prior.check(self.seed)?;
        let config = self.config_for(prior)?;
        config.validate()?;
        crate::limits::in_range("batch", self.batch, 1, crate::limits::MAX_BATCH)?;
        if let Some(b) = self.budget {
            crate::limits::in_range("budget", b, 1, crate::limits::MAX_BUDGET)?;
        }
        if self.insertion_starts.is_empty() && self.metrics {
            return Err(BorexError::setting(
                "insertion_start",
                None,
                "is empty: give at least one start (blur or zero)",
            ));
        }
        if config.refiner == crate::refine::Refiner::Antithetic {
            self.check_antithetic(prior)?;
        }
        Ok(())
    }

    /// The antithetic continuation needs a RISE prior's masks and has no GP:
    /// a non-RISE prior, `relative_gain` and `full_res` are refused, naming the fix.
    fn check_antithetic(&self, prior: &Prior) -> Result<()> {
        if !self.is_rise(prior)? {
            return Err(BorexError::setting(
                "objective",
                Some("antithetic".into()),
                format!(
                    "continues a RISE prior's masks, and the prior {prior} is not RISE: use the prior rise-fast (or rise, rise-fast+masks=N), or a box objective ({})",
                    crate::refine::Objective::NAMES.join(", ")
                ),
            ));
        }
        for (name, on) in [("relative_gain", self.relative_gain), ("full_res", self.full_res)] {
            if on {
                return Err(BorexError::setting(
                    name,
                    None,
                    "applies to box queries, not to the objective antithetic (no box queries, no GP): leave it out or use a box objective",
                ));
            }
        }
        Ok(())
    }

    /// [`validate_with`](Self::validate_with) the settings' own prior.
    pub fn validate(&self) -> Result<()> {
        self.validate_with(&self.prior)
    }

    /// The pipeline's job for `image` with `prior`, writing to `out_dir`
    /// (empty: nothing is written), every setting checked; `budget` is not
    /// spent (that needs the model: [`budgeted_job`](Self::budgeted_job)).
    pub fn job(&self, image: PathBuf, out_dir: PathBuf, prior: &Prior) -> Result<RefineJob> {
        self.validate_with(prior)?;
        Ok(RefineJob {
            image,
            class: self.class.clone(),
            prior: prior.spec(self.seed)?,
            config: self.config_for(prior)?,
            out_dir,
            full_res: self.full_res,
            insertion_starts: self.insertion_starts.clone(),
            metrics: self.metrics,
            batch: self.batch,
            notes: vec![],
        })
    }

    /// [`job`](Self::job) with `budget` spent for `model`'s input: its plan
    /// returned, its note in the job's notes.
    pub fn budgeted_job(
        &self,
        image: PathBuf,
        out_dir: PathBuf,
        prior: &Prior,
        model: &Classifier,
    ) -> Result<(RefineJob, Option<BudgetPlan>)> {
        let mut job = self.job(image, out_dir, prior)?;
        let plan = match self.budget {
            Some(b) => Some(crate::refine::budget::apply(&mut job, b, prior.masks_given(), model)?),
            None => None,
        };
        Ok((job, plan))
    }
}

/// Settings of [`super::Engine::explain`] and `borex explain`; `Default` is `borex explain -m rise`'s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExplainSettings {
    /// The method (its serde form is the name: rise, rise-fast, occlusion,
    /// cam, gradcam, gradcam++, cameras, undesirable); its masks' seed is `seed`.
    #[serde(with = "method_text")]
    pub method: Method,
    /// The class to explain.
    #[serde(with = "class_text")]
    pub class: ClassSpec,
    /// Seed of RISE's masks.
    pub seed: u64,
    /// RISE: the number of masks, overriding the preset's.
    pub masks: Option<usize>,
    /// Occlusion: window side in pixels.
    pub window: u32,
    /// Occlusion: step between windows in pixels.
    pub stride: u32,
    /// CAMERAS: input sizes.
    #[serde(with = "list_text")]
    pub scales: Vec<u32>,
    /// What removed pixels become.
    #[serde(with = "baseline_text")]
    pub baseline: Baseline,
    /// Score insertion/deletion of the map.
    pub metrics: bool,
    /// Insertion starts to score.
    #[serde(rename = "insertion_start", with = "list_text")]
    pub insertion_starts: Vec<InsertionStart>,
    /// Images per model call.
    pub batch: usize,
    /// Also explain the model with its head randomised and compare.
    pub sanity: bool,
}

impl Default for ExplainSettings {
    fn default() -> Self {
        let occlusion = OcclusionParams::default();
        Self {
            method: Method::parse("rise", 0).expect("a method"),
            class: ClassSpec::Top1,
            seed: 0,
            masks: None,
            window: occlusion.window,
            stride: occlusion.stride,
            scales: vec![224, 324, 424, 524],
            baseline: Baseline::Zero,
            metrics: true,
            insertion_starts: vec![InsertionStart::Blur],
            batch: 32,
            sanity: false,
        }
    }
}

impl ExplainSettings {
    /// The method with these settings' parameters, checked (what `borex explain` runs).
    pub fn method(&self) -> Result<Method> {
        let mut method = self.method.clone().with_seed(self.seed);
        match &mut method {
            Method::Rise(p) | Method::RiseAntithetic { rise: p, .. } => {
                if let Some(n) = self.masks {
                    *p = RiseParams { n, ..*p };
                }
            }
            // Undesirable pixels are made from RISE masks: `masks` counts them too.
            Method::Undesirable(p) => {
                if let Some(n) = self.masks {
                    p.rise = RiseParams { n, ..p.rise };
                }
            }
            Method::Occlusion(p) => *p = OcclusionParams { window: self.window, stride: self.stride },
            Method::Cameras { scales } => *scales = self.scales.clone(),
            _ => {}
        }
        method.validate()?;
        Ok(method)
    }

    /// The pipeline's job for `image`, writing to `out_dir` (empty: nothing
    /// is written); every setting checked, before any model is loaded.
    pub fn job(&self, image: PathBuf, out_dir: PathBuf) -> Result<crate::explain::ExplainJob> {
        let method = self.method()?;
        crate::limits::in_range("batch", self.batch, 1, crate::limits::MAX_BATCH)?;
        Ok(crate::explain::ExplainJob {
            image,
            class: self.class.clone(),
            method,
            baseline: self.baseline,
            out_dir,
            metrics: self.metrics,
            insertion_starts: self.insertion_starts.clone(),
            batch: self.batch,
            sanity: self.sanity,
        })
    }
}

/// Settings of [`super::Engine::evaluate`]; `Default` scores like `borex refine`'s metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvaluateSettings {
    /// The class whose probability is scored.
    #[serde(with = "class_text")]
    pub class: ClassSpec,
    /// Insertion starts to score; the first is `insertion`.
    #[serde(rename = "insertion_start", with = "list_text")]
    pub insertion_starts: Vec<InsertionStart>,
    /// Images per model call.
    pub batch: usize,
}

impl Default for EvaluateSettings {
    fn default() -> Self {
        Self { class: ClassSpec::Top1, insertion_starts: vec![InsertionStart::Blur], batch: 32 }
    }
}

impl EvaluateSettings {
    /// Every setting checked.
    pub fn validate(&self) -> Result<()> {
        crate::limits::in_range("batch", self.batch, 1, crate::limits::MAX_BATCH)?;
        if self.insertion_starts.is_empty() {
            return Err(BorexError::setting(
                "insertion_start",
                None,
                "is empty: give at least one start (blur or zero)",
            ));
        }
        Ok(())
    }
}

/// Settings of [`super::Engine::counterfactual`] and `borex counterfactual`; `Default` is the command line's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CounterfactualSettings {
    /// Radius of the l_p ball in [0, 1] pixel units.
    pub eps: f64,
    /// The norm's p, 1 < p < ∞.
    pub p: f64,
    /// Auto-Frank-Wolfe steps.
    pub steps: usize,
    /// Runs per target.
    pub restarts: usize,
    /// Seed of the restarts.
    pub seed: u64,
    /// |δ| above this counts a pixel as changed.
    pub change_threshold: f32,
    /// Images per model call.
    pub batch: usize,
}

impl Default for CounterfactualSettings {
    fn default() -> Self {
        let afw = crate::counterfactual::AfwConfig::default();
        Self {
            // The paper's radius for l1.5 on 224² ImageNet images (AfwConfig's 15 is the optimiser's own).
            eps: 12.0,
            p: afw.p,
            steps: afw.steps,
            restarts: afw.restarts,
            seed: afw.seed,
            change_threshold: 0.01,
            batch: crate::counterfactual::DEFAULT_BATCH,
        }
    }
}

impl CounterfactualSettings {
    /// The job for `image` towards `targets`, writing to `out_dir` (empty: nothing is written), checked.
    pub fn job(
        &self,
        image: PathBuf,
        targets: crate::counterfactual::Targets,
        out_dir: PathBuf,
    ) -> Result<crate::counterfactual::CounterfactualJob> {
        let job = crate::counterfactual::CounterfactualJob {
            image,
            targets,
            afw: crate::counterfactual::AfwConfig {
                eps: self.eps,
                p: self.p,
                steps: self.steps,
                restarts: self.restarts,
                seed: self.seed,
                ..crate::counterfactual::AfwConfig::default()
            },
            threshold: self.change_threshold,
            batch: self.batch,
            out_dir,
        };
        job.validate()?;
        Ok(job)
    }
}

/// A value the library parses from text (`"paper"`), serialized as its type does.
mod parsed {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::str::FromStr;

    pub fn serialize<T: Serialize, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        v.serialize(s)
    }

    pub fn deserialize<'de, T: FromStr<Err = String>, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A method by its name.
mod method_text {
    use crate::explain::Method;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(m: &Method, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&m.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Method, D::Error> {
        String::deserialize(d)?
            .parse::<Method>()
            .map_err(|e| serde::de::Error::custom(e.to_string().trim_start_matches("invalid input: ").to_string()))
    }
}

/// A class: `"top1"`, an id (≥ 0) or a label name; the id's sign checked here, with its own message.
mod class_text {
    use crate::job::ClassSpec;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &ClassSpec, s: S) -> Result<S::Ok, S::Error> {
        v.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ClassSpec, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Id(u64),
            Negative(i64),
            Text(String),
        }
        let raw = Raw::deserialize(d)
            .map_err(|_| serde::de::Error::custom("invalid type: expected a class id (int) or a label name (str)"))?;
        match raw {
            Raw::Text(t) => t.parse().map_err(serde::de::Error::custom),
            Raw::Negative(i) => Err(serde::de::Error::custom(format!("class id {i} is negative: ids start at 0"))),
            Raw::Id(i) => usize::try_from(i).map(ClassSpec::Id).map_err(|_| {
                serde::de::Error::custom(format!("class id {i} is out of range: no model has that many classes"))
            }),
        }
    }
}

/// `"zero"`, `"blur"`, or a number (the constant).
mod baseline_text {
    use crate::compute::Baseline;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Baseline, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Baseline::Constant(c) => s.serialize_f32(*c),
            other => s.serialize_str(&other.to_string()),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Baseline, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(f64),
            Text(String),
        }
        let text = match Raw::deserialize(d)
            .map_err(|_| serde::de::Error::custom("invalid type: expected \"zero\", \"blur\" or a number"))?
        {
            Raw::Number(v) => v.to_string(),
            Raw::Text(t) => t,
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A list, or the command line's comma-separated text (`"blur,zero"`, `"30,45"`).
mod list_text {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::str::FromStr;

    pub fn serialize<T: Serialize, S: Serializer>(v: &[T], s: S) -> Result<S::Ok, S::Error> {
        v.serialize(s)
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<Vec<T>, D::Error>
    where
        T: Deserialize<'de> + FromStr,
        T::Err: std::fmt::Display,
        D: Deserializer<'de>,
    {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Item<T> {
            Text(String),
            Value(T),
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw<T> {
            List(Vec<Item<T>>),
            Text(String),
        }
        let parse = |x: &str| x.trim().parse::<T>().map_err(|e| serde::de::Error::custom(format!("{x:?}: {e}")));
        match Raw::<T>::deserialize(d)
            .map_err(|_| serde::de::Error::custom("invalid type: expected a list or comma-separated text (\"A,B\")"))?
        {
            Raw::List(v) => v
                .into_iter()
                .map(|i| match i {
                    Item::Text(t) => parse(&t),
                    Item::Value(v) => Ok(v),
                })
                .collect(),
            Raw::Text(t) => t.split(',').map(parse).collect(),
        }
    }
}

/// [`list_text`], or null for none.
mod opt_list_text {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u32>>, s: S) -> Result<S::Ok, S::Error> {
        v.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u32>>, D::Error> {
        #[derive(Deserialize)]
        struct Wrap(#[serde(with = "super::list_text")] Vec<u32>);
        Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
    }
}

/// A prior as text: a method's name, else a map file ([`Prior::parse`]).
mod prior_text {
    use super::Prior;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Prior, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Prior::Method(m) => s.serialize_str(m),
            Prior::File(p) => s.serialize_str(&p.display().to_string()),
            Prior::Map(_) => Err(serde::ser::Error::custom("a prior map in memory has no text form")),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Prior, D::Error> {
        Ok(Prior::parse(&String::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_objective_is_antithetic_for_a_rise_prior_only() {
        let d = RefineSettings::default();
        let of = |s: &RefineSettings, p: &str| s.objective_for(&Prior::parse(p)).unwrap();
        for p in ["rise-fast", "rise", "rise-fast+masks=40"] {
            assert_eq!(of(&d, p), RefineObjective::Antithetic, "{p}");
        }
        for p in ["gradcam", "occlusion", "rise-fast+antithetic=100"] {
            assert_eq!(of(&d, p), RefineObjective::BOXES_DEFAULT, "{p}");
        }
        // A box-only setting keeps box queries; a given objective is kept whatever the prior.
        assert_eq!(of(&RefineSettings { kappa: 2.0, ..d.clone() }, "rise-fast"), RefineObjective::BOXES_DEFAULT);
        assert_eq!(of(&RefineSettings { full_res: true, ..d.clone() }, "rise-fast"), RefineObjective::BOXES_DEFAULT);
        let matched = RefineSettings { objective: Some(RefineObjective::BOXES_DEFAULT), ..d.clone() };
        assert_eq!(of(&matched, "rise-fast"), RefineObjective::BOXES_DEFAULT);
        let job = d.job("x.png".into(), "".into(), &Prior::default()).unwrap();
        assert_eq!(job.settings().unwrap()["--objective"], "antithetic");
    }

    #[test]
    fn settings_read_back_through_serde() {
        let r = RefineSettings::default();
        let back: RefineSettings = serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        let e = ExplainSettings::default();
        assert_eq!(serde_json::from_value::<ExplainSettings>(serde_json::to_value(&e).unwrap()).unwrap(), e);
        let c = CounterfactualSettings::default();
        assert_eq!(serde_json::from_value::<CounterfactualSettings>(serde_json::to_value(&c).unwrap()).unwrap(), c);
    }

    #[test]
    fn the_command_lines_value_syntax_reads() {
        let s: RefineSettings = serde_json::from_value(serde_json::json!({
            "class": 3, "sizes": "30,45", "insertion_start": "blur,zero", "baseline": 0.5, "objective": "paper",
            "prior": "rise+masks=40",
        }))
        .unwrap();
        assert_eq!(s.class, ClassSpec::Id(3));
        assert_eq!(s.sizes, Some(vec![30, 45]));
        assert_eq!(s.insertion_starts, [InsertionStart::Blur, InsertionStart::Zero]);
        assert_eq!(s.baseline, Baseline::Constant(0.5));
        assert_eq!(s.objective, Some(RefineObjective::Boxes(crate::refine::Objective::Paper)));
        let a: RefineSettings = serde_json::from_value(serde_json::json!({"objective": "antithetic"})).unwrap();
        assert_eq!(a.config_for(&Prior::default()).unwrap().refiner, crate::refine::Refiner::Antithetic);
        assert_eq!(serde_json::to_value(&a).unwrap()["objective"], "antithetic");
        assert_eq!(s.prior, Prior::Method("rise+masks=40".into()));
        let unknown = serde_json::from_value::<RefineSettings>(serde_json::json!({"budgett": 3})).unwrap_err();
        assert!(unknown.to_string().contains("budgett"), "{unknown}");
        let negative = serde_json::from_value::<RefineSettings>(serde_json::json!({"class": -2})).unwrap_err();
        assert!(negative.to_string().contains("class id -2 is negative"), "{negative}");
    }
}
