//! `borex eval`: score every method's map (and, with refinement, its refined
//! maps) on a set of images with insertion/deletion, then summarise with
//! paired tests and plots. Each (image, method, seed) result is written to
//! its own file as soon as it exists, so a rerun skips finished work and a
//! failing image loses nothing else.

pub mod mosaic;
pub mod plots;
pub mod summary;

use crate::compute::{Backend, Baseline, ImageKernels};
use crate::error::{BorexError, Result};
use crate::explain::Method;
use crate::job::{ms, ClassSpec, Prepared};
use crate::metrics::{causal_curve, CausalMetric, InsertionStart};
use crate::model::{Classifier, Scorer};
use crate::output;
use crate::refine::pipeline::compute_prior;
use crate::refine::{refine, Objective, PriorSpec, RefineConfig};
use ndarray::{Array2, ArrayView2, ArrayView3};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One refinement setting to compare with the prior: an objective, for the
/// paper objective its baseline, and the map readout. Written
/// `OBJECTIVE[:BASELINE][+READOUT][+PRIOR_MEAN][+KEY=VALUE…]`, e.g.
/// `matched+point+fitted+kappa=2+sizes=15/30`.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    pub label: String,
    pub config: RefineConfig,
}

impl Variant {
    pub fn parse(spec: &str, base: &RefineConfig) -> Result<Self> {
        let mut parts = spec.trim().split('+');
        let spec_main = parts.next().unwrap_or_default();
        let (obj, baseline) = match spec_main.split_once(':') {
            Some((o, b)) => (o, Some(b)),
            None => (spec_main, None),
        };
        let objective: Objective = obj.parse().map_err(BorexError::invalid)?;
        let mut config = RefineConfig { objective, ..base.clone() };
        if let Some(b) = baseline {
            config.baseline = b.parse::<Baseline>().map_err(BorexError::invalid)?;
        }
        // Each `+` suffix is a readout (window, point), a prior mean (scaled,
        // fitted) or a knob: kappa=K, gain=G, iters=T, sizes=S1/S2/….
        for suffix in parts {
            if let Some((key, value)) = suffix.split_once('=') {
                let bad = |e: &dyn std::fmt::Display| BorexError::invalid(format!("{spec:?}: {key}={value}: {e}"));
                match key {
                    "kappa" => config.kappa = value.parse().map_err(|e| bad(&e))?,
                    "gain" => config.gain = value.parse().map_err(|e| bad(&e))?,
                    "iters" => config.iters = value.parse().map_err(|e| bad(&e))?,
                    "sizes" => {
                        config.sizes = Some(
                            value
                                .split('/')
                                .map(str::parse)
                                .collect::<std::result::Result<_, _>>()
                                .map_err(|e| bad(&e))?,
                        )
                    }
                    _ => {
                        return Err(BorexError::invalid(format!(
                            "{spec:?}: unknown setting {key:?} (expected kappa, gain, iters or sizes)"
                        )))
                    }
                }
                config.validate()?;
                continue;
            }
            match (suffix.parse::<crate::refine::full_res::Readout>(), suffix.parse::<crate::refine::PriorMean>()) {
                (Ok(r), _) => config.readout = r,
                (_, Ok(m)) => config.prior_mean = m,
                (Err(a), Err(b)) => return Err(BorexError::invalid(format!("{spec:?}: {a}; {b}"))),
            }
        }
        Ok(Self { label: spec.trim().to_string(), config })
    }

    /// The label as a file name.
    fn file_stem(&self) -> String {
        self.label.replace([':', '/', '+', '='], "-")
    }
}

