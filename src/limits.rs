//! Upper bounds on every count and size a user can ask for. Each bound sits
//! well above any sensible use and well below what exhausts a machine; an
//! out-of-range value is an error that names the flag and the bound, not an
//! allocation failure later. docs/robustness.md lists them.

use crate::error::{BorexError, Result};
use std::fmt::Display;

/// BOREx observations (each is two model evaluations and an O(n³) GP fit).
pub const MAX_ITERS: usize = 2000;
/// RISE masks.
pub const MAX_MASKS: usize = 1_000_000;
/// `refine --budget`: model evaluations of the prior and the queries together.
pub const MAX_BUDGET: usize = MAX_MASKS;
/// Images per model call.
pub const MAX_BATCH: usize = 1024;
/// Model input side: below 32 a 32×-downsampling CNN sees less than one cell.
pub const MIN_INPUT: u32 = 32;
/// Model input side, at most.
pub const MAX_INPUT: u32 = 4096;
/// Short side after resizing.
pub const MAX_RESIZE: u32 = 8192;
/// CAMERAS scales (input sides) and how many; below 16 px a CNN's last
/// feature map is a single cell and the map comes out flat.
pub const MIN_SCALE: u32 = 16;
/// CAMERAS scale (input side), at most.
pub const MAX_SCALE: u32 = 2048;
/// CAMERAS scales, at most.
pub const MAX_SCALES: usize = 16;
/// Counterfactuals: Auto-Frank-Wolfe steps (one batched model call each), restarts, targets per image.
pub const MAX_AFW_STEPS: usize = 10_000;
/// Counterfactual restarts per target, at most.
pub const MAX_RESTARTS: usize = 64;
/// Counterfactual targets per image, at most.
pub const MAX_TARGETS: usize = 1000;
/// Bytes one batch of model inputs may take (N·C·H·W·4).
pub const MAX_BATCH_BYTES: u64 = 4 << 30;
/// Decoded image size and the decoder's allocations.
pub const MAX_IMAGE_SIDE: u32 = 65_535;
/// Decoded pixels (width × height), at most.
pub const MAX_IMAGE_PIXELS: u64 = 268_435_456; // 16384²
/// BO loops advanced together (`--lockstep`): 2F inputs per model call.
pub const MAX_LOCKSTEP: usize = 256;
/// Frames per clip (clip mode): each query scores 2 clips of this many frames.
pub const MAX_CLIP_LEN: usize = 256;
/// Frame stride (`--every`) and frame numbers (`--frames A:B`).
pub const MAX_EVERY: usize = 1_000_000;
/// A frame number (`--frames A:B`), at most.
pub const MAX_FRAME: u64 = 100_000_000;
/// Candidate stride of the UCB search (`--stride`).
pub const MAX_STRIDE: usize = 64;
/// Shards of a bulk run (`--shard I/N`).
pub const MAX_SHARDS: usize = 100_000;
/// `bench`: timed runs per stage (`--repeat`) and GP observations of the posterior and fit stages
/// (`--observations`: as many as a refine may make).
pub const MAX_REPEAT: usize = 1000;
/// GP observations of `bench`'s posterior and fit stages, at most (as many as a refine makes).
pub const MAX_OBSERVATIONS: usize = MAX_ITERS;
/// `eval mosaic --mosaics` (each is a 2×2 mosaic scored by every method).
pub const MAX_MOSAICS: usize = 100_000;
/// `eval --seeds`: how many seeds (each multiplies the work by the images × methods).
pub const MAX_SEEDS: usize = 1000;
/// Video frames: the smallest side a map is shown on, the highest frame rate (`--fps`, a video's own).
pub const MIN_FRAME_SIDE: u32 = 16;
/// Frame rate (`--fps`, or a video's own), at most.
pub const MAX_FPS: f64 = 1000.0;
/// `classify --top`.
pub const MAX_TOP: usize = 100_000;
/// Elements of a map read from a file.
pub const MAX_MAP_ELEMENTS: u64 = MAX_IMAGE_PIXELS;

/// `value` if `lo ≤ value ≤ hi`, else an error naming `flag` and the range.
pub fn in_range<T: PartialOrd + Display + Copy>(flag: &str, value: T, lo: T, hi: T) -> Result<T> {
    if value < lo || value > hi {
        return Err(BorexError::invalid(format!("{flag} {value} is out of range: it must be between {lo} and {hi}")));
    }
    Ok(value)
}

/// A finite, non-negative number, else an error naming `flag` and the value.
pub fn non_negative(flag: &str, value: f32) -> Result<f32> {
    if !value.is_finite() || value < 0.0 {
        return Err(BorexError::invalid(format!("{flag} must be a finite number ≥ 0, not {value}")));
    }
    Ok(value)
}

/// Every value of a list flag in range, none repeated.
pub fn distinct_in_range(flag: &str, values: &[u32], lo: u32, hi: u32) -> Result<()> {
    if values.is_empty() {
        return Err(BorexError::invalid(format!("{flag} needs at least one value")));
    }
    for (i, v) in values.iter().enumerate() {
        in_range(flag, *v, lo, hi)?;
        if values[..i].contains(v) {
            return Err(BorexError::invalid(format!("{flag} lists {v} twice")));
        }
    }
    Ok(())
}

/// A batch of `batch` inputs of `c×h×w` must fit [`MAX_BATCH_BYTES`].
pub fn batch_fits(batch: usize, (c, h, w): (usize, usize, usize)) -> Result<()> {
    in_range("--batch", batch, 1, MAX_BATCH)?;
    let bytes = batch as u64 * (c * h * w) as u64 * 4;
    if bytes > MAX_BATCH_BYTES {
        let most = (MAX_BATCH_BYTES / ((c * h * w) as u64 * 4)).max(1);
        return Err(BorexError::invalid(format!(
            "--batch {batch} of {c}×{h}×{w} inputs needs {} MiB per model call (limit {} MiB): use --batch {most} or less",
            bytes >> 20,
            MAX_BATCH_BYTES >> 20
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_name_the_flag_and_the_bounds() {
        assert_eq!(in_range("--iters", 5usize, 1, 10).unwrap(), 5);
        let e = in_range("--iters", 4_294_967_295usize, 1, MAX_ITERS).unwrap_err().to_string();
        assert!(e.contains("--iters 4294967295") && e.contains(&MAX_ITERS.to_string()), "{e}");
        assert!(non_negative("--gain", f32::NAN)
            .unwrap_err()
            .to_string()
            .contains("--gain must be a finite number ≥ 0, not NaN"));
        assert!(non_negative("--gain", f32::INFINITY).is_err());
        assert!(non_negative("--kappa", -1.0).is_err());
        assert_eq!(non_negative("--kappa", 0.0).unwrap(), 0.0);
        assert!(distinct_in_range("--sizes", &[30, 45, 30], 1, 100)
            .unwrap_err()
            .to_string()
            .contains("lists 30 twice"));
        assert!(distinct_in_range("--scales", &[], 1, 100).is_err());
        assert!(batch_fits(32, (3, 224, 224)).is_ok());
        // 1024 inputs of 3×2048×2048 are 48 GiB.
        let e = batch_fits(1024, (3, 2048, 2048)).unwrap_err().to_string();
        assert!(e.contains("use --batch 85 or less"), "{e}");
    }
}
