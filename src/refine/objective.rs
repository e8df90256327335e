//! What one BOREx query measures. Every objective scores a box (r, q, s) as
//! `P_in − P_out` (then the gain sigmoid); they differ in the substrate the
//! box is shown on. The perturbation a query uses decides which metric the
//! refinement improves (docs/quality.md): a query that removes boxes to zero
//! optimises zero-start insertion, one that shows the box on a blurred copy
//! optimises blur-start insertion.

use super::candidate_box;
use crate::compute::{Baseline, BoxMask, ImageKernels, Keep};
use crate::error::{BorexError, Result};
use crate::model::Scorer;
use ndarray::{Array3, Array4, ArrayView3};
use serde::Serialize;

/// What a query's value f measures (what "the box matters" means).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Objective {
    /// The BOREx paper: P(box kept, rest → baseline) − P(box → baseline), one
    /// baseline for both (`--baseline`, zero by default).
    Paper,
    /// Matched to the default metric: P(box kept, rest → blur) − P(box → zero),
    /// i.e. the box on blur-start insertion's substrate minus the box on
    /// deletion's substrate (`--baseline` does not apply). The default: the
    /// best of the objectives studied on the default metric (docs/quality.md).
    #[default]
    Matched,
    /// Insertion only: P(box kept, rest → blur) − P(all blurred).
    Insertion,
    /// Deletion only: P(image) − P(box → zero).
    Deletion,
}

impl Objective {
    /// Every objective's name, as `--objective` takes it.
    pub const NAMES: [&'static str; 4] = ["paper", "matched", "insertion", "deletion"];

    /// The objective's name.
    pub fn name(self) -> &'static str {
        match self {
            Objective::Paper => "paper",
            Objective::Matched => "matched",
            Objective::Insertion => "insertion",
            Objective::Deletion => "deletion",
        }
    }
}

impl std::fmt::Display for Objective {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Objective {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim() {
            "paper" => Ok(Objective::Paper),
            "matched" => Ok(Objective::Matched),
            "insertion" => Ok(Objective::Insertion),
            "deletion" => Ok(Objective::Deletion),
            other => Err(format!("unknown objective {other:?} (expected one of {})", Objective::NAMES.join(", "))),
        }
    }
}

/// One side of a query as an objective defines it, before any image is seen:
/// the box (kept or removed) on a substrate, or a constant input (the image
/// itself when `None`, else the whole substrate), scored once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum SideSpec {
    Box { keep: Keep, substrate: Baseline },
    Constant(Option<Baseline>),
}

impl Objective {
    /// (inside side, outside side, both boxes on one substrate): the one
    /// table of what each objective shows the model, for images and clips.
    pub(crate) fn sides(self, baseline: Baseline) -> (SideSpec, SideSpec, bool) {
        use SideSpec::{Box, Constant};
        match self {
            Objective::Paper => (
                Box { keep: Keep::Inside, substrate: baseline },
                Box { keep: Keep::Outside, substrate: baseline },
                true,
            ),
            Objective::Matched => (
                Box { keep: Keep::Inside, substrate: Baseline::Blur },
                Box { keep: Keep::Outside, substrate: Baseline::Zero },
                false,
            ),
            Objective::Insertion => {
                (Box { keep: Keep::Inside, substrate: Baseline::Blur }, Constant(Some(Baseline::Blur)), false)
            }
            Objective::Deletion => (Constant(None), Box { keep: Keep::Outside, substrate: Baseline::Zero }, false),
        }
    }
}

/// Class `class`'s probability on one whole input (one model evaluation).
pub(crate) fn class_probability(scorer: &Scorer, input: ArrayView3<f32>, class: usize) -> Result<f32> {
    let p = scorer.probabilities(input)?;
    p.get(class).copied().ok_or_else(|| BorexError::invalid(format!("class {class} out of range")))
}

/// One side of a query: the box shown on a substrate, or a constant probability
/// (the whole image or the whole substrate, scored once).
enum Side {
    Box { keep: Keep, substrate: Array3<f32> },
    Constant(f32),
}

