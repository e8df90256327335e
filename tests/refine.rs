//! `borex refine` end to end on the bundled model: outputs, reproducibility,
//! GPU vs CPU, full resolution, and every bad input the issue lists.

mod common;

use borex::compute::cpu::CpuKernels;
use borex::compute::{Baseline, ImageKernels};
use borex::model::{Classifier, ModelOptions};
use common::{assert_error, asset, gpu_or_skip, run_borex};
use ndarray::{Array2, Array3};
use std::path::{Path, PathBuf};
use std::process::Output;

fn borex(args: &[&str], env: &[(&str, &str)]) -> Output {
    run_borex(args, env)
}

fn chelsea() -> String {
    asset(borex::paths::sample_image("chelsea.png")).to_str().unwrap().to_string()
}

fn ok(out: &Output) {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
}

fn npy(p: &Path) -> Array2<f32> {
    ndarray_npy::read_npy(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn mean_abs(a: &Array2<f32>) -> f64 {
    a.iter().map(|v| v.abs() as f64).sum::<f64>() / a.len() as f64
}

fn matern32(a: &[f64; 3], b: &[f64; 3], ls: &[f64; 3]) -> f64 {
    let t = 3f64.sqrt() * (0..3).map(|d| ((a[d] - b[d]) / ls[d]).powi(2)).sum::<f64>().sqrt();
    (1.0 + t) * (-t).exp()
}

/// The refined map at (y, x) from the report alone, in f64: the GP on the
/// observations' stored inputs and residuals f − S0[r, q] with the reported
/// length scales, its mean plus S0 over every in-image centre of the (2s+1)²
/// window, averaged over the sizes.
fn brute_force_refined(r: &serde_json::Value, s0: &Array2<f32>, y: usize, x: usize) -> f64 {
    let obs = r["observations"].as_array().unwrap();
    let xs: Vec<[f64; 3]> = obs.iter().map(|o| serde_json::from_value(o["stored"].clone()).unwrap()).collect();
    let ys: Vec<f64> = obs
        .iter()
        .map(|o| {
            o["f"].as_f64().unwrap()
                - s0[[o["row"].as_u64().unwrap() as usize, o["col"].as_u64().unwrap() as usize]] as f64
        })
        .collect();
    let ls: [f64; 3] = serde_json::from_value(r["refined"]["length_scales"].clone()).unwrap();
    let alpha = r["settings"]["refine"]["alpha"].as_f64().unwrap();
    let sizes: Vec<usize> = serde_json::from_value(r["settings"]["grid"]["sizes"].clone()).unwrap();
    let n = xs.len();
    let k = nalgebra::DMatrix::from_fn(n, n, |i, j| matern32(&xs[i], &xs[j], &ls) + if i == j { alpha } else { 0.0 });
    let w = k.cholesky().unwrap().solve(&nalgebra::DVector::from_column_slice(&ys));
    let (h, wd) = s0.dim();
    let per_size: f64 = sizes
        .iter()
        .map(|&s| {
            let (r0, r1, c0, c1) = (y.saturating_sub(s), (y + s + 1).min(h), x.saturating_sub(s), (x + s + 1).min(wd));
            let mut sum = 0.0;
            for rr in r0..r1 {
                for cc in c0..c1 {
                    let p = [rr as f64, cc as f64, s as f64];
                    sum += s0[[rr, cc]] as f64 + (0..n).map(|j| w[j] * matern32(&p, &xs[j], &ls)).sum::<f64>();
                }
            }
            sum / ((r1 - r0) * (c1 - c0)) as f64
        })
        .sum();
    per_size / sizes.len() as f64
}

/// refined.npy at `points` against [`brute_force_refined`] plus `extra` there,
/// within 1e-4 of the map's largest |value|.
fn assert_brute_force(
    r: &serde_json::Value,
    s0: &Array2<f32>,
    refined: &Array2<f32>,
    points: &[(usize, usize)],
    extra: impl Fn(usize, usize) -> f64,
) {
    let scale = refined.iter().fold(0.0f32, |m, v| m.max(v.abs())) as f64;
    for &(y, x) in points {
        let want = brute_force_refined(r, s0, y, x) + extra(y, x);
        assert!(
            (refined[[y, x]] as f64 - want).abs() <= 1e-4 * scale,
            "refined ({y}, {x}) = {} vs brute force {want}",
            refined[[y, x]]
        );
    }
}

fn report(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap()
}

#[test]
fn writes_maps_overlay_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let started = std::time::Instant::now();
    // Box queries named: with a RISE prior the default objective is antithetic (no queries).
    ok(&borex(
        &["--device", "cpu", "-q", "refine", &chelsea(), "-o", out.to_str().unwrap(), "--objective", "matched"],
        &[],
    ));
    let wall_ms = started.elapsed().as_secs_f64() * 1e3;
    let (prior, refined) = (npy(&out.join("prior.npy")), npy(&out.join("refined.npy")));
    assert_eq!(prior.dim(), (224, 224));
    assert_eq!(refined.dim(), (224, 224));
    // prior.npy is the prior as the GP used it: scaled to mean |S0| = 0.1.
    assert!((mean_abs(&prior) - 0.1).abs() < 1e-6, "mean |prior| = {}", mean_abs(&prior));
    let overlay = image::open(out.join("overlay.png")).unwrap();
    assert_eq!((overlay.width(), overlay.height()), (3 * 224 + 2 * 4, 224 + 4 + 12));
    let r = report(&out);
    let class = r["class"].as_u64().unwrap();
    assert!((281..=285).contains(&class), "chelsea is a cat: {class}");
    assert_eq!(r["label"], "tiger cat");
    assert_eq!(r["prior"]["method"], "rise-fast");
    // refined.npy is the posterior mean of the reported observations over prior.npy, window-averaged.
    assert_brute_force(
        &r,
        &prior,
        &refined,
        &[(0, 0), (0, 223), (223, 111), (112, 112), (40, 190), (150, 31)],
        |_, _| 0.0,
    );
    // The refined map's insertion/deletion AUCs against a brute-force curve through the model.
    let model = Classifier::load(&ModelOptions::new(asset(borex::paths::default_model()))).unwrap();
    let x = model.preprocess().apply(&borex::image::load_rgb(Path::new(&chelsea())).unwrap()).tensor;
    let metric_class = r["metrics"]["class"].as_u64().unwrap() as usize;
    let blurred = CpuKernels.baseline(x.view(), Baseline::Blur).unwrap();
    let zero = Array3::zeros(x.raw_dim());
    let deletion = common::causal_auc(&model, x.view(), zero.view(), refined.view(), metric_class);
    let insertion = common::causal_auc(&model, blurred.view(), x.view(), refined.view(), metric_class);
    for (k, want) in [("deletion", deletion), ("insertion", insertion)] {
        let got = r["refined"][k].as_f64().unwrap();
        assert!((got - want).abs() < 1e-4, "refined {k}: report {got} vs brute force {want}");
    }
    assert_eq!(r["refined"]["fit_failures"], 0);
    // The default objective is not the paper's: the report says so and names it.
    assert_eq!(r["settings"]["preset"], "default");
    assert_eq!(r["settings"]["refine"]["objective"], "matched");
    assert_eq!(r["settings"]["refine"]["iters"], 50);
    assert_eq!(r["device"]["gp"], "cpu");
    assert_eq!(r["device"]["ep"], "cpu");
    assert_eq!(r["observations"].as_array().unwrap().len(), 50);
    // 1 clean pass + 100 RISE masks + 2 × 50 queries + 4 curves × 225 points.
    assert_eq!(r["model_evaluations"], 1 + 100 + 100 + 900);
    // Every stage took time, and the stages fit inside the total.
    let t = |k: &str| r["timings_ms"][k].as_f64().unwrap();
    let stages = ["prior", "model", "gp_fit", "posterior", "metrics"];
    for k in stages {
        assert!(t(k) > 0.0, "timing {k} = {}", t(k));
    }
    let sum: f64 = stages.iter().map(|k| t(k)).sum();
    assert!(sum <= t("total") + 0.05, "stages {sum} ms > total {} ms", t("total"));
    // Milliseconds, not another unit: the total fits inside the process's wall time as this test measured it,
    // and the stages are most of it (1101 model evaluations dominate; the rest is loading and writing).
    assert!(t("total") <= wall_ms, "total {} ms > the process's {wall_ms} ms", t("total"));
    assert!(sum >= 0.5 * t("total"), "stages {sum} ms are under half the total {} ms", t("total"));
    // No temporary files left behind.
    let mut names: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["curves.json", "overlay.png", "prior.npy", "refined.npy", "report.json"]);
}

