//! The page: escaping, embedded images (base64 PNG data URIs), maps through a
//! colour-blind-safe colour map (cividis; signed maps through ColorBrewer's
//! RdBu, blue − / red +), sortable tables and the inline CSS and script.

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
    let m = crate::output::resize_map(map, h as usize, w as usize);
    RgbImage::from_fn(w, h, |x, y| {
        let (a, b) = (img.get_pixel(x, y), scale.color(m[[y as usize, x as usize]]));
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
document.querySelectorAll("[data-steps]").forEach(function(box){
  var data=JSON.parse(document.getElementById(box.getAttribute("data-steps")).textContent);
  var range=box.querySelector("input[type=range]"),img=box.querySelector("img.step-map");
  var label=box.querySelector(".step-label"),rect=box.querySelector("rect.step-box");
  function show(k){
    k=Math.max(0,Math.min(data.steps.length-1,k));range.value=k;
    var s=data.steps[k];img.src=s.src;img.alt=s.alt;label.textContent=s.label;
    if(rect){if(s.box){rect.setAttribute("x",s.box[0]);rect.setAttribute("y",s.box[1]);rect.setAttribute("width",s.box[2]);rect.setAttribute("height",s.box[3]);rect.style.display="";}else{rect.style.display="none";}}
  }
  range.addEventListener("input",function(){show(+range.value);});
  box.querySelector("button.prev").addEventListener("click",function(){show(+range.value-1);});
  box.querySelector("button.next").addEventListener("click",function(){show(+range.value+1);});
  show(+range.value);
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
}
