//! `borex::Engine` against the `borex` command: the same settings give the
//! same maps, bit for bit (the command's .npy files are the reference), and
//! every bad input is a `BorexError` naming the problem.

mod common;

use borex::compute::{Baseline, DeviceChoice, ImageKernels};
use borex::engine::{
    CounterfactualSettings, Engine, EngineOptions, EvaluateSettings, ExplainSettings, Image, Prior, RefineSettings,
};
use borex::refine::ClassSpec;
use common::{asset, run_borex};
use ndarray::{Array2, Array3};
use std::path::Path;
use std::sync::OnceLock;

fn engine() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| Engine::new(&EngineOptions { device: DeviceChoice::Cpu, ..Default::default() }).expect("engine"))
}

fn chelsea() -> std::path::PathBuf {
    asset(borex::paths::sample_image("chelsea.png"))
}

fn npy(p: &Path) -> Array2<f32> {
    ndarray_npy::read_npy(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn cli(args: &[&str]) {
    let out = run_borex(args, &[]);
    assert!(out.status.success(), "borex {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// Bit-for-bit equality, with the first difference named.
fn same(a: &Array2<f32>, b: &Array2<f32>, what: &str) {
    assert_eq!(a.dim(), b.dim(), "{what}: shapes");
    if let Some((i, (x, y))) = a.iter().zip(b).enumerate().find(|(_, (x, y))| x.to_bits() != y.to_bits()) {
        panic!("{what}: element {i} differs: {x} vs {y}");
    }
}

fn quick_settings() -> RefineSettings {
    // Box queries named: a RISE prior's default objective is antithetic (no queries to compare).
    let objective = Some(borex::refine::RefineObjective::BOXES_DEFAULT);
    RefineSettings { iters: 6, seed: 3, metrics: false, objective, ..Default::default() }
}

#[test]
fn refine_equals_the_command_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cli");
    let img = chelsea();
    cli(&[
        "-q",
        "--device",
        "cpu",
        "refine",
        img.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--iters",
        "6",
        "--seed",
        "3",
        "--no-metrics",
        "--objective",
        "matched",
    ]);
    let settings = quick_settings();
    let r = engine().refine(&img, &settings).unwrap();
    same(&r.refined.map, &npy(&out.join("refined.npy")), "refined.npy");
    same(&r.refined.scaled_prior, &npy(&out.join("prior.npy")), "prior.npy");
    // The command's report read back through the type: the same queries.
    let report: borex::refine::pipeline::RefineReport = borex::output::read_report(&out.join("report.json")).unwrap();
    let q =
        |o: &[borex::refine::Observation]| o.iter().map(|o| (o.row, o.col, o.size, o.f.to_bits())).collect::<Vec<_>>();
    assert_eq!(q(&r.report.observations), q(&report.observations));
    assert_eq!(r.report.observations.len(), 6);
    assert_eq!((r.report.class, &r.report.label), (report.class, &report.label));
    assert_eq!(r.report.settings.refine, report.settings.refine);
    assert_eq!(report.settings.preset, "custom");

    // The same image decoded in memory gives the same map.
    let rgb = image::open(&img).unwrap().to_rgb8();
    let m = engine().refine(Image::rgb(rgb.clone(), "chelsea"), &settings).unwrap();
    same(&m.refined.map, &r.refined.map, "in-memory image");
    assert_eq!(m.report.image, Path::new("chelsea"));
    // ... and as an H×W×3 array.
    let arr = Array3::from_shape_fn((rgb.height() as usize, rgb.width() as usize, 3), |(y, x, c)| {
        rgb.get_pixel(x as u32, y as u32)[c]
    });
    let a = engine().refine(Image::from_array(arr.view()).unwrap(), &settings).unwrap();
    same(&a.refined.map, &r.refined.map, "array image");
}

#[test]
fn an_array_prior_equals_the_same_map_as_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let img = chelsea();
    // A smooth prior at the model input's size, peaked off-centre.
    let prior = Array2::from_shape_fn((224, 224), |(y, x)| {
        (-(((y as f32 - 80.0).powi(2) + (x as f32 - 150.0).powi(2)) / 2000.0)).exp()
    });
    let file = dir.path().join("prior.npy");
    ndarray_npy::write_npy(&file, &prior).unwrap();
    let out = dir.path().join("cli");
    cli(&[
        "-q",
        "--device",
        "cpu",
        "refine",
        img.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--iters",
        "6",
        "--seed",
        "3",
        "--no-metrics",
        "--prior",
        file.to_str().unwrap(),
    ]);
    let settings = RefineSettings { prior: Prior::Map(prior.clone()), ..quick_settings() };
    let r = engine().refine(&img, &settings).unwrap();
    same(&r.refined.map, &npy(&out.join("refined.npy")), "refined.npy");
    // The prior as made is the given map, unscaled.
    same(&r.prior, &prior, "prior");
    assert_eq!(r.report.prior.method, "array");
}

#[test]
fn refine_many_equals_one_refine_per_image() {
    let img = chelsea();
    let other = asset(borex::paths::sample_image("astronaut.png"));
    let settings = quick_settings();
    let images: Vec<Image> = vec![img.clone().into(), other.clone().into(), "/nonexistent/x.png".into()];
    let many = engine().refine_many(&images, None, &settings, 3).unwrap();
    assert_eq!(many.len(), 3);
    for (i, path) in [img, other].iter().enumerate() {
        let one = engine().refine(path, &settings).unwrap();
        let got = many[i].as_ref().unwrap_or_else(|e| panic!("image {i}: {e}"));
        same(&got.refined.map, &one.refined.map, &format!("image {i}"));
    }
    let err = many[2].as_ref().err().expect("a missing file fails alone").to_string();
    assert!(err.contains("/nonexistent/x.png"), "{err}");
    // One prior per image, or an error.
    let e = engine().refine_many(&images, Some(&[Prior::default()]), &settings, 2).err().unwrap();
    assert!(e.to_string().contains("1 priors for 3 images"), "{e}");
}

#[test]
fn explain_equals_the_command_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cli");
    let img = chelsea();
    cli(&[
        "-q",
        "--device",
        "cpu",
        "explain",
        img.to_str().unwrap(),
        "-m",
        "rise-fast",
        "-o",
        out.to_str().unwrap(),
        "--seed",
        "2",
        "--no-metrics",
    ]);
    let settings =
        ExplainSettings { method: "rise-fast".parse().unwrap(), seed: 2, metrics: false, ..Default::default() };
    let e = engine().explain(&img, &settings).unwrap();
    same(&e.map, &npy(&out.join("map.npy")), "map.npy");
    let report: borex::explain::pipeline::ExplainReport = borex::output::read_report(&out.join("report.json")).unwrap();
    assert_eq!(report.parameters, e.report.parameters);
    assert_eq!(e.report.method, "rise-fast");
}

#[test]
fn evaluate_matches_a_brute_force_insertion_and_deletion() {
    let img = chelsea();
    let e = engine();
    let map = Array2::from_shape_fn((224, 224), |(y, x)| ((y * 7 + x * 13) % 101) as f32);
    let settings = EvaluateSettings {
        insertion_starts: vec![borex::metrics::InsertionStart::Blur, borex::metrics::InsertionStart::Zero],
        ..Default::default()
    };
    let ev = e.evaluate(&img, map.view(), &settings).unwrap();
    // The reference: tests/common's brute-force AUC on the same model input.
    let (pre, _) = borex::image::load_input(&img, e.model().preprocess()).unwrap();
    let x = pre.tensor.view();
    let zeros = Array3::<f32>::zeros(x.raw_dim());
    let blur = borex::compute::cpu::CpuKernels.baseline(x, Baseline::Blur).unwrap();
    let deletion = common::causal_auc(e.model(), x, zeros.view(), map.view(), ev.class);
    let ins_blur = common::causal_auc(e.model(), blur.view(), x, map.view(), ev.class);
    let ins_zero = common::causal_auc(e.model(), zeros.view(), x, map.view(), ev.class);
    let close = |a: Option<f32>, b: f64, what: &str| {
        let a = a.unwrap_or_else(|| panic!("{what} missing")) as f64;
        assert!((a - b).abs() < 1e-4, "{what}: {a} vs brute force {b}");
    };
    close(ev.scores.deletion, deletion, "deletion");
    close(ev.scores.insertion, ins_blur, "insertion");
    close(ev.scores.insertion_blur, ins_blur, "insertion_blur");
    close(ev.scores.insertion_zero, ins_zero, "insertion_zero");
    // The predicted class is the top-1 of classify.
    let top = e.classify(&img, 3).unwrap();
    assert_eq!(top.len(), 3);
    assert_eq!(top[0].class, ev.class);
    assert!(top[0].probability >= top[1].probability && top[1].probability >= top[2].probability);
}

#[test]
fn counterfactual_equals_the_command_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cli");
    let img = chelsea();
    cli(&["-q", "counterfactual", img.to_str().unwrap(), "--target", "1", "--steps", "3", "-o", out.to_str().unwrap()]);
    let settings = CounterfactualSettings { steps: 3, ..Default::default() };
    let c = engine().counterfactual(&img, borex::counterfactual::Targets::Class(ClassSpec::Id(1)), &settings).unwrap();
    let want: Array3<f32> = ndarray_npy::read_npy(out.join("counterfactual.npy")).unwrap();
    assert_eq!(c.targets.len(), 1);
    assert_eq!(c.targets[0].counterfactual.dim(), want.dim());
    assert!(c.targets[0].counterfactual.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()));
    same(&c.targets[0].change, &npy(&out.join("change.npy")), "change.npy");
    let report: borex::counterfactual::CounterfactualReport =
        borex::output::read_report(&out.join("report.json")).unwrap();
    assert_eq!(report.targets[0].class, 1);
    assert_eq!(report.targets[0].norms.l1_5.to_bits(), c.report.targets[0].norms.l1_5.to_bits());
}

