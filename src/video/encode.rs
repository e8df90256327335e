//! Video outputs: the refined map over each frame, H.264 MP4 through the
//! `ffmpeg` command (raw RGB frames on its stdin), joined segments, and
//! per-frame maps stacked into one `.npy` without holding them all.

use crate::error::{BorexError, Result};
use crate::image::{resize_map, Crop};
use crate::output::{colorize, staging};
use image::{Rgb, RgbImage};
use ndarray::ArrayView2;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// The frame with `map` (model-input resolution) blended over the part of it
/// the model saw (the centre crop); the rest is dimmed.
pub fn overlay_frame(frame: &RgbImage, map: ArrayView2<f32>, crop: &Crop) -> RgbImage {
    let (w, h) = frame.dimensions();
    let (mh, mw) = map.dim();
    let (rw, rh) = crop.resized;
    let (ox, oy) = crop.offset;
    let to_x = |x: u32| ((x as u64 * w as u64) / rw.max(1) as u64).min(w as u64) as u32;
    let to_y = |y: u32| ((y as u64 * h as u64) / rh.max(1) as u64).min(h as u64) as u32;
    let (x0, x1, y0, y1) = (to_x(ox), to_x(ox + mw as u32), to_y(oy), to_y(oy + mh as u32));
    let colored = colorize(resize_map(map, (y1 - y0).max(1) as usize, (x1 - x0).max(1) as usize).view());
    RgbImage::from_fn(w, h, |x, y| {
        let a = frame.get_pixel(x, y);
        if x >= x0 && x < x1 && y >= y0 && y < y1 {
            let b = colored.get_pixel(x - x0, y - y0);
            Rgb([0, 1, 2].map(|i| ((a[i] as u16 + b[i] as u16) / 2) as u8))
        } else {
            Rgb([0, 1, 2].map(|i| (a[i] as u16 * 2 / 5) as u8))
        }
    })
}

/// A temporary name beside `path`, registered for Ctrl-C cleanup.
fn temporary(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    staging::register(&tmp);
    tmp
}

fn finish_ffmpeg(out: std::process::Output, tmp: &Path, path: &Path) -> Result<()> {
    let result = if out.status.success() {
        std::fs::rename(tmp, path).map_err(|e| BorexError::io(path, e))
    } else {
        let why = String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("ffmpeg failed").trim().to_string();
        Err(BorexError::invalid(format!("{}: ffmpeg could not write the video ({why})", path.display())))
    };
    if result.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    staging::unregister(tmp);
    result
}

/// Encode `frames` (same size) as a raw H.264 segment (Annex B, no
/// B-frames, starting with a key frame) at `fps` (FFmpeg's rate syntax, e.g.
/// "30000/1001"); odd sizes are cropped by one pixel for 4:2:0. Segments
/// concatenate byte for byte; [`join_h264`] makes them one MP4.
pub fn encode_h264(path: &Path, frames: &[RgbImage], fps: &str) -> Result<()> {
    let (w, h) = frames.first().map(|f| f.dimensions()).ok_or_else(|| BorexError::invalid("no frames to encode"))?;
    encode_h264_with(path, (w, h), fps, |stdin| {
        for f in frames {
            if f.dimensions() != (w, h) {
                return Err(BorexError::invalid("frames of different sizes in one video"));
            }
            stdin.write_all(f.as_raw()).map_err(|e| BorexError::io(path, e))?;
        }
        Ok(())
    })
}

/// [`encode_h264`] of `w×h` frames kept in raw RGB files (w·h·3 bytes each), read one at a time,
/// so a long group of frames is never in memory at once.
pub fn encode_h264_raw_files(path: &Path, files: &[PathBuf], (w, h): (u32, u32), fps: &str) -> Result<()> {
    if files.is_empty() {
        return Err(BorexError::invalid("no frames to encode"));
    }
    encode_h264_with(path, (w, h), fps, |stdin| {
        for f in files {
            // A frame is exactly w·h·3 bytes: the cap is the frame.
            let bytes = crate::limits::read_bounded(f, w as u64 * h as u64 * 3, "raw frame")?;
            if bytes.len() != w as usize * h as usize * 3 {
                return Err(BorexError::invalid(format!("{}: not a {w}×{h} RGB frame", f.display())));
            }
            stdin.write_all(&bytes).map_err(|e| BorexError::io(path, e))?;
        }
        Ok(())
    })
}

