//! Video in and out: frames stream from FFmpeg (`ffmpeg … -f rawvideo -pix_fmt
//! rgb24 -`) or from a folder of images, one at a time, so memory never
//! depends on the length of the video. The refinement itself is the bulk
//! driver's ([`crate::refine::bulk`]); [`run`] holds frame mode's job, [`clip`]
//! clip mode's, `resume` the resumable, shardable output folder both share,
//! and `encode` the overlay frames, MP4s and map stacks they write.

pub mod clip;
pub(crate) mod encode;
pub(crate) mod resume;
pub mod run;

use crate::error::{BorexError, Result};
use crate::job::{JobDescription, JobKind};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// What a frame source holds.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VideoInfo {
    /// Frame width, in pixels.
    pub width: u32,
    /// Frame height, in pixels.
    pub height: u32,
    /// Frames per second as FFmpeg states it ("30000/1001"); a frame folder's is `--fps`.
    pub fps: String,
    /// Frames in the source.
    pub frames: u64,
}

impl VideoInfo {
    /// The frame rate as a number (25 when `fps` does not parse).
    pub fn fps_value(&self) -> f64 {
        parse_rate(&self.fps).unwrap_or(25.0)
    }
}

fn parse_rate(s: &str) -> Option<f64> {
    let v = match s.split_once('/') {
        Some((a, b)) => a.trim().parse::<f64>().ok()? / b.trim().parse::<f64>().ok()?,
        None => s.trim().parse::<f64>().ok()?,
    };
    (v.is_finite() && v > 0.0).then_some(v)
}

/// Frames too small to show a map on (a 1×1 video: the maps were computed, then the overlay
/// failed on every rerun) or a rate no video has, refused before any model work.
fn check_info(path: &Path, info: &VideoInfo) -> Result<()> {
    use crate::limits::{MAX_FPS, MIN_FRAME_SIDE};
    if info.width < MIN_FRAME_SIDE || info.height < MIN_FRAME_SIDE {
        return Err(BorexError::invalid(format!(
            "{}: frames of {}×{} are too small to explain (at least {MIN_FRAME_SIDE}×{MIN_FRAME_SIDE})",
            path.display(),
            info.width,
            info.height
        )));
    }
    match parse_rate(&info.fps) {
        Some(r) if r <= MAX_FPS => Ok(()),
        _ => Err(BorexError::invalid(format!(
            "{}: a frame rate of {} is not a video's (it must be > 0 and at most {MAX_FPS}; for a frame folder: --fps)",
            path.display(),
            info.fps
        ))),
    }
}

/// The name of a command borex runs, or a clear error when it is missing.
pub(crate) fn tool(name: &str) -> Result<Command> {
    let found = std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()));
    if !found {
        return Err(BorexError::invalid(format!(
            "{name} not found on PATH: install FFmpeg (scripts/setup.sh does: apt-get install ffmpeg)"
        )));
    }
    Ok(Command::new(name))
}

/// Where frames come from.
#[derive(Debug, Clone)]
pub enum Input {
    /// Any file FFmpeg reads.
    Video(PathBuf),
    /// Image files (PNG, JPEG) in name order.
    Folder {
        /// The image files, sorted by name.
        files: Vec<PathBuf>,
        /// Their frame rate (`--fps`), as FFmpeg states rates.
        fps: String,
    },
}

impl Input {
    /// A folder becomes a frame folder, anything else a video file.
    pub fn open(path: &Path, folder_fps: f64) -> Result<(Self, VideoInfo)> {
        let (input, info) = Self::open_unchecked(path, folder_fps)?;
        check_info(path, &info)?;
        Ok((input, info))
    }

    fn open_unchecked(path: &Path, folder_fps: f64) -> Result<(Self, VideoInfo)> {
        if path.is_dir() {
            let entries = std::fs::read_dir(path)
                .map_err(|e| BorexError::invalid(format!("frame folder {}: cannot read it ({e})", path.display())))?;
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
                })
                .collect();
            files.sort();
            let first = files.first().ok_or_else(|| {
                BorexError::invalid(format!("frame folder {}: no PNG or JPEG frames in it", path.display()))
            })?;
            let (width, height) = crate::image::load_rgb(first)?.dimensions();
            let fps = format!("{folder_fps}");
            let info = VideoInfo { width, height, fps: fps.clone(), frames: files.len() as u64 };
            return Ok((Input::Folder { files, fps }, info));
        }
        if !path.exists() {
            return Err(BorexError::invalid(format!("{}: no such file or folder", path.display())));
        }
        Ok((Input::Video(path.to_path_buf()), probe(path)?))
    }

    /// Stream the frames whose indices are in `frames` (ascending), decoding
    /// each once and dropping the rest.
    pub fn frames<'a>(&'a self, info: &'a VideoInfo, frames: Vec<u64>) -> Result<FrameStream<'a>> {
        let decoder = match self {
            Input::Video(path) => {
                let child = tool("ffmpeg")?
                    .args(["-v", "error", "-nostdin", "-i"])
                    .arg(path)
                    .args(["-map", "0:v:0", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .map_err(|e| BorexError::invalid(format!("cannot start ffmpeg ({e})")))?;
                Some(child)
            }
            Input::Folder { .. } => None,
        };
        Ok(FrameStream { input: self, info, wanted: frames.into_iter(), decoder, next_decoded: 0 })
    }
}

/// One decoded frame.
pub struct Frame {
    /// Its index in the source (0-based).
    pub index: u64,
    /// Seconds from the start (index / fps).
    pub timestamp: f64,
    /// The decoded frame.
    pub rgb: image::RgbImage,
}

/// Frames in order; an error ends the stream.
pub struct FrameStream<'a> {
    input: &'a Input,
    info: &'a VideoInfo,
    wanted: std::vec::IntoIter<u64>,
    decoder: Option<Child>,
    next_decoded: u64,
}

