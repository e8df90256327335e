//! Pages of `borex eval` (summary tables, paired tests, plots, per-image
//! rows with their maps and curves) and `borex eval mosaic` (each mosaic
//! with its maps, the per-mosaic table and the reliability table).

use super::html::{self, esc, img, num, png_uri, Cell, Scale};
use super::svg::{self, Series};
use super::views::{read_json, read_map, read_png, Csv};
use super::Problems;
use crate::error::Result;
use crate::eval::mosaic::MosaicSummary;
use crate::eval::summary::{BaselineSummary, MeanStd, PairedTest, ResultRow, Summary, RESULTS_HEADER};
use crate::eval::Record;
use std::fmt::Write;
use std::path::{Path, PathBuf};

const METRIC_NAMES: [(&str, &str); 5] = [
    ("insertion_blur", "insertion (blur start) ↑"),
    ("insertion_zero", "insertion (zero start) ↑"),
    ("deletion", "deletion ↓"),
    ("ins_del_blur", "insertion(blur) − deletion ↑"),
    ("ins_del_zero", "insertion(zero) − deletion ↑"),
];

fn mean_std(v: Option<&Option<MeanStd>>) -> String {
    match v.and_then(Option::as_ref) {
        Some(MeanStd { mean, std: Some(s), n }) => format!("{} ± {} (n = {n})", num(Some(*mean)), num(Some(*s))),
        Some(MeanStd { mean, std: None, n }) => format!("{} (n = {n})", num(Some(*mean))),
        None => "–".into(),
    }
}

fn tests_rows(rows: &mut Vec<Vec<Cell>>, who: &str, against: &str, tests: &[PairedTest]) {
    for t in tests {
        let w = t.wilcoxon.as_ref();
        rows.push(vec![
            Cell::text(who),
            Cell::text(against),
            Cell::text(&t.metric),
            Cell::num(Some(t.mean_gain)),
            Cell::html(format!("{} / {}", t.wins, t.n), &t.wins.to_string()),
            Cell::num(w.map(|w| w.w)),
            Cell::num(w.map(|w| w.p)),
            Cell::num(w.map(|w| w.rank_biserial)),
        ]);
    }
}

