//! Everything borex writes: `.npy` maps, PNG overlays, JSON reports. Every file
//! is written to a temporary name in its folder and renamed into place, so a
//! reader never sees half a file. A run's folder is locked while it writes
//! there (`output::lock`).

pub(crate) mod lock;
mod overlay;
pub(crate) mod staging;

pub use overlay::{colorize, colorize_with, denormalise, overlay_panels, percentiles, OverlayScale};
pub use staging::{interrupt, interrupted, remove_registered, OutputSet};

use crate::error::{BorexError, Result};
use ndarray::Array2;
use std::io::Write;
use std::path::Path;

/// Create `dir` (and parents); an existing file there is an error.
pub fn prepare_dir(dir: &Path) -> Result<()> {
    if let Ok(meta) = std::fs::metadata(dir) {
        if !meta.is_dir() {
            let what = if meta.is_file() { "an existing file" } else { crate::limits::file_kind(meta.file_type()) };
            return Err(BorexError::invalid(format!("output folder {} is {what}", dir.display())));
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| BorexError::io(dir, e))
}

/// Whether an output may go to `path`: absent, a regular file, or a link to one
/// (or a dangling link). Anything else is refused in one line: the rename that
/// puts an output in place would replace a device (`-o /dev/null` as root
/// destroys it), a FIFO or a socket by a regular file, and cannot replace a folder.
pub fn check_replaceable(path: &Path) -> Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(path) else { return Ok(()) };
    let meta = if meta.file_type().is_symlink() {
        match std::fs::metadata(path) {
            Ok(m) => m,
            Err(_) => return Ok(()),
        }
    } else {
        meta
    };
    if meta.is_file() {
        return Ok(());
    }
    Err(BorexError::invalid(format!(
        "output {}: is {}, not a regular file; borex replaces only regular files (it writes a new file and renames it into place): choose another path",
        path.display(),
        crate::limits::file_kind(meta.file_type())
    )))
}

/// Write through `f` into a temporary file beside `path`, then rename it over
/// `path`; an existing `path` must be a regular file ([`check_replaceable`]).
pub fn write_atomic(
    path: &Path,
    f: impl FnOnce(&mut std::io::BufWriter<&mut std::fs::File>) -> std::io::Result<()>,
) -> Result<()> {
    if staging::interrupted() {
        // The signal handler has cleaned up; a file started now would be left behind.
        return Err(BorexError::Interrupted);
    }
    check_replaceable(path)?;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let prefix = format!(".{}.", path.file_name().and_then(|n| n.to_str()).unwrap_or("out"));
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    // Ordinary file permissions (temporary files default to owner-only).
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
    let mut tmp = builder.tempfile_in(dir).map_err(|e| BorexError::io(dir, e))?;
    let tmp_path = tmp.path().to_path_buf();
    staging::register(&tmp_path);
    let written = (|| {
        {
            let mut w = std::io::BufWriter::new(tmp.as_file_mut());
            f(&mut w).and_then(|_| w.flush()).map_err(|e| BorexError::io(path, e))?;
        }
        tmp.as_file().sync_all().map_err(|e| BorexError::io(path, e))?;
        tmp.persist(path).map_err(|e| BorexError::io(path, e.error))?;
        Ok(())
    })();
    staging::unregister(&tmp_path);
    written
}

/// A float32 H×W map numpy can load.
pub fn write_npy(path: &Path, map: &Array2<f32>) -> Result<()> {
    use ndarray_npy::WriteNpyExt;
    write_atomic(path, |w| map.write_npy(w).map_err(std::io::Error::other))
}

/// A float32 array of any rank numpy can load (clip maps are T×H×W).
pub fn write_npy_nd<D: ndarray::Dimension>(path: &Path, map: &ndarray::Array<f32, D>) -> Result<()> {
    use ndarray_npy::WriteNpyExt;
    write_atomic(path, |w| map.write_npy(w).map_err(std::io::Error::other))
}

