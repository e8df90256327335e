//! Upper bounds on every count and size a user can ask for. Each bound sits
//! well above any sensible use and well below what exhausts a machine; an
//! out-of-range value is an error that names the flag and the bound, not an
//! allocation failure later. docs/robustness.md lists them.
//!
//! Files are bounded the same way: every file borex reads goes through
//! [`open_bounded`] / [`read_bounded`], which take a regular file (or a link to
//! one) of at most a cap per kind of file (`MAX_*_BYTES`), so `/dev/zero`, a
//! FIFO or a folder in place of an input is a one-line error, not an endless read.

use crate::error::{BorexError, Result};
use std::fmt::Display;
use std::io::Read;
use std::path::{Path, PathBuf};

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

/// Bytes of an image file (PNG, JPEG): a 16384² PNG of noise, uncompressed, is 805 MB.
pub const MAX_IMAGE_FILE_BYTES: u64 = 1 << 30;
/// Bytes of a `.npy` file: the largest array borex reads in float64, and its header.
pub const MAX_NPY_FILE_BYTES: u64 = MAX_MAP_ELEMENTS * 8 + (1 << 20);
/// Bytes of an ONNX model: protobuf's own limit for one file.
pub const MAX_MODEL_BYTES: u64 = 2 << 30;
/// Bytes of a labels file or a model's JSON sidecar (ImageNet's labels are 30 KB).
pub const MAX_LABELS_BYTES: u64 = 16 << 20;
/// Bytes of a manifest or a CSV table (a million images' paths and rows).
pub const MAX_TABLE_BYTES: u64 = 256 << 20;
/// Bytes of a JSON file borex wrote (report.json, a record, curves.json,
/// summary.json): a refine report at the 2,000-query limit is under 1 MB.
pub const MAX_JSON_BYTES: u64 = 16 << 20;
/// Bytes of an input video (FFmpeg streams it; the bound only keeps out endless streams).
pub const MAX_VIDEO_FILE_BYTES: u64 = 1 << 40;
/// Bytes of an overlay video frame or segment borex wrote and reads back.
pub const MAX_VIDEO_PART_BYTES: u64 = 8 << 30;

/// `n` bytes in the unit that reads best (`16 MiB`, `1 GiB`, `200 bytes`).
pub fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 && n % (1 << 30) == 0 => format!("{} GiB", n >> 30),
        n if n >= 1 << 20 => format!("{:.0} MiB", n as f64 / (1 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.0} KiB", n as f64 / 1024.0),
        n => format!("{n} bytes"),
    }
}

/// What sort of file `t` is, for messages ("a FIFO", "a folder").
pub(crate) fn file_kind(t: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "a folder"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

/// `path` may be read as `what` within `cap` bytes: a regular file (or a link to
/// one) no larger than `cap`, else a one-line error naming the file and the bound.
/// Checked before opening: opening a FIFO blocks until a writer comes.
pub fn check_readable(path: &Path, cap: u64, what: &str) -> Result<std::fs::Metadata> {
    let meta = std::fs::metadata(path).map_err(|e| BorexError::io(path, e))?;
    check_meta(path, &meta, cap, what)?;
    Ok(meta)
}

fn check_meta(path: &Path, meta: &std::fs::Metadata, cap: u64, what: &str) -> Result<()> {
    if !meta.is_file() {
        return Err(BorexError::invalid(format!(
            "{what} {}: is {}, not a regular file (borex reads a regular file of at most {})",
            path.display(),
            file_kind(meta.file_type()),
            bytes(cap)
        )));
    }
    if meta.len() > cap {
        return Err(too_big(path, Some(meta.len()), cap, what));
    }
    Ok(())
}

fn too_big(path: &Path, len: Option<u64>, cap: u64, what: &str) -> BorexError {
    let size = len.map_or("more than that".to_string(), |n| format!("{n} bytes"));
    BorexError::invalid(format!("{what} {}: over the {} borex reads for it ({size})", path.display(), bytes(cap)))
}

/// A reader of `path` that yields at most `cap` bytes, after [`check_readable`].
/// The file is opened without blocking and checked again once open (it may have
/// been replaced by a FIFO in between); a file that grows past `cap` while read
/// gives an error at the cap rather than more bytes.
pub fn open_bounded(path: &Path, cap: u64, what: &str) -> Result<Bounded> {
    use std::os::unix::fs::OpenOptionsExt;
    check_readable(path, cap, what)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| BorexError::io(path, e))?;
    let meta = file.metadata().map_err(|e| BorexError::io(path, e))?;
    check_meta(path, &meta, cap, what)?;
    Ok(Bounded { inner: file, left: cap, path: path.to_path_buf(), cap, what: what.to_string() })
}

/// The whole of `path`, at most `cap` bytes ([`open_bounded`]).
pub fn read_bounded(path: &Path, cap: u64, what: &str) -> Result<Vec<u8>> {
    let mut r = open_bounded(path, cap, what)?;
    let len = r.inner.metadata().map(|m| m.len()).unwrap_or(0);
    let mut bytes = Vec::with_capacity(len.min(cap) as usize);
    r.read_to_end(&mut bytes).map_err(|e| r.error(e))?;
    Ok(bytes)
}

/// The whole of `path` as UTF-8 text, at most `cap` bytes ([`open_bounded`]).
pub fn read_text_bounded(path: &Path, cap: u64, what: &str) -> Result<String> {
    String::from_utf8(read_bounded(path, cap, what)?).map_err(|_| {
        BorexError::io(path, std::io::Error::new(std::io::ErrorKind::InvalidData, "stream did not contain valid UTF-8"))
    })
}

