//! The counterfactual page: per target the original, the counterfactual,
//! the signed change on a symmetric scale, the changed-pixel mask and the
//! class probabilities before and after.

use super::html::{self, esc, img, legend, num, png_uri, Scale};
use super::views::{read_array, read_json, read_map, read_png, CounterfactualReport};
use super::Problems;
use crate::error::Result;
use image::{Rgb, RgbImage};
use std::fmt::Write;
use std::path::Path;

/// Shown at least this large (small inputs such as MNIST digits are enlarged, nearest neighbour).
const MIN_SIDE: u32 = 112;

fn enlarge(i: &RgbImage) -> RgbImage {
    let (w, h) = i.dimensions();
    let k = (MIN_SIDE / w.min(h).max(1)).max(1);
    if k == 1 {
        return i.clone();
    }
    image::imageops::resize(i, w * k, h * k, image::imageops::FilterType::Nearest)
}

/// A C×H×W array in [0, 1] as RGB (grey for one channel).
fn to_rgb(a: &ndarray::ArrayD<f32>) -> Option<RgbImage> {
    let a = a.view().into_dimensionality::<ndarray::Ix3>().ok()?;
    let (c, h, w) = a.dim();
    if c == 0 {
        return None;
    }
    Some(RgbImage::from_fn(w as u32, h as u32, |x, y| {
        Rgb([0, 1, 2].map(|k| (a[[k.min(c - 1), y as usize, x as usize]] * 255.0).round().clamp(0.0, 255.0) as u8))
    }))
}

fn figure(s: &mut String, i: &RgbImage, alt: &str, caption: &str, panel: &str) {
    let _ = write!(
        s,
        r#"<figure class="panel" data-panel="{panel}">{}<figcaption>{}</figcaption></figure>"#,
        img(&png_uri(&enlarge(i)), alt, ""),
        esc(caption)
    );
}

