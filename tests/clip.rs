//! `borex video --mode clip` and the clip model: the converter's consensus
//! model against per-frame scoring with the plain model (ONNX Runtime both);
//! the space-time BOREx loop end to end on a clip FFmpeg makes here, where a
//! sample image's cat is shown in known frames at a known place (the map's
//! temporal and spatial peak must follow it); resume after a real kill,
//! shards and merge against an uninterrupted run of the same command; and the
//! bad inputs clip mode refuses with a one-line error.

mod common;

use borex::model::{Classifier, InputKind, ModelOptions, OutputKind};
use common::{assert_error, asset, ffmpeg, frame_count, no_leftovers, run_borex};
use ndarray::{Array3, Array5, Axis};
use std::path::{Path, PathBuf};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// 8 frames of 320×240 at 4 fps: grey, with chelsea.png's cat (scaled to
/// 160×120, top-left at (0, 40)) in frames 2–5 only.
fn cat_clip(dir: &Path) -> PathBuf {
    let p = dir.join("cat.mp4");
    let cat = asset(borex::paths::sample_image("chelsea.png"));
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=c=gray:s=320x240:r=4:d=3",
        "-i",
        s(&cat),
        "-filter_complex",
        "[1]scale=160:-1[c];[0][c]overlay=x=0:y=40:enable='between(n,2,5)'",
        "-frames:v",
        "8",
        "-pix_fmt",
        "yuv420p",
        s(&p),
    ]);
    p
}

/// The cat's box in model-input pixels: 320×240 → resize 256 (short side) →
/// centre crop 224: x·16/15 − 58.5, y·16/15 − 16.
const CAT_ROWS: std::ops::Range<usize> = 27..155;
const CAT_COLS: std::ops::Range<usize> = 0..112;

fn clip_model_path() -> PathBuf {
    asset(borex::paths::default_clip_model())
}

/// Raw class scores (the output kind forced to probabilities: no softmax).
fn raw(path: PathBuf) -> Classifier {
    let mut o = ModelOptions::new(path);
    o.output = Some(OutputKind::Probabilities);
    Classifier::load(&o).unwrap()
}

#[test]
fn clip_model_averages_the_plain_models_per_frame_logits() {
    let clip = raw(clip_model_path());
    let plain = raw(asset(borex::paths::default_model()));
    assert_eq!(clip.input_kind(), InputKind::Clips { frames: None });
    assert_eq!(plain.input_kind(), InputKind::Images);
    // Two clips of three 96×96 frames (the model's T and spatial size are dynamic).
    let x = Array5::from_shape_fn((2, 3, 3, 96, 96), |(n, t, c, y, xx)| {
        ((n * 7 + t * 5 + c * 3) as f32 + y as f32 * 0.11 - xx as f32 * 0.07).sin()
    });
    let got = clip.clip_probabilities(x.view(), 8).unwrap();
    let frames = x.view().into_shape_with_order((6, 3, 96, 96)).unwrap();
    let per_frame = plain.probabilities(frames, 8).unwrap();
    assert_eq!(got.dim(), (2, 1000));
    for n in 0..2 {
        let want = per_frame.slice(ndarray::s![3 * n..3 * n + 3, ..]).mean_axis(Axis(0)).unwrap();
        let d = got.row(n).iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(d < 1e-4, "clip {n}: max |clip − mean of frames| = {d}");
    }
    // And the softmax of that mean is what borex explains.
    let model = Classifier::load(&ModelOptions::new(clip_model_path())).unwrap();
    let p = model.clip_probabilities(x.view(), 8).unwrap();
    let row = got.row(0);
    let m = row.iter().cloned().fold(f32::MIN, f32::max);
    let z: f32 = row.iter().map(|v| (v - m).exp()).sum();
    assert!((p[[0, 7]] - (row[7] - m).exp() / z).abs() < 1e-6);
    // An image batch is refused by the clip model, a clip by the image model.
    assert!(model.probabilities(frames, 8).unwrap_err().to_string().contains("--mode clip"));
    assert!(plain.clip_probabilities(x.view(), 8).unwrap_err().to_string().contains("N×C×H×W images"));
}