impl FrameStream<'_> {
    fn read_frame(&mut self, index: u64) -> Result<image::RgbImage> {
        match self.input {
            Input::Folder { files, .. } => {
                let rgb = crate::image::load_rgb(&files[index as usize])?;
                if rgb.dimensions() != (self.info.width, self.info.height) {
                    return Err(BorexError::invalid(format!(
                        "frame {} is {}×{}, the first frame {}×{}",
                        files[index as usize].display(),
                        rgb.width(),
                        rgb.height(),
                        self.info.width,
                        self.info.height
                    )));
                }
                Ok(rgb)
            }
            Input::Video(path) => {
                let (w, h) = (self.info.width, self.info.height);
                let mut buf = vec![0u8; w as usize * h as usize * 3];
                let child = self.decoder.as_mut().expect("a video has a decoder");
                let stdout = child.stdout.as_mut().expect("piped");
                while self.next_decoded <= index {
                    if let Err(e) = stdout.read_exact(&mut buf) {
                        let mut err = String::new();
                        if let Some(s) = child.stderr.as_mut() {
                            let _ = s.read_to_string(&mut err);
                        }
                        let why = err.lines().last().map(str::to_string).unwrap_or(e.to_string());
                        return Err(BorexError::invalid(format!(
                            "{}: frame {} could not be decoded ({why})",
                            path.display(),
                            self.next_decoded
                        )));
                    }
                    self.next_decoded += 1;
                }
                Ok(image::RgbImage::from_raw(w, h, buf).expect("w·h·3 bytes"))
            }
        }
    }
}

impl Iterator for FrameStream<'_> {
    type Item = Result<Frame>;
    fn next(&mut self) -> Option<Self::Item> {
        let index = self.wanted.next()?;
        let fps = self.info.fps_value();
        Some(self.read_frame(index).map(|rgb| Frame { index, timestamp: index as f64 / fps, rgb }))
    }
}

impl Drop for FrameStream<'_> {
    fn drop(&mut self) {
        // Frames past the last wanted one are never read: stop the decoder.
        if let Some(mut c) = self.decoder.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Size, frame rate and frame count of the first video stream (ffprobe,
/// counting packets: exact even where the container states no count).
pub fn probe(path: &Path) -> Result<VideoInfo> {
    // FFmpeg streams the file, so the cap is loose; a FIFO or device would stall or never end.
    crate::limits::check_readable(path, crate::limits::MAX_VIDEO_FILE_BYTES, "video")?;
    let out = tool("ffprobe")?
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-count_packets",
            "-show_entries",
            "stream=width,height,r_frame_rate,nb_read_packets",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .map_err(|e| BorexError::invalid(format!("cannot run ffprobe ({e})")))?;
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let why = err.lines().last().unwrap_or("ffprobe failed").trim().to_string();
        return Err(BorexError::invalid(format!("{}: not a video FFmpeg can read ({why})", path.display())));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| BorexError::invalid(format!("{}: ffprobe output ({e})", path.display())))?;
    let s =
        v["streams"].get(0).ok_or_else(|| BorexError::invalid(format!("{}: has no video stream", path.display())))?;
    let num = |k: &str| s[k].as_u64().or_else(|| s[k].as_str().and_then(|x| x.parse().ok()));
    let (width, height) = (num("width").unwrap_or(0) as u32, num("height").unwrap_or(0) as u32);
    let frames = num("nb_read_packets").unwrap_or(0);
    if width == 0 || height == 0 {
        return Err(BorexError::invalid(format!("{}: its video stream has no frame size", path.display())));
    }
    if frames == 0 {
        return Err(BorexError::invalid(format!("{}: the video has no frames", path.display())));
    }
    let fps = s["r_frame_rate"].as_str().filter(|r| parse_rate(r).is_some()).unwrap_or("25/1").to_string();
    Ok(VideoInfo { width, height, fps, frames })
}

/// `--frames A:B` (0-based, B excluded; either end may be left out) and
/// `--every K`: which frames to refine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FrameSelection {
    /// First frame (0-based).
    pub start: u64,
    /// One past the last frame; `None`: to the end.
    pub end: Option<u64>,
    /// Refine every K-th frame of the range (1: all).
    pub every: u64,
}

