//! `borex report` end to end: real refine, eval and video runs (small
//! settings) with the real binary, their pages checked in headless Chromium
//! by scripts/browser_check.py (console, images, step-through, sorting,
//! screenshots against the maps, HTML5 well-formedness), and bad folders.
//! A missing browser fails the browser test unless BOREX_ALLOW_NO_BROWSER=1.

mod common;

use common::{assert_error, asset, run_borex};
use ndarray::Array2;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn ok(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "borex failed: {err}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn sample(name: &str) -> String {
    asset(borex::paths::sample_image(name)).to_string_lossy().into_owned()
}

fn npy(p: &Path) -> Array2<f32> {
    ndarray_npy::read_npy(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Nothing in the page reaches outside it.
fn assert_self_contained(html: &str) {
    for needle in ["http://", "https://", "<link", "@import", "src=\"/", "src=\"file:"] {
        assert!(!html.contains(needle), "the page refers outside itself: {needle}");
    }
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
}

/// Every <img> has a non-empty alt text.
fn assert_alt_text(html: &str) {
    let n = html.matches("<img ").count();
    assert!(n > 0);
    for part in html.split("<img ").skip(1) {
        let tag = &part[..part.find('>').unwrap()];
        let alt = tag.split("alt=\"").nth(1).map(|a| &a[..a.find('"').unwrap()]);
        assert!(alt.is_some_and(|a| !a.trim().is_empty()), "an image without alt text: {}", &tag[..tag.len().min(80)]);
    }
}

fn python() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    if venv.exists() {
        venv
    } else {
        "python3".into()
    }
}

/// Whether Chromium, its driver and Selenium are there; without them the test fails unless BOREX_ALLOW_NO_BROWSER=1.
fn browser_or_skip(test: &str) -> bool {
    let has = |c: &str| {
        Command::new("sh").args(["-c", &format!("command -v {c}")]).output().is_ok_and(|o| o.status.success())
    };
    let selenium =
        Command::new(python()).args(["-c", "import selenium, html5lib"]).output().is_ok_and(|o| o.status.success());
    let missing: Vec<&str> =
        [("chromium", has("chromium")), ("chromedriver", has("chromedriver")), ("selenium/html5lib", selenium)]
            .into_iter()
            .filter(|(_, ok)| !ok)
            .map(|(n, _)| n)
            .collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var("BOREX_ALLOW_NO_BROWSER").is_ok_and(|v| v == "1") {
        eprintln!("\n!!!!!!!! SKIPPED {test}: {missing:?} missing and BOREX_ALLOW_NO_BROWSER=1; the pages are NOT checked in a browser !!!!!!!!\n");
        return false;
    }
    panic!("{test}: {missing:?} missing: scripts/test.sh installs Debian's chromium and chromium-driver and Selenium into .venv (or set BOREX_ALLOW_NO_BROWSER=1 to skip)");
}

/// A smooth 224² prior, so the runs spend their time in the loop.
fn blob_prior(dir: &Path) -> PathBuf {
    let p = dir.join("blob.npy");
    let m = Array2::from_shape_fn((224, 224), |(y, x)| {
        (-(((y as f32 - 90.0).powi(2) + (x as f32 - 130.0).powi(2)) / 3000.0)).exp()
    });
    ndarray_npy::write_npy(&p, &m).unwrap();
    p
}

#[test]
fn reports_of_refine_eval_and_video_runs_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // refine, with --report at the end of the run.
    let refine = d.join("refine");
    ok(&run_borex(
        &[
            "-q",
            "refine",
            &sample("chelsea.png"),
            "-o",
            s(&refine),
            "--iters",
            "12",
            "--insertion-start",
            "blur,zero",
            // Box queries named (the page's queries and step-through): a RISE prior's default is antithetic.
            "--objective",
            "matched",
            "--report",
        ],
        &[],
    ));
    let page = read(&refine.join("report.html"));
    assert_self_contained(&page);
    assert_alt_text(&page);
    // curves.json holds the curves behind report.json's AUCs: the trapezoid rule over them gives the same numbers.
    let curves: serde_json::Value = serde_json::from_str(&read(&refine.join("curves.json"))).unwrap();
    let report: serde_json::Value = serde_json::from_str(&read(&refine.join("report.json"))).unwrap();
    for map in ["prior", "refined"] {
        for metric in ["deletion", "insertion_blur", "insertion_zero"] {
            let v: Vec<f64> = curves[map][metric].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
            assert_eq!(v.len(), 225, "{map} {metric}");
            let auc = v.windows(2).map(|p| (p[0] + p[1]) / 2.0).sum::<f64>() / (v.len() - 1) as f64;
            let want = report[map][metric].as_f64().unwrap();
            assert!((auc - want).abs() < 1e-4, "{map} {metric}: trapezoid {auc} vs report {want}");
        }
    }
    // overlay.png shows each map on its own scale, by percentile, and report.json says so.
    assert_eq!(report["overlay_scale"], "percentile");
    // The step-through's last map (recomputed from report.json + prior.npy) is the refined map.
    let r: borex::report::views::RefineReportView = serde_json::from_value(report.clone()).unwrap();
    let prior = npy(&refine.join("prior.npy"));
    let refined = npy(&refine.join("refined.npy"));
    let steps = borex::report::steps::posterior_steps(&r, prior.view(), 50).unwrap();
    assert_eq!(steps.maps.len(), 12);
    let (k, last) = steps.maps.last().unwrap();
    assert_eq!(*k, 12);
    let span = refined.iter().fold(0.0f32, |a, v| a.max(v.abs()));
    let diff = common::max_abs_diff(last.as_slice().unwrap(), refined.as_slice().unwrap());
    assert!(diff < 1e-3 * span, "last step vs refined.npy: {diff} (span {span})");
    let first = &steps.maps[0].1;
    assert!(common::max_abs_diff(first.as_slice().unwrap(), refined.as_slice().unwrap()) > 0.05 * span);

    // eval with a refinement: two images, so the per-image table has rows to sort.
    let eval = d.join("eval");
    ok(&run_borex(
        &[
            "-q",
            "eval",
            &sample("coffee.png"),
            &sample("chelsea.png"),
            "--methods",
            "gradcam",
            "--refine",
            "--iters",
            "6",
            "-o",
            s(&eval),
            "--report",
        ],
        &[],
    ));
    let page = read(&eval.join("report.html"));
    assert_self_contained(&page);
    assert_alt_text(&page);
    assert!(page.contains("Paired tests") && page.contains("id=\"img-coffee\""));

    // video: four frames of FFmpeg's test pattern, then `borex report` on the folder.
    let clip = d.join("pattern.mp4");
    let st = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=10",
            "-frames:v",
            "4",
            "-pix_fmt",
            "yuv420p",
            s(&clip),
        ])
        .status()
        .expect("ffmpeg runs (scripts/setup.sh installs it)");
    assert!(st.success());
    let video = d.join("video");
    let blob = blob_prior(d);
    ok(&run_borex(
        &[
            "-q",
            "video",
            s(&clip),
            "-o",
            s(&video),
            "--prior",
            s(&blob),
            "--iters",
            "4",
            "--lockstep",
            "4",
            "--no-metrics",
        ],
        &[],
    ));
    let html_out = d.join("video.html");
    let said = ok(&run_borex(&["report", s(&video), "-o", s(&html_out)], &[]));
    assert!(said.contains("video report"), "{said}");
    let page = read(&html_out);
    assert_self_contained(&page);
    assert_alt_text(&page);
    assert!(page.contains("data:video/mp4;base64,"), "the small overlay video is embedded");

    if !browser_or_skip("reports_of_refine_eval_and_video_runs_in_a_browser") {
        return;
    }
    let first_frame = video.join("maps/frame_000000.npy");
    let eval_group = eval.join("runs/coffee/gradcam/seed0");
    let refined_eval = std::fs::read_dir(&eval_group)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "npy") && p.file_stem().unwrap() != "prior")
        .unwrap();
    let spec = serde_json::json!({"pages": [
        {
            "name": "refine",
            "path": refine.join("report.html"),
            // Each map on its own scale by default, its top 5 % outlined beside it; the toggle puts them on one.
            "panels": [
                {"css": "figure[data-panel=prior] img", "npy": refine.join("prior.npy"),
                 "outline": "figure[data-panel=prior-top] path.top5"},
                {"css": "figure[data-panel=refined] img", "npy": refine.join("refined.npy"),
                 "outline": "figure[data-panel=refined-top] path.top5"},
                // The step-through opens at the last query, whose map is refined.npy's.
                {"css": "img.step-map", "npy": refine.join("refined.npy"),
                 "outline": "figure[data-panel=step-top] path.top5", "outline_iou": 0.9},
            ],
            "own_scale": true,
            "toggle": true,
            "same_scale": [[0, 1]],
            "steps": true,
            "steps_final_npy": refine.join("refined.npy"),
            "sort_table": "r-query-table",
            "screenshot": d.join("refine.png"),
        },
        {
            "name": "eval",
            "path": eval.join("report.html"),
            "panels": [
                {"css": "#img-coffee figure[data-panel=eval-map]:nth-of-type(1) img", "npy": eval_group.join("prior.npy"),
                 "outline": "#img-coffee figure[data-panel=eval-map]:nth-of-type(1) path.top5"},
                {"css": "#img-coffee figure[data-panel=eval-map]:nth-of-type(2) img", "npy": refined_eval,
                 "outline": "#img-coffee figure[data-panel=eval-map]:nth-of-type(2) path.top5"},
            ],
            "own_scale": true,
            "toggle": true,
            "same_scale": [[0, 1]],
            "sort_table": "results",
            "screenshot": d.join("eval.png"),
        },
        {
            "name": "video",
            "path": &html_out,
            "panels": [{"css": "#frame-0 figure[data-panel=frame] img", "npy": first_frame}],
            "sort_table": "frames",
            "screenshot": d.join("video.png"),
        },
    ]});
    let spec_path = d.join("spec.json");
    std::fs::write(&spec_path, serde_json::to_string_pretty(&spec).unwrap()).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/browser_check.py");
    let out = Command::new(python()).arg(script).arg(&spec_path).output().expect("python runs");
    let (so, se) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "browser check failed:\n{so}\n{se}");
    for page in ["refine", "eval", "video"] {
        assert!(so.contains(&format!("ok {page}:")), "{so}");
        assert!(d.join(format!("{page}.png")).exists());
    }
    if let Ok(keep) = std::env::var("BOREX_REPORT_KEEP") {
        // For the README's screenshot and sizes: keep the pages.
        for f in ["refine.png", "eval.png", "video.png"] {
            let _ = std::fs::copy(d.join(f), Path::new(&keep).join(f));
        }
        for (from, to) in [
            (refine.join("report.html"), "refine.html"),
            (eval.join("report.html"), "eval.html"),
            (html_out, "video.html"),
        ] {
            let _ = std::fs::copy(from, Path::new(&keep).join(to));
        }
    }
}

