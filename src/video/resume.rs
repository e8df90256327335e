//! The resumable output folder both `borex video` modes share. A run is cut
//! into numbered units of work (frame mode: groups of frames; clip mode:
//! clips). OUTDIR holds `job.json` (the job description,
//! [`crate::job::JobDescription`], whose `plan` is the mode's `UnitJob`), `maps/`, and until the run is complete one record and one overlay
//! segment per unit (`parts/UNIT_NNNNNN.json`, `parts/UNIT_NNNNNN.h264`).
//! Every file is written atomically and a unit's record last, so a killed run
//! resumes from the units whose record exists: none missing, none done twice.
//! `finalize` joins the records into the mode's tables and the segments
//! into `overlay.mp4`; `--shard I/N` takes a contiguous slice of the units and
//! `merge` joins the shards' folders.

use crate::error::{BorexError, Result};
use crate::job::description::{begin_run, explain, Difference};
use crate::job::Shard;
use crate::job::{JobDescription, JobKind};
use crate::output;
use crate::output::lock::DirLock;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A mode's plan: what it derived from the input and settings (frames,
/// units) and needs to finish a resumed or merged run. It is the `plan` of
/// the job description.
pub(crate) trait UnitJob: Serialize + DeserializeOwned + PartialEq + Clone {
    /// One row of the mode's CSV table (`frames.csv`, `clips.csv`).
    type Row: Serialize + DeserializeOwned + Clone;
    /// One entry of the mode's `report.json` ([`NoEntry`] for a mode without one).
    type Entry: Serialize + DeserializeOwned + Clone;
    /// The description's kind: a folder or shard of the other mode is refused by name.
    const KIND: JobKind;
    /// A unit's name in file names and messages.
    const UNIT: &'static str;
    fn units(&self) -> usize;
}

/// A video run: its description and the mode's plan (also in `desc.plan`).
pub(crate) struct UnitRun<J> {
    pub desc: JobDescription,
    pub plan: J,
}

impl<J: UnitJob> UnitRun<J> {
    pub fn new(mut desc: JobDescription, plan: J) -> Result<Self> {
        desc.plan = serde_json::to_value(&plan).map_err(|e| BorexError::invalid(format!("job plan: {e}")))?;
        Ok(Self { desc, plan })
    }

    pub fn shard(&self) -> Shard {
        self.desc.shard
    }

    /// The run in `dir`, which must be of `J`'s mode.
    fn read(dir: &Path) -> Result<Self> {
        let desc = JobDescription::read(dir)?.ok_or_else(|| {
            BorexError::invalid(format!("{}: not a `borex video` output (no job.json)", dir.display()))
        })?;
        if desc.kind != J::KIND {
            return Err(BorexError::invalid(format!(
                "{}: holds a `{}` run, not a `{}` one",
                dir.display(),
                desc.kind.command(),
                J::KIND.command()
            )));
        }
        let plan = serde_json::from_value(desc.plan.clone()).map_err(|e| {
            BorexError::invalid(format!("{}: job.json's plan is not a {} plan ({e})", dir.display(), J::KIND.command()))
        })?;
        Ok(Self { desc, plan })
    }
}

/// The version of the unit record's layout. 2: rows are the mode's typed
/// rows (JSON objects keyed by the CSV's columns), not arrays of cells.
pub const RECORD_FORMAT: u32 = 2;

/// The entry type of a mode whose records carry no report entries: it has no
/// values, so such a record's `report` is always empty.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum NoEntry {}

/// A finished unit (`parts/UNIT_NNNNNN.json`): its maps, its rows of the
/// mode's table (`R`) and its entries of the mode's report (`E`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record<R, E> {
    /// `RECORD_FORMAT`.
    pub format: u32,
    /// The unit's number.
    pub unit: usize,
    /// Its map files, relative to OUTDIR (written before the record).
    pub maps: Vec<String>,
    /// Its rows of the mode's CSV table.
    pub rows: Vec<R>,
    /// Its entries of the mode's report, if it writes one.
    #[serde(default = "Vec::new", skip_serializing_if = "Vec::is_empty")]
    pub report: Vec<E>,
}

/// The record of a unit of `J`'s mode.
pub(crate) type UnitRecord<J> = Record<<J as UnitJob>::Row, <J as UnitJob>::Entry>;

impl<R: DeserializeOwned, E: DeserializeOwned> Record<R, E> {
    /// A record of this format for unit `unit`.
    pub fn new(unit: usize, maps: Vec<String>, rows: Vec<R>, report: Vec<E>) -> Self {
        Self { format: RECORD_FORMAT, unit, maps, rows, report }
    }

