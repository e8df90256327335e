//! The BOREx loop against an independent reference run (numpy + scikit-learn +
//! onnxruntime, scripts/make_borex_reference.py) on a tiny ONNX model and a
//! 24×24 grid with sizes [5, 3]: both sides use the same jitter draws, so every
//! query (row, column, size) must be the same, f and the model outputs must
//! agree to float rounding, the fitted length scales to the L-BFGS-B
//! tolerance, and the final normalised map to f32 accuracy. Run on the CPU
//! path and the GPU path, for the paper's loop (borex_reference.json) and for
//! the fitted prior mean with the point readout (borex_reference_fitted.json:
//! the affine mean, its box-averaged covariate and borex's UCB rescaling are
//! checked against a direct numpy computation).

mod common;

use borex::compute::cpu::CpuKernels;
use borex::compute::gpu::GpuKernels;
use borex::compute::{GpKernels, ImageKernels};
use borex::model::{Classifier, ModelOptions, Scorer};
use borex::refine::{refine, RefineConfig};
use common::{fixture, gpu_or_skip};
use ndarray::{Array2, Array3};
use serde_json::Value;

fn array<T: serde::de::DeserializeOwned>(v: &Value) -> T {
    serde_json::from_value(v.clone()).unwrap()
}

fn grid(v: &Value) -> Array2<f32> {
    let rows: Vec<Vec<f32>> = array(v);
    Array2::from_shape_fn((rows.len(), rows[0].len()), |(i, j)| rows[i][j])
}

fn check(name: &str, file: &str, image_kernels: &dyn ImageKernels, gp_kernels: &dyn GpKernels) {
    let fx: Value = serde_json::from_str(&std::fs::read_to_string(fixture(file)).unwrap()).unwrap();
    let model = Classifier::load(&ModelOptions::new(fixture(fx["model"].as_str().unwrap()))).unwrap();
    let image: Vec<Vec<Vec<f32>>> = array(&fx["image"]);
    let image = Array3::from_shape_fn((3, 24, 24), |(c, y, x)| image[c][y][x]);
    let prior = grid(&fx["prior"]);
    let s = &fx["settings"];
    let bounds: [f64; 2] = array(&s["length_scale_bounds"]);
    let cfg = RefineConfig {
        iters: s["iters"].as_u64().unwrap() as usize,
        sizes: Some(array(&s["sizes"])),
        kappa: s["kappa"].as_f64().unwrap() as f32,
        gain: s["gain"].as_f64().unwrap() as f32,
        prior_mean_abs: s["prior_mean_abs"].as_f64().unwrap() as f32,
        jitter: array(&s["jitter"]),
        alpha: s["alpha"].as_f64().unwrap(),
        init_length_scales: array(&s["init_length_scales"]),
        length_scale_bounds: (bounds[0], bounds[1]),
        jitter_draws: Some(array(&fx["jitter_draws"])),
        prior_mean: fx["prior_mean"].as_str().unwrap().parse().unwrap(),
        readout: fx["readout"].as_str().unwrap().parse().unwrap(),
        // The reference is the authors' loop: their objective and baseline.
        ..RefineConfig::paper()
    };
    let scorer = Scorer::new(&model, image_kernels, 2);
    let class = fx["class"].as_u64().unwrap() as usize;
    let out =
        refine(&scorer, gp_kernels, image.view(), class, prior.view(), &cfg, &borex::progress::NoProgress).unwrap();

    let want_prior = grid(&fx["scaled_prior"]);
    let dp = common::max_abs_diff(out.scaled_prior.as_slice().unwrap(), want_prior.as_slice().unwrap());
    assert!(dp < 1e-6, "{name}: scaled prior differs by {dp}");
    let queries = fx["queries"].as_array().unwrap();
    assert_eq!(out.observations.len(), queries.len());
    for (t, (o, q)) in out.observations.iter().zip(queries).enumerate() {
        let want =
            (q["row"].as_u64().unwrap() as u32, q["col"].as_u64().unwrap() as u32, q["size"].as_u64().unwrap() as u32);
        assert_eq!((o.row, o.col, o.size), want, "{name}: query {t}");
        let stored: [f64; 3] = array(&q["stored"]);
        for d in 0..3 {
            assert!(
                (o.stored[d] - stored[d]).abs() < 1e-12,
                "{name}: query {t} stored input {:?} vs {stored:?}",
                o.stored
            );
        }
        for (got, key) in [(o.p_inside, "p_inside"), (o.p_outside, "p_outside"), (o.f, "f")] {
            let w = q[key].as_f64().unwrap() as f32;
            assert!((got - w).abs() < 1e-5, "{name}: query {t} {key} {got} vs {w}");
        }
        let ls: [f64; 3] = array(&q["length_scales"]);
        for d in 0..3 {
            assert!(
                (o.length_scales[d] - ls[d]).abs() <= 1e-3 * ls[d],
                "{name}: query {t} length scales {:?} vs sklearn {ls:?}",
                o.length_scales
            );
        }
    }
    assert!(out.fit_failures.is_empty(), "{name}: {:?}", out.fit_failures);
    let want_map = grid(&fx["map"]);
    let dm = common::max_abs_diff(out.map.as_slice().unwrap(), want_map.as_slice().unwrap());
    assert!(dm < 1e-4, "{name}: map differs from the reference by {dm}");
}

const FIXTURES: [&str; 2] = ["borex_reference.json", "borex_reference_fitted.json"];

#[test]
fn cpu_path_replays_the_reference_loop() {
    for f in FIXTURES {
        check(&format!("cpu {f}"), f, &CpuKernels, &CpuKernels);
    }
}

#[test]
fn gpu_path_replays_the_reference_loop() {
    let Some(ctx) = gpu_or_skip("gpu_path_replays_the_reference_loop") else { return };
    let gpu = GpuKernels::new(ctx);
    for f in FIXTURES {
        check(&format!("gpu {f}"), f, &gpu, &gpu);
    }
}