#[test]
fn bad_folders_get_a_one_line_error_or_a_page_that_says_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Not a borex output; not a folder at all.
    let empty = d.join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert_error(&run_borex(&["report", s(&empty)], &[]), &["not a borex output", "empty"]);
    assert_error(&run_borex(&["report", s(&d.join("nope"))], &[]), &["nope", "not a folder"]);
    // report.json that is not JSON, and one of an unknown layout: the file is named, no page is left.
    let broken = d.join("broken");
    std::fs::create_dir(&broken).unwrap();
    std::fs::write(broken.join("report.json"), "{\"class\": 3, \"observ").unwrap();
    assert_error(&run_borex(&["report", s(&broken)], &[]), &["report.json", "not a borex JSON"]);
    assert!(!broken.join("report.html").exists());
    std::fs::write(broken.join("report.json"), "{\"kind\": \"something else\"}").unwrap();
    assert_error(&run_borex(&["report", s(&broken)], &[]), &["report.json", "older layout"]);
    // A video folder whose job.json is cut short.
    let video = d.join("video");
    std::fs::create_dir(&video).unwrap();
    std::fs::write(video.join("job.json"), "{\"mode\": \"fr").unwrap();
    assert_error(&run_borex(&["report", s(&video)], &[]), &["job.json"]);
    // An eval folder without its summary.
    let eval = d.join("eval");
    std::fs::create_dir(&eval).unwrap();
    std::fs::write(eval.join("results.csv"), "image,key\n").unwrap();
    assert_error(&run_borex(&["report", s(&eval)], &[]), &["summary.json"]);

    // A refine folder with a truncated .npy and no overlay: the page lists both and marks their panels.
    let refine = d.join("refine");
    std::fs::create_dir(&refine).unwrap();
    let report = serde_json::json!({
        "class": 1, "label": "x", "probability": 0.5,
        "prior": {"method": "rise-fast", "insertion": 0.4, "deletion": 0.2},
        "refined": {"insertion": 0.5, "deletion": 0.1, "prior_scale": 1.0, "prior_offset": 0.0},
        "settings": {"input_size": [16, 16], "grid": {"sizes": [3]}, "refine": {"alpha": 0.01}},
        "observations": [
            {"row": 4, "col": 4, "size": 3, "stored": [4.0, 4.0, 3.0], "p_inside": 0.6, "p_outside": 0.2, "f": 0.5, "length_scales": [3.0, 3.0, 2.0]},
            {"row": 11, "col": 9, "size": 3, "stored": [11.2, 8.7, 3.1], "p_inside": 0.3, "p_outside": 0.5, "f": -0.3, "length_scales": [3.0, 3.0, 2.0]}
        ],
    });
    std::fs::write(refine.join("report.json"), serde_json::to_string(&report).unwrap()).unwrap();
    let m = Array2::from_shape_fn((16, 16), |(y, x)| (y * 16 + x) as f32 / 256.0);
    ndarray_npy::write_npy(refine.join("prior.npy"), &m).unwrap();
    let full = std::fs::read(refine.join("prior.npy")).unwrap();
    std::fs::write(refine.join("refined.npy"), &full[..full.len() / 2]).unwrap();
    let out = run_borex(&["report", s(&refine)], &[]);
    let said = ok(&out);
    assert!(said.contains("refine report"), "{said}");
    let page = read(&refine.join("report.html"));
    assert!(page.contains("Missing or unreadable"));
    assert!(page.contains("refined.npy: not a readable float32 .npy"), "the truncated file is named");
    assert!(page.contains("overlay.png"), "the missing overlay is named");
    assert!(page.contains("Refined map: refined.npy is missing or unreadable"));
    // The prior and the recomputed steps still show: two posterior maps.
    assert!(page.contains("after query 2 of 2"));
    assert_self_contained(&page);
    assert_alt_text(&page);
}

