//! Evaluating saliency maps.

pub mod causal;

pub use causal::{auc, causal_curve, CausalMetric, Curve, InsertionStart};
