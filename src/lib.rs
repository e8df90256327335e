//! borex: explain image classifiers and refine their saliency maps with
//! Bayesian optimisation (BOREx), on wgpu compute shaders and ONNX Runtime.
//!
//! Start at [`Engine`] ([`engine`]): one model session and one compute
//! backend, with `classify`, `explain`, `refine`, `refine_many`, `evaluate`
//! and `counterfactual` on plain values and typed results. What each stage
//! computes, with its defaults and references, is in docs/algorithms.md.
//!
//! Modules (their layering, lowest first, is docs/architecture.md's):
//! - [`engine`]: the entry point, a facade over the pipelines below;
//! - [`image`]: decode and preprocess images into model inputs; external maps;
//! - [`model`]: the ONNX Runtime classifier (execution providers, labels, batching, [`model::Scorer`]);
//! - [`compute`]: the kernel seam (the wgpu path and its CPU twin) and the device choice;
//! - [`gp`]: the Gaussian process (Matérn 3/2, L-BFGS-B fit) and the candidate grid;
//! - [`refine`]: the BOREx refinement loop (single, lockstep, bulk, clip) and the `refine` pipeline;
//! - [`explain`]: prior maps (RISE, occlusion, the CAM family, CAMERAS, undesirable pixels);
//! - [`counterfactual`]: sparse visual counterfactuals (Auto-Frank-Wolfe on an l_p ball);
//! - [`metrics`]: insertion / deletion, rank statistics;
//! - [`job`]: what every image job shares (typed job descriptions, preparing an image, choosing the class, scoring maps);
//! - [`output`]: atomic .npy / PNG / JSON / CSV writers, staged output folders, overlays;
//! - [`limits`]: the bound on every count and size a caller can ask for;
//! - [`paths`]: where the bundled assets are found;
//! - [`progress`]: the progress trait the library reports to;
//! - [`cancel`]: a per-thread check polled before every model batch (Ctrl-C in Python);
//! - [`report_types`]: every report and table row borex writes, in one place;
//! - [`error`]: [`BorexError`], one line naming the file or value at fault.
//!
//! The command line's batch jobs are library code too, compiled with the `jobs`
//! feature (on with `cli`, the default; off in the Python package) and left out
//! of these pages: `eval` (`borex eval`), `video` (frame and clip runs,
//! resumable output folders), `report` (`borex report`'s HTML pages),
//! `classify` (top-k of image files), `bench` (`borex bench`'s stage timers)
//! and `fuzz` (the fuzz targets' bodies). Their report types are in
//! [`report_types`].

#![warn(missing_docs)]

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

#[cfg(feature = "jobs")]
#[doc(hidden)]
pub mod bench;
pub mod cancel;
#[cfg(feature = "jobs")]
#[doc(hidden)]
pub mod classify;
pub mod compute;
pub mod counterfactual;
pub mod engine;
pub mod error;
#[cfg(feature = "jobs")]
#[doc(hidden)]
pub mod eval;
pub mod explain;
#[cfg(feature = "jobs")]
#[doc(hidden)]
pub mod fuzz;
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
#[cfg(feature = "jobs")]
#[doc(hidden)]
pub mod report;
#[cfg(feature = "jobs")]
#[doc(hidden)]
pub mod video;

pub use engine::Engine;

/// Every report and table row borex writes (each a serde type; the files are
/// written from them and read back through them), re-exported from the module
/// that makes it.
pub mod report_types {
    #[cfg(feature = "jobs")]
    pub use crate::bench::{BenchReport, Breakdown, StageResult};
    pub use crate::counterfactual::{CounterfactualReport, TargetReport};
    pub use crate::engine::MapScores;
    #[cfg(feature = "jobs")]
    pub use crate::eval::mosaic::MosaicSummary;
    #[cfg(feature = "jobs")]
    pub use crate::eval::summary::{ResultRow, Summary as EvalSummary};
    #[cfg(feature = "jobs")]
    pub use crate::eval::{Record as EvalRecord, RecordSettings};
    pub use crate::explain::pipeline::{ExplainReport, SanityReport};
    pub use crate::explain::undesirable::UndesirableDetails;
    pub use crate::job::{CausalScores, Curves, JobDescription};
    pub use crate::refine::bulk::SummaryRow;
    pub use crate::refine::pipeline::{PriorReport, RefineCurves, RefineReport, RefinedReport};
    #[cfg(feature = "jobs")]
    pub use crate::video::clip::{ClipEntry, ClipReport, ClipRow, ClipSettings};
    #[cfg(feature = "jobs")]
    pub use crate::video::resume::Record as UnitRecord;
    #[cfg(feature = "jobs")]
    pub use crate::video::run::FrameRow;
}
pub use error::{BorexError, Result};