#[test]
fn bad_inputs_are_errors_naming_the_problem() {
    let e = engine();
    let img = chelsea();
    let s = quick_settings();
    let msg = |r: Result<borex::refine::RefineOutcome, borex::BorexError>| r.err().expect("an error").to_string();

    let missing = msg(e.refine("/nonexistent/cat.png", &s));
    assert!(missing.contains("/nonexistent/cat.png"), "{missing}");

    let wrong = RefineSettings { prior: Prior::Map(Array2::ones((10, 37))), ..quick_settings() };
    let m = msg(e.refine(&img, &wrong));
    assert!(m.contains("10×37") && m.contains("224×224"), "{m}");

    let mut nan = Array2::ones((224, 224));
    nan[[5, 7]] = f32::NAN;
    let m = msg(e.refine(&img, &RefineSettings { prior: Prior::Map(nan), ..quick_settings() }));
    assert!(m.contains("non-finite") && m.contains("(5, 7)"), "{m}");

    let m = msg(e.refine(&img, &RefineSettings { class: ClassSpec::Name("no such class".into()), ..quick_settings() }));
    assert!(m.contains("no such class"), "{m}");
    let m = msg(e.refine(&img, &RefineSettings { class: ClassSpec::Id(5000), ..quick_settings() }));
    assert!(m.contains("5000") && m.contains("out of range"), "{m}");

    let m = msg(e.refine(&img, &RefineSettings { prior: Prior::Method("lime".into()), ..quick_settings() }));
    assert!(m.contains("unknown method \"lime\""), "{m}");

    let mut zero_iters = quick_settings();
    zero_iters.iters = 0;
    // The library names the setting; each front end spells it (`--iters`, `iters=`).
    let err = e.refine(&img, &zero_iters).err().expect("an error");
    let borex::BorexError::Setting { name, value, .. } = &err else { panic!("a setting error: {err}") };
    assert_eq!((name.as_str(), value.as_deref()), ("iters", Some("0")));
    assert!(err.to_string().contains("iters 0 is out of range"), "{err}");
    assert!(err.render(borex::error::Spelling::Flag).contains("--iters 0 is out of range"), "{err}");

    let m = "lime".parse::<borex::explain::Method>().err().unwrap().to_string();
    assert!(m.contains("unknown method"), "{m}");
    let m = e.classify(&img, 0).err().unwrap().to_string();
    assert!(m.contains("at least 1"), "{m}");
    let m = e.evaluate(&img, Array2::from_elem((224, 224), f32::INFINITY).view(), &EvaluateSettings::default());
    assert!(m.err().unwrap().to_string().contains("non-finite"));
}

