//! Saliency maps from other tools: `.npy` (float32/float64, either byte
//! order, C or Fortran order) or a grayscale PNG, brought onto the model
//! input's grid with the same geometry as the image.

use super::Crop;
use crate::error::{BorexError, Result};
use crate::limits::{MAX_MAP_ELEMENTS, MAX_NPY_FILE_BYTES};
use ndarray::{Array2, ArrayD, ArrayView2};
use ndarray_npy::npy::header::Header;
use ndarray_npy::ReadNpyExt;
use std::path::Path;

/// A map read from a file, with what the reader had to change.
pub struct MapFile {
    /// The map, H×W float32.
    pub map: Array2<f32>,
    /// What reading changed (a conversion from float64, a PNG's scaling).
    pub notes: Vec<String>,
}

/// Read an external map. Every malformed file is an error that says what is
/// wrong with it (dimensions, dtype, truncation), checked before allocating.
pub fn read_map(path: &Path) -> Result<MapFile> {
    if !path.exists() {
        return Err(BorexError::invalid(format!("prior map {} not found", path.display())));
    }
    let bad = |r: String| BorexError::invalid(format!("prior map {}: {r}", path.display()));
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy")) {
        let bytes = crate::limits::read_bounded(path, MAX_NPY_FILE_BYTES, "prior map")?;
        return read_npy(&bytes).map(|map| MapFile { map, notes: vec![] }).map_err(bad);
    }
    read_png(path).map_err(bad)
}

/// A float32 or float64 `.npy` of any rank as float32, checked against its
/// header before allocating, or why not.
#[cfg(feature = "jobs")] // only the command line's jobs read maps of any rank
pub(crate) fn parse_npy(bytes: &[u8]) -> std::result::Result<ArrayD<f32>, String> {
    read_npy_any(bytes, None)
}

/// A 2-D float32 or float64 `.npy` file as float32, read within
/// [`MAX_NPY_FILE_BYTES`]; errors name the file (`what` says what it is to the reader).
#[cfg(feature = "jobs")] // only the command line's jobs read their own maps back
pub(crate) fn read_npy_map(path: &Path, what: &str) -> Result<Array2<f32>> {
    let bytes = crate::limits::read_bounded(path, MAX_NPY_FILE_BYTES, what)?;
    read_npy(&bytes).map_err(|r| BorexError::invalid(format!("{what} {}: {r}", path.display())))
}

fn read_npy(bytes: &[u8]) -> std::result::Result<Array2<f32>, String> {
    let a = read_npy_any(bytes, Some(2))?;
    Ok(a.into_dimensionality().expect("checked to be 2-D"))
}

fn read_npy_any(bytes: &[u8], ndim: Option<usize>) -> std::result::Result<ArrayD<f32>, String> {
    let mut cursor = std::io::Cursor::new(bytes);
    let header = Header::from_reader(&mut cursor).map_err(|e| format!("not a valid .npy file ({e})"))?;
    let descr = header.type_descriptor.to_string().trim_matches(['\'', '"']).to_string();
    let item = match descr.as_str() {
        "<f4" | ">f4" | "=f4" => 4,
        "<f8" | ">f8" | "=f8" => 8,
        other => return Err(format!("dtype {other} is not supported: save the map as float32 or float64")),
    };
    let shape = &header.shape;
    if let Some(n) = ndim.filter(|&n| n != shape.len()) {
        let what = if n == 2 { "a map must be 2-D (H×W)".to_string() } else { format!("expected {n}-D") };
        return Err(format!("is {}-D with shape {shape:?}: {what}", shape.len()));
    }
    let elements = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d as u64)).unwrap_or(u64::MAX);
    if elements == 0 {
        return Err(format!("is empty (shape {shape:?})"));
    }
    if elements > MAX_MAP_ELEMENTS {
        return Err(format!("shape {shape:?} has {elements} elements, more than the {MAX_MAP_ELEMENTS} borex reads"));
    }
    // The header's claim against the bytes that follow it, before any allocation.
    let have = (bytes.len() as u64).saturating_sub(cursor.position());
    let need = elements * item;
    if have < need {
        return Err(format!(
            "truncated: its header says {shape:?} {descr} ({need} bytes of data) but only {have} bytes follow"
        ));
    }
    let map = if item == 4 {
        ArrayD::<f32>::read_npy(&mut std::io::Cursor::new(bytes))
    } else {
        ArrayD::<f64>::read_npy(&mut std::io::Cursor::new(bytes)).map(|a| a.mapv(|v| v as f32))
    }
    .map_err(|e| format!("cannot read the data ({e})"))?;
    // Fortran-ordered files come back column-major; everything downstream wants rows.
    Ok(map.as_standard_layout().into_owned())
}

