//! `borex eval mosaic`: SPEC §3's mosaic metrics and their reliability. A
//! mosaic is a 2×2 grid of model-input tiles, two of the target class and two
//! of other classes at shuffled positions; each method's map for the target
//! class is split per quadrant into positive and negative relevance, giving
//! TP/FN (target tiles) and FP/TN (other tiles) and the ratios built on them.
//! A metric's reliability: Krippendorff's α (ordinal) of the per-mosaic method
//! ranks (mosaics as raters, methods as units) and the Spearman matrix between
//! methods' per-mosaic scores. Undefined ratios stay undefined (`None`).

use crate::compute::{Backend, Baseline};
use crate::error::{BorexError, Result};
use crate::explain::{explain, ExplainInput, Method};
use crate::job::ClassSpec;
use crate::metrics::stats::{krippendorff_alpha_ordinal, ranks, spearman};
use crate::model::{Classifier, Scorer};
use crate::output;
use ndarray::{s, Array3, ArrayView2};
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Relevance split by sign and by tile kind.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Confusion {
    /// Positive relevance in target tiles.
    pub tp: f64,
    /// |Negative| relevance in target tiles.
    pub fn_: f64,
    /// Positive relevance in other tiles.
    pub fp: f64,
    /// |Negative| relevance in other tiles.
    pub tn: f64,
}

/// The metric names, in report order.
pub const METRICS: [&str; 7] = ["precision", "recall", "fpr", "fnr", "specificity", "accuracy", "f1"];

impl Confusion {
    /// `map` is the mosaic's map (2h×2w); quadrant q = 2·(row ≥ h) + (col ≥ w).
    pub fn of(map: ArrayView2<f32>, target: [bool; 4]) -> Self {
        let (hh, ww) = map.dim();
        let (h, w) = (hh / 2, ww / 2);
        let mut c = Confusion { tp: 0.0, fn_: 0.0, fp: 0.0, tn: 0.0 };
        for ((y, x), v) in map.indexed_iter() {
            let v = *v as f64;
            let q = 2 * usize::from(y >= h) + usize::from(x >= w);
            match (target[q], v >= 0.0) {
                (true, true) => c.tp += v,
                (true, false) => c.fn_ -= v,
                (false, true) => c.fp += v,
                (false, false) => c.tn -= v,
            }
        }
        c
    }

    /// `num/den`, undefined when the denominator is zero.
    fn ratio(num: f64, den: f64) -> Option<f64> {
        (den > 0.0).then(|| num / den)
    }

    /// The named metric (`focus`, `recall`, …) of this confusion; `None` when its denominator is zero.
    pub fn metric(&self, name: &str) -> Option<f64> {
        let Confusion { tp, fn_, fp, tn } = *self;
        match name {
            // Precision is the Focus score.
            "precision" => Self::ratio(tp, tp + fp),
            "recall" => Self::ratio(tp, tp + fn_),
            "fpr" => Self::ratio(fp, fp + tn),
            "fnr" => Self::ratio(fn_, tp + fn_),
            "specificity" => Self::ratio(tn, tn + fp),
            "accuracy" => Self::ratio(tp + tn, tp + fn_ + fp + tn),
            "f1" => {
                let (p, r) = (self.metric("precision")?, self.metric("recall")?);
                Self::ratio(2.0 * p * r, p + r)
            }
            other => unreachable!("unknown mosaic metric {other}"),
        }
    }
}

/// One class folder: its model class and its images.
#[derive(Debug, Clone, Serialize)]
pub struct ClassFolder {
    /// The folder's name (a class id or label).
    pub name: String,
    /// Its model class.
    pub class: usize,
    /// Its images, sorted.
    pub images: Vec<PathBuf>,
}

