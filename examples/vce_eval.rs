//! The evaluation behind docs/counterfactuals.md: sparse (l1.5) vs l2 visual
//! counterfactuals on the robust MNIST model (tests/fixtures), run by the same
//! Auto-Frank-Wolfe code with each ball's exact LMO.
//!
//!   cargo run --release --example vce_eval -- DIGITS EPS15,.. EPS2,.. [SWEEP_DIGITS SWEEP_EPS15,.. SWEEP_EPS2,..] OUT_DIR
//!
//! For every digit (held-out test digits, start = the true label) and each of
//! the 9 other classes: success (p_target > 0.5), ‖δ‖₀ (pixels with |δ| > 0.01),
//! ‖δ‖₂, ‖δ‖_1.5, time per counterfactual. Writes results.json and example
//! grids (rows: a digit of each class; columns: targets 0–9; diagonal: the digit).

use borex::counterfactual::{afw, lmo, AfwConfig, GradientModel, ModelObjective};
use borex::model::{Classifier, ModelOptions};
use ndarray::{Array2, Array3, Array4};
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn list(s: &str) -> Vec<f64> {
    s.split(',').map(|v| v.parse().expect("number")).collect()
}

struct Run {
    success: f64,
    l0: f64,
    l2: f64,
    l15: f64,
    ms_per_vce: f64,
    x: Vec<Vec<f32>>,
}

fn run(obj: &ModelObjective, x: &Array4<f32>, labels: &[usize], digits: &[usize], p: f64, eps: f64) -> Run {
    let items: Vec<(usize, usize)> =
        digits.iter().flat_map(|&i| (0..10).filter(move |&t| t != labels[i]).map(move |t| (i, t))).collect();
    let x0 = Array2::from_shape_fn((items.len(), 784), |(k, j)| x[[items[k].0, 0, j / 28, j % 28]]);
    let start: Vec<usize> = items.iter().map(|&(i, _)| labels[i]).collect();
    let targets: Vec<usize> = items.iter().map(|&(_, t)| t).collect();
    let cfg = AfwConfig { eps, p, steps: 75, restarts: 1, ..AfwConfig::default() };
    let t0 = Instant::now();
    let res = afw::run(obj, x0.view(), &start, &targets, &cfg, || {}).expect("AFW");
    let ms = t0.elapsed().as_secs_f64() * 1e3 / items.len() as f64;
    let n = items.len() as f64;
    let (mut s, mut l0, mut l2, mut l15) = (0.0, 0.0, 0.0, 0.0);
    for (k, r) in res.iter().enumerate() {
        let d: Vec<f32> = r.x.iter().zip(x0.row(k)).map(|(a, b)| a - b).collect();
        s += (r.probs[targets[k]] > 0.5) as u8 as f64;
        l0 += d.iter().filter(|v| v.abs() > 0.01).count() as f64;
        l2 += lmo::norm(&d, 2.0);
        l15 += lmo::norm(&d, 1.5);
    }
    eprintln!(
        "p {p} eps {eps}: {} items, success {:.3}, ‖δ‖₀ {:.1}, ‖δ‖₂ {:.3}, {ms:.1} ms/VCE",
        items.len(),
        s / n,
        l0 / n,
        l2 / n
    );
    Run {
        success: s / n,
        l0: l0 / n,
        l2: l2 / n,
        l15: l15 / n,
        ms_per_vce: ms,
        x: res.into_iter().map(|r| r.x).collect(),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n_digits: usize = args[0].parse().unwrap();
    let eps15 = list(&args[1]);
    let eps2 = list(&args[2]);
    let (sweep, out) = if args.len() == 7 {
        (Some((args[3].parse::<usize>().unwrap(), list(&args[4]), list(&args[5]))), PathBuf::from(&args[6]))
    } else {
        (None, PathBuf::from(&args[3]))
    };
    std::fs::create_dir_all(&out).unwrap();
    let model = Classifier::load(&ModelOptions::new(fixture("robust_mnist.onnx"))).unwrap();
    let grad = GradientModel::for_model(&model).unwrap();
    let obj = ModelObjective { grad: &grad, preprocess: model.preprocess(), channels: 1, batch: 256 };
    let imgs: Array3<u8> = ndarray_npy::read_npy(fixture("mnist_heldout_images.npy")).unwrap();
    let labels: ndarray::Array1<u8> = ndarray_npy::read_npy(fixture("mnist_heldout_labels.npy")).unwrap();
    let labels: Vec<usize> = labels.iter().map(|v| *v as usize).collect();
    let x = Array4::from_shape_fn((imgs.dim().0, 1, 28, 28), |(i, _, r, c)| imgs[[i, r, c]] as f32 / 255.0);
    let digits: Vec<usize> = (0..n_digits).collect();

    let mut main = vec![];
    for (p, grid) in [(1.5, &eps15), (2.0, &eps2)] {
        for &eps in grid.iter() {
            let r = run(&obj, &x, &labels, &digits, p, eps);
            main.push(json!({"p": p, "eps": eps, "digits": n_digits, "vces": n_digits * 9, "success": r.success, "l0": r.l0, "l2": r.l2, "l1.5": r.l15, "ms_per_vce": r.ms_per_vce}));
        }
    }
    let mut sweep_rows = vec![];
    if let Some((n, e15, e2)) = &sweep {
        let d: Vec<usize> = (0..*n).collect();
        for (p, grid) in [(1.5, e15), (2.0, e2)] {
            for &eps in grid.iter() {
                let r = run(&obj, &x, &labels, &d, p, eps);
                sweep_rows.push(json!({"p": p, "eps": eps, "digits": n, "success": r.success, "l0": r.l0, "l2": r.l2}));
            }
        }
    }
    // Example grids at the first ε of each main list: the first held-out digit of each class.
    let examples: Vec<usize> =
        (0..10).map(|c| labels.iter().position(|&l| l == c).expect("every class held out")).collect();
    for (p, eps, name) in [(1.5, eps15[0], "grid_l1.5.png"), (2.0, eps2[0], "grid_l2.png")] {
        let r = run(&obj, &x, &labels, &examples, p, eps);
        let cell: usize = 28 * 3;
        let mut img =
            image::GrayImage::from_pixel((10 * (cell + 2)) as u32, (10 * (cell + 2)) as u32, image::Luma([128]));
        let mut k = 0;
        for (row, &i) in examples.iter().enumerate() {
            for t in 0..10 {
                let px: Vec<f32> = if t == labels[i] {
                    (0..784).map(|j| x[[i, 0, j / 28, j % 28]]).collect()
                } else {
                    k += 1;
                    r.x[k - 1].clone()
                };
                for (j, v) in px.iter().enumerate() {
                    for dy in 0..3 {
                        for dx in 0..3 {
                            img.put_pixel(
                                (t * (cell + 2) + (j % 28) * 3 + dx) as u32,
                                (row * (cell + 2) + (j / 28) * 3 + dy) as u32,
                                image::Luma([(v * 255.0).round() as u8]),
                            );
                        }
                    }
                }
            }
        }
        img.save(out.join(name)).unwrap();
    }
    let result = json!({"model": "tests/fixtures/robust_mnist.onnx", "steps": 75, "change_threshold": 0.01, "main": main, "sweep": sweep_rows});
    std::fs::write(out.join("results.json"), serde_json::to_string_pretty(&result).unwrap()).unwrap();
    println!("{}", serde_json::to_string_pretty(&result).unwrap());
}
