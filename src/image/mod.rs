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
    let img = reader
        .decode()
        .map_err(|e| BorexError::Image { path: path.into(), reason: e.to_string() })?;
    Ok(img.to_rgb8())
}
