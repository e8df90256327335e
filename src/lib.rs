//! borex: explain image classifiers and refine their saliency maps with
//! Bayesian optimisation (BOREx), on wgpu compute shaders and ONNX Runtime.
//!
//! Stages, each in its own module:
//! - [`image`]: decode and preprocess images into model inputs;
//! - [`model`]: the ONNX Runtime classifier (execution providers, labels, batching);
//! - [`compute`]: the kernel seam, with the wgpu path ([`compute::gpu`]) and its
//!   CPU twin ([`compute::cpu`]);
//! - [`classify`]: top-k classification of image files.

pub mod classify;
pub mod compute;
pub mod error;
pub mod gp;
pub mod image;
pub mod model;
pub mod paths;
pub mod progress;

pub use error::{BorexError, Result};