/// The class folders of `dir` (sorted), each named by a class id or a label of the model.
pub fn scan_classes(dir: &Path, model: &Classifier) -> Result<Vec<ClassFolder>> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| BorexError::invalid(format!("mosaic folder {}: {e}", dir.display())))?;
    let mut folders: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_dir()).collect();
    folders.sort();
    let n_classes = model.num_classes().or_else(|| model.labels().map(|l| l.len())).unwrap_or(0);
    let zeros = vec![0.0f32; n_classes];
    let mut out: Vec<ClassFolder> = vec![];
    for f in folders {
        let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let class = name.parse::<ClassSpec>().expect("infallible").resolve(model, &zeros).map_err(|e| {
            BorexError::invalid(format!("class folder {name:?}: not a class id nor a label of the model ({e})"))
        })?;
        // Two folders of one class (`282/` and `tiger cat/`) would make mosaics whose "other"
        // tiles show the target class, scored as if they did not.
        if let Some(first) = out.iter().find(|c| c.class == class) {
            let label = model.labels().and_then(|l| l.name(class)).map(|l| format!(" ({l})")).unwrap_or_default();
            return Err(BorexError::invalid(format!(
                "class folders {:?} and {name:?} both name class {class}{label}: put its images in one folder",
                first.name
            )));
        }
        let mut images: Vec<PathBuf> = std::fs::read_dir(&f)
            .map_err(|e| BorexError::io(&f, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| ["png", "jpg", "jpeg"].contains(&e.to_ascii_lowercase().as_str()))
            })
            .collect();
        images.sort();
        if images.len() < 2 {
            return Err(BorexError::invalid(format!(
                "class folder {name:?} has {} image(s); mosaics need at least two per class",
                images.len()
            )));
        }
        out.push(ClassFolder { name, class, images });
    }
    if out.len() < 2 {
        return Err(BorexError::invalid(format!(
            "{} has {} class folder(s); mosaics need at least two classes (one sub-folder per class)",
            dir.display(),
            out.len()
        )));
    }
    Ok(out)
}

/// `summary.json` of `borex eval mosaic`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MosaicSummary {
    /// The command line that made it.
    pub command: String,
    /// The folder of class folders.
    pub folder: PathBuf,
    /// Each class folder.
    pub classes: Vec<MosaicClass>,
    /// Which image sits in each quadrant of each mosaic.
    pub mosaics: Vec<MosaicSpec>,
    /// The methods compared.
    pub methods: Vec<String>,
    /// The mosaics' seed.
    pub seed: u64,
    /// Per metric: the methods' means and their agreement.
    pub reliability: Vec<Reliability>,
}

/// A class folder in `summary.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MosaicClass {
    /// The folder's name.
    pub folder: String,
    /// Its model class.
    pub class: usize,
    /// Its images.
    pub images: usize,
}

/// Which image sits in each quadrant of one mosaic.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MosaicSpec {
    /// The mosaic's number.
    pub index: usize,
    /// Index into the class folders.
    pub target: usize,
    /// (class folder, image) per quadrant: top-left, top-right, bottom-left, bottom-right.
    pub tiles: [(usize, PathBuf); 4],
}

impl MosaicSpec {
    /// Which quadrants hold the target class.
    pub fn target_quadrants(&self) -> [bool; 4] {
        self.tiles.clone().map(|(c, _)| c == self.target)
    }
}

/// `k` seeded mosaics: targets cycle through the classes; two distinct images
/// of the target and two distinct images of other classes, positions shuffled.
pub fn build_specs(classes: &[ClassFolder], k: usize, seed: u64) -> Vec<MosaicSpec> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..k)
        .map(|index| {
            let target = index % classes.len();
            let mut own: Vec<usize> = (0..classes[target].images.len()).collect();
            own.shuffle(&mut rng);
            let mut tiles: Vec<(usize, PathBuf)> =
                own[..2].iter().map(|&i| (target, classes[target].images[i].clone())).collect();
            while tiles.len() < 4 {
                let c = (target + 1 + rng.random_range(0..classes.len() - 1)) % classes.len();
                let img = classes[c].images[rng.random_range(0..classes[c].images.len())].clone();
                if !tiles.iter().any(|(_, p)| *p == img) {
                    tiles.push((c, img));
                }
            }
            tiles.shuffle(&mut rng);
            MosaicSpec { index, target, tiles: tiles.try_into().expect("four tiles") }
        })
        .collect()
}

