//! Tables and tests over eval records: per-map CSV, mean ± std per method and
//! map, and the paired Wilcoxon signed-rank tests of refined vs prior and of
//! each method's map vs the first method's. The Markdown report rendered from
//! them is `eval/markdown.rs`'s.

use super::{EvalJob, EvalOutcome, Record};
use crate::error::Result;
use crate::metrics::{wilcoxon, Wilcoxon, WilcoxonMethod};
use crate::output;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The metrics every map gets, with the direction that is better.
pub const METRICS: [(&str, &str, bool); 5] = [
    ("insertion_blur", "insertion (blur start)", true),
    ("insertion_zero", "insertion (zero start)", true),
    ("deletion", "deletion (to zero)", false),
    ("ins_del_blur", "insertion(blur) − deletion", true),
    ("ins_del_zero", "insertion(zero) − deletion", true),
];

/// The default metric, the one refinement is judged by.
pub const DEFAULT_METRIC: &str = "ins_del_blur";

// `metric` lives with `Record` (plots read it too, and summary calls plots).
pub use super::metric;

/// Mean, sample standard deviation and count of one metric.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MeanStd {
    /// Mean.
    #[serde(deserialize_with = "crate::metrics::stats::f64_or_nan")]
    pub mean: f64,
    /// Sample standard deviation (n − 1); undefined for one value.
    pub std: Option<f64>,
    /// Values averaged.
    pub n: usize,
}

impl MeanStd {
    /// The statistics of `v`; `None` when empty.
    pub fn of(v: &[f64]) -> Option<Self> {
        if v.is_empty() {
            return None;
        }
        let n = v.len();
        let mean = v.iter().sum::<f64>() / n as f64;
        let std = (n > 1).then(|| (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt());
        Some(Self { mean, std, n })
    }
}

/// One map vs a reference map (refined vs prior, or a method vs the first
/// method) on one metric, over (image, seed) pairs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PairedTest {
    /// The metric (`insertion_blur`, `deletion`, `ins_del_blur`, …).
    pub metric: String,
    /// Mean of the improvement (map − reference; reference − map for deletion).
    #[serde(deserialize_with = "crate::metrics::stats::f64_or_nan")]
    pub mean_gain: f64,
    /// Pairs where the map is strictly better than the reference.
    pub wins: usize,
    /// Pairs compared.
    pub n: usize,
    /// `None` when every pair ties (undefined).
    pub wilcoxon: Option<Wilcoxon>,
}

/// One refinement of one method: its maps' statistics and its tests against the prior.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VariantSummary {
    /// The refinement's label.
    pub variant: String,
    /// Per metric: mean ± std of the refined maps (`None`: no values).
    pub refined: BTreeMap<String, Option<MeanStd>>,
    /// Refined vs prior, per metric.
    pub tests: Vec<PairedTest>,
}

/// One method's priors, its refinements and baselines.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MethodSummary {
    /// The method's name.
    pub method: String,
    /// Per metric: mean ± std of the priors (`None`: no values).
    pub prior: BTreeMap<String, Option<MeanStd>>,
    /// Each refinement of this method's priors.
    pub variants: Vec<VariantSummary>,
    /// RISE continued from this method's prior (`--baselines`).
    pub baselines: Vec<BaselineSummary>,
}

/// A refinement against a baseline: gain = refined − baseline (baseline − refined for deletion).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefinedVsBaseline {
    /// The refinement's label.
    pub variant: String,
    /// Refined vs baseline, per metric.
    pub tests: Vec<PairedTest>,
}

/// One `--baselines` entry of one method: RISE continued to `masks` masks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BaselineSummary {
    /// `equal-budget` or the fixed mask count.
    pub baseline: String,
    /// For `equal-budget`: the refinement whose evaluations it matches.
    pub variant: Option<String>,
    /// RISE masks of the baseline's maps.
    pub masks: usize,
    /// The method name its maps are stored under, e.g. `rise-fast+masks=200`.
    pub method: String,
    /// Per metric: mean ± std of the baseline's maps.
    pub map: BTreeMap<String, Option<MeanStd>>,
    /// Baseline vs the prior (gain = baseline − prior).
    pub vs_prior: Vec<PairedTest>,
    /// Each refinement (for `equal-budget`: its own) vs this baseline.
    pub refined_vs: Vec<RefinedVsBaseline>,
}

