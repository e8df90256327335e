//! Crafted and hostile inputs, run through the `borex` binary: each is a
//! one-line error naming the problem (exit 1, nothing written) or a note, never
//! a panic, an abort or an unbounded allocation. docs/robustness.md lists them.

mod common;

use common::{assert_error, asset, fixture, run_borex};
use ndarray::Array2;
use std::path::{Path, PathBuf};
use std::process::Output;

fn borex(args: &[&str]) -> Output {
    run_borex(args, &[])
}

fn chelsea() -> PathBuf {
    asset(borex::paths::sample_image("chelsea.png"))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: &Output) {
    assert!(o.status.success(), "exit {:?}: {}", o.status, stderr(o));
}

/// A `.npy` file written byte by byte (numpy's format 1.0), so the test does
/// not lean on the reader under test.
fn npy(path: &Path, descr: &str, fortran: bool, shape: &[usize], data: &[u8]) {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut h = format!(
        "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
        if fortran { "True" } else { "False" }
    );
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(h.len() as u16).to_le_bytes());
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    std::fs::write(path, out).unwrap();
}

/// A refine that must fail before writing anything: no OUTDIR, no staging folder.
fn refine_fails(extra: &[&str], needles: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let c = chelsea();
    let mut args = vec!["refine", s(&c), "-o", s(&out), "--no-metrics"];
    if !extra.contains(&"--iters") {
        args.extend(["--iters", "2"]);
    }
    args.extend_from_slice(extra);
    assert_error(&borex(&args), needles);
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "a failed run left {left:?}");
}

fn read_f32(p: &Path) -> Array2<f32> {
    ndarray_npy::read_npy(p).unwrap()
}

/// `a` and `b` agree up to one positive factor (prior.npy may be written scaled),
/// to a relative `tol` of the largest value.
fn assert_proportional(a: &Array2<f32>, b: &Array2<f32>, tol: f64) {
    // f64 sums: an f32 sum over 50k values is off by ~1e-4 by itself.
    let norm = |m: &Array2<f32>| m.iter().map(|v| v.abs() as f64).sum::<f64>();
    let (na, nb) = (norm(a), norm(b));
    let d = a.iter().zip(b).map(|(x, y)| (*x as f64 / na - *y as f64 / nb).abs()).fold(0.0, f64::max);
    let scale = b.iter().map(|v| (*v as f64 / nb).abs()).fold(0.0, f64::max);
    assert!(d <= tol * scale, "not proportional: max diff {d} vs max {scale}");
}

#[test]
fn fortran_ordered_and_big_endian_priors_load_as_numpy_would() {
    let dir = tempfile::tempdir().unwrap();
    // A 224×224 ramp with a distinct value per pixel; numpy writes transposed arrays as Fortran order.
    let want = Array2::from_shape_fn((224, 224), |(r, c)| 1.0 + r as f32 + 0.001 * c as f32);
    let col_major: Vec<f32> = want.t().iter().copied().collect();
    let cases: [(&str, &str, bool, Vec<u8>); 3] = [
        ("f32_fortran", "<f4", true, col_major.iter().flat_map(|v| v.to_le_bytes()).collect()),
        ("f64_fortran_be", ">f8", true, col_major.iter().flat_map(|v| (*v as f64).to_be_bytes()).collect()),
        ("f32_be", ">f4", false, want.iter().flat_map(|v| v.to_be_bytes()).collect()),
    ];
    for (name, descr, fortran, data) in cases {
        let p = dir.path().join(format!("{name}.npy"));
        npy(&p, descr, fortran, &[224, 224], &data);
        let out = dir.path().join(name);
        ok(&borex(&["refine", s(&chelsea()), "-o", s(&out), "--prior", s(&p), "--iters", "1", "--no-metrics"]));
        assert_proportional(&read_f32(&out.join("prior.npy")), &want, 1e-5);
    }
}

#[test]
fn malformed_npy_priors_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    // 300 bytes claiming 200000×200000 float32 (160 GB): refused from the header, before allocating.
    npy(&p("huge.npy"), "<f4", false, &[200000, 200000], &[0; 200]);
    refine_fails(&["--prior", s(&p("huge.npy"))], &["huge.npy", "200000", "more than"]);
    npy(&p("cut.npy"), "<f4", false, &[224, 224], &[0; 1000]);
    refine_fails(&["--prior", s(&p("cut.npy"))], &["cut.npy", "truncated", "200704 bytes"]);
    npy(&p("flat.npy"), "<f4", false, &[50176], &[0; 200704]);
    refine_fails(&["--prior", s(&p("flat.npy"))], &["flat.npy", "1-D", "2-D"]);
    npy(&p("cube.npy"), "<f4", false, &[1, 224, 224], &[0; 200704]);
    refine_fails(&["--prior", s(&p("cube.npy"))], &["cube.npy", "3-D"]);
    npy(&p("ints.npy"), "<i4", false, &[224, 224], &[0; 200704]);
    refine_fails(&["--prior", s(&p("ints.npy"))], &["ints.npy", "dtype <i4"]);
    let nan: Vec<u8> = (0..224 * 224).flat_map(|i| if i == 777 { f32::NAN } else { 1.0f32 }.to_le_bytes()).collect();
    npy(&p("nan.npy"), "<f4", false, &[224, 224], &nan);
    refine_fails(&["--prior", s(&p("nan.npy"))], &["non-finite"]);
}

