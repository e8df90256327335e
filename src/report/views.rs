//! Minimal, tolerant views of the refine and counterfactual `report.json`
//! (every field defaults), and readers whose errors name the file. The page
//! reads these rather than [`crate::report_types`]' strict types on purpose:
//! a report of an older or newer layout, or a hand-trimmed one, still gets a
//! page with what it has (tests/report.rs renders one). The tables, summaries
//! and records of the other runs are read through their own types
//! ([`crate::video::run::FrameRow`], [`crate::refine::bulk::SummaryRow`], …).
//! `settings` stays JSON in these views because the page shows every key it
//! holds; the few it computes with are read through small typed views of it
//! (`RefineSettingsView`, `CounterfactualSettingsView`).

use crate::error::{BorexError, Result};
use ndarray::{Array2, ArrayD};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// A JSON file; errors say which file and why in one line.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = crate::limits::read_bounded(path, crate::limits::MAX_JSON_BYTES, "JSON file")?;
    serde_json::from_slice(&bytes).map_err(|e| {
        BorexError::invalid(format!("{}: not a borex JSON file of the expected layout ({e})", path.display()))
    })
}

/// A float32 H×W map (`.npy`).
pub(crate) fn read_map(path: &Path) -> Result<Array2<f32>> {
    let any = read_array(path)?;
    let shape = any.shape().to_vec();
    any.into_dimensionality::<ndarray::Ix2>()
        .map_err(|_| BorexError::invalid(format!("{}: a {shape:?} array, not an H×W map", path.display())))
}

/// A float32 array of any rank (`.npy`).
pub(crate) fn read_array(path: &Path) -> Result<ArrayD<f32>> {
    let bytes = crate::limits::read_bounded(path, crate::limits::MAX_NPY_FILE_BYTES, "array")?;
    let a = crate::image::parse_npy(&bytes)
        .map_err(|e| BorexError::invalid(format!("{}: not a readable float32 .npy ({e})", path.display())))?;
    // A map of NaN (or infinity) has no colour scale or mean to show: it is as good as missing.
    let bad = a.iter().filter(|v| !v.is_finite()).count();
    if bad > 0 {
        return Err(BorexError::invalid(format!(
            "{}: {bad} of its {} values are NaN or infinite",
            path.display(),
            a.len()
        )));
    }
    Ok(a)
}

/// A PNG (or any image the `image` crate reads) as RGB.
pub(crate) fn read_png(path: &Path) -> Result<image::RgbImage> {
    let bytes = crate::limits::read_bounded(path, crate::limits::MAX_IMAGE_FILE_BYTES, "image")?;
    image::load_from_memory(&bytes)
        .map(|i| i.to_rgb8())
        .map_err(|e| BorexError::Image { path: path.to_path_buf(), reason: e.to_string() })
}

/// A CSV table: its header and rows of cells (`mosaics.csv`, shown column by
/// column as written; the other tables are read through their row types).
pub(crate) struct Csv {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Csv {
    pub(crate) fn read(path: &Path) -> Result<Self> {
        let bad = |e: csv::Error| BorexError::invalid(format!("{}: not a readable CSV table ({e})", path.display()));
        let bytes = crate::limits::read_bounded(path, crate::limits::MAX_TABLE_BYTES, "CSV table")?;
        let mut r = csv::ReaderBuilder::new().flexible(false).from_reader(bytes.as_slice());
        let header = r.headers().map_err(bad)?.iter().map(str::to_string).collect();
        let rows = r
            .records()
            .map(|rec| rec.map(|r| r.iter().map(str::to_string).collect()))
            .collect::<Result<_, _>>()
            .map_err(bad)?;
        Ok(Self { header, rows })
    }
}

/// What `job.json` says its run is (`kind`; an older video layout's `mode`),
/// to choose the page; the rest is read by the page's own type.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct JobProbe {
    pub kind: Option<String>,
    pub mode: Option<String>,
}

/// Which fields a `report.json` has, to tell a refine, counterfactual and explain report apart.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ReportProbe {
    pub targets: Option<serde::de::IgnoredAny>,
    pub start_class: Option<serde::de::IgnoredAny>,
    pub observations: Option<serde::de::IgnoredAny>,
    pub method: Option<serde::de::IgnoredAny>,
}

/// The parts of a refine report's `settings` the page computes with (the
/// step-through recomputes the posterior from them).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RefineSettingsView {
    pub input_size: Option<[usize; 2]>,
    pub grid: GridView,
    pub refine: RefineKnobsView,
}

/// `settings.grid`: the box sizes (empty: the reference grid).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct GridView {
    pub sizes: Vec<u32>,
}

/// `settings.refine`: the knobs the step-through needs, at their defaults when absent.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub(crate) struct RefineKnobsView {
    pub readout: String,
    pub prior_mean: crate::refine::PriorMean,
    pub alpha: f64,
}

