//! The refinement's settings: [`RefineConfig`] (every knob of the loop, with
//! the reference preset as `Default`), how the prior becomes the GP's mean
//! ([`PriorMean`]) and how the evaluations are spent ([`Refiner`]).

use super::full_res;
use super::Objective;
use crate::compute::Baseline;
use crate::error::{BorexError, Result};
use crate::gp::{CandidateGrid, FitOptions};
use serde::Serialize;

/// Every knob of the refinement. `Default` is the reference ("paper") preset
/// except the query objective ([`Objective::Matched`], chosen by the study in
/// docs/quality.md); [`RefineConfig::paper`] is the authors' preset.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct RefineConfig {
    /// Observations T (each costs two model evaluations).
    pub iters: usize,
    /// Box half-widths; `None` scales the reference [30, 45, 60, 75] to the input.
    pub sizes: Option<Vec<u32>>,
    /// UCB exploration weight κ.
    pub kappa: f32,
    /// Objective gain g in 2·(sigmoid(g·f) − 0.5); 0 keeps the raw difference
    /// (the reference code's `sig_gain = 0`).
    pub gain: f32,
    /// The prior is scaled to mean |S0| = m.
    pub prior_mean_abs: f32,
    /// Std of the jitter added to stored inputs (row, column, size), in
    /// 224-pixel units like the length scales (see [`RefineConfig::pixel_scale`]).
    pub jitter: [f64; 3],
    /// Noise variance added to the GP kernel's diagonal (sklearn's `alpha`; 0.01).
    pub alpha: f64,
    /// Start of every length-scale fit (row, column, size), in 224-pixel units.
    pub init_length_scales: [f64; 3],
    /// Bounds of every length scale, in 224-pixel units.
    pub length_scale_bounds: (f64, f64),
    /// Refit length scales after every observation (the reference does).
    pub refit: bool,
    /// With `refit`: run the length-scale fit (L-BFGS-B) only after queries
    /// 0, K, 2K, …; in between the GP keeps the last fitted length scales, so
    /// its posterior is a rank-one append. 1 (the reference) refits every time.
    #[serde(skip_serializing_if = "is_one", default = "one")]
    pub refit_every: usize,
    /// The UCB search looks at every `stride`-th row and column only (S²
    /// times fewer candidates per step); the refined map is still read at
    /// every pixel. 1 (the reference) searches every pixel.
    #[serde(skip_serializing_if = "is_one", default = "one")]
    pub stride: usize,
    /// Seed of the jitter and of any stochastic prior.
    pub seed: u64,
    /// What removed pixels become.
    #[serde(skip)]
    pub baseline: Baseline,
    /// Standard-normal jitter draws, one (row, column, size) triple per query
    /// after the first, used instead of the seeded generator: lets a test
    /// replay a reference implementation's draws. `None` in normal use.
    #[serde(skip)]
    pub jitter_draws: Option<Vec<[f64; 3]>>,
    /// What a query measures (see [`Objective`]).
    pub objective: Objective,
    /// How the map is read from the posterior (see [`full_res::Readout`]);
    /// absent from JSON when it is the paper's window average.
    #[serde(skip_serializing_if = "full_res::Readout::is_window", default)]
    pub readout: full_res::Readout,
    /// How the prior map becomes the GP's mean function (see [`PriorMean`]);
    /// absent from JSON when it is the paper's fixed scaling.
    #[serde(skip_serializing_if = "PriorMean::is_scaled", default)]
    pub prior_mean: PriorMean,
    /// Divide the gain by the explained class's probability on the whole
    /// input, P, floored at [`RELATIVE_GAIN_FLOOR`]: g·p₀/max(P, p₀). A
    /// confident class's box differences (up to ±P) then use the sigmoid's
    /// range as a hard class's do, instead of saturating at ±1; at P ≤ p₀
    /// the gain is unchanged. Absent from JSON when off.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub relative_gain: bool,
    /// How the evaluations are spent (see [`Refiner`]); absent from JSON at BOREx's box queries.
    #[serde(skip_serializing_if = "Refiner::is_boxes", default)]
    pub refiner: Refiner,
}

/// How a refinement spends its 2·`iters` model evaluations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Refiner {
    /// BOREx: box queries, a GP over boxes with the prior as its mean.
    #[default]
    Boxes,
    /// The complements of a RISE prior's own masks, then new mask pairs
    /// ([`crate::explain::antithetic`]); needs a RISE prior (`--objective antithetic`).
    Antithetic,
}

named_enum!(Refiner, "refiner", { Boxes => "boxes", Antithetic => "antithetic" });

impl Refiner {
    /// Whether this is BOREx's box search.
    pub fn is_boxes(&self) -> bool {
        *self == Refiner::Boxes
    }
}

/// What `--objective` (the settings' `objective`) names: a box query's
/// [`Objective`], or `antithetic`, which spends the same evaluations on the
/// complements of a RISE prior's own masks instead of box queries
/// ([`Refiner::Antithetic`]). One name space for both, so a front end has one setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefineObjective {
    /// Box queries measuring this objective ([`Refiner::Boxes`]).
    Boxes(Objective),
    /// The antithetic continuation of the RISE prior ([`Refiner::Antithetic`]).
    Antithetic,
}