#[test]
fn counterfactual_and_many_image_pages() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A counterfactual of a digit on the robust MNIST model (fast).
    let x: ndarray::Array3<u8> = ndarray_npy::read_npy(common::fixture("mnist_heldout_images.npy")).unwrap();
    let digit = d.join("digit.png");
    image::GrayImage::from_fn(28, 28, |c, r| image::Luma([x[[0, r as usize, c as usize]]])).save(&digit).unwrap();
    let cf = d.join("cf");
    let model = common::fixture("robust_mnist.onnx");
    ok(&run_borex(
        &[
            "-q",
            "counterfactual",
            s(&digit),
            "--model",
            s(&model),
            "--target",
            "7",
            "--eps",
            "6",
            "--steps",
            "20",
            "-o",
            s(&cf),
        ],
        &[],
    ));
    let said = ok(&run_borex(&["report", s(&cf)], &[]));
    assert!(said.contains("counterfactual report"), "{said}");
    let page = read(&cf.join("report.html"));
    assert_self_contained(&page);
    assert_alt_text(&page);
    // The mask counts the pixels whose summed |change| is over the threshold: counted here from change_abs.npy.
    let abs = npy(&cf.join("change_abs.npy"));
    let n = abs.iter().filter(|v| **v > 0.01f32).count();
    assert!(n > 0);
    assert!(page.contains(&format!("Σ|change| &gt; 0.0100: {n}")), "mask count {n} not on the page");
    let r: serde_json::Value = serde_json::from_str(&read(&cf.join("report.json"))).unwrap();
    let t = &r["targets"][0];
    let (before, after) = (t["probability_before"].as_f64().unwrap(), t["probability_after"].as_f64().unwrap());
    let fmt = |v: f64| borex::report::html::num(Some(v));
    assert!(page.contains(&format!("{} → {}", fmt(before), fmt(after))), "probabilities before → after");
    for panel in ["original", "counterfactual", "change", "mask"] {
        assert!(page.contains(&format!("data-panel=\"{panel}\"")), "{panel}");
    }

    // Many images: a folder per image and summary.csv; each table row links to its section.
    let blob = blob_prior(d);
    let many = d.join("many");
    ok(&run_borex(
        &[
            "-q",
            "refine",
            &sample("coffee.png"),
            &sample("rocket.jpg"),
            "-o",
            s(&many),
            "--prior",
            s(&blob),
            "--iters",
            "3",
            "--no-metrics",
            "--report",
        ],
        &[],
    ));
    let page = read(&many.join("report.html"));
    assert_self_contained(&page);
    assert_alt_text(&page);
    for i in 0..2 {
        assert!(page.contains(&format!("href=\"#img-{i}\"")) && page.contains(&format!("<section id=\"img-{i}\"")));
    }
    assert_eq!(page.matches("data-panel=\"refined\"").count(), 2);

    if !browser_or_skip("counterfactual_and_many_image_pages") {
        return;
    }
    let spec = serde_json::json!({"pages": [
        // The 5 % of pixels changed most, outlined on the original (28² enlarged 8×: a pixel more or less is 1/40).
        {"name": "counterfactual", "path": cf.join("report.html"),
         "outlines": [{"outline": "figure[data-panel=change-top] path.top5", "npy": cf.join("change_abs.npy"),
                       "outline_iou": 0.9}]},
        {
            "name": "many",
            "path": many.join("report.html"),
            "panels": [{"css": "#img-0 figure[data-panel=refined] img", "npy": many.join("coffee/refined.npy")}],
        },
    ]});
    let spec_path = d.join("spec.json");
    std::fs::write(&spec_path, serde_json::to_string_pretty(&spec).unwrap()).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/browser_check.py");
    let out = Command::new(python()).arg(script).arg(&spec_path).output().expect("python runs");
    let (so, se) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "browser check failed:\n{so}\n{se}");
}

