//! The `borex` binary end to end: real model, real images, and every bad input
//! the foundation promises a clear one-line error for.

mod common;

use common::{assert_error, asset, fixture, run_borex};
use std::path::{Path, PathBuf};
use std::process::Output;

fn borex(args: &[&str]) -> Output {
    run_borex(args, &[])
}

fn image(name: &str) -> PathBuf {
    asset(borex::paths::sample_image(name))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn classifies_the_sample_images() {
    let out =
        borex(&["classify", s(&image("chelsea.png")), s(&image("coffee.png")), "--json", "--top", "3", "--batch", "2"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let top = |i: usize| v[i]["predictions"][0]["class"].as_u64().unwrap();
    assert!((281..=285).contains(&top(0)), "chelsea is a cat, got {}", top(0));
    assert_eq!(top(1), 967, "coffee is an espresso");
    assert_eq!(v[1]["predictions"][0]["label"], "espresso");
    let p = v[1]["predictions"][0]["probability"].as_f64().unwrap();
    assert!(p > 0.9 && p <= 1.0, "espresso probability {p}");
    assert_eq!(v[0]["predictions"].as_array().unwrap().len(), 3);
}

#[test]
fn batch_size_does_not_change_results() {
    let imgs = [image("chelsea.png"), image("rocket.jpg"), image("astronaut.png")];
    let run = |b: &str| {
        let mut args = vec!["classify", "--json", "--top", "2", "--batch", b];
        args.extend(imgs.iter().map(|p| s(p)));
        let out = borex(&args);
        assert!(out.status.success());
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let (a, b) = (run("1"), run("3"));
    for i in 0..3 {
        assert_eq!(a[i]["predictions"][0]["class"], b[i]["predictions"][0]["class"]);
        let (pa, pb) = (
            a[i]["predictions"][0]["probability"].as_f64().unwrap(),
            b[i]["predictions"][0]["probability"].as_f64().unwrap(),
        );
        assert!((pa - pb).abs() < 1e-4, "{pa} vs {pb}");
    }
}

#[test]
fn info_reports_adapter_runtime_and_model() {
    let out = borex(&["info"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ONNX Runtime: 1.31.1"), "{text}");
    assert!(text.contains("CPUExecutionProvider"), "{text}");
    assert!(text.contains("input input: [-1, 3, -1, -1]"), "{text}");
    assert!(text.contains("output logits: [-1, 1000]"), "{text}");
    assert!(text.contains("compute device:"), "{text}");
}

#[test]
fn missing_image() {
    assert_error(&borex(&["classify", "/no/such/image.png"]), &["/no/such/image.png", "No such file"]);
}

#[test]
fn non_image_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("notes.png");
    std::fs::write(&p, "this is text").unwrap();
    assert_error(&borex(&["classify", s(&p)]), &["notes.png", "not a readable image"]);
}

#[test]
fn truncated_png_and_jpeg() {
    let dir = tempfile::tempdir().unwrap();
    for (src, name) in [("chelsea.png", "cut.png"), ("rocket.jpg", "cut.jpg")] {
        let bytes = std::fs::read(image(src)).unwrap();
        let p = dir.path().join(name);
        std::fs::write(&p, &bytes[..bytes.len() / 3]).unwrap();
        assert_error(&borex(&["classify", s(&p)]), &[name, "not a readable image"]);
    }
}

#[test]
fn missing_model() {
    assert_error(
        &borex(&["classify", s(&image("chelsea.png")), "--model", "/no/model.onnx"]),
        &["/no/model.onnx", "model file not found"],
    );
}

#[test]
fn model_that_is_not_onnx() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("fake.onnx");
    std::fs::write(&p, "definitely not protobuf").unwrap();
    assert_error(
        &borex(&["classify", s(&image("chelsea.png")), "--model", s(&p)]),
        &["fake.onnx", "not a loadable ONNX model"],
    );
}

#[test]
fn model_with_rank3_input() {
    let m = fixture("rank3_input.onnx");
    assert_error(
        &borex(&["classify", s(&image("chelsea.png")), "--model", s(&m)]),
        &["rank3_input.onnx", "rank 3", "rank-4"],
    );
}

#[test]
fn class_count_differs_from_labels() {
    let m = fixture("ten_classes.onnx");
    let labels = asset(borex::paths::home().join("labels/imagenet1k.txt"));
    assert_error(
        &borex(&["classify", s(&image("chelsea.png")), "--model", s(&m), "--labels", s(&labels)]),
        &["ten_classes.onnx", "model has 10 classes but the labels list 1000"],
    );
}

#[test]
fn top_zero() {
    assert_error(
        &borex(&["classify", s(&image("chelsea.png")), "--top", "0"]),
        &["--top 0 is out of range: it must be between 1 and"],
    );
}

#[test]
fn cuda_without_the_provider_says_what_is_missing() {
    assert_error(
        &borex(&["classify", s(&image("chelsea.png")), "--ep", "cuda"]),
        &["no CUDA execution provider", "onnxruntime-gpu"],
    );
}

#[test]
fn missing_runtime_library() {
    assert_error(
        &borex(&["--ort-lib", "/no/libonnxruntime.so", "classify", s(&image("chelsea.png"))]),
        &["/no/libonnxruntime.so", "not found"],
    );
}

/// A user's model with no sidecar and no preprocessing flag is fed torchvision's defaults, which is wrong
/// for the bundled EfficientNet-Lite (mean 127, std 128): `borex classify` says so on stderr, once, and not
/// when the sidecar or any preprocessing flag declares the input, nor under --quiet.
#[test]
fn a_model_without_a_sidecar_gets_a_preprocessing_note() {
    let dir = tempfile::tempdir().unwrap();
    let bare = dir.path().join("lite.onnx");
    std::fs::copy(asset(borex::paths::default_model()), &bare).unwrap();
    let img = image("chelsea.png");
    let run = |extra: &[&str]| {
        let mut args = vec!["classify", s(&img), "--model", s(&bare), "--json", "--top", "1"];
        args.extend_from_slice(extra);
        let out = borex(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (String::from_utf8_lossy(&out.stderr).into_owned(), v[0]["predictions"][0]["probability"].as_f64().unwrap())
    };
    let (err, p_defaults) = run(&[]);
    assert_eq!(err.matches("note: no ").count(), 1, "{err}");
    assert!(err.contains("lite.json beside the model") && err.contains("docs/models.md"), "{err}");
    assert!(run(&["--quiet"]).0.is_empty());
    let (err, p_flags) = run(&["--mean", "127,127,127", "--std", "128,128,128"]);
    assert!(!err.contains("note:"), "{err}");
    let sidecar = asset(borex::paths::default_model()).with_extension("json");
    let text = std::fs::read_to_string(&sidecar).unwrap();
    // The bundled sidecar's labels path is relative to it; point it at the bundled labels.
    let labels = sidecar.parent().unwrap().join("../labels/imagenet1k.txt");
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["labels"] = serde_json::Value::String(labels.to_str().unwrap().to_string());
    std::fs::write(bare.with_extension("json"), json.to_string()).unwrap();
    let (err, p_sidecar) = run(&[]);
    assert!(!err.contains("note:"), "{err}");
    // What the note is about: the defaults give a different answer than the declared preprocessing.
    assert!((p_flags - p_sidecar).abs() < 1e-6, "{p_flags} vs {p_sidecar}");
    assert!((p_defaults - p_sidecar).abs() > 1e-3, "{p_defaults} vs {p_sidecar}");
}
