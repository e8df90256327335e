//! Decoding images and turning them into normalised model inputs; reading
//! saliency maps made by other tools.

mod map;
mod preprocess;

pub use map::{first_non_finite, map_to_input, read_map, resize_map, MapFile};
#[cfg(feature = "jobs")]
pub(crate) use map::{parse_npy, read_npy_map};
pub use preprocess::{Crop, Preprocess, Preprocessed};

use crate::error::{BorexError, Result};
use crate::limits::{MAX_IMAGE_PIXELS, MAX_IMAGE_SIDE};
use std::path::Path;

/// A decoded image and what decoding had to drop.
pub struct Decoded {
    /// The image as RGB.
    pub rgb: image::RgbImage,
    /// What decoding dropped (an alpha channel, 16-bit depth).
    pub notes: Vec<String>,
}

/// Decode an image file to RGB8, naming the file and the problem on failure
/// (missing, not an image, truncated, too large).
pub fn load_rgb(path: &Path) -> Result<image::RgbImage> {
    load_image(path).map(|d| d.rgb)
}

/// [`load_rgb`], with a note when an alpha channel is dropped.
pub fn load_image(path: &Path) -> Result<Decoded> {
    let img = decode(path)?;
    let mut notes = vec![];
    if img.color().has_alpha() {
        notes.push(format!(
            "{}: the alpha channel is dropped (transparent pixels keep their stored colour)",
            path.display()
        ));
    }
    Ok(Decoded { rgb: img.to_rgb8(), notes })
}

/// Decode `path` and make it a model input; the notes say what decoding dropped.
pub fn load_input(path: &Path, preprocess: &Preprocess) -> Result<(Preprocessed, Vec<String>)> {
    let d = load_image(path)?;
    Ok((to_input(&d.rgb, &path.display().to_string(), preprocess)?, d.notes))
}

/// A decoded image as a model input, refusing sizes whose resize would be
/// unbounded; `name` says which image in the error.
pub fn to_input(rgb: &image::RgbImage, name: &str, preprocess: &Preprocess) -> Result<Preprocessed> {
    let (w, h) = rgb.dimensions();
    preprocess.check(w, h).map_err(|reason| BorexError::invalid(format!("{name}: {reason}")))?;
    Ok(preprocess.apply(rgb))
}

/// Decode with bounded dimensions and allocations: a tiny file may claim a
/// huge image.
pub(crate) fn decode(path: &Path) -> Result<image::DynamicImage> {
    let bad = |reason: String| BorexError::Image { path: path.into(), reason };
    let bytes = crate::limits::read_bounded(path, crate::limits::MAX_IMAGE_FILE_BYTES, "image")?;
    let mut reader =
        image::ImageReader::new(std::io::Cursor::new(&bytes)).with_guessed_format().map_err(|e| bad(e.to_string()))?;
    if reader.format().is_none() {
        return Err(bad("unknown format (supported: PNG, JPEG)".into()));
    }
    if reader.format() == Some(image::ImageFormat::Jpeg) && !has_jpeg_end(&bytes) {
        // The JPEG decoder fills a cut-off scan with grey instead of failing.
        return Err(bad("truncated JPEG (no end-of-image marker)".into()));
    }
    reader.limits(decode_limits());
    let (w, h) = reader.into_dimensions().map_err(|e| bad(e.to_string()))?;
    if w as u64 * h as u64 > MAX_IMAGE_PIXELS {
        return Err(bad(format!("{w}×{h} is larger than the {MAX_IMAGE_PIXELS} pixels borex decodes")));
    }
    let mut reader =
        image::ImageReader::new(std::io::Cursor::new(&bytes)).with_guessed_format().map_err(|e| bad(e.to_string()))?;
    reader.limits(decode_limits());
    reader.decode().map_err(|e| bad(e.to_string()))
}

fn decode_limits() -> image::Limits {
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    // RGBA16 at the pixel limit: the largest buffer a decoder needs.
    limits.max_alloc = Some(MAX_IMAGE_PIXELS * 8);
    limits
}

/// Whether a JPEG stream has its end-of-image marker (FF D9) near the end;
/// trailing bytes after it are tolerated, as decoders do.
fn has_jpeg_end(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(64 * 1024)..];
    tail.windows(2).any(|w| w == [0xFF, 0xD9])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_and_foreign_files_are_named_errors() {
        let dir = tempfile::tempdir().unwrap();
        let img = image::RgbImage::from_fn(32, 32, |x, y| image::Rgb([x as u8 * 8, y as u8 * 8, 7]));
        let jpg = dir.path().join("a.jpg");
        img.save(&jpg).unwrap();
        assert_eq!(load_rgb(&jpg).unwrap().dimensions(), (32, 32));
        let bytes = std::fs::read(&jpg).unwrap();
        let cut = dir.path().join("cut.jpg");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let err = load_rgb(&cut).unwrap_err().to_string();
        assert!(err.contains("cut.jpg") && err.contains("truncated JPEG"), "{err}");
        let txt = dir.path().join("t.png");
        std::fs::write(&txt, "plain text").unwrap();
        assert!(load_rgb(&txt).unwrap_err().to_string().contains("unknown format"));
    }

    #[test]
    fn alpha_is_noted() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.png");
        image::RgbaImage::from_pixel(4, 4, image::Rgba([200, 10, 10, 0])).save(&p).unwrap();
        let d = load_image(&p).unwrap();
        assert_eq!(d.rgb.get_pixel(0, 0), &image::Rgb([200, 10, 10]));
        assert!(d.notes[0].contains("alpha channel is dropped"));
        let q = dir.path().join("b.png");
        image::RgbImage::from_pixel(4, 4, image::Rgb([1, 2, 3])).save(&q).unwrap();
        assert!(load_image(&q).unwrap().notes.is_empty());
    }
}
