//! The refine page (and each image's section of a many-image run): image,
//! prior and refined maps each on its own percentile scale (one shared scale
//! behind the page's toggle) with their top 5 % outlined, overlays, the
//! queries drawn on the image, a step-through of the posterior after each query,
//! insertion/deletion curves, settings, timings and the model.

use super::html::{self, esc, img, num, png_uri, Cell, Scale};
use super::svg::{self, Series};
use super::views::{read_json, read_map, read_png, RefineReportView};
use super::Problems;
use crate::error::Result;
use crate::refine::pipeline::RefineCurves;
use ndarray::Array2;
use std::fmt::Write;
use std::path::Path;

/// At most this many posterior maps in the step-through (evenly spaced beyond it).
pub const MAX_STEPS: usize = 50;

/// What a section needs to show and what a table row needs to say about it.
pub struct Loaded {
    pub report: RefineReportView,
    pub image: Option<image::RgbImage>,
    pub prior: Option<Array2<f32>>,
    pub refined: Option<Array2<f32>>,
    pub curves: Option<RefineCurves>,
}

/// Read a refine folder; `report.json` must be there, the rest is marked missing in `problems`.
pub fn load(dir: &Path, problems: &mut Problems) -> Result<Loaded> {
    let report: RefineReportView = read_json(&dir.join("report.json"))?;
    // The step-through refits the GP at every shown step (O(n³) each): a report of more
    // queries than refine makes is not one it wrote, and would take minutes.
    let n = report.observations.len();
    if n > crate::limits::MAX_ITERS {
        return Err(crate::error::BorexError::invalid(format!(
            "{}: {n} observations, more than the {} a refine makes: not a report borex wrote",
            dir.join("report.json").display(),
            crate::limits::MAX_ITERS
        )));
    }
    let prior = problems.keep(read_map(&dir.join("prior.npy")));
    let refined = problems.keep(read_map(&dir.join("refined.npy")));
    let (h, w) = report.input_size().or(prior.as_ref().map(|p| p.dim())).unwrap_or((0, 0));
    let image = problems.keep(read_png(&dir.join("overlay.png"))).and_then(|o| {
        // overlay.png's first panel is the model input as RGB.
        if h == 0 || o.width() < w as u32 || o.height() < h as u32 {
            problems.push(format!("{}: smaller than the {h}×{w} model input", dir.join("overlay.png").display()));
            return None;
        }
        Some(image::imageops::crop_imm(&o, 0, 0, w as u32, h as u32).to_image())
    });
    for (name, m) in [("prior.npy", &prior), ("refined.npy", &refined)] {
        if let Some(m) = m {
            if h > 0 && m.dim() != (h, w) {
                problems.push(format!("{}: {:?}, the report says {h}×{w}", dir.join(name).display(), m.dim()));
            }
        }
    }
    let curves_path = dir.join("curves.json");
    let curves = if curves_path.exists() {
        problems.keep(read_json::<RefineCurves>(&curves_path))
    } else {
        problems.push(format!(
            "{}: absent (written by refine since borex report; the curves are left out, the AUCs are shown)",
            curves_path.display()
        ));
        None
    };
    Ok(Loaded { report, image, prior, refined, curves })
}

/// (label, prior, refined, higher is better) for each metric the report has.
pub fn scores(r: &RefineReportView) -> Vec<(&'static str, Option<f64>, Option<f64>, bool)> {
    let mut v = vec![];
    if r.prior.insertion_blur.is_some() || r.refined.insertion_blur.is_some() {
        v.push(("insertion (blur start)", r.prior.insertion_blur, r.refined.insertion_blur, true));
    }
    if r.prior.insertion_zero.is_some() || r.refined.insertion_zero.is_some() {
        v.push(("insertion (zero start)", r.prior.insertion_zero, r.refined.insertion_zero, true));
    }
    if v.is_empty() {
        v.push(("insertion", r.prior.insertion, r.refined.insertion, true));
    }
    v.push(("deletion", r.prior.deletion, r.refined.deletion, false));
    v
}

/// The gain refined over prior (deletion: lower is better, so prior − refined).
pub fn gain(p: Option<f64>, r: Option<f64>, higher: bool) -> Option<f64> {
    Some(if higher { r? - p? } else { p? - r? })
}