/// The model's top-1 confidence groups that claims are reported by: name, lower bound (inclusive),
/// upper bound (exclusive).
pub const GROUPS: [(&str, f32, f32); 3] =
    [("P ≥ 0.5", 0.5, f32::INFINITY), ("0.2 ≤ P < 0.5", 0.2, 0.5), ("P < 0.2", f32::NEG_INFINITY, 0.2)];

/// The index in [`GROUPS`] of a top-1 probability.
pub fn group_of(p: f32) -> usize {
    GROUPS.iter().position(|(_, lo, hi)| p >= *lo && p < *hi).unwrap_or(GROUPS.len() - 1)
}

/// The same tables for the images of one confidence group.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupSummary {
    /// The group's name (e.g. `P ≥ 0.5`).
    pub group: String,
    /// Images with at least one record in the group.
    pub images: usize,
    /// Per method, as in [`Summary::methods`].
    pub methods: Vec<MethodSummary>,
}

/// A gain on one metric over (image, seed) pairs, for the bar.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Gain {
    /// The metric.
    pub metric: String,
    /// Mean gain over the pairs.
    #[serde(deserialize_with = "crate::metrics::stats::f64_or_nan")]
    pub mean_gain: f64,
    /// Pairs with a strictly positive gain.
    pub wins: usize,
    /// Pairs.
    pub n: usize,
    /// Wilcoxon's two-sided p (`None`: every pair ties).
    pub p: Option<f64>,
}

/// A baseline in the bar: its gain over the prior and the refinement's gain over it, per metric.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BarBaseline {
    /// Its RISE mask count.
    pub masks: usize,
    /// Baseline − prior on each bar metric.
    pub baseline_gain: Vec<Gain>,
    /// Refined − baseline.
    pub refined_minus_baseline: Vec<Gain>,
    /// Whether the refinement's gain is at least the baseline's on both metrics.
    pub met: bool,
}

/// The four points of the bar for one method, refinement and group (`all` or a confidence group).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BarRow {
    /// The method.
    pub method: String,
    /// The refinement's label.
    pub variant: String,
    /// `all` or a confidence group's name.
    pub group: String,
    /// Images in the group.
    pub images: usize,
    /// Refined − prior on each bar metric.
    pub gain: Vec<Gain>,
    /// 1. Refined beats its prior on both metrics with paired Wilcoxon p < 0.01 (and a positive mean gain).
    pub beats_prior: bool,
    /// 2. Its mean gain is at least that of RISE continued to the same evaluations, on both metrics.
    pub equal_budget: Option<BarBaseline>,
    /// 3. Its mean gain is at least that of RISE with the largest fixed `--baselines` count.
    pub fixed: Option<BarBaseline>,
    /// 4. Not worse than the prior on average (mean gain ≥ 0) on both metrics: the bar asks it of `P < 0.2`.
    pub not_worse: bool,
}

/// The metrics of the bar: insertion − deletion from both insertion starts.
pub const BAR_METRICS: [&str; 2] = ["ins_del_blur", "ins_del_zero"];
/// Point 1's significance level.
pub const BAR_P: f64 = 0.01;

/// A method's map (its prior, not refined) vs the first method's, same image and seed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MethodComparison {
    /// The method compared.
    pub method: String,
    /// The first method, the reference.
    pub reference: String,
    /// Method vs reference, per metric.
    pub tests: Vec<PairedTest>,
}

/// `summary.json` of `borex eval`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    /// The command line that made it.
    pub command: String,
    /// The model file.
    pub model: String,
    /// The CPU and adapter it ran on.
    pub machine: String,
    /// Images evaluated.
    pub images: usize,
    /// Seeds of the stochastic methods.
    pub seeds: Vec<u64>,
    /// Per method: priors, refinements, baselines and their tests.
    pub methods: Vec<MethodSummary>,
    /// The same per top-1 confidence group ([`GROUPS`]).
    pub groups: Vec<GroupSummary>,
    /// The bar's four points per method and refinement, overall and per group.
    pub bar: Vec<BarRow>,
    /// Every method after the first against the first (empty for one method).
    pub versus_first: Vec<MethodComparison>,
    /// Images or (image, method, seed) rows that failed.
    pub failures: Vec<super::Failure>,
    /// Images left out of a summary-only run's tables: not every map of theirs is on disk.
    pub not_run: Vec<std::path::PathBuf>,
}