/// Everything `borex eval` needs besides the model and the backend.
#[derive(Debug, Clone)]
pub struct EvalJob {
    pub images: Vec<PathBuf>,
    /// Explainer names, or `file:PATTERN` map files with `{stem}` (validated by [`EvalJob::validate`]).
    pub methods: Vec<String>,
    pub seeds: Vec<u64>,
    /// Refinements to run on every prior; empty scores the priors only.
    pub variants: Vec<Variant>,
    /// What removed pixels become for the explainers.
    pub baseline: Baseline,
    pub out_dir: PathBuf,
    pub batch: usize,
    /// The command line, for the summary.
    pub command: String,
}

impl EvalJob {
    pub fn validate(&self) -> Result<()> {
        if self.images.is_empty() {
            return Err(BorexError::invalid("no images to evaluate (give IMAGES or --manifest FILE)"));
        }
        if self.methods.is_empty() || self.seeds.is_empty() {
            return Err(BorexError::invalid("--methods and --seeds need at least one value each"));
        }
        for m in &self.methods {
            match m.strip_prefix("file:") {
                Some(p) if !p.contains("{stem}") => return Err(BorexError::invalid(format!("method {m:?}: a map-file pattern needs {{stem}} (the image's file stem), e.g. file:maps/{{stem}}.npy"))),
                Some(_) => {}
                None if Method::parse(m, 0).is_none() => return Err(crate::explain::unknown_method(m)),
                None => {}
            }
        }
        let mut labels: Vec<&str> = self.variants.iter().map(|v| v.label.as_str()).collect();
        labels.sort();
        if labels.windows(2).any(|w| w[0] == w[1]) {
            return Err(BorexError::invalid("--objectives lists the same refinement twice"));
        }
        for v in &self.variants {
            v.config.validate()?;
        }
        Ok(())
    }

    /// A unique, file-safe key per image: its file stem, numbered on clashes.
    pub fn image_keys(&self) -> Vec<String> {
        let mut seen = std::collections::HashMap::<String, usize>::new();
        self.images
            .iter()
            .map(|p| {
                let stem: String =
                    p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "image".into());
                let stem: String =
                    stem.chars().map(|c| if c.is_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
                let n = seen.entry(stem.clone()).or_insert(0);
                *n += 1;
                if *n == 1 {
                    stem
                } else {
                    format!("{stem}-{n}")
                }
            })
            .collect()
    }

    fn row_dir(&self, key: &str, method: &str, seed: u64) -> PathBuf {
        self.out_dir.join("runs").join(key).join(file_safe(method)).join(format!("seed{seed}"))
    }
}

/// The three curves every map is scored with.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Scores {
    pub insertion_blur: f64,
    pub insertion_zero: f64,
    pub deletion: f64,
    /// P_c after each step, the untouched start first.
    pub curves: Curves,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Curves {
    pub insertion_blur: Vec<f32>,
    pub insertion_zero: Vec<f32>,
    pub deletion: Vec<f32>,
}

impl Scores {
    pub fn compute(
        scorer: &Scorer,
        kernels: &dyn ImageKernels,
        x: ArrayView3<f32>,
        map: ArrayView2<f32>,
        class: usize,
    ) -> Result<Self> {
        let ib = causal_curve(scorer, kernels, x, map, class, CausalMetric::Insertion, InsertionStart::Blur)?;
        let iz = causal_curve(scorer, kernels, x, map, class, CausalMetric::Insertion, InsertionStart::Zero)?;
        let d = causal_curve(scorer, kernels, x, map, class, CausalMetric::Deletion, InsertionStart::Blur)?;
        Ok(Self {
            insertion_blur: ib.auc as f64,
            insertion_zero: iz.auc as f64,
            deletion: d.auc as f64,
            curves: Curves { insertion_blur: ib.scores, insertion_zero: iz.scores, deletion: d.scores },
        })
    }

    /// Insertion (from `start`) minus deletion: the default metric with blur.
    pub fn ins_del(&self, start: InsertionStart) -> f64 {
        match start {
            InsertionStart::Blur => self.insertion_blur - self.deletion,
            InsertionStart::Zero => self.insertion_zero - self.deletion,
        }
    }
}

