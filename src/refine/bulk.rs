//! Bulk refinement: a stream of inputs (image files, video frames) goes
//! through prepare → BO loop → finish, F at a time, with the F loops in
//! lockstep ([`super::lockstep`]). Only F inputs are held at once, so memory
//! is bounded by the window, not by the length of the stream. The caller
//! says where inputs come from and what happens to each result.

use super::lockstep::{refine_lockstep, GpSchedule};
use super::pipeline::{RefineJob, RefineReport, RefineUnit};
use super::Refined;
use crate::compute::Backend;
use crate::error::{BorexError, Result};
use crate::job::description::{Inputs, ModelId};
use crate::job::{JobDescription, JobKind, Shard};
use crate::model::{Classifier, Scorer};

/// How each input of a bulk run ended. Made once per input and consumed at
/// once, so the size gap between the variants costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
pub enum UnitResult<'a> {
    /// Refined: the unit (its prepared input, prior, metrics) and the loop's result.
    Done(RefineUnit<'a>, Refined),
    /// Its own failure (unreadable image, bad prior, ...); the others go on.
    Failed(crate::error::BorexError),
}

/// Drive `items` through `prepare`, the lockstep loops and `finish`, `lockstep`
/// at a time (the last group may be smaller), in order. `finish` returning an
/// error stops the run (an output that cannot be written); a failed input does
/// not. A model failure during a group's loops fails that whole group's inputs.
#[allow(clippy::too_many_arguments)]
pub fn drive<'a, T>(
    items: impl Iterator<Item = T>,
    lockstep: usize,
    job: &'a RefineJob,
    model: &'a Classifier,
    backend: &'a Backend,
    prepare: impl FnMut(&T) -> Result<RefineUnit<'a>>,
    finish: impl FnMut(T, UnitResult<'a>) -> Result<()>,
    progress: &dyn crate::progress::Progress,
) -> Result<()> {
    let f = lockstep.max(1);
    let mut items = items.peekable();
    let groups = std::iter::from_fn(move || items.peek().is_some().then(|| items.by_ref().take(f).collect()));
    drive_groups(groups, f, job, model, backend, prepare, finish, progress)
}

/// [`drive`] with the groups made by the caller (each at most `lockstep`
/// inputs): a group is prepared whole, then its loops run, then each input is
/// finished, so `prepare` of one group sees every `finish` of the one before
/// (the warm start of `borex video` feeds a frame's map to the next frame).
#[allow(clippy::too_many_arguments)]
pub fn drive_groups<'a, T>(
    groups: impl Iterator<Item = Vec<T>>,
    lockstep: usize,
    job: &'a RefineJob,
    model: &'a Classifier,
    backend: &'a Backend,
    mut prepare: impl FnMut(&T) -> Result<RefineUnit<'a>>,
    mut finish: impl FnMut(T, UnitResult<'a>) -> Result<()>,
    progress: &dyn crate::progress::Progress,
) -> Result<()> {
    let f = lockstep.max(1);
    // One model call per step: 2F boxes.
    let scorer = Scorer::new(model, backend.image.as_ref(), job.batch.max(2 * f));
    for group in groups {
        let prepared: Vec<(T, Result<RefineUnit<'a>>)> = group
            .into_iter()
            .map(|t| {
                let u = prepare(&t);
                (t, u)
            })
            .collect();
        // A unit refined with its prior (the antithetic continuation) has no loop to run.
        let units: Vec<&RefineUnit> =
            prepared.iter().filter_map(|(_, u)| u.as_ref().ok()).filter(|u| !u.is_continued()).collect();
        let loops = match units.first() {
            None => vec![],
            Some(first) => {
                let specs: Vec<_> = units.iter().map(|u| u.loop_spec()).collect();
                let schedule = if first.gp_kernels_on_gpu() { GpSchedule::Sequential } else { GpSchedule::Parallel };
                match refine_lockstep(
                    &scorer,
                    first.gp_kernels.as_ref(),
                    &specs,
                    schedule,
                    &crate::progress::NoProgress,
                ) {
                    Ok(r) => r,
                    Err(e) => specs.iter().map(|_| Err(e.duplicate())).collect(),
                }
            }
        };
        let mut loops = loops.into_iter();
        for (t, u) in prepared {
            let outcome = match u {
                Err(e) => UnitResult::Failed(e),
                Ok(unit) if unit.is_continued() => match unit.continued() {
                    Ok(Some(refined)) => UnitResult::Done(unit, refined),
                    Ok(None) => unreachable!("a continued unit has its refinement"),
                    Err(e) => UnitResult::Failed(e),
                },
                Ok(unit) => match loops.next().expect("one loop per prepared unit") {
                    Ok(refined) => UnitResult::Done(unit, refined),
                    Err(e) => UnitResult::Failed(e),
                },
            };
            finish(t, outcome)?;
            progress.inc(1);
        }
    }
    Ok(())
}

/// A bulk `refine` over image files: one sub-folder per image (the outputs of
/// a single `refine`) and `summary.csv` in `out_dir`.
pub struct ManyImages<'a> {
    /// Every image of the job (folder names are made from the whole list).
    pub images: &'a [std::path::PathBuf],
    /// The slice of `images` this run refines.
    pub shard: Shard,
    /// Settings every image shares (`image` and `out_dir` are set per image).
    pub template: &'a RefineJob,
    /// The folder the per-image folders go in.
    pub out_dir: &'a std::path::Path,
    /// Images refined in lockstep (F).
    pub lockstep: usize,
}

