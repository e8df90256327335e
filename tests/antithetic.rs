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

#[test]
fn the_prior_from_the_same_pass_is_rise_bit_for_bit() {
    // The refine pays for the prior's masks once: the continuation's prior channel must be
    // RISE's own map at those masks, batches cut as RISE cuts them (5 here, through N0 = 12).
    let model = Classifier::load(&ModelOptions::new(fixture("gap_linear_logits.onnx"))).unwrap();
    let scorer = Scorer::new(&model, &CpuKernels, 5);
    let x = image();
    let params = RiseParams { n: 12, s: 3, p: 0.4, seed: 5 };
    for extra in [7, 30] {
        let a = antithetic(&scorer, x.view(), 1, &params, extra, &NoProgress).unwrap();
        let want = borex::explain::rise(&scorer, x.view(), 1, &params, &NoProgress).unwrap();
        assert!(want.iter().any(|v| *v != 0.0), "a zero RISE map tests nothing");
        assert_eq!(a.prior, want, "extra {extra}");
    }
}

fn borex(args: &[&str]) -> std::process::Output {
    common::run_borex(args, &[])
}

fn ok(o: &std::process::Output) {
    assert!(o.status.success(), "failed: {}", String::from_utf8_lossy(&o.stderr));
}

fn npy(p: &std::path::Path) -> ndarray::Array2<f32> {
    ndarray_npy::read_npy(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn json(p: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn refine_with_the_antithetic_objective_is_explains_continuation() {
    // `borex refine --objective antithetic` spends the refinement's 2·iters evaluations on the
    // RISE prior's complements: its map is `borex explain --method rise-fast+antithetic=2·iters`
    // bit for bit on the CPU, its prior RISE-100's, and it queries no box.
    let dir = tempfile::tempdir().unwrap();
    let d = |n: &str| dir.path().join(n);
    let s = |p: std::path::PathBuf| p.to_str().unwrap().to_string();
    let img = s(common::asset(borex::paths::sample_image("chelsea.png")));
    let coffee = s(common::asset(borex::paths::sample_image("coffee.png")));
    let cpu = ["--device", "cpu", "-q"];
    let run = |args: &[&str]| ok(&borex(&[&cpu[..], args].concat()));
    run(&["refine", &img, "-o", &s(d("r")), "--objective", "antithetic", "--no-metrics", "--seed", "3", "--report"]);
    run(&["explain", &img, "-o", &s(d("e")), "-m", "rise-fast+antithetic=100", "--seed", "3", "--no-metrics"]);
    run(&["explain", &img, "-o", &s(d("p")), "-m", "rise-fast", "--seed", "3", "--no-metrics"]);
    let refined = npy(&d("r/refined.npy"));
    assert_eq!(refined, npy(&d("e/map.npy")), "refine's map is not explain's continuation");
    // prior.npy is the RISE-100 map scaled to mean |S0| = 0.1, as for the box refinement.
    let rise = npy(&d("p/map.npy"));
    let m = rise.iter().map(|v| v.abs() as f64).sum::<f64>() / rise.len() as f64;
    let prior = npy(&d("r/prior.npy"));
    let diff = prior.iter().zip(&rise).map(|(a, b)| (*a as f64 - *b as f64 * 0.1 / m).abs()).fold(0.0, f64::max);
    assert!(diff < 1e-7, "prior.npy differs from the scaled RISE-100 map by {diff}");
    assert_ne!(
        prior.mapv(|v| v.signum()),
        refined.mapv(|v| v.signum()),
        "the maps must differ for the test to mean anything"
    );
    let r = json(&d("r/report.json"));
    assert_eq!(r["settings"]["objective"], "antithetic");
    assert_eq!(r["observations"].as_array().unwrap().len(), 0);
    // One classification of the image, the prior's 100 masks, their 100 complements.
    assert_eq!(r["model_evaluations"], 1 + 100 + 100);
    let page = std::fs::read_to_string(d("r/report.html")).unwrap();
    assert!(page.contains("No box queries"), "the page does not say why it has no queries");
    // (--no-metrics leaves curves.json out, a problem the page names; the step-through is none.)
    assert!(!page.contains("step-through of the posterior"), "the page fails its step-through without queries");

    // --budget splits as for box queries (a quarter to the prior): RISE-50, then 150 evaluations.
    run(&["refine", &img, "-o", &s(d("b")), "--objective", "antithetic", "--budget", "200", "--no-metrics"]);
    run(&["explain", &img, "-o", &s(d("be")), "-m", "rise-fast+masks=50+antithetic=150", "--no-metrics"]);
    assert_eq!(npy(&d("b/refined.npy")), npy(&d("be/map.npy")));
    assert_eq!(json(&d("b/report.json"))["model_evaluations"], 1 + 50 + 150);

    // Several images (the bulk driver, lockstep asked for): each image's map as refined alone;
    // job.json names the objective, so a rerun with another objective is refused.
    let many = s(d("many"));
    let bulk = ["refine", &img, &coffee, "-o", &many, "--no-metrics", "--seed", "3", "--lockstep", "2", "--objective"];
    run(&[&bulk[..], &["antithetic"]].concat());
    let b = |p: &str| npy(&d("many").join(p).join("refined.npy"));
    run(&["refine", &coffee, "-o", &s(d("c")), "--objective", "antithetic", "--no-metrics", "--seed", "3"]);
    assert_eq!(b("chelsea"), refined);
    assert_eq!(b("coffee"), npy(&d("c/refined.npy")));
    assert_eq!(json(&d("many/job.json"))["settings"]["--objective"], "antithetic");
    let o = borex(&[&cpu[..], &bulk[..], &["matched"]].concat());
    common::assert_error(&o, &["--objective"]);
}

#[test]
fn the_antithetic_objective_refuses_what_it_cannot_do() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    let img = common::asset(borex::paths::sample_image("chelsea.png"));
    let base =
        ["--device", "cpu", "refine", img.to_str().unwrap(), "-o", out.to_str().unwrap(), "--objective", "antithetic"];
    let cases: [(&[&str], &[&str]); 4] = [
        (&["--prior", "gradcam"], &["--objective antithetic", "prior gradcam is not RISE", "rise-fast"]),
        (&["--prior", "occlusion"], &["prior occlusion is not RISE", "box objective"]),
        (&["--full-res"], &["--full-res applies to box queries"]),
        (&["--relative-gain"], &["--relative-gain applies to box queries"]),
    ];
    for (extra, needles) in cases {
        let o = borex(&[&base[..], extra].concat());
        common::assert_error(&o, needles);
        assert!(!out.exists(), "{extra:?}: wrote outputs before failing");
    }
}
