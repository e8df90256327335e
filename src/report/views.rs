//! Minimal, tolerant views of the files a run leaves (every field defaults,
//! so an older or newer layout still reads), and readers whose errors name the file.

use crate::error::{BorexError, Result};
use ndarray::{Array2, ArrayD};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// A JSON file; errors say which file and why in one line.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| BorexError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| {
        BorexError::invalid(format!("{}: not a borex JSON file of the expected layout ({e})", path.display()))
    })
}

/// A float32 H×W map (`.npy`).
pub fn read_map(path: &Path) -> Result<Array2<f32>> {
    let any = read_array(path)?;
    let shape = any.shape().to_vec();
    any.into_dimensionality::<ndarray::Ix2>()
        .map_err(|_| BorexError::invalid(format!("{}: a {shape:?} array, not an H×W map", path.display())))
}

/// A float32 array of any rank (`.npy`).
pub fn read_array(path: &Path) -> Result<ArrayD<f32>> {
    let file = std::fs::File::open(path).map_err(|e| BorexError::io(path, e))?;
    let a: ArrayD<f32> = ndarray_npy::ReadNpyExt::read_npy(std::io::BufReader::new(file))
        .map_err(|e| BorexError::invalid(format!("{}: not a readable float32 .npy ({e})", path.display())))?;
    if a.is_empty() {
        return Err(BorexError::invalid(format!("{}: an empty array", path.display())));
    }
    Ok(a)
}

/// A PNG (or any image the `image` crate reads) as RGB.
pub fn read_png(path: &Path) -> Result<image::RgbImage> {
    let bytes = std::fs::read(path).map_err(|e| BorexError::io(path, e))?;
    image::load_from_memory(&bytes)
        .map(|i| i.to_rgb8())
        .map_err(|e| BorexError::Image { path: path.to_path_buf(), reason: e.to_string() })
}

/// A CSV table: its header and rows of cells.
pub struct Csv {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Csv {
    pub fn read(path: &Path) -> Result<Self> {
        let bad = |e: csv::Error| BorexError::invalid(format!("{}: not a readable CSV table ({e})", path.display()));
        let mut r = csv::ReaderBuilder::new().flexible(false).from_path(path).map_err(|e| match e.kind() {
            csv::ErrorKind::Io(io) => BorexError::io(path, std::io::Error::new(io.kind(), io.to_string())),
            _ => bad(e),
        })?;
        let header = r.headers().map_err(bad)?.iter().map(str::to_string).collect();
        let rows = r
            .records()
            .map(|rec| rec.map(|r| r.iter().map(str::to_string).collect()))
            .collect::<Result<_, _>>()
            .map_err(bad)?;
        Ok(Self { header, rows })
    }

    pub fn col(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }

    /// Cell `name` of `row` ("" when the column is absent).
    pub fn get<'a>(&self, row: &'a [String], name: &str) -> &'a str {
        self.col(name).and_then(|i| row.get(i)).map_or("", String::as_str)
    }

    pub fn num(&self, row: &[String], name: &str) -> Option<f64> {
        self.get(row, name).trim().parse().ok()
    }
}

/// Scores of one map in a refine report.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct MapScores {
    pub method: Option<String>,
    pub insertion: Option<f64>,
    pub deletion: Option<f64>,
    pub insertion_blur: Option<f64>,
    pub insertion_zero: Option<f64>,
    pub length_scales: Option<Vec<f64>>,
    pub prior_scale: Option<f64>,
    pub prior_offset: Option<f64>,
}

/// One query.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Query {
    pub row: u32,
    pub col: u32,
    pub size: u32,
    pub stored: [f64; 3],
    pub p_inside: f64,
    pub p_outside: f64,
    pub f: f64,
    pub length_scales: [f64; 3],
}

/// `report.json` of `borex refine`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RefineReport {
    pub image: Option<String>,
    pub model: Option<String>,
    pub class: Option<usize>,
    pub label: Option<String>,
    pub probability: Option<f64>,
    pub prior: MapScores,
    pub refined: MapScores,
    pub settings: serde_json::Value,
    pub device: serde_json::Value,
    pub model_evaluations: Option<u64>,
    pub observations: Vec<Query>,
    pub timings_ms: BTreeMap<String, f64>,
    pub notes: Vec<String>,
}

impl RefineReport {
    /// The model-input size (H, W) the maps are at.
    pub fn input_size(&self) -> Option<(usize, usize)> {
        let s = self.settings.get("input_size")?.as_array()?;
        Some((s.first()?.as_u64()? as usize, s.get(1)?.as_u64()? as usize))
    }

    pub fn class_name(&self) -> String {
        match (&self.label, self.class) {
            (Some(l), Some(c)) => format!("{l} ({c})"),
            (None, Some(c)) => format!("class {c}"),
            (Some(l), None) => l.clone(),
            _ => "unknown class".into(),
        }
    }
}

/// `curves.json` of `borex refine`: P_c after each step, per map and metric.
pub type CurvesFile = BTreeMap<String, BTreeMap<String, Vec<f32>>>;

/// `report.json` of `borex counterfactual`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CounterfactualReport {
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

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CfSpace {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CfTarget {
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