#[test]
fn clip_maps_follow_the_object_in_time_and_space() {
    let dir = tempfile::tempdir().unwrap();
    let video = cat_clip(dir.path());
    let out = dir.path().join("out");
    let r = run_borex(
        &[
            "video",
            s(&video),
            "--mode",
            "clip",
            "--clip-len",
            "4",
            "--iters",
            "20",
            "--device",
            "cpu",
            "--quiet",
            "-o",
            s(&out),
        ],
        &[],
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let mut csv = csv::Reader::from_path(out.join("clips.csv")).unwrap();
    assert_eq!(csv.headers().unwrap().iter().collect::<Vec<_>>(), borex::video::clip::CSV_HEADER);
    let rows: Vec<csv::StringRecord> = csv.records().map(|x| x.unwrap()).collect();
    assert_eq!(rows.len(), 2, "8 frames, clips of 4");
    // The cat is in frames 2–5: clip 0 = frames 0–3 (cat in 2, 3), clip 1 = frames 4–7 (cat in 4, 5).
    for (k, cat_frames) in [(0usize, 2..4usize), (1, 0..2)] {
        let row = &rows[k];
        assert_eq!((&row[1], &row[2]), (&*(4 * k).to_string(), &*(4 * k + 3).to_string()));
        let class: usize = row[5].parse().unwrap();
        assert!((281..=285).contains(&class), "clip {k}: class {class} is not a cat");
        let peak: usize = row[8].parse().unwrap();
        assert!(cat_frames.contains(&(peak - 4 * k)), "clip {k}: peak frame {peak} outside the cat's frames");
        let map: Array3<f32> = ndarray_npy::read_npy(out.join("maps").join(format!("clip_{k:06}.npy"))).unwrap();
        assert_eq!(map.dim(), (4, 224, 224));
        // Time: every frame showing the cat outranks every frame without it
        // (the RISE prior is the same in every frame: this is the GP's time axis).
        let means: Vec<f32> = map.outer_iter().map(|m| m.mean().unwrap()).collect();
        let with = cat_frames.clone().map(|f| means[f]).fold(f32::MAX, f32::min);
        let without = (0..4).filter(|f| !cat_frames.contains(f)).map(|f| means[f]).fold(f32::MIN, f32::max);
        assert!(with > without, "clip {k}: frame means {means:?}");
        // Space: inside the cat's box the map is higher than outside it.
        for f in cat_frames.clone() {
            let m = map.index_axis(Axis(0), f);
            let inside = m.slice(ndarray::s![CAT_ROWS, CAT_COLS]).mean().unwrap();
            let total = m.sum();
            let n_in = (CAT_ROWS.len() * CAT_COLS.len()) as f32;
            let outside = (total - inside * n_in) / (224.0 * 224.0 - n_in);
            assert!(inside > outside + 0.01, "clip {k} frame {f}: inside {inside}, outside {outside}");
        }
    }
    // One overlay frame per input frame.
    assert_eq!(frame_count(&out.join("overlay.mp4")), 8);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(
        (report["mode"].as_str(), report["clip_len"].as_u64(), report["clips"].as_array().map(Vec::len)),
        (Some("clip"), Some(4), Some(2))
    );
    assert_eq!(report["clips"][0]["observations"].as_array().unwrap().len(), 20);
    assert_eq!(report["clips"][0]["length_scales"].as_array().unwrap().len(), 5);
}

#[test]
fn overlapping_clips_stream_every_frame_once() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("pattern.mp4");
    ffmpeg(&["-f", "lavfi", "-i", "testsrc=size=96x72:rate=4", "-frames:v", "9", "-pix_fmt", "yuv420p", s(&video)]);
    let prior = dir.path().join("flat.npy");
    ndarray_npy::write_npy(&prior, &ndarray::Array2::<f32>::ones((224, 224))).unwrap();
    let out = dir.path().join("out");
    let r = run_borex(
        &[
            "video",
            s(&video),
            "--mode",
            "clip",
            "--clip-len",
            "4",
            "--clip-stride",
            "2",
            "--iters",
            "2",
            "--prior",
            s(&prior),
            "--device",
            "cpu",
            "--quiet",
            "-o",
            s(&out),
        ],
        &[],
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    // Clips start at 0, 2, 4 (6 + 4 > 9); frame 8 is after the last whole clip.
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert!(
        stdout.contains(
            "3 clips of 4 frames: 3 refined, 0 done by an earlier run (1 frames after the last whole clip left out)"
        ),
        "{stdout}"
    );
    let mut csv = csv::Reader::from_path(out.join("clips.csv")).unwrap();
    let spans: Vec<(String, String)> =
        csv.records().map(|x| x.unwrap()).map(|r| (r[1].to_string(), r[2].to_string())).collect();
    assert_eq!(spans, [("0", "3"), ("2", "5"), ("4", "7")].map(|(a, b)| (a.to_string(), b.to_string())));
    // Each clip's model evaluations: 1 clip to classify + 2 queries × 2 clips, 4 frames each.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert!(report["clips"].as_array().unwrap().iter().all(|c| c["model_evaluations"] == 20));
    // The overlay shows frames 0–7 once each (2 from each clip, all 4 from the last).
    assert_eq!(frame_count(&out.join("overlay.mp4")), 8);
}

#[test]
fn clip_mode_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("grey.mp4");
    ffmpeg(&["-f", "lavfi", "-i", "color=c=gray:s=64x48:r=4:d=2", "-frames:v", "8", "-pix_fmt", "yuv420p", s(&video)]);
    let out = dir.path().join("out");
    let plain = asset(borex::paths::default_model());
    let run = |extra: &[&str]| {
        let mut args = vec!["video", s(&video), "-o", s(&out), "--quiet"];
        args.extend_from_slice(extra);
        run_borex(&args, &[])
    };
    // An image classifier: the error names its input shape.
    assert_error(
        &run(&["--mode", "clip", "--model", s(&plain)]),
        &["--mode clip needs a video classifier", "[?, 3, ?, ?]"],
    );
    assert_error(&run(&["--mode", "clip", "--clip-len", "9"]), &["--clip-len 9 is longer than the 8 selected frames"]);
    assert_error(
        &run(&["--mode", "clip", "--clip-len", "4", "--frames", "0:3"]),
        &["--clip-len 4 is longer than the 3 selected frames"],
    );
    assert_error(&run(&["--mode", "clip", "--clip-len", "0"]), &["--clip-len"]);
    assert_error(
        &run(&["--mode", "clip", "--clip-len", "4", "--temporal-sizes", "1,4"]),
        &["--temporal-sizes", "below the clip length 4"],
    );
    assert_error(&run(&["--mode", "clip", "--clip-stride", "0"]), &["--clip-stride"]);
    assert_error(&run(&["--mode", "clip", "--stack"]), &["--stack is not supported with --mode clip"]);
    // A shard index past the count is clap's error (exit status 2, the reason on the first line).
    let bad_shard = run(&["--mode", "clip", "--shard", "3/2"]);
    let err = String::from_utf8_lossy(&bad_shard.stderr);
    assert_eq!(bad_shard.status.code(), Some(2), "{err}");
    assert!(err.lines().next().unwrap().contains("--shard wants I/N with 0 ≤ I < N"), "{err}");
    assert_error(&run(&["--mode", "clip", "--prior", "gradcam"]), &["clip mode's prior is RISE"]);
    assert_error(&run(&["--mode", "clip", "--readout", "point"]), &["--readout point is not supported"]);
    assert_error(&run(&["--clip-len", "4"]), &["--clip-len applies to --mode clip only"]);
    // Nothing was written.
    assert!(!out.exists());
    // The clip model in frame mode or on an image: use clip mode.
    assert_error(&run(&["--model", s(&clip_model_path())]), &["--mode clip"]);
    let img = asset(borex::paths::sample_image("chelsea.png"));
    assert_error(
        &run_borex(
            &["refine", s(&img), "--model", s(&clip_model_path()), "-o", s(&dir.path().join("r")), "--quiet"],
            &[],
        ),
        &["N×T×C×H×W clips", "--mode clip"],
    );
}

