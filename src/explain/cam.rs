//! CAM, Grad-CAM, Grad-CAM++ and CAMERAS for models whose head is global
//! average pooling + a linear layer, in closed form from the last feature map
//! A (K×h×w) and the linear weights W (SPEC §2):
//! CAM = Σ_k W_ck A_k; Grad-CAM = ReLU(CAM) (exact up to a positive constant
//! for such heads); Grad-CAM++ weights w_k = ReLU(W_ck) / (2 + W_ck·Ā_k);
//! CAMERAS averages per-scale CAMs upsampled to the input size, then ReLU.
//! Maps are upsampled bilinearly (half-pixel centres) and min–max normalised.

use crate::error::{BorexError, Result};
use crate::model::onnx_graph::Graph;
use crate::model::Classifier;
use ndarray::{Array2, Array3, ArrayView2, ArrayView3, Axis};

/// The linear head W (classes × K) of a model with a feature output.
pub struct CamHead {
    /// W, classes × K.
    pub weights: Array2<f32>,
}

impl CamHead {
    /// The linear head of `model`, read from its ONNX graph, or an error saying why there is none.
    pub fn from_model(model: &Classifier) -> Result<Self> {
        let onnx = model.require_onnx("the CAM family (cam, gradcam, gradcam++, cameras)")?;
        let features = onnx.feature_output().ok_or_else(|| {
            BorexError::model(model.path(), "no feature-map output: CAM methods need a model that also outputs its last feature map (N×K×h×w) before global pooling, e.g. efficientnet-lite0-features.onnx")
        })?;
        let graph = Graph::load(onnx.path())?;
        let (weights, _) = graph
            .gap_linear_head(onnx.logits_output(), features, &|name| {
                onnx.initializer_override(name).map(|o| o.data.clone())
            })
            .map_err(|why| {
                BorexError::model(model.path(), format!("CAM needs a global-average-pool + linear head: {why}"))
            })?;
        Ok(Self { weights })
    }
}

/// Which closed form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CamKind {
    /// CAM: the head's weights.
    Cam,
    /// Grad-CAM: mean gradients.
    GradCam,
    /// Grad-CAM++: higher-order gradient weights.
    GradCamPlusPlus,
}

/// Σ_k w_k A_k at feature resolution.
fn weighted_sum(features: ArrayView3<f32>, w: &[f32]) -> Array2<f32> {
    let (_, h, wd) = features.dim();
    let mut out = Array2::<f32>::zeros((h, wd));
    for (a, wk) in features.axis_iter(Axis(0)).zip(w) {
        out.scaled_add(*wk, &a);
    }
    out
}

/// The raw class map at feature resolution (before upsampling and normalising).
pub fn raw_map(kind: CamKind, features: ArrayView3<f32>, head: &CamHead, class: usize) -> Array2<f32> {
    let wc = head.weights.row(class);
    match kind {
        CamKind::Cam => weighted_sum(features, wc.as_slice().expect("row-major")),
        CamKind::GradCam => weighted_sum(features, wc.as_slice().expect("row-major")).mapv(|v| v.max(0.0)),
        CamKind::GradCamPlusPlus => {
            let pooled: Vec<f32> = features.axis_iter(Axis(0)).map(|a| a.mean().unwrap_or(0.0)).collect();
            let w: Vec<f32> = wc.iter().zip(&pooled).map(|(wk, ak)| wk.max(0.0) / (2.0 + wk * ak)).collect();
            weighted_sum(features, &w).mapv(|v| v.max(0.0))
        }
    }
}

/// Bilinear resize with half-pixel centres and clamped edges (PyTorch's
/// `interpolate(mode="bilinear", align_corners=False)`).
pub fn upsample_bilinear(m: ArrayView2<f32>, h: usize, w: usize) -> Array2<f32> {
    let (mh, mw) = m.dim();
    let taps = |o: usize, n_in: usize, n_out: usize| {
        let src = ((o as f32 + 0.5) * n_in as f32 / n_out as f32 - 0.5).max(0.0);
        let i0 = (src.floor() as usize).min(n_in - 1);
        let i1 = (i0 + 1).min(n_in - 1);
        (i0, i1, src - i0 as f32)
    };
    let rows: Vec<_> = (0..h).map(|y| taps(y, mh, h)).collect();
    let cols: Vec<_> = (0..w).map(|x| taps(x, mw, w)).collect();
    Array2::from_shape_fn((h, w), |(y, x)| {
        let ((r0, r1, fr), (c0, c1, fc)) = (rows[y], cols[x]);
        let top = m[[r0, c0]] * (1.0 - fc) + m[[r0, c1]] * fc;
        let bottom = m[[r1, c0]] * (1.0 - fc) + m[[r1, c1]] * fc;
        top * (1.0 - fr) + bottom * fr
    })
}