/// Write an RGB PNG atomically.
pub fn write_png(path: &Path, img: &image::RgbImage) -> Result<()> {
    write_atomic(path, |w| {
        img.write_with_encoder(image::codecs::png::PngEncoder::new(w)).map_err(std::io::Error::other)
    })
}

/// Write a value as pretty JSON atomically.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    write_atomic(path, |w| {
        serde_json::to_writer_pretty(&mut *w, value).map_err(std::io::Error::other)?;
        w.write_all(b"\n")
    })
}

/// A report type as JSON, through `serde_json::Value`: the file keeps the
/// layout of the reports built as values before the types existed (keys
/// sorted, f32 fields printed as the f64 they widen to), so readers that
/// compare files or digits see no change.
pub fn write_report<T: serde::Serialize>(path: &Path, report: &T) -> Result<()> {
    let value = serde_json::to_value(report)
        .map_err(|e| crate::error::BorexError::invalid(format!("{}: {e}", path.display())))?;
    write_json(path, &value)
}

/// Read a report written by [`write_report`] back into its type.
pub fn read_report<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = crate::limits::read_bounded(path, crate::limits::MAX_JSON_BYTES, "JSON file")?;
    serde_json::from_slice(&bytes).map_err(|e| crate::error::BorexError::invalid(format!("{}: {e}", path.display())))
}

/// A CSV table of serde rows under `header` (written even when there are no
/// rows); the header names the row type's fields in order.
pub fn write_csv_rows<T: serde::Serialize>(path: &Path, header: &[&str], rows: &[T]) -> Result<()> {
    write_atomic(path, |w| {
        let mut c = csv::WriterBuilder::new().has_headers(false).from_writer(w);
        c.write_record(header).map_err(std::io::Error::other)?;
        for r in rows {
            c.serialize(r).map_err(std::io::Error::other)?;
        }
        c.flush()
    })
}

/// A CSV table borex wrote from `T` with `header`: its rows, or a one-line
/// error naming the file (unreadable, other columns, a cell of the wrong type).
pub fn read_csv_rows<T: serde::de::DeserializeOwned>(path: &Path, header: &[&str]) -> Result<Vec<T>> {
    let bad = |e: csv::Error| BorexError::invalid(format!("{}: not a readable CSV table ({e})", path.display()));
    let bytes = crate::limits::read_bounded(path, crate::limits::MAX_TABLE_BYTES, "CSV table")?;
    let mut r = csv::ReaderBuilder::new().flexible(false).from_reader(bytes.as_slice());
    let found: Vec<String> = r.headers().map_err(bad)?.iter().map(str::to_string).collect();
    if found != header {
        return Err(BorexError::invalid(format!(
            "{}: columns {} are not the expected {}",
            path.display(),
            found.join(","),
            header.join(",")
        )));
    }
    r.deserialize().collect::<std::result::Result<Vec<T>, _>>().map_err(bad)
}

/// A CSV table: a header and rows of already formatted cells.
pub fn write_csv(path: &Path, header: &[&str], rows: &[Vec<String>]) -> Result<()> {
    write_atomic(path, |w| {
        let mut c = csv::Writer::from_writer(w);
        c.write_record(header).map_err(std::io::Error::other)?;
        for r in rows {
            c.write_record(r).map_err(std::io::Error::other)?;
        }
        c.flush()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_roundtrip_and_no_temporaries_left() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.npy");
        let m = Array2::from_shape_fn((3, 4), |(i, j)| i as f32 - j as f32 * 0.5);
        write_npy(&p, &m).unwrap();
        let back: Array2<f32> = ndarray_npy::read_npy(&p).unwrap();
        assert_eq!(back, m);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("m.npy")]);
    }

    #[test]
    fn a_file_is_not_an_output_folder() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x");
        std::fs::write(&f, "").unwrap();
        assert!(prepare_dir(&f).unwrap_err().to_string().contains("is an existing file"));
    }
}