fn read_png(path: &Path) -> std::result::Result<MapFile, String> {
    let img = super::decode(path).map_err(|e| e.to_string())?;
    let mut notes = vec![];
    let colour = img.color();
    if colour.has_color() {
        notes.push(format!(
            "prior map {} is a colour image: its luminance is used (borex expects a grayscale map)",
            path.display()
        ));
    }
    if colour.has_alpha() {
        notes.push(format!("prior map {}: its alpha channel is ignored", path.display()));
    }
    let luma = img.to_luma32f();
    Ok(MapFile {
        map: Array2::from_shape_fn((luma.height() as usize, luma.width() as usize), |(y, x)| {
            luma.get_pixel(x as u32, y as u32)[0]
        }),
        notes,
    })
}

/// Bring a map onto the model input's `h×w` grid. A map of the input's size
/// is taken as is; one of the original image's size goes through the image's
/// own resize and centre crop, so it lines up with what the model sees; a
/// coarser (or finer) map of the input's aspect ratio, such as a 7×7 CAM, is
/// stretched, with a note. Any other shape cannot be placed on the image
/// without guessing, so it is an error.
pub fn map_to_input(
    map: Array2<f32>,
    crop: &Crop,
    h: usize,
    w: usize,
    what: &str,
) -> crate::error::Result<(Array2<f32>, Option<String>)> {
    let (mh, mw) = map.dim();
    let (ow, oh) = crop.original;
    if (mh, mw) == (h, w) {
        return Ok((map, None));
    }
    if (mh, mw) == (oh as usize, ow as usize) {
        let (rw, rh) = crop.resized;
        let resized = resize_map(map.view(), rh as usize, rw as usize);
        let (ox, oy) = (crop.offset.0 as usize, crop.offset.1 as usize);
        let cropped = resized.slice(ndarray::s![oy..oy + h, ox..ox + w]).to_owned();
        return Ok((
            cropped,
            Some(format!("{what} is {mh}×{mw}, the original image's size: resized to {rh}×{rw} and centre-cropped to the model input {h}×{w}, like the image")),
        ));
    }
    // Same aspect ratio within 1 %: a map at another resolution of the input.
    let (ratio, input_ratio) = (mh as f64 / mw as f64, h as f64 / w as f64);
    if (ratio / input_ratio - 1.0).abs() <= 0.01 {
        return Ok((
            resize_map(map.view(), h, w),
            Some(format!(
                "{what} is {mh}×{mw}, a map of the model input's shape at another resolution: stretched to {h}×{w}"
            )),
        ));
    }
    Err(crate::error::BorexError::invalid(format!(
        "{what} is {mh}×{mw}: expected the model input's size {h}×{w} (or its aspect ratio at another resolution) or the image's {oh}×{ow}"
    )))
}

/// The first non-finite value's position, if any.
pub fn first_non_finite(map: ArrayView2<f32>) -> Option<(usize, usize)> {
    map.indexed_iter().find(|(_, v)| !v.is_finite()).map(|(i, _)| i)
}

