//! The antithetic continuation of a RISE prior (src/explain/antithetic.rs) against
//! an independent numpy computation (scripts/make_antithetic_fixture.py): the
//! covariance form of the estimator over borex's masks, with the tiny
//! GAP-linear model written out in numpy, on the CPU and GPU paths.

mod common;

use borex::compute::cpu::CpuKernels;
use borex::compute::gpu::GpuKernels;
use borex::explain::antithetic::{antithetic, plan};
use borex::explain::RiseParams;
use borex::model::{Classifier, ModelOptions, Scorer};
use borex::progress::NoProgress;
use common::{fixture, gpu_or_skip};
use ndarray::Array3;

fn image() -> Array3<f32> {
    Array3::from_shape_fn((3, 24, 20), |(c, y, x)| ((c * 7 + y * 3 + x * 5) % 11) as f32 / 5.0 - 0.8)
}

#[test]
fn antithetic_matches_numpy() {
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("antithetic_numpy.json")).unwrap()).unwrap();
    let model = Classifier::load(&ModelOptions::new(fixture("gap_linear_logits.onnx"))).unwrap();
    let x = image();
    let mut paths: Vec<(&str, Box<dyn borex::compute::ImageKernels>)> = vec![("cpu", Box::new(CpuKernels))];
    if let Some(ctx) = gpu_or_skip("antithetic_matches_numpy") {
        paths.push(("gpu", Box::new(GpuKernels::new(ctx))));
    }
    for case in doc["cases"].as_array().unwrap() {
        let u = |k: &str| case[k].as_u64().unwrap() as usize;
        let params = RiseParams { n: u("n"), s: u("s"), p: case["p"].as_f64().unwrap() as f32, seed: u("seed") as u64 };
        let want: Vec<f32> = case["map"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(scale > 1e-3, "a flat reference map tests nothing");
        for (name, kernels) in &paths {
            // Batches of 5 cut through the prior's masks and the new pairs.
            let scorer = Scorer::new(&model, kernels.as_ref(), 5);
            let got = antithetic(&scorer, x.view(), u("class"), &params, u("extra"), &NoProgress).unwrap();
            assert_eq!((got.complements, got.new_pairs), (u("complements"), u("new_pairs")), "{name}");
            assert_eq!(got.extra_evaluations, u("complements") + 2 * u("new_pairs"));
            // The prior's masks again plus the extra evaluations, nothing more.
            assert_eq!(scorer.evaluations() as usize, u("n") + got.extra_evaluations, "{name}");
            let d = common::max_abs_diff(got.map.as_slice().unwrap(), &want);
            assert!(d < 1e-4 * scale, "{name} case {case:?}: differs from numpy by {d} (scale {scale})");
        }
    }
}

#[test]
fn plan_spends_complements_first_then_pairs() {
    assert_eq!(plan(100, 100), (100, 0));
    assert_eq!(plan(100, 40), (40, 0));
    assert_eq!(plan(100, 151), (100, 25));
    assert_eq!(plan(10, 25), (10, 7));
}

#[test]
fn antithetic_needs_an_evaluation() {
    let model = Classifier::load(&ModelOptions::new(fixture("gap_linear_logits.onnx"))).unwrap();
    let scorer = Scorer::new(&model, &CpuKernels, 4);
    let params = RiseParams { n: 4, s: 3, p: 0.5, seed: 0 };
    let e = antithetic(&scorer, image().view(), 1, &params, 0, &NoProgress).unwrap_err().to_string();
    assert!(e.contains("at least one more evaluation"), "{e}");
}