#[test]
fn counts_and_sizes_are_bounded_with_the_flag_named() {
    refine_fails(&["--iters", "4294967295"], &["--iters 4294967295", "between 1 and 2000"]);
    refine_fails(&["--iters", "18446744073709551615"], &["--iters 18446744073709551615", "2000"]);
    refine_fails(&["--batch", "100000"], &["--batch 100000", "1024"]);
    refine_fails(&["--input-size", "30000"], &["--input-size 30000", "4096"]);
    refine_fails(&["--input-size", "10"], &["--input-size 10", "between 32"]);
    refine_fails(&["--resize", "0"], &["--resize 0"]);
    refine_fails(&["--sizes", "500"], &["--sizes 500", "covers the whole 224×224 input"]);
    refine_fails(&["--sizes", "30,45,30"], &["--sizes lists 30 twice"]);
    // --batch 1024 of 4096² inputs would be 192 GiB per call.
    refine_fails(&["--input-size", "4096", "--batch", "1024"], &["--batch 1024", "use a batch of"]);
    let explain_fails = |extra: &[&str], needles: &[&str]| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let c = chelsea();
        let mut args = vec!["explain", s(&c), "-o", s(&out), "--no-metrics"];
        args.extend_from_slice(extra);
        assert_error(&borex(&args), needles);
        assert!(!out.exists());
    };
    explain_fails(&["-m", "cameras", "--scales", "8"], &["--scales 8", "between 16"]);
    explain_fails(&["-m", "cameras", "--scales", "0"], &["--scales 0"]);
    explain_fails(&["-m", "cameras", "--scales", "224,224"], &["--scales lists 224 twice"]);
    explain_fails(&["-m", "rise", "--masks", "0"], &["N = 0"]);
    explain_fails(&["-m", "rise", "--masks", "99999999999"], &["--masks 99999999999"]);
    explain_fails(&["-m", "occlusion", "--stride", "1000"], &["--stride 1000", "larger than the 224×224 input"]);
    explain_fails(&["-m", "occlusion", "--window", "0"], &["--window 0"]);
}

#[test]
fn refine_rejects_sizes_that_ask_one_question_everywhere() {
    // Half-width 224 at a 224×224 input: every box covers the whole input, refused before any model work.
    refine_fails(&["--sizes", "30,224"], &["--sizes 224", "covers the whole 224×224 input", "use sizes below 224"]);
    // One less is not refused: boxes centred near an edge leave part of the input out. A size over
    // half the input is a note, and the run asks its questions with the sizes given.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    let o = borex(&["refine", s(&chelsea()), "-o", s(&out), "--sizes", "30,223", "--iters", "3", "--no-metrics"]);
    ok(&o);
    assert!(stderr(&o).contains("note: box half-width 223 is more than half"), "{}", stderr(&o));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let obs = r["observations"].as_array().unwrap();
    assert_eq!(obs.len(), 3);
    // The first query is the prior's peak with the smallest box; every query uses one of the two sizes.
    assert_eq!(obs[0]["size"], 30);
    assert!(obs.iter().all(|o| o["size"] == 30 || o["size"] == 223), "{obs:?}");
    assert!(r["notes"].as_array().unwrap().iter().any(|n| n.as_str().unwrap().contains("half-width 223")));
}