/// (m − min) / (max − min); an all-constant map becomes zeros.
pub fn min_max(m: Array2<f32>) -> Array2<f32> {
    let (lo, hi) = m.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), v| (a.min(*v), b.max(*v)));
    if hi > lo {
        m.mapv(|v| (v - lo) / (hi - lo))
    } else {
        Array2::zeros(m.raw_dim())
    }
}

/// CAM / Grad-CAM / Grad-CAM++ of `class` for one preprocessed input.
pub fn cam(
    model: &Classifier,
    head: &CamHead,
    input: ArrayView3<f32>,
    class: usize,
    kind: CamKind,
) -> Result<Array2<f32>> {
    let (_, h, w) = input.dim();
    let (_, feats) = model.probabilities_and_features(input.insert_axis(Axis(0)))?;
    check_class(head, class)?;
    let raw = raw_map(kind, feats.index_axis(Axis(0), 0), head, class);
    Ok(min_max(upsample_bilinear(raw.view(), h, w)))
}

fn check_class(head: &CamHead, class: usize) -> Result<()> {
    if class >= head.weights.nrows() {
        return Err(BorexError::invalid(format!(
            "class {class} is out of range for a {}-class head",
            head.weights.nrows()
        )));
    }
    Ok(())
}

/// CAMERAS: the input image (model-input crop, `rgb`) at each scale (bicubic),
/// per-scale CAM upsampled to the base input size, averaged, ReLU, min–max.
pub fn cameras(
    model: &Classifier,
    head: &CamHead,
    rgb: &image::RgbImage,
    class: usize,
    scales: &[u32],
) -> Result<Array2<f32>> {
    crate::explain::Method::Cameras { scales: scales.to_vec() }.validate()?;
    if !model.dynamic_spatial_size() {
        return Err(BorexError::model(
            model.path(),
            "CAMERAS runs the image at several sizes and needs a model with a dynamic spatial input size",
        ));
    }
    check_class(head, class)?;
    let (w, h) = rgb.dimensions();
    let pre = model.preprocess();
    let mut acc = Array2::<f32>::zeros((h as usize, w as usize));
    for &s in scales {
        let resized = if s == h && s == w {
            rgb.clone()
        } else {
            image::imageops::resize(rgb, s, s, image::imageops::FilterType::CatmullRom)
        };
        let x = Array3::from_shape_fn((3, s as usize, s as usize), |(c, y, xx)| {
            (resized.get_pixel(xx as u32, y as u32)[c] as f32 - pre.mean[c]) / pre.std[c]
        });
        let (_, feats) = model.probabilities_and_features(x.view().insert_axis(Axis(0)))?;
        let raw = raw_map(CamKind::Cam, feats.index_axis(Axis(0), 0), head, class);
        acc += &upsample_bilinear(raw.view(), h as usize, w as usize);
    }
    acc /= scales.len() as f32;
    Ok(min_max(acc.mapv(|v| v.max(0.0))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn upsampling_is_half_pixel_bilinear() {
        let m = array![[0.0f32, 1.0], [2.0, 3.0]];
        let u = upsample_bilinear(m.view(), 4, 4);
        // Output pixel 1 maps to src 0.25: 0.75·m0 + 0.25·m1.
        assert!((u[[0, 1]] - 0.25).abs() < 1e-6);
        assert_eq!(u[[0, 0]], 0.0);
        assert_eq!(u[[3, 3]], 3.0);
        assert!((u[[1, 0]] - 0.5).abs() < 1e-6);
    }

    #[test]
    fn closed_forms() {
        // K = 2 channels of 1×2, W = [[1, −2]] for class 0.
        let a = Array3::from_shape_vec((2, 1, 2), vec![1.0f32, 2.0, 0.5, 0.0]).unwrap();
        let head = CamHead { weights: array![[1.0f32, -2.0]] };
        assert_eq!(raw_map(CamKind::Cam, a.view(), &head, 0), array![[0.0f32, 2.0]]);
        assert_eq!(
            raw_map(CamKind::GradCam, array![[[1.0f32, 0.0]], [[1.0, 0.0]]].view(), &head, 0),
            array![[0.0f32, 0.0]]
        );
        // Grad-CAM++: w = [1/(2 + 1·1.5), 0] → map = A_0 / 3.5.
        let pp = raw_map(CamKind::GradCamPlusPlus, a.view(), &head, 0);
        assert!((pp[[0, 1]] - 2.0 / 3.5).abs() < 1e-6);
        assert_eq!(min_max(array![[2.0f32, 2.0]]), array![[0.0f32, 0.0]]);
    }
}