/// A short refine (6 queries, no metrics) with extra arguments (global flags may follow the subcommand).
fn quick(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let chelsea = chelsea();
    let mut args = vec!["-q", "refine", &chelsea, "-o", out.to_str().unwrap(), "--iters", "6", "--no-metrics"];
    args.extend(extra);
    // These tests are about box queries: named, since a RISE prior's default objective is antithetic.
    if !extra.contains(&"--objective") {
        args.extend(["--objective", "matched"]);
    }
    ok(&borex(&args, &[]));
    out
}

#[test]
fn the_paper_objective_is_selectable_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("paper");
    ok(&borex(
        &[
            "--device",
            "cpu",
            "-q",
            "refine",
            &chelsea(),
            "-o",
            out.to_str().unwrap(),
            "--objective",
            "paper",
            "--no-metrics",
        ],
        &[],
    ));
    let r = report(&out);
    assert_eq!(r["settings"]["preset"], "paper");
    assert_eq!(r["settings"]["refine"]["objective"], "paper");
    // Any other knob makes it custom, and the report still names the objective.
    let q = quick(dir.path(), "q", &["--device", "cpu", "--objective", "paper"]);
    assert_eq!(report(&q)["settings"]["preset"], "custom");
    assert_eq!(report(&q)["settings"]["refine"]["objective"], "paper");
}

