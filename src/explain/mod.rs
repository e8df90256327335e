//! Prior saliency maps (explainers). Each scores images only through
//! [`crate::model::Scorer`].

pub mod rise;

pub use rise::{rise, RiseParams};