/// One scored map: a prior, or a prior refined under a variant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub image: PathBuf,
    pub key: String,
    pub class: usize,
    pub label: Option<String>,
    pub probability: f32,
    pub method: String,
    pub seed: u64,
    /// `None` for the prior, else the refinement's label.
    pub variant: Option<String>,
    /// What produced this record; a rerun with other settings recomputes it.
    pub settings: serde_json::Value,
    pub scores: Scores,
    pub time_ms: f64,
    /// E.g. a map file resized to the model input.
    #[serde(default)]
    pub notes: Vec<String>,
}

/// An image or (image, method, seed) that failed, with its one-line reason.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub image: PathBuf,
    pub what: String,
    pub error: String,
}

pub struct EvalOutcome {
    pub records: Vec<Record>,
    pub failures: Vec<Failure>,
    /// (image, method, seed) rows computed now / found done.
    pub computed: usize,
    pub skipped: usize,
}

fn read_record(path: &Path, settings: &serde_json::Value) -> Option<Record> {
    let r: Record = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    (r.settings == *settings).then_some(r)
}

/// Run (or resume) an evaluation and write every per-map record; the summary is
/// written by [`summary::write_all`].
pub fn run_eval(job: &EvalJob, model: &Classifier, backend: &Backend, quiet: bool) -> Result<EvalOutcome> {
    job.validate()?;
    output::prepare_dir(&job.out_dir)?;
    let scorer = Scorer::new(model, backend.image.as_ref(), job.batch);
    let keys = job.image_keys();
    let rows = job.images.len() * job.methods.len() * job.seeds.len();
    let bar = crate::progress::bar(rows as u64, "eval", quiet);
    let (mut records, mut failures, mut computed, mut skipped) = (vec![], vec![], 0, 0);
    let model_id = json_path(model.path());
    for (image, key) in job.images.iter().zip(&keys) {
        // Settings of every record this image needs; when all are on disk the image is not even loaded.
        let mut wanted = vec![];
        for method in &job.methods {
            for &seed in &job.seeds {
                let dir = job.row_dir(key, method, seed);
                let prior_settings = serde_json::json!({"model": model_id, "image": image, "method": method, "seed": seed, "baseline": format!("{:?}", job.baseline)});
                let mut row = vec![(dir.join("prior.json"), prior_settings.clone(), None)];
                for v in &job.variants {
                    let config = RefineConfig { seed, ..v.config.clone() };
                    let s = serde_json::json!({"prior": prior_settings, "refine": config, "refine_baseline": format!("{:?}", config.baseline)});
                    row.push((dir.join(format!("{}.json", v.file_stem())), s, Some((v, config))));
                }
                wanted.push((method, seed, dir, row));
            }
        }
        let done: Vec<Vec<Option<Record>>> =
            wanted.iter().map(|(_, _, _, row)| row.iter().map(|(p, s, _)| read_record(p, s)).collect()).collect();
        if done.iter().flatten().all(Option::is_some) {
            records.extend(done.into_iter().flatten().flatten());
            skipped += wanted.len();
            bar.inc(wanted.len() as u64);
            continue;
        }
        let prepared = match Prepared::new(image, model, &scorer, &ClassSpec::Top1) {
            Ok(p) => p,
            Err(e) => {
                failures.push(Failure { image: image.clone(), what: "image".into(), error: e.to_string() });
                bar.inc(wanted.len() as u64);
                continue;
            }
        };
        for ((method, seed, dir, row), done) in wanted.into_iter().zip(done) {
            if done.iter().all(Option::is_some) {
                records.extend(done.into_iter().flatten());
                skipped += 1;
                bar.inc(1);
                continue;
            }
            let ctx = RowCtx { job, model, backend, scorer: &scorer, prepared: &prepared, image, key, quiet };
            match ctx.run(method, seed, &dir, row, done) {
                Ok(r) => records.extend(r),
                Err(e) => failures.push(Failure {
                    image: image.clone(),
                    what: format!("{method} seed {seed}"),
                    error: e.to_string(),
                }),
            }
            computed += 1;
            bar.inc(1);
        }
    }
    bar.finish();
    Ok(EvalOutcome { records, failures, computed, skipped })
}