#[test]
fn same_seed_same_map_other_seed_other_map() {
    let dir = tempfile::tempdir().unwrap();
    let a = quick(dir.path(), "a", &["--device", "cpu", "--seed", "3"]);
    let b = quick(dir.path(), "b", &["--device", "cpu", "--seed", "3"]);
    let c = quick(dir.path(), "c", &["--device", "cpu", "--seed", "4"]);
    assert_eq!(std::fs::read(a.join("refined.npy")).unwrap(), std::fs::read(b.join("refined.npy")).unwrap());
    assert_ne!(npy(&a.join("refined.npy")), npy(&c.join("refined.npy")));
}

#[test]
fn gpu_and_cpu_refines_agree() {
    if gpu_or_skip("gpu_and_cpu_refines_agree").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let a = quick(dir.path(), "cpu", &["--device", "cpu"]);
    let b = quick(dir.path(), "gpu", &["--device", "gpu"]);
    let (ra, rb) = (report(&a), report(&b));
    assert_eq!(rb["device"]["gp"], "gpu");
    assert_eq!(ra["observations"], rb["observations"], "same queries on both paths");
    let (ma, mb) = (npy(&a.join("refined.npy")), npy(&b.join("refined.npy")));
    let d = ma.iter().zip(mb.iter()).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    assert!(d <= 1e-3, "GPU vs CPU refined maps differ by {d}");
}

#[test]
fn full_resolution_map_has_the_original_size() {
    let dir = tempfile::tempdir().unwrap();
    // coffee.png is 600×400 (W×H).
    let coffee = asset(borex::paths::sample_image("coffee.png"));
    let out = dir.path().join("full");
    ok(&borex(
        &[
            "--device",
            "cpu",
            "-q",
            "refine",
            coffee.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--iters",
            "4",
            "--no-metrics",
            "--full-res",
        ],
        &[],
    ));
    let full = npy(&out.join("refined_full.npy"));
    assert_eq!(full.dim(), (400, 600));
    assert!(full.iter().all(|v| v.is_finite()));
    // 600×400 → 384×256 (short side 256), centre crop 224 at (80, 16): the model saw
    // the original's 350×350 pixels from (125, 25); the rest, 1 − 350²/(600·400), is extrapolated.
    let r = report(&out);
    assert_eq!(r["full_res"]["crop"], serde_json::json!({"rows": [25, 375], "cols": [125, 475]}));
    assert!(
        (r["full_res"]["extrapolated_fraction"].as_f64().unwrap() - (1.0 - 350.0 * 350.0 / 240_000.0)).abs() < 1e-9
    );
    let notes = r["notes"].as_array().unwrap();
    assert!(
        notes.iter().any(|n| n.as_str().unwrap().contains("rows 25..375 × columns 125..475")
            && n.as_str().unwrap().contains("49% is extrapolated")),
        "{notes:?}"
    );
    // The centre of the original image is the centre of the model input.
    let model = npy(&out.join("refined.npy"));
    assert!(
        (full[[200, 300]] - model[[112, 112]]).abs()
            < 0.05 * model.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6)
    );
}