fn ok(out: &std::process::Output) -> String {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn run_args(args: &[String]) -> std::process::Output {
    run_borex(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[])
}

/// Every clip map of a run, by file name.
fn clip_maps(dir: &Path) -> Vec<(String, Array3<f32>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir.join("maps")).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v.iter()
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), ndarray_npy::read_npy(p).unwrap()))
        .collect()
}

/// clips.csv rows without the time column (the one value that differs between runs).
fn clip_rows(dir: &Path) -> Vec<Vec<String>> {
    let mut r = csv::Reader::from_path(dir.join("clips.csv")).unwrap();
    r.records().map(|x| x.unwrap().iter().take(10).map(str::to_string).collect()).collect()
}

/// report.json without the per-clip timings.
fn clip_report(dir: &Path) -> serde_json::Value {
    let mut r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    for c in r["clips"].as_array_mut().unwrap() {
        c.as_object_mut().unwrap().remove("timings_ms");
    }
    r
}

/// The first "N refined, K done by an earlier run" of a run's stdout.
fn refined_and_kept(stdout: &str) -> (usize, usize) {
    let words: Vec<&str> = stdout.split_whitespace().collect();
    let at = words.iter().position(|w| w.starts_with("refined")).unwrap_or_else(|| panic!("{stdout}"));
    (words[at - 1].parse().unwrap(), words[at + 1].parse().unwrap())
}