/// The model-input tensor of a mosaic (each tile preprocessed as a single image).
pub fn mosaic_tensor(spec: &MosaicSpec, model: &Classifier) -> Result<Array3<f32>> {
    let mut out: Option<Array3<f32>> = None;
    for (q, (_, path)) in spec.tiles.iter().enumerate() {
        let t = model.preprocess().apply(&crate::image::load_rgb(path)?).tensor;
        let (c, h, w) = t.dim();
        let m = out.get_or_insert_with(|| Array3::zeros((c, 2 * h, 2 * w)));
        let (y, x) = ((q / 2) * h, (q % 2) * w);
        m.slice_mut(s![.., y..y + h, x..x + w]).assign(&t);
    }
    Ok(out.expect("four tiles"))
}

/// Everything `borex eval mosaic` needs besides the model and the backend.
pub struct MosaicJob {
    /// The folder of class folders.
    pub dir: PathBuf,
    /// Mosaics to build.
    pub mosaics: usize,
    /// Seed of the mosaics and the stochastic methods.
    pub seed: u64,
    /// The methods compared.
    pub methods: Vec<String>,
    /// What removed pixels become for the explainers.
    pub baseline: Baseline,
    /// OUTDIR.
    pub out_dir: PathBuf,
    /// Images per model call.
    pub batch: usize,
    /// The command line, for the summary.
    pub command: String,
}

/// One row of `mosaics.csv`: one method's map of one mosaic, scored against the target quadrants.
#[derive(Debug, Clone, Serialize)]
pub struct MosaicRow {
    /// The mosaic's number.
    pub mosaic: usize,
    /// The target class.
    pub target_class: usize,
    /// The target class's folder.
    pub target_folder: String,
    /// The method.
    pub method: String,
    /// Map mass inside and outside the target quadrants.
    pub confusion: Confusion,
    /// Each metric (`None`: undefined for this mosaic).
    pub metrics: BTreeMap<String, Option<f64>>,
}

/// One metric's agreement between methods over the mosaics.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reliability {
    /// The metric.
    pub metric: String,
    /// Mean over the mosaics where the metric is defined, per method.
    pub mean: BTreeMap<String, Option<f64>>,
    /// Mosaics where the metric is defined, per method.
    pub defined: BTreeMap<String, usize>,
    /// Krippendorff's α (ordinal) of the per-mosaic method ranks; `None` when undefined.
    pub alpha: Option<f64>,
    /// Spearman ρ between methods over mosaics where both are defined (methods × methods).
    pub spearman: Vec<Vec<Option<f64>>>,
}

