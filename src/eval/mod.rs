//! `borex eval`: score every method's map (and, with refinement, its refined
//! maps) on a set of images with insertion/deletion, then summarise with
//! paired tests and plots. Each (image, method, seed) result is written to
//! its own file as soon as it exists, so a rerun skips finished work and a
//! failing image loses nothing else.

pub mod baselines;
pub(crate) mod markdown;
pub mod mosaic;
pub(crate) mod plots;
pub mod summary;

pub use baselines::RiseBaseline;

use crate::compute::{Backend, Baseline, ImageKernels};
use crate::error::{BorexError, Result};
use crate::explain::rise::RiseParams;
use crate::explain::Method;
use crate::job::description::{setting, Inputs, ModelId, Settings};
use crate::job::Shard;
use crate::job::{ms, ClassSpec, JobDescription, JobKind, Prepared};
use crate::metrics::{causal_curve, CausalMetric, InsertionStart};
use crate::model::{Classifier, Scorer};
use crate::output;
use crate::output::lock::DirLock;
use crate::refine::pipeline::compute_prior;
use crate::refine::{refine, Objective, PriorSpec, RefineConfig};
use ndarray::{ArrayView2, ArrayView3};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One refinement setting to compare with the prior: an objective, for the
/// paper objective its baseline, and the map readout. Written
/// `OBJECTIVE[:BASELINE][+READOUT][+PRIOR_MEAN][+KEY=VALUE…]`, e.g.
/// `matched+point+fitted+kappa=2+sizes=15/30`.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// Its label in tables (the spec as written).
    pub label: String,
    /// The refine config it runs (the eval's seed replaces `seed`).
    pub config: RefineConfig,
}

