//! `borex refine` end to end on the bundled model: outputs, reproducibility,
//! GPU vs CPU, full resolution, and every bad input the issue lists.

mod common;

use common::{assert_error, asset, gpu_or_skip, run_borex};
use ndarray::Array2;
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

fn report(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap()
}

#[test]
fn writes_maps_overlay_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    ok(&borex(&["--device", "cpu", "-q", "refine", &chelsea(), "-o", out.to_str().unwrap()], &[]));
    let (prior, refined) = (npy(&out.join("prior.npy")), npy(&out.join("refined.npy")));
    assert_eq!(prior.dim(), (224, 224));
    assert_eq!(refined.dim(), (224, 224));
    assert!(refined.iter().all(|v| v.is_finite()));
    assert_ne!(prior, refined);
    let overlay = image::open(out.join("overlay.png")).unwrap();
    assert_eq!((overlay.width(), overlay.height()), (3 * 224 + 2 * 4, 224 + 4 + 12));
    let r = report(&out);
    let class = r["class"].as_u64().unwrap();
    assert!((281..=285).contains(&class), "chelsea is a cat: {class}");
    assert_eq!(r["label"], "tiger cat");
    assert_eq!(r["prior"]["method"], "rise-fast");
    for k in ["insertion", "deletion"] {
        for m in ["prior", "refined"] {
            let v = r[m][k].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&v), "{m}.{k} = {v}");
        }
    }
    // The default objective is not the paper's: the report says so and names it.
    assert_eq!(r["settings"]["preset"], "default");
    assert_eq!(r["settings"]["refine"]["objective"], "matched");
    assert_eq!(r["settings"]["refine"]["iters"], 50);
    assert_eq!(r["device"]["gp"], "cpu");
    assert_eq!(r["device"]["ep"], "cpu");
    assert_eq!(r["observations"].as_array().unwrap().len(), 50);
    // 1 clean pass + 100 RISE masks + 2 × 50 queries + 4 curves × 225 points.
    assert_eq!(r["model_evaluations"], 1 + 100 + 100 + 900);
    for k in ["prior", "model", "gp_fit", "posterior", "total"] {
        assert!(r["timings_ms"][k].as_f64().unwrap() >= 0.0, "timing {k}");
    }
    // No temporary files left behind.
    let mut names: Vec<String> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["overlay.png", "prior.npy", "refined.npy", "report.json"]);
}

/// A short refine (6 queries, no metrics) with extra arguments (global flags may follow the subcommand).
fn quick(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let chelsea = chelsea();
    let mut args = vec!["-q", "refine", &chelsea, "-o", out.to_str().unwrap(), "--iters", "6", "--no-metrics"];
    args.extend(extra);
    ok(&borex(&args, &[]));
    out
}

#[test]
fn the_paper_objective_is_selectable_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("paper");
    ok(&borex(&["--device", "cpu", "-q", "refine", &chelsea(), "-o", out.to_str().unwrap(), "--objective", "paper", "--no-metrics"], &[]));
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
    ok(&borex(&["--device", "cpu", "-q", "refine", coffee.to_str().unwrap(), "-o", out.to_str().unwrap(), "--iters", "4", "--no-metrics", "--full-res"], &[]));
    let full = npy(&out.join("refined_full.npy"));
    assert_eq!(full.dim(), (400, 600));
    assert!(full.iter().all(|v| v.is_finite()));
    // The centre of the original image is the centre of the model input.
    let model = npy(&out.join("refined.npy"));
    assert!((full[[200, 300]] - model[[112, 112]]).abs() < 0.05 * model.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6));
}

#[test]
fn prior_of_another_shape_is_resized_and_said_so() {
    let dir = tempfile::tempdir().unwrap();
    let prior = dir.path().join("p.npy");
    ndarray_npy::write_npy(&prior, &Array2::from_shape_fn((100, 120), |(y, x)| ((y as f64 - 50.0).powi(2) + (x as f64 - 60.0).powi(2)).sqrt())).unwrap();
    let out = dir.path().join("o");
    let o = borex(&["--device", "cpu", "-q", "refine", &chelsea(), "-o", out.to_str().unwrap(), "--prior", prior.to_str().unwrap(), "--iters", "3", "--no-metrics"], &[]);
    ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("is 100×120: resized to the model input 224×224"), "{err}");
    assert_eq!(npy(&out.join("prior.npy")).dim(), (224, 224));
    assert!(report(&out)["prior"]["method"].as_str().unwrap().starts_with("file:"));
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
    let run = |p: &Path| borex(&["--device", "cpu", "refine", &chelsea(), "-o", out.to_str().unwrap(), "--prior", p.to_str().unwrap(), "--no-metrics"], &[]);
    assert_error(&run(&zero), &["prior map is all zero"]);
    assert_error(&run(&nan), &["non-finite"]);
    assert_error(&run(&dir.path().join("missing.npy")), &["missing.npy"]);
    let text = dir.path().join("t.npy");
    std::fs::write(&text, "not numpy").unwrap();
    assert_error(&run(&text), &["t.npy", "not a 2-D float32/float64 .npy"]);
}

#[test]
fn bad_arguments_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    let o = out.to_str().unwrap();
    assert_error(&borex(&["refine", &chelsea(), "-o", o, "--iters", "0"], &[]), &["--iters must be at least 1"]);
    // Flag values are checked by clap (exit status 2, usage hint), naming the choices.
    for (flag, value, needle) in [("--objective", "best", "unknown objective \"best\" (expected one of paper, matched"), ("--readout", "sharp", "unknown readout")] {
        let out = borex(&["refine", &chelsea(), "-o", o, flag, value], &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.lines().next().unwrap().contains(needle), "{err}");
    }
    assert_error(&borex(&["--device", "cpu", "refine", &chelsea(), "-o", o, "--class", "1000", "--no-metrics"], &[]), &["class 1000 is out of range", "1000 classes"]);
    assert_error(&borex(&["--device", "cpu", "refine", &chelsea(), "-o", o, "--class", "tabb", "--no-metrics"], &[]), &["unknown class \"tabb\"", "near matches", "281 (tabby)"]);
    let file = dir.path().join("afile");
    std::fs::write(&file, "x").unwrap();
    assert_error(&borex(&["refine", &chelsea(), "-o", file.to_str().unwrap()], &[]), &["is an existing file"]);
    assert_error(
        &borex(&["--device", "gpu", "refine", &chelsea(), "-o", o, "--no-metrics"], &[("VK_ICD_FILENAMES", "/nonexistent/icd.json"), ("VK_DRIVER_FILES", "/nonexistent/icd.json")]),
        &["no GPU adapter found", "mesa-vulkan-drivers", "--device cpu"],
    );
    assert!(!out.exists() || std::fs::read_dir(&out).unwrap().next().is_none(), "no partial outputs");
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
        assert!(prior.iter().any(|v| *v != 0.0));
    }
    // An unknown name that is not a file either is refused up front.
    let o = borex(&["refine", &chelsea(), "-o", dir.path().join("x").to_str().unwrap(), "--prior", "lime"], &[]);
    assert_error(&o, &["--prior lime", "not a method", "gradcam++"]);
}
