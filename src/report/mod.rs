//! `borex report`: one self-contained HTML page for a run folder of
//! `refine` (one image or many), `video` (frame and clip mode), `eval`,
//! `eval mosaic` or `counterfactual`. The kind is read from the folder's
//! files; images are embedded as base64 PNG data URIs, plots as inline SVG,
//! style and script inline: the page needs no network and no other file.
//!
//! A file that defines the kind (`report.json`, `summary.json`, `job.json`,
//! `summary.csv`) must read, else the error names it; any other missing or
//! unreadable file is listed at the top of the page and its part is marked.
//! [`render_refine`] and its siblings give the HTML string (for a notebook's
//! `_repr_html_`); [`write_report`] writes it atomically.

mod counterfactual;
mod eval;
pub mod html;
mod refine;
mod runs;
pub mod steps;
mod svg;
pub mod views;

use crate::error::{BorexError, Result};
use std::path::{Path, PathBuf};

/// What a folder holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `borex refine IMAGE`.
    Refine,
    /// `borex refine IMAGE...`: a folder per image and `summary.csv`.
    RefineMany,
    /// `borex video` (frame mode).
    Video,
    /// `borex video --mode clip`.
    VideoClip,
    /// `borex eval`.
    Eval,
    /// `borex eval mosaic`.
    EvalMosaic,
    /// `borex counterfactual`.
    Counterfactual,
}

impl Kind {
    /// The kind's name, for messages (`refine`, `video (frames)`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Refine => "refine",
            Kind::RefineMany => "refine (many images)",
            Kind::Video => "video",
            Kind::VideoClip => "video (clip mode)",
            Kind::Eval => "eval",
            Kind::EvalMosaic => "eval mosaic",
            Kind::Counterfactual => "counterfactual",
        }
    }
}

/// The kind of borex output in `dir`, from its files.
pub fn detect(dir: &Path) -> Result<Kind> {
    if !dir.is_dir() {
        return Err(BorexError::invalid(format!("{}: not a folder", dir.display())));
    }
    // exists, not is_file: a FIFO or folder in the place of a file is then refused by name when read.
    let has = |f: &str| dir.join(f).exists();
    if has("job.json") {
        // The job description (`kind`: refine, video-frame, video-clip, eval), or an older video layout (`mode`).
        let path = dir.join("job.json");
        let v: views::JobProbe = views::read_json(&path)?;
        return match v.kind.as_deref().or(v.mode.as_deref()) {
            Some("video-clip") | Some("clip") => Ok(Kind::VideoClip),
            Some("video-frame") | Some("frame") => Ok(Kind::Video),
            Some("eval") if has("mosaics.csv") => Ok(Kind::EvalMosaic),
            Some("eval") => Ok(Kind::Eval),
            Some("refine") => Ok(Kind::RefineMany),
            other => Err(BorexError::invalid(format!(
                "{}: a job of unknown kind {} (an older or newer layout?)",
                path.display(),
                other.map_or("(none)".to_string(), |k| format!("{k:?}"))
            ))),
        };
    }
    if has("mosaics.csv") {
        return Ok(Kind::EvalMosaic);
    }
    if has("results.csv") {
        return Ok(Kind::Eval);
    }
    if has("summary.csv") {
        return Ok(Kind::RefineMany);
    }
    if has("report.json") {
        let v: views::ReportProbe = views::read_json(&dir.join("report.json"))?;
        if v.targets.is_some() && v.start_class.is_some() {
            return Ok(Kind::Counterfactual);
        }
        if v.observations.is_some() {
            return Ok(Kind::Refine);
        }
        if v.method.is_some() {
            return Err(BorexError::invalid(format!(
                "{}: an `explain` output; borex report reads refine, video, eval, eval mosaic and counterfactual outputs",
                dir.join("report.json").display()
            )));
        }
        return Err(BorexError::invalid(format!(
            "{}: not a report of a kind borex report knows (an older layout?)",
            dir.join("report.json").display()
        )));
    }
    Err(BorexError::invalid(format!(
        "{}: not a borex output (none of report.json, summary.csv, job.json, results.csv, mosaics.csv)",
        dir.display()
    )))
}