impl Default for RefineObjective {
    fn default() -> Self {
        RefineObjective::Boxes(Objective::default())
    }
}

impl RefineObjective {
    /// Every name, as `--objective` takes it.
    pub const NAMES: [&'static str; 5] = ["paper", "matched", "insertion", "deletion", "antithetic"];

    /// The name.
    pub fn name(self) -> &'static str {
        match self {
            RefineObjective::Boxes(o) => o.name(),
            RefineObjective::Antithetic => "antithetic",
        }
    }

    /// The refiner this objective runs.
    pub fn refiner(self) -> Refiner {
        match self {
            RefineObjective::Boxes(_) => Refiner::Boxes,
            RefineObjective::Antithetic => Refiner::Antithetic,
        }
    }

    /// `cfg` with this objective: the query objective and the refiner (the
    /// antithetic continuation keeps `cfg`'s query objective, which it does not use).
    pub fn apply(self, cfg: &mut RefineConfig) {
        cfg.refiner = self.refiner();
        if let RefineObjective::Boxes(o) = self {
            cfg.objective = o;
        }
    }

    /// What `cfg` runs, by this name.
    pub fn of(cfg: &RefineConfig) -> Self {
        match cfg.refiner {
            Refiner::Boxes => RefineObjective::Boxes(cfg.objective),
            Refiner::Antithetic => RefineObjective::Antithetic,
        }
    }
}

impl RefineObjective {
    /// The box objective an unset objective runs where the antithetic continuation does not apply.
    pub const BOXES_DEFAULT: Self = RefineObjective::Boxes(Objective::Matched);
}

impl std::fmt::Display for RefineObjective {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for RefineObjective {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim() {
            "antithetic" => Ok(RefineObjective::Antithetic),
            other => other.parse::<Objective>().map(RefineObjective::Boxes).map_err(|_| {
                format!("unknown objective {other:?} (expected one of {})", RefineObjective::NAMES.join(", "))
            }),
        }
    }
}

impl Serialize for RefineObjective {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for RefineObjective {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        <String as serde::Deserialize>::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// The class probability below which [`RefineConfig::relative_gain`] keeps the gain as given.
pub const RELATIVE_GAIN_FLOOR: f32 = 0.2;

/// The GP's prior mean m(r, q, s) from the prior map S0 (scaled to mean |S0| = m).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PriorMean {
    /// The paper's: m = S0. A RISE map is mostly offset (values 0.3–0.55),
    /// so after this scaling its variation is a few hundredths against
    /// objective values near ±1, and the posterior all but ignores its shape.
    #[default]
    Scaled,
    /// m(r, q, s) = a·S̄0(r, q) + b, with S̄0 the prior's box average (the
    /// window readout of S0, averaged over sizes: a box's score follows the
    /// saliency inside it, not the value at its centre) and a, b the
    /// least-squares fit of the observations on S̄0, refitted after every
    /// observation (a ≥ [`MIN_PRIOR_SLOPE`]; a = 1, b = 0 until
    /// [`PRIOR_FIT_MIN_OBS`] are in): a linear mean function in the GP
    /// ("universal kriging" with the prior as the covariate). The prior's
    /// shape is kept, its scale and offset learned from the model's answers;
    /// the point readout is a·S0 + b plus the GP's correction, so the map
    /// keeps the prior's pixel detail where the queries do not contradict it.
    Fitted,
}

/// Observations before the prior's scale and offset are fitted.
pub const PRIOR_FIT_MIN_OBS: usize = 3;
/// The fitted slope's floor: a prior that the observations contradict is
/// flattened to a tie-breaker, never inverted.
pub const MIN_PRIOR_SLOPE: f64 = 0.1;

impl PriorMean {
    /// Whether the prior mean is the scaled prior (not fitted).
    pub fn is_scaled(&self) -> bool {
        *self == PriorMean::Scaled
    }

    /// (a, b) for observations `ys` whose boxes sit where the covariate is `covs`.
    pub fn affine(self, covs: &[f64], ys: &[f64]) -> (f64, f64) {
        let n = ys.len();
        if self == PriorMean::Scaled || n < PRIOR_FIT_MIN_OBS {
            return (1.0, 0.0);
        }
        let (mx, my) = (covs.iter().sum::<f64>() / n as f64, ys.iter().sum::<f64>() / n as f64);
        let sxx: f64 = covs.iter().map(|x| (x - mx).powi(2)).sum();
        let sxy: f64 = covs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum();
        let a = if sxx > 0.0 { (sxy / sxx).max(MIN_PRIOR_SLOPE) } else { 1.0 };
        (a, my - a * mx)
    }
}

impl std::fmt::Display for PriorMean {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PriorMean::Scaled => "scaled",
            PriorMean::Fitted => "fitted",
        })
    }
}

impl std::str::FromStr for PriorMean {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim() {
            "scaled" => Ok(PriorMean::Scaled),
            "fitted" => Ok(PriorMean::Fitted),
            other => Err(format!("unknown prior mean {other:?} (expected scaled or fitted)")),
        }
    }
}