pub fn page(dir: &Path, problems: &mut Problems) -> Result<String> {
    let r: CounterfactualReport = read_json(&dir.join("report.json"))?;
    if r.targets.len() > crate::limits::MAX_TARGETS {
        return Err(crate::error::BorexError::invalid(format!(
            "{}: {} targets, more than the {} a counterfactual run makes: not a report borex wrote",
            dir.join("report.json").display(),
            r.targets.len(),
            crate::limits::MAX_TARGETS
        )));
    }
    let (h, w) = (r.space.height, r.space.width);
    // Stored from an f32: shown rounded (0.01, not 0.009999999776…).
    let threshold = r.settings_view().change_threshold as f32;
    let shown = num(Some(threshold as f64));
    // The original: the first panel of overlay.png (enlarged by an integer factor k there).
    let original = problems.keep(read_png(&dir.join("overlay.png"))).and_then(|o| {
        let k = (MIN_SIDE / (h.min(w).max(1) as u32)).max(1);
        if h == 0 || o.width() < w as u32 * k || o.height() < h as u32 * k {
            problems.push(format!("{}: smaller than the report's {h}×{w} input", dir.join("overlay.png").display()));
            return None;
        }
        Some(RgbImage::from_fn(w as u32, h as u32, |x, y| *o.get_pixel(x * k, y * k)))
    });
    let start = match (&r.start_label, r.start_class) {
        (Some(l), Some(c)) => format!("{l} ({c})"),
        (_, Some(c)) => format!("class {c}"),
        _ => "?".into(),
    };
    let mut s = format!(
        "<p>The model predicts <strong>{}</strong> with probability {} on the original. {} target(s).</p>",
        esc(&start),
        num(r.start_probability),
        r.targets.len()
    );
    if r.model_robust != Some(true) {
        s.push_str(r#"<p class="missing" role="note">The model is not declared robust: expect adversarial-looking changes rather than meaningful ones.</p>"#);
    }
    // Every target's signed change first: the page's shared scale is symmetric over all of them.
    let changes: Vec<Option<ndarray::Array2<f32>>> = r
        .targets
        .iter()
        .map(|t| {
            let suffix = if r.targets.len() == 1 { String::new() } else { format!("_{}", t.class) };
            let f = t.files.get("change").map_or(format!("change{suffix}.npy"), String::clone);
            problems.keep(super::confined(dir, &f, &dir.join("report.json")).and_then(|p| read_map(&p)))
        })
        .collect();
    let shared_max = changes.iter().flatten().map(|m| Scale::signed_of(m.view()).hi).fold(0.0f32, f32::max);
    let shared = Scale { lo: -shared_max, hi: shared_max, signed: true };
    for (ti, t) in r.targets.iter().enumerate() {
        let name = t.label.clone().map_or(format!("class {}", t.class), |l| format!("{l} ({})", t.class));
        let _ = write!(
            s,
            r#"<section id="target-{ti}" aria-labelledby="target-{ti}-h"><h2 id="target-{ti}-h">Towards {}</h2>"#,
            esc(&name)
        );
        // report.json names the files: each must lie in the folder (super::confined).
        let report_json = dir.join("report.json");
        let file =
            |k: &str, default: &str| super::confined(dir, t.files.get(k).map_or(default, String::as_str), &report_json);
        let suffix = if r.targets.len() == 1 { String::new() } else { format!("_{}", t.class) };
        let cf = problems.keep(file("npy", &format!("counterfactual{suffix}.npy")).and_then(|p| read_array(&p)));
        let signed = changes[ti].clone();
        let abs = problems.keep(file("change_abs", &format!("change_abs{suffix}.npy")).and_then(|p| read_map(&p)));
        s.push_str(r#"<div class="row">"#);
        match &original {
            Some(o) => figure(&mut s, o, "The original image", "original", "original"),
            None => s.push_str(&html::missing("original: overlay.png is missing or unreadable")),
        }
        match cf.as_ref().and_then(to_rgb) {
            Some(c) => {
                figure(&mut s, &c, &format!("The counterfactual towards {name}"), "counterfactual", "counterfactual")
            }
            None => s.push_str(&html::missing("counterfactual .npy is missing or not C×H×W")),
        }
        let mut scale = None;
        match &signed {
            Some(m) => {
                let sc = Scale::signed_of(m.view());
                let alt = "Signed change summed over channels: blue lowers, red raises the pixel";
                if r.targets.len() > 1 {
                    // Own scale (this target's largest change) by default; all targets' behind the toggle.
                    let _ = write!(
                        s,
                        r#"<figure class="panel" data-panel="change"><img src="{}" data-src-shared="{}" alt="{}"><figcaption>signed change (summed over channels)</figcaption></figure>"#,
                        png_uri(&enlarge(&html::colorize(m.view(), &sc))),
                        png_uri(&enlarge(&html::colorize(m.view(), &shared))),
                        esc(alt)
                    );
                } else {
                    figure(
                        &mut s,
                        &html::colorize(m.view(), &sc),
                        alt,
                        "signed change (summed over channels)",
                        "change",
                    );
                }
                scale = Some(sc);
            }
            None => s.push_str(&html::missing("change .npy is missing or unreadable")),
        }
        match &abs {
            Some(a) => {
                let changed = a.iter().filter(|v| **v > threshold).count();
                let mask = RgbImage::from_fn(a.dim().1 as u32, a.dim().0 as u32, |x, y| {
                    if a[[y as usize, x as usize]] > threshold {
                        Rgb([0, 0, 0])
                    } else {
                        Rgb([255, 255, 255])
                    }
                });
                figure(
                    &mut s,
                    &mask,
                    &format!("Changed-pixel mask: {changed} pixels whose change summed over channels exceeds {shown}"),
                    &format!("changed pixels (black): Σ|change| > {shown}: {changed}"),
                    "mask",
                );
            }
            None => s.push_str(&html::missing("change_abs .npy is missing or unreadable")),
        }
        if let (Some(o), Some(a)) = (&original, &abs) {
            if a.dim() == (o.height() as usize, o.width() as usize) {
                let (b, style) = html::Backdrop::new(&enlarge(o), &format!("bg-t{ti}"));
                s.push_str(&style);
                s.push_str(&html::outline_figure(
                    &b,
                    a.view(),
                    "the 5 % of pixels changed most (Σ|change|), outlined",
                    "The original with the 5 % of pixels changed most outlined",
                    "change-top",
                ));
            }
        }
        s.push_str("</div>");
        if let Some(sc) = scale {
            if r.targets.len() > 1 {
                s.push_str(
                    &legend(
                        &sc,
                        "Own scale: this target's signed change (pixel units in [0, 1], summed over channels)",
                    )
                    .replacen(
                        r#"<figure class="legend">"#,
                        r#"<figure class="legend legend-own">"#,
                        1,
                    ),
                );
                s.push_str(&html::shared_legend(&shared, "Shared scale: every target's signed change"));
            } else {
                s.push_str(&legend(&sc, "Signed change (pixel units in [0, 1], summed over channels)"));
            }
        }
        let rows = vec![
            (format!("P({name})"), format!("{} → {}", num(t.probability_before), num(t.probability_after))),
            (format!("P({start})"), format!("{} → {}", num(r.start_probability), num(t.start_probability_after))),
            ("predicted after".into(), t.predicted_after.map_or("?".into(), |c| c.to_string())),
            ("success (P(target) > 0.5)".into(), t.success.map_or("?".into(), |b| b.to_string())),
            (
                "changed pixels (any channel > threshold, from the run)".into(),
                format!(
                    "{} ({}%)",
                    t.changed_pixels.map_or("?".into(), |c| c.to_string()),
                    num(t.changed_fraction.map(|f| 100.0 * f))
                ),
            ),
        ];
        let mut rows = rows;
        rows.extend(t.norms.iter().map(|(k, v)| (format!("‖δ‖ {k}"), num(Some(*v)))));
        s.push_str(&html::kv_table("Probabilities before → after, and the size of the change", &rows));
        s.push_str("</section>");
    }
    let mut settings = vec![];
    html::flatten("", &r.settings, &mut settings);
    if let Some(m) = &r.model {
        settings.push(("model".into(), m.clone()));
    }
    settings.extend(r.timings_ms.iter().map(|(k, v)| (format!("time {k}"), format!("{} ms", num(Some(*v))))));
    s.push_str("<h2>Settings and timings</h2>");
    s.push_str(&html::kv_table("Settings", &settings));
    if !r.notes.is_empty() {
        s.push_str(r#"<ul class="notes">"#);
        for n in &r.notes {
            let _ = write!(s, "<li>{}</li>", esc(n));
        }
        s.push_str("</ul>");
    }
    Ok(s)
}