/// `borex eval`: `summary.json`, `results.csv`, `plots/`, `runs/`.
pub fn eval(dir: &Path, problems: &mut Problems) -> Result<String> {
    let summary: Summary = read_json(&dir.join("summary.json"))?;
    let results: Vec<ResultRow> = crate::output::read_csv_rows(&dir.join("results.csv"), &RESULTS_HEADER)?;
    let mut s = String::new();
    let seeds: Vec<String> = summary.seeds.iter().map(u64::to_string).collect();
    let info = vec![
        ("command".to_string(), summary.command.clone()),
        ("model".to_string(), summary.model.clone()),
        ("machine".to_string(), summary.machine.clone()),
        ("images".to_string(), summary.images.to_string()),
        ("seeds".to_string(), format!("[{}]", seeds.join(","))),
    ];
    s.push_str(&html::kv_table("Run", &info));

    // Summary tables: mean ± std per method and map.
    s.push_str("<h2 id=\"summary\">Summary</h2>");
    let mut test_rows = vec![];
    for m in &summary.methods {
        let method = m.method.as_str();
        // RISE continued from the prior (`eval --baselines`), where the run has them.
        let baseline_name = |b: &BaselineSummary| format!("{} ({} masks)", b.baseline, b.masks);
        let _ = write!(
            s,
            r#"<div class="scroll"><table><caption>{}: mean ± std per metric</caption><thead><tr><th scope="col">metric</th><th scope="col">prior</th>"#,
            esc(method)
        );
        for v in &m.variants {
            let _ = write!(s, r#"<th scope="col">refined: {}</th>"#, esc(&v.variant));
        }
        for b in &m.baselines {
            let _ = write!(s, r#"<th scope="col">{}</th>"#, esc(&baseline_name(b)));
        }
        s.push_str("</tr></thead><tbody>");
        for (key, name) in METRIC_NAMES {
            let _ = write!(s, r#"<tr><th scope="row">{}</th><td>{}</td>"#, esc(name), esc(&mean_std(m.prior.get(key))));
            for v in &m.variants {
                let _ = write!(s, "<td>{}</td>", esc(&mean_std(v.refined.get(key))));
            }
            for b in &m.baselines {
                let _ = write!(s, "<td>{}</td>", esc(&mean_std(b.map.get(key))));
            }
            s.push_str("</tr>");
        }
        s.push_str("</tbody></table></div>");
        for v in &m.variants {
            tests_rows(&mut test_rows, method, &format!("refined {} vs prior", v.variant), &v.tests);
        }
        for b in &m.baselines {
            let name = baseline_name(b);
            tests_rows(&mut test_rows, method, &format!("{name} vs prior"), &b.vs_prior);
            for rv in &b.refined_vs {
                tests_rows(&mut test_rows, method, &format!("refined {} vs {name}", rv.variant), &rv.tests);
            }
        }
    }
    for c in &summary.versus_first {
        tests_rows(&mut test_rows, &c.method, &format!("vs {}", c.reference), &c.tests);
    }
    s.push_str("<h2 id=\"tests\">Paired tests</h2><p>Two-sided Wilcoxon signed-rank test over (image, seed) pairs; gain: better than the reference when &gt; 0.</p>");
    if test_rows.is_empty() {
        s.push_str("<p>No paired tests (one method, no refinement).</p>");
    } else {
        s.push_str(&html::sortable_table(
            "tests",
            "Paired tests",
            &["method", "comparison", "metric", "mean gain", "wins / n", "W", "p", "rank-biserial r"],
            &test_rows,
        ));
    }
    if !summary.failures.is_empty() {
        s.push_str("<h3>Failures</h3><ul>");
        for x in &summary.failures {
            let _ = write!(s, "<li>{}: {}</li>", esc(&format!("{:?}", x.image.display().to_string())), esc(&x.error));
        }
        s.push_str("</ul>");
    }

    // Plots written by eval.
    s.push_str("<h2 id=\"plots\">Plots</h2>");
    let mut plots: Vec<PathBuf> = std::fs::read_dir(dir.join("plots"))
        .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "png")).collect())
        .unwrap_or_default();
    plots.sort();
    if plots.is_empty() {
        problems.push(format!("{}: no plots", dir.join("plots").display()));
    }
    for p in plots {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if let Some(i) = problems.keep(read_png(&p)) {
            let what = if name.starts_with("curves") {
                "mean insertion and deletion curves per map"
            } else {
                "prior vs refined scores, one point per image and seed"
            };
            let _ = write!(
                s,
                r#"<figure>{}<figcaption>{}: {}</figcaption></figure>"#,
                img(&png_uri(&i), &format!("Plot {name}: {what}"), r#"style="max-width:100%""#),
                esc(&name),
                what
            );
        }
    }

    // Per-image rows, each linking to its maps.
    let keys: Vec<String> = {
        let mut k: Vec<String> = results.iter().map(|r| r.key.clone()).collect();
        k.sort();
        k.dedup();
        k
    };
    let mut rows = vec![];
    for r in &results {
        let key = r.key.as_str();
        let pos = keys.iter().position(|k| k == key).unwrap_or(0);
        let link = if pos < super::runs::MAX_SECTIONS {
            format!(r##"<a href="#img-{}" class="fname" title="{}">{}</a>"##, esc(key), esc(key), esc(key))
        } else {
            format!(r#"<span class="fname" title="{}">{}</span>"#, esc(key), esc(key))
        };
        let mut cells = vec![
            Cell::html(link, key),
            Cell::text(&r.method),
            Cell::num(Some(r.seed as f64)),
            Cell::text(&r.map),
            Cell::html(esc(&format!("{} ({})", r.label, r.class)), &r.class.to_string()),
            Cell::num(Some(r.probability)),
        ];
        for v in [r.insertion_blur, r.insertion_zero, r.deletion, r.ins_del_blur, r.ins_del_zero] {
            cells.push(Cell::num(Some(v)));
        }
        rows.push(cells);
    }
    s.push_str("<h2 id=\"rows\">Per image</h2>");
    s.push_str(&html::sortable_table(
        "results",
        "results.csv: one row per image, method, seed and map",
        &[
            "image",
            "method",
            "seed",
            "map",
            "class",
            "probability",
            "ins. (blur)",
            "ins. (zero)",
            "deletion",
            "ins.−del. (blur)",
            "ins.−del. (zero)",
        ],
        &rows,
    ));
    for key in keys.iter().take(super::runs::MAX_SECTIONS) {
        s.push_str(&eval_image(dir, key, problems));
    }
    Ok(s)
}

/// One image's maps: per method and seed, the prior and every refined map on one scale, and their curves.
fn eval_image(dir: &Path, key: &str, problems: &mut Problems) -> String {
    let base = match super::confined(&dir.join("runs"), key, &dir.join("results.csv")) {
        Ok(b) => b,
        Err(e) => {
            problems.keep::<()>(Err(e));
            return String::new();
        }
    };
    let mut s = format!(
        r#"<section id="img-{}" aria-labelledby="img-{}-h"><h3 id="img-{}-h">{}</h3>"#,
        esc(key),
        esc(key),
        esc(key),
        esc(key)
    );
    let mut groups: Vec<PathBuf> = std::fs::read_dir(&base)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().is_dir())
                .flat_map(|m| {
                    std::fs::read_dir(m.path())
                        .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect::<Vec<_>>())
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default();
    groups.sort();
    if groups.is_empty() {
        problems.push(format!("{}: no maps", base.display()));
        s.push_str(&html::missing("no maps under runs/ for this image"));
    }
    for g in groups {
        let mut recs: Vec<(String, Record, Option<ndarray::Array2<f32>>)> = vec![];
        let mut files: Vec<PathBuf> = std::fs::read_dir(&g)
            .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "json")).collect())
            .unwrap_or_default();
        // The prior first, then the refinements by name.
        files.sort_by_key(|p| (p.file_stem().is_none_or(|s| s != "prior"), p.clone()));
        for jf in files {
            let Some(rec) = problems.keep(read_json::<Record>(&jf)) else { continue };
            let map = problems.keep(read_map(&jf.with_extension("npy")));
            let label = match &rec.variant {
                Some(v) => format!("refined: {v}"),
                None => "prior".into(),
            };
            recs.push((label, rec, map));
        }
        let Some((_, first, _)) = recs.first() else { continue };
        let (method, seed) = (first.method.clone(), first.seed.to_string());
        let views: Vec<_> = recs.iter().filter_map(|r| r.2.as_ref().map(|m| m.view())).collect();
        let scale = Scale::of(&views);
        let _ = write!(s, r#"<h4>{} · seed {}</h4><div class="row">"#, esc(&method), esc(&seed));
        for (label, rec, map) in &recs {
            let sc = &rec.scores;
            let cap = format!(
                "{label}: insertion (blur) {}, deletion {}",
                num(Some(sc.insertion_blur)),
                num(Some(sc.deletion))
            );
            match map {
                Some(m) => {
                    // eval keeps no model input: the top 5 % is outlined on the map itself.
                    let (h, w) = m.dim();
                    let k = s.matches(r#"data-panel="eval-map""#).count();
                    let _ = write!(
                        s,
                        r#"<figure class="panel" data-panel="eval-map"><div class="stack"><img src="{}" data-src-shared="{}" alt="{}"><svg class="boxes" viewBox="0 0 {w} {h}" aria-hidden="true">{}</svg></div><figcaption>{}</figcaption>{}</figure>"#,
                        png_uri(&html::colorize_percentile(m.view())),
                        png_uri(&html::colorize(m.view(), &scale)),
                        esc(&format!("{method} {label} map of {key}, seed {seed}, its top 5 % outlined")),
                        html::outline_svg(&html::outline_path(
                            html::top_mask(m.view(), html::TOP_FRACTION).view(),
                            1.0
                        )),
                        esc(&format!("{cap}; top 5 % outlined")),
                        html::percentile_legend(&html::Quantiles::of(m.view()), &format!("e-{}-{k}", esc(key)))
                    );
                }
                None => s.push_str(&html::missing(&format!("{label}: map missing or unreadable"))),
            }
        }
        let curves: Vec<(String, Vec<f32>)> = recs
            .iter()
            .flat_map(|(label, rec, _)| {
                let c = &rec.scores.curves;
                [("insertion_blur", &c.insertion_blur), ("deletion", &c.deletion)]
                    .into_iter()
                    .filter(|(_, v)| !v.is_empty())
                    .map(move |(k, v)| (format!("{label} {k} (AUC {})", num(Some(super::auc(v)))), v.clone()))
            })
            .collect();
        if !curves.is_empty() {
            let series: Vec<Series> = curves.iter().map(|(n, v)| Series { name: n.clone(), values: v }).collect();
            s.push_str(&svg::curves(
                &format!("{key}: {method}, seed {seed}"),
                "fraction of pixels inserted / deleted",
                "P(class)",
                &series,
            ));
        }
        s.push_str("</div>");
        s.push_str(&html::shared_legend(&scale, "Shared scale: this group's maps"));
    }
    s.push_str(r##"<p><a href="#rows">back to the table</a></p></section>"##);
    s
}

/// `borex eval mosaic`: `summary.json`, `mosaics.csv`, `mosaics/`.
pub fn mosaic(dir: &Path, problems: &mut Problems) -> Result<String> {
    let summary: MosaicSummary = read_json(&dir.join("summary.json"))?;
    let csv = Csv::read(&dir.join("mosaics.csv"))?;
    let methods = &summary.methods;
    let mut s = String::new();
    let info = vec![
        ("command".to_string(), summary.command.clone()),
        ("folder".to_string(), summary.folder.display().to_string()),
        ("seed".to_string(), summary.seed.to_string()),
    ];
    s.push_str(&html::kv_table("Run", &info));

    // Reliability: mean per method, Krippendorff's α, Spearman between methods.
    s.push_str("<h2 id=\"reliability\">Reliability</h2>");
    let mut rows = vec![];
    for r in &summary.reliability {
        let mut cells = vec![Cell::text(&r.metric)];
        for m in methods {
            cells.push(Cell::num(r.mean.get(m).copied().flatten()));
        }
        cells.push(Cell::num(r.alpha));
        rows.push(cells);
    }
    let mut headers: Vec<String> = vec!["metric".into()];
    headers.extend(methods.iter().map(|m| format!("mean: {m}")));
    headers.push("Krippendorff α (ordinal)".into());
    let hs: Vec<&str> = headers.iter().map(String::as_str).collect();
    s.push_str(&html::sortable_table(
        "reliability",
        "Per metric: mean over mosaics where defined (– undefined), and the reliability of the method ranking",
        &hs,
        &rows,
    ));

    // Per-mosaic rows.
    let mut rows = vec![];
    for row in &csv.rows {
        let mut cells = vec![];
        for (h, v) in csv.header.iter().zip(row) {
            cells.push(if h == "mosaic" {
                let n: usize = v.parse().unwrap_or(0);
                Cell::html(format!(r##"<a href="#mosaic-{n}">{}</a>"##, esc(v)), v)
            } else if h == "tiles" || h == "method" || h == "target_folder" {
                Cell::text(v)
            } else {
                Cell::num(v.parse().ok())
            });
        }
        rows.push(cells);
    }
    let hs: Vec<&str> = csv.header.iter().map(String::as_str).collect();
    s.push_str("<h2 id=\"rows\">Per mosaic and method</h2>");
    s.push_str(&html::sortable_table("mosaics", "mosaics.csv (empty: undefined)", &hs, &rows));

    // Each mosaic with its maps (written by eval mosaic as mosaics/mosaic_NNN_METHOD.npy).
    s.push_str("<h2>Mosaics</h2>");
    let mut pngs: Vec<PathBuf> = std::fs::read_dir(dir.join("mosaics"))
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.extension().is_some_and(|e| e == "png")
                        && p.file_stem().is_some_and(|s| s.to_string_lossy().matches('_').count() == 1)
                })
                .collect()
        })
        .unwrap_or_default();
    pngs.sort();
    for (i, p) in pngs.iter().enumerate().take(super::runs::MAX_SECTIONS) {
        let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let n: usize = stem.trim_start_matches("mosaic_").parse().unwrap_or(i);
        let _ = write!(s, r#"<section id="mosaic-{n}"><h3>Mosaic {n}</h3><div class="row">"#);
        if let Some(im) = problems.keep(read_png(p)) {
            let _ = write!(
                s,
                r#"<figure class="panel">{}<figcaption>{}</figcaption></figure>"#,
                img(&png_uri(&im), &format!("Mosaic {n}: four tiles, two of the target class"), ""),
                esc(&stem)
            );
        }
        let maps: Vec<(String, ndarray::Array2<f32>)> = methods
            .iter()
            .filter_map(|m| {
                let mp = p.with_file_name(format!("{stem}_{}.npy", crate::eval::file_safe(m)));
                if mp.exists() {
                    problems.keep(read_map(&mp)).map(|a| (m.clone(), a))
                } else {
                    None
                }
            })
            .collect();
        for (m, a) in &maps {
            let sc = Scale::of(&[a.view()]);
            let _ = write!(
                s,
                r#"<figure class="panel" data-panel="mosaic-map">{}<figcaption>{} (own min–max scale)</figcaption></figure>"#,
                img(&png_uri(&html::colorize(a.view(), &sc)), &format!("{m} map of mosaic {n}"), ""),
                esc(m)
            );
        }
        if maps.is_empty() {
            s.push_str(&html::missing("no maps saved for this mosaic (runs before borex report saved none)"));
        }
        s.push_str(r##"</div><p><a href="#rows">back to the table</a></p></section>"##);
    }
    if pngs.is_empty() {
        problems.push(format!("{}: no mosaic images", dir.join("mosaics").display()));
    }
    Ok(s)
}