#[test]
fn prior_of_another_shape_is_resized_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    let cone = |h: usize, w: usize| {
        Array2::from_shape_fn((h, w), |(y, x)| {
            ((y as f64 - h as f64 / 2.0).powi(2) + (x as f64 - w as f64 / 2.0).powi(2)).sqrt()
        })
    };
    // 7×7 (a CAM's resolution) has the input's aspect ratio: stretched, with a note.
    let coarse = dir.path().join("coarse.npy");
    ndarray_npy::write_npy(&coarse, &cone(7, 7)).unwrap();
    let o = borex(
        &[
            "--device",
            "cpu",
            "-q",
            "refine",
            &chelsea(),
            "-o",
            out.to_str().unwrap(),
            "--prior",
            coarse.to_str().unwrap(),
            "--iters",
            "3",
            "--no-metrics",
        ],
        &[],
    );
    ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("is 7×7, a map of the model input's shape at another resolution: stretched to 224×224"),
        "{err}"
    );
    let written = npy(&out.join("prior.npy"));
    assert_eq!(written.dim(), (224, 224));
    assert!((mean_abs(&written) - 0.1).abs() < 1e-6, "prior.npy is in the GP's units (mean |S0| = 0.1)");
    assert!(report(&out)["prior"]["method"].as_str().unwrap().starts_with("file:"));
    // 100×120 is neither the input's shape nor the image's (300×451): refused, nothing written.
    let wrong = dir.path().join("wrong.npy");
    ndarray_npy::write_npy(&wrong, &cone(100, 120)).unwrap();
    let out2 = dir.path().join("o2");
    let o = borex(
        &[
            "--device",
            "cpu",
            "-q",
            "refine",
            &chelsea(),
            "-o",
            out2.to_str().unwrap(),
            "--prior",
            wrong.to_str().unwrap(),
            "--iters",
            "3",
            "--no-metrics",
        ],
        &[],
    );
    assert_error(&o, &["is 100×120: expected the model input's size 224×224", "the image's 300×451"]);
    assert!(!out2.exists());
}

#[test]
fn bad_priors_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let zero = dir.path().join("zero.npy");
    ndarray_npy::write_npy(&zero, &Array2::<f32>::zeros((224, 224))).unwrap();
    let nan = dir.path().join("nan.npy");
    let mut m = Array2::<f32>::ones((224, 224));
    m[[3, 4]] = f32::NAN;
    ndarray_npy::write_npy(&nan, &m).unwrap();
    let out = dir.path().join("o");
    let run = |p: &Path| {
        borex(
            &[
                "--device",
                "cpu",
                "refine",
                &chelsea(),
                "-o",
                out.to_str().unwrap(),
                "--prior",
                p.to_str().unwrap(),
                "--no-metrics",
            ],
            &[],
        )
    };
    assert_error(&run(&zero), &["prior map is all zero"]);
    assert_error(&run(&nan), &["non-finite"]);
    assert_error(&run(&dir.path().join("missing.npy")), &["missing.npy"]);
    let text = dir.path().join("t.npy");
    std::fs::write(&text, "not numpy").unwrap();
    assert_error(&run(&text), &["t.npy", "not a valid .npy file"]);
}

