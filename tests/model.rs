//! The classifier on tiny models whose outputs are known in closed form.

mod common;

use borex::model::{Classifier, ModelOptions};
use common::fixture;
use ndarray::{Array3, Array4, Axis};

// The weights scripts/make_test_models.py wrote into gap_linear_*.onnx.
const W: [[f32; 3]; 4] = [[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, -1.0], [0.5, 0.5, 0.5]];
const B: [f32; 4] = [0.1, -0.2, 0.3, 0.0];

fn expected_probabilities(x: &Array3<f32>) -> Vec<f32> {
    let pooled: Vec<f32> = x.axis_iter(Axis(0)).map(|c| c.mean().unwrap()).collect();
    let z: Vec<f32> = (0..4).map(|k| (0..3).map(|c| W[k][c] * pooled[c]).sum::<f32>() + B[k]).collect();
    let m = z.iter().cloned().fold(f32::MIN, f32::max);
    let e: Vec<f32> = z.iter().map(|v| (v - m).exp()).collect();
    let s: f32 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

fn inputs() -> Array4<f32> {
    Array4::from_shape_fn((3, 3, 8, 8), |(n, c, y, x)| {
        ((n + 1) as f32 * 0.3) * ((c as f32) - 1.0) + (y * x) as f32 / 64.0
    })
}

#[test]
fn logits_get_one_softmax_and_probabilities_none() {
    let batch = inputs();
    for name in ["gap_linear_logits.onnx", "gap_linear_probs.onnx"] {
        let model = Classifier::load(&ModelOptions::new(fixture(name))).unwrap();
        assert_eq!(model.num_classes(), Some(4));
        // A batch of 3 run one at a time and all at once gives the same rows.
        for max_batch in [1, 2, 3] {
            let p = model.probabilities(batch.view(), max_batch).unwrap();
            assert_eq!(p.dim(), (3, 4));
            for (n, row) in p.axis_iter(Axis(0)).enumerate() {
                let want = expected_probabilities(&batch.index_axis(Axis(0), n).to_owned());
                for (a, b) in row.iter().zip(&want) {
                    assert!((a - b).abs() < 1e-5, "{name}: {row} vs {want:?}");
                }
            }
        }
    }
}

#[test]
fn top_k_orders_by_probability() {
    let model = Classifier::load(&ModelOptions::new(fixture("gap_linear_logits.onnx"))).unwrap();
    let p = model.probabilities(inputs().view(), 4).unwrap();
    let top = model.top_k(p.row(2), 4);
    assert_eq!(top.len(), 4);
    assert!(top.windows(2).all(|w| w[0].probability >= w[1].probability));
    assert_eq!(top[0].label, None, "no labels given");
    let (argmax, _) = p.row(2).iter().enumerate().fold((0, f32::MIN), |b, (i, v)| if *v > b.1 { (i, *v) } else { b });
    assert_eq!(top[0].class, argmax);
}