impl Variant {
    /// Parse a spec (`matched+point+kappa=2`) on top of `base`, or an error naming the bad part.
    pub fn parse(spec: &str, base: &RefineConfig) -> Result<Self> {
        let mut parts = spec.trim().split('+');
        let spec_main = parts.next().unwrap_or_default();
        let (obj, baseline) = match spec_main.split_once(':') {
            Some((o, b)) => (o, Some(b)),
            None => (spec_main, None),
        };
        // `antithetic` is a refiner of its own (the RISE prior's complements), not a query objective.
        let mut config = match obj.parse::<crate::refine::Refiner>() {
            Ok(refiner @ crate::refine::Refiner::Antithetic) => RefineConfig { refiner, ..base.clone() },
            _ => {
                let objective: Objective = obj.parse().map_err(BorexError::invalid)?;
                RefineConfig { objective, ..base.clone() }
            }
        };
        if let Some(b) = baseline {
            config.baseline = b.parse::<Baseline>().map_err(BorexError::invalid)?;
        }
        // Each `+` suffix is a readout (window, point), a prior mean (scaled,
        // fitted), `relative-gain` or a knob: kappa=K, gain=G, iters=T, sizes=S1/S2/….
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
            if suffix == "relative-gain" {
                config.relative_gain = true;
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
    /// The images to evaluate.
    pub images: Vec<PathBuf>,
    /// Explainer names, or `file:PATTERN` map files with `{stem}` (validated by [`EvalJob::validate`]).
    pub methods: Vec<String>,
    /// Seeds of the stochastic methods; each (image, method) runs once per seed.
    pub seeds: Vec<u64>,
    /// Refinements to run on every prior; empty scores the priors only.
    pub variants: Vec<Variant>,
    /// RISE continued from each (RISE) prior's masks, compared with the refinements.
    pub baselines: Vec<RiseBaseline>,
    /// What removed pixels become for the explainers.
    pub baseline: Baseline,
    /// OUTDIR: records under `runs/`, tables, plots, `summary.json`.
    pub out_dir: PathBuf,
    /// Images per model call.
    pub batch: usize,
    /// The command line, for the summary.
    pub command: String,
    /// Compute nothing: summarise the images whose records are all on disk, name the rest.
    pub summary_only: bool,
}

impl EvalJob {
    /// Every method, seed and count within its limit, or an error naming the bad flag.
    pub fn validate(&self) -> Result<()> {
        if self.images.is_empty() {
            return Err(BorexError::invalid("no images to evaluate (give IMAGES or --manifest FILE)"));
        }
        if self.methods.is_empty() || self.seeds.is_empty() {
            return Err(BorexError::invalid("--methods and --seeds need at least one value each"));
        }
        if self.seeds.len() > crate::limits::MAX_SEEDS {
            return Err(BorexError::setting(
                "seeds",
                None,
                format!("lists {} seeds: it takes at most {}", self.seeds.len(), crate::limits::MAX_SEEDS),
            ));
        }
        if let Some(s) = self.seeds.iter().enumerate().find_map(|(i, s)| self.seeds[..i].contains(s).then_some(s)) {
            return Err(BorexError::invalid(format!("--seeds lists {s} twice")));
        }
        if let Some(m) = self.methods.iter().enumerate().find_map(|(i, m)| self.methods[..i].contains(m).then_some(m)) {
            return Err(BorexError::invalid(format!("--methods lists {m} twice")));
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
            if v.config.refiner == crate::refine::Refiner::Antithetic {
                for m in &self.methods {
                    baselines::rise_params(m).map_err(|_| {
                        BorexError::invalid(format!(
                            "--objectives {}: continues a RISE prior's masks; method {m:?} is not RISE",
                            v.label
                        ))
                    })?;
                }
            }
        }
        if !self.baselines.is_empty() {
            let mut b = self.baselines.clone();
            b.sort();
            if b.windows(2).any(|w| w[0] == w[1]) {
                return Err(BorexError::invalid("--baselines lists the same baseline twice"));
            }
            if self.variants.is_empty() && self.baselines.contains(&RiseBaseline::EqualBudget) {
                return Err(BorexError::invalid(
                    "--baselines equal-budget needs --refine (its budget is the prior's plus the refinement's evaluations)",
                ));
            }
            for m in &self.methods {
                self.baseline_masks(m)?;
            }
        }
        Ok(())
    }

    /// Every (baseline, variant label or `None` for a fixed count, mask count) of a RISE
    /// `method`; a count that does not extend the prior is an error.
    pub fn baseline_masks(&self, method: &str) -> Result<Vec<(RiseBaseline, Option<String>, usize)>> {
        let n0 = baselines::rise_params(method)?.n;
        let mut out = vec![];
        for b in &self.baselines {
            let per: Vec<(Option<String>, usize)> = match b {
                RiseBaseline::EqualBudget => {
                    self.variants.iter().map(|v| (Some(v.label.clone()), b.masks(n0, v.config.iters))).collect()
                }
                RiseBaseline::Masks(n) => vec![(None, *n)],
            };
            for (variant, n) in per {
                if n <= n0 {
                    return Err(BorexError::invalid(format!(
                        "--baselines {}: RISE with {n} masks does not continue {method}'s {n0} masks (give more than {n0})",
                        b.label()
                    )));
                }
                crate::limits::in_range("baselines", n, 1, crate::limits::MAX_MASKS)?;
                out.push((*b, variant, n));
            }
        }
        Ok(out)
    }

    /// A unique, file-safe key per image: its sanitised file stem, numbered on
    /// clashes ([`crate::job::names::unique_names`]), so `runs/KEY` stays inside `runs/`.
    pub fn image_keys(&self) -> Vec<String> {
        crate::job::names::unique_names(&self.images)
    }

    /// This evaluation's job description: the model, the methods, seeds,
    /// refinements and baseline, the image list.
    pub fn description(&self, model: &Classifier) -> Result<JobDescription> {
        /// One refinement as the description records it.
        #[derive(Serialize)]
        struct VariantSetting<'a> {
            label: &'a str,
            config: &'a RefineConfig,
            baseline: Baseline,
        }
        let variants: Vec<VariantSetting> = self
            .variants
            .iter()
            .map(|v| VariantSetting { label: &v.label, config: &v.config, baseline: v.config.baseline })
            .collect();
        let settings = Settings::from([
            ("--methods".to_string(), setting(&self.methods)),
            ("--seeds".to_string(), setting(&self.seeds)),
            ("--baseline".to_string(), setting(self.baseline)),
            ("--objectives".to_string(), setting(self.variants.iter().map(|v| &v.label).collect::<Vec<_>>())),
            ("the refinements' settings".to_string(), setting(variants)),
            ("--baselines".to_string(), setting(self.baselines.iter().map(|b| b.label()).collect::<Vec<_>>())),
        ]);
        Ok(JobDescription::new(JobKind::Eval, ModelId::of(model)?, settings, Inputs::of(&self.images), Shard::ALL))
    }

    fn row_dir(&self, key: &str, method: &str, seed: u64) -> PathBuf {
        self.out_dir.join("runs").join(key).join(file_safe(method)).join(format!("seed{seed}"))
    }
}

/// The three curves every map is scored with.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Scores {
    /// Insertion AUC from a blurred image.
    pub insertion_blur: f64,
    /// Insertion AUC from a zero (mean-colour) image.
    pub insertion_zero: f64,
    /// Deletion AUC (lower is better).
    pub deletion: f64,
    /// P_c after each step, the untouched start first.
    pub curves: Curves,
}

