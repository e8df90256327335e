//! `borex video` and bulk `borex refine` end to end, on clips FFmpeg makes
//! here: a sample image's cat panning over a grey field (its position known
//! by construction), and FFmpeg's test pattern. Oracles: the object's box,
//! `borex refine` on the same frame alone, an uninterrupted run (for resume
//! and shards), FFmpeg's own frame counts.

mod common;

use common::{assert_error, asset, ffmpeg, frame_count, no_leftovers, run_borex};
use ndarray::Array2;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// FFmpeg's average frame rate and duration of a video's first stream.
fn rate_and_duration(video: &Path) -> (String, f64) {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=avg_frame_rate,duration",
            "-of",
            "csv=p=0",
        ])
        .arg(video)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let (rate, dur) = text.trim().split_once(',').unwrap();
    (rate.to_string(), dur.parse().unwrap())
}

fn npy(p: &Path) -> Array2<f32> {
    ndarray_npy::read_npy(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// FFmpeg's test pattern, `n` frames of 320×240 at 10 fps.
fn test_pattern(dir: &Path, n: usize) -> PathBuf {
    let p = dir.join("pattern.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x240:rate=10",
        "-frames:v",
        &n.to_string(),
        "-pix_fmt",
        "yuv420p",
        s(&p),
    ]);
    p
}

/// A smooth prior map (224×224) so that the tests spend their time in the loop, not in a prior.
fn blob_prior(dir: &Path) -> PathBuf {
    let p = dir.join("prior.npy");
    let m = Array2::from_shape_fn((224, 224), |(y, x)| {
        (-(((y as f32 - 90.0).powi(2) + (x as f32 - 130.0).powi(2)) / 3000.0)).exp()
    });
    ndarray_npy::write_npy(&p, &m).unwrap();
    p
}

fn maps(dir: &Path) -> Vec<(String, Array2<f32>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir.join("maps")).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v.iter().map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), npy(p))).collect()
}

/// frames.csv rows without the time column (the one value that differs between runs).
fn rows(dir: &Path) -> Vec<Vec<String>> {
    let mut r = csv::Reader::from_path(dir.join("frames.csv")).unwrap();
    assert_eq!(r.headers().unwrap().iter().collect::<Vec<_>>(), borex::video::run::CSV_HEADER);
    r.records().map(|x| x.unwrap().iter().take(8).map(str::to_string).collect()).collect()
}

#[test]
fn the_refined_peak_follows_the_panning_object() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("pan.mp4");
    let chelsea = asset(borex::paths::sample_image("chelsea.png"));
    // The cat's head (120×120) at x = 16 + 52·t, y = 68 on a 256×256 grey field, one frame per second, lossless.
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=c=gray:s=256x256:r=1:d=3",
        "-i",
        s(&chelsea),
        "-filter_complex",
        "[1]crop=300:300:40:0,scale=120:120[c];[0][c]overlay=x='16+52*t':y=68",
        "-frames:v",
        "3",
        "-pix_fmt",
        "yuv444p",
        "-c:v",
        "libx264",
        "-qp",
        "0",
        s(&clip),
    ]);
    let out = dir.path().join("out");
    ok(&run_borex(
        &["video", s(&clip), "-o", s(&out), "--prior", "cam", "--iters", "5", "--lockstep", "3", "--no-metrics", "-q"],
        &[],
    ));
    let maps = maps(&out);
    assert_eq!(maps.len(), 3);
    let mut last_x = None;
    for (t, (_, m)) in maps.iter().enumerate() {
        // The model sees the centre 224² crop (offset 16): the head spans rows 52..172, columns 52t..52t+120.
        let (mut best, mut at) = (f32::NEG_INFINITY, (0, 0));
        for ((y, x), v) in m.indexed_iter() {
            if *v > best {
                (best, at) = (*v, (y, x));
            }
        }
        let (x0, x1) = (52 * t, 52 * t + 120);
        assert!(
            (52..172).contains(&at.0) && (x0..x1).contains(&at.1),
            "frame {t}: peak {at:?} outside the head (rows 52..172, columns {x0}..{x1})"
        );
        if let Some(l) = last_x {
            assert!(at.1 > l, "frame {t}: the peak did not move right with the head ({l} → {})", at.1);
        }
        last_x = Some(at.1);
    }
    assert_eq!(frame_count(&out.join("overlay.mp4")), 3);
}