/// The paired tests of `pairs` (reference, map) on every metric.
fn paired_tests(pairs: &[(&Record, &Record)]) -> Vec<PairedTest> {
    METRICS
        .iter()
        .map(|(m, _, higher)| {
            let gains: Vec<f64> = pairs
                .iter()
                .map(|(p, q)| if *higher { metric(q, m) - metric(p, m) } else { metric(p, m) - metric(q, m) })
                .collect();
            PairedTest {
                metric: m.to_string(),
                mean_gain: MeanStd::of(&gains).map_or(f64::NAN, |s| s.mean),
                wins: gains.iter().filter(|g| **g > 0.0).count(),
                n: gains.len(),
                wilcoxon: wilcoxon(&gains, WilcoxonMethod::Auto),
            }
        })
        .collect()
}

/// (reference, map) for every (image, seed) both have.
fn pairs<'a>(
    reference: &BTreeMap<(String, u64), &'a Record>,
    maps: &BTreeMap<(String, u64), &'a Record>,
) -> Vec<(&'a Record, &'a Record)> {
    maps.iter().filter_map(|(k, q)| reference.get(k).map(|p| (*p, *q))).collect()
}

fn means(records: &[&Record]) -> BTreeMap<String, Option<MeanStd>> {
    METRICS
        .iter()
        .map(|(m, _, _)| (m.to_string(), MeanStd::of(&records.iter().map(|r| metric(r, m)).collect::<Vec<_>>())))
        .collect()
}

/// The records of `method` and `variant` (`None`: its own map) by (image key, seed).
fn records_of<'a>(records: &[&'a Record], method: &str, variant: Option<&str>) -> BTreeMap<(String, u64), &'a Record> {
    records
        .iter()
        .filter(|r| r.method == method && r.variant.as_deref() == variant)
        .map(|r| ((r.key.clone(), r.seed), *r))
        .collect()
}

/// Per-method tables (maps, refined vs prior, baselines) over `records`.
fn method_summaries(job: &EvalJob, records: &[&Record]) -> Vec<MethodSummary> {
    let of = |method: &str, variant: Option<&str>| records_of(records, method, variant);
    let mut methods = vec![];
    for method in &job.methods {
        let prior = of(method, None);
        let variants = job
            .variants
            .iter()
            .map(|v| {
                let refined = of(method, Some(&v.label));
                let tests = paired_tests(&pairs(&prior, &refined));
                VariantSummary {
                    variant: v.label.clone(),
                    refined: means(&refined.values().copied().collect::<Vec<_>>()),
                    tests,
                }
            })
            .collect();
        // A job validated with baselines has a RISE prior for every method.
        let baselines = job
            .baseline_masks(method)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(b, variant, masks)| {
                let name = super::baselines::method_name(method, masks).ok()?;
                let maps = of(&name, None);
                let refined_vs = job
                    .variants
                    .iter()
                    .filter(|v| variant.as_ref().is_none_or(|l| *l == v.label))
                    .map(|v| RefinedVsBaseline {
                        variant: v.label.clone(),
                        tests: paired_tests(&pairs(&maps, &of(method, Some(&v.label)))),
                    })
                    .collect();
                Some(BaselineSummary {
                    baseline: b.label(),
                    variant,
                    masks,
                    method: name,
                    map: means(&maps.values().copied().collect::<Vec<_>>()),
                    vs_prior: paired_tests(&pairs(&prior, &maps)),
                    refined_vs,
                })
            })
            .collect();
        methods.push(MethodSummary {
            method: method.clone(),
            prior: means(&prior.values().copied().collect::<Vec<_>>()),
            variants,
            baselines,
        });
    }
    methods
}

pub(super) fn gain(tests: &[PairedTest], metric: &str) -> Option<Gain> {
    tests.iter().find(|t| t.metric == metric).map(|t| Gain {
        metric: metric.to_string(),
        mean_gain: t.mean_gain,
        wins: t.wins,
        n: t.n,
        p: t.wilcoxon.as_ref().map(|w| w.p),
    })
}