#[test]
fn bad_arguments_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    let o = out.to_str().unwrap();
    assert_error(&borex(&["refine", &chelsea(), "-o", o, "--iters", "0"], &[]), &["--iters 0 is out of range"]);
    // Flag values are checked by clap (exit status 2, usage hint), naming the choices.
    for (flag, value, needle) in [
        ("--objective", "best", "unknown objective \"best\" (expected one of paper, matched"),
        ("--readout", "sharp", "unknown readout"),
    ] {
        let out = borex(&["refine", &chelsea(), "-o", o, flag, value], &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.lines().next().unwrap().contains(needle), "{err}");
    }
    assert_error(
        &borex(&["--device", "cpu", "refine", &chelsea(), "-o", o, "--class", "1000", "--no-metrics"], &[]),
        &["class 1000 is out of range", "1000 classes"],
    );
    assert_error(
        &borex(&["--device", "cpu", "refine", &chelsea(), "-o", o, "--class", "tabb", "--no-metrics"], &[]),
        &["unknown class \"tabb\"", "near matches", "281 (tabby)"],
    );
    let file = dir.path().join("afile");
    std::fs::write(&file, "x").unwrap();
    assert_error(&borex(&["refine", &chelsea(), "-o", file.to_str().unwrap()], &[]), &["is an existing file"]);
    assert_error(
        &borex(
            &["--device", "gpu", "refine", &chelsea(), "-o", o, "--no-metrics"],
            &[("VK_ICD_FILENAMES", "/nonexistent/icd.json"), ("VK_DRIVER_FILES", "/nonexistent/icd.json")],
        ),
        &["no GPU adapter found", "mesa-vulkan-drivers", "--device cpu"],
    );
    assert!(!out.exists(), "a failed run creates no output folder");
}

#[test]
fn class_by_name_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let out = quick(dir.path(), "n", &["--device", "cpu", "--class", "Egyptian cat"]);
    assert_eq!(report(&out)["class"], 285);
}

#[test]
fn any_explainer_can_be_the_prior() {
    let dir = tempfile::tempdir().unwrap();
    for method in ["gradcam", "occlusion"] {
        let out = quick(dir.path(), method, &["--device", "cpu", "--prior", method]);
        let r = report(&out);
        assert_eq!(r["prior"]["method"], method);
        assert_eq!(r["settings"]["prior"]["method"], method);
        let prior = npy(&out.join("prior.npy"));
        assert!((mean_abs(&prior) - 0.1).abs() < 1e-6, "{method}: mean |prior| = {}", mean_abs(&prior));
        if method == "gradcam" {
            // The same map as `borex explain -m gradcam`, scaled to mean |S0| = 0.1.
            let e = dir.path().join("explain-gradcam");
            ok(&borex(
                &[
                    "--device",
                    "cpu",
                    "-q",
                    "explain",
                    &chelsea(),
                    "-m",
                    "gradcam",
                    "--no-metrics",
                    "-o",
                    e.to_str().unwrap(),
                ],
                &[],
            ));
            let map = npy(&e.join("map.npy"));
            let want = map.mapv(|v| (v as f64 * 0.1 / mean_abs(&map)) as f32);
            let d = common::max_abs_diff(prior.as_slice().unwrap(), want.as_slice().unwrap());
            assert!(d < 1e-6, "prior.npy vs explain's map scaled: {d}");
        }
    }
    // An unknown name that is not a file either is refused up front.
    let o = borex(&["refine", &chelsea(), "-o", dir.path().join("x").to_str().unwrap(), "--prior", "lime"], &[]);
    assert_error(&o, &["--prior lime", "not a method", "gradcam++"]);
}