/// A file opened by [`open_bounded`]: reads past its cap are an error that names the file and the cap.
#[derive(Debug)]
pub struct Bounded {
    inner: std::fs::File,
    left: u64,
    path: PathBuf,
    cap: u64,
    what: String,
}

impl Bounded {
    /// The error a failed read of this file becomes: one line naming it.
    pub fn error(&self, e: std::io::Error) -> BorexError {
        match e.get_ref().and_then(|i| i.downcast_ref::<OverCap>()) {
            Some(_) => too_big(&self.path, None, self.cap, &self.what),
            None => BorexError::io(&self.path, e),
        }
    }
}

/// The marker inside the io::Error a read past the cap returns.
#[derive(Debug)]
struct OverCap;

impl std::fmt::Display for OverCap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "more bytes than the limit")
    }
}

impl std::error::Error for OverCap {}

impl Read for Bounded {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            // At the cap: one more byte means the file is over it (it grew after the check).
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(std::io::Error::other(OverCap)),
            };
        }
        let n = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let got = self.inner.read(&mut buf[..n])?;
        self.left -= got as u64;
        Ok(got)
    }
}

/// `value` if `lo ≤ value ≤ hi`, else a [`BorexError::Setting`] naming the
/// setting `name` (the library's name, e.g. `refit_every`; each front end
/// spells it) and the range.
pub fn in_range<T: PartialOrd + Display + Copy>(name: &str, value: T, lo: T, hi: T) -> Result<T> {
    if value < lo || value > hi {
        return Err(BorexError::setting(
            name,
            Some(value.to_string()),
            format!("is out of range: it must be between {lo} and {hi}"),
        ));
    }
    Ok(value)
}

/// A finite, non-negative number, else an error naming the setting and the value.
pub fn non_negative(name: &str, value: f32) -> Result<f32> {
    if !value.is_finite() || value < 0.0 {
        return Err(BorexError::setting(name, None, format!("must be a finite number ≥ 0, not {value}")));
    }
    Ok(value)
}

/// Every value of a list setting in range, none repeated.
pub fn distinct_in_range(name: &str, values: &[u32], lo: u32, hi: u32) -> Result<()> {
    if values.is_empty() {
        return Err(BorexError::setting(name, None, "needs at least one value"));
    }
    for (i, v) in values.iter().enumerate() {
        in_range(name, *v, lo, hi)?;
        if values[..i].contains(v) {
            return Err(BorexError::setting(name, None, format!("lists {v} twice")));
        }
    }
    Ok(())
}

/// A batch of `batch` inputs of `c×h×w` must fit [`MAX_BATCH_BYTES`].
pub fn batch_fits(batch: usize, (c, h, w): (usize, usize, usize)) -> Result<()> {
    in_range("batch", batch, 1, MAX_BATCH)?;
    let bytes = batch as u64 * (c * h * w) as u64 * 4;
    if bytes > MAX_BATCH_BYTES {
        let most = (MAX_BATCH_BYTES / ((c * h * w) as u64 * 4)).max(1);
        return Err(BorexError::setting(
            "batch",
            Some(batch.to_string()),
            format!(
                "of {c}×{h}×{w} inputs needs {} MiB per model call (limit {} MiB): use a batch of {most} or less",
                bytes >> 20,
                MAX_BATCH_BYTES >> 20
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_name_the_flag_and_the_bounds() {
        assert_eq!(in_range("iters", 5usize, 1, 10).unwrap(), 5);
        let e = in_range("iters", 4_294_967_295usize, 1, MAX_ITERS).unwrap_err().to_string();
        assert!(e.contains("iters 4294967295") && e.contains(&MAX_ITERS.to_string()), "{e}");
        assert!(non_negative("gain", f32::NAN)
            .unwrap_err()
            .to_string()
            .contains("gain must be a finite number ≥ 0, not NaN"));
        assert!(non_negative("gain", f32::INFINITY).is_err());
        assert!(non_negative("kappa", -1.0).is_err());
        assert_eq!(non_negative("kappa", 0.0).unwrap(), 0.0);
        assert!(distinct_in_range("sizes", &[30, 45, 30], 1, 100).unwrap_err().to_string().contains("lists 30 twice"));
        assert!(distinct_in_range("scales", &[], 1, 100).is_err());
        assert!(batch_fits(32, (3, 224, 224)).is_ok());
        // 1024 inputs of 3×2048×2048 are 48 GiB.
        let e = batch_fits(1024, (3, 2048, 2048)).unwrap_err().render(crate::error::Spelling::Flag);
        assert!(e.contains("--batch 1024 of 3×2048×2048 inputs") && e.contains("use a batch of 85 or less"), "{e}");
    }

    #[test]
    fn a_file_that_grows_past_its_cap_while_read_stops_there() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("labels.txt");
        std::fs::write(&p, [b'a'; 10]).unwrap();
        let mut r = open_bounded(&p, 10, "labels").unwrap();
        // Grown after the size check: the reader gives the cap's worth, then an error naming the cap.
        std::fs::OpenOptions::new().append(true).open(&p).unwrap().write_all(&[b'b'; 5]).unwrap();
        let mut got = vec![];
        let e = r.read_to_end(&mut got).unwrap_err();
        assert_eq!(got, [b'a'; 10]);
        let e = r.error(e).to_string();
        assert!(e.contains("labels.txt") && e.contains("over the 10 bytes"), "{e}");
        assert_eq!(bytes(16 << 20), "16 MiB");
        assert_eq!(bytes(1 << 30), "1 GiB");
        assert_eq!(bytes(4096), "4 KiB");
    }
}
