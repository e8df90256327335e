//! The refined map at the original image's resolution: the GP mean is a
//! continuous function of (row, column, size), so it is evaluated at every
//! original pixel (mapped into model coordinates through the resize and crop)
//! rather than upsampled; windows scale with the resize factor.
//!
//! Outside the centre crop the model never saw the image: there μ is the GP
//! (evaluated off its training range) plus the prior clamped to the crop's
//! edge, an extrapolation. [`FullRes::crop`] says which original pixels lie
//! inside the crop so reports can mark the rest.

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

/// Original pixels whose centre maps inside the model's `n` pixels ([−½, n−½]):
/// the half-open index range along one axis.
fn inside(coords: &[f32], n: usize) -> [usize; 2] {
    let within = |c: &f32| *c >= -0.5 && *c <= n as f32 - 0.5;
    let first = coords.iter().position(within).unwrap_or(0);
    let last = coords.iter().rposition(within).map_or(first, |i| i + 1);
    [first, last]
}

/// The refined map at the original resolution.
pub struct FullRes {
    /// H×W at the original image's size.
    pub map: Array2<f32>,
    /// Rows and columns `[start, end)` of the original image inside the
    /// model's centre crop; the rest of `map` is extrapolated.
    pub crop: CropRegion,
}

/// The part of the original image the model's centre crop covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CropRegion {
    /// First and one-past-last row.
    pub rows: [usize; 2],
    /// First and one-past-last column.
    pub cols: [usize; 2],
}

impl CropRegion {
    /// Share of the map's pixels outside the crop (extrapolated).
    pub fn outside_fraction(&self, (h, w): (usize, usize)) -> f64 {
        let inside = (self.rows[1] - self.rows[0]) * (self.cols[1] - self.cols[0]);
        1.0 - inside as f64 / (h * w).max(1) as f64
    }
}

/// The refined map at the original image's resolution: the last GP read at every original pixel (extrapolated outside the crop).
pub fn refined_full_res(
    refined: &Refined,
    cfg: &RefineConfig,
    crop: &Crop,
    kernels: &dyn GpKernels,
) -> Result<FullRes> {
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
    let region = CropRegion { rows: inside(&map_grid.rows, h), cols: inside(&map_grid.cols, w) };
    let gp = refined.gp.as_ref().ok_or_else(|| {
        crate::error::BorexError::invalid(
            "the full-resolution map is read from the GP: this refinement has none (objective antithetic)",
        )
    })?;
    let map = kernels.map_on_grid(&map_grid, &gp.posterior_inputs())?;
    Ok(FullRes { map: Array2::from_shape_vec((oh as usize, ow as usize), map).expect("H×W"), crop: region })
}

/// How the refined map is read from the GP posterior mean μ(row, column, size).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Readout {
    /// The paper's: μ window-averaged over each box (half-width s), averaged over sizes.
    #[default]
    Window,
    /// μ at each pixel as a box centre, averaged over sizes, without the window
    /// average (keeps the map as sharp as the GP's length scales).
    Point,
    /// The window map plus the prior's own detail, m − m̄ (m the prior in the
    /// GP's units, m̄ its window average): the queries correct the map at box
    /// scale, and within a box the prior orders the pixels.
    Detail,
}

impl Readout {
    /// Whether the map is read as window averages (the default) rather than at points.
    pub fn is_window(&self) -> bool {
        *self == Readout::Window
    }

    /// Whether the map starts from the window-averaged posterior (window, detail).
    pub fn is_windowed(&self) -> bool {
        matches!(self, Readout::Window | Readout::Detail)
    }
}

impl std::fmt::Display for Readout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Readout::Window => "window",
            Readout::Point => "point",
            Readout::Detail => "detail",
        })
    }
}

impl std::str::FromStr for Readout {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim() {
            "window" => Ok(Readout::Window),
            "point" => Ok(Readout::Point),
            "detail" => Ok(Readout::Detail),
            other => Err(format!("unknown readout {other:?} (expected window, point or detail)")),
        }
    }
}

/// The [`Readout::Point`] map at the model-input resolution.
pub fn point_map(
    gp: &crate::gp::Gp,
    scaled_prior: &Array2<f32>,
    cfg: &RefineConfig,
    kernels: &dyn GpKernels,
) -> Result<Array2<f32>> {
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
    use super::{axis, inside};

    #[test]
    fn identity_and_scaled_axes() {
        assert_eq!(axis(4, 4, 0), vec![0.0, 1.0, 2.0, 3.0]);
        // 8 → 4 then crop offset 1: pixel 0 centre 0.5 → 0.25 − 0.5 − 1
        assert_eq!(axis(8, 4, 1)[0], -1.25);
    }

    #[test]
    fn crop_region_of_a_centre_crop() {
        // 600×400 resized to 336×224 (short side 224) and cropped at x = 56:
        // original columns whose centre maps into model columns [−½, 223½].
        let cols = axis(600, 336, 56);
        let [c0, c1] = inside(&cols, 224);
        // Model column −½ is resized column 55.5, original (55.5 + 0.5)·600/336 − 0.5 = 99.5.
        assert_eq!((c0, c1), (100, 500));
        assert_eq!(inside(&axis(400, 224, 0), 224), [0, 400]);
    }
}