/// α and the Spearman matrix of one metric from the rows.
pub fn reliability(metric: &str, methods: &[String], mosaics: usize, rows: &[MosaicRow]) -> Reliability {
    let value = |m: usize, method: &str| {
        rows.iter().find(|r| r.mosaic == m && r.method == method).and_then(|r| r.metrics[metric])
    };
    let table: Vec<Vec<Option<f64>>> =
        (0..mosaics).map(|m| methods.iter().map(|meth| value(m, meth)).collect()).collect();
    // Each mosaic (rater) ranks the methods (units) it has values for; ties share the average rank.
    let ranked: Vec<Vec<Option<f64>>> = table
        .iter()
        .map(|row| {
            let defined: Vec<f64> = row.iter().flatten().copied().collect();
            let r = ranks(&defined);
            let mut it = r.into_iter();
            row.iter().map(|v| v.map(|_| it.next().expect("one rank per value"))).collect()
        })
        .collect();
    let spearman_m = methods
        .iter()
        .enumerate()
        .map(|(a, _)| {
            methods
                .iter()
                .enumerate()
                .map(|(b, _)| {
                    let (xa, xb): (Vec<f64>, Vec<f64>) =
                        table.iter().filter_map(|row| Some((row[a]?, row[b]?))).unzip();
                    spearman(&xa, &xb)
                })
                .collect()
        })
        .collect();
    let col = |i: usize| table.iter().filter_map(|row| row[i]).collect::<Vec<f64>>();
    Reliability {
        metric: metric.to_string(),
        mean: methods
            .iter()
            .enumerate()
            .map(|(i, m)| {
                (m.clone(), {
                    let c = col(i);
                    (!c.is_empty()).then(|| c.iter().sum::<f64>() / c.len() as f64)
                })
            })
            .collect(),
        defined: methods.iter().enumerate().map(|(i, m)| (m.clone(), col(i).len())).collect(),
        alpha: krippendorff_alpha_ordinal(&ranked),
        spearman: spearman_m,
    }
}

/// What [`run_mosaic`] computed.
pub struct MosaicOutcome {
    /// One row per mosaic and method.
    pub rows: Vec<MosaicRow>,
    /// Per metric: means and agreement.
    pub reliability: Vec<Reliability>,
    /// The class folders used.
    pub classes: Vec<ClassFolder>,
}

/// Build the mosaics, explain each with every method, score them and write `mosaics.csv`, `summary.json` and `mosaics/`.
pub fn run_mosaic(
    job: &MosaicJob,
    model: &Classifier,
    backend: &Backend,
    reporter: &dyn crate::progress::Reporter,
) -> Result<MosaicOutcome> {
    if job.mosaics == 0 {
        return Err(BorexError::invalid("--mosaics must be at least 1"));
    }
    let methods: Vec<Method> = job
        .methods
        .iter()
        .map(|m| Method::parse(m, job.seed).ok_or_else(|| crate::explain::unknown_method(m)))
        .collect::<Result<_>>()?;
    let classes = scan_classes(&job.dir, model)?;
    output::prepare_dir(&job.out_dir)?;
    // One run at a time: a second into the same folder would interleave its files.
    let _lock = crate::output::lock::lock_dir(&job.out_dir)?;
    output::prepare_dir(&job.out_dir.join("mosaics"))?;
    let specs = build_specs(&classes, job.mosaics, job.seed);
    let scorer = Scorer::new(model, backend.image.as_ref(), job.batch);
    let bar = reporter.start((specs.len() * methods.len()) as u64, "mosaics");
    let mut rows = vec![];
    for spec in &specs {
        let x = mosaic_tensor(spec, model)?;
        let rgb = output::denormalise(x.view(), model.preprocess());
        output::write_png(&job.out_dir.join("mosaics").join(format!("mosaic_{:03}.png", spec.index)), &rgb)?;
        let probs = scorer.probabilities(x.view())?;
        let class = classes[spec.target].class;
        for (method, name) in methods.iter().zip(&job.methods) {
            let input = ExplainInput { tensor: x.view(), rgb: &rgb, baseline: job.baseline };
            let map =
                explain(method, model, &scorer, &input, class, &probs, &crate::progress::NoProgress)?.into_prior();
            // The map beside its mosaic, for `borex report`.
            output::write_npy(
                &job.out_dir.join("mosaics").join(format!(
                    "mosaic_{:03}_{}.npy",
                    spec.index,
                    crate::eval::file_safe(name)
                )),
                &map,
            )?;
            let confusion = Confusion::of(map.view(), spec.target_quadrants());
            rows.push(MosaicRow {
                mosaic: spec.index,
                target_class: class,
                target_folder: classes[spec.target].name.clone(),
                method: name.clone(),
                confusion,
                metrics: METRICS.iter().map(|m| (m.to_string(), confusion.metric(m))).collect(),
            });
            bar.inc(1);
        }
    }
    bar.finish();
    let reliability = METRICS.iter().map(|m| reliability(m, &job.methods, specs.len(), &rows)).collect();
    let outcome = MosaicOutcome { rows, reliability, classes };
    write_outputs(job, &specs, &outcome)?;
    Ok(outcome)
}