/// The bar's rows of one group's tables.
fn bar_rows(group: &str, images: usize, methods: &[MethodSummary]) -> Vec<BarRow> {
    let gains = |tests: &[PairedTest]| BAR_METRICS.iter().filter_map(|m| gain(tests, m)).collect::<Vec<_>>();
    let mut rows = vec![];
    for m in methods {
        for v in &m.variants {
            let g = gains(&v.tests);
            let beats_prior = g.len() == BAR_METRICS.len()
                && g.iter().all(|x| x.n > 0 && x.mean_gain > 0.0 && x.p.is_some_and(|p| p < BAR_P));
            let not_worse = g.len() == BAR_METRICS.len() && g.iter().all(|x| x.n > 0 && x.mean_gain >= 0.0);
            let against = |b: &BaselineSummary| -> Option<BarBaseline> {
                let vs = b.refined_vs.iter().find(|r| r.variant == v.variant)?;
                let diff = gains(&vs.tests);
                Some(BarBaseline {
                    masks: b.masks,
                    baseline_gain: gains(&b.vs_prior),
                    met: diff.len() == BAR_METRICS.len() && diff.iter().all(|x| x.n > 0 && x.mean_gain >= 0.0),
                    refined_minus_baseline: diff,
                })
            };
            let equal_budget = m
                .baselines
                .iter()
                .find(|b| b.baseline == "equal-budget" && b.variant.as_deref() == Some(&v.variant))
                .and_then(against);
            let fixed =
                m.baselines.iter().filter(|b| b.baseline != "equal-budget").max_by_key(|b| b.masks).and_then(against);
            rows.push(BarRow {
                method: m.method.clone(),
                variant: v.variant.clone(),
                group: group.to_string(),
                images,
                gain: g,
                beats_prior,
                equal_budget,
                fixed,
                not_worse,
            });
        }
    }
    rows
}

/// The summary of an evaluation's records: statistics, paired tests, confidence groups, the bar.
pub fn summarise(job: &EvalJob, outcome: &EvalOutcome, model: &str) -> Summary {
    let all: Vec<&Record> = outcome.records.iter().collect();
    let of = |method: &str, variant: Option<&str>| records_of(&all, method, variant);
    let methods = method_summaries(job, &all);
    let count_images = |rs: &[&Record]| rs.iter().map(|r| &r.key).collect::<std::collections::BTreeSet<_>>().len();
    let mut bar = bar_rows("all", count_images(&all), &methods);
    let groups: Vec<GroupSummary> = GROUPS
        .iter()
        .enumerate()
        .map(|(i, (name, _, _))| {
            let rs: Vec<&Record> = all.iter().copied().filter(|r| group_of(r.probability) == i).collect();
            GroupSummary { group: name.to_string(), images: count_images(&rs), methods: method_summaries(job, &rs) }
        })
        .collect();
    for g in &groups {
        bar.extend(bar_rows(&g.group, g.images, &g.methods));
    }
    let versus_first = match job.methods.split_first() {
        Some((first, rest)) => {
            let reference = of(first, None);
            rest.iter()
                .map(|m| MethodComparison {
                    method: m.clone(),
                    reference: first.clone(),
                    tests: paired_tests(&pairs(&reference, &of(m, None))),
                })
                .collect()
        }
        None => vec![],
    };
    Summary {
        command: job.command.clone(),
        model: model.to_string(),
        machine: format!(
            "{} ({} cores)",
            std::env::consts::ARCH,
            std::thread::available_parallelism().map_or(1, |n| n.get())
        ),
        images: job.images.len() - outcome.not_run.len(),
        seeds: job.seeds.clone(),
        methods,
        groups,
        bar,
        versus_first,
        failures: outcome.failures.clone(),
        not_run: outcome.not_run.clone(),
    }
}

/// A p-value: three decimals, or scientific below 0.001.
pub fn fmt_p(p: f64) -> String {
    if p < 1e-3 {
        format!("{p:.2e}")
    } else {
        format!("{p:.3}")
    }
}

impl Summary {
    /// Images with at least one record.
    pub fn images_evaluated(&self) -> usize {
        self.groups.iter().map(|g| g.images).sum()
    }
}

