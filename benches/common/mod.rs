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
    let ready = Array4::from_shape_fn((batch, c, h, w), |(k, c, y, xx)| x[[c, y, xx]] * if (k + y / 16 + xx / 16) % 2 == 0 { 1.0 } else { 0.0 });
    let t = Instant::now();
    let mut done = 0;
    while done < n {
        let m = batch.min(n - done);
        model.probabilities(ready.slice_axis(Axis(0), (0..m).into()), batch).expect("inference");
        done += m;
    }
    t.elapsed().as_secs_f64()
}