impl FrameSelection {
    /// Parse `--frames A:B` into (A, B): 0-based, B excluded, either end optional.
    pub fn parse_range(s: &str) -> std::result::Result<(u64, Option<u64>), String> {
        let bad = || format!("--frames wants A:B (0-based, B excluded, either may be left out), not {s:?}");
        let (a, b) = s.split_once(':').ok_or_else(bad)?;
        let a = if a.trim().is_empty() { 0 } else { a.trim().parse::<u64>().map_err(|_| bad())? };
        let b = if b.trim().is_empty() { None } else { Some(b.trim().parse::<u64>().map_err(|_| bad())?) };
        if b.is_some_and(|b| b <= a) {
            return Err(format!("--frames {s}: the range is empty (B must be greater than A)"));
        }
        Ok((a, b))
    }

    /// The selected frame indices of a video with `frames` frames.
    pub fn indices(&self, frames: u64) -> Result<Vec<u64>> {
        crate::limits::in_range("every", self.every as usize, 1, crate::limits::MAX_EVERY)?;
        if self.start >= frames {
            return Err(BorexError::invalid(format!(
                "--frames starts at frame {} but the video has {frames} frames (0–{})",
                self.start,
                frames - 1
            )));
        }
        if let Some(end) = self.end.filter(|&e| e > frames) {
            return Err(BorexError::invalid(format!(
                "--frames ends at frame {end} but the video has {frames} frames (use {}:{frames} or leave the end out)",
                self.start
            )));
        }
        let end = self.end.unwrap_or(frames);
        Ok((self.start..end).step_by(self.every as usize).collect())
    }
}

/// The overlay's frame rate: the input's, divided by `--every` so the overlay lasts as long as the input.
pub(crate) fn overlay_rate(fps: &str, every: u64) -> String {
    if every == 1 {
        return fps.to_string();
    }
    match fps.split_once('/') {
        Some((a, b)) => format!("{a}/{}", b.trim().parse::<u64>().unwrap_or(1) * every),
        None => format!("{fps}/{every}"),
    }
}

/// Join the folders of `video --shard` runs into `out`, whichever mode they
/// ran in (all must be one job). Returns the mode and the frames (frame mode)
/// or clips (clip mode) merged.
pub fn merge_shards(shards: &[PathBuf], out: &Path) -> Result<(String, usize)> {
    let kinds = shards
        .iter()
        .map(|d| {
            JobDescription::read(d)?.map(|j| j.kind).ok_or_else(|| {
                BorexError::invalid(format!("{}: not a `borex video` output (no job.json)", d.display()))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let first = *kinds.first().ok_or_else(|| BorexError::invalid("no shards to merge"))?;
    let mode = |k: JobKind| match k {
        JobKind::VideoFrame => "frame",
        JobKind::VideoClip => "clip",
        _ => "",
    };
    if let Some(k) = kinds.iter().position(|m| *m != first) {
        if mode(kinds[k]).is_empty() || mode(first).is_empty() {
            let (dir, kind) = if mode(first).is_empty() { (&shards[0], first) } else { (&shards[k], kinds[k]) };
            return Err(BorexError::invalid(format!(
                "{}: holds a `{}` run, not a `borex video` shard",
                dir.display(),
                kind.command()
            )));
        }
        return Err(BorexError::invalid(format!(
            "{}: a --mode {} shard, but {} is --mode {}: merge the shards of one job",
            shards[k].display(),
            mode(kinds[k]),
            shards[0].display(),
            mode(first)
        )));
    }
    let n = match first {
        JobKind::VideoFrame => run::merge(shards, out)?,
        JobKind::VideoClip => clip::merge(shards, out)?,
        other => {
            return Err(BorexError::invalid(format!(
                "{}: holds a `{}` run, not a `borex video` shard",
                shards[0].display(),
                other.command()
            )))
        }
    };
    Ok((mode(first).to_string(), n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selections() {
        assert_eq!(FrameSelection::parse_range("3:7"), Ok((3, Some(7))));
        assert_eq!(FrameSelection::parse_range(":7"), Ok((0, Some(7))));
        assert_eq!(FrameSelection::parse_range("5:"), Ok((5, None)));
        assert!(FrameSelection::parse_range("7:3").is_err());
        assert!(FrameSelection::parse_range("7").is_err());
        let s = FrameSelection { start: 2, end: Some(9), every: 3 };
        assert_eq!(s.indices(10).unwrap(), [2, 5, 8]);
        assert!(s.indices(8).unwrap_err().to_string().contains("ends at frame 9"));
        assert!(FrameSelection { start: 10, end: None, every: 1 }
            .indices(10)
            .unwrap_err()
            .to_string()
            .contains("starts at frame 10"));
        assert!(FrameSelection { start: 0, end: None, every: 0 }
            .indices(10)
            .unwrap_err()
            .to_string()
            .contains("every 0"));
        assert_eq!(parse_rate("30000/1001").map(|r| (r * 1000.0).round()), Some(29970.0));
    }
}