impl Default for RefineConfig {
    fn default() -> Self {
        Self {
            iters: 50,
            sizes: None,
            kappa: 10.0,
            gain: 10.0,
            prior_mean_abs: 0.1,
            jitter: [1.0, 1.0, 0.5],
            alpha: 0.01,
            init_length_scales: [12.0, 12.0, 10.0],
            length_scale_bounds: (1.0, 20.0),
            refit: true,
            refit_every: 1,
            stride: 1,
            seed: 0,
            baseline: Baseline::Zero,
            jitter_draws: None,
            objective: Objective::default(),
            readout: full_res::Readout::default(),
            prior_mean: PriorMean::default(),
            relative_gain: false,
            refiner: Refiner::Boxes,
        }
    }
}

impl RefineConfig {
    /// The BOREx authors' "paper" preset (their objective, zero baseline).
    pub fn paper() -> Self {
        Self {
            objective: Objective::Paper,
            baseline: Baseline::Zero,
            readout: full_res::Readout::Window,
            prior_mean: PriorMean::Scaled,
            ..Self::default()
        }
    }

    /// "paper" or "default" when every knob but the seed matches that preset, else "custom".
    pub fn preset(&self) -> &'static str {
        if *self == (Self { seed: self.seed, ..Self::paper() }) {
            "paper"
        } else if *self == (Self { seed: self.seed, ..Self::default() }) {
            "default"
        } else {
            "custom"
        }
    }

    /// The gain a query's objective uses when the class's probability on the
    /// whole input is `p` (see [`RefineConfig::relative_gain`]).
    pub fn effective_gain(&self, p: f32) -> f32 {
        if self.relative_gain {
            self.gain * RELATIVE_GAIN_FLOOR / p.max(RELATIVE_GAIN_FLOOR)
        } else {
            self.gain
        }
    }

    /// The candidate grid for an input of `height`×`width`: `sizes`, or the reference's sizes for that input.
    pub fn grid(&self, height: u32, width: u32) -> CandidateGrid {
        match &self.sizes {
            Some(s) => CandidateGrid::new(height, width, s.clone()),
            None => CandidateGrid::reference(height, width),
        }
    }

    /// Where the UCB search looks for an H×W input: the grid, or its
    /// [`super::coarse_grid`] with `stride`.
    pub fn search_grid(&self, height: u32, width: u32) -> CandidateGrid {
        super::coarse_grid(&self.grid(height, width), self.stride as u32)
    }

    /// The factor from the reference's 224-pixel units to this input:
    /// min(H, W)/224, the same factor as the default box sizes. Length scales
    /// (start and bounds) and the jitter are distances on the grid, so they
    /// scale with it; at 224×224 it is 1 (the paper preset).
    pub fn pixel_scale(height: u32, width: u32) -> f64 {
        height.min(width) as f64 / 224.0
    }

    pub(crate) fn fit_options(&self, scale: f64) -> FitOptions {
        FitOptions {
            alpha: self.alpha,
            init: self.init_length_scales.iter().map(|l| l * scale).collect(),
            bounds: (self.length_scale_bounds.0 * scale, self.length_scale_bounds.1 * scale),
            optimise: self.refit,
        }
    }

    /// Every knob within its limit ([`crate::limits`]), or an error naming the setting.
    pub fn validate(&self) -> Result<()> {
        use crate::limits;
        limits::in_range("iters", self.iters, 1, limits::MAX_ITERS)?;
        limits::in_range("refit_every", self.refit_every, 1, limits::MAX_ITERS)?;
        limits::in_range("stride", self.stride, 1, limits::MAX_STRIDE)?;
        if let Some(s) = &self.sizes {
            limits::distinct_in_range("sizes", s, 1, limits::MAX_INPUT)?;
        }
        limits::non_negative("gain", self.gain)?;
        limits::non_negative("kappa", self.kappa)?;
        if !(self.prior_mean_abs.is_finite() && self.prior_mean_abs > 0.0) {
            return Err(BorexError::invalid(format!(
                "the prior scale must be a finite number > 0, not {}",
                self.prior_mean_abs
            )));
        }
        Ok(())
    }

    /// Box sizes against the input: a size whose every box covers the whole
    /// input asks the same question everywhere (an error); one whose boxes
    /// cover most of it asks little (a note).
    pub fn check_sizes(&self, height: u32, width: u32) -> Result<Vec<String>> {
        let grid = self.grid(height, width);
        let side = height.max(width);
        let mut notes = vec![];
        for &s in &grid.sizes {
            if s >= height && s >= width {
                return Err(BorexError::setting(
                    "sizes",
                    Some(s.to_string()),
                    format!(": every box of half-width {s} covers the whole {height}×{width} input, so every query would ask the same question; use sizes below {side}"),
                ));
            }
            if 2 * s > side {
                notes.push(format!("box half-width {s} is more than half the {height}×{width} input: most of its boxes cover most of the image"));
            }
        }
        Ok(notes)
    }
}

fn is_one(v: &usize) -> bool {
    *v == 1
}

fn one() -> usize {
    1
}
