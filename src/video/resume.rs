//! The resumable output folder both `borex video` modes share. A run is cut
//! into numbered units of work (frame mode: groups of frames; clip mode:
//! clips). OUTDIR holds `job.json` (the job description, tagged with its
//! mode), `maps/`, and until the run is complete one record and one overlay
//! segment per unit (`parts/UNIT_NNNNNN.json`, `parts/UNIT_NNNNNN.h264`).
//! Every file is written atomically and a unit's record last, so a killed run
//! resumes from the units whose record exists: none missing, none done twice.
//! [`finalize`] joins the records into the mode's tables and the segments
//! into `overlay.mp4`; `--shard I/N` takes a contiguous slice of the units and
//! [`merge`] joins the shards' folders.

use crate::error::{BorexError, Result};
use crate::output;
use crate::refine::bulk::Shard;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A mode's job description (`job.json`): what a resumed run or a shard
/// being merged must match.
pub(crate) trait UnitJob: Serialize + DeserializeOwned + PartialEq + Clone {
    /// `job.json`'s `mode`: a folder or shard of the other mode is refused by name.
    const MODE: &'static str;
    /// A unit's name in file names and messages.
    const UNIT: &'static str;
    fn units(&self) -> usize;
    fn shard(&self) -> Shard;
    fn with_shard(&self, shard: Shard) -> Self;
}

/// A finished unit (`parts/UNIT_NNNNNN.json`).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Record {
    pub unit: usize,
    /// Its map files, relative to OUTDIR (written before the record).
    pub maps: Vec<String>,
    /// Its rows of the mode's CSV table.
    pub rows: Vec<Vec<String>>,
    /// Its entries of the mode's report, if it writes one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub report: Vec<serde_json::Value>,
}

#[derive(Serialize)]
struct Tagged<'a, J> {
    mode: &'a str,
    #[serde(flatten)]
    job: &'a J,
}

pub(crate) fn record_path<J: UnitJob>(out: &Path, unit: usize) -> PathBuf {
    out.join("parts").join(format!("{}_{unit:06}.json", J::UNIT))
}

pub(crate) fn segment_path<J: UnitJob>(out: &Path, unit: usize) -> PathBuf {
    out.join("parts").join(format!("{}_{unit:06}.h264", J::UNIT))
}

/// The mode and description of the job in `dir` (a `job.json` written before
/// modes were recorded is frame mode's), or why there is none.
pub(crate) fn job_value(dir: &Path) -> std::result::Result<(String, serde_json::Value), String> {
    let text = std::fs::read_to_string(dir.join("job.json"))
        .map_err(|e| format!("not a `borex video` output (job.json: {e})"))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("job.json is not a borex video job ({e})"))?;
    let mode = v.get("mode").and_then(|m| m.as_str()).unwrap_or("frame").to_string();
    Ok((mode, v))
}

/// The job in `dir`, which must be one of `J`'s mode, or why not.
fn read_job<J: UnitJob>(dir: &Path) -> std::result::Result<J, String> {
    let (mode, v) = job_value(dir)?;
    if mode != J::MODE {
        return Err(format!("holds a `borex video --mode {mode}` run, not --mode {}", J::MODE));
    }
    serde_json::from_value(v).map_err(|e| format!("job.json is not a borex video job ({e})"))
}

/// OUTDIR is new, empty, or holds the same job.
fn check_out_dir<J: UnitJob>(out: &Path, job: &J) -> Result<()> {
    let named = |r: String| BorexError::invalid(format!("output folder {}: {r}", out.display()));
    if out.join("job.json").exists() {
        let old: J = read_job(out).map_err(|e| named(format!("{e}; use a new folder to start another")))?;
        if &old != job {
            return Err(named(
                "holds a `borex video` run with other input or settings; use a new folder to start another".into(),
            ));
        }
    } else if out.exists() {
        if !out.is_dir() {
            return Err(named("is an existing file".into()));
        }
        if std::fs::read_dir(out).map_err(|e| named(format!("cannot read it ({e})")))?.next().is_some() {
            return Err(named("is not empty and holds no borex video job; choose a new or empty folder".into()));
        }
    }
    Ok(())
}

/// Open OUTDIR for `job`: new, or holding the same job (a resumed run);
/// temporaries a killed run left are removed.
fn open_out_dir<J: UnitJob>(out: &Path, job: &J) -> Result<()> {
    check_out_dir(out, job)?;
    for d in ["maps", "parts"] {
        output::prepare_dir(&out.join(d))?;
    }
    let job_path = out.join("job.json");
    if !job_path.exists() {
        output::write_json(&job_path, &Tagged { mode: J::MODE, job })?;
    }
    remove_stale_temporaries(out);
    Ok(())
}