/// Every count flag of every subcommand is bounded, and the bound is checked before any model work:
/// each case names a model that does not exist, so an error about the flag (not about the model) shows the
/// check came first. Before: `eval mosaic --mosaics 99999999999` and `bench --observations 100000000`
/// aborted on an allocation, `bench --repeat/--masks` were unbounded, `bench --iters 5000` failed after 68 s.
#[test]
fn every_count_flag_is_bounded_before_any_model_work() {
    let dir = tempfile::tempdir().unwrap();
    let classes = dir.path().join("classes");
    std::fs::create_dir_all(&classes).unwrap();
    let out = dir.path().join("out");
    let (img, c, o) = (chelsea(), s(&classes).to_string(), s(&out).to_string());
    let i = s(&img).to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["eval", "mosaic", &c, "-o", &o, "--mosaics", "99999999999"],
            "--mosaics 99999999999 is out of range: it must be between 1 and 100000",
        ),
        (vec!["eval", "mosaic", &c, "-o", &o, "--batch", "100000"], "--batch 100000 is out of range"),
        (vec!["eval", &i, "-o", &o, "--iters", "5000"], "--iters 5000 is out of range: it must be between 1 and 2000"),
        (vec!["eval", &i, "-o", &o, "--batch", "0"], "--batch 0 is out of range"),
        (
            vec!["bench", "--observations", "100000000"],
            "--observations 100000000 is out of range: it must be between 2 and 2000",
        ),
        (vec!["bench", "--repeat", "100000000"], "--repeat 100000000 is out of range: it must be between 1 and 1000"),
        (vec!["bench", "--masks", "100000000"], "--masks 100000000 is out of range: it must be between 1 and 1000000"),
        (vec!["bench", "--iters", "5000"], "--iters 5000 is out of range: it must be between 1 and 2000"),
        (vec!["bench", "--batch", "5000"], "--batch 5000 is out of range"),
        (vec!["bench", "--stride", "1000"], "--stride 1000 is out of range"),
        (vec!["bench", "--refit-every", "100000"], "--refit-every 100000 is out of range"),
        (vec!["bench", "--size", "8"], "--size 8 is out of range: it must be between 32 and 4096"),
        (vec!["classify", &i, "--top", "1000000000"], "--top 1000000000 is out of range"),
        (vec!["classify", &i, "--batch", "100000"], "--batch 100000 is out of range"),
        (vec!["counterfactual", &i, "-o", &o, "--targets", "100000"], "--targets 100000 is out of range"),
        (
            vec!["counterfactual", &i, "-o", &o, "--target", "1", "--steps", "100000000"],
            "--steps 100000000 is out of range",
        ),
        (
            vec!["counterfactual", &i, "-o", &o, "--target", "1", "--restarts", "100000"],
            "--restarts 100000 is out of range",
        ),
        (vec!["refine", &i, "-o", &o, "--lockstep", "100000"], "--lockstep 100000 is out of range"),
        (vec!["refine", &i, "-o", &o, "--refit-every", "100000"], "--refit-every 100000 is out of range"),
        (vec!["video", &c, "-o", &o, "--every", "100000000"], "--every 100000000 is out of range"),
        (
            vec!["video", &c, "-o", &o, "--warm-start", "--keyframe-every", "100000000"],
            "--keyframe-every 100000000 is out of range",
        ),
        (vec!["video", &c, "-o", &o, "--mode", "clip", "--clip-len", "100000"], "--clip-len 100000 is out of range"),
    ];
    for (mut args, needle) in cases {
        args.extend(["--model", "/nonexistent/never.onnx"]);
        assert_error(&borex(&args), &[needle]);
        assert!(!out.exists(), "{args:?} wrote its output folder");
    }
}

/// Negative and non-finite values get borex's own message naming the flag, not clap's
/// "to pass '-1' as a value, use '-- -1'" nor an error blaming the model.
#[test]
fn negative_and_non_finite_values_get_borexs_message() {
    let i = chelsea();
    let usage = |args: &[&str], needles: &[&str]| {
        let o = borex(args);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {e}");
        assert!(!e.contains("'-- -1'") && !e.contains("unexpected argument"), "{args:?}: clap's message: {e}");
        for n in needles {
            assert!(e.contains(n), "{args:?}: {n:?} not in {e}");
        }
    };
    usage(&["video", "x.mp4", "-o", "/tmp/never", "--every", "-1"], &["--every", "must be a whole number ≥ 1, not -1"]);
    usage(&["video", "x.mp4", "-o", "/tmp/never", "--shard", "-1/2"], &["--shard", "I/N with 0 ≤ I < N"]);
    usage(&["refine", s(&i), "-o", "/tmp/never", "--shard", "-1/2"], &["--shard", "I/N with 0 ≤ I < N"]);
    usage(&["refine", s(&i), "-o", "/tmp/never", "--std", "-1,1,1"], &["--std", "each std must be > 0, not -1"]);
    usage(&["refine", s(&i), "-o", "/tmp/never", "--mean", "nan,1,1"], &["--mean", "finite numbers"]);
    usage(&["classify", s(&i), "--mean", "-inf,1,1"], &["--mean", "finite numbers"]);
    assert!(!Path::new("/tmp/never").exists());
}

/// Nonsense that used to exit 0: a duplicate method, a 1×1 video, an absurd frame rate.
#[test]
fn nonsense_video_and_method_lists_are_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let i = chelsea();
    assert_error(&borex(&["eval", s(&i), "-o", s(&out), "--methods", "cam,cam"]), &["--methods lists cam twice"]);
    let frames = dir.path().join("frames");
    std::fs::create_dir_all(&frames).unwrap();
    image::RgbImage::new(1, 1).save(frames.join("f0.png")).unwrap();
    assert_error(&borex(&["video", s(&frames), "-o", s(&out)]), &["frames", "1×1 are too small", "16×16"]);
    image::RgbImage::new(32, 32).save(frames.join("f0.png")).unwrap();
    assert_error(&borex(&["video", s(&frames), "-o", s(&out), "--fps", "1e9"]), &["frame rate of 1000000000", "--fps"]);
    assert!(!out.exists());
}

/// `-o .` says why it cannot be used (a run is written beside OUTDIR and swapped in whole).
#[test]
fn output_to_the_current_folder_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_borex"))
        .current_dir(dir.path())
        .args(["refine", s(&chelsea()), "-o", ".", "--iters", "1", "--no-metrics"])
        .output()
        .unwrap();
    assert_error(&o, &["output folder .", "names no folder of its own", "e.g. -o out"]);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing written");
}