/// Clip mode resumes and shards as frame mode does; the oracle is an
/// uninterrupted run of the same command: a run killed (SIGKILL) once its
/// first clip is committed and rerun, and shards 0/2 + 1/2 merged, give the
/// same maps (bit for bit), CSV rows, overlay length and report; other
/// settings into the same folder, merging shards of different jobs or modes,
/// and an unfinished shard are one-line errors.
#[test]
fn clip_runs_resume_after_a_kill_and_shards_merge() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 12 frames; clips of 3 every 2 frames start at 0, 2, 4, 6, 8 (frame 11 is left over):
    // overlapping clips, so a resumed run or a shard starts its window mid-stream.
    let video = d.join("pattern.mp4");
    ffmpeg(&["-f", "lavfi", "-i", "testsrc=size=96x72:rate=4", "-frames:v", "12", "-pix_fmt", "yuv420p", s(&video)]);
    let prior = d.join("blob.npy");
    let blob = ndarray::Array2::from_shape_fn((224, 224), |(y, x)| {
        (-(((y as f32 - 90.0).powi(2) + (x as f32 - 130.0).powi(2)) / 3000.0)).exp()
    });
    ndarray_npy::write_npy(&prior, &blob).unwrap();
    let args = |out: &Path, extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "video",
            s(&video),
            "--mode",
            "clip",
            "--clip-len",
            "3",
            "--clip-stride",
            "2",
            "--iters",
            "3",
            "--prior",
            s(&prior),
            "--device",
            "cpu",
            "-q",
            "-o",
            s(out),
        ]
        .iter()
        .map(|x| x.to_string())
        .collect();
        a.extend(extra.iter().map(|x| x.to_string()));
        a
    };
    let whole = d.join("whole");
    let out = ok(&run_args(&args(&whole, &[])));
    assert!(
        out.contains(
            "5 clips of 3 frames: 5 refined, 0 done by an earlier run (1 frames after the last whole clip left out)"
        ),
        "{out}"
    );
    let m = clip_maps(&whole);
    assert_eq!(
        m.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        (0..5).map(|k| format!("clip_{k:06}.npy")).collect::<Vec<_>>()
    );
    let rows = clip_rows(&whole);
    assert_eq!(
        rows.iter().map(|r| (r[0].as_str(), r[1].as_str(), r[2].as_str())).collect::<Vec<_>>(),
        [("0", "0", "2"), ("1", "2", "4"), ("2", "4", "6"), ("3", "6", "8"), ("4", "8", "10")]
    );
    let report = clip_report(&whole);
    assert_eq!((report["clips"].as_array().map(Vec::len), report["left_over_frames"].as_u64()), (Some(5), Some(1)));
    // Frames 0–10 once each: 2 from each clip, 3 from the last.
    assert_eq!(frame_count(&whole.join("overlay.mp4")), 11);
    no_leftovers(&whole);

    // Kill once the first clip is committed, rerun the same command: the rest is refined, nothing twice.
    let resumed = d.join("resumed");
    let a = args(&resumed, &[]);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_borex"))
        .args(&a)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let marker = resumed.join("parts").join("clip_000000.json");
    let t0 = std::time::Instant::now();
    while !marker.exists() && t0.elapsed().as_secs() < 300 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(marker.exists(), "no clip finished");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(!resumed.join("clips.csv").exists(), "the run finished before the kill; the test saw no interruption");
    assert!(resumed.join("maps").join("clip_000000.npy").exists());
    let out = ok(&run_args(&a));
    let (refined, kept) = refined_and_kept(&out);
    assert!(kept >= 1 && refined + kept == 5, "{out}");
    assert_eq!(clip_maps(&resumed), m, "a resumed run's maps differ from the uninterrupted run's");
    assert_eq!(clip_rows(&resumed), rows);
    assert_eq!(clip_report(&resumed), report);
    assert_eq!(frame_count(&resumed.join("overlay.mp4")), 11);
    no_leftovers(&resumed);
    // A finished run rerun does nothing; other settings, or frame mode, into the same folder are refused.
    assert!(ok(&run_args(&a)).contains("0 refined, 5 done by an earlier run"));
    assert_error(&run_args(&args(&resumed, &["--seed", "7"])), &["other input or settings"]);
    let frame_args = |out: &Path, extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> =
            ["video", s(&video), "--prior", s(&prior), "--iters", "1", "--no-metrics", "-q", "-o", s(out)]
                .iter()
                .map(|x| x.to_string())
                .collect();
        a.extend(extra.iter().map(|x| x.to_string()));
        a
    };
    assert_error(&run_args(&frame_args(&resumed, &[])), &["holds a `borex video --mode clip` run, not --mode frame"]);
    assert_eq!(clip_maps(&resumed), m);

    // Two shards (clips 0–1 and 2–4), merged.
    let shards: Vec<PathBuf> = (0..2).map(|i| d.join(format!("shard{i}"))).collect();
    for (i, sd) in shards.iter().enumerate() {
        let out = ok(&run_args(&args(sd, &["--shard", &format!("{i}/2")])));
        assert!(
            out.contains(&format!("{n} clips of 3 frames: {n} refined", n = [2, 3][i]))
                && out.contains("this shard is done"),
            "{out}"
        );
        assert!(!sd.join("clips.csv").exists());
    }
    let merged = d.join("merged");
    let merge = |dirs: &[&Path], out: &Path| {
        let mut a = vec!["video", "merge"];
        a.extend(dirs.iter().map(|p| s(p)));
        a.extend(["-o", s(out)]);
        run_borex(&a, &[])
    };
    // Refused: a missing shard, a shard of another job (another seed), a frame-mode shard.
    assert_error(&merge(&[&shards[0]], &merged), &["shard 1/2 is missing"]);
    let other = d.join("other");
    ok(&run_args(&args(&other, &["--seed", "7", "--shard", "1/2"])));
    assert_error(&merge(&[&shards[0], &other], &merged), &["other", "a shard of another job"]);
    let frame_shard = d.join("frames");
    ok(&run_args(&frame_args(&frame_shard, &["--shard", "1/2"])));
    assert_error(&merge(&[&shards[0], &frame_shard], &merged), &["frames", "a --mode frame shard", "is --mode clip"]);
    assert_error(&merge(&[&frame_shard, &shards[1]], &merged), &["shard1", "a --mode clip shard", "is --mode frame"]);
    assert!(!merged.exists(), "a refused merge wrote its output folder");
    let out = ok(&merge(&[&shards[1], &shards[0]], &merged));
    assert!(out.contains("merged 5 clips from 2 shards"), "{out}");
    assert_eq!(clip_maps(&merged), m, "merged shard maps differ from the unsharded run's");
    assert_eq!(clip_rows(&merged), rows);
    assert_eq!(clip_report(&merged), report);
    assert_eq!(frame_count(&merged.join("overlay.mp4")), 11);
    no_leftovers(&merged);

    // A shard with a clip not done cannot be merged; rerunning the shard does that clip alone.
    std::fs::remove_file(shards[1].join("parts").join("clip_000004.json")).unwrap();
    let merged2 = d.join("merged2");
    assert_error(&merge(&[&shards[0], &shards[1]], &merged2), &["clip 4 of shard 1/2 is not done", "rerun that shard"]);
    assert!(!merged2.exists());
    let out = ok(&run_args(&args(&shards[1], &["--shard", "1/2"])));
    assert!(out.contains("3 clips of 3 frames: 1 refined, 2 done by an earlier run"), "{out}");
    ok(&merge(&[&shards[0], &shards[1]], &merged2));
    assert_eq!(clip_maps(&merged2), m);
}

