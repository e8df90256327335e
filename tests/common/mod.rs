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

/// Brute-force insertion/deletion AUC (SPEC §3, written out here rather than
/// taken from borex::metrics): pixels in descending saliency order (ties: later
/// pixel first, numpy's flip(argsort)), W pixels per step; step i shows `to` on
/// the first i·W pixels and `from` elsewhere; P_class of every step through the
/// model; trapezoid AUC over [0, 1].
pub fn causal_auc(
    model: &borex::model::Classifier,
    from: ndarray::ArrayView3<f32>,
    to: ndarray::ArrayView3<f32>,
    map: ndarray::ArrayView2<f32>,
    class: usize,
) -> f64 {
    let (c, h, w) = from.dim();
    let flat: Vec<f32> = map.iter().copied().collect();
    let mut order: Vec<usize> = (0..h * w).collect();
    order.sort_by(|&a, &b| flat[b].partial_cmp(&flat[a]).unwrap().then(b.cmp(&a)));
    let steps = (h * w).div_ceil(w);
    let mut scores = Vec::with_capacity(steps + 1);
    let mut current = from.to_owned();
    let mut batch = Vec::new();
    for i in 0..=steps {
        if i > 0 {
            for &p in &order[(i - 1) * w..(i * w).min(h * w)] {
                for ch in 0..c {
                    current[[ch, p / w, p % w]] = to[[ch, p / w, p % w]];
                }
            }
        }
        batch.push(current.clone());
        if batch.len() == 25 || i == steps {
            let views: Vec<_> = batch.iter().map(|b| b.view()).collect();
            let stacked = ndarray::stack(ndarray::Axis(0), &views).unwrap();
            let p = model.probabilities(stacked.view(), 25).unwrap();
            scores.extend(p.column(class).iter().map(|v| *v as f64));
            batch.clear();
        }
    }
    let n = scores.len();
    (scores.iter().sum::<f64>() - scores[0] / 2.0 - scores[n - 1] / 2.0) / (n - 1) as f64
}

/// Run `ffmpeg -v error -y ARGS`, failing the test with its message.
pub fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg is installed (scripts/setup.sh)");
    assert!(out.status.success(), "ffmpeg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// The frames of a video's first stream, counted by decoding (ffprobe -count_packets).
pub fn frame_count(video: &std::path::Path) -> u64 {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-count_packets",
            "-show_entries",
            "stream=nb_read_packets",
            "-of",
            "csv=p=0",
        ])
        .arg(video)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// A finished `borex video` folder: no `parts/` and no temporary files left.
pub fn no_leftovers(dir: &std::path::Path) {
    for sub in ["", "maps"] {
        let d = dir.join(sub);
        if d.exists() {
            for e in std::fs::read_dir(&d).unwrap() {
                let n = e.unwrap().file_name().to_string_lossy().into_owned();
                assert!(!n.ends_with(".tmp") && n != "parts", "{}: left {n}", d.display());
            }
        }
    }
}