/// `video merge` of a finished unsharded run says so (it used to say a group "is not done").
#[test]
fn merging_an_unsharded_video_run_says_it_is_unsharded() {
    let dir = tempfile::tempdir().unwrap();
    // A finished run of one 32×32 frame, made without --shard.
    let frames = dir.path().join("frames");
    std::fs::create_dir_all(&frames).unwrap();
    image::RgbImage::from_pixel(32, 32, image::Rgb([120, 40, 200])).save(frames.join("f0.png")).unwrap();
    let run = dir.path().join("run");
    ok(&borex(&["--device", "cpu", "-q", "video", s(&frames), "-o", s(&run), "--iters", "1", "--no-metrics"]));
    let out = dir.path().join("merged");
    assert_error(
        &borex(&["video", "merge", s(&run), "-o", s(&out)]),
        &["run", "an unsharded run (it ran without --shard)", "nothing to merge", "its outputs are complete"],
    );
    assert!(!out.exists());
}

/// Every `counterfactual` flag has a help line.
#[test]
fn every_counterfactual_flag_has_help() {
    let o = borex(&["counterfactual", "--help"]);
    ok(&o);
    let help = String::from_utf8_lossy(&o.stdout).into_owned();
    let lines: Vec<&str> = help.lines().collect();
    let mut flags = 0;
    for (k, l) in lines.iter().enumerate() {
        if !l.trim_start().starts_with('-') {
            continue;
        }
        flags += 1;
        // Help on the flag's line ("  --flag <V>  Help") or, when long, indented on the next.
        let inline = l.trim_start().split_once("  ").map(|(_, t)| t.trim()).unwrap_or("");
        let next = lines.get(k + 1).map(|n| n.trim()).unwrap_or("");
        assert!(!inline.is_empty() || (!next.is_empty() && !next.starts_with('-')), "no help for {l:?}");
    }
    assert!(flags >= 15, "{help}");
}

#[test]
fn extreme_aspect_ratio_is_refused_before_resizing() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("wide.png");
    image::RgbImage::new(24000, 1).save(&p).unwrap();
    assert!(std::fs::metadata(&p).unwrap().len() < 1000);
    assert_error(&borex(&["classify", s(&p)]), &["wide.png", "24000×1", "extreme aspect ratio", "6144000×256"]);
    // Under the pixel limit but not the side limit: 1×2000 would be resized to 256×512000 (found by fuzzing,
    // fuzz/regressions/image/thin_1x2000.png: 20 s and 470 MB before the side bound).
    let thin = dir.path().join("thin.png");
    image::RgbImage::new(1, 2000).save(&thin).unwrap();
    assert_error(&borex(&["classify", s(&thin)]), &["thin.png", "1×2000", "extreme aspect ratio", "256×512000"]);
}

