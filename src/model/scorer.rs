//! Scoring perturbed images: masks are applied by the compute backend, the
//! results go through the classifier in batches, and one class's probability
//! comes back. Every explainer and metric scores images through this.

use super::Classifier;
use crate::compute::{ImageKernels, Masks};
use crate::error::{BorexError, Result};
use ndarray::{ArrayView3, Axis};
use std::cell::Cell;
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
}

impl<'a> Scorer<'a> {
    /// A scorer of `model` with at most `batch` images per model call.
    pub fn new(model: &'a Classifier, kernels: &'a dyn ImageKernels, batch: usize) -> Self {
        Self { model, kernels, batch: batch.max(1), evaluations: Cell::new(0), elapsed: Cell::new(Duration::ZERO) }
    }

    /// Probabilities of every class for one unmasked image.
    pub fn probabilities(&self, image: ArrayView3<f32>) -> Result<Vec<f32>> {
        let t = Instant::now();
        let p = self.model.probabilities(image.insert_axis(Axis(0)), 1)?;
        self.account(1, t);
        Ok(p.row(0).to_vec())
    }

    /// Every class's probability for a batch of ready inputs (N×C×H×W).
    pub fn score_batch(&self, batch: ndarray::ArrayView4<f32>) -> Result<ndarray::Array2<f32>> {
        let t = Instant::now();
        let p = self.model.probabilities(batch, self.batch)?;
        self.account(batch.dim().0 as u64, t);
        Ok(p)
    }

    /// Every class's probability for a batch of clips (N×T×C×H×W); each of
    /// the N·T frames counts as one evaluation.
    pub fn score_clips(&self, clips: ndarray::ArrayView5<f32>) -> Result<ndarray::Array2<f32>> {
        let t = Instant::now();
        let p = self.model.clip_probabilities(clips, self.batch)?;
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
            out.extend(p.rows().into_iter().map(|r| r.to_vec()));
        }
        self.account(n as u64, t);
        Ok(out)
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
