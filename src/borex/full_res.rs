//! The refined map at the original image's resolution: the GP mean is a
//! continuous function of (row, column, size), so it is evaluated at every
//! original pixel (mapped into model coordinates through the resize and crop)
//! rather than upsampled; windows scale with the resize factor.

use super::{RefineConfig, Refined};
use crate::compute::{GpKernels, MapGrid};
use crate::error::Result;
use crate::image::Crop;
use ndarray::Array2;

/// Model coordinate of each original pixel centre along one axis.
fn axis(original: u32, resized: u32, offset: u32) -> Vec<f32> {
    let scale = resized as f64 / original as f64;
    (0..original).map(|i| ((i as f64 + 0.5) * scale - 0.5 - offset as f64) as f32).collect()
}

pub fn refined_full_res(refined: &Refined, cfg: &RefineConfig, crop: &Crop, kernels: &dyn GpKernels) -> Result<Array2<f32>> {
    let s0 = &refined.scaled_prior;
    let (h, w) = s0.dim();
    let grid = cfg.grid(h as u32, w as u32);
    let (ow, oh) = crop.original;
    // Output pixels per model pixel (the resize keeps the aspect ratio, so one factor serves both axes).
    let per_model = 0.5 * (ow as f64 / crop.resized.0 as f64 + oh as f64 / crop.resized.1 as f64);
    let map_grid = MapGrid {
        prior: s0.as_slice().expect("standard layout"),
        prior_hw: (h, w),
        rows: axis(oh, crop.resized.1, crop.offset.1),
        cols: axis(ow, crop.resized.0, crop.offset.0),
        sizes: grid.sizes.iter().map(|s| *s as f32).collect(),
        windows: grid.sizes.iter().map(|s| ((*s as f64 * per_model).round() as u32).max(1)).collect(),
    };
    let map = kernels.map_on_grid(&map_grid, &refined.gp.posterior_inputs())?;
    Ok(Array2::from_shape_vec((oh as usize, ow as usize), map).expect("H×W"))
}

#[cfg(test)]
mod tests {
    use super::axis;

    #[test]
    fn identity_and_scaled_axes() {
        assert_eq!(axis(4, 4, 0), vec![0.0, 1.0, 2.0, 3.0]);
        // 8 → 4 then crop offset 1: pixel 0 centre 0.5 → 0.25 − 0.5 − 1
        assert_eq!(axis(8, 4, 1)[0], -1.25);
    }
}