/// How each image ended, in input order.
pub struct ManySummary {
    /// `summary.csv`'s rows.
    pub rows: Vec<SummaryRow>,
    /// Images refined by this run.
    pub done: usize,
    /// Refined by an earlier run into the same folder and kept.
    pub earlier: usize,
    /// (image, error) of every failure.
    pub failed: Vec<(std::path::PathBuf, String)>,
}

/// One row of `summary.csv`: how one image of a bulk refine ended. Numbers
/// are written as report.json has them (an f32 as the f64 it widens to).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SummaryRow {
    /// The image file.
    pub image: String,
    /// Its sub-folder.
    pub folder: String,
    /// `ok`, `earlier` (kept from an earlier run) or `failed`.
    pub status: String,
    /// The explained class.
    pub class: Option<usize>,
    /// Its label.
    pub label: Option<String>,
    /// The model's probability of `class`.
    pub probability: Option<f64>,
    /// The prior's insertion AUC.
    pub prior_insertion: Option<f64>,
    /// The prior's deletion AUC.
    pub prior_deletion: Option<f64>,
    /// The refined map's insertion AUC.
    pub refined_insertion: Option<f64>,
    /// The refined map's deletion AUC.
    pub refined_deletion: Option<f64>,
    /// Model evaluations.
    pub model_evaluations: Option<u64>,
    /// The refine's total milliseconds.
    pub total_ms: Option<f64>,
    /// Why it failed.
    pub error: String,
}

/// `summary.csv`'s columns: [`SummaryRow`]'s fields.
pub const SUMMARY_HEADER: [&str; 13] = [
    "image",
    "folder",
    "status",
    "class",
    "label",
    "probability",
    "prior_insertion",
    "prior_deletion",
    "refined_insertion",
    "refined_deletion",
    "model_evaluations",
    "total_ms",
    "error",
];

/// Sub-folder names: the sanitised file stems, made unique in input order
/// (`x`, `x-2`, …; see `job::names::unique_names`).
pub fn folder_names(images: &[std::path::PathBuf]) -> Vec<String> {
    crate::job::names::unique_names(images)
}

impl ManyImages<'_> {
    /// This run's job description: the model, every setting of the template, the image list, the shard.
    pub fn description(&self, model: &Classifier) -> Result<JobDescription> {
        Ok(JobDescription::new(
            JobKind::Refine,
            ModelId::of(model)?,
            self.template.settings()?,
            Inputs::of(self.images),
            self.shard,
        ))
    }
}

