//! CPU twins of the GPU kernels (ndarray + rayon): the fallback path and the
//! oracle the GPU results are tested against.

mod gp;

pub use gp::{window_average, CpuGpSession};

use super::{
    check_masks, substrate, BoxMask, GpKernels, GpSession, ImageKernels, MapGrid, Masks, RiseParams, RiseSession,
};
use crate::error::Result;
use crate::gp::{CandidateGrid, PosteriorInputs};
use ndarray::{Array2, Array3, Array4, ArrayView3, Axis};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// The CPU implementation of every kernel (rayon-parallel).
#[derive(Debug, Default, Clone, Copy)]
pub struct CpuKernels;

impl ImageKernels for CpuKernels {
    fn gaussian_blur(&self, image: ArrayView3<f32>, weights: &[f32]) -> Result<Array3<f32>> {
        Ok(gaussian_blur(image, weights))
    }

    fn apply_masks(&self, image: ArrayView3<f32>, baseline: ArrayView3<f32>, masks: Masks) -> Result<Array4<f32>> {
        check_masks(&image, &baseline, &masks)?;
        Ok(apply_masks(image, baseline, masks))
    }

    fn apply_boxes(
        &self,
        image: ArrayView3<f32>,
        substrates: &[ArrayView3<f32>],
        boxes: &[(usize, BoxMask)],
    ) -> Result<Array4<f32>> {
        for &(i, _) in boxes {
            check_masks(&image, substrate(substrates, i)?, &Masks::Boxes(&[]))?;
        }
        Ok(apply_boxes(image, substrates, boxes))
    }

    fn rise_session(
        &self,
        image: ArrayView3<f32>,
        params: &RiseParams,
        accumulators: usize,
    ) -> Result<Box<dyn RiseSession>> {
        params.validate()?;
        let (_, h, w) = image.dim();
        Ok(Box::new(CpuRiseSession {
            image: image.to_owned(),
            zero: Array3::zeros(image.raw_dim()),
            params: *params,
            acc: vec![Array2::zeros((h, w)); accumulators],
            mask_sum: Array2::zeros((h, w)),
            masks: Array3::zeros((0, h, w)),
        }))
    }
}

/// Pixels per task when RISE sums a batch of masks (a 16 KiB run of each mask).
const ACC_CHUNK: usize = 4096;

/// RISE on the CPU: masks generated, applied, scored and accumulated per batch.
pub struct CpuRiseSession {
    image: Array3<f32>,
    /// RISE's baseline: masks multiply the image.
    zero: Array3<f32>,
    params: RiseParams,
    acc: Vec<Array2<f32>>,
    mask_sum: Array2<f32>,
    masks: Array3<f32>,
}

impl RiseSession for CpuRiseSession {
    fn masked(&mut self, start: usize, count: usize) -> Result<Array4<f32>> {
        let (_, h, w) = self.image.dim();
        if self.masks.dim() == (count, h, w) {
            // The last batch's buffer, overwritten in place (no fresh pages per batch).
            let buf = self.masks.as_slice_mut().expect("standard layout");
            // SAFETY: MaybeUninit<f32> has f32's layout, and `fill_masks` only writes initialised values.
            let buf = unsafe { &mut *(buf as *mut [f32] as *mut [MaybeUninit<f32>]) };
            crate::compute::rise_masks::fill_masks(&self.params, h, w, start, buf);
        } else {
            self.masks = crate::compute::rise_masks::masks(&self.params, h, w, start, count);
        }
        Ok(apply_masks(self.image.view(), self.zero.view(), Masks::Dense(self.masks.view())))
    }