#[test]
fn non_finite_settings_are_named() {
    refine_fails(&["--gain", "inf"], &["--gain must be a finite number ≥ 0, not inf"]);
    refine_fails(&["--gain", "nan"], &["--gain must be a finite number ≥ 0, not NaN"]);
    // Negative numbers reach the check as values, not as unknown flags.
    refine_fails(&["--gain", "-10"], &["--gain must be a finite number ≥ 0, not -10"]);
    refine_fails(&["--kappa", "-1"], &["--kappa must be a finite number ≥ 0, not -1"]);
    let o = borex(&["refine", s(&chelsea()), "-o", "/tmp/never", "--class", "-1"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("class id -1 is negative"), "{}", stderr(&o));
}

#[test]
fn nan_from_the_model_is_an_error_not_a_nan_map() {
    let m = fixture("nan_logits.onnx");
    refine_fails(
        &["--model", s(&m), "--input-size", "64", "--prior", "rise-fast"],
        &["nan_logits.onnx", "non-finite scores"],
    );
}

#[test]
fn a_model_that_ignores_its_input_gets_a_note_not_a_confident_map() {
    // constant_logits.onnx: logits = its bias whatever the input. Refine and explain wrote
    // maps and scores with exit 0 and nothing saying they carry no information.
    let dir = tempfile::tempdir().unwrap();
    let c = chelsea();
    let tiny = ["--input-size", "32", "--labels"];
    let labels = dir.path().join("labels.txt");
    std::fs::write(&labels, "a\nb\nc\nd\n").unwrap();
    let note = "does not change under any mask, so the map carries no information";
    for (model, noted) in [("constant_logits.onnx", true), ("gap_linear_logits.onnx", false)] {
        let m = fixture(model);
        for cmd in [
            vec!["refine", "--prior", "rise-fast", "--iters", "3"],
            vec!["explain", "--method", "rise-fast"],
            // A window below the 32×32 input: one covering it is refused as a constant map.
            vec!["explain", "--method", "occlusion", "--no-metrics", "--window", "8"],
        ] {
            let out = dir.path().join("o");
            let mut args = cmd.clone();
            args.extend([s(&c), "-o", s(&out), "--model", s(&m)]);
            args.extend(tiny);
            args.push(s(&labels));
            let o = borex(&args);
            ok(&o);
            let report: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
            let notes = report["notes"].to_string();
            assert_eq!(stderr(&o).contains(note), noted, "{model} {cmd:?}: {}", stderr(&o));
            assert_eq!(notes.contains(note), noted, "{model} {cmd:?}: {notes}");
            if noted {
                // The class and its (constant) probability, softmax of the bias [0.1, −0.2, 0.3, 0].
                assert!(notes.contains("class 2 (c) is 0.315"), "{notes}");
            }
        }
    }
}

#[test]
fn a_one_class_model_is_refused_unless_its_output_is_a_probability() {
    // Softmax over one class is 1 for every input: every map was flat, insertion = deletion = 1.
    let m = fixture("one_class.onnx");
    let one = ["--model", s(&m), "--input-size", "32"];
    refine_fails(&one, &["one_class.onnx", "one class output", "--output-kind probabilities"]);
    assert_error(&borex(&[&["classify", s(&chelsea()), "--top", "1"][..], &one].concat()), &["one class output"]);
}

#[test]
fn classify_notes_scores_taken_as_probabilities_that_are_not() {
    // gap_linear_logits.onnx outputs logits; `--output-kind probabilities` printed them as
    // probabilities without a word. Detected (no flag), softmax is applied and nothing is said.
    let dir = tempfile::tempdir().unwrap();
    let labels = dir.path().join("labels.txt");
    std::fs::write(&labels, "a\nb\nc\nd\n").unwrap();
    let (c, m) = (chelsea(), fixture("gap_linear_logits.onnx"));
    let base =
        ["classify", s(&c), "--model", s(&m), "--input-size", "32", "--labels", s(&labels), "--top", "4", "--json"];
    let o = borex(&[&base[..], &["--output-kind", "probabilities"][..]].concat());
    ok(&o);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let raw: Vec<f64> =
        v[0]["predictions"].as_array().unwrap().iter().map(|p| p["probability"].as_f64().unwrap()).collect();
    let sum: f64 = raw.iter().sum();
    assert!(raw.iter().any(|p| !(0.0..=1.0).contains(p)) || (sum - 1.0).abs() > 1e-3, "not logits after all: {raw:?}");
    let note = v[0]["notes"][0].as_str().unwrap_or_default();
    assert!(note.contains("taken as probabilities") && note.contains("sum to"), "{v}");
    assert!(stderr(&o).contains("note: ") && stderr(&o).contains("pass --output-kind logits"), "{}", stderr(&o));
    let o = borex(&base);
    ok(&o);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v[0]["notes"].is_null() && !stderr(&o).contains("note: "), "{v} {}", stderr(&o));
    let p: f64 = v[0]["predictions"].as_array().unwrap().iter().map(|p| p["probability"].as_f64().unwrap()).sum();
    assert!((p - 1.0).abs() < 1e-5, "softmax over all four classes: {p}");

    // refine and explain read the same raw scores as probabilities: their reports say so too.
    for cmd in [vec!["refine", "--prior", "rise-fast", "--iters", "3"], vec!["explain", "--method", "rise-fast"]] {
        for (kind, noted) in [(Some("probabilities"), true), (None, false)] {
            let out = dir.path().join("o");
            let mut args = cmd.clone();
            args.extend([s(&c), "-o", s(&out), "--model", s(&m), "--input-size", "32", "--labels", s(&labels)]);
            if let Some(k) = kind {
                args.extend(["--output-kind", k]);
            }
            let o = borex(&args);
            ok(&o);
            let report: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
            let notes = report["notes"].to_string();
            assert_eq!(notes.contains("taken as probabilities"), noted, "{cmd:?} {kind:?}: {notes}");
            assert_eq!(stderr(&o).contains("pass --output-kind logits"), noted, "{cmd:?} {kind:?}: {}", stderr(&o));
        }
    }
}

#[test]
fn ambiguous_class_names_list_the_matches() {
    refine_fails(&["--class", "crane"], &["\"crane\" is ambiguous", "134 (crane)", "517 (crane)"]);
}