impl Default for RefineKnobsView {
    fn default() -> Self {
        Self { readout: "window".into(), prior_mean: crate::refine::PriorMean::Scaled, alpha: 0.01 }
    }
}

/// The part of a counterfactual report's `settings` the page computes with.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub(crate) struct CounterfactualSettingsView {
    /// Summed |change| over which a pixel counts as changed (the mask).
    pub change_threshold: f64,
}

impl Default for CounterfactualSettingsView {
    fn default() -> Self {
        Self { change_threshold: 0.01 }
    }
}

/// Scores of one map in a refine report.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct MapScores {
    /// The prior's method (`rise-fast`, `file:PATH`, …).
    pub method: Option<String>,
    /// Insertion AUC (the first insertion start).
    pub insertion: Option<f64>,
    /// Deletion AUC.
    pub deletion: Option<f64>,
    /// Insertion AUC from a blurred image.
    pub insertion_blur: Option<f64>,
    /// Insertion AUC from a zero image.
    pub insertion_zero: Option<f64>,
    /// The last GP's length scales (refined map).
    pub length_scales: Option<Vec<f64>>,
    /// a of the prior mean a·S0 + b (refined map).
    pub prior_scale: Option<f64>,
    /// b of the prior mean a·S0 + b (refined map).
    pub prior_offset: Option<f64>,
}

/// One query.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Query {
    /// Row of the box centre, in model-input pixels.
    pub row: u32,
    /// Column of the box centre.
    pub col: u32,
    /// Box half-width.
    pub size: u32,
    /// The GP training input (jittered row, column, size).
    pub stored: [f64; 3],
    /// P_c with the box kept.
    pub p_inside: f64,
    /// P_c with the box removed.
    pub p_outside: f64,
    /// The objective value.
    pub f: f64,
    /// The GP's length scales after this query.
    pub length_scales: [f64; 3],
}

/// `report.json` of `borex refine`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RefineReportView {
    /// The image file.
    pub image: Option<String>,
    /// The model file.
    pub model: Option<String>,
    /// The explained class.
    pub class: Option<usize>,
    /// Its label.
    pub label: Option<String>,
    /// The model's probability of it.
    pub probability: Option<f64>,
    /// The prior map's scores.
    pub prior: MapScores,
    /// The refined map's scores.
    pub refined: MapScores,
    /// Every setting, as written (shown whole; see `settings_view` for the ones computed with).
    pub settings: serde_json::Value,
    /// Where the work ran, as written.
    pub device: serde_json::Value,
    /// Model evaluations.
    pub model_evaluations: Option<u64>,
    /// Every query, in order.
    pub observations: Vec<Query>,
    /// Milliseconds per stage.
    pub timings_ms: BTreeMap<String, f64>,
    /// What the user should know.
    pub notes: Vec<String>,
}

impl RefineReportView {
    /// The settings the page computes with (defaults where absent or unreadable).
    pub(crate) fn settings_view(&self) -> RefineSettingsView {
        serde_json::from_value(self.settings.clone()).unwrap_or_default()
    }

    /// The model-input size (H, W) the maps are at.
    pub fn input_size(&self) -> Option<(usize, usize)> {
        self.settings_view().input_size.map(|[h, w]| (h, w))
    }

    /// `label (class)`, or what of it the report has.
    pub fn class_name(&self) -> String {
        match (&self.label, self.class) {
            (Some(l), Some(c)) => format!("{l} ({c})"),
            (None, Some(c)) => format!("class {c}"),
            (Some(l), None) => l.clone(),
            _ => "unknown class".into(),
        }
    }
}

/// `report.json` of `borex counterfactual`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct CounterfactualReport {
    pub image: Option<String>,
    pub model: Option<String>,
    pub start_class: Option<usize>,
    pub start_label: Option<String>,
    pub start_probability: Option<f64>,
    pub model_robust: Option<bool>,
    pub settings: serde_json::Value,
    pub space: CfSpace,
    pub targets: Vec<CfTarget>,
    pub timings_ms: BTreeMap<String, f64>,
    pub notes: Vec<String>,
}

impl CounterfactualReport {
    /// The settings the page computes with (defaults where absent or unreadable).
    pub(crate) fn settings_view(&self) -> CounterfactualSettingsView {
        serde_json::from_value(self.settings.clone()).unwrap_or_default()
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct CfSpace {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct CfTarget {
    pub class: usize,
    pub label: Option<String>,
    pub probability_before: Option<f64>,
    pub probability_after: Option<f64>,
    pub start_probability_after: Option<f64>,
    pub predicted_after: Option<usize>,
    pub success: Option<bool>,
    pub norms: BTreeMap<String, f64>,
    pub changed_pixels: Option<u64>,
    pub changed_fraction: Option<f64>,
    pub files: BTreeMap<String, String>,
}