/// Refine every image. OUTDIR holds the job's description (`job.json`) and
/// is locked while the run writes; a rerun must be the same job (else it is
/// refused, naming what differs). An image whose sub-folder already holds a
/// report for the same file is kept (a rerun resumes); an image that fails is
/// reported and skipped. `summary.csv` is rewritten at the end. Interrupted
/// (Ctrl-C), the images in flight are not recorded at all: a rerun does them.
pub fn refine_many(
    run: &ManyImages,
    model: &Classifier,
    backend: &Backend,
    reporter: &dyn crate::progress::Reporter,
    progress: &dyn crate::progress::Progress,
) -> Result<ManySummary> {
    crate::limits::in_range("lockstep", run.lockstep, 1, crate::limits::MAX_LOCKSTEP)?;
    let _lock = crate::job::begin_run(run.out_dir, &run.description(model)?)?;
    remove_stale_staging(run.out_dir);
    let range = run.shard.range(run.images.len());
    let names = folder_names(run.images)[range.clone()].to_vec();
    let jobs: Vec<RefineJob> = run.images[range]
        .iter()
        .zip(&names)
        .map(|(img, name)| RefineJob { image: img.clone(), out_dir: run.out_dir.join(name), ..run.template.clone() })
        .collect();
    let mut rows: Vec<Option<SummaryRow>> = vec![None; jobs.len()];
    let mut summary = ManySummary { rows: vec![], done: 0, earlier: 0, failed: vec![] };
    let mut todo = vec![];
    for (i, job) in jobs.iter().enumerate() {
        match earlier_report(job) {
            Some(report) => {
                rows[i] = Some(summary_row(job, &names[i], "earlier", Some(&report), None));
                summary.earlier += 1;
                progress.inc(1);
            }
            None => todo.push(i),
        }
    }
    drive(
        todo.into_iter(),
        run.lockstep,
        run.template,
        model,
        backend,
        |&i| {
            RefineUnit::prepare(
                &jobs[i],
                super::pipeline::Source::File(&jobs[i].image),
                model,
                backend,
                reporter,
                std::time::Instant::now(),
            )
        },
        |i, result| {
            // Ctrl-C: a loop cut short is no failure of its image; stop without recording it.
            if crate::output::interrupted() {
                return Err(BorexError::Interrupted);
            }
            let job = &jobs[i];
            let outcome = match result {
                UnitResult::Done(unit, refined) => {
                    crate::output::OutputSet::begin(&job.out_dir).and_then(|out| unit.finish(refined, out))
                }
                UnitResult::Failed(e) => Err(e),
            };
            rows[i] = Some(match outcome {
                Ok(o) => {
                    summary.done += 1;
                    summary_row(job, &names[i], "ok", Some(&o.report), None)
                }
                Err(e) => {
                    summary.failed.push((job.image.clone(), e.to_string()));
                    summary_row(job, &names[i], "failed", None, Some(&e.to_string()))
                }
            });
            Ok(())
        },
        progress,
    )?;
    summary.rows = rows.into_iter().map(|r| r.expect("every image has a row")).collect();
    crate::output::write_csv_rows(&run.out_dir.join("summary.csv"), &SUMMARY_HEADER, &summary.rows)?;
    Ok(summary)
}

/// Under the lock, an image's staging folder (`.NAME.borex-XXXXXX`) or a
/// temporary file in OUTDIR is what a killed run left: remove it.
fn remove_stale_staging(out: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(out) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') {
            continue;
        }
        let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
        if is_dir && name.contains(".borex-") {
            let _ = std::fs::remove_dir_all(e.path());
        } else if !is_dir && name.ends_with(".tmp") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// What `refine merge` joined.
#[derive(Debug)]
pub struct Merged {
    /// Images in the merged folder.
    pub images: usize,
    /// (image, error) of every image a shard recorded as failed.
    pub failed: Vec<(String, String)>,
}

