//! Evaluating saliency maps.

pub mod causal;
pub mod stats;

pub use causal::{auc, causal_curve, CausalMetric, Curve, InsertionStart};
pub use stats::spearman;