/// `dir/rel` for a path a run's own file names (`source`: a summary row's folder, a
/// report's file, a results row's image): only when it stays inside `dir`, a
/// relative path of plain names that, links followed, still lies under `dir`. A
/// crafted `../../secret` or `/etc` must not make the page read and embed files
/// from elsewhere; the error names `source` and the path, and the page lists it.
pub(crate) fn confined(dir: &Path, rel: &str, source: &Path) -> Result<PathBuf> {
    use std::path::Component;
    let outside = || {
        BorexError::invalid(format!(
            "{}: names {rel:?}, which is not inside {}: not read",
            source.display(),
            dir.display()
        ))
    };
    let plain = !rel.is_empty() && Path::new(rel).components().all(|c| matches!(c, Component::Normal(_)));
    if !plain {
        return Err(outside());
    }
    let joined = dir.join(rel);
    if let (Ok(real), Ok(root)) = (std::fs::canonicalize(&joined), std::fs::canonicalize(dir)) {
        if !real.starts_with(&root) {
            return Err(outside());
        }
    }
    Ok(joined)
}

/// Files that could not be read, listed at the top of the page.
#[derive(Debug, Default)]
pub struct Problems(pub Vec<String>);

impl Problems {
    /// The value, or `None` with the error noted.
    pub fn keep<T>(&mut self, r: Result<T>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.push(e.to_string().trim_start_matches("invalid input: ").to_string());
                None
            }
        }
    }

    /// Note one more problem.
    pub fn push(&mut self, s: String) {
        self.0.push(s);
    }
}

/// The page for whatever `dir` holds.
pub fn render(dir: &Path) -> Result<(Kind, String)> {
    let kind = detect(dir)?;
    let html = match kind {
        Kind::Refine => render_refine(dir)?,
        Kind::RefineMany => render_refine_many(dir)?,
        Kind::Video | Kind::VideoClip => render_video(dir)?,
        Kind::Eval => render_eval(dir)?,
        Kind::EvalMosaic => render_mosaic(dir)?,
        Kind::Counterfactual => render_counterfactual(dir)?,
    };
    Ok((kind, html))
}

fn title(kind: Kind, dir: &Path) -> String {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| dir.display().to_string());
    format!("borex {}: {name}", kind.name())
}

/// The page of one `borex refine IMAGE` folder.
pub fn render_refine(dir: &Path) -> Result<String> {
    let mut problems = Problems::default();
    let loaded = refine::load(dir, &mut problems)?;
    let body = refine::section(&loaded, "r", true, &mut problems);
    Ok(html::page(&title(Kind::Refine, dir), "refine", &problems.0, &body))
}

/// The page of a many-image `borex refine` folder (`summary.csv` and a folder per image).
pub fn render_refine_many(dir: &Path) -> Result<String> {
    let mut problems = Problems::default();
    let body = runs::refine_many(dir, &mut problems)?;
    Ok(html::page(&title(Kind::RefineMany, dir), "refine-many", &problems.0, &body))
}

/// The page of a `borex video` folder (frame or clip mode).
pub fn render_video(dir: &Path) -> Result<String> {
    let kind = detect(dir)?;
    let mut problems = Problems::default();
    let body = match kind {
        Kind::VideoClip => runs::video_clip(dir, &mut problems)?,
        _ => runs::video_frames(dir, &mut problems)?,
    };
    Ok(html::page(&title(kind, dir), "video", &problems.0, &body))
}

/// The page of a `borex eval` folder.
pub fn render_eval(dir: &Path) -> Result<String> {
    let mut problems = Problems::default();
    let body = eval::eval(dir, &mut problems)?;
    Ok(html::page(&title(Kind::Eval, dir), "eval", &problems.0, &body))
}