/// One CSV row per record.
pub fn write_csv(path: &std::path::Path, records: &[Record]) -> Result<()> {
    let rows: Vec<ResultRow> = records.iter().map(ResultRow::of).collect();
    output::write_csv_rows(path, &RESULTS_HEADER, &rows)
}

/// `results.csv`'s columns: [`ResultRow`]'s fields, in order.
pub const RESULTS_HEADER: [&str; 13] = [
    "image",
    "key",
    "class",
    "label",
    "probability",
    "method",
    "seed",
    "map",
    "insertion_blur",
    "insertion_zero",
    "deletion",
    "ins_del_blur",
    "ins_del_zero",
];

/// One row of `results.csv`: one scored map (a prior or a refinement) of one
/// image, method and seed; values rounded to 6 decimals as the table has always shown them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultRow {
    /// The image file.
    pub image: String,
    /// The image's key (`runs/KEY/`).
    pub key: String,
    /// The explained class.
    pub class: usize,
    /// Its label ("" without labels).
    pub label: String,
    /// The model's probability of it.
    pub probability: f64,
    /// The prior's method.
    pub method: String,
    /// The seed.
    pub seed: u64,
    /// `prior`, or `refined:LABEL` for a refinement.
    pub map: String,
    /// Insertion AUC from a blurred image.
    pub insertion_blur: f64,
    /// Insertion AUC from a zero image.
    pub insertion_zero: f64,
    /// Deletion AUC.
    pub deletion: f64,
    /// Insertion (blur) − deletion.
    pub ins_del_blur: f64,
    /// Insertion (zero) − deletion.
    pub ins_del_zero: f64,
}

impl ResultRow {
    /// The row of one record.
    pub fn of(r: &Record) -> Self {
        let m = |name: &str| crate::video::run::rounded(metric(r, name), 6);
        Self {
            image: r.image.display().to_string(),
            key: r.key.clone(),
            class: r.class,
            label: r.label.clone().unwrap_or_default(),
            probability: crate::video::run::rounded(f64::from(r.probability), 6),
            method: r.method.clone(),
            seed: r.seed,
            map: r.variant.as_ref().map_or("prior".into(), |v| format!("refined:{v}")),
            insertion_blur: m("insertion_blur"),
            insertion_zero: m("insertion_zero"),
            deletion: m("deletion"),
            ins_del_blur: m("ins_del_blur"),
            ins_del_zero: m("ins_del_zero"),
        }
    }
}

/// results.csv, summary.json, summary.md and the plots.
pub fn write_all(job: &EvalJob, outcome: &EvalOutcome, model: &str) -> Result<Summary> {
    let mut records = outcome.records.clone();
    records.sort_by(|a, b| (&a.key, &a.method, a.seed, &a.variant).cmp(&(&b.key, &b.method, b.seed, &b.variant)));
    // A baseline that is also a listed method (e.g. rise-fast+masks=200) is one map, not two rows.
    records.dedup_by(|a, b| (&a.key, &a.method, a.seed, &a.variant) == (&b.key, &b.method, b.seed, &b.variant));
    write_csv(&job.out_dir.join("results.csv"), &records)?;
    let summary = summarise(job, outcome, model);
    let plots = super::plots::write_plots(&job.out_dir.join("plots"), job, &records)?;
    output::write_json(&job.out_dir.join("summary.json"), &summary)?;
    let md = super::markdown::markdown(&summary, &plots);
    output::write_atomic(&job.out_dir.join("summary.md"), |w| std::io::Write::write_all(w, md.as_bytes()))?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nan_written_as_null_reads_back_as_nan() {
        // serde_json writes a NaN mean gain (pairs that are all ties) as `null`;
        // `borex report` must still read summary.json back through the type.
        let t = PairedTest { metric: "deletion".into(), mean_gain: f64::NAN, wins: 0, n: 0, wilcoxon: None };
        let text = serde_json::to_string(&t).unwrap();
        assert!(text.contains("\"mean_gain\":null"), "{text}");
        let back: PairedTest = serde_json::from_str(&text).unwrap();
        assert!(back.mean_gain.is_nan() && back.n == 0 && back.metric == "deletion");
    }
}
