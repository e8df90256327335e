//! borex: explain image classifiers and refine their saliency maps with
//! Bayesian optimisation (BOREx), on wgpu compute shaders and ONNX Runtime.
//!
//! Stages, each in its own module:
//! - [`image`]: decode and preprocess images into model inputs;
//! - [`model`]: the ONNX Runtime classifier (execution providers, labels, batching);
//! - [`compute`]: the kernel seam, with the wgpu path ([`compute::gpu`]) and its
//!   CPU twin ([`compute::cpu`]);
//! - [`gp`]: the Gaussian process (Matérn 3/2, L-BFGS-B fit) and the candidate grid;
//! - [`refine`]: the BOREx refinement loop (single, lockstep, bulk, clip);
//! - [`explain`]: prior maps (RISE, ...);
//! - [`metrics`]: insertion / deletion, rank statistics;
//! - [`eval`]: `borex eval` (metrics over image sets, paired tests, plots);
//! - [`output`]: atomic .npy / PNG / JSON writers and overlays;
//! - [`classify`]: top-k classification of image files;
//! - [`bench`]: stage timers for `borex bench` (CPU and GPU paths, model-only bounds).

/// `NAMES`, `name()`, `FromStr` and `Display` for a field-less enum whose
/// values have one name each (what a command line or a config file spells).
macro_rules! named_enum {
    ($t:ident, $what:literal, { $($v:ident => $n:literal),+ $(,)? }) => {
        impl $t {
            /// Every value's name, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($n),+];

            /// This value's name.
            pub fn name(self) -> &'static str {
                match self {
                    $($t::$v => $n),+
                }
            }
        }

        impl std::str::FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> std::result::Result<Self, String> {
                match s.trim() {
                    $($n => Ok($t::$v),)+
                    other => Err(format!("unknown {} {other:?} (expected one of {})", $what, Self::NAMES.join(", "))),
                }
            }
        }

        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

pub mod bench;
pub mod classify;
pub mod compute;
pub mod counterfactual;
pub mod engine;
pub mod error;
pub mod eval;
pub mod explain;
pub mod gp;
pub mod image;
pub mod job;
pub mod limits;
pub mod metrics;
pub mod model;
pub mod output;
pub mod paths;
pub mod progress;
pub mod refine;
pub mod video;

pub use engine::Engine;
pub use error::{BorexError, Result};