/// Join the folders of `refine --shard` runs into `out_dir`: every shard of
/// the same job (the same description but for the shard) present exactly
/// once, each image's sub-folder copied in (as one staged set), one
/// `summary.csv`. Every shard's table and folders are checked before anything
/// is written: a shard of another job, an unfinished shard, a folder name two
/// shards share or one borex would not make, and an OUTDIR holding other
/// files are refused. Failed images stay failed (the caller exits non-zero).
pub fn merge_refine(shards: &[std::path::PathBuf], out_dir: &std::path::Path) -> Result<Merged> {
    use crate::job::description::explain;
    let first_dir = shards.first().ok_or_else(|| BorexError::invalid("no shards to merge"))?;
    let descs = shards
        .iter()
        .map(|d| match JobDescription::read(d)? {
            Some(j) if j.kind == JobKind::Refine => Ok(j),
            Some(j) => Err(BorexError::invalid(format!(
                "{}: holds a `{}` run, not a `borex refine --shard` one",
                d.display(),
                j.kind.command()
            ))),
            None => {
                Err(BorexError::invalid(format!("{}: not a `borex refine --shard` output (no job.json)", d.display())))
            }
        })
        .collect::<Result<Vec<_>>>()?;
    let whole = descs[0].with_shard(Shard::ALL);
    let count = descs[0].shard.count;
    let mut seen = vec![false; count];
    for (dir, d) in shards.iter().zip(&descs) {
        let mut why = whole.differences(&d.with_shard(Shard::ALL));
        if d.shard.count != count {
            why.push(crate::job::description::Difference {
                what: "the shard count".into(),
                recorded: count.to_string(),
                now: d.shard.count.to_string(),
            });
        }
        if !why.is_empty() {
            return Err(BorexError::invalid(format!(
                "{}: a shard of another job (other input or settings: {})",
                dir.display(),
                explain(&why, &format!("in {}", first_dir.display()), "here")
            )));
        }
        if std::mem::replace(&mut seen[d.shard.index], true) {
            return Err(BorexError::invalid(format!("{}: shard {}/{count} given twice", dir.display(), d.shard.index)));
        }
    }
    if let Some(missing) = seen.iter().position(|s| !s) {
        return Err(BorexError::invalid(format!("shard {missing}/{count} is missing")));
    }
    let mut order: Vec<usize> = (0..shards.len()).collect();
    order.sort_by_key(|&k| descs[k].shard.index);
    let (mut rows, mut copies, mut failed) = (vec![], vec![], vec![]);
    let mut folders = std::collections::HashSet::new();
    for k in order {
        let dir = &shards[k];
        let csv_path = dir.join("summary.csv");
        if !csv_path.is_file() {
            return Err(BorexError::invalid(format!(
                "{}: shard {}/{count} has no summary.csv (it has not finished); rerun that shard",
                dir.display(),
                descs[k].shard.index
            )));
        }
        let bad = |e: &dyn std::fmt::Display| BorexError::invalid(format!("{}: {e}", csv_path.display()));
        let bytes = crate::limits::read_bounded(&csv_path, crate::limits::MAX_TABLE_BYTES, "CSV table")?;
        let mut reader = csv::Reader::from_reader(bytes.as_slice());
        let mut n = 0;
        for rec in reader.deserialize() {
            let rec: SummaryRow = rec.map_err(|e| bad(&e))?;
            let folder = &rec.folder;
            if *folder != crate::job::names::sanitise(folder) {
                return Err(bad(&format!("folder {folder:?} is not a name borex makes")));
            }
            if !folders.insert(folder.to_lowercase()) {
                return Err(bad(&format!("folder {folder:?} is in another shard too: these shards are not one job")));
            }
            if rec.status == "failed" {
                failed.push((rec.image.clone(), rec.error.clone()));
            } else {
                let src = dir.join(folder);
                if !src.join("report.json").is_file() {
                    return Err(BorexError::invalid(format!(
                        "{}: no report.json though summary.csv says done; rerun that shard",
                        src.display()
                    )));
                }
                copies.push((src, folder.clone()));
            }
            rows.push(rec);
            n += 1;
        }
        let want = descs[k].shard.range(whole.inputs.count).len();
        if n != want {
            return Err(bad(&format!("lists {n} images, but shard {}/{count} has {want}", descs[k].shard.index)));
        }
    }
    let _lock = crate::job::begin_run(out_dir, &whole)?;
    for (src, folder) in copies {
        let out = crate::output::OutputSet::begin(&out_dir.join(&folder))?;
        for entry in std::fs::read_dir(&src).map_err(|e| BorexError::io(&src, e))? {
            let entry = entry.map_err(|e| BorexError::io(&src, e))?;
            // Files only: a link in a shard's folder is not followed out of it.
            if entry.file_type().map_err(|e| BorexError::io(entry.path(), e))?.is_file() {
                std::fs::copy(entry.path(), out.file(&entry.file_name().to_string_lossy()))
                    .map_err(|e| BorexError::io(entry.path(), e))?;
            }
        }
        out.commit()?;
    }
    crate::output::write_csv_rows(&out_dir.join("summary.csv"), &SUMMARY_HEADER, &rows)?;
    Ok(Merged { images: rows.len(), failed })
}

