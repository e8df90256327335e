//! Inline SVG plots: curves on [0, 1] × [0, 1] with a legend, in the
//! Okabe–Ito palette (distinguishable with colour blindness) and with dash
//! patterns, so no line is told apart by colour alone.

use super::html::esc;
use std::fmt::Write;

/// Okabe–Ito colours.
pub const PALETTE: [&str; 6] = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9"];
const DASHES: [&str; 4] = ["", "6 3", "2 2", "8 3 2 3"];

pub struct Series<'a> {
    pub name: String,
    pub values: &'a [f32],
}

/// A line plot of `series`, each sampled at equal steps over x ∈ [0, 1].
pub fn curves(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> String {
    let (w, l, r, t, b) = (440.0, 48.0, 12.0, 28.0, 40.0);
    let ph = 232.0;
    let h = t + ph + b + 14.0 * series.len() as f64;
    let pw = w - l - r;
    let y_max = series.iter().flat_map(|s| s.values.iter()).copied().filter(|v| v.is_finite()).fold(1.0f32, f32::max);
    let mut s = format!(
        r##"<svg class="plot" role="img" width="{w}" height="{h}" viewBox="0 0 {w} {h}" aria-label="{}"><title>{}</title><rect x="{l}" y="{t}" width="{pw}" height="{ph}" fill="#fff" stroke="#888"/>"##,
        esc(title),
        esc(title)
    );
    let _ = write!(s, r#"<text x="{}" y="18" font-size="13" text-anchor="middle">{}</text>"#, w / 2.0, esc(title));
    for i in 0..=4 {
        let f = i as f64 / 4.0;
        let (x, y) = (l + f * pw, t + ph - f * ph);
        let _ = write!(
            s,
            r##"<line x1="{x}" y1="{}" x2="{x}" y2="{}" stroke="#ddd"/><text x="{x}" y="{}" font-size="10" text-anchor="middle">{f}</text><line x1="{l}" y1="{y}" x2="{}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" font-size="10" text-anchor="end">{:.2}</text>"##,
            t,
            t + ph,
            t + ph + 14.0,
            l + pw,
            l - 4.0,
            y + 3.0,
            f * y_max as f64
        );
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" font-size="11" text-anchor="middle">{}</text><text x="12" y="{}" font-size="11" text-anchor="middle" transform="rotate(-90 12 {})">{}</text>"#,
        l + pw / 2.0,
        t + ph + 30.0,
        esc(x_label),
        t + ph / 2.0,
        t + ph / 2.0,
        esc(y_label)
    );
    for (k, ser) in series.iter().enumerate() {
        let n = ser.values.len();
        if n == 0 {
            continue;
        }
        let pts: Vec<String> = ser
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let x = l + pw * i as f64 / (n.max(2) - 1) as f64;
                let y = t + ph - ph * (v.clamp(0.0, y_max) / y_max) as f64;
                format!("{x:.1},{y:.1}")
            })
            .collect();
        let (c, d) = (PALETTE[k % PALETTE.len()], DASHES[k % DASHES.len()]);
        let _ = write!(
            s,
            r#"<polyline fill="none" stroke="{c}" stroke-width="1.8" stroke-dasharray="{d}" points="{}"><title>{}</title></polyline>"#,
            pts.join(" "),
            esc(&ser.name)
        );
        let ly = t + ph + 44.0 + 14.0 * k as f64;
        let _ = write!(
            s,
            r#"<line x1="{}" y1="{ly}" x2="{}" y2="{ly}" stroke="{c}" stroke-width="2" stroke-dasharray="{d}"/><text x="{}" y="{}" font-size="10">{}</text>"#,
            l,
            l + 22.0,
            l + 26.0,
            ly + 3.0,
            esc(&ser.name)
        );
    }
    s.push_str("</svg>");
    s
}