/// One refine's section. `id` prefixes element ids; `steps` adds the posterior step-through.
pub fn section(l: &Loaded, id: &str, steps: bool, problems: &mut Problems) -> String {
    let r = &l.report;
    let mut s = String::new();
    let n = r.observations.len();
    let _ = write!(
        s,
        "<p>Class <strong>{}</strong>, probability {}; prior <code>{}</code>, {n} queries, {} model evaluations.</p>",
        esc(&r.class_name()),
        num(r.probability),
        esc(r.prior.method.as_deref().unwrap_or("?")),
        r.model_evaluations.map_or("?".into(), |v| v.to_string()),
    );
    if n == 0 {
        // The antithetic continuation (or any refinement without box queries): nothing to step through.
        let why = match r.settings.get("objective").and_then(|v| v.as_str()) {
            Some("antithetic") => " (objective <code>antithetic</code>: the evaluations went to the complements of the RISE prior's masks)",
            _ => "",
        };
        let _ = write!(s, "<p class=\"no-queries\">No box queries{why}: no boxes to draw and no step-through.</p>");
    }
    let step_maps = match (&l.prior, steps && n > 0) {
        (Some(p), true) => problems.keep(
            super::steps::posterior_steps(r, p.view(), MAX_STEPS)
                .map_err(|e| crate::error::BorexError::invalid(format!("step-through of the posterior: {e}"))),
        ),
        _ => None,
    };
    let mut views: Vec<ndarray::ArrayView2<f32>> = vec![];
    views.extend(l.prior.iter().map(|m| m.view()));
    views.extend(l.refined.iter().map(|m| m.view()));
    if let Some(st) = &step_maps {
        views.extend(st.maps.iter().map(|(_, m)| m.view()));
    }
    let scale = Scale::of(&views);

    // Each map on its own percentile scale (the shared scale behind the page's toggle) with its
    // top 5 % outlined on the image beside it; then the image, each map over it, the query boxes.
    // The image is embedded once more, as the background under every outline and box.
    let backdrop = l.image.as_ref().map(|i| {
        let (b, style) = html::Backdrop::new(i, &format!("bg-{id}"));
        s.push_str(&style);
        b
    });
    s.push_str(r#"<div class="row maps">"#);
    for (name, m, what) in [("prior", &l.prior, "Prior map"), ("refined", &l.refined, "Refined map")] {
        match m {
            Some(m) => {
                let q = html::Quantiles::of(m.view());
                s.push_str(&html::map_panel(
                    &html::colorize_percentile(m.view()),
                    &html::colorize(m.view(), &scale),
                    &q,
                    &format!(
                        "{what} ({name}.npy), mean {}, range {} to {}",
                        num(Some(mean(m) as f64)),
                        num(Some(q.min as f64)),
                        num(Some(q.max as f64))
                    ),
                    &format!(
                        "{what}, coloured by percentile on its own scale (shared scale: {} to {})",
                        num(Some(scale.lo as f64)),
                        num(Some(scale.hi as f64))
                    ),
                    name,
                    &format!("{id}-{name}"),
                ));
                if let Some(b) = &backdrop {
                    s.push_str(&html::outline_figure(
                        b,
                        m.view(),
                        &format!("{what}: its top 5 % (the pixels insertion adds first and deletion removes first), outlined"),
                        &format!("The image with the {} top 5 % of pixels outlined", what.to_lowercase()),
                        &format!("{name}-top"),
                    ));
                }
            }
            None => s.push_str(&html::missing(&format!("{what}: {name}.npy is missing or unreadable"))),
        }
    }
    s.push_str("</div>");
    s.push_str(&html::shared_legend(&scale, "Shared scale: prior, refined and every posterior map"));
    if l.image.is_none() {
        s.push_str(&html::missing("image: overlay.png is missing or unreadable"));
    }
    if let Some(i) = &l.image {
        s.push_str(r#"<div class="row maps">"#);
        panel(&mut s, &png_uri(i), "The model input (the image as the model sees it)", "image", "image");
        for (name, m, what) in [("prior", &l.prior, "Prior"), ("refined", &l.refined, "Refined")] {
            if let Some(m) = m {
                let _ = write!(
                    s,
                    r#"<figure class="panel {name}-overlay" data-panel="{name}-overlay"><img src="{}" data-src-shared="{}" alt="{}"><figcaption>{}</figcaption></figure>"#,
                    png_uri(&html::blend_percentile(i, m.view())),
                    png_uri(&html::blend(i, m.view(), &scale)),
                    esc(&format!("{what} map blended over the image")),
                    esc(&format!("{what} map over the image (50 %)")),
                );
            }
        }
    }

    // Queries: every box on the image (in the overlays' row), the step-through, the table.
    if n > 0 {
        if let (Some(b), Some((h, w))) = (&backdrop, r.input_size()) {
            let _ = write!(
                s,
                r#"<figure class="panel">{}<svg class="boxes" viewBox="0 0 {w} {h}" role="img" aria-label="Every query's box on the image">"#,
                b.open(&format!("The image with the {n} query boxes drawn over it"))
            );
            for (k, o) in r.observations.iter().enumerate() {
                let (x, y, bw, bh) = box_rect(o.row, o.col, o.size, h, w);
                let (c, d) = if o.f > 0.0 { ("#E69F00", "") } else { ("#56B4E9", "4 2") };
                let _ = write!(
                    s,
                    r#"<rect x="{x}" y="{y}" width="{bw}" height="{bh}" fill="none" stroke="{c}" stroke-width="1.5" stroke-dasharray="{d}"><title>query {}: f = {}</title></rect><text x="{}" y="{}" font-size="9" fill="{c}">{}</text>"#,
                    k + 1,
                    num(Some(o.f)),
                    o.col,
                    o.row,
                    k + 1
                );
            }
            let _ = write!(s, "</svg></div><figcaption>Each query's box (orange solid: objective &gt; 0, light blue dashed: ≤ 0), numbered in order; the table lists each value.</figcaption></figure>");
        }
    }
    if l.image.is_some() {
        s.push_str("</div>");
    }
    if n > 0 {
        let _ = write!(s, "<h3 id=\"{id}-queries\">Queries</h3>");
        if let Some(st) = step_maps {
            step_through(&mut s, id, l, backdrop.as_ref(), &st, &scale);
        }
        let rows: Vec<Vec<Cell>> = r
            .observations
            .iter()
            .enumerate()
            .map(|(k, o)| {
                vec![
                    Cell::num(Some((k + 1) as f64)),
                    Cell::num(Some(o.row as f64)),
                    Cell::num(Some(o.col as f64)),
                    Cell::num(Some(o.size as f64)),
                    Cell::num(Some(o.p_inside)),
                    Cell::num(Some(o.p_outside)),
                    Cell::num(Some(o.f)),
                ]
            })
            .collect();
        s.push_str(&html::sortable_table(
            &format!("{id}-query-table"),
            "Queries in order: box centre (row, column), half-width, P(class | box kept), P(class | box removed), objective",
            &["query", "row", "column", "half-width", "P kept", "P removed", "objective"],
            &rows,
        ));
    }

    // Insertion / deletion.
    let _ = write!(s, "<h3 id=\"{id}-curves\">Insertion and deletion</h3>");
    let mut t = vec![];
    for (label, p, q, higher) in scores(r) {
        t.push((label.to_string(), format!("prior {}, refined {}, gain {}", num(p), num(q), num(gain(p, q, higher)))));
    }
    s.push_str(&html::kv_table("AUC (gain: refined better than prior when > 0)", &t));
    if let Some(c) = &l.curves {
        let mut series = vec![];
        for (map, m) in [("prior", &c.prior), ("refined", &c.refined)] {
            for (metric, values) in m {
                let auc = super::auc(values);
                series.push(Series { name: format!("{map} {metric} (AUC {})", num(Some(auc))), values });
            }
        }
        s.push_str(r#"<div class="row">"#);
        s.push_str(&svg::curves(
            "Insertion and deletion curves",
            "fraction of pixels inserted / deleted (most salient first)",
            "P(class)",
            &series,
        ));
        s.push_str("</div>");
    }

    // Settings, timings, model.
    let _ = write!(s, "<h3 id=\"{id}-settings\">Settings, timings and model</h3>");
    let mut info = vec![];
    if let Some(m) = &r.model {
        info.push(("model".to_string(), m.clone()));
    }
    if let Some(i) = &r.image {
        info.push(("image".to_string(), i.clone()));
    }
    html::flatten("device", &r.device, &mut info);
    s.push_str(r#"<div class="row">"#);
    s.push_str(&html::kv_table("Run", &info));
    let timings: Vec<(String, String)> =
        r.timings_ms.iter().map(|(k, v)| (k.clone(), format!("{} ms", num(Some(*v))))).collect();
    s.push_str(&html::kv_table("Timings", &timings));
    let mut settings = vec![];
    html::flatten("", &r.settings, &mut settings);
    s.push_str(&html::kv_table("Settings", &settings));
    s.push_str("</div>");
    if !r.notes.is_empty() {
        s.push_str(r#"<ul class="notes">"#);
        for note in &r.notes {
            let _ = write!(s, "<li>{}</li>", esc(note));
        }
        s.push_str("</ul>");
    }
    s
}

/// A step's map at half resolution when the input is at least 112 pixels on its short side: the posterior
/// is smooth on the scale of its length scales (≥ 12 pixels at 224²), and it halves the page.
fn step_view(m: &Array2<f32>) -> Array2<f32> {
    let (h, w) = m.dim();
    if h.min(w) >= 112 {
        crate::image::resize_map(m.view(), h / 2, w / 2)
    } else {
        m.clone()
    }
}

fn mean(m: &Array2<f32>) -> f32 {
    m.iter().sum::<f32>() / m.len().max(1) as f32
}

/// A query's box [r−s, r+s) × [q−s, q+s), clipped: (x, y, width, height).
fn box_rect(r: u32, q: u32, s: u32, h: usize, w: usize) -> (u32, u32, u32, u32) {
    let (r0, r1, c0, c1) = (r.saturating_sub(s), (r + s).min(h as u32), q.saturating_sub(s), (q + s).min(w as u32));
    (c0, r0, c1.saturating_sub(c0), r1.saturating_sub(r0))
}

fn panel(s: &mut String, uri: &str, caption: &str, alt: &str, class: &str) {
    let _ = write!(
        s,
        r#"<figure class="panel {class}" data-panel="{class}">{}<figcaption>{}</figcaption></figure>"#,
        img(uri, alt, ""),
        esc(caption)
    );
}

/// The step-through's data for the page's script: `{"steps": [...]}`.
#[derive(serde::Serialize)]
struct StepsData<'a> {
    steps: &'a [StepData],
}

/// One step of the step-through: the posterior map's PNG, its alt text and
/// label, and the query's box (x, y, width, height in model-input pixels).
#[derive(serde::Serialize)]
struct StepData {
    src: String,
    src_shared: String,
    outline: String,
    quantiles: [String; 4],
    alt: String,
    label: String,
    r#box: [u32; 4],
}

fn step_through(
    s: &mut String,
    id: &str,
    l: &Loaded,
    backdrop: Option<&html::Backdrop>,
    st: &super::steps::Steps,
    scale: &Scale,
) {
    let r = &l.report;
    let n = r.observations.len();
    let Some((h, w)) = r.input_size() else { return };
    let steps: Vec<StepData> = st
        .maps
        .iter()
        .map(|(k, m)| {
            let o = &r.observations[k - 1];
            let (x, y, bw, bh) = box_rect(o.row, o.col, o.size, h, w);
            let small = step_view(m);
            StepData {
                src: png_uri(&html::colorize_percentile(small.view())),
                src_shared: png_uri(&html::colorize(small.view(), scale)),
                outline: html::outline_path(html::top_mask(m.view(), html::TOP_FRACTION).view(), 1.0),
                quantiles: html::Quantiles::of(m.view()).labels(),
                alt: format!("Posterior mean map after query {k} of {n}"),
                label: format!(
                    "after query {k} of {n}: box at row {}, column {}, half-width {}; objective {}",
                    o.row,
                    o.col,
                    o.size,
                    num(Some(o.f))
                ),
                r#box: [x, y, bw, bh],
            }
        })
        .collect();
    let last = steps.len().saturating_sub(1);
    let data = serde_json::to_string(&StepsData { steps: &steps }).unwrap_or_default().replace("</", "<\\/");
    let first = &steps[last];
    let _ = write!(
        s,
        r#"<section class="steps" data-steps="{id}-steps-data" aria-labelledby="{id}-steps-h"><h4 id="{id}-steps-h">The posterior after each query</h4>
<div class="controls"><button type="button" class="prev" aria-label="previous query">◀ previous</button><label for="{id}-step">query</label><input type="range" id="{id}-step" min="0" max="{last}" step="1" value="{last}" aria-describedby="{id}-step-label"><button type="button" class="next" aria-label="next query">next ▶</button></div>
<p class="step-label" id="{id}-step-label" aria-live="polite">{label}</p><div class="row">"#,
        label = esc(&first.label)
    );
    if let Some(b) = backdrop {
        let _ = write!(
            s,
            r##"<figure class="panel">{}<svg class="boxes" viewBox="0 0 {w} {h}" aria-hidden="true"><rect class="step-box" fill="none" stroke="#E69F00" stroke-width="2.5"/></svg></div><figcaption>This query's box</figcaption></figure>"##,
            b.open("The image with the current query's box")
        );
    }
    let q = st.maps.last().map(|(_, m)| html::Quantiles::of(m.view())).unwrap_or(html::Quantiles {
        min: 0.0,
        median: 0.0,
        top5: 0.0,
        max: 0.0,
    });
    let _ = write!(
        s,
        r#"<figure class="panel step" data-panel="step">{}<figcaption>Posterior mean map after the query (own scale by percentile; shared: the scale above)</figcaption>{}</figure>"#,
        img(&first.src, &first.alt, r#"class="step-map""#),
        html::percentile_legend(&q, &format!("{id}-step"))
    );
    if let Some(b) = backdrop {
        let _ = write!(
            s,
            r#"<figure class="panel top5" data-panel="step-top">{}<svg class="boxes" viewBox="0 0 {w} {h}" aria-hidden="true">{}</svg></div><figcaption>This map's top 5 %, outlined</figcaption></figure>"#,
            b.open("The image with the current posterior map's top 5 % of pixels outlined"),
            html::outline_svg(&first.outline)
        );
    }
    let _ = write!(s, r#"</div><script type="application/json" id="{id}-steps-data">{data}</script></section>"#);
}