/// A method name as a folder or file name.
pub fn file_safe(s: &str) -> String {
    s.replace('+', "p").chars().map(|c| if c.is_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect()
}

/// A method's prior for one image: an explainer, or `file:PATTERN` with `{stem}`
/// replaced by the image's file stem (maps from another tool, e.g. the BOREx authors' code).
pub fn prior_spec(method: &str, image: &Path, seed: u64) -> PriorSpec {
    match method.strip_prefix("file:") {
        Some(pattern) => PriorSpec::File(PathBuf::from(
            pattern.replace("{stem}", &image.file_stem().unwrap_or_default().to_string_lossy()),
        )),
        None => PriorSpec::parse(method, seed),
    }
}

fn json_path(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

type Wanted<'a> = (PathBuf, serde_json::Value, Option<(&'a Variant, RefineConfig)>);

struct RowCtx<'a> {
    job: &'a EvalJob,
    model: &'a Classifier,
    backend: &'a Backend,
    scorer: &'a Scorer<'a>,
    prepared: &'a Prepared,
    image: &'a Path,
    key: &'a str,
    quiet: bool,
}

impl RowCtx<'_> {
    fn record(
        &self,
        method: &str,
        seed: u64,
        variant: Option<String>,
        settings: serde_json::Value,
        map: ArrayView2<f32>,
        t: Instant,
    ) -> Result<Record> {
        let p = self.prepared;
        let scores = Scores::compute(self.scorer, self.backend.image.as_ref(), p.pre.tensor.view(), map, p.class)?;
        Ok(Record {
            image: self.image.to_path_buf(),
            key: self.key.to_string(),
            class: p.class,
            label: self.model.labels().and_then(|l| l.name(p.class)).map(str::to_string),
            probability: p.probs[p.class],
            method: method.to_string(),
            seed,
            variant,
            settings,
            scores,
            time_ms: ms(t.elapsed()),
            notes: vec![],
        })
    }

    /// The prior (recomputed unless its record and map are on disk) and every missing refinement.
    fn run(
        &self,
        method: &str,
        seed: u64,
        dir: &Path,
        row: Vec<Wanted>,
        done: Vec<Option<Record>>,
    ) -> Result<Vec<Record>> {
        output::prepare_dir(dir)?;
        let prior_npy = dir.join("prior.npy");
        let mut out = vec![];
        let mut done = done.into_iter();
        let mut row = row.into_iter();
        let (prior_json, prior_settings, _) = row.next().expect("the prior comes first");
        let prior = match (done.next().flatten(), ndarray_npy::read_npy::<_, Array2<f32>>(&prior_npy).ok()) {
            (Some(r), Some(map)) => {
                out.push(r);
                map
            }
            _ => {
                let t = Instant::now();
                let spec = prior_spec(method, self.image, seed);
                let mut notes = vec![];
                let map = compute_prior(
                    &spec,
                    self.model,
                    self.scorer,
                    self.prepared,
                    self.job.baseline,
                    self.quiet,
                    &mut notes,
                )?;
                let r = Record { notes, ..self.record(method, seed, None, prior_settings, map.view(), t)? };
                output::write_npy(&prior_npy, &map)?;
                output::write_json(&prior_json, &r)?;
                out.push(r);
                map
            }
        };
        for ((path, settings, variant), have) in row.zip(done) {
            if let Some(r) = have {
                out.push(r);
                continue;
            }
            let (variant, config) = variant.expect("refinements carry their variant");
            let t = Instant::now();
            let refined = refine(
                self.scorer,
                self.backend.gp.as_ref(),
                self.prepared.pre.tensor.view(),
                self.prepared.class,
                prior.view(),
                &config,
                &crate::progress::NoProgress,
            )?;
            let r = self.record(method, seed, Some(variant.label.clone()), settings, refined.map.view(), t)?;
            output::write_npy(&path.with_extension("npy"), &refined.map)?;
            output::write_json(&path, &r)?;
            out.push(r);
        }
        Ok(out)
    }
}