/// Counts what an engine's calls report: each started progress's name and
/// length, and the steps counted on it.
#[derive(Default, Clone)]
struct Recorder(std::sync::Arc<std::sync::Mutex<Vec<(String, u64, u64)>>>);

struct Recorded(std::sync::Arc<std::sync::Mutex<Vec<(String, u64, u64)>>>, usize);

impl borex::progress::Progress for Recorded {
    fn set_length(&self, len: u64) {
        self.0.lock().unwrap()[self.1].1 = len;
    }
    fn inc(&self, delta: u64) {
        self.0.lock().unwrap()[self.1].2 += delta;
    }
}

impl borex::progress::Reporter for Recorder {
    fn start(&self, len: u64, what: &str) -> Box<dyn borex::progress::Progress> {
        let mut v = self.0.lock().unwrap();
        v.push((what.to_string(), len, 0));
        Box::new(Recorded(self.0.clone(), v.len() - 1))
    }
}

#[test]
fn an_engine_reports_progress_to_the_reporter_it_is_given() {
    let recorder = Recorder::default();
    let engine = Engine::new(&EngineOptions { device: DeviceChoice::Cpu, ..Default::default() })
        .expect("engine")
        .with_progress(recorder.clone());
    let s = quick_settings();
    let out = engine.refine(chelsea(), &s).unwrap();
    let seen = recorder.0.lock().unwrap().clone();
    // The loop's progress counts every query the loop observed, and the prior has its own.
    let refine = seen.iter().find(|(w, ..)| w == "refine").expect("a refine progress");
    assert_eq!(out.refined.observations.len(), s.iters);
    assert_eq!((refine.1, refine.2), (s.iters as u64, s.iters as u64), "{seen:?}");
    assert!(seen.iter().any(|(w, ..)| w == "prior"), "{seen:?}");
}