/// Remove temporaries a killed run left (`.NAME.….tmp`, borex's own naming).
fn remove_stale_temporaries(out: &Path) {
    for dir in [out.to_path_buf(), out.join("maps"), out.join("parts")] {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.ends_with(".tmp") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// Finished outputs: `files` are there and the parts are gone.
fn is_finished(out: &Path, files: &[&str]) -> bool {
    files.iter().all(|f| out.join(f).is_file()) && !out.join("parts").exists()
}

/// Start or resume `job` in OUTDIR. `true`: an unsharded run of this very
/// job already finished there (its outputs `finished` are in place), so
/// there is nothing to do; otherwise the folder is open for the units to do.
pub(crate) fn begin<J: UnitJob>(out: &Path, job: &J, finished: &[&str]) -> Result<bool> {
    if job.shard() == Shard::ALL && is_finished(out, finished) {
        check_out_dir(out, job)?;
        return Ok(true);
    }
    open_out_dir(out, job)?;
    Ok(false)
}

/// The units of `job`'s shard that have no record yet.
pub(crate) fn todo<J: UnitJob>(out: &Path, job: &J) -> Vec<usize> {
    job.shard().range(job.units()).filter(|&k| !record_path::<J>(out, k).exists()).collect()
}

/// Mark a unit done: its maps and segment are written, now its record.
pub(crate) fn commit_unit<J: UnitJob>(out: &Path, record: &Record) -> Result<()> {
    output::write_json(&record_path::<J>(out, record.unit), record)
}

/// Join every unit's record and segment: `tables` writes the mode's tables
/// from the records (in unit order), the segments become `overlay.mp4` at
/// `fps`, then the parts are dropped. Each step can be repeated, so a run
/// killed here finishes on the next.
pub(crate) fn finalize<J: UnitJob>(
    out: &Path,
    job: &J,
    fps: &str,
    tables: impl FnOnce(&[Record]) -> Result<()>,
) -> Result<()> {
    let mut records = vec![];
    let mut missing = vec![];
    for k in 0..job.units() {
        let p = record_path::<J>(out, k);
        match std::fs::read_to_string(&p) {
            Ok(text) => records.push(
                serde_json::from_str::<Record>(&text)
                    .map_err(|e| BorexError::invalid(format!("{}: {e}", p.display())))?,
            ),
            Err(_) => missing.push(k),
        }
    }
    if let Some(first) = missing.first() {
        return Err(BorexError::invalid(format!(
            "{}: {} of {} {}s are missing (first: {} {first}); rerun the same command to finish them",
            out.display(),
            missing.len(),
            job.units(),
            J::UNIT,
            J::UNIT
        )));
    }
    tables(&records)?;
    let segments: Vec<PathBuf> = (0..job.units()).map(|k| segment_path::<J>(out, k)).collect();
    output::join_h264(&out.join("overlay.mp4"), &segments, fps)?;
    let parts = out.join("parts");
    std::fs::remove_dir_all(&parts).map_err(|e| BorexError::io(&parts, e))?;
    Ok(())
}

/// Copy the units of `video --shard` folders into `out`: the same job, every
/// shard once, every unit done. Returns the unsharded job (for the caller to
/// [`finalize`]) and the records copied.
pub(crate) fn merge<J: UnitJob>(shards: &[PathBuf], out: &Path) -> Result<(J, Vec<Record>)> {
    let jobs = shards
        .iter()
        .map(|d| read_job::<J>(d).map_err(|e| BorexError::invalid(format!("{}: {e}", d.display()))))
        .collect::<Result<Vec<J>>>()?;
    let first = jobs.first().ok_or_else(|| BorexError::invalid("no shards to merge"))?.with_shard(Shard::ALL);
    let count = jobs[0].shard().count;
    let mut seen = vec![false; count];
    for (dir, j) in shards.iter().zip(&jobs) {
        if j.with_shard(Shard::ALL) != first || j.shard().count != count {
            return Err(BorexError::invalid(format!(
                "{}: a shard of another job (other input or settings)",
                dir.display()
            )));
        }
        if std::mem::replace(&mut seen[j.shard().index], true) {
            return Err(BorexError::invalid(format!(
                "{}: shard {}/{count} given twice",
                dir.display(),
                j.shard().index
            )));
        }
    }
    if let Some(m) = seen.iter().position(|s| !s) {
        return Err(BorexError::invalid(format!("shard {m}/{count} is missing")));
    }
    // Every record is read before anything is written, so an unfinished shard leaves `out` untouched.
    let mut copies = vec![];
    for (dir, j) in shards.iter().zip(&jobs) {
        for k in j.shard().range(j.units()) {
            let p = record_path::<J>(dir, k);
            let text = std::fs::read_to_string(&p).map_err(|_| {
                BorexError::invalid(format!(
                    "{}: {} {k} of shard {}/{count} is not done; rerun that shard",
                    dir.display(),
                    J::UNIT,
                    j.shard().index
                ))
            })?;
            let rec: Record =
                serde_json::from_str(&text).map_err(|e| BorexError::invalid(format!("{}: {e}", p.display())))?;
            copies.push((dir, rec));
        }
    }
    open_out_dir(out, &first)?;
    let mut records = vec![];
    for (dir, rec) in copies {
        for m in &rec.maps {
            copy(&dir.join(m), &out.join(m))?;
        }
        copy(&segment_path::<J>(dir, rec.unit), &segment_path::<J>(out, rec.unit))?;
        // The record last, as in a run.
        commit_unit::<J>(out, &rec)?;
        records.push(rec);
    }
    Ok((first, records))
}

/// Copy through a temporary name, so a copy is whole or absent.
fn copy(from: &Path, to: &Path) -> Result<()> {
    let bytes = std::fs::read(from).map_err(|e| BorexError::io(from, e))?;
    output::write_atomic(to, |w| std::io::Write::write_all(w, &bytes))
}
