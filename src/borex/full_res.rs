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

/// How the refined map is read from the GP posterior mean μ(row, column, size).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Readout {
    /// The paper's: μ window-averaged over each box (half-width s), averaged over sizes.
    #[default]
    Window,
    /// μ at each pixel as a box centre, averaged over sizes, without the window
    /// average (keeps the map as sharp as the GP's length scales).
    Point,
}

impl Readout {
    pub fn is_window(&self) -> bool {
        *self == Readout::Window
    }
}

impl std::str::FromStr for Readout {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim() {
            "window" => Ok(Readout::Window),
            "point" => Ok(Readout::Point),
            other => Err(format!("unknown readout {other:?} (expected window or point)")),
        }
    }
}

/// The [`Readout::Point`] map at the model-input resolution.
pub fn point_map(gp: &crate::gp::Gp, scaled_prior: &Array2<f32>, cfg: &RefineConfig, kernels: &dyn GpKernels) -> Result<Array2<f32>> {
    let (h, w) = scaled_prior.dim();
    let grid = cfg.grid(h as u32, w as u32);
    let map_grid = MapGrid {
        prior: scaled_prior.as_slice().expect("standard layout"),
        prior_hw: (h, w),
        rows: (0..h).map(|r| r as f32).collect(),
        cols: (0..w).map(|c| c as f32).collect(),
        sizes: grid.sizes.iter().map(|s| *s as f32).collect(),
        windows: vec![0; grid.sizes.len()],
    };
    let map = kernels.map_on_grid(&map_grid, &gp.posterior_inputs())?;
    Ok(Array2::from_shape_vec((h, w), map).expect("H×W"))
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