/// The report an earlier run left for this image, if its folder holds one for the same file.
fn earlier_report(job: &RefineJob) -> Option<RefineReport> {
    let report: RefineReport = crate::output::read_report(&job.out_dir.join("report.json")).ok()?;
    (report.image == job.image).then_some(report)
}

fn summary_row(
    job: &RefineJob,
    folder: &str,
    status: &str,
    report: Option<&RefineReport>,
    error: Option<&str>,
) -> SummaryRow {
    let wide = |v: Option<f32>| v.map(f64::from);
    SummaryRow {
        image: job.image.display().to_string(),
        folder: folder.to_string(),
        status: status.to_string(),
        class: report.map(|r| r.class),
        label: report.and_then(|r| r.label.clone()),
        probability: wide(report.map(|r| r.probability)),
        prior_insertion: wide(report.and_then(|r| r.prior.scores.insertion)),
        prior_deletion: wide(report.and_then(|r| r.prior.scores.deletion)),
        refined_insertion: wide(report.and_then(|r| r.refined.scores.insertion)),
        refined_deletion: wide(report.and_then(|r| r.refined.scores.deletion)),
        model_evaluations: report.map(|r| r.model_evaluations),
        total_ms: report.map(|r| r.timings_ms.total),
        error: error.unwrap_or("").to_string(),
    }
}

/// Image paths from a manifest: one per line, blank lines and `#` comments
/// skipped (and a UTF-8 byte-order mark), relative paths taken from the manifest's folder.
pub fn read_manifest(path: &std::path::Path) -> Result<Vec<std::path::PathBuf>> {
    let text = crate::limits::read_text_bounded(path, crate::limits::MAX_TABLE_BYTES, "manifest")?;
    let images = crate::job::names::manifest_entries(path, &text)?;
    if images.is_empty() {
        return Err(crate::error::BorexError::invalid(format!("manifest {} lists no images", path.display())));
    }
    Ok(images)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_cells_print_numbers_as_the_report_does() {
        let row = SummaryRow {
            image: "a, b.png".into(),
            folder: "a".into(),
            status: "ok".into(),
            class: Some(281),
            label: None,
            probability: Some(f64::from(0.612_345_7f32)),
            prior_insertion: Some(1.0),
            prior_deletion: None,
            refined_insertion: Some(1e-7),
            refined_deletion: Some(0.25),
            model_evaluations: Some(1000),
            total_ms: Some(12.5),
            error: String::new(),
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.csv");
        crate::output::write_csv_rows(&path, &SUMMARY_HEADER, std::slice::from_ref(&row)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next().unwrap(), SUMMARY_HEADER.join(","));
        // Each number as serde_json writes the report's value (the f32 widened to f64).
        let json = |v: f64| serde_json::to_string(&v).unwrap();
        let want = format!(
            "\"a, b.png\",a,ok,281,,{},{},,{},{},1000,{},",
            json(f64::from(0.612_345_7f32)),
            json(1.0),
            json(1e-7),
            json(0.25),
            json(12.5)
        );
        assert_eq!(lines.next().unwrap(), want);
        // And it reads back as the same row.
        let back: Vec<SummaryRow> = csv::Reader::from_path(&path).unwrap().deserialize().map(|r| r.unwrap()).collect();
        assert_eq!(back, [row]);
    }
}
