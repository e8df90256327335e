//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

/// The GPU context, or `None` with a loud note. With `BOREX_REQUIRE_GPU=1`
/// (set by `.ci/run`) a missing adapter fails the test instead.
pub fn gpu_or_skip(test: &str) -> Option<Arc<borex::compute::gpu::GpuContext>> {
    match borex::compute::gpu::GpuContext::shared() {
        Ok(ctx) => {
            eprintln!("{test}: GPU adapter {}", ctx.describe());
            Some(ctx)
        }
        Err(e) => {
            if std::env::var("BOREX_REQUIRE_GPU").is_ok_and(|v| v == "1") {
                panic!("{test}: BOREX_REQUIRE_GPU=1 but no GPU adapter: {e}");
            }
            eprintln!("\n!!!!!!!! SKIPPED {test}: no wgpu adapter ({e}); the GPU path is NOT tested here !!!!!!!!\n");
            None
        }
    }
}

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures").join(name)
}

/// A bundled asset that `scripts/setup.sh` installs; the tests need it.
pub fn asset(path: PathBuf) -> PathBuf {
    assert!(path.exists(), "{} is missing: run scripts/setup.sh (the README's test command does)", path.display());
    path
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}