#[test]
fn step_through_of_the_detail_readout_ends_at_refined_npy() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("detail");
    let args = ["--device", "cpu", "-q", "refine", &sample("chelsea.png"), "-o", s(&out), "--iters", "6"];
    ok(&run_borex(&[&args[..], &["--readout", "detail", "--no-metrics"]].concat(), &[]));
    let report: serde_json::Value = serde_json::from_str(&read(&out.join("report.json"))).unwrap();
    let r: borex::report::views::RefineReportView = serde_json::from_value(report).unwrap();
    let (prior, refined) = (npy(&out.join("prior.npy")), npy(&out.join("refined.npy")));
    let steps = borex::report::steps::posterior_steps(&r, prior.view(), 50).unwrap();
    let span = refined.iter().fold(0.0f32, |a, v| a.max(v.abs()));
    let last = &steps.maps.last().unwrap().1;
    let diff = common::max_abs_diff(last.as_slice().unwrap(), refined.as_slice().unwrap());
    assert!(diff < 1e-3 * span, "last step vs refined.npy: {diff} (span {span})");
}

/// A refine folder made by hand: `n` observations, 16×16 maps (`prior` as given), an overlay, `label`.
fn hand_made_refine(dir: &Path, n: usize, prior: &Array2<f32>, label: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let observations: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let (r, c) = (2 + i % 12, 2 + (i / 12) % 12);
            serde_json::json!({"row": r, "col": c, "size": 3, "stored": [r as f64, c as f64, 3.0],
                "p_inside": 0.6, "p_outside": 0.2, "f": 0.4, "length_scales": [3.0, 3.0, 2.0]})
        })
        .collect();
    let report = serde_json::json!({
        "class": 1, "label": label, "probability": 0.5,
        "prior": {"method": "rise-fast", "insertion": 0.4, "deletion": 0.2},
        "refined": {"insertion": 0.5, "deletion": 0.1, "prior_scale": 1.0, "prior_offset": 0.0},
        "settings": {"input_size": [16, 16], "grid": {"sizes": [3]}, "refine": {"alpha": 0.01}},
        "observations": observations,
    });
    std::fs::write(dir.join("report.json"), serde_json::to_string(&report).unwrap()).unwrap();
    ndarray_npy::write_npy(dir.join("prior.npy"), prior).unwrap();
    let refined = Array2::from_shape_fn((16, 16), |(y, x)| (x + y) as f32 / 32.0);
    ndarray_npy::write_npy(dir.join("refined.npy"), &refined).unwrap();
    image::RgbImage::from_pixel(48, 16, image::Rgb([200, 100, 50])).save(dir.join("overlay.png")).unwrap();
}