#[test]
fn dropped_alpha_and_colour_priors_are_noted() {
    let dir = tempfile::tempdir().unwrap();
    let rgba = dir.path().join("rgba.png");
    let src = image::open(chelsea()).unwrap().to_rgba8();
    src.save(&rgba).unwrap();
    let prior = dir.path().join("prior.png");
    image::RgbImage::from_fn(224, 224, |x, y| image::Rgb([x as u8, y as u8, 0])).save(&prior).unwrap();
    let out = dir.path().join("o");
    let o = borex(&["refine", s(&rgba), "-o", s(&out), "--prior", s(&prior), "--iters", "2", "--no-metrics"]);
    ok(&o);
    let err = stderr(&o);
    assert!(err.contains("the alpha channel is dropped"), "{err}");
    assert!(err.contains("is a colour image: its luminance is used"), "{err}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let notes = report["notes"].to_string();
    assert!(notes.contains("alpha channel is dropped") && notes.contains("luminance is used"), "{notes}");
}

#[test]
fn a_prior_at_the_original_resolution_is_cropped_like_the_image() {
    let c = chelsea();
    let (w, h) = image::image_dimensions(&c).unwrap();
    assert_eq!((w, h), (451, 300), "the geometry below is worked out for chelsea.png");
    // A horizontal ramp over the original image: value = original column + 1.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("full.npy");
    let data: Vec<u8> = (0..h).flat_map(|_| (0..w).flat_map(|x| (x as f32 + 1.0).to_le_bytes())).collect();
    npy(&p, "<f4", false, &[h as usize, w as usize], &data);
    let out = dir.path().join("o");
    let o = borex(&["refine", s(&c), "-o", s(&out), "--prior", s(&p), "--iters", "1", "--no-metrics"]);
    ok(&o);
    assert!(stderr(&o).contains("the original image's size: resized to 256×385 and centre-cropped"), "{}", stderr(&o));
    // Short side 300 → 256: width 451 → 385, crop offset (385 − 224)/2 = 80. Model column j sits at
    // original column (j + 80 + 0.5)·451/385 − 0.5; a linear ramp survives the resampling exactly.
    let m = read_f32(&out.join("prior.npy"));
    let want = Array2::from_shape_fn((224, 224), |(_, j)| ((j as f32 + 80.5) * 451.0 / 385.0 - 0.5) + 1.0);
    assert_proportional(&m, &want, 2e-3);
}

#[test]
fn an_unloadable_runtime_library_says_why() {
    let c = chelsea();
    assert_error(
        &borex(&["--ort-lib", "/etc/hostname", "classify", s(&c)]),
        &["/etc/hostname", "not a shared library"],
    );
    // An ELF file the loader refuses: the loader's own reason is passed on.
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("libonnxruntime.so");
    let mut elf = b"\x7fELF".to_vec();
    elf.extend_from_slice(&[0u8; 60]);
    std::fs::write(&fake, elf).unwrap();
    assert_error(
        &borex(&["--ort-lib", s(&fake), "classify", s(&c)]),
        &["libonnxruntime.so", "the dynamic loader says"],
    );
}

#[test]
fn classify_reports_bad_files_and_classifies_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.png");
    std::fs::write(&bad, "text").unwrap();
    let c = chelsea();
    let o = borex(&["classify", s(&bad), "/no/such.png", s(&c), "--top", "1", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("bad.png")
            && err.contains("/no/such.png")
            && err.contains("2 of 3 images could not be classified"),
        "{err}"
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[2]["predictions"][0]["class"], 282);
    assert!(v[0]["error"].as_str().unwrap().contains("not a readable image"));
    assert!(v[1]["predictions"].as_array().unwrap().is_empty());
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<_> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[test]
fn outputs_are_one_consistent_set() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    let c = chelsea();
    ok(&borex(&["refine", s(&c), "-o", s(&out), "--iters", "2", "--no-metrics", "--full-res"]));
    assert_eq!(names(&out), ["overlay.png", "prior.npy", "refined.npy", "refined_full.npy", "report.json"]);
    // A second run without --full-res replaces the set: no refined_full.npy of the earlier run stays.
    ok(&borex(&["refine", s(&c), "-o", s(&out), "--iters", "3", "--no-metrics"]));
    assert_eq!(names(&out), ["overlay.png", "prior.npy", "refined.npy", "report.json"]);
    assert_eq!(names(dir.path()), ["o"], "no staging folder left");
    // A failed run leaves the earlier outputs as they were.
    let before = std::fs::read(out.join("report.json")).unwrap();
    assert_error(&borex(&["refine", s(&c), "-o", s(&out), "--class", "crane"]), &["ambiguous"]);
    assert_eq!(std::fs::read(out.join("report.json")).unwrap(), before);
    // A folder of other files is never replaced.
    let docs = dir.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    std::fs::write(docs.join("thesis.tex"), "").unwrap();
    assert_error(
        &borex(&["refine", s(&c), "-o", s(&docs), "--iters", "2"]),
        &["docs", "not a borex output", "thesis.tex"],
    );
    // An output folder that cannot be created is named before any work.
    assert_error(
        &borex(&["refine", s(&c), "-o", "/proc/borex-out/x", "--iters", "2"]),
        &["output folder /proc/borex-out/x"],
    );
}

#[test]
fn an_interrupted_run_leaves_the_earlier_outputs_alone() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    let c = chelsea();
    ok(&borex(&["refine", s(&c), "-o", s(&out), "--iters", "2", "--no-metrics"]));
    let before: Vec<(String, Vec<u8>)> =
        names(&out).into_iter().map(|n| (n.clone(), std::fs::read(out.join(&n)).unwrap())).collect();
    // A long run, interrupted with SIGINT (Ctrl-C) while it works.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_borex"))
        .args(["refine", s(&c), "-o", s(&out), "--iters", "200", "--full-res", "--prior", "rise"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    // SAFETY: signalling our own child by pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{status:?}");
    let after: Vec<(String, Vec<u8>)> =
        names(&out).into_iter().map(|n| (n.clone(), std::fs::read(out.join(&n)).unwrap())).collect();
    assert!(before == after, "the earlier outputs changed");
    assert_eq!(names(dir.path()), ["o"], "staging folder or temporary file left behind");
}

mod gpu {
    use super::*;
    use borex::compute::cpu::CpuKernels;
    use borex::compute::gpu::GpuRiseSession;
    use borex::compute::{ImageKernels, RiseParams, RiseSession};

    /// A batch split over several dispatches gives the CPU twin's masks,
    /// masked images and sums (the path large inputs take).
    #[test]
    fn chunked_rise_batches_match_cpu() {
        let Some(ctx) = common::gpu_or_skip("chunked_rise_batches_match_cpu") else { return };
        let image =
            ndarray::Array3::from_shape_fn((3, 40, 56), |(c, y, x)| ((c * 7 + y * 3 + x) % 11) as f32 / 11.0 - 0.4);
        let params = RiseParams { n: 30, s: 6, p: 0.4, seed: 99 };
        let mut cpu = CpuKernels.rise_session(image.view(), &params, 2).unwrap();
        let mut gpu = GpuRiseSession::new(ctx, image.view(), &params, 2).unwrap();
        gpu.set_max_chunk(3);
        for (start, count) in [(0usize, 8usize), (8, 10), (18, 2)] {
            let (a, b) = (cpu.masked(start, count).unwrap(), gpu.masked(start, count).unwrap());
            assert!(common::max_abs_diff(a.as_slice().unwrap(), b.as_slice().unwrap()) <= 1e-5);
            let (ka, kb) = (cpu.last_masks().unwrap(), gpu.last_masks().unwrap());
            assert!(common::max_abs_diff(ka.as_slice().unwrap(), kb.as_slice().unwrap()) <= 1e-6);
            let w: Vec<f32> = (0..count * 2).map(|i| ((i * 5 + start) % 7) as f32 * 0.1).collect();
            cpu.accumulate(&w).unwrap();
            gpu.accumulate(&w).unwrap();
        }
        let ((sa, ta), (sb, tb)) = (cpu.finish().unwrap(), gpu.finish().unwrap());
        assert!(common::max_abs_diff(ta.as_slice().unwrap(), tb.as_slice().unwrap()) <= 1e-4);
        for (x, y) in sa.iter().zip(&sb) {
            assert!(common::max_abs_diff(x.as_slice().unwrap(), y.as_slice().unwrap()) <= 1e-4);
        }
    }

    /// A buffer the device refuses is a `BorexError::Gpu` at the next read,
    /// not a panic, and the context stays usable afterwards.
    #[test]
    fn device_errors_are_errors_not_panics() {
        let Some(ctx) = common::gpu_or_skip("device_errors_are_errors_not_panics") else { return };
        let err = ctx.probe_allocation(u64::MAX / 2).unwrap_err();
        assert!(matches!(err, borex::BorexError::Gpu(_)), "{err}");
        ctx.probe_allocation(1024).unwrap();
    }
}

/// The binary with `args`, which must end within `secs` (it is killed and the test fails otherwise):
/// a FIFO read by a borex that does not check blocks forever.
fn borex_within(args: &[&str], secs: u64) -> Output {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_borex"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(std::time::Duration::from_secs(secs)) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            // SAFETY: killing our own child by pid; it has not been reaped (wait_with_output is still waiting).
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("borex {args:?} did not finish within {secs} s");
        }
    }
}