/// A black box over the bundled model: every call goes through the model
/// seam's `run` (ONNX Runtime underneath), but it exposes no ONNX graph, as a
/// Python callable does not. Counts its calls and images.
struct BlackBox {
    inner: borex::model::OnnxModel,
    images: std::sync::atomic::AtomicUsize,
}

impl borex::model::Model for BlackBox {
    fn name(&self) -> &Path {
        Path::new("black box")
    }
    fn info(&self) -> &borex::model::ModelInfo {
        borex::model::Model::info(&self.inner)
    }
    fn run(&self, batch: ndarray::ArrayView4<f32>) -> borex::Result<Array2<f32>> {
        self.images.fetch_add(batch.dim().0, std::sync::atomic::Ordering::SeqCst);
        borex::model::Model::run(&self.inner, batch)
    }
    fn runs_on(&self) -> &str {
        "test"
    }
}

#[test]
fn a_model_behind_the_seam_gives_every_black_box_result_of_the_native_path() {
    use borex::model::{Classifier, ModelOptions, OnnxModel};
    let path = borex::paths::default_features_model();
    let black_box = Engine::from_parts(
        Classifier::new(Box::new(BlackBox {
            inner: OnnxModel::load(&ModelOptions::new(&path)).unwrap(),
            images: Default::default(),
        }))
        .unwrap(),
        borex::compute::Backend::select(DeviceChoice::Cpu).unwrap(),
    );
    let native = engine();
    let img = chelsea();
    // Refine, explain (RISE, occlusion) and evaluate: bit for bit, every call through `Model::run`.
    let (a, b) = (native.refine(&img, &quick_settings()).unwrap(), black_box.refine(&img, &quick_settings()).unwrap());
    same(a.map(), b.map(), "refine");
    assert_eq!(b.report.device.ep, "test", "the report names what ran the model");
    for method in ["rise+masks=64", "occlusion"] {
        let s = ExplainSettings { method: method.parse().unwrap(), metrics: false, ..Default::default() };
        let (a, b) = (native.explain(&img, &s).unwrap(), black_box.explain(&img, &s).unwrap());
        same(&a.map, &b.map, method);
    }
    let m = a.map().clone();
    let es = EvaluateSettings::default();
    let (a, b) = (native.evaluate(&img, m.view(), &es).unwrap(), black_box.evaluate(&img, m.view(), &es).unwrap());
    assert_eq!(serde_json::to_value(&a).unwrap(), serde_json::to_value(&b).unwrap());
    assert!(black_box.model().onnx().is_none());
    // What needs the graph says so in one line, naming the model.
    for method in ["cam", "gradcam", "cameras"] {
        let s = ExplainSettings { method: method.parse().unwrap(), metrics: false, ..Default::default() };
        let e = black_box.explain(&img, &s).err().expect("needs the graph").to_string();
        assert!(e.starts_with("black box: the CAM family") && e.contains("needs the model's ONNX graph"), "{e}");
        assert!(!e.contains('\n'));
    }
    let e = black_box.counterfactual(&img, borex::counterfactual::Targets::TopOthers(1), &Default::default());
    let e = e.err().expect("needs the graph").to_string();
    assert!(e.contains("a counterfactual (it follows the model's gradient) needs the model's ONNX graph"), "{e}");
}
