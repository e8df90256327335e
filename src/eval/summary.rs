//! Tables and tests over eval records: per-map CSV, mean ± std per method and
//! map, and the paired Wilcoxon signed-rank tests of refined vs prior and of
//! each method's map vs the first method's.

use super::{EvalJob, EvalOutcome, Record};
use crate::error::Result;
use crate::metrics::{wilcoxon, Wilcoxon, WilcoxonMethod};
use crate::output;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

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

#[derive(Debug, Clone, Serialize)]
pub struct MeanStd {
    pub mean: f64,
    /// Sample standard deviation (n − 1); undefined for one value.
    pub std: Option<f64>,
    pub n: usize,
}

impl MeanStd {
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
#[derive(Debug, Clone, Serialize)]
pub struct PairedTest {
    pub metric: String,
    /// Mean of the improvement (map − reference; reference − map for deletion).
    pub mean_gain: f64,
    /// Pairs where the map is strictly better than the reference.
    pub wins: usize,
    pub n: usize,
    /// `None` when every pair ties (undefined).
    pub wilcoxon: Option<Wilcoxon>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VariantSummary {
    pub variant: String,
    pub refined: BTreeMap<String, Option<MeanStd>>,
    pub tests: Vec<PairedTest>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MethodSummary {
    pub method: String,
    pub prior: BTreeMap<String, Option<MeanStd>>,
    pub variants: Vec<VariantSummary>,
}

/// A method's map (its prior, not refined) vs the first method's, same image and seed.
#[derive(Debug, Clone, Serialize)]
pub struct MethodComparison {
    pub method: String,
    pub reference: String,
    pub tests: Vec<PairedTest>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub command: String,
    pub model: String,
    pub machine: String,
    pub images: usize,
    pub seeds: Vec<u64>,
    pub methods: Vec<MethodSummary>,
    /// Every method after the first against the first (empty for one method).
    pub versus_first: Vec<MethodComparison>,
    pub failures: Vec<super::Failure>,
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

pub fn summarise(job: &EvalJob, outcome: &EvalOutcome, model: &str) -> Summary {
    let of = |method: &str, variant: Option<&str>| -> BTreeMap<(String, u64), &Record> {
        outcome
            .records
            .iter()
            .filter(|r| r.method == method && r.variant.as_deref() == variant)
            .map(|r| ((r.key.clone(), r.seed), r))
            .collect()
    };
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
        methods.push(MethodSummary {
            method: method.clone(),
            prior: means(&prior.values().copied().collect::<Vec<_>>()),
            variants,
        });
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
        images: job.images.len(),
        seeds: job.seeds.clone(),
        methods,
        versus_first,
        failures: outcome.failures.clone(),
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

fn fmt_ms(s: &Option<MeanStd>) -> String {
    match s {
        Some(MeanStd { mean, std: Some(sd), .. }) => format!("{mean:.4} ± {sd:.4}"),
        Some(MeanStd { mean, std: None, .. }) => format!("{mean:.4}"),
        None => "undefined".into(),
    }
}

/// The markdown report (summary.md); plot links are relative to OUTDIR.
pub fn markdown(s: &Summary, plots: &[String]) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# borex eval: insertion/deletion of priors and refined maps\n");
    let _ = writeln!(
        md,
        "Generated by `{}` on {}; model `{}`; {} images × seeds {:?}; class: each image's top-1.\n",
        s.command, s.machine, s.model, s.images, s.seeds
    );
    let _ = writeln!(
        md,
        "Metrics (RISE reference, 224 pixels per step): insertion restores pixels in descending saliency onto a blurred copy \
         (`blur`, Gaussian 11/σ 5, the reference) or onto zero (`zero`, what the BOREx authors' code uses); deletion replaces them \
         with zero (the mean colour). **The default metric is insertion(blur) − deletion**: a map is better when it is higher. \
         Refinement gains are refined − prior (prior − refined for deletion), paired over (image, seed); the test is the two-sided \
         Wilcoxon signed-rank test (exact for n ≤ 50, zero differences dropped), with the matched-pairs rank-biserial correlation r \
         as the effect size.\n"
    );
    let _ = writeln!(md, "## Mean ± std per method and map\n");
    let _ = writeln!(
        md,
        "| method | map | n | {} |",
        METRICS.iter().map(|(_, t, h)| format!("{t} {}", if *h { "↑" } else { "↓" })).collect::<Vec<_>>().join(" | ")
    );
    let _ = writeln!(md, "|---|---|---|{}", "---|".repeat(METRICS.len()));
    // Without refinements a method's map is not anyone's prior.
    let own = if s.methods.iter().any(|m| !m.variants.is_empty()) { "prior" } else { "map" };
    for m in &s.methods {
        let row = |who: &str, v: &BTreeMap<String, Option<MeanStd>>| {
            let n = v.values().flatten().map(|x| x.n).next().unwrap_or(0);
            format!(
                "| {} | {who} | {n} | {} |",
                m.method,
                METRICS.iter().map(|(k, _, _)| fmt_ms(&v[*k])).collect::<Vec<_>>().join(" | ")
            )
        };
        let _ = writeln!(md, "{}", row(own, &m.prior));
        for v in &m.variants {
            let _ = writeln!(md, "{}", row(&format!("refined `{}`", v.variant), &v.refined));
        }
    }
    if s.methods.iter().any(|m| !m.variants.is_empty()) {
        let _ = writeln!(md, "\n## Refined vs prior: paired Wilcoxon signed-rank test\n");
        let _ =
            writeln!(md, "| method | refine | metric | mean gain | refined better | n | W | p | r (rank-biserial) |");
        let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|");
        for m in &s.methods {
            for v in &m.variants {
                for t in &v.tests {
                    let _ = writeln!(md, "| {} | `{}` | {}", m.method, v.variant, test_cells(t));
                }
            }
        }
        let _ = writeln!(md, "\n## The bar: refined beats the prior on the default metric\n");
        let _ = writeln!(md, "Required: refined better on ≥ 80 % of (image, seed) pairs and Wilcoxon p < 0.05 on insertion(blur) − deletion.\n");
        let _ = writeln!(md, "| method | refine | refined better | p | zero-start gain | met |");
        let _ = writeln!(md, "|---|---|---|---|---|---|");
        for m in &s.methods {
            for v in &m.variants {
                let t = v.tests.iter().find(|t| t.metric == DEFAULT_METRIC).expect("default metric");
                let z = v.tests.iter().find(|t| t.metric == "ins_del_zero").expect("zero metric");
                let p = t.wilcoxon.as_ref().map(|w| w.p);
                let frac = if t.n > 0 { t.wins as f64 / t.n as f64 } else { 0.0 };
                let met = frac >= 0.8 && p.is_some_and(|p| p < 0.05) && t.mean_gain > 0.0;
                let _ = writeln!(
                    md,
                    "| {} | `{}` | {}/{} ({:.0} %) | {} | {:+.4} | {} |",
                    m.method,
                    v.variant,
                    t.wins,
                    t.n,
                    100.0 * frac,
                    p.map_or("undefined".into(), fmt_p),
                    z.mean_gain,
                    if met { "yes" } else { "no" }
                );
            }
        }
    }
    if let Some(c) = s.versus_first.first() {
        let _ = writeln!(md, "\n## Methods vs `{}`: paired Wilcoxon signed-rank test\n", c.reference);
        let _ = writeln!(
            md,
            "Each method's map against `{}`'s on the same image and seed (gain = method − `{}`).\n",
            c.reference, c.reference
        );
        let _ = writeln!(md, "| method | vs | metric | mean gain | better | n | W | p | r (rank-biserial) |");
        let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|");
        for c in &s.versus_first {
            for t in &c.tests {
                let _ = writeln!(md, "| {} | `{}` | {}", c.method, c.reference, test_cells(t));
            }
        }
    }
    if !plots.is_empty() {
        let _ = writeln!(md, "\n## Plots\n");
        for p in plots {
            let _ = writeln!(md, "![{p}](plots/{p})\n");
        }
    }
    let _ = writeln!(md, "Per-map values: `results.csv` (one row per image, method, seed and map).");
    if !s.failures.is_empty() {
        let _ = writeln!(md, "\n## Failures\n");
        for f in &s.failures {
            let _ = writeln!(md, "- {} ({}): {}", f.image.display(), f.what, f.error);
        }
    }
    md
}

/// A paired test's cells from the metric on: metric (the default in bold),
/// mean gain, wins/n, n, W, p, r.
fn test_cells(t: &PairedTest) -> String {
    let title = METRICS.iter().find(|x| x.0 == t.metric).map_or("", |x| x.1);
    let (w, p, r) = match &t.wilcoxon {
        Some(w) => (format!("{:.1}", w.w), fmt_p(w.p), format!("{:+.3}", w.rank_biserial)),
        None => ("undefined".into(), "undefined".into(), "undefined".into()),
    };
    let bold = if t.metric == DEFAULT_METRIC { "**" } else { "" };
    format!("{bold}{title}{bold} | {:+.4} | {}/{} | {} | {w} | {p} | {r} |", t.mean_gain, t.wins, t.n, t.n)
}

/// One CSV row per record.
pub fn write_csv(path: &std::path::Path, records: &[Record]) -> Result<()> {
    output::write_atomic(path, |w| {
        let mut c = csv::Writer::from_writer(w);
        let mut header = vec!["image", "key", "class", "label", "probability", "method", "seed", "map"];
        header.extend(METRICS.iter().map(|m| m.0));
        c.write_record(&header)?;
        for r in records {
            let mut row = vec![
                r.image.display().to_string(),
                r.key.clone(),
                r.class.to_string(),
                r.label.clone().unwrap_or_default(),
                format!("{:.6}", r.probability),
                r.method.clone(),
                r.seed.to_string(),
                r.variant.as_ref().map_or("prior".into(), |v| format!("refined:{v}")),
            ];
            row.extend(METRICS.iter().map(|m| format!("{:.6}", metric(r, m.0))));
            c.write_record(&row)?;
        }
        c.flush()
    })
}

/// results.csv, summary.json, summary.md and the plots.
pub fn write_all(job: &EvalJob, outcome: &EvalOutcome, model: &str) -> Result<Summary> {
    let mut records = outcome.records.clone();
    records.sort_by(|a, b| (&a.key, &a.method, a.seed, &a.variant).cmp(&(&b.key, &b.method, b.seed, &b.variant)));
    write_csv(&job.out_dir.join("results.csv"), &records)?;
    let summary = summarise(job, outcome, model);
    let plots = super::plots::write_plots(&job.out_dir.join("plots"), job, &records)?;
    output::write_json(&job.out_dir.join("summary.json"), &summary)?;
    let md = markdown(&summary, &plots);
    output::write_atomic(&job.out_dir.join("summary.md"), |w| std::io::Write::write_all(w, md.as_bytes()))?;
    Ok(summary)
}