/// The page of a `borex eval mosaic` folder.
pub fn render_mosaic(dir: &Path) -> Result<String> {
    let mut problems = Problems::default();
    let body = eval::mosaic(dir, &mut problems)?;
    Ok(html::page(&title(Kind::EvalMosaic, dir), "eval-mosaic", &problems.0, &body))
}

/// The page of a `borex counterfactual` folder.
pub fn render_counterfactual(dir: &Path) -> Result<String> {
    let mut problems = Problems::default();
    let body = counterfactual::page(dir, &mut problems)?;
    Ok(html::page(&title(Kind::Counterfactual, dir), "counterfactual", &problems.0, &body))
}

/// Render `dir` and write the page to `out` (default `dir/report.html`),
/// through a temporary file renamed into place: never half a page.
pub fn write_report(dir: &Path, out: Option<&Path>) -> Result<(Kind, PathBuf, u64)> {
    let out = out.map(Path::to_path_buf).unwrap_or_else(|| dir.join("report.html"));
    // Before rendering, which may take a while: a page that cannot go there is refused first.
    crate::output::check_replaceable(&out)?;
    let (kind, page) = render(dir)?;
    crate::output::write_atomic(&out, |w| std::io::Write::write_all(w, page.as_bytes()))?;
    Ok((kind, out, page.len() as u64))
}

/// Area under a curve sampled at equal steps over x ∈ [0, 1] (trapezoids),
/// as the metrics compute it.
pub fn auc(v: &[f32]) -> f64 {
    if v.len() < 2 {
        return v.first().copied().unwrap_or(0.0) as f64;
    }
    let s: f64 = v.windows(2).map(|p| (p[0] as f64 + p[1] as f64) / 2.0).sum();
    s / (v.len() - 1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_errors_name_the_file() {
        let d = tempfile::tempdir().unwrap();
        let e = detect(d.path()).unwrap_err().to_string();
        assert!(e.contains("not a borex output"), "{e}");
        std::fs::write(d.path().join("report.json"), "{ not json").unwrap();
        let e = detect(d.path()).unwrap_err().to_string();
        assert!(e.contains("report.json") && e.contains("not a borex JSON"), "{e}");
        assert!(!e.contains('\n'));
        std::fs::write(d.path().join("report.json"), r#"{"method": "rise", "class": 3}"#).unwrap();
        assert!(detect(d.path()).unwrap_err().to_string().contains("explain"));
        std::fs::write(d.path().join("report.json"), r#"{"observations": []}"#).unwrap();
        assert_eq!(detect(d.path()).unwrap(), Kind::Refine);
        // A job description decides: its kind, or an older video folder's mode.
        for (job, kind) in [
            (r#"{"kind": "video-frame"}"#, Kind::Video),
            (r#"{"kind": "video-clip"}"#, Kind::VideoClip),
            (r#"{"mode": "clip"}"#, Kind::VideoClip),
            (r#"{"kind": "refine"}"#, Kind::RefineMany),
            (r#"{"kind": "eval"}"#, Kind::Eval),
        ] {
            std::fs::write(d.path().join("job.json"), job).unwrap();
            assert_eq!(detect(d.path()).unwrap(), kind, "{job}");
        }
        std::fs::write(d.path().join("job.json"), r#"{"kind": "bench"}"#).unwrap();
        let e = detect(d.path()).unwrap_err().to_string();
        assert!(e.contains("job.json") && e.contains("unknown kind \"bench\""), "{e}");
    }

    #[test]
    fn auc_is_the_trapezoid_rule() {
        // A straight line from 0 to 1: 0.5; a constant: itself.
        assert!((auc(&[0.0, 0.25, 0.5, 0.75, 1.0]) - 0.5).abs() < 1e-12);
        assert!((auc(&[0.3; 7]) - 0.3).abs() < 1e-7);
    }
}
