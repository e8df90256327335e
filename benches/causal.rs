//! Insertion + deletion of one 224×224 map (2 × 225 = 450 model evaluations)
//! on the bundled model: batched (32 per call) vs unbatched (1), per compute
//! path, against the model-only bound (the same 450 forward passes of ready
//! inputs at the same batch size). Not a criterion bench: one run takes
//! seconds on a CPU; ratios within one run are what to compare.
//!
//!     cargo bench --bench causal
//! Under `cargo test` it runs one batched CPU pass as a smoke test.

mod common;

use borex::metrics::{causal_curve, CausalMetric, InsertionStart};
use borex::model::{Classifier, ModelOptions, Scorer};
use ndarray::Array2;
use std::time::Instant;

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let path = borex::paths::default_model();
    if !path.exists() {
        eprintln!("{} missing: run scripts/setup.sh first", path.display());
        return;
    }
    let model = Classifier::load(&ModelOptions::new(path)).expect("bundled model loads");
    let x = model
        .preprocess()
        .apply(&borex::image::load_rgb(&borex::paths::sample_image("chelsea.png")).expect("sample image"))
        .tensor;
    let map = Array2::from_shape_fn((224, 224), |(y, xx)| {
        ((y as f32 - 100.0).powi(2) + (xx as f32 - 120.0).powi(2)).sqrt().mul_add(0.1, 1.0).recip()
    });
    let n = 450;
    let batches: &[usize] = if benching { &[32, 1] } else { &[32] };
    for &batch in batches {
        let bound = common::model_only_bound(&model, x.view(), n, batch);
        println!(
            "insertion + deletion, 224×224, batch {batch}: model-only bound {bound:.2} s ({:.1} images/s)",
            n as f64 / bound
        );
        let mut paths = common::compute_paths();
        // Under `cargo test` the CPU path alone: the llvmpipe run is slow.
        if !benching {
            paths.truncate(1);
        }
        for (name, kernels) in &paths {
            let scorer = Scorer::new(&model, kernels.as_ref(), batch);
            let t = Instant::now();
            let ins = causal_curve(
                &scorer,
                kernels.as_ref(),
                x.view(),
                map.view(),
                282,
                CausalMetric::Insertion,
                InsertionStart::Blur,
            )
            .expect("insertion");
            let del = causal_curve(
                &scorer,
                kernels.as_ref(),
                x.view(),
                map.view(),
                282,
                CausalMetric::Deletion,
                InsertionStart::Blur,
            )
            .expect("deletion");
            let total = t.elapsed().as_secs_f64();
            assert_eq!(scorer.evaluations(), n as u64);
            assert!(ins.auc.is_finite() && del.auc.is_finite());
            println!("  {name:<50} total {total:.2} s, overhead ×{:.2} over the bound", total / bound);
        }
    }
}
