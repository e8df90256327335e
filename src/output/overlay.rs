//! Saliency overlays: maps through a perceptual colormap (inferno), each on
//! its own scale (by percentile, or min–max), blended over the image, panels
//! side by side with a legend strip underneath.

use crate::image::{resize_map, Preprocess};
use image::{Rgb, RgbImage};
use ndarray::{ArrayView2, ArrayView3};

const LEGEND_H: u32 = 12;
const GAP: u32 = 4;

/// Each pixel's percentile rank in [0, 1] (0 the lowest value, 1 the highest;
/// ties share their mean rank, non-finite values rank lowest). Colouring the
/// ranks shows exactly the pixel order insertion and deletion follow.
pub fn percentiles(map: ArrayView2<f32>) -> ndarray::Array2<f32> {
    let flat: Vec<f32> = map.iter().map(|v| if v.is_finite() { *v } else { f32::NEG_INFINITY }).collect();
    let n = flat.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| flat[a].total_cmp(&flat[b]));
    let mut rank = vec![0.0f32; n];
    let denom = n.saturating_sub(1).max(1) as f32;
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        while j < n && flat[order[j]] == flat[order[i]] {
            j += 1;
        }
        let r = (i + j - 1) as f32 / 2.0 / denom;
        for &k in &order[i..j] {
            rank[k] = if n == 1 { 0.5 } else { r };
        }
        i = j;
    }
    ndarray::Array2::from_shape_vec(map.dim(), rank).expect("one rank per pixel")
}

/// How `overlay.png` colours each map; `report.json` names it (`overlay_scale`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OverlayScale {
    /// Each map on its own scale by percentile: colour = the pixel's rank in
    /// its map (the order insertion and deletion follow), whatever its range.
    Percentile,
    /// Each map on its own scale, linear from its minimum to its maximum.
    MinMax,
}

/// Colour a map on its own scale, as `scale` says.
pub fn colorize_with(map: ArrayView2<f32>, scale: OverlayScale) -> RgbImage {
    match scale {
        OverlayScale::MinMax => colorize(map),
        OverlayScale::Percentile => {
            let r = percentiles(map);
            let (h, w) = r.dim();
            RgbImage::from_fn(w as u32, h as u32, |x, y| color(r[[y as usize, x as usize]]))
        }
    }
}

/// Min–max normalise and colour a map (constant maps come out flat).
pub fn colorize(map: ArrayView2<f32>) -> RgbImage {
    let (lo, hi) = map.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), v| (a.min(*v), b.max(*v)));
    let span = if hi > lo { hi - lo } else { 1.0 };
    let (h, w) = map.dim();
    RgbImage::from_fn(w as u32, h as u32, |x, y| color((map[[y as usize, x as usize]] - lo) / span))
}

fn color(t: f32) -> Rgb<u8> {
    let c = colorous::INFERNO.eval_continuous(t.clamp(0.0, 1.0) as f64);
    Rgb([c.r, c.g, c.b])
}

/// The model input back as RGB (for the image panel).
pub fn denormalise(tensor: ArrayView3<f32>, pre: &Preprocess) -> RgbImage {
    let (_, h, w) = tensor.dim();
    RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let px =
            |c: usize| (tensor[[c, y as usize, x as usize]] * pre.std[c] + pre.mean[c]).round().clamp(0.0, 255.0) as u8;
        Rgb([px(0), px(1), px(2)])
    })
}

/// `image | map₁ over image | map₂ over image | …`, each overlay 50 % map
/// colour (each map on its own scale, as `scale` says), with an inferno legend
/// strip (low → high) under the map panels.
pub fn overlay_panels(image: &RgbImage, maps: &[ArrayView2<f32>], scale: OverlayScale) -> RgbImage {
    let (w, h) = image.dimensions();
    let n = maps.len() as u32 + 1;
    let mut out = RgbImage::from_pixel(n * w + (n - 1) * GAP, h + GAP + LEGEND_H, Rgb([255, 255, 255]));
    image::imageops::overlay(&mut out, image, 0, 0);
    for (k, m) in maps.iter().enumerate() {
        let resized = resize_map(*m, h as usize, w as usize);
        let colored = colorize_with(resized.view(), scale);
        let x0 = (k as u32 + 1) * (w + GAP);
        for y in 0..h {
            for x in 0..w {
                let (a, b) = (image.get_pixel(x, y), colored.get_pixel(x, y));
                let mix = |i: usize| ((a[i] as u16 + b[i] as u16) / 2) as u8;
                out.put_pixel(x0 + x, y, Rgb([mix(0), mix(1), mix(2)]));
            }
        }
        for x in 0..w {
            let c = color(x as f32 / (w - 1).max(1) as f32);
            for y in h + GAP..h + GAP + LEGEND_H {
                out.put_pixel(x0 + x, y, c);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn colormap_runs_dark_to_bright() {
        let img = colorize(array![[0.0f32, 1.0]].view());
        let lum = |p: &Rgb<u8>| p[0] as u32 + p[1] as u32 + p[2] as u32;
        assert!(lum(img.get_pixel(0, 0)) < 30);
        assert!(lum(img.get_pixel(1, 0)) > 500);
        let panel = overlay_panels(
            &RgbImage::new(10, 8),
            &[array![[0.0f32, 1.0]].view(), array![[1.0f32]].view()],
            OverlayScale::Percentile,
        );
        assert_eq!(panel.dimensions(), (3 * 10 + 2 * GAP, 8 + GAP + LEGEND_H));
    }

    #[test]
    fn percentile_overlay_spaces_colours_by_rank() {
        // 0, 1, 2 and a far outlier: by percentile the colours sit at 0, ⅓, ⅔ and 1
        // of the map; min–max would put the first three at the dark end.
        let m = array![[0.0f32, 1.0, 2.0, 1000.0]];
        let img = colorize_with(m.view(), OverlayScale::Percentile);
        for k in 0..4 {
            let c = colorous::INFERNO.eval_continuous(k as f64 / 3.0);
            assert_eq!(*img.get_pixel(k, 0), Rgb([c.r, c.g, c.b]), "pixel {k}");
        }
        let mm = colorize_with(m.view(), OverlayScale::MinMax);
        assert_eq!(mm.get_pixel(2, 0), colorize(m.view()).get_pixel(2, 0));
        assert_ne!(mm.get_pixel(2, 0), img.get_pixel(2, 0));
        let json = serde_json::to_string(&[OverlayScale::Percentile, OverlayScale::MinMax]).unwrap();
        assert_eq!(json, r#"["percentile","min-max"]"#);
    }
}