fn encode_h264_with(
    path: &Path,
    (w, h): (u32, u32),
    fps: &str,
    write: impl FnOnce(&mut std::process::ChildStdin) -> Result<()>,
) -> Result<()> {
    let size = format!("{w}x{h}");
    let args = [
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        &size,
        "-r",
        fps,
        "-i",
        "-",
        "-vf",
        "crop=trunc(iw/2)*2:trunc(ih/2)*2:0:0",
        "-c:v",
        "libx264",
        "-bf",
        "0",
        "-preset",
        "veryfast",
        "-crf",
        "23",
        "-pix_fmt",
        "yuv420p",
        "-f",
        "h264",
    ];
    pipe_to_ffmpeg(path, &args, write)
}

/// Raw H.264 segments of one encoding, in order, as one MP4 at `fps`, without
/// re-encoding: the bytes are concatenated into FFmpeg's stdin and given
/// timestamps from the frame rate (exact, unlike joining MP4 files).
pub fn join_h264(path: &Path, segments: &[PathBuf], fps: &str) -> Result<()> {
    if segments.is_empty() {
        return Err(BorexError::invalid("no video segments to join"));
    }
    let args = [
        "-fflags",
        "+genpts",
        "-r",
        fps,
        "-f",
        "h264",
        "-i",
        "-",
        "-c",
        "copy",
        "-movflags",
        "+faststart",
        "-f",
        "mp4",
    ];
    pipe_to_ffmpeg(path, &args, |stdin| {
        for s in segments {
            let mut f = crate::limits::open_bounded(s, crate::limits::MAX_VIDEO_PART_BYTES, "video segment")?;
            std::io::copy(&mut f, stdin).map_err(|e| f.error(e))?;
        }
        Ok(())
    })
}

/// `ffmpeg ARGS` writing a temporary beside `path` from what `feed` writes to
/// its stdin, then moved into place.
fn pipe_to_ffmpeg(
    path: &Path,
    args: &[&str],
    feed: impl FnOnce(&mut std::process::ChildStdin) -> Result<()>,
) -> Result<()> {
    let tmp = temporary(path);
    let mut child = super::tool("ffmpeg")?
        .args(["-v", "error", "-y"])
        .args(args)
        .arg(&tmp)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| BorexError::invalid(format!("cannot start ffmpeg ({e})")))?;
    let mut stdin = child.stdin.take().expect("piped");
    let written = feed(&mut stdin);
    drop(stdin);
    let out = child.wait_with_output().map_err(|e| BorexError::io(path, e))?;
    match written {
        // ffmpeg's own message says more than a broken pipe.
        Err(_) if !out.status.success() => finish_ffmpeg(out, &tmp, path),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            staging::unregister(&tmp);
            Err(e)
        }
        Ok(()) => finish_ffmpeg(out, &tmp, path),
    }
}

/// N float32 H×W maps, read one at a time from `.npy` files, as one
/// N×H×W `.npy` (the format's header written here: ndarray-npy writes whole
/// arrays only, and N maps of a long video need not fit in memory).
pub fn write_npy_stack(path: &Path, maps: &[PathBuf], (h, w): (usize, usize)) -> Result<()> {
    crate::output::write_atomic(path, |out| {
        let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {h}, {w}), }}", maps.len());
        // Magic, version 1.0, header length; the header is padded with spaces to a multiple of 64 and ends in '\n'.
        let total = (10 + dict.len() + 1).div_ceil(64) * 64;
        let header = format!("{dict}{}\n", " ".repeat(total - 10 - dict.len() - 1));
        out.write_all(b"\x93NUMPY\x01\x00")?;
        out.write_all(&(header.len() as u16).to_le_bytes())?;
        out.write_all(header.as_bytes())?;
        for m in maps {
            let a = crate::image::read_npy_map(m, "map").map_err(|e| std::io::Error::other(e.to_string()))?;
            if a.dim() != (h, w) {
                return Err(std::io::Error::other(format!("{}: {:?}, expected {h}×{w}", m.display(), a.dim())));
            }
            for v in a.iter() {
                out.write_all(&v.to_le_bytes())?;
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacked_npy_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let maps: Vec<PathBuf> = (0..3)
            .map(|k| {
                let p = dir.path().join(format!("{k}.npy"));
                crate::output::write_npy(
                    &p,
                    &ndarray::Array2::from_shape_fn((5, 7), |(i, j)| (k * 100 + i * 7 + j) as f32),
                )
                .unwrap();
                p
            })
            .collect();
        let out = dir.path().join("stack.npy");
        write_npy_stack(&out, &maps, (5, 7)).unwrap();
        let back: ndarray::Array3<f32> = ndarray_npy::read_npy(&out).unwrap();
        assert_eq!(back.dim(), (3, 5, 7));
        assert_eq!(back[[2, 4, 6]], 234.0);
        assert_eq!(back[[1, 0, 1]], 101.0);
    }
}