/// How one image's queries are shown to the model under an objective: the
/// substrates each side's box sits on, and the sides that are constants
/// (scored once here). The model calls themselves are the driver's, so F loops
/// can share one batch (`lockstep`).
pub(crate) struct Probe {
    inside: Side,
    outside: Side,
    /// Both sides on one substrate (the paper objective).
    shared: bool,
}

impl Probe {
    /// The probe for `objective` on input `x`: its substrates, made once per image.
    pub fn new(
        scorer: &Scorer,
        image: ArrayView3<f32>,
        class: usize,
        objective: Objective,
        baseline: Baseline,
    ) -> Result<Self> {
        let sub = |b: Baseline| scorer.kernels.baseline(image, b);
        let constant = |b: Option<Baseline>| -> Result<f32> {
            match b {
                None => class_probability(scorer, image, class),
                Some(b) => class_probability(scorer, sub(b)?.view(), class),
            }
        };
        let (inside, outside, shared) = objective.sides(baseline);
        let side = |spec: SideSpec, skip_substrate: bool| -> Result<Side> {
            Ok(match spec {
                // A shared probe's outside box uses the inside's substrate.
                SideSpec::Box { keep, .. } if skip_substrate => Side::Box { keep, substrate: Array3::zeros((0, 0, 0)) },
                SideSpec::Box { keep, substrate } => Side::Box { keep, substrate: sub(substrate)? },
                SideSpec::Constant(b) => Side::Constant(constant(b)?),
            })
        };
        Ok(Self { inside: side(inside, false)?, outside: side(outside, shared)?, shared })
    }

    /// The substrates this probe's boxes sit on (one when shared), indexed by
    /// [`Probe::boxes`].
    pub fn substrates(&self) -> Vec<ArrayView3<'_, f32>> {
        [&self.inside, &self.outside]
            .into_iter()
            .take(if self.shared { 1 } else { 2 })
            .filter_map(|side| match side {
                Side::Box { substrate, .. } => Some(substrate.view()),
                Side::Constant(_) => None,
            })
            .collect()
    }

    /// The boxes of query (r, q, s) on an H×W image, inside side first, each
    /// with its substrate's index in [`Probe::substrates`].
    pub fn boxes(&self, r: u32, q: u32, s: u32, h: u32, w: u32) -> Vec<(usize, BoxMask)> {
        let mut out = vec![];
        for side in [&self.inside, &self.outside] {
            if let Side::Box { keep, .. } = side {
                let substrate = if self.shared { 0 } else { out.len() };
                out.push((substrate, candidate_box(r, q, s, h, w, *keep)));
            }
        }
        out
    }

    /// The model inputs box (r, q, s) needs, inside side first: one image per
    /// side that is a box ([`Probe::boxes`] masked one substrate at a time).
    pub fn inputs(
        &self,
        kernels: &dyn ImageKernels,
        image: ArrayView3<f32>,
        r: u32,
        q: u32,
        s: u32,
    ) -> Result<Array4<f32>> {
        let (_, h, w) = image.dim();
        kernels.apply_boxes(image, &self.substrates(), &self.boxes(r, q, s, h as u32, w as u32))
    }

    /// (P_in, P_out) from the class probabilities of [`Probe::inputs`]' images, in order.
    pub fn combine(&self, probs: &[f32]) -> Result<(f32, f32)> {
        let boxes = [&self.inside, &self.outside].iter().filter(|s| matches!(s, Side::Box { .. })).count();
        if probs.len() != boxes {
            return Err(BorexError::invalid(format!("{} scores for a query of {boxes} images", probs.len())));
        }
        let mut scores = probs.iter().copied();
        let mut side = |s: &Side| match s {
            Side::Constant(p) => *p,
            Side::Box { .. } => scores.next().expect("counted above"),
        };
        let inside = side(&self.inside);
        Ok((inside, side(&self.outside)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for n in Objective::NAMES {
            assert_eq!(n.parse::<Objective>().unwrap().name(), n);
        }
        assert!("best".parse::<Objective>().unwrap_err().contains("paper, matched"));
    }
}
