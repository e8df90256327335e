//! What `borex refine` reports: `report.json` and `curves.json` of one image,
//! as serde types (written from them, read back through them).

use crate::explain::Method;
use crate::job::{CausalScores, DeviceReport};
use crate::metrics::InsertionStart;
use crate::output;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `curves.json` of `borex refine`: the insertion/deletion curves of both maps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefineCurves {
    /// The prior's curves.
    pub prior: crate::job::Curves,
    /// The refined map's curves.
    pub refined: crate::job::Curves,
}

/// `report.json` of `borex refine`. Field names are the file's keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefineReport {
    /// The image file (or an in-memory image's name).
    pub image: PathBuf,
    /// The ONNX model file.
    pub model: PathBuf,
    /// The explained class.
    pub class: usize,
    /// Its label, when the model has labels.
    pub label: Option<String>,
    /// The model's probability of `class` on the clean image.
    pub probability: f32,
    /// The prior map: its method and insertion/deletion.
    pub prior: PriorReport,
    /// The refined map: the GP's last state and insertion/deletion.
    pub refined: RefinedReport,
    /// `refined_full.npy`, when written.
    pub full_res: Option<FullResReport>,
    /// How the metrics were computed.
    pub metrics: MetricsInfo,
    /// Every setting.
    pub settings: RefineSettingsReport,
    /// Where the work ran.
    pub device: DeviceReport,
    /// Model evaluations (images scored), the loop's two per query included.
    pub model_evaluations: u64,
    /// Every query, in order.
    pub observations: Vec<super::Observation>,
    /// How `overlay.png` colours the prior and the refined map: each on its
    /// own scale, by percentile (reports written before it say nothing: min–max).
    #[serde(default = "overlay_scale_before")]
    pub overlay_scale: output::OverlayScale,
    /// Posterior updates by path.
    pub posterior_updates: crate::compute::PosteriorUpdates,
    /// Where the time went.
    pub timings_ms: RefineTimingsMs,
    /// What the user should know.
    pub notes: Vec<String>,
}

/// Older reports' overlays: each map min–max.
fn overlay_scale_before() -> output::OverlayScale {
    output::OverlayScale::MinMax
}

/// `report.json`'s `prior`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PriorReport {
    /// The method's name, `file:PATH` or `array`.
    pub method: String,
    /// Its insertion/deletion (null without metrics).
    #[serde(flatten)]
    pub scores: CausalScores,
}

/// `report.json`'s `refined`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefinedReport {
    /// The last GP's length scales (row, column, size).
    pub length_scales: Vec<f64>,
    /// Iterations whose length-scale fit failed.
    pub fit_failures: usize,
    /// a of the prior mean a·S0 + b (1 unless fitted).
    pub prior_scale: f64,
    /// b of the prior mean a·S0 + b (0 unless fitted).
    pub prior_offset: f64,
    /// The objective's gain this input got with `--relative-gain` (absent without).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relative_gain: Option<f32>,
    /// Its insertion/deletion (null without metrics).
    #[serde(flatten)]
    pub scores: CausalScores,
}

/// `report.json`'s `full_res`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FullResReport {
    /// Rows and columns of `refined_full.npy`.
    pub shape: [usize; 2],
    /// The part inside the model's centre crop.
    pub crop: super::full_res::CropRegion,
    /// The share of pixels outside it (extrapolated).
    pub extrapolated_fraction: f64,
}

/// `report.json`'s `metrics`: how insertion/deletion were computed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetricsInfo {
    /// The scored class.
    pub class: usize,
    /// The start of `insertion`.
    pub insertion_start: Option<InsertionStart>,
    /// Pixels per step.
    pub step: usize,
    /// What deletion removes pixels to.
    pub baseline: String,
}

/// `report.json`'s `settings`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefineSettingsReport {
    /// What the refinement spent its evaluations on: a box query objective, or
    /// `antithetic` (absent from reports written before it: the query objective in `refine`).
    #[serde(default)]
    pub objective: super::RefineObjective,
    /// `paper`, `default` or `custom`.
    pub preset: String,
    /// Every knob of the loop.
    pub refine: super::RefineConfig,
    /// What removed pixels become.
    pub baseline: crate::compute::Baseline,
    /// Where the prior came from.
    pub prior: PriorSetting,
    /// The candidate grid.
    pub grid: crate::gp::CandidateGrid,
    /// The model input (height, width).
    pub input_size: [usize; 2],
    /// Images per model call.
    pub batch: usize,
    /// The seed.
    pub seed: u64,
}

/// `settings.prior`: a method with its parameters, a map file, or an in-memory map.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PriorSetting {
    /// One of borex's explainers.
    Method {
        /// Its name (as `--prior` takes it).
        name: String,
        /// Its parameters (`method` and the method's own).
        #[serde(flatten)]
        params: Method,
    },
    /// A map file.
    File {
        /// The file.
        file: PathBuf,
    },
    /// A map given in memory.
    Array {
        /// Its shape as given.
        array: [usize; 2],
    },
}

/// `report.json`'s `timings_ms` (milliseconds).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefineTimingsMs {
    /// Making the prior.
    pub prior: f64,
    /// The loop's model calls.
    pub model: f64,
    /// Length-scale fits.
    pub gp_fit: f64,
    /// Posterior and UCB search.
    pub posterior: f64,
    /// Insertion/deletion of both maps.
    pub metrics: f64,
    /// The whole refine.
    pub total: f64,
}