    fn accumulate(&mut self, weights: &[f32]) -> Result<()> {
        let j = self.acc.len();
        let (count, h, w) = self.masks.dim();
        if weights.len() != count * j {
            return Err(crate::error::BorexError::invalid("RISE weights do not match the batch"));
        }
        let hw = h * w;
        let masks = self.masks.as_slice().expect("standard layout");
        // In parallel over pixels, each pixel's masks in batch order: the same
        // sums, term by term, as adding the masks one after the other.
        let fold = |acc: &mut Array2<f32>, weight: Option<&[f32]>| {
            let acc = acc.as_slice_mut().expect("standard layout");
            acc.par_chunks_mut(ACC_CHUNK).enumerate().for_each(|(c, a)| {
                for k in 0..count {
                    let m = &masks[k * hw + c * ACC_CHUNK..][..a.len()];
                    match weight {
                        None => a.iter_mut().zip(m).for_each(|(a, m)| *a += m),
                        Some(wt) => {
                            let wk = wt[k];
                            a.iter_mut().zip(m).for_each(|(a, m)| *a += wk * m)
                        }
                    }
                }
            });
        };
        fold(&mut self.mask_sum, None);
        for (jj, a) in self.acc.iter_mut().enumerate() {
            let wk: Vec<f32> = (0..count).map(|k| weights[k * j + jj]).collect();
            fold(a, Some(&wk));
        }
        Ok(())
    }

    fn last_masks(&mut self) -> Result<Array3<f32>> {
        Ok(self.masks.clone())
    }

    fn finish(&mut self) -> Result<(Vec<Array2<f32>>, Array2<f32>)> {
        Ok((self.acc.clone(), self.mask_sum.clone()))
    }
}

impl GpKernels for CpuKernels {
    fn session(&self, grid: &CandidateGrid, prior: &[f32]) -> Result<Box<dyn GpSession>> {
        Ok(Box::new(CpuGpSession::new(grid, prior)?))
    }

    fn map_on_grid(&self, grid: &MapGrid, gp: &PosteriorInputs) -> Result<Vec<f32>> {
        grid.check(gp)?;
        let (h, w) = (grid.rows.len(), grid.cols.len());
        let mut out = vec![0.0f32; h * w];
        let mut plane = vec![0.0f32; h * w];
        for (&size, &window) in grid.sizes.iter().zip(&grid.windows) {
            plane.par_chunks_mut(w).enumerate().for_each(|(y, row)| gp::mean_row(gp, grid, grid.rows[y], size, row));
            let single = CandidateGrid::new(h as u32, w as u32, vec![window]);
            let scale = 1.0 / grid.sizes.len() as f32;
            for (o, v) in out.iter_mut().zip(window_average(&single, &plane)) {
                *o += v * scale;
            }
        }
        Ok(out)
    }
}

/// `image·m + baseline·(1−m)` into every value of `o` (C×H×W) for one
/// mask; `mask(y)` is its row y (W values).
fn blend<'m>(
    o: &mut [MaybeUninit<f32>],
    img: &[f32],
    base: &[f32],
    (c, h, w): (usize, usize, usize),
    mask: impl Fn(usize) -> &'m [f32],
) {
    assert!(o.len() == c * h * w && img.len() == o.len() && base.len() == o.len(), "C×H×W blend buffers");
    for ch in 0..c {
        for y in 0..h {
            let r = (ch * h + y) * w..(ch * h + y + 1) * w;
            let m = mask(y);
            assert_eq!(m.len(), w, "a mask row is W values");
            for (((o, x), b), m) in o[r.clone()].iter_mut().zip(&img[r.clone()]).zip(&base[r]).zip(m) {
                o.write(x * m + b * (1.0 - m));
            }
        }
    }
}

/// Zero-padded separable blur: a horizontal pass, then a vertical pass over its
/// rows, the same summation order as the GPU kernel. Taps that fall outside
/// the image are skipped (the zero padding); each output's in-bounds taps are
/// summed in tap order, as the per-pixel loop did, but tap by tap over whole
/// rows so the loops vectorise.
pub fn gaussian_blur(image: ArrayView3<f32>, weights: &[f32]) -> Array3<f32> {
    let (c, h, w) = image.dim();
    let image = image.as_standard_layout();
    let img = image.as_slice().expect("standard layout");
    let mut out = Array3::<f32>::zeros((c, h, w));
    let plane = (h * w).max(1);
    out.as_slice_mut().expect("fresh array is contiguous").par_chunks_mut(plane).zip(img.par_chunks(plane)).for_each(
        |(o, img)| {
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2, checked just above.
                return unsafe { blur_plane_avx2(img, o, (h, w), weights) };
            }
            blur_plane(img, o, (h, w), weights)
        },
    );
    out
}