/// Bilinear resize of a map (used for external priors and display). The
/// `image` crate clamps float pixels to [0, 1] while filtering, so the map is
/// mapped into that range and back (the filter is linear: nothing is lost).
pub fn resize_map(map: ArrayView2<f32>, h: usize, w: usize) -> Array2<f32> {
    let (mh, mw) = map.dim();
    if (mh, mw) == (h, w) {
        return map.to_owned();
    }
    let (lo, hi) = map.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), v| (a.min(*v), b.max(*v)));
    let span = hi - lo;
    if !(span > 0.0 && span.is_finite()) {
        return Array2::from_elem((h, w), if lo.is_finite() { lo } else { 0.0 });
    }
    let buf = image::ImageBuffer::<image::Luma<f32>, Vec<f32>>::from_fn(mw as u32, mh as u32, |x, y| {
        image::Luma([(map[[y as usize, x as usize]] - lo) / span])
    });
    let out = image::imageops::resize(&buf, w as u32, h as u32, image::imageops::FilterType::Triangle);
    Array2::from_shape_fn((h, w), |(y, x)| out.get_pixel(x as u32, y as u32)[0] * span + lo)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy_bytes(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
        let mut h = format!(
            "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
            if fortran { "True" } else { "False" }
        );
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(h.len() as u16).to_le_bytes());
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn byte_orders_and_layouts_load_to_the_same_rows() {
        // The 2×3 matrix [[0,1,2],[3,4,5]] stored four ways.
        let vals = [0.0f64, 1.0, 2.0, 3.0, 4.0, 5.0];
        let col_major = [0.0f64, 3.0, 1.0, 4.0, 2.0, 5.0];
        let le32: Vec<u8> = vals.iter().flat_map(|v| (*v as f32).to_le_bytes()).collect();
        let be32f: Vec<u8> = col_major.iter().flat_map(|v| (*v as f32).to_be_bytes()).collect();
        let le64f: Vec<u8> = col_major.iter().flat_map(|v| v.to_le_bytes()).collect();
        let be64: Vec<u8> = vals.iter().flat_map(|v| v.to_be_bytes()).collect();
        let expect = ndarray::array![[0.0f32, 1.0, 2.0], [3.0, 4.0, 5.0]];
        for (descr, fortran, data) in
            [("<f4", false, le32), (">f4", true, be32f), ("<f8", true, le64f), (">f8", false, be64)]
        {
            let m = read_npy(&npy_bytes(descr, fortran, "(2, 3)", &data)).unwrap();
            assert_eq!(m, expect, "{descr} fortran={fortran}");
            assert!(m.is_standard_layout());
        }
    }

    #[test]
    fn malformed_headers_are_named_before_allocating() {
        let huge = read_npy(&npy_bytes("<f4", false, "(200000, 200000)", &[0; 100])).unwrap_err();
        assert!(huge.contains("more than the"), "{huge}");
        let cut = read_npy(&npy_bytes("<f4", false, "(10, 10)", &[0; 100])).unwrap_err();
        assert!(cut.contains("truncated") && cut.contains("400 bytes") && cut.contains("only 100"), "{cut}");
        assert!(read_npy(&npy_bytes("<f4", false, "(6,)", &[0; 24])).unwrap_err().contains("is 1-D"));
        assert!(read_npy(&npy_bytes("<f4", false, "(1, 2, 3)", &[0; 24])).unwrap_err().contains("is 3-D"));
        assert!(read_npy(&npy_bytes("<i4", false, "(2, 3)", &[0; 24])).unwrap_err().contains("dtype <i4"));
        assert!(read_npy(b"not numpy").unwrap_err().contains("not a valid .npy"));
    }

    #[test]
    fn original_sized_maps_follow_the_image_geometry() {
        // A 40×20 image resized to 20×10 and cropped to 10×10 at x = 5.
        let crop = Crop { original: (40, 20), resized: (20, 10), offset: (5, 0) };
        // A map that is 1 on the original's columns 10..30 (the crop's window) and 0 elsewhere.
        let map = Array2::from_shape_fn((20, 40), |(_, x)| if (10..30).contains(&x) { 1.0f32 } else { 0.0 });
        let (m, note) = map_to_input(map, &crop, 10, 10, "prior").unwrap();
        assert!(note.unwrap().contains("centre-cropped"));
        // Inside the crop, away from the edges blurred by resampling, the map is 1.
        assert!(m.slice(ndarray::s![.., 1..9]).iter().all(|v| (*v - 1.0).abs() < 1e-6), "{m:?}");
        let (same, none) = map_to_input(Array2::zeros((10, 10)), &crop, 10, 10, "prior").unwrap();
        assert!(none.is_none() && same.dim() == (10, 10));
        let (_, stretched) = map_to_input(Array2::zeros((7, 7)), &crop, 10, 10, "prior").unwrap();
        assert!(stretched.unwrap().contains("stretched"));
        let wrong = map_to_input(Array2::zeros((7, 9)), &crop, 10, 10, "prior").unwrap_err().to_string();
        assert!(wrong.contains("prior is 7×9: expected the model input's size 10×10"), "{wrong}");
    }

    #[test]
    fn resize_keeps_values_outside_the_unit_range() {
        // A ramp from −3 to 5 halved in width stays a ramp away from the
        // edges, where the filter's clipped taps pull values inwards.
        let m = ndarray::Array2::from_shape_fn((2, 8), |(_, x)| -3.0 + x as f32 * 8.0 / 7.0);
        let r = resize_map(m.view(), 2, 4);
        for x in 1..3 {
            let want = -3.0 + (2 * x) as f32 * 8.0 / 7.0 + 4.0 / 7.0;
            assert!((r[[0, x]] - want).abs() < 1e-4, "{x}: {} vs {want}", r[[0, x]]);
        }
        assert_eq!(resize_map(ndarray::Array2::from_elem((3, 3), -2.0).view(), 5, 5)[[4, 4]], -2.0);
    }
}