/// `--refit-every 3`: the length scales come from a fresh L-BFGS-B fit on the
/// observations so far after queries 0 and 3 of 6 (the fit itself is checked
/// against scikit-learn in gp_sklearn.rs) and stay put in between, where the
/// posterior is a rank-one append; the map is still the posterior of the
/// reported observations with the last length scales (brute force).
#[test]
fn refit_every_k_fits_only_at_the_refit_steps() {
    let dir = tempfile::tempdir().unwrap();
    let out = quick(dir.path(), "k3", &["--device", "cpu", "--refit-every", "3"]);
    let r = report(&out);
    assert_eq!(r["settings"]["refine"]["refit_every"], 3);
    assert_eq!(r["settings"]["preset"], "custom");
    let s0 = npy(&out.join("prior.npy"));
    let obs = r["observations"].as_array().unwrap();
    let xs: Vec<f64> =
        obs.iter().flat_map(|o| serde_json::from_value::<[f64; 3]>(o["stored"].clone()).unwrap()).collect();
    let ys: Vec<f64> = obs
        .iter()
        .map(|o| {
            o["f"].as_f64().unwrap()
                - s0[[o["row"].as_u64().unwrap() as usize, o["col"].as_u64().unwrap() as usize]] as f64
        })
        .collect();
    let fresh = |t: usize| {
        let x = ndarray::ArrayView2::from_shape((t + 1, 3), &xs[..3 * (t + 1)]).unwrap();
        borex::gp::Gp::fit(x, &ys[..t + 1], &borex::gp::FitOptions::default()).unwrap().length_scales().to_vec()
    };
    let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-9 * y.abs().max(1.0));
    let mut last = vec![];
    let mut skipped_a_change = false;
    for (t, o) in obs.iter().enumerate() {
        let ls: Vec<f64> = serde_json::from_value(o["length_scales"].clone()).unwrap();
        if t % 3 == 0 {
            assert!(close(&ls, &fresh(t)), "query {t}: {ls:?} is not a fresh fit {:?}", fresh(t));
            last = ls;
        } else {
            assert_eq!(ls, last, "query {t}: the length scales moved between refits");
            skipped_a_change |= !close(&fresh(t), &last);
        }
    }
    assert!(
        skipped_a_change,
        "a refit at every query would have given the same length scales: the test cannot tell the schedules apart"
    );
    // Queries 1, 2, 4, 5 keep the length scales: each is an append.
    assert!(r["posterior_updates"]["incremental"].as_u64().unwrap() >= 4, "{}", r["posterior_updates"]);
    let refined = npy(&out.join("refined.npy"));
    assert_brute_force(&r, &s0, &refined, &[(0, 0), (112, 112), (40, 190), (223, 31)], |_, _| 0.0);
    assert_error(
        &borex(&["refine", &chelsea(), "-o", dir.path().join("bad").to_str().unwrap(), "--refit-every", "0"], &[]),
        &["--refit-every 0"],
    );
}

/// `--stride 2`: every query after the first (the prior's peak) sits on an
/// even row and column; the map is still read at every pixel, the posterior
/// of the reported observations (brute force).
#[test]
fn stride_searches_every_other_pixel_and_maps_every_pixel() {
    let dir = tempfile::tempdir().unwrap();
    let out = quick(dir.path(), "s2", &["--device", "cpu", "--stride", "2"]);
    let r = report(&out);
    assert_eq!(r["settings"]["refine"]["stride"], 2);
    let obs = r["observations"].as_array().unwrap();
    for o in &obs[1..] {
        assert!(
            o["row"].as_u64().unwrap() % 2 == 0 && o["col"].as_u64().unwrap() % 2 == 0,
            "query off the stride-2 lattice: {o}"
        );
    }
    let (s0, refined) = (npy(&out.join("prior.npy")), npy(&out.join("refined.npy")));
    assert_brute_force(&r, &s0, &refined, &[(0, 0), (1, 1), (113, 57), (223, 222)], |_, _| 0.0);
    assert_error(
        &borex(&["refine", &chelsea(), "-o", dir.path().join("bad").to_str().unwrap(), "--stride", "0"], &[]),
        &["--stride 0"],
    );
}

