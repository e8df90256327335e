//! Scoring perturbed images: masks are applied by the compute backend, the
//! results go through the classifier in batches, and one class's probability
//! comes back. Every explainer and metric scores images through this.

use super::Classifier;
use crate::compute::{ImageKernels, Masks};
use crate::error::{BorexError, Result};
use ndarray::{ArrayView3, Axis};
use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

/// Scores batches of images with a model, `batch` per call, counting evaluations; masking runs on `kernels`.
pub struct Scorer<'a> {
    /// The model scored with.
    pub model: &'a Classifier,
    /// The kernels that mask and blur images before scoring.
    pub kernels: &'a dyn ImageKernels,
    /// Images per model call.
    pub batch: usize,
    evaluations: Cell<u64>,
    elapsed: Cell<Duration>,
    /// Each class's lowest and highest probability over every input scored: a model whose
    /// scores do not depend on the input gives a map that shows nothing ([`Self::constant_note`]).
    range: RefCell<Vec<(f32, f32)>>,
}

/// Scores within this of each other are "the same" for [`Scorer::constant_note`]: f32
/// rounding of one constant, not a model that responds to the input.
pub const CONSTANT_SCORE_TOLERANCE: f32 = 1e-6;

impl<'a> Scorer<'a> {
    /// A scorer of `model` with at most `batch` images per model call.
    pub fn new(model: &'a Classifier, kernels: &'a dyn ImageKernels, batch: usize) -> Self {
        Self {
            model,
            kernels,
            batch: batch.max(1),
            evaluations: Cell::new(0),
            elapsed: Cell::new(Duration::ZERO),
            range: RefCell::new(vec![]),
        }
    }

    /// Probabilities of every class for one unmasked image.
    pub fn probabilities(&self, image: ArrayView3<f32>) -> Result<Vec<f32>> {
        let t = Instant::now();
        let p = self.model.probabilities(image.insert_axis(Axis(0)), 1)?;
        self.observe(p.view());
        self.account(1, t);
        Ok(p.row(0).to_vec())
    }

    /// Every class's probability for a batch of ready inputs (N×C×H×W).
    pub fn score_batch(&self, batch: ndarray::ArrayView4<f32>) -> Result<ndarray::Array2<f32>> {
        let t = Instant::now();
        let p = self.model.probabilities(batch, self.batch)?;
        self.observe(p.view());
        self.account(batch.dim().0 as u64, t);
        Ok(p)
    }

    /// Every class's probability for a batch of clips (N×T×C×H×W); each of
    /// the N·T frames counts as one evaluation.
    pub fn score_clips(&self, clips: ndarray::ArrayView5<f32>) -> Result<ndarray::Array2<f32>> {
        let t = Instant::now();
        let p = self.model.clip_probabilities(clips, self.batch)?;
        self.observe(p.view());
        self.account((clips.dim().0 * clips.dim().1) as u64, t);
        Ok(p)
    }

    /// `P_class(image·m + baseline·(1−m))` for every mask, `batch` masks per model call.
    pub fn class_probs(
        &self,
        image: ArrayView3<f32>,
        baseline: ArrayView3<f32>,
        masks: Masks,
        class: usize,
    ) -> Result<Vec<f32>> {
        Ok(self.all_probs(image, baseline, masks)?.into_iter().map(|row| row[class]).collect())
    }

    /// Every class's probability for every mask (rows follow the masks).
    pub fn all_probs(&self, image: ArrayView3<f32>, baseline: ArrayView3<f32>, masks: Masks) -> Result<Vec<Vec<f32>>> {
        let t = Instant::now();
        let n = masks.len();
        let mut out = Vec::with_capacity(n);
        for start in (0..n).step_by(self.batch) {
            let end = (start + self.batch).min(n);
            let chunk = match masks {
                Masks::Dense(d) => Masks::Dense(d.slice_move(ndarray::s![start..end, .., ..])),
                Masks::Boxes(b) => Masks::Boxes(&b[start..end]),
            };
            let batch = self.kernels.apply_masks(image, baseline, chunk)?;
            let p = self.model.probabilities(batch.view(), self.batch)?;
            if let Some(c) = self.model.num_classes() {
                if p.ncols() != c {
                    return Err(BorexError::Runtime(format!("model returned {} classes, expected {c}", p.ncols())));
                }
            }
            self.observe(p.view());
            out.extend(p.rows().into_iter().map(|r| r.to_vec()));
        }
        self.account(n as u64, t);
        Ok(out)
    }

    fn observe(&self, p: ndarray::ArrayView2<f32>) {
        let mut range = self.range.borrow_mut();
        for row in p.rows() {
            if range.len() < row.len() {
                range.resize(row.len(), (f32::INFINITY, f32::NEG_INFINITY));
            }
            for (r, &v) in range.iter_mut().zip(row) {
                *r = (r.0.min(v), r.1.max(v));
            }
        }
    }

    /// A note when every input scored so far, and every score in `more` (a loop's
    /// observations), gave `class` the same probability: the model does not respond to the
    /// input (a constant output, a saturated softmax), so a map made from its scores shows
    /// nothing however confident it looks. `None` once any two scores differ.
    pub fn constant_note(&self, class: usize, more: &[f32]) -> Option<String> {
        let (lo, hi) =
            more.iter().fold(self.range.borrow().get(class).copied()?, |(lo, hi), &v| (lo.min(v), hi.max(v)));
        if self.evaluations() + (more.len() as u64) < 2 || hi - lo > CONSTANT_SCORE_TOLERANCE {
            return None;
        }
        let label = self.model.labels().and_then(|l| l.name(class)).map(|l| format!(" ({l})")).unwrap_or_default();
        Some(format!(
            "the model's score for class {class}{label} is {lo:.6} for the image and every masked input scored: it does not change under any mask, so the map carries no information"
        ))
    }

    fn account(&self, n: u64, since: Instant) {
        self.evaluations.set(self.evaluations.get() + n);
        self.elapsed.set(self.elapsed.get() + since.elapsed());
    }

    /// Model evaluations so far.
    pub fn evaluations(&self) -> u64 {
        self.evaluations.get()
    }

    /// Time spent masking and in the model so far.
    pub fn elapsed(&self) -> Duration {
        self.elapsed.get()
    }
}