/// The curves behind [`Scores`]: P_c after each step, the untouched start first.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Curves {
    /// Insertion from a blurred image.
    pub insertion_blur: Vec<f32>,
    /// Insertion from a zero image.
    pub insertion_zero: Vec<f32>,
    /// Deletion.
    pub deletion: Vec<f32>,
}

impl Scores {
    /// Insertion (blur and zero start) and deletion of `map` for `class` on input `x`.
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
    /// The image file.
    pub image: PathBuf,
    /// The image's key (its unique file-safe stem; `runs/KEY/`).
    pub key: String,
    /// The explained class (the model's top-1).
    pub class: usize,
    /// Its label, when the model has labels.
    pub label: Option<String>,
    /// The model's probability of `class`.
    pub probability: f32,
    /// The prior's method.
    pub method: String,
    /// The seed.
    pub seed: u64,
    /// `None` for the prior, else the refinement's label.
    pub variant: Option<String>,
    /// What produced this record; a rerun with other settings recomputes it.
    pub settings: RecordSettings,
    /// The map's scores and curves.
    pub scores: Scores,
    /// Milliseconds to make (and refine) the map.
    pub time_ms: f64,
    /// E.g. a map file resized to the model input.
    #[serde(default)]
    pub notes: Vec<String>,
}

/// What produced a [`Record`]: a rerun whose settings differ recomputes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RecordSettings {
    /// A prior refined under a variant's config.
    Refined {
        /// The prior's settings.
        prior: PriorRecordSettings,
        /// The refinement's config (its seed the row's).
        refine: RefineConfig,
        /// What removed pixels become in the loop.
        refine_baseline: Baseline,
    },
    /// A prior (an explainer's map, a map file, or a RISE baseline).
    Prior(PriorRecordSettings),
}

/// What produced a prior's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorRecordSettings {
    /// The model's file name.
    pub model: String,
    /// The image file.
    pub image: PathBuf,
    /// The method (an explainer's name or `file:PATTERN`).
    pub method: String,
    /// The seed.
    pub seed: u64,
    /// What removed pixels become for the explainer.
    pub baseline: Baseline,
}

/// An image or (image, method, seed) that failed, with its one-line reason.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Failure {
    /// The image.
    pub image: PathBuf,
    /// What failed: `image`, or `METHOD seed N`.
    pub what: String,
    /// The one-line reason.
    pub error: String,
}

/// What [`run_eval`] did: its records and failures, under OUTDIR's lock.
pub struct EvalOutcome {
    /// The lock on OUTDIR, held until the outcome is dropped (the summary is written under it).
    pub lock: DirLock,
    /// Every record of the run, read back or computed.
    pub records: Vec<Record>,
    /// What failed, each with its reason.
    pub failures: Vec<Failure>,
    /// (image, method, seed) rows computed now / found done.
    pub computed: usize,
    /// (image, method, seed) rows found done and kept.
    pub skipped: usize,
    /// With `summary_only`: images without every record on disk, left out of the tables.
    pub not_run: Vec<PathBuf>,
}

pub(crate) fn read_record(path: &Path, settings: &RecordSettings) -> Option<Record> {
    let bytes = crate::limits::read_bounded(path, crate::limits::MAX_JSON_BYTES, "record").ok()?;
    let r: Record = serde_json::from_slice(&bytes).ok()?;
    (r.settings == *settings).then_some(r)
}

