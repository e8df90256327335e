//! Shared by the plain benches: the model-only bound, i.e. the same number of
//! forward passes at the same batch size on ready inputs, with no masking or
//! GP work around them.

use borex::model::Classifier;
use ndarray::{Array4, ArrayView3, Axis};
use std::time::Instant;

/// Seconds for `n` forward passes of `x`-like inputs, `batch` per call.
pub fn model_only_bound(model: &Classifier, x: ArrayView3<f32>, n: usize, batch: usize) -> f64 {
    let (c, h, w) = x.dim();
    // A checkerboard of kept and removed cells, so the model sees masked-looking inputs.
    let ready = Array4::from_shape_fn((batch, c, h, w), |(k, c, y, xx)| {
        x[[c, y, xx]] * if (k + y / 16 + xx / 16) % 2 == 0 { 1.0 } else { 0.0 }
    });
    let t = Instant::now();
    let mut done = 0;
    while done < n {
        let m = batch.min(n - done);
        model.probabilities(ready.slice_axis(Axis(0), (0..m).into()), batch).expect("inference");
        done += m;
    }
    t.elapsed().as_secs_f64()
}

/// The compute paths to time: the CPU twin, and the wgpu path where an adapter exists.
pub fn compute_paths() -> Vec<(String, Box<dyn borex::compute::ImageKernels>)> {
    use borex::compute::gpu::{GpuContext, GpuKernels};
    let mut paths: Vec<(String, Box<dyn borex::compute::ImageKernels>)> =
        vec![("cpu".into(), Box::new(borex::compute::cpu::CpuKernels))];
    match GpuContext::shared() {
        Ok(ctx) => paths.push((format!("gpu ({})", ctx.describe()), Box::new(GpuKernels::new(ctx)))),
        Err(e) => eprintln!("no GPU adapter: {e}"),
    }
    paths
}
