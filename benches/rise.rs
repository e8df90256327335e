//! RISE at scale on the bundled model: total time for N masks (generation,
//! masking, scoring, accumulation) against the model-only bound (the same N
//! forward passes of ready inputs), per compute path. Not a criterion bench:
//! one run of N = 4000 takes tens of seconds on a CPU.
//!
//!     cargo bench --bench rise             # N = 4000
//!     BOREX_RISE_N=1000 cargo bench --bench rise
//! Under `cargo test` it runs N = 32 as a smoke test.

mod common;

use borex::explain::{rise, RiseParams};
use borex::model::{Classifier, ModelOptions, Scorer};
use std::time::Instant;

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let n: usize =
        std::env::var("BOREX_RISE_N").ok().and_then(|v| v.parse().ok()).unwrap_or(if benching { 4000 } else { 32 });
    let path = borex::paths::default_model();
    if !path.exists() {
        eprintln!("{} missing: run scripts/setup.sh first", path.display());
        return;
    }
    let model = Classifier::load(&ModelOptions::new(path)).expect("bundled model loads");
    let image = borex::paths::sample_image("chelsea.png");
    let x = model.preprocess().apply(&borex::image::load_rgb(&image).expect("sample image")).tensor;
    let batch = 32;

    let bound = common::model_only_bound(&model, x.view(), n, batch);
    println!("RISE N={n}, 224×224, batch {batch}: model-only bound {bound:.2} s ({:.1} images/s)", n as f64 / bound);

    let paths = common::compute_paths();
    for (name, kernels) in &paths {
        let scorer = Scorer::new(&model, kernels.as_ref(), batch);
        let t = Instant::now();
        let map =
            rise(&scorer, x.view(), 282, &RiseParams { n, ..RiseParams::standard(0) }, &borex::progress::NoProgress)
                .expect("rise");
        let total = t.elapsed().as_secs_f64();
        assert!(map.iter().all(|v| v.is_finite()));
        println!("  {name:<50} total {total:.2} s, overhead ×{:.2} over the bound", total / bound);
    }
}