/// Run (or resume) an evaluation and write every per-map record; the summary is
/// written by [`summary::write_all`].
pub fn run_eval(
    job: &EvalJob,
    model: &Classifier,
    backend: &Backend,
    reporter: &dyn crate::progress::Reporter,
) -> Result<EvalOutcome> {
    job.validate()?;
    // Summarising computes nothing and writes only the tables, so it may read records that
    // several runs (one per seed, say) put together in one folder.
    let lock = if job.summary_only {
        output::prepare_dir(&job.out_dir)?;
        crate::output::lock::lock_dir(&job.out_dir)?
    } else {
        crate::job::begin_run(&job.out_dir, &job.description(model)?)?
    };
    let scorer = Scorer::new(model, backend.image.as_ref(), job.batch);
    let keys = job.image_keys();
    let rows = job.images.len() * job.methods.len() * job.seeds.len();
    let bar = reporter.start(rows as u64, "eval");
    let (mut records, mut failures, mut computed, mut skipped, mut not_run) = (vec![], vec![], 0, 0, vec![]);
    let model_id = json_path(model.path());
    for (image, key) in job.images.iter().zip(&keys) {
        // Settings of every record this image needs; when all are on disk the image is not even loaded.
        let mut wanted = vec![];
        for method in &job.methods {
            for &seed in &job.seeds {
                let dir = job.row_dir(key, method, seed);
                let settings_of = |method: &str| PriorRecordSettings {
                    model: model_id.clone(),
                    image: image.clone(),
                    method: method.to_string(),
                    seed,
                    baseline: job.baseline,
                };
                let prior_settings = settings_of(method);
                let mut row =
                    vec![(dir.join("prior.json"), RecordSettings::Prior(prior_settings.clone()), Wants::Prior)];
                for v in &job.variants {
                    let config = RefineConfig { seed, ..v.config.clone() };
                    let s = RecordSettings::Refined {
                        prior: prior_settings.clone(),
                        refine: config.clone(),
                        refine_baseline: config.baseline,
                    };
                    row.push((dir.join(format!("{}.json", v.file_stem())), s, Wants::Refined(v, config)));
                }
                // A baseline is stored as the map of RISE with its mask count (the record a
                // direct run of that method writes), once per count.
                if !job.baselines.is_empty() {
                    let mut counts: Vec<usize> = job.baseline_masks(method)?.into_iter().map(|(_, _, n)| n).collect();
                    counts.sort_unstable();
                    counts.dedup();
                    for n in counts {
                        let name = baselines::method_name(method, n)?;
                        let path = job.row_dir(key, &name, seed).join("prior.json");
                        row.push((path, RecordSettings::Prior(settings_of(&name)), Wants::Baseline(name, n)));
                    }
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
        if job.summary_only {
            not_run.push(image.clone());
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
            let ctx = RowCtx { job, model, backend, scorer: &scorer, prepared: &prepared, image, key, reporter };
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
    Ok(EvalOutcome { lock, records, failures, computed, skipped, not_run })
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

/// A map file scored as a method's map must rank some pixels above others: refine's prior
/// check (no NaN or infinity, not all zero), and not constant. Either would be scored like
/// any map (pixels taken in index order) and summarised as an explainer's result.
fn check_map_file(map: ArrayView2<f32>, path: &Path) -> Result<()> {
    crate::metrics::check_ranks(map, &format!("map file {}", path.display()))
}

fn json_path(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// What a record of a row is: the prior, a refinement, or a RISE baseline (its method name and masks).
enum Wants<'a> {
    Prior,
    Refined(&'a Variant, RefineConfig),
    Baseline(String, usize),
}

type Wanted<'a> = (PathBuf, RecordSettings, Wants<'a>);

struct RowCtx<'a> {
    job: &'a EvalJob,
    model: &'a Classifier,
    backend: &'a Backend,
    scorer: &'a Scorer<'a>,
    prepared: &'a Prepared,
    image: &'a Path,
    key: &'a str,
    reporter: &'a dyn crate::progress::Reporter,
}

impl RowCtx<'_> {
    fn record(
        &self,
        method: &str,
        seed: u64,
        variant: Option<String>,
        settings: RecordSettings,
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
        let mut missing_baselines = vec![];
        let prior = match (done.next().flatten(), crate::image::read_npy_map(&prior_npy, "prior map").ok()) {
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
                    self.reporter,
                    &mut notes,
                )?;
                if let PriorSpec::File(path) = &spec {
                    check_map_file(map.view(), path)?;
                }
                let r = Record { notes, ..self.record(method, seed, None, prior_settings, map.view(), t)? };
                output::write_npy(&prior_npy, &map)?;
                output::write_json(&prior_json, &r)?;
                out.push(r);
                map
            }
        };
        for ((path, settings, wants), have) in row.zip(done) {
            if let Some(r) = have {
                out.push(r);
                continue;
            }
            let (variant, config) = match wants {
                Wants::Refined(v, c) => (v, c),
                Wants::Baseline(name, n) => {
                    missing_baselines.push((path, settings, name, n));
                    continue;
                }
                Wants::Prior => unreachable!("the prior comes first"),
            };
            let t = Instant::now();
            let map = if config.refiner == crate::refine::Refiner::Antithetic {
                let params = RiseParams { seed, ..baselines::rise_params(method)? };
                let (x, class) = (self.prepared.pre.tensor.view(), self.prepared.class);
                crate::explain::antithetic::antithetic(
                    self.scorer,
                    x,
                    class,
                    &params,
                    2 * config.iters,
                    &crate::progress::NoProgress,
                )?
                .map
            } else {
                refine(
                    self.scorer,
                    self.backend.gp.as_ref(),
                    self.prepared.pre.tensor.view(),
                    self.prepared.class,
                    prior.view(),
                    &config,
                    &crate::progress::NoProgress,
                )?
                .map
            };
            let r = self.record(method, seed, Some(variant.label.clone()), settings, map.view(), t)?;
            output::write_npy(&path.with_extension("npy"), &map)?;
            output::write_json(&path, &r)?;
            out.push(r);
        }
        if !missing_baselines.is_empty() {
            out.extend(self.baselines(method, seed, prior.view(), missing_baselines)?);
        }
        Ok(out)
    }

    /// The missing RISE baselines of a row from one session continued from the prior's masks;
    /// the map at the prior's own count is checked against the prior.
    fn baselines(
        &self,
        method: &str,
        seed: u64,
        prior: ArrayView2<f32>,
        missing: Vec<(PathBuf, RecordSettings, String, usize)>,
    ) -> Result<Vec<Record>> {
        let t = Instant::now();
        let params = RiseParams { seed, ..baselines::rise_params(method)? };
        let mut counts = vec![params.n];
        counts.extend(missing.iter().map(|m| m.3));
        let p = self.prepared;
        let maps = baselines::rise_continued(self.scorer, p.pre.tensor.view(), p.class, &params, &counts)?;
        let mut notes = vec![];
        if maps[0] != prior {
            let d = maps[0].iter().zip(prior.iter()).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            notes.push(format!("the continuation's first {} masks differ from the prior by up to {d:e}", params.n));
        }
        let mut out = vec![];
        for ((path, settings, name, _), map) in missing.into_iter().zip(maps.into_iter().skip(1)) {
            let r = Record { notes: notes.clone(), ..self.record(&name, seed, None, settings, map.view(), t)? };
            output::prepare_dir(path.parent().expect("a row folder"))?;
            output::write_npy(&path.with_extension("npy"), &map)?;
            output::write_json(&path, &r)?;
            out.push(r);
        }
        Ok(out)
    }
}

/// Image paths from a manifest: one per line, relative to the manifest's folder
/// (an absolute path is taken as is); blank lines, `#` comments and a UTF-8
/// byte-order mark are skipped. Missing images are not checked
/// here: they are reported per image and the rest continue.
pub fn read_manifest(path: &Path) -> Result<Vec<PathBuf>> {
    let text =
        crate::limits::read_text_bounded(path, crate::limits::MAX_TABLE_BYTES, "manifest").map_err(|e| match e {
            BorexError::Io { err, .. } => BorexError::invalid(format!("manifest {}: {err}", path.display())),
            e => e,
        })?;
    crate::job::names::manifest_entries(path, &text)
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
        // `antithetic` is a refiner, not an objective; its knobs parse as any variant's.
        let a = Variant::parse("antithetic+iters=25", &RefineConfig::default()).unwrap();
        assert_eq!((a.config.refiner, a.config.iters), (crate::refine::Refiner::Antithetic, 25));
        assert_eq!(Variant::parse("matched", &RefineConfig::default()).unwrap().config.refiner, Default::default());
        assert!(Variant::parse("paper:grey", &RefineConfig::default()).is_err());
        let p = Variant::parse("matched+point", &RefineConfig::default()).unwrap();
        assert_eq!(
            (p.config.objective, p.config.readout, p.file_stem().as_str()),
            (Objective::Matched, crate::refine::full_res::Readout::Point, "matched-point")
        );
        assert!(Variant::parse("matched+blurry", &RefineConfig::default()).is_err());
        let r = Variant::parse("matched+relative-gain", &RefineConfig::default()).unwrap();
        assert!(r.config.relative_gain && !RefineConfig::default().relative_gain);
        assert_eq!(r.file_stem(), "matched-relative-gain");
        let k = Variant::parse("matched+fitted+kappa=2+sizes=15/30+iters=20", &RefineConfig::default()).unwrap();
        assert_eq!(k.config.prior_mean, crate::refine::PriorMean::Fitted);
        assert_eq!((k.config.kappa, k.config.sizes.clone(), k.config.iters), (2.0, Some(vec![15, 30]), 20));
        assert_eq!(k.file_stem(), "matched-fitted-kappa-2-sizes-15-30-iters-20");
        assert!(Variant::parse("matched+kappa=-1", &RefineConfig::default())
            .unwrap_err()
            .to_string()
            .contains("kappa must be a finite number ≥ 0, not -1"));
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
            baselines: vec![],
            summary_only: false,
            baseline: Baseline::Zero,
            out_dir: "o".into(),
            batch: 1,
            command: String::new(),
        };
        assert_eq!(job.image_keys(), vec!["x", "x-2", "y_z"]);
    }
}
