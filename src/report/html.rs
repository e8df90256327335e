//! The page: escaping, embedded images (base64 PNG data URIs), maps through a
//! colour-blind-safe colour map (cividis; signed maps through ColorBrewer's
//! RdBu, blue − / red +) on their own percentile scale or a shared linear one
//! (the page's toggle swaps them), top-5 % outlines as SVG paths, sortable
//! tables and the inline CSS and script.

use base64::Engine;
use image::{Rgb, RgbImage};
use ndarray::ArrayView2;
use std::fmt::Write;

/// HTML-escape text for element content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An image as a `data:image/png;base64,…` URI.
pub(crate) fn png_uri(img: &RgbImage) -> String {
    let mut buf = Vec::new();
    // Encoding into memory cannot fail for an RGB8 buffer of the stated size.
    let _ = img.write_with_encoder(image::codecs::png::PngEncoder::new_with_quality(
        &mut buf,
        image::codecs::png::CompressionType::Best,
        image::codecs::png::FilterType::Adaptive,
    ));
    data_uri("image/png", &buf)
}

pub(crate) fn data_uri(mime: &str, bytes: &[u8]) -> String {
    format!("data:{mime};base64,{}", base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// The value range one colour scale covers (several maps share one).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Scale {
    pub lo: f32,
    pub hi: f32,
    /// Signed: symmetric about 0 through the diverging map.
    pub signed: bool,
}

impl Scale {
    /// The finite range of all `maps` (a flat or empty range becomes [v, v + 1]).
    pub(crate) fn of(maps: &[ArrayView2<f32>]) -> Self {
        let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
        for m in maps {
            for &v in m.iter().filter(|v| v.is_finite()) {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
        if !lo.is_finite() {
            (lo, hi) = (0.0, 1.0);
        }
        if hi <= lo {
            hi = lo + 1.0;
        }
        Self { lo, hi, signed: false }
    }

    /// Symmetric about 0: [−max|v|, max|v|].
    pub(crate) fn signed_of(map: ArrayView2<f32>) -> Self {
        let m = map.iter().filter(|v| v.is_finite()).fold(0.0f32, |a, v| a.max(v.abs()));
        let m = if m > 0.0 { m } else { 1.0 };
        Self { lo: -m, hi: m, signed: true }
    }

    /// Position of `v` on the scale, in [0, 1].
    pub(crate) fn t(&self, v: f32) -> f64 {
        if !v.is_finite() {
            return 0.0;
        }
        (((v - self.lo) / (self.hi - self.lo)) as f64).clamp(0.0, 1.0)
    }

    pub(crate) fn color(&self, v: f32) -> Rgb<u8> {
        color_at(self.signed, self.t(v))
    }

    pub(crate) fn name(&self) -> &'static str {
        if self.signed {
            "RdBu (ColorBrewer, colour-blind safe): blue −, white 0, red +"
        } else {
            "cividis (colour-blind safe): dark blue low, yellow high"
        }
    }
}

/// The colour at `t` ∈ [0, 1]: cividis, or RdBu reversed (blue at 0, red at 1) for signed maps.
pub(crate) fn color_at(signed: bool, t: f64) -> Rgb<u8> {
    let c = if signed { colorous::RED_BLUE.eval_continuous(1.0 - t) } else { colorous::CIVIDIS.eval_continuous(t) };
    Rgb([c.r, c.g, c.b])
}

/// A map through `scale`, one pixel per value.
pub(crate) fn colorize(map: ArrayView2<f32>, scale: &Scale) -> RgbImage {
    let (h, w) = map.dim();
    RgbImage::from_fn(w as u32, h as u32, |x, y| scale.color(map[[y as usize, x as usize]]))
}

/// Each pixel's percentile rank in [0, 1] ([`crate::output::percentiles`]).
pub(crate) fn percentiles(map: ArrayView2<f32>) -> ndarray::Array2<f32> {
    crate::output::percentiles(map)
}

/// A map through cividis on its own percentile scale (colour = the pixel's rank).
pub(crate) fn colorize_percentile(map: ArrayView2<f32>) -> RgbImage {
    colorize(percentiles(map).view(), &Scale { lo: 0.0, hi: 1.0, signed: false })
}

/// The real values at a map's percentiles 0, 50, 95 and 100 (its own scale's legend).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Quantiles {
    pub min: f32,
    pub median: f32,
    pub top5: f32,
    pub max: f32,
}

impl Quantiles {
    pub(crate) fn of(map: ArrayView2<f32>) -> Self {
        let mut v: Vec<f32> = map.iter().copied().filter(|v| v.is_finite()).collect();
        if v.is_empty() {
            return Self { min: 0.0, median: 0.0, top5: 0.0, max: 0.0 };
        }
        v.sort_by(f32::total_cmp);
        let at = |q: f64| v[((q * (v.len() - 1) as f64).round() as usize).min(v.len() - 1)];
        Self { min: v[0], median: at(0.5), top5: at(0.95), max: v[v.len() - 1] }
    }

    /// The four values formatted, for the page's script (the step-through's legend).
    pub(crate) fn labels(&self) -> [String; 4] {
        [self.min, self.median, self.top5, self.max].map(|v| num(Some(v as f64)))
    }
}

/// The `frac` share (rounded up) of pixels a map ranks first, in the order
/// insertion adds them (descending; ties: later pixels first, as the metrics
/// order them; non-finite values last).
pub(crate) fn top_mask(map: ArrayView2<f32>, frac: f64) -> ndarray::Array2<bool> {
    let flat: Vec<f32> = map.iter().map(|v| if v.is_finite() { *v } else { f32::NEG_INFINITY }).collect();
    let mut order: Vec<usize> = (0..flat.len()).collect();
    order.sort_by(|&a, &b| flat[b].total_cmp(&flat[a]).then(b.cmp(&a)));
    let k = ((frac * flat.len() as f64).ceil() as usize).min(flat.len());
    let mut mask = vec![false; flat.len()];
    for &i in &order[..k] {
        mask[i] = true;
    }
    ndarray::Array2::from_shape_vec(map.dim(), mask).expect("one flag per pixel")
}

/// The outline of a pixel mask as an SVG path (pixel edges, coordinates in
/// pixels times `scale`): every boundary edge once, outer borders clockwise and
/// holes anticlockwise, so the path's fill is exactly the mask.
pub(crate) fn outline_path(mask: ndarray::ArrayView2<bool>, scale: f32) -> String {
    let (h, w) = mask.dim();
    let inside =
        |y: isize, x: isize| y >= 0 && x >= 0 && (y as usize) < h && (x as usize) < w && mask[[y as usize, x as usize]];
    let vid = |x: usize, y: usize| y * (w + 1) + x;
    // Directed edges (from, to) between vertices on the (h+1)×(w+1) lattice.
    let mut edges: Vec<(usize, usize)> = vec![];
    for y in 0..h {
        for x in 0..w {
            if !mask[[y, x]] {
                continue;
            }
            let (yi, xi) = (y as isize, x as isize);
            if !inside(yi - 1, xi) {
                edges.push((vid(x, y), vid(x + 1, y)));
            }
            if !inside(yi, xi + 1) {
                edges.push((vid(x + 1, y), vid(x + 1, y + 1)));
            }
            if !inside(yi + 1, xi) {
                edges.push((vid(x + 1, y + 1), vid(x, y + 1)));
            }
            if !inside(yi, xi - 1) {
                edges.push((vid(x, y + 1), vid(x, y)));
            }
        }
    }
    let mut out_of: std::collections::HashMap<usize, Vec<usize>> = std::collections::HashMap::new();
    for (i, e) in edges.iter().enumerate() {
        out_of.entry(e.0).or_default().push(i);
    }
    let mut used = vec![false; edges.len()];
    let xy = |v: usize| (v % (w + 1), v / (w + 1));
    let mut d = String::new();
    for start in 0..edges.len() {
        if used[start] {
            continue;
        }
        // Follow unused edges until the loop closes (every vertex has as many edges in as out).
        let mut pts = vec![edges[start].0];
        let mut e = start;
        loop {
            used[e] = true;
            let v = edges[e].1;
            pts.push(v);
            match out_of.get(&v).and_then(|l| l.iter().copied().find(|&i| !used[i])) {
                Some(next) => e = next,
                None => break,
            }
        }
        // Drop the points in the middle of straight runs.
        let mut keep: Vec<(usize, usize)> = vec![];
        for (k, &p) in pts.iter().enumerate() {
            let (x, y) = xy(p);
            if k > 0 && k + 1 < pts.len() {
                let ((x0, y0), (x1, y1)) = (xy(pts[k - 1]), xy(pts[k + 1]));
                if (x0 == x && x == x1) || (y0 == y && y == y1) {
                    continue;
                }
            }
            keep.push((x, y));
        }
        for (k, (x, y)) in keep.iter().enumerate() {
            let _ = write!(d, "{}{} {}", if k == 0 { "M" } else { "L" }, *x as f32 * scale, *y as f32 * scale);
        }
        d.push('Z');
    }
    d
}

/// An image embedded once (a CSS class with it as background) and shown
/// under several overlays (the top-5 % outlines, the query boxes): the page
/// carries one copy instead of one per panel.
pub(crate) struct Backdrop {
    class: String,
    /// The image's width and height (the overlays' viewBox).
    pub w: u32,
    pub h: u32,
}

impl Backdrop {
    /// The backdrop and the `<style>` element that defines it (to put in the page once, before its uses).
    pub(crate) fn new(image: &RgbImage, class: &str) -> (Self, String) {
        let style = format!("<style>.{class}{{background-image:url({})}}</style>", png_uri(image));
        (Self { class: class.to_string(), w: image.width(), h: image.height() }, style)
    }

    /// The opening tag of a stack showing the image (close it with `</div>`), described by `alt`.
    pub(crate) fn open(&self, alt: &str) -> String {
        format!(r#"<div class="stack bg {}" role="img" aria-label="{}">"#, self.class, esc(alt))
    }
}

/// The top-5 % outline of `map` drawn over the backdrop (`map` at the image's
/// size or smaller: the path is scaled up to it). `alt` describes it.
pub(crate) fn outline_figure(b: &Backdrop, map: ArrayView2<f32>, caption: &str, alt: &str, panel: &str) -> String {
    let (w, h) = (b.w, b.h);
    let scale = w as f32 / map.dim().1.max(1) as f32;
    format!(
        r#"<figure class="panel top5" data-panel="{panel}">{}<svg class="boxes" viewBox="0 0 {w} {h}" aria-hidden="true">{}</svg></div><figcaption>{}</figcaption></figure>"#,
        b.open(alt),
        outline_svg(&outline_path(top_mask(map, TOP_FRACTION).view(), scale)),
        esc(caption)
    )
}

/// The share of pixels the outline marks: those insertion adds first and deletion removes first.
pub(crate) const TOP_FRACTION: f64 = 0.05;

/// The outline's path: a dark halo under a bright line, so it shows on any image.
pub(crate) fn outline_svg(d: &str) -> String {
    format!(
        r##"<path class="top5-halo" d="{d}" fill="none" stroke="#000" stroke-opacity="0.7" stroke-width="3.5" stroke-linejoin="round" vector-effect="non-scaling-stroke"/><path class="top5" d="{d}" fill="none" stroke="#E69F00" stroke-width="1.8" stroke-linejoin="round" vector-effect="non-scaling-stroke"/>"##
    )
}

/// A map panel: on its own percentile scale (`src`), the shared scale's PNG in
/// `data-src-shared` for the page's toggle, and its own legend.
pub(crate) fn map_panel(
    own: &RgbImage,
    shared: &RgbImage,
    q: &Quantiles,
    caption: &str,
    alt: &str,
    panel: &str,
    id: &str,
) -> String {
    format!(
        r#"<figure class="panel {panel}" data-panel="{panel}"><img src="{}" data-src-shared="{}" alt="{}"><figcaption>{}</figcaption>{}</figure>"#,
        png_uri(own),
        png_uri(shared),
        esc(alt),
        esc(caption),
        percentile_legend(q, id)
    )
}

/// The own-scale legend of one map: the colour bar by percentile, labelled
/// with the map's real values at its minimum, median, top-5 % threshold and maximum.
pub(crate) fn percentile_legend(q: &Quantiles, id: &str) -> String {
    let mut stops = String::new();
    for i in 0..=10 {
        let t = i as f64 / 10.0;
        let c = color_at(false, t);
        let _ = write!(stops, r#"<stop offset="{t}" stop-color="rgb({},{},{})"/>"#, c[0], c[1], c[2]);
    }
    let [lo, mid, top, hi] = q.labels();
    format!(
        r##"<svg class="legend-own" role="img" width="226" height="46" viewBox="0 0 226 46" aria-labelledby="{id}-lt"><title id="{id}-lt">{title}</title><defs><linearGradient id="{id}-lg">{stops}</linearGradient></defs><rect x="6" y="12" width="214" height="10" fill="url(#{id}-lg)" stroke="#444"/><line x1="209.3" y1="8" x2="209.3" y2="26" stroke="#E69F00" stroke-width="2"/><text x="209.3" y="7" font-size="9" text-anchor="end">top 5 % ≥ <tspan class="q-top">{top}</tspan></text><text x="6" y="36" font-size="10" class="q-min">{lo}</text><text x="113" y="36" font-size="10" text-anchor="middle" class="q-med">{mid}</text><text x="220" y="36" font-size="10" text-anchor="end" class="q-max">{hi}</text><text x="113" y="45" font-size="8" text-anchor="middle" fill="#555">own scale: percentile (min · median · max)</text></svg>"##,
        title = esc(&format!(
            "own colour scale, by percentile (cividis): minimum {lo}, median {mid}, top 5 % from {top}, maximum {hi}"
        )),
    )
}

/// Shrink an image by an integer factor so that its longer side is at most `max` (box average).
pub(crate) fn shrink(img: &RgbImage, max: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let k = w.max(h).div_ceil(max.max(1)).max(1);
    if k == 1 {
        return img.clone();
    }
    image::imageops::resize(img, (w / k).max(1), (h / k).max(1), image::imageops::FilterType::Triangle)
}

/// `image` blended 50 % with the coloured map (the map resized to the image).
pub(crate) fn blend(img: &RgbImage, map: ArrayView2<f32>, scale: &Scale) -> RgbImage {
    let (w, h) = img.dimensions();
    let m = crate::image::resize_map(map, h as usize, w as usize);
    blend_rgb(img, &colorize(m.view(), scale))
}

/// `image` blended 50 % with the map on its own percentile scale.
pub(crate) fn blend_percentile(img: &RgbImage, map: ArrayView2<f32>) -> RgbImage {
    let (w, h) = img.dimensions();
    let m = crate::image::resize_map(map, h as usize, w as usize);
    blend_rgb(img, &colorize_percentile(m.view()))
}

fn blend_rgb(img: &RgbImage, colored: &RgbImage) -> RgbImage {
    RgbImage::from_fn(img.width(), img.height(), |x, y| {
        let (a, b) = (img.get_pixel(x, y), colored.get_pixel(x, y));
        Rgb([0, 1, 2].map(|i| ((a[i] as u16 + b[i] as u16) / 2) as u8))
    })
}

/// Format a number for a table or label: 4 significant decimals, or "–" when missing.
pub fn num(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e9 => format!("{v:.0}"),
        Some(v) if v.is_finite() => {
            if v != 0.0 && (v.abs() >= 1e5 || v.abs() < 1e-3) {
                format!("{v:.3e}")
            } else {
                format!("{v:.4}")
            }
        }
        Some(v) => format!("{v}"),
        None => "–".into(),
    }
}

/// `<img>` with its alt text (every image has one).
pub(crate) fn img(uri: &str, alt: &str, attrs: &str) -> String {
    format!(r#"<img src="{uri}" alt="{}" {attrs}>"#, esc(alt))
}

/// An inline SVG colour bar for `scale` with its end and middle values.
pub(crate) fn legend(scale: &Scale, label: &str) -> String {
    let id = format!("g{:x}", (scale.lo.to_bits() as u64) << 32 | scale.hi.to_bits() as u64);
    let mut stops = String::new();
    for i in 0..=10 {
        let t = i as f64 / 10.0;
        let c = color_at(scale.signed, t);
        let _ = write!(stops, r#"<stop offset="{t}" stop-color="rgb({},{},{})"/>"#, c[0], c[1], c[2]);
    }
    let mid = (scale.lo + scale.hi) / 2.0;
    format!(
        r##"<figure class="legend"><svg role="img" width="260" height="44" viewBox="0 0 260 44" aria-labelledby="{id}t"><title id="{id}t">{title}</title><defs><linearGradient id="{id}">{stops}</linearGradient></defs><rect x="10" y="4" width="240" height="14" fill="url(#{id})" stroke="#444"/><text x="10" y="34" font-size="11">{lo}</text><text x="130" y="34" font-size="11" text-anchor="middle">{mid}</text><text x="250" y="34" font-size="11" text-anchor="end">{hi}</text></svg><figcaption>{label}</figcaption></figure>"##,
        title = esc(&format!(
            "colour scale {}: {} to {}",
            scale.name(),
            num(Some(scale.lo as f64)),
            num(Some(scale.hi as f64))
        )),
        lo = num(Some(scale.lo as f64)),
        mid = num(Some(mid as f64)),
        hi = num(Some(scale.hi as f64)),
        label = esc(&format!("{label} — {}", scale.name())),
    )
}

/// [`legend`] for a shared scale behind the page's toggle: shown only while every map is on it.
pub(crate) fn shared_legend(scale: &Scale, label: &str) -> String {
    legend(scale, label).replacen(r#"<figure class="legend">"#, r#"<figure class="legend legend-shared">"#, 1)
}

/// The page's scale toggle (only on pages with maps that have a shared-scale version).
const SCALE_TOGGLE: &str = r#"<div class="scalebar" role="group" aria-label="Colour scale of the maps"><button type="button" class="scale-toggle" aria-pressed="false">Show every map on one shared scale</button><span class="scale-note">Now: each map on its <strong>own scale</strong> by percentile (colour = the pixel's rank in its map, the order insertion and deletion follow; each legend gives the map's real values). Shared: one linear scale for the maps compared, so their values can be compared.</span></div>"#;

/// One cell of a sortable table: its HTML and the value it sorts by.
pub(crate) struct Cell {
    pub html: String,
    pub sort: Option<String>,
}

impl Cell {
    pub(crate) fn text(s: &str) -> Self {
        Self { html: esc(s), sort: None }
    }
    pub(crate) fn num(v: Option<f64>) -> Self {
        Self { html: num(v), sort: Some(v.filter(|v| v.is_finite()).map_or("".into(), |v| v.to_string())) }
    }
    pub(crate) fn html(html: String, sort: &str) -> Self {
        Self { html, sort: Some(sort.to_string()) }
    }
}

/// A table whose column headers are buttons that sort it (numbers by value, text alphabetically).
pub(crate) fn sortable_table(id: &str, caption: &str, headers: &[&str], rows: &[Vec<Cell>]) -> String {
    let mut s = format!(
        r#"<div class="scroll"><table class="sortable" id="{id}"><caption>{}</caption><thead><tr>"#,
        esc(caption)
    );
    for (i, h) in headers.iter().enumerate() {
        let _ = write!(
            s,
            r#"<th scope="col" aria-sort="none"><button type="button" data-col="{i}">{}</button></th>"#,
            esc(h)
        );
    }
    s.push_str("</tr></thead><tbody>");
    for r in rows {
        s.push_str("<tr>");
        for c in r {
            match &c.sort {
                Some(v) => {
                    let _ = write!(s, r#"<td data-v="{}">{}</td>"#, esc(v), c.html);
                }
                None => {
                    let _ = write!(s, "<td>{}</td>", c.html);
                }
            }
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table></div>");
    s
}

/// A plain key/value table.
pub(crate) fn kv_table(caption: &str, rows: &[(String, String)]) -> String {
    let mut s = format!(r#"<div class="scroll"><table class="kv"><caption>{}</caption><tbody>"#, esc(caption));
    for (k, v) in rows {
        let _ = write!(s, r#"<tr><th scope="row">{}</th><td>{}</td></tr>"#, esc(k), esc(v));
    }
    s.push_str("</tbody></table></div>");
    s
}

/// Every leaf of a JSON value as (dotted key, value) rows; arrays of
/// numbers stay on one row, long arrays of objects are summarised.
pub(crate) fn flatten(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
    use serde_json::Value;
    let key = |k: &str| if prefix.is_empty() { k.to_string() } else { format!("{prefix}.{k}") };
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                flatten(&key(k), v, out);
            }
        }
        Value::Array(a) if a.iter().any(|x| x.is_object()) && a.len() > 8 => {
            out.push((prefix.to_string(), format!("{} entries", a.len())))
        }
        Value::Array(a) if a.iter().any(|x| x.is_object() || x.is_array()) => {
            for (i, x) in a.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), x, out);
            }
        }
        Value::String(s) => out.push((prefix.to_string(), s.clone())),
        Value::Null => out.push((prefix.to_string(), "–".into())),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

/// A finished page: head with inline style and script, then `body`.
pub(crate) fn page(title: &str, kind: &str, problems: &[String], body: &str) -> String {
    let mut s = String::with_capacity(body.len() + 8192);
    s.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    s.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    // Everything is inline: no network, fonts from the system only.
    s.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; media-src data: file: 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\n");
    let _ = write!(s, "<title>{}</title>\n<style>{CSS}</style>\n</head>\n", esc(title));
    let _ = write!(s, "<body data-kind=\"{}\">\n<main>\n<h1>{}</h1>\n", esc(kind), esc(title));
    if body.contains("data-src-shared") {
        s.push_str(SCALE_TOGGLE);
    }
    if !problems.is_empty() {
        s.push_str(r#"<section class="problems" id="problems" aria-labelledby="problems-h"><h2 id="problems-h">Missing or unreadable</h2><ul>"#);
        for p in problems {
            let _ = write!(s, r#"<li class="missing">{}</li>"#, esc(p));
        }
        s.push_str("</ul></section>\n");
    }
    s.push_str(body);
    let _ = write!(
        s,
        "\n<footer><p>Made by borex report {}. Self-contained: no network, no external files.</p></footer>\n</main>\n<script>{JS}</script>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION")
    );
    s
}

/// A box, shown where a file should have been.
pub(crate) fn missing(what: &str) -> String {
    format!(r#"<p class="missing" role="note">{}</p>"#, esc(what))
}

const CSS: &str = r#"
:root{color-scheme:light;--fg:#1b1b1b;--mut:#555;--bd:#ccc;--acc:#0b5cad}
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:#fff;margin:0}
main{max-width:1200px;margin:0 auto;padding:1rem 1.5rem}
h1{font-size:1.5rem}h2{font-size:1.2rem;border-bottom:1px solid var(--bd);padding-bottom:.2rem;margin-top:2rem}
h3{font-size:1.05rem}
.row{display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-start}
figure{margin:0}figcaption{font-size:.85rem;color:var(--mut);max-width:30rem}.panel figcaption{max-width:226px}
.panel img,.panel svg.boxes{width:224px;height:224px;image-rendering:pixelated;border:1px solid var(--bd)}
.panel img.step-map{image-rendering:auto}
.stack{position:relative;width:226px;height:226px}.stack>*{position:absolute;left:0;top:0}
.stack.bg{background-repeat:no-repeat;background-position:1px 1px;background-size:224px 224px}
.thumb{width:64px;height:64px;image-rendering:pixelated;vertical-align:middle}
.strip{display:flex;gap:4px;overflow-x:auto;padding-bottom:.5rem}.strip figure{text-align:center}
.strip img{width:72px;height:72px;image-rendering:pixelated}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
caption{text-align:left;font-weight:600;padding:.3rem 0}
th,td{border:1px solid var(--bd);padding:.2rem .45rem;text-align:left;vertical-align:middle}
td[data-v]{text-align:right;font-variant-numeric:tabular-nums}
th button{font:inherit;font-weight:600;background:none;border:0;padding:0;cursor:pointer;color:var(--acc)}
th button::after{content:" \2195";color:var(--mut)}
th[aria-sort=ascending] button::after{content:" \2191"}th[aria-sort=descending] button::after{content:" \2193"}
button,input{font:inherit}
:focus-visible{outline:3px solid #e69f00;outline-offset:2px}
.fname{display:inline-block;max-width:16rem;overflow:hidden;text-overflow:ellipsis;white-space:nowrap;vertical-align:bottom}
h2,h3{overflow-wrap:anywhere}
.scroll{overflow-x:auto}.kv th{font-weight:500;color:var(--mut)}
.missing{background:#fff4d6;border:1px solid #c90;padding:.3rem .5rem}
.problems{border:2px solid #c90;padding:.2rem 1rem;margin:1rem 0}
.controls{display:flex;gap:.5rem;align-items:center;margin:.5rem 0}
.controls input[type=range]{width:260px}
.notes li{font-size:.9rem}
video{max-width:100%;border:1px solid var(--bd)}
footer{color:var(--mut);font-size:.8rem;margin-top:2rem}
html{scroll-padding-top:5.5rem}
.scalebar{position:sticky;top:0;z-index:2;background:#fff;border-bottom:1px solid var(--bd);padding:.4rem 0;display:flex;gap:.8rem;align-items:center}
.scale-toggle{padding:.3rem .7rem;border:1px solid var(--acc);border-radius:4px;background:#fff;color:var(--acc);cursor:pointer;white-space:nowrap}
.scale-toggle[aria-pressed=true]{background:var(--acc);color:#fff}
.scale-note{font-size:.8rem;color:var(--mut)}
.panel svg.legend-own{display:block;margin-top:2px}
body.scale-shared .legend-own,body:not(.scale-shared) .legend-shared{display:none}
"#;

const JS: &str = r#"
(function(){
"use strict";
function key(td){var v=td.getAttribute("data-v");if(v!==null){if(v==="")return[1,0];var f=parseFloat(v);if(!isNaN(f))return[0,f];return[0,v.toLowerCase()];}return[0,td.textContent.trim().toLowerCase()];}
function cmp(a,b){if(a[0]!==b[0])return a[0]-b[0];if(a[1]<b[1])return -1;if(a[1]>b[1])return 1;return 0;}
document.querySelectorAll("table.sortable").forEach(function(t){
  t.querySelectorAll("th button").forEach(function(btn){
    btn.addEventListener("click",function(){
      var th=btn.parentElement,col=+btn.getAttribute("data-col");
      var dir=th.getAttribute("aria-sort")==="ascending"?"descending":"ascending";
      t.querySelectorAll("th").forEach(function(h){h.setAttribute("aria-sort","none");});
      th.setAttribute("aria-sort",dir);
      var body=t.tBodies[0],rows=Array.prototype.slice.call(body.rows);
      rows.sort(function(a,b){var c=cmp(key(a.cells[col]),key(b.cells[col]));return dir==="ascending"?c:-c;});
      rows.forEach(function(r){body.appendChild(r);});
    });
  });
});
var shared=false,refresh=[];
function setScale(on){
  shared=on;document.body.classList.toggle("scale-shared",on);
  document.querySelectorAll("img[data-src-shared]").forEach(function(i){
    if(i.ownSrc===undefined)i.ownSrc=i.getAttribute("src");
    i.setAttribute("src",on?i.getAttribute("data-src-shared"):i.ownSrc);
  });
  document.querySelectorAll("button.scale-toggle").forEach(function(b){
    b.setAttribute("aria-pressed",on?"true":"false");
    b.textContent=on?"Show each map on its own scale":"Show every map on one shared scale";
  });
  document.querySelectorAll(".scale-note").forEach(function(n){
    n.innerHTML=on?"Now: the maps compared share <strong>one linear scale</strong> (the legend under them). Own scale: each map by percentile, so its pixel order shows.":"Now: each map on its <strong>own scale</strong> by percentile (colour = the pixel's rank in its map, the order insertion and deletion follow; each legend gives the map's real values). Shared: one linear scale for the maps compared, so their values can be compared.";
  });
  refresh.forEach(function(f){f();});
}
document.querySelectorAll("button.scale-toggle").forEach(function(b){b.addEventListener("click",function(){setScale(!shared);});});
document.querySelectorAll("[data-steps]").forEach(function(box){
  var data=JSON.parse(document.getElementById(box.getAttribute("data-steps")).textContent);
  var range=box.querySelector("input[type=range]"),img=box.querySelector("img.step-map");
  var label=box.querySelector(".step-label"),rect=box.querySelector("rect.step-box");
  function show(k){
    k=Math.max(0,Math.min(data.steps.length-1,k));range.value=k;
    var s=data.steps[k];img.src=shared?s.src_shared:s.src;img.alt=s.alt;label.textContent=s.label;
    var top=box.querySelector("path.top5"),halo=box.querySelector("path.top5-halo");
    if(top){top.setAttribute("d",s.outline);halo.setAttribute("d",s.outline);}
    var lg=box.querySelector("svg.legend-own");
    if(lg){["q-min","q-med","q-top","q-max"].forEach(function(c,i){lg.querySelector("."+c).textContent=s.quantiles[i];});}
    if(rect){if(s.box){rect.setAttribute("x",s.box[0]);rect.setAttribute("y",s.box[1]);rect.setAttribute("width",s.box[2]);rect.setAttribute("height",s.box[3]);rect.style.display="";}else{rect.style.display="none";}}
  }
  range.addEventListener("input",function(){show(+range.value);});
  box.querySelector("button.prev").addEventListener("click",function(){show(+range.value-1);});
  box.querySelector("button.next").addEventListener("click",function(){show(+range.value+1);});
  show(+range.value);
  refresh.push(function(){show(+range.value);});
});
})();
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_scales() {
        assert_eq!(esc(r#"<a href="x">&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
        let m = ndarray::array![[1.0f32, 3.0], [f32::NAN, 2.0]];
        let s = Scale::of(&[m.view()]);
        assert_eq!((s.lo, s.hi), (1.0, 3.0));
        assert_eq!(s.t(2.0), 0.5);
        // cividis runs from dark blue to yellow; the signed map from blue to red.
        let (a, b) = (color_at(false, 0.0), color_at(false, 1.0));
        assert!(a[2] > a[0] && b[0] > b[2], "{a:?} {b:?}");
        let (neg, pos) = (color_at(true, 0.0), color_at(true, 1.0));
        assert!(neg[2] > neg[0] && pos[0] > pos[2], "{neg:?} {pos:?}");
        let signed = Scale::signed_of(ndarray::array![[-2.0f32, 1.0]].view());
        assert_eq!((signed.lo, signed.hi), (-2.0, 2.0));
    }

    #[test]
    fn percentile_ranks_and_quantiles() {
        // A skewed map: one huge value does not squash the others (min–max would).
        let m = ndarray::array![[5.0f32, 1000.0], [0.0, 5.0], [f32::NAN, 2.0]];
        let r = percentiles(m.view());
        // Sorted: NaN (lowest), 0, 2, 5, 5, 1000 → ranks 0..5, the tied 5s share 3.5; over 5.
        assert_eq!(r, ndarray::array![[0.7f32, 1.0], [0.2, 0.7], [0.0, 0.4]]);
        let q = Quantiles::of(m.view());
        assert_eq!((q.min, q.median, q.top5, q.max), (0.0, 5.0, 1000.0, 1000.0));
    }

    #[test]
    fn top_mask_takes_the_first_pixels_insertion_adds() {
        let m = ndarray::Array2::from_shape_fn((10, 10), |(y, x)| (y * 10 + x) as f32);
        let t = top_mask(m.view(), 0.05);
        assert_eq!(t.iter().filter(|b| **b).count(), 5);
        assert!((95..100).all(|i| t[[i / 10, i % 10]]));
        // Ties: later pixels first, as the metrics order them.
        let flat = ndarray::Array2::<f32>::zeros((4, 5));
        let t = top_mask(flat.view(), 0.05);
        assert!(t[[3, 4]] && t.iter().filter(|b| **b).count() == 1);
    }

    /// Winding number of the point (px, py) for the closed polygons of an SVG path of M/L/Z commands.
    fn winding(d: &str, px: f64, py: f64) -> i32 {
        let mut loops: Vec<Vec<(f64, f64)>> = vec![];
        for part in d.split('Z').filter(|p| !p.is_empty()) {
            let pts = part
                .split(['M', 'L'])
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let mut it = p.split(' ').map(|v| v.parse::<f64>().unwrap());
                    (it.next().unwrap(), it.next().unwrap())
                })
                .collect();
            loops.push(pts);
        }
        let mut wn = 0;
        for l in loops {
            for i in 0..l.len() {
                let (a, b) = (l[i], l[(i + 1) % l.len()]);
                if a.1 <= py && b.1 > py && (b.0 - a.0) * (py - a.1) - (px - a.0) * (b.1 - a.1) > 0.0 {
                    wn += 1;
                } else if a.1 > py && b.1 <= py && (b.0 - a.0) * (py - a.1) - (px - a.0) * (b.1 - a.1) < 0.0 {
                    wn -= 1;
                }
            }
        }
        wn
    }

    #[test]
    fn outline_fills_exactly_the_mask() {
        // Pseudo-random masks (holes, diagonal touches, pixels on the border), and the edge cases.
        let mut state = 12345u64;
        let mut masks = vec![ndarray::Array2::from_elem((3, 4), false), ndarray::Array2::from_elem((3, 4), true)];
        masks.push(ndarray::array![[true, false], [false, true]]);
        masks.push(ndarray::array![[true, true, true], [true, false, true], [true, true, true]]);
        for _ in 0..20 {
            masks.push(ndarray::Array2::from_shape_fn((9, 11), |_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (state >> 33).is_multiple_of(3)
            }));
        }
        for m in masks {
            let d = outline_path(m.view(), 2.0);
            for ((y, x), inside) in m.indexed_iter() {
                let wn = winding(&d, 2.0 * (x as f64 + 0.5), 2.0 * (y as f64 + 0.5));
                assert_eq!(wn != 0, *inside, "pixel ({y}, {x}) of {m:?}: winding {wn}, path {d}");
            }
        }
    }
}