    /// Parse untrusted bytes (a unit's record in a resumed folder or a shard
    /// being merged): the record, whose map files are `maps/NAME.npy` names
    /// (never a path out of the folder), or a one-line reason.
    pub fn from_json_bytes(bytes: &[u8]) -> Result<Self> {
        // The version first, so a record of another layout is refused by name, never half-read.
        #[derive(Deserialize)]
        struct Version {
            format: Option<u32>,
        }
        let bad = |e: serde_json::Error| BorexError::invalid(format!("not a borex unit record ({e})"));
        let v: Version = serde_json::from_slice(bytes).map_err(bad)?;
        if v.format != Some(RECORD_FORMAT) {
            let was = v.format.map_or("an older layout".to_string(), |f| format!("format {f}"));
            return Err(BorexError::invalid(format!(
                "is a unit record of {was}; this borex reads format {RECORD_FORMAT}: rerun into a new folder"
            )));
        }
        let r: Self = serde_json::from_slice(bytes).map_err(bad)?;
        if let Some(m) = r.maps.iter().find(|m| !is_map_name(m)) {
            return Err(BorexError::invalid(format!("names the map {m:?}, not a maps/NAME.npy file")));
        }
        Ok(r)
    }

    fn read(path: &Path) -> Result<Self> {
        let bytes = crate::limits::read_bounded(path, crate::limits::MAX_JSON_BYTES, "record")?;
        Self::from_json_bytes(&bytes).map_err(|e| BorexError::invalid(format!("{}: {}", path.display(), plain(e))))
    }
}

fn plain(e: BorexError) -> String {
    match e {
        BorexError::InvalidInput(m) => m,
        other => other.to_string(),
    }
}

pub(crate) fn record_path<J: UnitJob>(out: &Path, unit: usize) -> PathBuf {
    out.join("parts").join(format!("{}_{unit:06}.json", J::UNIT))
}

pub(crate) fn segment_path<J: UnitJob>(out: &Path, unit: usize) -> PathBuf {
    out.join("parts").join(format!("{}_{unit:06}.h264", J::UNIT))
}