/// Image paths from a manifest: one per line, relative to the manifest's folder;
/// blank lines and `#` comments are skipped. Missing images are not checked
/// here: they are reported per image and the rest continue.
pub fn read_manifest(path: &Path) -> Result<Vec<PathBuf>> {
    let text =
        std::fs::read_to_string(path).map_err(|e| BorexError::invalid(format!("manifest {}: {e}", path.display())))?;
    let base = path.parent().unwrap_or(Path::new("."));
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let p = PathBuf::from(l);
            if p.is_absolute() {
                p
            } else {
                base.join(p)
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_parse() {
        let v = Variant::parse("paper:blur", &RefineConfig::default()).unwrap();
        assert_eq!(
            (v.config.objective, v.config.baseline, v.file_stem().as_str()),
            (Objective::Paper, Baseline::Blur, "paper-blur")
        );
        assert_eq!(Variant::parse("matched", &RefineConfig::default()).unwrap().config.objective, Objective::Matched);
        assert!(Variant::parse("best", &RefineConfig::default()).is_err());
        assert!(Variant::parse("paper:grey", &RefineConfig::default()).is_err());
        let p = Variant::parse("matched+point", &RefineConfig::default()).unwrap();
        assert_eq!(
            (p.config.objective, p.config.readout, p.file_stem().as_str()),
            (Objective::Matched, crate::refine::full_res::Readout::Point, "matched-point")
        );
        assert!(Variant::parse("matched+blurry", &RefineConfig::default()).is_err());
        let k = Variant::parse("matched+fitted+kappa=2+sizes=15/30+iters=20", &RefineConfig::default()).unwrap();
        assert_eq!(k.config.prior_mean, crate::refine::PriorMean::Fitted);
        assert_eq!((k.config.kappa, k.config.sizes.clone(), k.config.iters), (2.0, Some(vec![15, 30]), 20));
        assert_eq!(k.file_stem(), "matched-fitted-kappa-2-sizes-15-30-iters-20");
        assert!(Variant::parse("matched+kappa=-1", &RefineConfig::default())
            .unwrap_err()
            .to_string()
            .contains("--kappa"));
        assert!(Variant::parse("matched+tau=1", &RefineConfig::default())
            .unwrap_err()
            .to_string()
            .contains("unknown setting"));
    }

    #[test]
    fn image_keys_are_unique() {
        let job = EvalJob {
            images: ["a/x.png", "b/x.png", "c/y z.jpg"].map(PathBuf::from).to_vec(),
            methods: vec!["rise-fast".into()],
            seeds: vec![0],
            variants: vec![],
            baseline: Baseline::Zero,
            out_dir: "o".into(),
            batch: 1,
            command: String::new(),
        };
        assert_eq!(job.image_keys(), vec!["x", "x-2", "y_z"]);
    }
}

/// One score of a record by name: `insertion_blur`, `insertion_zero`, `deletion`,
/// `ins_del_blur` or `ins_del_zero` (insertion − deletion).
pub fn metric(r: &Record, name: &str) -> f64 {
    let s = &r.scores;
    match name {
        "insertion_blur" => s.insertion_blur,
        "insertion_zero" => s.insertion_zero,
        "deletion" => s.deletion,
        "ins_del_blur" => s.insertion_blur - s.deletion,
        "ins_del_zero" => s.insertion_zero - s.deletion,
        other => unreachable!("unknown metric {other}"),
    }
}