/// The same code compiled for AVX2: the tap loops run 8 wide.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn blur_plane_avx2(img: &[f32], out: &mut [f32], hw: (usize, usize), weights: &[f32]) {
    blur_plane(img, out, hw, weights)
}

/// One H×W plane of [`gaussian_blur`]; `out` starts at zero.
#[inline(always)]
fn blur_plane(img: &[f32], out: &mut [f32], (h, w): (usize, usize), weights: &[f32]) {
    let r = weights.len() / 2;
    // Tap t reads offset t − r: the outputs whose source lies inside 0..len.
    let span = |t: usize, len: usize| r.saturating_sub(t)..(len + r).saturating_sub(t).min(len);
    let mut rows = vec![0.0f32; h * w];
    for (src, dst) in img.chunks_exact(w).zip(rows.chunks_exact_mut(w)) {
        for (t, &k) in weights.iter().enumerate() {
            let xs = span(t, w);
            if xs.is_empty() {
                continue;
            }
            let from = xs.start + t - r;
            for (d, s) in dst[xs.clone()].iter_mut().zip(&src[from..from + xs.len()]) {
                *d += k * s;
            }
        }
    }
    for (y, dst) in out.chunks_exact_mut(w).enumerate() {
        for (t, &k) in weights.iter().enumerate() {
            let yy = y + t;
            if yy < r || yy - r >= h {
                continue;
            }
            for (d, s) in dst.iter_mut().zip(&rows[(yy - r) * w..(yy - r + 1) * w]) {
                *d += k * s;
            }
        }
    }
}

/// Output values below which masking runs on the calling thread: waking the
/// pool cost more than it saved on a query's two 224² images (290 → 145 µs
/// on one thread, between two model calls).
const PARALLEL_FLOATS: usize = 1 << 20;

/// `f(k, image k's chunk)` for each `len`-value image of `flat`, in
/// parallel over images when there is enough work to wake the pool for.
fn for_each_image(flat: &mut [MaybeUninit<f32>], len: usize, f: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync) {
    if flat.len() < PARALLEL_FLOATS {
        flat.chunks_mut(len.max(1)).enumerate().for_each(|(k, o)| f(k, o));
    } else {
        flat.par_chunks_mut(len.max(1)).enumerate().for_each(|(k, o)| f(k, o));
    }
}

/// `image·m + baseline·(1−m)` for every mask, in parallel over masks.
pub fn apply_masks(image: ArrayView3<f32>, baseline: ArrayView3<f32>, masks: Masks) -> Array4<f32> {
    let (c, h, w) = image.dim();
    let hw = h * w;
    let (img, base) = (image.as_standard_layout(), baseline.as_standard_layout());
    let (img, base) = (img.as_slice().expect("standard layout"), base.as_slice().expect("standard layout"));
    // Not zeroed first: `blend` writes every value (the zeroing was a
    // memory pass of its own over the lockstep loop's 2F inputs per step).
    let mut out = Array4::<f32>::uninit((masks.len(), c, h, w));
    let flat = out.as_slice_mut().expect("fresh array is contiguous");
    for_each_image(flat, c * hw, |k, o| match masks {
        Masks::Dense(ms) => {
            let m = ms.index_axis(Axis(0), k);
            let m = m.as_standard_layout();
            let m = m.as_slice().expect("standard layout");
            blend(o, img, base, (c, h, w), |y| &m[y * w..(y + 1) * w])
        }
        Masks::Boxes(b) => blend_box(o, img, base, (c, h, w), b[k]),
    });
    // SAFETY: every mask's chunk was written in full by `blend`, which
    // checks that its rows cover the chunk.
    unsafe { out.assume_init() }
}