#[test]
fn clip_relative_gain_uses_the_clips_probability() {
    let dir = tempfile::tempdir().unwrap();
    // Four frames of the cat photograph itself: a confident class (the cat_clip's is not).
    let video = dir.path().join("still.mp4");
    let cat = asset(borex::paths::sample_image("chelsea.png"));
    ffmpeg(&[
        "-loop",
        "1",
        "-i",
        s(&cat),
        "-vf",
        "scale=450:300",
        "-frames:v",
        "4",
        "-r",
        "4",
        "-pix_fmt",
        "yuv420p",
        s(&video),
    ]);
    let out = dir.path().join("rel");
    let args = ["video", s(&video), "--mode", "clip", "--clip-len", "4", "--iters", "4", "--relative-gain"];
    let r = run_borex(&[&args[..], &["--device", "cpu", "--quiet", "--no-metrics", "-o", s(&out)]].concat(), &[]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let clips = report["clips"].as_array().unwrap();
    let top = clips.iter().map(|c| c["probability"].as_f64().unwrap()).fold(0.0, f64::max);
    assert!(top > 0.25, "no clip is confident enough (P {top}) for the gain to change: the test could not fail");
    for clip in clips {
        // The reference: f = 2·(sigmoid(g'·(P_in − P_out)) − 0.5), g' = 10·0.2/max(P, 0.2), P the clip's class probability.
        let p = clip["probability"].as_f64().unwrap();
        let g = 10.0 * 0.2 / p.max(0.2);
        for o in clip["observations"].as_array().unwrap() {
            let d = o["p_inside"].as_f64().unwrap() - o["p_outside"].as_f64().unwrap();
            let want = 2.0 * (1.0 / (1.0 + (-g * d).exp()) - 0.5);
            assert!((o["f"].as_f64().unwrap() - want).abs() < 1e-4, "P {p}: {o} vs f {want}");
        }
    }
}