fn mkfifo(p: &Path) {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo {}", p.display());
}

fn is_fifo(p: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_fifo())
}

#[test]
fn a_fifo_in_place_of_any_input_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = |name: &str| {
        let p = dir.path().join(name);
        mkfifo(&p);
        p
    };
    let (image, labels, model, list, prior) =
        (fifo("pipe.png"), fifo("labels.txt"), fifo("m.onnx"), fifo("list.txt"), fifo("prior.npy"));
    let c = chelsea();
    let out = dir.path().join("out");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["classify", s(&image)], "pipe.png"),
        (vec!["classify", s(&c), "--labels", s(&labels)], "labels.txt"),
        (vec!["classify", s(&c), "--model", s(&model)], "m.onnx"),
        (vec!["refine", "--manifest", s(&list), "-o", s(&out)], "list.txt"),
        (vec!["refine", s(&c), "-o", s(&out), "--iters", "2", "--prior", s(&prior)], "prior.npy"),
    ];
    for (args, name) in cases {
        let o = borex_within(&args, 60);
        assert_error(&o, &[name, "FIFO", "not a regular file"]);
    }
    // A run folder whose report.json or job.json is a FIFO.
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    mkfifo(&run.join("report.json"));
    assert_error(&borex_within(&["report", s(&run)], 60), &["report.json", "FIFO"]);
    let job = dir.path().join("job");
    std::fs::create_dir(&job).unwrap();
    mkfifo(&job.join("job.json"));
    assert_error(&borex_within(&["report", s(&job)], 60), &["job.json", "FIFO"]);
    assert!(!out.exists() && !dir.path().join("run/report.html").exists(), "nothing written");
}

