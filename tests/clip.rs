//! `borex video --mode clip` and the clip model: the converter's consensus
//! model against per-frame scoring with the plain model (ONNX Runtime both);
//! the space-time BOREx loop end to end on a clip FFmpeg makes here, where a
//! sample image's cat is shown in known frames at a known place (the map's
//! temporal and spatial peak must follow it); and the bad inputs clip mode
//! refuses with a one-line error.

mod common;

use borex::model::{Classifier, InputKind, ModelOptions, OutputKind};
use common::{assert_error, asset, ffmpeg, frame_count, run_borex};
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
        "-f", "lavfi", "-i", "color=c=gray:s=320x240:r=4:d=3", "-i", s(&cat),
        "-filter_complex", "[1]scale=160:-1[c];[0][c]overlay=x=0:y=40:enable='between(n,2,5)'",
        "-frames:v", "8", "-pix_fmt", "yuv420p", s(&p),
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
    let x = Array5::from_shape_fn((2, 3, 3, 96, 96), |(n, t, c, y, xx)| ((n * 7 + t * 5 + c * 3) as f32 + y as f32 * 0.11 - xx as f32 * 0.07).sin());
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
    let r = run_borex(&["video", s(&video), "--mode", "clip", "--clip-len", "4", "--iters", "20", "--device", "cpu", "--quiet", "-o", s(&out)], &[]);
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
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!((report["mode"].as_str(), report["clip_len"].as_u64(), report["clips"].as_array().map(Vec::len)), (Some("clip"), Some(4), Some(2)));
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
        &["video", s(&video), "--mode", "clip", "--clip-len", "4", "--clip-stride", "2", "--iters", "2", "--prior", s(&prior), "--device", "cpu", "--quiet", "-o", s(&out)],
        &[],
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    // Clips start at 0, 2, 4 (6 + 4 > 9); frame 8 is after the last whole clip.
    assert!(String::from_utf8_lossy(&r.stdout).contains("3 clips of 4 frames refined (1 frames after the last whole clip left out)"));
    let mut csv = csv::Reader::from_path(out.join("clips.csv")).unwrap();
    let spans: Vec<(String, String)> = csv.records().map(|x| x.unwrap()).map(|r| (r[1].to_string(), r[2].to_string())).collect();
    assert_eq!(spans, [("0", "3"), ("2", "5"), ("4", "7")].map(|(a, b)| (a.to_string(), b.to_string())));
    // Each clip's model evaluations: 1 clip to classify + 2 queries × 2 clips, 4 frames each.
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
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
    assert_error(&run(&["--mode", "clip", "--model", s(&plain)]), &["--mode clip needs a video classifier", "[?, 3, ?, ?]"]);
    assert_error(&run(&["--mode", "clip", "--clip-len", "9"]), &["--clip-len 9 is longer than the 8 selected frames"]);
    assert_error(&run(&["--mode", "clip", "--clip-len", "4", "--frames", "0:3"]), &["--clip-len 4 is longer than the 3 selected frames"]);
    assert_error(&run(&["--mode", "clip", "--clip-len", "0"]), &["--clip-len"]);
    assert_error(&run(&["--mode", "clip", "--clip-len", "4", "--temporal-sizes", "1,4"]), &["--temporal-sizes", "below the clip length 4"]);
    assert_error(&run(&["--mode", "clip", "--clip-stride", "0"]), &["--clip-stride"]);
    assert_error(&run(&["--mode", "clip", "--shard", "0/2"]), &["--shard is not supported with --mode clip"]);
    assert_error(&run(&["--mode", "clip", "--prior", "gradcam"]), &["clip mode's prior is RISE"]);
    assert_error(&run(&["--mode", "clip", "--readout", "point"]), &["--readout point is not supported"]);
    assert_error(&run(&["--clip-len", "4"]), &["--clip-len applies to --mode clip only"]);
    // Nothing was written.
    assert!(!out.exists());
    // The clip model in frame mode or on an image: use clip mode.
    assert_error(&run(&["--model", s(&clip_model_path())]), &["--mode clip"]);
    let img = asset(borex::paths::sample_image("chelsea.png"));
    assert_error(&run_borex(&["refine", s(&img), "--model", s(&clip_model_path()), "-o", s(&dir.path().join("r")), "--quiet"], &[]), &["N×T×C×H×W clips", "--mode clip"]);
}
