//! Decoding images and turning them into normalised model inputs.

mod preprocess;

pub use preprocess::{Crop, Preprocess, Preprocessed};

use crate::error::{BorexError, Result};
use std::path::Path;

/// Decode an image file to RGB8, naming the file and the problem on failure
/// (missing, not an image, truncated).
pub fn load_rgb(path: &Path) -> Result<image::RgbImage> {
    let bytes = std::fs::read(path).map_err(|e| BorexError::io(path, e))?;
    let reader = image::ImageReader::new(std::io::Cursor::new(&bytes))
        .with_guessed_format()
        .map_err(|e| BorexError::Image { path: path.into(), reason: e.to_string() })?;
    if reader.format().is_none() {
        return Err(BorexError::Image {
            path: path.into(),
            reason: "unknown format (supported: PNG, JPEG)".into(),
        });
    }
    if reader.format() == Some(image::ImageFormat::Jpeg) && !has_jpeg_end(&bytes) {
        // The JPEG decoder fills a cut-off scan with grey instead of failing.
        return Err(BorexError::Image { path: path.into(), reason: "truncated JPEG (no end-of-image marker)".into() });
    }
    let img = reader
        .decode()
        .map_err(|e| BorexError::Image { path: path.into(), reason: e.to_string() })?;
    Ok(img.to_rgb8())
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
}
