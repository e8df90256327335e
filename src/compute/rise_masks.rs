//! RISE masks (Petsiuk et al. 2018), as the authors' code makes them: N random
//! binary s×s grids with P(1) = p, each upsampled bilinearly to (s+1)·⌈H/s⌉
//! (half-pixel aligned, mirrored edges: skimage's `resize(order=1,
//! mode="reflect")`) and cropped at a random offset in [0, ⌈H/s⌉) per axis.
//!
//! Randomness is a counter-based hash of (seed, mask, cell), so any mask can
//! be generated on its own, in any order, on any device: this is the CPU twin
//! of `shaders/rise_masks.wgsl`.

use crate::error::{BorexError, Result};
use ndarray::Array3;
use serde::Serialize;
use std::mem::MaybeUninit;

/// RISE's mask parameters: N masks of an s×s grid of cells kept with probability p, upsampled with a random shift.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct RiseParams {
    /// Number of masks.
    pub n: usize,
    /// Grid cells per side.
    pub s: usize,
    /// Probability that a cell is kept.
    pub p: f32,
    /// Seed of the masks.
    pub seed: u64,
}

impl RiseParams {
    /// The RISE paper's setting: N = 4000, s = 7, p = 0.5.
    pub fn standard(seed: u64) -> Self {
        Self { n: 4000, s: 7, p: 0.5, seed }
    }

    /// BOREx's low-quality prior: N = 100, s = 8, p = 0.3.
    pub fn fast(seed: u64) -> Self {
        Self { n: 100, s: 8, p: 0.3, seed }
    }

    /// N, s and p within their limits, or an error naming the bad one.
    pub fn validate(&self) -> Result<()> {
        if self.n == 0 {
            return Err(BorexError::invalid("RISE needs at least one mask (N = 0)"));
        }
        crate::limits::in_range("masks", self.n, 1, crate::limits::MAX_MASKS)?;
        if self.s < 2 {
            return Err(BorexError::invalid("RISE grid size s must be at least 2"));
        }
        if !(self.p > 0.0 && self.p < 1.0) {
            return Err(BorexError::invalid(format!("RISE keep probability p must be in (0, 1), got {}", self.p)));
        }
        Ok(())
    }
}

/// PCG-style integer hash (Jarzynski & Olano 2020); the WGSL twin uses the same.
#[inline]
pub fn pcg(v: u32) -> u32 {
    let state = v.wrapping_mul(747_796_405).wrapping_add(2_891_336_453);
    let word = ((state >> ((state >> 28) + 4)) ^ state).wrapping_mul(277_803_737);
    (word >> 22) ^ word
}

/// Hash of (seed, mask index, slot).
#[inline]
pub fn hash(seed: u64, mask: u32, slot: u32) -> u32 {
    let lo = seed as u32;
    let hi = (seed >> 32) as u32;
    pcg(slot ^ pcg(mask ^ pcg(lo ^ pcg(hi))))
}