/// Open OUTDIR for `run` and lock it: new, or holding the same job (a
/// resumed run); temporaries a killed run left are removed.
fn open_out_dir<J: UnitJob>(out: &Path, run: &UnitRun<J>) -> Result<DirLock> {
    let lock = begin_run(out, &run.desc)?;
    for d in ["maps", "parts"] {
        output::prepare_dir(&out.join(d))?;
    }
    remove_stale_temporaries(out);
    Ok(lock)
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

/// A run's folder, open and locked.
pub(crate) struct Begun {
    pub _lock: DirLock,
    /// An unsharded run of this very job already finished there (its outputs
    /// are in place): nothing to do.
    pub finished: bool,
}

/// Start or resume `run` in OUTDIR (its outputs, once finished, are `finished`).
pub(crate) fn begin<J: UnitJob>(out: &Path, run: &UnitRun<J>, finished: &[&str]) -> Result<Begun> {
    if run.shard() == Shard::ALL && is_finished(out, finished) {
        let lock = begin_run(out, &run.desc)?;
        return Ok(Begun { _lock: lock, finished: true });
    }
    Ok(Begun { _lock: open_out_dir(out, run)?, finished: false })
}

/// The units of `run`'s shard that have no record yet.
pub(crate) fn todo<J: UnitJob>(out: &Path, run: &UnitRun<J>) -> Vec<usize> {
    run.shard().range(run.plan.units()).filter(|&k| !record_path::<J>(out, k).exists()).collect()
}

/// Mark a unit done: its maps and segment are written, now its record.
pub(crate) fn commit_unit<J: UnitJob>(out: &Path, record: &UnitRecord<J>) -> Result<()> {
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
    tables: impl FnOnce(&[UnitRecord<J>]) -> Result<()>,
) -> Result<()> {
    let mut records = vec![];
    let mut missing = vec![];
    for k in 0..job.units() {
        let p = record_path::<J>(out, k);
        if p.exists() {
            records.push(UnitRecord::<J>::read(&p)?);
        } else {
            missing.push(k);
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
    super::encode::join_h264(&out.join("overlay.mp4"), &segments, fps)?;
    let parts = out.join("parts");
    std::fs::remove_dir_all(&parts).map_err(|e| BorexError::io(&parts, e))?;
    Ok(())
}

/// Copy the units of `video --shard` folders into `out`: the same job, every
/// shard once, every unit done. Returns the unsharded run (for the caller to
/// [`finalize`] under the returned lock) and the records copied.
pub(crate) fn merge<J: UnitJob>(shards: &[PathBuf], out: &Path) -> Result<(UnitRun<J>, Vec<UnitRecord<J>>, DirLock)> {
    let runs = shards.iter().map(|d| UnitRun::<J>::read(d)).collect::<Result<Vec<_>>>()?;
    if let Some((dir, _)) = shards.iter().zip(&runs).find(|(_, r)| r.shard() == Shard::ALL) {
        return Err(BorexError::invalid(format!(
            "{}: an unsharded run (it ran without --shard), not a shard: there is nothing to merge{}",
            dir.display(),
            if dir.join("parts").exists() { "; rerun its command to finish it" } else { "; its outputs are complete" }
        )));
    }
    let first = runs.first().ok_or_else(|| BorexError::invalid("no shards to merge"))?;
    let whole = UnitRun { desc: first.desc.with_shard(Shard::ALL), plan: first.plan.clone() };
    let count = first.shard().count;
    let mut seen = vec![false; count];
    for (dir, r) in shards.iter().zip(&runs) {
        let mut why = whole.desc.differences(&r.desc.with_shard(Shard::ALL));
        if r.shard().count != count {
            why.push(Difference {
                what: "the shard count".into(),
                recorded: count.to_string(),
                now: r.shard().count.to_string(),
            });
        }
        if !why.is_empty() {
            return Err(BorexError::invalid(format!(
                "{}: a shard of another job (other input or settings: {})",
                dir.display(),
                explain(&why, &format!("in {}", shards[0].display()), "here")
            )));
        }
        if std::mem::replace(&mut seen[r.shard().index], true) {
            return Err(BorexError::invalid(format!(
                "{}: shard {}/{count} given twice",
                dir.display(),
                r.shard().index
            )));
        }
    }
    if let Some(m) = seen.iter().position(|s| !s) {
        return Err(BorexError::invalid(format!("shard {m}/{count} is missing")));
    }
    // Every record is read before anything is written, so an unfinished shard leaves `out` untouched.
    let mut copies = vec![];
    for (dir, r) in shards.iter().zip(&runs) {
        for k in r.shard().range(r.plan.units()) {
            let p = record_path::<J>(dir, k);
            if !p.exists() {
                return Err(BorexError::invalid(format!(
                    "{}: {} {k} of shard {}/{count} is not done; rerun that shard",
                    dir.display(),
                    J::UNIT,
                    r.shard().index
                )));
            }
            let rec = UnitRecord::<J>::read(&p)?;
            if rec.unit != k {
                return Err(BorexError::invalid(format!("{}: not the record of {} {k}", p.display(), J::UNIT)));
            }
            copies.push((dir, rec));
        }
    }
    let lock = open_out_dir(out, &whole)?;
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
    Ok((whole, records, lock))
}

/// A record's map file name as borex writes it (`maps/NAME.npy`), so a
/// crafted record cannot name a file outside the shard's or OUTDIR's `maps/`.
fn is_map_name(m: &str) -> bool {
    m.strip_prefix("maps/")
        .and_then(|n| n.strip_suffix(".npy"))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
}

/// Copy through a temporary name, so a copy is whole or absent.
fn copy(from: &Path, to: &Path) -> Result<()> {
    let bytes = crate::limits::read_bounded(from, crate::limits::MAX_NPY_FILE_BYTES, "map")?;
    output::write_atomic(to, |w| std::io::Write::write_all(w, &bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_name_only_files_in_maps() {
        type Rec = Record<Vec<String>, NoEntry>;
        let good = br#"{"format": 2, "unit": 3, "maps": ["maps/frame_000012.npy"], "rows": [["12", "0.4"]]}"#;
        let r = Rec::from_json_bytes(good).unwrap();
        assert_eq!((r.unit, r.maps.len(), r.rows[0][0].as_str()), (3, 1, "12"));
        for (bytes, needle) in [
            (
                &br#"{"format": 2, "unit": 0, "maps": ["../../etc/x.npy"], "rows": []}"#[..],
                "names the map \"../../etc/x.npy\"",
            ),
            (br#"{"format": 2, "unit": 0, "maps": ["maps/../x.npy"], "rows": []}"#, "not a maps/NAME.npy"),
            (br#"{"format": 2, "unit": 0, "maps": ["/abs.npy"], "rows": []}"#, "not a maps/NAME.npy"),
            (br#"{"format": 2, "unit": -1, "maps": [], "rows": []}"#, "not a borex unit record"),
            (br#"{"format": 2, "unit": 0, "maps": [], "rows": [], "extra": 1}"#, "unknown field"),
            (br#"{"unit": 0, "maps": [], "rows": [["1"]]}"#, "a unit record of an older layout"),
            (br#"{"format": 1, "unit": 0, "maps": [], "rows": []}"#, "a unit record of format 1"),
            (b"\xff\xfe", "not a borex unit record"),
        ] {
            let e = Rec::from_json_bytes(bytes).unwrap_err().to_string();
            assert!(e.contains(needle), "{needle:?} not in {e:?}");
        }
    }
}
