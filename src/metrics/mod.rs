//! Evaluating saliency maps.

pub mod causal;
pub mod stats;

pub use causal::{auc, causal_curve, CausalMetric, Curve, InsertionStart};
pub use stats::{krippendorff_alpha_ordinal, spearman, wilcoxon, Wilcoxon, WilcoxonMethod};
