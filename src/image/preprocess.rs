use ndarray::Array3;
use serde::{Deserialize, Serialize};

/// How an RGB image becomes a model input: resize the short side, centre-crop,
/// then `(x - mean) / std` per channel on 0–255 values, laid out C×H×W.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocess {
    /// Model input height and width.
    pub input_size: (u32, u32),
    /// Short side after resizing, before the centre crop; `None` resizes straight to the input size.
    pub resize: Option<u32>,
    /// Per-channel mean subtracted after scaling to [0, 1] (RGB).
    pub mean: [f32; 3],
    /// Per-channel std divided by after the mean (RGB).
    pub std: [f32; 3],
}

impl Default for Preprocess {
    /// torchvision's ImageNet convention, for models that ship no config.
    fn default() -> Self {
        Self {
            input_size: (224, 224),
            resize: Some(256),
            mean: [0.485 * 255.0, 0.456 * 255.0, 0.406 * 255.0],
            std: [0.229 * 255.0, 0.224 * 255.0, 0.225 * 255.0],
        }
    }
}

/// Where the model input sits in the original image (for mapping maps back).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Crop {
    /// Original image size (width, height).
    pub original: (u32, u32),
    /// Size after resizing (width, height), before cropping.
    pub resized: (u32, u32),
    /// Top-left of the crop in the resized image (x, y).
    pub offset: (u32, u32),
}

/// A model-ready tensor and the geometry that produced it.
#[derive(Debug, Clone)]
pub struct Preprocessed {
    /// The model input, C×H×W float32.
    pub tensor: Array3<f32>,
    /// Where it came from in the original image.
    pub crop: Crop,
}

impl Preprocess {
    /// Where the model input comes from in an image of `width×height`.
    pub fn geometry(&self, width: u32, height: u32) -> Crop {
        let (out_h, out_w) = self.input_size;
        let (rw, rh) = match self.resize {
            Some(short) => {
                // Scale so the short side is `short`, never below the crop size.
                let s = short as f64 / width.min(height).max(1) as f64;
                let rw = ((width as f64 * s).round().min(u32::MAX as f64) as u32).max(out_w);
                let rh = ((height as f64 * s).round().min(u32::MAX as f64) as u32).max(out_h);
                (rw, rh)
            }
            None => (out_w, out_h),
        };
        Crop { original: (width, height), resized: (rw, rh), offset: ((rw - out_w) / 2, (rh - out_h) / 2) }
    }

    /// An image whose resized copy would exceed the pixel limit (an extreme
    /// aspect ratio: 24000×1 resized to a short side of 256) is an error.
    pub fn check(&self, width: u32, height: u32) -> Result<(), String> {
        let (rw, rh) = self.geometry(width, height).resized;
        // The side bound too: a 1×2000 image would otherwise become 512000×256 (400 MB, 20 s) for a 224² crop.
        if rw as u64 * rh as u64 > crate::limits::MAX_IMAGE_PIXELS || rw.max(rh) > crate::limits::MAX_IMAGE_SIDE {
            return Err(format!(
                "{width}×{height} has an extreme aspect ratio: resizing its short side to {} would make a {rw}×{rh} image (limit {} pixels, {} per side)",
                self.resize.unwrap_or(0),
                crate::limits::MAX_IMAGE_PIXELS,
                crate::limits::MAX_IMAGE_SIDE
            ));
        }
        Ok(())
    }

    /// Resize, centre-crop and normalise an RGB image to the model input.
    pub fn apply(&self, rgb: &image::RgbImage) -> Preprocessed {
        let (w, h) = rgb.dimensions();
        let (out_h, out_w) = self.input_size;
        let crop = self.geometry(w, h);
        let (rw, rh) = crop.resized;
        let resized = if (rw, rh) == (w, h) {
            rgb.clone()
        } else {
            image::imageops::resize(rgb, rw, rh, image::imageops::FilterType::Triangle)
        };
        let (ox, oy) = crop.offset;
        let mut tensor = Array3::<f32>::zeros((3, out_h as usize, out_w as usize));
        for y in 0..out_h {
            for x in 0..out_w {
                let p = resized.get_pixel(x + ox, y + oy);
                for c in 0..3 {
                    tensor[[c, y as usize, x as usize]] = (p[c] as f32 - self.mean[c]) / self.std[c];
                }
            }
        }
        Preprocessed { tensor, crop }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_is_centred_and_normalised() {
        // 40×20 image, left half black, right half white; resize short side 10, crop 10×10.
        let img =
            image::RgbImage::from_fn(
                40,
                20,
                |x, _| {
                    if x < 20 {
                        image::Rgb([0, 0, 0])
                    } else {
                        image::Rgb([255, 255, 255])
                    }
                },
            );
        let p = Preprocess { input_size: (10, 10), resize: Some(10), mean: [127.0; 3], std: [128.0; 3] };
        let out = p.apply(&img);
        assert_eq!(out.crop.resized, (20, 10));
        assert_eq!(out.crop.offset, (5, 0));
        assert_eq!(out.tensor.dim(), (3, 10, 10));
        // Far left of the crop is black, far right is white.
        assert!((out.tensor[[0, 5, 0]] - (-127.0 / 128.0)).abs() < 1e-6);
        assert!((out.tensor[[2, 5, 9]] - (128.0 / 128.0)).abs() < 1e-6);
    }
}