/// One image per box, each over its own substrate, written straight into
/// one batch (a query's two images were two calls and a copy to join them).
pub fn apply_boxes(image: ArrayView3<f32>, substrates: &[ArrayView3<f32>], boxes: &[(usize, BoxMask)]) -> Array4<f32> {
    let (c, h, w) = image.dim();
    let img = image.as_standard_layout();
    let img = img.as_slice().expect("standard layout");
    let subs: Vec<_> = substrates.iter().map(|s| s.as_standard_layout()).collect();
    let mut out = Array4::<f32>::uninit((boxes.len(), c, h, w));
    let flat = out.as_slice_mut().expect("fresh array is contiguous");
    for_each_image(flat, c * h * w, |k, o| {
        let (s, bx) = boxes[k];
        blend_box(o, img, subs[s].as_slice().expect("standard layout"), (c, h, w), bx)
    });
    // SAFETY: every box's chunk was written in full by `blend`.
    unsafe { out.assume_init() }
}

/// `blend` of one box mask. A box mask has two distinct rows, one through
/// the box and one that misses it: built once, not per pixel (per-pixel
/// values were most of the lockstep loop's input time).
fn blend_box(o: &mut [MaybeUninit<f32>], img: &[f32], base: &[f32], (c, h, w): (usize, usize, usize), bx: BoxMask) {
    let through: Vec<f32> = (0..w as u32).map(|x| bx.value(bx.r0, x)).collect();
    let miss: Vec<f32> = (0..w as u32).map(|x| bx.value(bx.r1, x)).collect();
    blend(o, img, base, (c, h, w), |y| if bx.contains(y as u32, bx.c0) { &through } else { &miss })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compute::{BoxMask, Keep};
    use ndarray::{array, Array3};

    #[test]
    fn masks_blend_image_and_baseline() {
        let image = Array3::from_shape_fn((2, 2, 3), |(c, y, x)| (c * 6 + y * 3 + x) as f32);
        let base = Array3::from_elem((2, 2, 3), -1.0f32);
        let dense = array![[[1.0f32, 0.0, 0.5], [0.25, 1.0, 0.0]]];
        let out = apply_masks(image.view(), base.view(), Masks::Dense(dense.view()));
        // pixel (0, 2) of channel 1: 8·0.5 + (−1)·0.5
        assert_eq!(out[[0, 1, 0, 2]], 3.5);
        assert_eq!(out[[0, 0, 0, 1]], -1.0);
        assert_eq!(out[[0, 0, 1, 0]], 3.0 * 0.25 - 0.75);

        let boxes = [
            BoxMask { r0: 0, r1: 1, c0: 1, c1: 3, keep: Keep::Inside },
            BoxMask { r0: 0, r1: 1, c0: 1, c1: 3, keep: Keep::Outside },
        ];
        let out = apply_masks(image.view(), base.view(), Masks::Boxes(&boxes));
        assert_eq!(out.slice(ndarray::s![0, 0, .., ..]), array![[-1.0f32, 1.0, 2.0], [-1.0, -1.0, -1.0]]);
        assert_eq!(out.slice(ndarray::s![1, 0, .., ..]), array![[0.0f32, -1.0, -1.0], [3.0, 4.0, 5.0]]);
    }

    #[test]
    fn box_masks_equal_the_per_pixel_blend() {
        let (c, h, w) = (3, 9, 11);
        let image = Array3::from_shape_fn((c, h, w), |(ch, y, x)| (ch * 100 + y * w + x) as f32 * 0.37 - 20.0);
        let base = Array3::from_shape_fn((c, h, w), |(ch, y, x)| ((ch + 2 * y + 3 * x) % 5) as f32 - 1.5);
        // Inside, edge-touching, clipped, empty and whole-image boxes, both ways.
        let spans =
            [(2, 5, 3, 8), (0, 1, 0, 1), (7, 9, 9, 11), (4, 4, 2, 6), (3, 6, 5, 5), (0, 9, 0, 11), (8, 20, 10, 30)];
        let boxes: Vec<BoxMask> = spans
            .iter()
            .flat_map(|&(r0, r1, c0, c1)| [Keep::Inside, Keep::Outside].map(|keep| BoxMask { r0, r1, c0, c1, keep }))
            .collect();
        let out = apply_masks(image.view(), base.view(), Masks::Boxes(&boxes));
        for (k, b) in boxes.iter().enumerate() {
            for ((ch, y, x), &x_v) in image.indexed_iter() {
                let m = b.value(y as u32, x as u32);
                let want = x_v * m + base[[ch, y, x]] * (1.0 - m);
                assert_eq!(out[[k, ch, y, x]].to_bits(), want.to_bits(), "box {b:?} at ({ch}, {y}, {x})");
            }
        }
    }

    /// The trait's default `apply_boxes` (a call per run of one substrate,
    /// joined), as the GPU path takes it, over the CPU's `apply_masks`.
    struct JoinedRuns;

    impl ImageKernels for JoinedRuns {
        fn gaussian_blur(&self, image: ArrayView3<f32>, weights: &[f32]) -> Result<Array3<f32>> {
            CpuKernels.gaussian_blur(image, weights)
        }
        fn apply_masks(&self, image: ArrayView3<f32>, base: ArrayView3<f32>, masks: Masks) -> Result<Array4<f32>> {
            CpuKernels.apply_masks(image, base, masks)
        }
        fn rise_session(&self, image: ArrayView3<f32>, p: &RiseParams, n: usize) -> Result<Box<dyn RiseSession>> {
            CpuKernels.rise_session(image, p, n)
        }
    }

    #[test]
    fn query_boxes_on_their_substrates_equal_the_per_pixel_blend() {
        // A few small images (the calling thread) and more than PARALLEL_FLOATS (the pool).
        for (c, h, w, n) in [(3, 9, 11, 5), (3, 224, 224, 8)] {
            let image = Array3::from_shape_fn((c, h, w), |(ch, y, x)| (ch * 100 + y * w + x) as f32 * 0.37 - 20.0);
            let subs = [
                Array3::from_shape_fn((c, h, w), |(ch, y, x)| ((ch + 2 * y + 3 * x) % 5) as f32 - 1.5),
                Array3::from_shape_fn((c, h, w), |(ch, y, x)| ((3 * ch + y + x) % 7) as f32 * 0.25),
            ];
            let views = [subs[0].view(), subs[1].view()];
            // Runs of one substrate and alternations, boxes of both kinds.
            let boxes: Vec<(usize, BoxMask)> = (0..n)
                .map(|k| {
                    let (r0, c0) = ((k * 2) as u32 % h as u32, (k * 3) as u32 % w as u32);
                    let keep = if k % 3 == 0 { Keep::Outside } else { Keep::Inside };
                    ([0, 0, 1, 0, 1, 1, 0, 1][k % 8], BoxMask { r0, r1: r0 + 4, c0, c1: c0 + 5, keep })
                })
                .collect();
            let out = CpuKernels.apply_boxes(image.view(), &views, &boxes).unwrap();
            assert_eq!(out.dim(), (n, c, h, w));
            for (k, &(s, b)) in boxes.iter().enumerate() {
                for ((ch, y, x), &x_v) in image.indexed_iter() {
                    let m = b.value(y as u32, x as u32);
                    let want = x_v * m + subs[s][[ch, y, x]] * (1.0 - m);
                    assert_eq!(out[[k, ch, y, x]].to_bits(), want.to_bits(), "box {k} {b:?} at ({ch}, {y}, {x})");
                }
            }
            assert_eq!(out, JoinedRuns.apply_boxes(image.view(), &views, &boxes).unwrap());
        }
        let image = Array3::<f32>::zeros((3, 4, 4));
        let bx = BoxMask { r0: 0, r1: 2, c0: 0, c1: 2, keep: Keep::Inside };
        for kernels in [&CpuKernels as &dyn ImageKernels, &JoinedRuns] {
            let err = kernels.apply_boxes(image.view(), &[image.view()], &[(1, bx)]).unwrap_err();
            assert!(err.to_string().contains("substrate 1 of 1"), "{err}");
            let small = Array3::<f32>::zeros((3, 4, 3));
            let err = kernels.apply_boxes(image.view(), &[small.view()], &[(0, bx)]).unwrap_err();
            assert!(err.to_string().contains("differs from image shape"), "{err}");
            assert_eq!(kernels.apply_boxes(image.view(), &[], &[]).unwrap().dim(), (0, 3, 4, 4));
        }
    }

    /// The per-pixel blur the rows-at-a-time one replaced: in-bounds taps in order.
    fn blur_per_pixel(image: &Array3<f32>, k: &[f32]) -> Array3<f32> {
        let (c, h, w) = image.dim();
        let r = (k.len() / 2) as isize;
        let mut rows = Array3::<f32>::zeros((c, h, w));
        let mut out = Array3::<f32>::zeros((c, h, w));
        for ((ch, y, x), v) in rows.indexed_iter_mut() {
            let mut acc = 0.0f32;
            for (t, kt) in k.iter().enumerate() {
                let xx = x as isize + t as isize - r;
                if xx >= 0 && (xx as usize) < w {
                    acc += kt * image[[ch, y, xx as usize]];
                }
            }
            *v = acc;
        }
        for ((ch, y, x), v) in out.indexed_iter_mut() {
            let mut acc = 0.0f32;
            for (t, kt) in k.iter().enumerate() {
                let yy = y as isize + t as isize - r;
                if yy >= 0 && (yy as usize) < h {
                    acc += kt * rows[[ch, yy as usize, x]];
                }
            }
            *v = acc;
        }
        out
    }

    #[test]
    fn blur_equals_the_per_pixel_loop_bit_for_bit() {
        let k = crate::compute::gaussian_kernel_1d(crate::compute::BLUR_KERNEL_SIZE, crate::compute::BLUR_SIGMA);
        // Images narrower and shorter than the kernel too, and odd sizes; negative and zero values.
        for (c, h, w) in [(3, 37, 29), (1, 4, 3), (2, 11, 11), (3, 1, 40)] {
            let image =
                Array3::from_shape_fn((c, h, w), |(ch, y, x)| ((ch * 31 + y * 7 + x * 13) % 17) as f32 * 0.31 - 2.0);
            let (got, want) = (gaussian_blur(image.view(), &k), blur_per_pixel(&image, &k));
            let bits = |a: &Array3<f32>| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "{c}×{h}×{w}");
        }
        let odd = [0.1f32, -0.2, 0.7, 0.3];
        let image = Array3::from_shape_fn((2, 9, 8), |(ch, y, x)| (ch + y * x) as f32 - 6.5);
        let bits = |a: &Array3<f32>| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&gaussian_blur(image.view(), &odd)), bits(&blur_per_pixel(&image, &odd)));
    }

    #[test]
    fn blur_keeps_mass_inside_and_pads_with_zero() {
        let mut image = Array3::<f32>::zeros((1, 21, 21));
        image[[0, 10, 10]] = 1.0;
        let k = [0.25f32, 0.5, 0.25];
        let out = gaussian_blur(image.view(), &k);
        assert_eq!(out[[0, 10, 10]], 0.25);
        assert_eq!(out[[0, 9, 10]], 0.125);
        assert_eq!(out[[0, 9, 9]], 0.0625);
        assert!((out.sum() - 1.0).abs() < 1e-6);
        // A constant image darkens at the border: the padding is zero, not reflected.
        let ones = Array3::<f32>::ones((1, 5, 5));
        let out = gaussian_blur(ones.view(), &k);
        assert_eq!(out[[0, 2, 2]], 1.0);
        assert_eq!(out[[0, 0, 0]], 0.75 * 0.75);
    }
}