#[test]
fn endless_and_oversized_inputs_stop_at_their_limit() {
    use borex::limits::{read_bounded, MAX_IMAGE_FILE_BYTES};
    // /dev/zero is read only here, with a cap of 4 KiB: the check refuses it before any byte is read.
    let t = std::time::Instant::now();
    let e = read_bounded(Path::new("/dev/zero"), 4096, "image").unwrap_err().to_string();
    assert!(e.contains("/dev/zero") && e.contains("character device") && e.contains("4 KiB"), "{e}");
    assert!(t.elapsed().as_secs() < 2);
    let dir = tempfile::tempdir().unwrap();
    // A file over its cap is refused from its size, naming the file and the cap.
    let big = dir.path().join("big.png");
    std::fs::File::create(&big).unwrap().set_len(MAX_IMAGE_FILE_BYTES + 1).unwrap();
    let o = borex_within(&["classify", s(&big)], 60);
    assert_error(&o, &["big.png", "over the 1 GiB", &(MAX_IMAGE_FILE_BYTES + 1).to_string()]);
    // Within the cap: the bytes, all of them.
    let small = dir.path().join("small.txt");
    std::fs::write(&small, vec![7u8; 5000]).unwrap();
    assert_eq!(read_bounded(&small, 5000, "labels").unwrap(), vec![7u8; 5000]);
    let e = read_bounded(&small, 4999, "labels").unwrap_err().to_string();
    assert!(e.contains("small.txt") && e.contains("5000 bytes"), "{e}");
    // A folder is not a file.
    let e = read_bounded(dir.path(), 10, "manifest").unwrap_err().to_string();
    assert!(e.contains("is a folder, not a regular file"), "{e}");
}

/// A device node of our own in a temporary folder (root only; `None` elsewhere).
fn mknod_null(p: &Path) -> Option<()> {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path; major 1, minor 3 is the null device.
    (unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o600, libc::makedev(1, 3)) } == 0).then_some(())
}

fn is_char_device(p: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_char_device())
}

#[test]
fn outputs_never_replace_a_device_or_a_fifo() {
    let dir = tempfile::tempdir().unwrap();
    let c = chelsea();
    let run = dir.path().join("run");
    ok(&borex(&["refine", s(&c), "-o", s(&run), "--iters", "2", "--no-metrics"]));
    // report -o: a FIFO, and a device node of our own (as root), stay what they are.
    let fifo = dir.path().join("page.html");
    mkfifo(&fifo);
    assert_error(&borex_within(&["report", s(&run), "-o", s(&fifo)], 60), &["page.html", "FIFO", "not a regular file"]);
    assert!(is_fifo(&fifo));
    let node = dir.path().join("null");
    if mknod_null(&node).is_some() {
        assert_error(&borex_within(&["report", s(&run), "-o", s(&node)], 60), &["null", "character device"]);
        assert!(is_char_device(&node), "the device node was replaced");
    }
    // A regular file is still replaced, atomically.
    let page = dir.path().join("p.html");
    std::fs::write(&page, "old").unwrap();
    ok(&borex(&["report", s(&run), "-o", s(&page)]));
    assert!(std::fs::read_to_string(&page).unwrap().starts_with("<!DOCTYPE html>"));
    // OUTDIR itself a FIFO.
    let o = borex_within(&["refine", s(&c), "-o", s(&fifo), "--iters", "2"], 60);
    assert_error(&o, &["page.html", "FIFO"]);
    assert!(is_fifo(&fifo));
    // An OUTDIR member: the summary.csv a bulk rerun rewrites.
    let many = dir.path().join("many");
    let manifest = dir.path().join("list.txt");
    std::fs::write(&manifest, format!("{}\n", s(&c))).unwrap();
    let args = ["refine", "--manifest", s(&manifest), "-o", s(&many), "--iters", "2", "--no-metrics"];
    ok(&borex(&args));
    std::fs::remove_file(many.join("summary.csv")).unwrap();
    mkfifo(&many.join("summary.csv"));
    assert_error(&borex_within(&args, 60), &["summary.csv", "FIFO", "not a regular file"]);
    assert!(is_fifo(&many.join("summary.csv")));
    // bench --out: refused before any benchmark runs.
    let o = borex_within(&["bench", "--out", s(&fifo), "--repeat", "1"], 60);
    assert_error(&o, &["page.html", "FIFO"]);
    assert!(is_fifo(&fifo));
}

#[test]
fn a_rerun_removes_the_staging_folder_a_killed_run_left() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("SK");
    let c = chelsea();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_borex"))
        .args(["refine", s(&c), "-o", s(&out), "--iters", "500", "--prior", "rise", "--full-res"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // SIGKILL once the staging folder is there: no handler runs, so it stays.
    let staged = || names(dir.path()).into_iter().filter(|n| n.starts_with(".SK.borex-")).collect::<Vec<_>>();
    let t = std::time::Instant::now();
    while staged().is_empty() && t.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let left = staged();
    assert_eq!(left.len(), 1, "{:?}", names(dir.path()));
    // Folders that look alike but are not this run's: no mark, or a mark naming another output.
    let foreign = dir.path().join(".SK.borex-abc123");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("thesis.tex"), "keep").unwrap();
    let other = dir.path().join(".SK.borex-xyz789");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join(".borex-staging"), "/somewhere/else/SK").unwrap();
    ok(&borex(&["refine", s(&c), "-o", s(&out), "--iters", "2", "--no-metrics"]));
    assert_eq!(names(dir.path()), [".SK.borex-abc123", ".SK.borex-xyz789", "SK"], "the killed run's staging is gone");
    assert_eq!(names(&out), ["overlay.png", "prior.npy", "refined.npy", "report.json"], "no mark in the outputs");
}
