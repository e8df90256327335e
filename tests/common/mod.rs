//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;

/// The GPU context. A missing adapter fails the test, so a plain `cargo test`
/// cannot pass with the GPU path untested; `BOREX_ALLOW_NO_GPU=1` turns that
/// into a loud skip (`None`) for machines without any wgpu adapter.
pub fn gpu_or_skip(test: &str) -> Option<Arc<borex::compute::gpu::GpuContext>> {
    match borex::compute::gpu::GpuContext::shared() {
        Ok(ctx) => {
            eprintln!("{test}: GPU adapter {}", ctx.describe());
            Some(ctx)
        }
        Err(e) if allow_no_gpu() => {
            eprintln!("\n!!!!!!!! SKIPPED {test}: no wgpu adapter ({e}) and BOREX_ALLOW_NO_GPU=1; the GPU path is NOT tested here !!!!!!!!\n");
            None
        }
        Err(e) => panic!("{test}: no GPU adapter ({e}); install Mesa's software driver (scripts/setup.sh) or set BOREX_ALLOW_NO_GPU=1 to skip"),
    }
}

fn allow_no_gpu() -> bool {
    std::env::var("BOREX_ALLOW_NO_GPU").is_ok_and(|v| v == "1")
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

/// Run the `borex` binary with `args` and extra environment variables.
pub fn run_borex(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_borex"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("borex runs")
}

/// The command failed with exit code 1 and a one-line error containing every `needle`, without panicking.
pub fn assert_error(out: &Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "expected failure, got {:?}; stderr: {err}", out.status);
    assert!(!err.contains("panicked"), "panic: {err}");
    let line = err.lines().find(|l| l.starts_with("error: ")).unwrap_or_else(|| panic!("no error line in {err:?}"));
    for n in needles {
        assert!(line.contains(n), "{n:?} not in {line:?}");
    }
}