#[test]
fn budget_splits_evaluations_between_prior_and_queries() {
    let dir = tempfile::tempdir().unwrap();
    let (chelsea, out) = (chelsea(), dir.path().join("b"));
    let o = out.to_str().unwrap();
    // 60 evaluations, matched objective (two images a query): RISE gets a quarter, 16 masks, and 22 queries.
    let run = borex(
        &["--device", "cpu", "refine", &chelsea, "-o", o, "--budget", "60", "--no-metrics", "--objective", "matched"],
        &[],
    );
    ok(&run);
    let note = String::from_utf8_lossy(&run.stderr);
    assert!(
        // The report's note, printed as the report has it (front-end neutral: the setting's name).
        note.contains("note: budget 60: prior rise-fast+masks=16 (16 evaluations), 22 queries (44 evaluations)"),
        "{note}"
    );
    // Said once on stderr, and in the report's notes (#25: it was only on stderr).
    assert_eq!(note.matches("budget 60: prior").count(), 1, "{note}");
    let r = report(&out);
    assert_eq!(r["prior"]["method"], "rise-fast+masks=16");
    assert_eq!(r["observations"].as_array().unwrap().len(), 22);
    let notes: Vec<&str> = r["notes"].as_array().unwrap().iter().filter_map(|n| n.as_str()).collect();
    assert!(
        notes.contains(&"budget 60: prior rise-fast+masks=16 (16 evaluations), 22 queries (44 evaluations)"),
        "{notes:?}"
    );
    // A prior whose mask count is given keeps it; the queries get the rest.
    let given = dir.path().join("g");
    let args = [
        "--device",
        "cpu",
        "-q",
        "refine",
        &chelsea,
        "-o",
        given.to_str().unwrap(),
        "--no-metrics",
        "--objective",
        "matched",
    ];
    ok(&borex(&[&args[..], &["--budget", "60", "--prior", "rise-fast+masks=40"]].concat(), &[]));
    assert_eq!(report(&given)["observations"].as_array().unwrap().len(), 10);
    // Below what the prior and one query need, beyond the limit, or with --iters: one-line errors, no output.
    let bad = dir.path().join("bad");
    let b = bad.to_str().unwrap();
    assert_error(
        &borex(&["--device", "cpu", "refine", &chelsea, "-o", b, "--budget", "11", "--no-metrics"], &[]),
        &["--budget 11 is below what a RISE prior and one query need: at least 12 evaluations"],
    );
    assert_error(
        &borex(&["--device", "cpu", "refine", &chelsea, "-o", b, "--budget", "1000001", "--no-metrics"], &[]),
        &["--budget 1000001 is out of range"],
    );
    assert_error(
        &borex(&["--device", "cpu", "refine", &chelsea, "-o", b, "--budget", "500", "--prior", "occlusion"], &[]),
        &["--budget 500 is below what the prior occlusion and one query need: at least 628"],
    );
    let both = borex(&["refine", &chelsea, "-o", b, "--budget", "60", "--iters", "5"], &[]);
    assert_eq!(both.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&both.stderr).contains("cannot be used with"));
    assert!(!bad.exists(), "a refused budget creates no output folder");
}

#[test]
fn relative_gain_divides_the_gain_by_the_class_probability() {
    let dir = tempfile::tempdir().unwrap();
    let out = quick(dir.path(), "rel", &["--device", "cpu", "--relative-gain"]);
    let r = report(&out);
    // The reference: f = 2·(sigmoid(g'·(P_in − P_out)) − 0.5) with g' = 10·0.2/max(P, 0.2),
    // P the class's probability on the whole image (chelsea: tabby, P ≈ 0.5, so g' ≈ 4, not 10).
    let p = r["probability"].as_f64().unwrap();
    let g = 10.0 * 0.2 / p.max(0.2);
    assert!(p > 0.3 && g < 7.0, "P {p}: the test needs a confident class");
    assert!((r["refined"]["relative_gain"].as_f64().unwrap() - g).abs() < 1e-5, "{}", r["refined"]);
    assert_eq!(r["settings"]["refine"]["relative_gain"], true);
    for o in r["observations"].as_array().unwrap() {
        let d = o["p_inside"].as_f64().unwrap() - o["p_outside"].as_f64().unwrap();
        let f = 2.0 * (1.0 / (1.0 + (-g * d).exp()) - 0.5);
        assert!((o["f"].as_f64().unwrap() - f).abs() < 1e-5, "{o}: expected f {f}");
    }
    // Without the flag the key is absent and f uses the gain as given.
    let plain = report(&quick(dir.path(), "plain", &["--device", "cpu"]));
    assert!(
        plain["refined"].get("relative_gain").is_none() && plain["settings"]["refine"].get("relative_gain").is_none()
    );
}

