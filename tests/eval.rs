//! Evaluation: insertion/deletion against an independent numpy implementation
//! (scripts/make_causal_fixture.py), on the CPU kernels and their GPU twins.

mod common;

use borex::compute::{cpu::CpuKernels, gpu::GpuKernels, ImageKernels};
use borex::metrics::{causal_curve, CausalMetric, InsertionStart};
use borex::model::{Classifier, ModelOptions, Scorer};
use ndarray::{Array2, Array3};
use serde_json::Value;

fn causal_matches_numpy(kernels: &dyn ImageKernels, who: &str) {
    let f: Value = serde_json::from_str(&std::fs::read_to_string(common::fixture("causal_numpy.json")).unwrap()).unwrap();
    let img: Vec<Vec<Vec<f32>>> = serde_json::from_value(f["image"].clone()).unwrap();
    let map: Vec<Vec<f32>> = serde_json::from_value(f["map"].clone()).unwrap();
    let image = Array3::from_shape_fn((img.len(), img[0].len(), img[0][0].len()), |(c, y, x)| img[c][y][x]);
    let map = Array2::from_shape_fn((map.len(), map[0].len()), |(y, x)| map[y][x]);
    let model = Classifier::load(&ModelOptions::new(common::fixture("gap_linear_probs.onnx"))).unwrap();
    // Batch 5: 17 points span four model calls, the last one partial.
    let scorer = Scorer::new(&model, kernels, 5);
    let cases = f["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 6);
    for c in cases {
        let class = c["class"].as_u64().unwrap() as usize;
        let (metric, start) = match c["curve"].as_str().unwrap() {
            "deletion" => (CausalMetric::Deletion, InsertionStart::Blur),
            "insertion_blur" => (CausalMetric::Insertion, InsertionStart::Blur),
            "insertion_zero" => (CausalMetric::Insertion, InsertionStart::Zero),
            other => panic!("unknown curve {other}"),
        };
        let curve = causal_curve(&scorer, kernels, image.view(), map.view(), class, metric, start).unwrap();
        let want: Vec<f32> = serde_json::from_value(c["scores"].clone()).unwrap();
        assert!(common::max_abs_diff(&curve.scores, &want) < 1e-6, "{who} {} class {class}: {:?} vs {want:?}", c["curve"], curve.scores);
        let auc = c["auc"].as_f64().unwrap();
        assert!((curve.auc as f64 - auc).abs() < 1e-6, "{who} {} class {class}: AUC {} vs numpy {auc}", c["curve"], curve.auc);
    }
}

#[test]
fn insertion_deletion_match_numpy_on_cpu() {
    causal_matches_numpy(&CpuKernels, "cpu");
}

#[test]
fn insertion_deletion_match_numpy_on_gpu() {
    if let Some(ctx) = common::gpu_or_skip("insertion_deletion_match_numpy_on_gpu") {
        causal_matches_numpy(&GpuKernels::new(ctx), "gpu");
    }
}
