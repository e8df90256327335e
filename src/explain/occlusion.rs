//! Occlusion (Zeiler & Fergus 2014): slide a square of the baseline value over
//! the image; a pixel's saliency is the mean drop in P_c over the windows that
//! cover it. Windows are box masks, so the masking runs on the compute backend
//! without materialising them.

use crate::compute::{BoxMask, Keep, Masks};
use crate::error::{BorexError, Result};
use crate::model::Scorer;
use ndarray::{Array2, ArrayView3};
use serde::Serialize;

/// Occlusion's parameters: a square window slid over the image.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct OcclusionParams {
    /// Window side in pixels.
    pub window: u32,
    /// Step between windows, in pixels.
    pub stride: u32,
}

impl Default for OcclusionParams {
    fn default() -> Self {
        Self { window: 32, stride: 8 }
    }
}

impl OcclusionParams {
    /// Windows on an `height`×`width` input (one model evaluation each);
    /// 0 when the window does not fit.
    pub fn windows(&self, height: u32, width: u32) -> usize {
        if self.window == 0 || self.stride == 0 || self.window > height || self.window > width {
            return 0;
        }
        starts(height, self.window, self.stride).len() * starts(width, self.window, self.stride).len()
    }
}

/// Window starts along one axis: every `stride`, plus one flush with the far edge.
fn starts(len: u32, window: u32, stride: u32) -> Vec<u32> {
    let mut v: Vec<u32> = (0..=len - window).step_by(stride as usize).collect();
    if *v.last().expect("len ≥ window") != len - window {
        v.push(len - window);
    }
    v
}

/// The occlusion map: the drop in P_c when each window takes the baseline, averaged per pixel.
pub fn occlusion(
    scorer: &Scorer,
    image: ArrayView3<f32>,
    baseline: ArrayView3<f32>,
    class: usize,
    params: &OcclusionParams,
    progress: &dyn crate::progress::Progress,
) -> Result<Array2<f32>> {
    let (_, h, w) = image.dim();
    let (h32, w32) = (h as u32, w as u32);
    if params.window == 0 || params.stride == 0 {
        return Err(BorexError::invalid("occlusion window and stride must be positive"));
    }
    if params.window > h32 || params.window > w32 {
        return Err(BorexError::invalid(format!(
            "occlusion window {} is larger than the {h}×{w} input",
            params.window
        )));
    }
    // As `--sizes` is refused when every box covers the input: one window over
    // everything gives every pixel the same drop, a constant map.
    if params.window == h32 && params.window == w32 {
        return Err(BorexError::setting(
            "window",
            Some(params.window.to_string()),
            format!(
                ": the window covers the whole {h}×{w} input, so every pixel gets the same drop (a constant map); use a window below {}",
                h.max(w)
            ),
        ));
    }
    if params.stride > h32.max(w32) {
        return Err(BorexError::setting(
            "stride",
            Some(params.stride.to_string()),
            format!("is larger than the {h}×{w} input: the window would visit one position only"),
        ));
    }
    let clean = scorer.probabilities(image)?[class];
    let boxes: Vec<BoxMask> = starts(h32, params.window, params.stride)
        .into_iter()
        .flat_map(|r| starts(w32, params.window, params.stride).into_iter().map(move |c| (r, c)))
        .map(|(r, c)| BoxMask { r0: r, r1: r + params.window, c0: c, c1: c + params.window, keep: Keep::Outside })
        .collect();
    progress.set_length(boxes.len() as u64);
    let mut drop_sum = Array2::<f32>::zeros((h, w));
    let mut count = Array2::<f32>::zeros((h, w));
    for chunk in boxes.chunks(scorer.batch * 4) {
        let p = scorer.class_probs(image, baseline, Masks::Boxes(chunk), class)?;
        for (b, pc) in chunk.iter().zip(p) {
            let mut d = drop_sum.slice_mut(ndarray::s![b.r0 as usize..b.r1 as usize, b.c0 as usize..b.c1 as usize]);
            d += clean - pc;
            let mut n = count.slice_mut(ndarray::s![b.r0 as usize..b.r1 as usize, b.c0 as usize..b.c1 as usize]);
            n += 1.0;
        }
        progress.inc(chunk.len() as u64);
    }
    Ok(drop_sum / count.mapv(|c| c.max(1.0)))
}

#[cfg(test)]
mod tests {
    use super::starts;

    #[test]
    fn windows_cover_the_edges() {
        assert_eq!(starts(10, 4, 3), vec![0, 3, 6]);
        assert_eq!(starts(10, 4, 4), vec![0, 4, 6]);
        assert_eq!(starts(4, 4, 2), vec![0]);
    }
}