#[test]
fn detail_readout_adds_the_priors_detail_to_the_window_map() {
    let dir = tempfile::tempdir().unwrap();
    let out = quick(dir.path(), "d", &["--device", "cpu", "--readout", "detail"]);
    let (prior, refined, r) = (npy(&out.join("prior.npy")), npy(&out.join("refined.npy")), report(&out));
    assert_eq!(r["settings"]["refine"]["readout"], "detail");
    let sizes: Vec<usize> = serde_json::from_value(r["settings"]["grid"]["sizes"].clone()).unwrap();
    let (h, w) = prior.dim();
    // The reference: the window map from the report alone, plus S0 minus its in-image window mean per size.
    let box_mean = |y: usize, x: usize| -> f64 {
        let per: f64 = sizes
            .iter()
            .map(|&s| {
                let (r0, r1, c0, c1) =
                    (y.saturating_sub(s), (y + s + 1).min(h), x.saturating_sub(s), (x + s + 1).min(w));
                let win = prior.slice(ndarray::s![r0..r1, c0..c1]);
                win.iter().map(|v| *v as f64).sum::<f64>() / win.len() as f64
            })
            .sum();
        per / sizes.len() as f64
    };
    let points = [(0, 0), (0, 223), (223, 111), (112, 112), (40, 190), (150, 31)];
    assert_brute_force(&r, &prior, &refined, &points, |y, x| prior[[y, x]] as f64 - box_mean(y, x));
    let scale = refined.iter().fold(0.0f32, |m, v| m.max(v.abs())) as f64;
    let detail_seen = points.iter().map(|&(y, x)| (prior[[y, x]] as f64 - box_mean(y, x)).abs()).fold(0.0, f64::max);
    assert!(detail_seen > 1e-3 * scale, "the points checked carry no detail: the test could not fail");
}

#[test]
fn a_confident_class_gets_the_equal_budget_note() {
    // coffee.png is an espresso at P ≈ 0.95; a noise image's top class is far below 0.5.
    let dir = tempfile::tempdir().unwrap();
    let coffee = asset(borex::paths::sample_image("coffee.png")).to_str().unwrap().to_string();
    let noise = dir.path().join("noise.png");
    let mut state = 12345u32;
    image::RgbImage::from_fn(160, 120, |_, _| {
        let mut px = [0u8; 3];
        for v in &mut px {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            *v = (state >> 24) as u8;
        }
        image::Rgb(px)
    })
    .save(&noise)
    .unwrap();
    let needle = "`borex explain --method rise-fast+masks=112`";
    for (img, confident) in [(coffee.as_str(), true), (noise.to_str().unwrap(), false)] {
        let out = dir.path().join(if confident { "coffee" } else { "noise" });
        let args = ["--device", "cpu", "refine", img, "-o", out.to_str().unwrap(), "--iters", "6", "--no-metrics"];
        if confident {
            // The default with a RISE prior is antithetic: the note is about box queries only.
            let o = borex(&args, &[]);
            ok(&o);
            assert_eq!(report(&out)["settings"]["objective"], "antithetic");
            assert!(!String::from_utf8_lossy(&o.stderr).contains("the class is confident"), "note without box queries");
        }
        let o = borex(&[&args[..], &["--objective", "matched"]].concat(), &[]);
        ok(&o);
        let r = report(&out);
        let p = r["probability"].as_f64().unwrap();
        assert_eq!(p >= 0.5, confident, "{img}: P = {p}; the test needs one class on each side of 0.5");
        let err = String::from_utf8_lossy(&o.stderr);
        let line = err.lines().find(|l| l.contains(needle));
        let in_report = r["notes"].as_array().unwrap().iter().any(|n| n.as_str().unwrap().contains(needle));
        assert_eq!(line.is_some(), confident, "{img}: stderr {err}");
        assert_eq!(in_report, confident, "{img}: notes {}", r["notes"]);
        if let Some(l) = line {
            assert!(l.starts_with("note: the class is confident (P = 0.9"), "{l}");
            // RISE-100 and 6 queries of 2 evaluations: RISE continued to 112 masks.
            assert!(l.contains("the same 112 evaluations"), "{l}");
        }
    }
}