fn opt(v: Option<f64>) -> String {
    v.map_or("undefined".into(), |v| format!("{v:.4}"))
}

fn write_outputs(job: &MosaicJob, specs: &[MosaicSpec], o: &MosaicOutcome) -> Result<()> {
    output::write_atomic(&job.out_dir.join("mosaics.csv"), |w| {
        let mut c = csv::Writer::from_writer(w);
        let mut header = vec!["mosaic", "target_class", "target_folder", "tiles", "method", "tp", "fn", "fp", "tn"];
        header.extend(METRICS);
        c.write_record(&header)?;
        for r in &o.rows {
            let tiles = specs[r.mosaic]
                .tiles
                .iter()
                .map(|(ci, p)| {
                    format!(
                        "{}/{}",
                        o.classes[*ci].name,
                        p.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join(" ");
            let k = &r.confusion;
            let mut row = vec![
                r.mosaic.to_string(),
                r.target_class.to_string(),
                r.target_folder.clone(),
                tiles,
                r.method.clone(),
            ];
            row.extend([k.tp, k.fn_, k.fp, k.tn].map(|v| format!("{v:.6}")));
            // Undefined values are empty cells, never 0.
            row.extend(METRICS.iter().map(|m| r.metrics[*m].map_or(String::new(), |v| format!("{v:.6}"))));
            c.write_record(&row)?;
        }
        c.flush()
    })?;
    let summary = MosaicSummary {
        command: job.command.clone(),
        folder: job.dir.clone(),
        classes: o
            .classes
            .iter()
            .map(|c| MosaicClass { folder: c.name.clone(), class: c.class, images: c.images.len() })
            .collect(),
        mosaics: specs.to_vec(),
        methods: job.methods.clone(),
        seed: job.seed,
        reliability: o.reliability.clone(),
    };
    output::write_json(&job.out_dir.join("summary.json"), &summary)?;
    let mut md = String::new();
    let _ = writeln!(md, "# borex eval mosaic: mosaic metrics and their reliability\n");
    let _ = writeln!(
        md,
        "Generated by `{}`; {} mosaics (seed {}) from {} classes of `{}`.\n",
        job.command,
        specs.len(),
        job.seed,
        o.classes.len(),
        job.dir.display()
    );
    let _ = writeln!(
        md,
        "Mean per method over the mosaics where the metric is defined (defined / total in parentheses):\n"
    );
    let _ = writeln!(md, "| metric | {} | Krippendorff α (ordinal) |", job.methods.join(" | "));
    let _ = writeln!(md, "|---|{}---|", "---|".repeat(job.methods.len()));
    for r in &o.reliability {
        let cells: Vec<String> =
            job.methods.iter().map(|m| format!("{} ({}/{})", opt(r.mean[m]), r.defined[m], specs.len())).collect();
        let _ = writeln!(md, "| {} | {} | {} |", r.metric, cells.join(" | "), opt(r.alpha));
    }
    let _ = writeln!(md, "\n## Spearman ρ between methods' per-mosaic scores\n");
    for r in &o.reliability {
        let _ = writeln!(
            md,
            "### {}\n\n| | {} |\n|---|{}",
            r.metric,
            job.methods.join(" | "),
            "---|".repeat(job.methods.len())
        );
        for (i, m) in job.methods.iter().enumerate() {
            let _ = writeln!(md, "| {m} | {} |", r.spearman[i].iter().map(|v| opt(*v)).collect::<Vec<_>>().join(" | "));
        }
        let _ = writeln!(md);
    }
    output::write_atomic(&job.out_dir.join("summary.md"), |w| std::io::Write::write_all(w, md.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn confusion_and_ratios_by_hand() {
        // 4×4 map, quadrants 2×2; targets: top-left and bottom-right.
        let mut m = Array2::<f32>::zeros((4, 4));
        m[[0, 0]] = 3.0; // TP
        m[[1, 1]] = -1.0; // FN
        m[[0, 3]] = 1.0; // FP
        m[[3, 0]] = -2.0; // TN
        m[[3, 3]] = 1.0; // TP
        let c = Confusion::of(m.view(), [true, false, false, true]);
        assert_eq!(c, Confusion { tp: 4.0, fn_: 1.0, fp: 1.0, tn: 2.0 });
        assert_eq!(c.metric("precision"), Some(0.8));
        assert_eq!(c.metric("recall"), Some(0.8));
        assert_eq!(c.metric("fpr"), Some(1.0 / 3.0));
        assert_eq!(c.metric("fnr"), Some(0.2));
        assert_eq!(c.metric("specificity"), Some(2.0 / 3.0));
        assert_eq!(c.metric("accuracy"), Some(0.75));
        assert!((c.metric("f1").unwrap() - 0.8).abs() < 1e-12);
        // A non-negative map has no negative relevance: specificity 0, and an all-zero map leaves every ratio undefined.
        let z = Confusion::of(Array2::<f32>::zeros((4, 4)).view(), [true, false, false, true]);
        assert!(METRICS.iter().all(|m| z.metric(m).is_none()), "{z:?}");
    }

    #[test]
    fn specs_have_two_target_tiles_and_distinct_images() {
        let classes: Vec<ClassFolder> = (0..3)
            .map(|c| ClassFolder {
                name: c.to_string(),
                class: c,
                images: (0..3).map(|i| PathBuf::from(format!("{c}/{i}.png"))).collect(),
            })
            .collect();
        let specs = build_specs(&classes, 7, 5);
        assert_eq!(specs.len(), 7);
        for s in &specs {
            assert_eq!(s.target, s.index % 3);
            assert_eq!(s.target_quadrants().iter().filter(|t| **t).count(), 2);
            let mut paths: Vec<&PathBuf> = s.tiles.iter().map(|(_, p)| p).collect();
            paths.sort();
            paths.dedup();
            assert_eq!(paths.len(), 4);
        }
        // Seeded: the same seed gives the same mosaics, another seed other ones.
        let again = build_specs(&classes, 7, 5);
        assert!(specs.iter().zip(&again).all(|(a, b)| a.tiles == b.tiles));
        assert!(build_specs(&classes, 7, 6).iter().zip(&specs).any(|(a, b)| a.tiles != b.tiles));
    }

    #[test]
    fn reliability_of_perfectly_consistent_methods() {
        // Three methods whose precision order is the same in every mosaic: α = 1, ρ = 1;
        // a method undefined everywhere gets undefined ρ and no rank.
        let methods: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        let mut rows = vec![];
        for m in 0..4 {
            for (i, meth) in methods.iter().enumerate() {
                let v = (i < 3).then_some(0.1 * (i as f64 + 1.0) + 0.01 * m as f64);
                rows.push(MosaicRow {
                    mosaic: m,
                    target_class: 0,
                    target_folder: "0".into(),
                    method: meth.clone(),
                    confusion: Confusion { tp: 0.0, fn_: 0.0, fp: 0.0, tn: 0.0 },
                    metrics: METRICS.iter().map(|k| (k.to_string(), v)).collect(),
                });
            }
        }
        let r = reliability("precision", &methods, 4, &rows);
        assert!((r.alpha.unwrap() - 1.0).abs() < 1e-12);
        assert!((r.spearman[0][1].unwrap() - 1.0).abs() < 1e-12);
        assert_eq!(r.spearman[0][3], None);
        assert_eq!(r.defined["d"], 0);
        assert_eq!(r.mean["d"], None);
    }
}