/// Lockstep F = 4 and F = 1 give every frame the same map and row, which is
/// `borex refine` on that frame alone; a run killed mid-way and rerun ends
/// the same; three shards merged give the same again.
#[test]
fn lockstep_resume_and_shards_reproduce_single_refines() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let clip = test_pattern(d, 7);
    let prior = blob_prior(d);
    let common = ["--prior", s(&prior), "--iters", "3", "--no-metrics", "-q"];
    let video = |out: &Path, extra: &[&str]| -> Output {
        let mut a = vec!["video", s(&clip), "-o", s(out)];
        a.extend_from_slice(&common);
        a.extend_from_slice(extra);
        run_borex(&a, &[])
    };
    let one = d.join("f1");
    ok(&video(&one, &["--lockstep", "1"]));
    let four = d.join("f4");
    ok(&video(&four, &["--lockstep", "4", "--every", "1"]));
    let (m1, m4) = (maps(&one), maps(&four));
    assert_eq!(m1.len(), 7);
    assert_eq!(m1, m4, "lockstep 4 changed a frame's map");
    assert_eq!(rows(&one), rows(&four));
    assert_eq!(rows(&one).iter().map(|r| r[0].clone()).collect::<Vec<_>>(), ["0", "1", "2", "3", "4", "5", "6"]);
    assert_eq!(frame_count(&one.join("overlay.mp4")), 7);
    // The overlay keeps the input's 10 fps and lasts as long: 7 frames, 0.7 s (groups of 1 and of 4 alike).
    assert_eq!(rate_and_duration(&one.join("overlay.mp4")), ("10/1".to_string(), 0.7));
    assert_eq!(rate_and_duration(&four.join("overlay.mp4")), ("10/1".to_string(), 0.7));
    no_leftovers(&one);

    // The same frames as a folder of PNGs (FFmpeg's lossless decode) are the same frame source.
    let folder = d.join("pngs");
    std::fs::create_dir(&folder).unwrap();
    ffmpeg(&["-i", s(&clip), s(&folder.join("f%03d.png"))]);
    let from_folder = d.join("from_folder");
    let mut a = vec!["video", s(&folder), "-o", s(&from_folder), "--fps", "10", "--lockstep", "4"];
    a.extend_from_slice(&common);
    ok(&run_borex(&a, &[]));
    assert_eq!(maps(&from_folder), m1, "frames from a folder differ from the same frames decoded from the video");
    assert_eq!(rows(&from_folder), rows(&one));

    // Frame 5 alone through `borex refine` (the frame decoded losslessly to PNG by FFmpeg).
    let png = d.join("frame5.png");
    ffmpeg(&["-i", s(&clip), "-vf", "select=eq(n\\,5)", "-frames:v", "1", s(&png)]);
    let single = d.join("single");
    // With metrics: the CSV's insertion/deletion must be the single refine's for the refined map.
    let with_metrics: Vec<&str> = common.iter().copied().filter(|a| *a != "--no-metrics").collect();
    let mut a = vec!["refine", s(&png), "-o", s(&single)];
    a.extend_from_slice(&with_metrics);
    ok(&run_borex(&a, &[]));
    assert_eq!(npy(&single.join("refined.npy")), m1[5].1, "video frame 5 differs from `borex refine` on it");
    let frame5 = d.join("frame5");
    let mut a = vec!["video", s(&clip), "-o", s(&frame5), "--frames", "5:6"];
    a.extend_from_slice(&with_metrics);
    ok(&run_borex(&a, &[]));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(single.join("report.json")).unwrap()).unwrap();
    let row = &rows(&frame5)[0];
    assert_eq!(row[0], "5");
    for (col, key) in [(5, "insertion"), (6, "deletion")] {
        let want = report["refined"][key].as_f64().unwrap();
        let got: f64 = row[col].parse().unwrap();
        assert!((got - want).abs() < 1e-6, "{key}: csv {got} vs refine {want}");
    }
    // Evaluations: the class, 2 per query, 2 × 225 for the two curves (the prior is a file).
    assert_eq!(row[7], (1 + 2 * 3 + 2 * 225).to_string());

    // Kill a run with SIGKILL once some groups are done, rerun: the same outputs, no frame twice.
    let resumed = d.join("resumed");
    let mut args: Vec<String> =
        ["video", s(&clip), "-o", s(&resumed), "--lockstep", "2"].iter().map(|x| x.to_string()).collect();
    args.extend(common.iter().map(|x| x.to_string()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_borex"))
        .args(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let marker = resumed.join("parts").join("group_000001.json");
    let t0 = std::time::Instant::now();
    while !marker.exists() && t0.elapsed().as_secs() < 300 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(marker.exists(), "no group finished");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(!resumed.join("frames.csv").exists(), "the run finished before the kill; the test saw no interruption");
    let out = ok(&run_borex(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[]));
    assert!(out.contains("done by an earlier run") && !out.contains(" 0 done by an earlier run"), "{out}");
    assert_eq!(maps(&resumed), m1);
    assert_eq!(rows(&resumed), rows(&one));
    assert_eq!(frame_count(&resumed.join("overlay.mp4")), 7);
    no_leftovers(&resumed);
    // A finished run rerun (twice) is a no-op; other settings into the same folder are refused.
    for _ in 0..2 {
        let out = ok(&run_borex(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[]));
        assert!(out.contains("0 refined, 7 done by an earlier run"), "{out}");
    }
    no_leftovers(&resumed);
    let mut other = args.clone();
    other[5] = "3".into();
    assert_error(&run_borex(&other.iter().map(String::as_str).collect::<Vec<_>>(), &[]), &["other input or settings"]);

    // Three shards (groups of 2: 4 groups over 3 shards), merged.
    let shard_dirs: Vec<PathBuf> = (0..3).map(|i| d.join(format!("shard{i}"))).collect();
    for (i, sd) in shard_dirs.iter().enumerate() {
        let out = ok(&video(sd, &["--lockstep", "2", "--shard", &format!("{i}/3")]));
        assert!(out.contains("this shard is done"), "{out}");
    }
    let merged = d.join("merged");
    assert_error(
        &run_borex(&["video", "merge", s(&shard_dirs[0]), s(&shard_dirs[2]), "-o", s(&merged)], &[]),
        &["shard 1/3 is missing"],
    );
    ok(&run_borex(&["video", "merge", s(&shard_dirs[0]), s(&shard_dirs[1]), s(&shard_dirs[2]), "-o", s(&merged)], &[]));
    assert_eq!(maps(&merged), m1);
    assert_eq!(rows(&merged), rows(&one));
    assert_eq!(frame_count(&merged.join("overlay.mp4")), 7);

    // --stack, --every and --frames: frames 1, 3, 5 in one N×H×W array.
    let stacked = d.join("stacked");
    ok(&video(&stacked, &["--stack", "--every", "2", "--frames", "1:7"]));
    let st: ndarray::Array3<f32> = ndarray_npy::read_npy(stacked.join("maps.npy")).unwrap();
    assert_eq!(st.dim(), (3, 224, 224));
    for (k, f) in [1usize, 3, 5].iter().enumerate() {
        assert_eq!(st.index_axis(ndarray::Axis(0), k), m1[*f].1, "stacked map {k} (frame {f})");
    }
    assert_eq!(rows(&stacked).iter().map(|r| r[0].clone()).collect::<Vec<_>>(), ["1", "3", "5"]);
    assert_eq!(frame_count(&stacked.join("overlay.mp4")), 3);
    // Every 2nd frame: 5 fps, the same 0.6 s the three frames span in the input.
    assert_eq!(rate_and_duration(&stacked.join("overlay.mp4")), ("5/1".to_string(), 0.6));
    assert!(!stacked.join("maps").exists());
}

#[test]
fn bad_video_input_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = |n: &str| d.join(n);
    let text = d.join("notes.mp4");
    std::fs::write(&text, "not a video").unwrap();
    assert_error(
        &run_borex(&["video", s(&text), "-o", s(&out("a"))], &[]),
        &["notes.mp4", "not a video FFmpeg can read"],
    );
    // An audio-only file: no video frames.
    let audio = d.join("tone.m4a");
    ffmpeg(&["-f", "lavfi", "-i", "sine=frequency=440:duration=0.5", s(&audio)]);
    assert_error(&run_borex(&["video", s(&audio), "-o", s(&out("b"))], &[]), &["tone.m4a", "no video"]);
    let empty = d.join("frames");
    std::fs::create_dir(&empty).unwrap();
    std::fs::write(empty.join("readme.txt"), "").unwrap();
    assert_error(
        &run_borex(&["video", s(&empty), "-o", s(&out("c"))], &[]),
        &["frame folder", "no PNG or JPEG frames"],
    );
    std::fs::write(empty.join("000.png"), "not a png").unwrap();
    assert_error(&run_borex(&["video", s(&empty), "-o", s(&out("c"))], &[]), &["000.png"]);
    assert_error(
        &run_borex(&["video", s(&d.join("missing.mp4")), "-o", s(&out("d"))], &[]),
        &["missing.mp4", "no such file"],
    );
    let clip = test_pattern(d, 3);
    assert_error(&run_borex(&["video", s(&clip), "-o", s(&out("e")), "--every", "0"], &[]), &["--every 0"]);
    assert_error(
        &run_borex(&["video", s(&clip), "-o", s(&out("f")), "--frames", "2:9"], &[]),
        &["--frames ends at frame 9", "3 frames"],
    );
    assert_error(
        &run_borex(&["video", s(&clip), "-o", s(&out("g")), "--frames", "5:"], &[]),
        &["--frames starts at frame 5"],
    );
    assert_error(&run_borex(&["video", s(&clip), "-o", s(&out("h")), "--lockstep", "0"], &[]), &["--lockstep 0"]);
    assert!(!out("e").exists() && !out("f").exists(), "a refused run wrote its output folder");
}

/// `borex refine` on several images: one sub-folder each with the single
/// refine's outputs (lockstep 2 equals alone), a summary, a bad image reported
/// and skipped with a failing exit status, a rerun keeping finished images,
/// and two shards merged.
#[test]
fn refine_many_images() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let prior = blob_prior(d);
    let imgs: Vec<String> = ["chelsea.png", "coffee.png", "rocket.jpg"]
        .iter()
        .map(|n| asset(borex::paths::sample_image(n)).to_str().unwrap().to_string())
        .collect();
    let bad = d.join("broken.png");
    std::fs::write(&bad, "not an image").unwrap();
    let settings = ["--prior", s(&prior), "--iters", "3", "--no-metrics", "-q"];
    let alone = d.join("alone");
    let mut a = vec!["refine", imgs[1].as_str(), "-o", s(&alone)];
    a.extend_from_slice(&settings);
    ok(&run_borex(&a, &[]));

    let many = d.join("many");
    let mut a = vec![
        "refine",
        imgs[0].as_str(),
        s(&bad),
        imgs[1].as_str(),
        imgs[2].as_str(),
        "-o",
        s(&many),
        "--lockstep",
        "2",
    ];
    a.extend_from_slice(&settings);
    let out = run_borex(&a, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("broken.png") && err.contains("1 of 4 images failed"), "{err}");
    assert_eq!(npy(&many.join("coffee").join("refined.npy")), npy(&alone.join("refined.npy")));
    let mut r = csv::Reader::from_path(many.join("summary.csv")).unwrap();
    let recs: Vec<Vec<String>> = r.records().map(|x| x.unwrap().iter().map(str::to_string).collect()).collect();
    assert_eq!(
        recs.iter().map(|r| (r[1].as_str(), r[2].as_str())).collect::<Vec<_>>(),
        [("chelsea", "ok"), ("broken", "failed"), ("coffee", "ok"), ("rocket", "ok")]
    );
    assert!(!many.join("broken").exists());
    // Rerun: the three finished images are kept, the broken one fails again.
    let out = run_borex(&a, &[]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("0 refined, 3 kept"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Two shards via a manifest, merged: the same folders and maps.
    let manifest = d.join("list.txt");
    std::fs::write(&manifest, format!("# images\n{}\n\n{}\n{}\n", imgs[0], imgs[1], imgs[2])).unwrap();
    let shards: Vec<PathBuf> = (0..2).map(|i| d.join(format!("part{i}"))).collect();
    for (i, sd) in shards.iter().enumerate() {
        let shard = format!("{i}/2");
        let mut a = vec!["refine", "--manifest", s(&manifest), "-o", s(sd), "--shard", shard.as_str()];
        a.extend_from_slice(&settings);
        ok(&run_borex(&a, &[]));
    }
    let merged = d.join("joined");
    ok(&run_borex(&["refine", "merge", s(&shards[0]), s(&shards[1]), "-o", s(&merged)], &[]));
    for name in ["chelsea", "coffee", "rocket"] {
        assert_eq!(npy(&merged.join(name).join("refined.npy")), npy(&many.join(name).join("refined.npy")), "{name}");
    }
    let n = csv::Reader::from_path(merged.join("summary.csv")).unwrap().records().count();
    assert_eq!(n, 3);
}

/// The frame `n` of `clip` as a PNG (FFmpeg's lossless decode), for `borex refine`.
fn frame_png(clip: &Path, n: u64, dir: &Path) -> PathBuf {
    let png = dir.join(format!("frame{n}.png"));
    ffmpeg(&["-i", s(clip), "-vf", &format!("select=eq(n\\,{n})"), "-frames:v", "1", s(&png)]);
    png
}

/// `--warm-start`: a warm frame is `borex refine` on that frame with the
/// previous frame's map (read back from maps/) as its prior and --warm-iters
/// queries, bit for bit; a keyframe is the cold refine. The maps do not
/// depend on the lockstep width, on a kill and rerun, or on shards.
#[test]
fn warm_start_chains_reuse_the_previous_map() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let clip = test_pattern(d, 13);
    let prior = blob_prior(d);
    // Chains of 3 frames, 2 in lockstep: groups of 6 frames, [0 1 2 | 3 4 5], [6 7 8 | 9 10 11], [12].
    let args_with = |out: &Path, chain: &str, warm_iters: &str, extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> =
            ["video", s(&clip), "-o", s(out), "--prior", s(&prior), "--iters", "3", "--no-metrics", "-q"]
                .iter()
                .map(|x| x.to_string())
                .collect();
        a.extend(["--warm-start", "--keyframe-every", chain, "--warm-iters", warm_iters].iter().map(|x| x.to_string()));
        a.extend(extra.iter().map(|x| x.to_string()));
        a
    };
    let args = |out: &Path, extra: &[&str]| args_with(out, "3", "2", extra);
    let video = |out: &Path, extra: &[&str]| {
        ok(&run_borex(&args(out, extra).iter().map(String::as_str).collect::<Vec<_>>(), &[]))
    };
    let whole = d.join("whole");
    video(&whole, &["--lockstep", "2"]);
    let m = maps(&whole);
    assert_eq!(m.len(), 13);
    let r = rows(&whole);
    // Evaluations (the prior is a file): the class, then 2 per query: 3 at a keyframe, 2 at a warm frame.
    let keyframes = [0usize, 3, 6, 9, 12];
    for (i, row) in r.iter().enumerate() {
        let want = if keyframes.contains(&i) { 1 + 2 * 3 } else { 1 + 2 * 2 };
        assert_eq!(row[7], want.to_string(), "frame {i}: model evaluations");
    }
    let refine = |n: u64, prior: &Path, iters: &str| -> Array2<f32> {
        let out = d.join(format!("refine{n}"));
        let png = frame_png(&clip, n, d);
        ok(&run_borex(
            &["refine", s(&png), "-o", s(&out), "--prior", s(prior), "--iters", iters, "--no-metrics", "-q"],
            &[],
        ));
        npy(&out.join("refined.npy"))
    };
    let map_file = |n: usize| whole.join("maps").join(format!("frame_{n:06}.npy"));
    for n in [4usize, 8] {
        assert_eq!(
            refine(n as u64, &map_file(n - 1), "2"),
            m[n].1,
            "warm frame {n} is not refine with frame {}'s map as prior",
            n - 1
        );
    }
    for n in [3usize, 12] {
        assert_eq!(refine(n as u64, &prior, "3"), m[n].1, "keyframe {n} is not the cold refine");
    }
    assert_ne!(
        m[4].1,
        refine(4, &prior, "2"),
        "frame 4 came out as if from the job's prior: the warm start did nothing"
    );

    // One chain at a time: keyframes stay on every 3rd frame, so the maps are the same.
    let one = d.join("one");
    video(&one, &["--lockstep", "1"]);
    assert_eq!(maps(&one), m, "--lockstep 1 changed a warm-started map");

    // Kill once the first group is done, rerun: the next groups start at their keyframes, as they did uninterrupted.
    let resumed = d.join("resumed");
    let a = args(&resumed, &["--lockstep", "2"]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_borex"))
        .args(&a)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let marker = resumed.join("parts").join("group_000000.json");
    let t0 = std::time::Instant::now();
    while !marker.exists() && t0.elapsed().as_secs() < 300 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(marker.exists(), "no group finished");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!resumed.join("frames.csv").exists(), "the run finished before the kill; the test saw no interruption");
    let out = ok(&run_borex(&a.iter().map(String::as_str).collect::<Vec<_>>(), &[]));
    assert!(out.contains("done by an earlier run") && !out.contains(" 0 done by an earlier run"), "{out}");
    assert_eq!(maps(&resumed), m, "a resumed warm-start run differs from the uninterrupted one");
    assert_eq!(rows(&resumed), r);
    assert_eq!(frame_count(&resumed.join("overlay.mp4")), 13);
    no_leftovers(&resumed);
    // Other chain settings into the same folder are refused.
    let other = args_with(&resumed, "4", "2", &["--lockstep", "2"]);
    assert_error(&run_borex(&other.iter().map(String::as_str).collect::<Vec<_>>(), &[]), &["other input or settings"]);

    // Two shards over the three groups, merged.
    let shards: Vec<PathBuf> = (0..2).map(|i| d.join(format!("shard{i}"))).collect();
    for (i, sd) in shards.iter().enumerate() {
        video(sd, &["--lockstep", "2", "--shard", &format!("{i}/2")]);
    }
    let merged = d.join("merged");
    ok(&run_borex(&["video", "merge", s(&shards[0]), s(&shards[1]), "-o", s(&merged)], &[]));
    assert_eq!(maps(&merged), m, "sharded warm-start maps differ");
    assert_eq!(frame_count(&merged.join("overlay.mp4")), 13);

    // Bad chain settings.
    assert_error(
        &run_borex(&args_with(&d.join("bad"), "0", "2", &[]).iter().map(String::as_str).collect::<Vec<_>>(), &[]),
        &["--keyframe-every 0"],
    );
    assert_error(
        &run_borex(&args_with(&d.join("bad"), "3", "0", &[]).iter().map(String::as_str).collect::<Vec<_>>(), &[]),
        &["--warm-iters 0"],
    );
    let without = run_borex(&["video", s(&clip), "-o", s(&d.join("bad")), "--warm-iters", "3"], &[]);
    assert!(
        !without.status.success() && String::from_utf8_lossy(&without.stderr).contains("--warm-start"),
        "--warm-iters without --warm-start was accepted"
    );
}