/// A uniform number in [0, 1) with 24 random bits (exact in f32; the shader
/// multiplies by the same power of two).
#[inline]
pub fn unit(h: u32) -> f32 {
    (h >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// Masks `start..start+count` of the sequence, count×H×W.
pub fn masks(params: &RiseParams, h: usize, w: usize, start: usize, count: usize) -> Array3<f32> {
    let mut out = Array3::<f32>::uninit((count, h, w));
    let flat = out.as_slice_mut().expect("fresh array is contiguous");
    fill_masks(params, h, w, start, flat);
    // SAFETY: `fill_masks` writes every value of every mask (each row of each mask in full).
    unsafe { out.assume_init() }
}

/// Masks `start..` of the sequence into `out` (a whole number of H×W masks,
/// row-major), in parallel over masks. Every value is written.
pub fn fill_masks(params: &RiseParams, h: usize, w: usize, start: usize, out: &mut [MaybeUninit<f32>]) {
    use rayon::prelude::*;
    if h * w == 0 {
        return;
    }
    assert_eq!(out.len() % (h * w), 0, "a whole number of H×W masks");
    out.par_chunks_mut(h * w).enumerate().for_each(|(k, m)| one_mask(params, h, w, start + k, m));
}

/// Mask `i`: the same arithmetic per pixel as the WGSL twin — the top and
/// bottom grid rows interpolated along x, then those along y — with the
/// x-interpolated grid rows (s × W values) made once per mask instead of per
/// pixel, and one hash per cell instead of four per pixel.
fn one_mask(params: &RiseParams, h: usize, w: usize, i: usize, m: &mut [MaybeUninit<f32>]) {
    let s = params.s;
    let (cell_h, cell_w) = (h.div_ceil(s), w.div_ceil(s));
    let (up_h, up_w) = ((s + 1) * cell_h, (s + 1) * cell_w);
    let i = i as u32;
    let cells: Vec<f32> =
        (0..s * s).map(|c| if unit(hash(params.seed, i, c as u32)) < params.p { 1.0 } else { 0.0 }).collect();
    let dy = hash(params.seed, i, (s * s) as u32) as usize % cell_h;
    let dx = hash(params.seed, i, (s * s + 1) as u32) as usize % cell_w;
    let (ys, xs) = (axis_taps(s, ratio(s, up_h), dy, h), axis_taps(s, ratio(s, up_w), dx, w));
    // Row gy of the grid interpolated along x at every output column.
    let rows: Vec<f32> = (0..s)
        .flat_map(|gy| {
            let g = &cells[gy * s..(gy + 1) * s];
            xs.iter().map(move |&(x0, x1, fx)| g[x0] * (1.0 - fx) + g[x1] * fx)
        })
        .collect();
    for (out, &(y0, y1, fy)) in m.chunks_exact_mut(w).zip(&ys) {
        let (top, bottom) = (&rows[y0 * w..(y0 + 1) * w], &rows[y1 * w..(y1 + 1) * w]);
        for ((o, t), b) in out.iter_mut().zip(top).zip(bottom) {
            o.write(t * (1.0 - fy) + b * fy);
        }
    }
}

/// Grid cells per upsampled pixel, s / up, as the f32 both paths use.
pub fn ratio(s: usize, up: usize) -> f32 {
    s as f32 / up as f32
}

/// For each output pixel along one axis: the two grid cells it interpolates
/// and the weight of the second, after the crop shift (f32, as the shader).
fn axis_taps(s: usize, ratio: f32, shift: usize, len: usize) -> Vec<(usize, usize, f32)> {
    let mirror = |i: isize| -> usize {
        let n = s as isize;
        (if i < 0 {
            -i
        } else if i >= n {
            2 * (n - 1) - i
        } else {
            i
        }) as usize
    };
    (0..len)
        .map(|o| {
            let src = ((o + shift) as f32 + 0.5) * ratio - 0.5;
            let f = src.floor();
            let i = f as isize;
            (mirror(i), mirror(i + 1), src - f)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_are_deterministic_and_independent_of_batching() {
        let p = RiseParams::fast(7);
        let all = masks(&p, 32, 40, 0, 6);
        let tail = masks(&p, 32, 40, 4, 2);
        assert_eq!(all.slice(ndarray::s![4.., .., ..]), tail);
        assert_ne!(all.slice(ndarray::s![0, .., ..]), all.slice(ndarray::s![1, .., ..]));
        assert!(all.iter().all(|v| (0.0..=1.0).contains(v)));
        assert_ne!(masks(&RiseParams::fast(8), 32, 40, 0, 1), masks(&p, 32, 40, 0, 1));
    }

    /// The per-pixel formula the masks were first made with (four hashes per pixel).
    fn per_pixel(params: &RiseParams, h: usize, w: usize, i: u32) -> Vec<f32> {
        let s = params.s;
        let (cell_h, cell_w) = (h.div_ceil(s), w.div_ceil(s));
        let cell = |gy: usize, gx: usize| -> f32 {
            if unit(hash(params.seed, i, (gy * s + gx) as u32)) < params.p {
                1.0
            } else {
                0.0
            }
        };
        let dy = hash(params.seed, i, (s * s) as u32) as usize % cell_h;
        let dx = hash(params.seed, i, (s * s + 1) as u32) as usize % cell_w;
        let ys = axis_taps(s, ratio(s, (s + 1) * cell_h), dy, h);
        let xs = axis_taps(s, ratio(s, (s + 1) * cell_w), dx, w);
        let mut out = Vec::new();
        for &(y0, y1, fy) in &ys {
            for &(x0, x1, fx) in &xs {
                let top = cell(y0, x0) * (1.0 - fx) + cell(y0, x1) * fx;
                let bottom = cell(y1, x0) * (1.0 - fx) + cell(y1, x1) * fx;
                out.push(top * (1.0 - fy) + bottom * fy);
            }
        }
        out
    }

    #[test]
    fn masks_equal_the_per_pixel_formula_bit_for_bit() {
        for (params, h, w) in [
            (RiseParams::fast(3), 224, 224),
            (RiseParams::standard(11), 37, 53),
            (RiseParams { n: 9, s: 2, p: 0.7, seed: 5 }, 5, 9),
        ] {
            let got = masks(&params, h, w, 4, 5);
            for k in 0..5 {
                let want = per_pixel(&params, h, w, 4 + k as u32);
                let got: Vec<u32> = got.index_axis(ndarray::Axis(0), k).iter().map(|v| v.to_bits()).collect();
                assert_eq!(got, want.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), "{params:?} {h}×{w} mask {k}");
            }
        }
    }

    #[test]
    fn keep_rate_matches_p() {
        // The mean mask value estimates p (bilinear interpolation preserves it on average).
        let p = RiseParams { n: 400, s: 7, p: 0.5, seed: 3 };
        let m = masks(&p, 28, 28, 0, 400);
        let mean = m.mean().unwrap();
        assert!((mean - 0.5).abs() < 0.02, "mean {mean}");
    }

    #[test]
    fn upsampling_matches_skimage_resize() {
        // skimage.transform.resize(grid, (12, 12), order=1, mode="reflect", anti_aliasing=False),
        // row 0 and column 5, printed by scripts/golden_rise_upsample.py.
        let grid = [[1.0f32, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]];
        let row0 =
            [0.390625f32, 0.546875, 0.546875, 0.390625, 0.234375, 0.078125, 0.125, 0.375, 0.625, 0.875, 0.875, 0.625];
        let col5 =
            [0.078125f32, 0.109375, 0.109375, 0.078125, 0.046875, 0.015625, 0.125, 0.375, 0.625, 0.875, 0.875, 0.625];
        let taps = axis_taps(3, ratio(3, 12), 0, 12);
        let at = |y: usize, x: usize| {
            let ((y0, y1, fy), (x0, x1, fx)) = (taps[y], taps[x]);
            let top = grid[y0][x0] * (1.0 - fx) + grid[y0][x1] * fx;
            let bottom = grid[y1][x0] * (1.0 - fx) + grid[y1][x1] * fx;
            top * (1.0 - fy) + bottom * fy
        };
        for i in 0..12 {
            assert!((at(0, i) - row0[i]).abs() < 1e-6, "row 0, col {i}");
            assert!((at(i, 5) - col5[i]).abs() < 1e-6, "row {i}, col 5");
        }
    }

    #[test]
    fn upsampling_matches_skimage_on_a_known_grid() {
        // s = 2, H = 4: cell 2, up = 6, no shift. Output pixel o maps to src = (o + 0.5)/3 − 0.5,
        // mirrored at the edges (skimage "reflect" = ndimage "mirror").
        let taps = axis_taps(2, ratio(2, 6), 0, 4);
        let want = [(1usize, 0usize, 2.0f32 / 3.0), (0, 1, 0.0), (0, 1, 1.0 / 3.0), (0, 1, 2.0 / 3.0)];
        for (t, w) in taps.iter().zip(want) {
            assert_eq!((t.0, t.1), (w.0, w.1));
            assert!((t.2 - w.2).abs() < 1e-6, "{taps:?}");
        }
    }
}