fn ramp() -> Array2<f32> {
    Array2::from_shape_fn((16, 16), |(y, x)| (y * 16 + x) as f32 / 256.0)
}

#[test]
fn a_report_json_beyond_refines_own_limits_is_refused_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("many-queries");
    hand_made_refine(&d, 2001, &ramp(), "x");
    let t = std::time::Instant::now();
    assert_error(&run_borex(&["report", s(&d)], &[]), &["report.json", "2001 observations", "2000"]);
    assert!(t.elapsed().as_secs() < 20, "took {:?}", t.elapsed());
    // A huge file is refused from its size, before any of it is read.
    let huge = dir.path().join("huge");
    std::fs::create_dir(&huge).unwrap();
    std::fs::File::create(huge.join("report.json")).unwrap().set_len(borex::limits::MAX_JSON_BYTES + 1).unwrap();
    let t = std::time::Instant::now();
    assert_error(&run_borex(&["report", s(&huge)], &[]), &["report.json", "over the 16 MiB"]);
    assert!(t.elapsed().as_secs() < 20, "took {:?}", t.elapsed());
    assert!(!d.join("report.html").exists() && !huge.join("report.html").exists());
}

#[test]
fn a_many_image_page_reads_only_inside_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Another run's folder beside OUTDIR, with a label that must not reach the page.
    hand_made_refine(&d.join("secret"), 2, &ramp(), "TOPSECRET");
    let many = d.join("many");
    hand_made_refine(&many.join("good"), 2, &ramp(), "goodlabel");
    std::os::unix::fs::symlink("../secret", many.join("link")).unwrap();
    let long = "a".repeat(236) + ".png";
    let row = |image: &str, folder: &str| format!("{image},{folder},ok,1,x,0.5,0.4,0.2,0.5,0.1,10,1.0,\n");
    let mut csv = borex::refine::bulk::SUMMARY_HEADER.join(",") + "\n";
    csv += &row("up.png", "../secret");
    csv += &row("abs.png", "/etc");
    csv += &row("link.png", "link");
    csv += &row(&long, "good");
    std::fs::write(many.join("summary.csv"), csv).unwrap();
    ok(&run_borex(&["report", s(&many)], &[]));
    let page = read(&many.join("report.html"));
    assert!(!page.contains("TOPSECRET"), "a file outside OUTDIR reached the page");
    for folder in ["../secret", "/etc", "link"] {
        assert!(page.contains(&format!("names &quot;{folder}&quot;, which is not inside")), "{folder} not listed");
    }
    assert!(page.contains("goodlabel"), "the folder inside OUTDIR is shown");
    // The 240-character name: cut to the column, whole on hover.
    assert!(page.contains(&format!(r#"class="fname" title="{long}""#)), "the long name has no title");
    assert!(page.contains(".fname{display:inline-block;max-width:16rem;overflow:hidden;text-overflow:ellipsis"));
}

#[test]
fn an_all_nan_prior_is_listed_as_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("r");
    hand_made_refine(&d, 2, &Array2::from_elem((16, 16), f32::NAN), "x");
    ok(&run_borex(&["report", s(&d)], &[]));
    let page = read(&d.join("report.html"));
    assert!(page.contains("Missing or unreadable"));
    assert!(page.contains("prior.npy: 256 of its 256 values are NaN or infinite"), "the prior is not listed");
    assert!(!page.contains("mean NaN"));
    assert!(page.contains("Prior map: prior.npy is missing or unreadable"));
}
