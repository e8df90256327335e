//! Resumable runs through the real binary: the job description (`job.json`)
//! every rerun and merge compares against, the lock on OUTDIR, Ctrl-C during
//! a bulk run, and the names and paths a run writes (crafted image names,
//! `-o LINK`, manifests with a byte-order mark). Every test refines a few
//! images with a file prior and 2–3 queries, so they stay short.

mod common;

use common::{assert_error, asset, ffmpeg, run_borex};
use ndarray::Array2;
use std::path::{Path, PathBuf};
use std::process::Output;

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn sample(name: &str) -> PathBuf {
    asset(borex::paths::sample_image(name))
}

/// A smooth 224×224 prior map, so the runs spend their time in the loop, not in a prior.
fn blob_prior(path: &Path) -> PathBuf {
    let m = Array2::from_shape_fn((224, 224), |(y, x)| {
        (-(((y as f32 - 90.0).powi(2) + (x as f32 - 130.0).powi(2)) / 3000.0)).exp()
    });
    ndarray_npy::write_npy(path, &m).unwrap();
    path.to_path_buf()
}

/// `refine` with the quick settings and `extra`.
fn refine(args: &[&str], prior: &Path, extra: &[&str]) -> Output {
    let mut a = vec!["-q", "refine"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["--prior", s(prior), "--iters", "2", "--no-metrics"]);
    a.extend_from_slice(extra);
    run_borex(&a, &[])
}

/// Exit 1, no panic, and the last line of stderr (after the per-image errors) holds `needle`.
fn fails_at_the_end(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(last.starts_with("error: ") && last.contains(needle), "{needle:?} not in {last:?}");
}

/// summary.csv as (image, folder, status) rows.
fn summary(dir: &Path) -> Vec<(String, String, String)> {
    csv::Reader::from_path(dir.join("summary.csv"))
        .unwrap()
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].to_string(), r[1].to_string(), r[2].to_string())
        })
        .collect()
}

/// Every file under `dir` (relative path, bytes), sorted; the lock file left out.
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().unwrap() != ".borex.lock" {
                out.push((p.strip_prefix(dir).unwrap().display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

/// A rerun into a bulk run's folder with other settings is refused with one
/// line naming each setting that differs and its two values, and changes
/// nothing; the same settings resume. The manifest starts with a UTF-8 BOM.
#[test]
fn a_rerun_with_other_settings_is_refused_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let prior = blob_prior(&d.join("prior.npy"));
    let manifest = d.join("list.txt");
    let (chelsea, coffee) = (sample("chelsea.png"), sample("coffee.png"));
    std::fs::write(&manifest, format!("\u{feff}{}\r\n# a comment\r\n{}\r\n", s(&chelsea), s(&coffee))).unwrap();
    let out = d.join("out");
    let m = ["--manifest", s(&manifest), "-o", s(&out)];
    ok(&refine(&m, &prior, &[]));
    // The BOM is not part of the first path: both images were refined.
    assert_eq!(
        summary(&out),
        [
            (s(&chelsea).to_string(), "chelsea".to_string(), "ok".to_string()),
            (s(&coffee).to_string(), "coffee".to_string(), "ok".to_string())
        ]
    );
    let before = tree(&out);
    let job: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("job.json")).unwrap()).unwrap();
    assert_eq!((job["format"].as_u64(), job["kind"].as_str()), (Some(1), Some("refine")));
    assert_eq!(job["model"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(job["inputs"]["count"], 2);

    assert_error(
        &refine(&m, &prior, &["--seed", "5", "--class", "1"]),
        &[
            "output folder",
            "holds a `borex refine` run with other input or settings",
            "--class (top1 there, 1 now)",
            "--seed (0 there, 5 now)",
        ],
    );
    assert_error(&refine(&m, &prior, &["--full-res"]), &["--full-res (false there, true now)"]);
    // The model's options that change scores (#25: another --output-kind or --labels kept the earlier maps).
    assert_error(
        &refine(&m, &prior, &["--output-kind", "probabilities"]),
        &["--output-kind (logits there, probabilities now)"],
    );
    let labels = d.join("labels.txt");
    std::fs::write(&labels, (0..1000).map(|i| format!("class {i}\n")).collect::<String>()).unwrap();
    assert_error(&refine(&m, &prior, &["--labels", s(&labels)]), &["--labels (sha256 "]);
    // Another prior map (same path, other content) is another job too.
    let other_prior = d.join("other.npy");
    ndarray_npy::write_npy(&other_prior, &Array2::<f32>::from_shape_fn((224, 224), |(y, _)| y as f32)).unwrap();
    let mut a = vec!["-q", "refine"];
    a.extend_from_slice(&m);
    a.extend_from_slice(&["--prior", s(&other_prior), "--iters", "2", "--no-metrics"]);
    assert_error(&run_borex(&a, &[]), &["--prior ("]);
    // Other images into the same folder.
    assert_error(&refine(&[s(&coffee), s(&chelsea), "-o", s(&out)], &prior, &[]), &["the inputs (2 inputs there"]);
    assert!(tree(&out) == before, "a refused rerun changed the folder");
    // The same job resumes; what a killed run left (a staging folder, a temporary) is removed.
    let stale = out.join(".coffee.borex-Ab12Cd");
    std::fs::create_dir(&stale).unwrap();
    std::fs::write(stale.join("prior.npy"), "half").unwrap();
    std::fs::write(out.join(".summary.csv.x1y2.tmp"), "half").unwrap();
    assert!(ok(&refine(&m, &prior, &[])).contains("0 refined, 2 kept from an earlier run"));
    assert_eq!(names(&out), [".borex.lock", "chelsea", "coffee", "job.json", "summary.csv"]);
}

/// `refine merge`: shards of another job (settings, image list, shard count)
/// are refused by name; shards whose image names clash are refused instead
/// of overwriting each other; failed images keep the merge's exit non-zero;
/// a folder holding the user's files is refused before anything is copied.
#[test]
fn refine_merge_checks_its_shards_and_keeps_failures() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let prior = blob_prior(&d.join("prior.npy"));
    for (sub, img) in [("a", "chelsea.png"), ("b", "coffee.png")] {
        std::fs::create_dir(d.join(sub)).unwrap();
        std::fs::copy(sample(img), d.join(sub).join("x.png")).unwrap();
    }
    std::fs::write(d.join("broken.png"), "not an image").unwrap();
    let rocket = sample("rocket.jpg");
    // Shard 0: a/x.png (folder x), broken.png; shard 1: b/x.png (folder x-2), rocket.
    let manifest = d.join("list.txt");
    std::fs::write(&manifest, format!("a/x.png\nbroken.png\nb/x.png\n{}\n", s(&rocket))).unwrap();
    let shard = |out: &Path, list: &Path, which: &str, extra: &[&str]| {
        refine(&["--manifest", s(list), "-o", s(out), "--shard", which], &prior, extra)
    };
    let shards = [d.join("s0"), d.join("s1")];
    fails_at_the_end(&shard(&shards[0], &manifest, "0/2", &[]), "1 of 2 images failed");
    ok(&shard(&shards[1], &manifest, "1/2", &[]));
    let merge = |dirs: &[&Path], out: &Path| {
        let mut a = vec!["-q", "refine", "merge"];
        a.extend(dirs.iter().map(|p| s(p)));
        a.extend(["-o", s(out)]);
        run_borex(&a, &[])
    };

    // Foreign shards: another seed, another image list of the same length, another shard count.
    let seed7 = d.join("seed7");
    ok(&shard(&seed7, &manifest, "1/2", &["--seed", "7"]));
    let other_list = d.join("other.txt");
    std::fs::write(&other_list, format!("{}\nbroken.png\na/x.png\nb/x.png\n", s(&rocket))).unwrap();
    let other = d.join("other");
    ok(&shard(&other, &other_list, "1/2", &[]));
    let thirds = d.join("thirds");
    ok(&shard(&thirds, &manifest, "2/3", &[]));
    let merged = d.join("merged");
    assert_error(
        &merge(&[&shards[0], &seed7], &merged),
        &["seed7", "a shard of another job", "--seed (0 in", "7 here"],
    );
    // Before job descriptions this merge overwrote the shard's folder x with the other list's x.
    assert_error(&merge(&[&shards[0], &other], &merged), &["other: a shard of another job", "the inputs"]);
    assert_error(&merge(&[&shards[0], &thirds], &merged), &["the shard count (2 in", "3 here"]);
    assert!(!merged.exists(), "a refused merge wrote its output folder");

    // A crafted shard whose table names a folder the other shard has.
    let crafted = d.join("crafted");
    std::fs::create_dir(&crafted).unwrap();
    for (rel, bytes) in tree(&shards[1]) {
        let p = crafted.join(&rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    let table = std::fs::read_to_string(crafted.join("summary.csv")).unwrap();
    std::fs::write(crafted.join("summary.csv"), table.replace(",x-2,", ",x,")).unwrap();
    std::fs::rename(crafted.join("x-2"), crafted.join("x")).unwrap();
    assert_error(&merge(&[&shards[0], &crafted], &merged), &["folder \"x\" is in another shard too"]);
    std::fs::write(crafted.join("summary.csv"), table.replace(",x-2,", ",../x,")).unwrap();
    assert_error(&merge(&[&shards[0], &crafted], &merged), &["folder \"../x\" is not a name borex makes"]);
    assert!(!merged.exists());

    // Into a folder of the user's: refused, nothing copied.
    let mine = d.join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("thesis.tex"), "draft").unwrap();
    assert_error(&merge(&[&shards[0], &shards[1]], &mine), &["holds files and no borex job (thesis.tex…)"]);
    assert_eq!(names(&mine), ["thesis.tex"]);

    // The real merge: every image's folder from its own shard, the failure kept, exit 1 as the unsharded run.
    let out = merge(&[&shards[1], &shards[0]], &merged);
    fails_at_the_end(&out, "1 of 4 images failed in their shards");
    assert!(String::from_utf8_lossy(&out.stderr).contains("broken.png"));
    let rows: Vec<(String, String)> = summary(&merged).into_iter().map(|(_, f, st)| (f, st)).collect();
    let want = [("x", "ok"), ("broken", "failed"), ("x-2", "ok"), ("rocket", "ok")];
    assert_eq!(rows, want.map(|(a, b)| (a.to_string(), b.to_string())));
    for (folder, from) in [("x", &shards[0]), ("x-2", &shards[1]), ("rocket", &shards[1])] {
        assert_eq!(
            std::fs::read(merged.join(folder).join("refined.npy")).unwrap(),
            std::fs::read(from.join(folder).join("refined.npy")).unwrap(),
            "{folder}"
        );
    }
    // The merged folder is the unsharded job: rerunning it resumes (the broken image fails again).
    let rerun = refine(&["--manifest", s(&manifest), "-o", s(&merged)], &prior, &[]);
    fails_at_the_end(&rerun, "1 of 4 images failed");
    assert!(String::from_utf8_lossy(&rerun.stdout).contains("0 refined, 3 kept"));
}

/// Spawn `borex ARGS` and wait until `ready` exists (the run has started writing).
fn spawn_until(args: &[&str], ready: &Path) -> std::process::Child {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_borex"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..600 {
        if ready.exists() {
            return child;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("{} did not appear", ready.display());
}

fn interrupt(child: std::process::Child) -> Output {
    // SAFETY: signalling our own child by pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    child.wait_with_output().unwrap()
}

/// While a run writes into OUTDIR, any other run into it (refine, video,
/// eval, merge) stops at once naming the process; the first run is not disturbed.
#[test]
fn a_folder_in_use_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let prior = blob_prior(&d.join("prior.npy"));
    let out = d.join("out");
    let chelsea = sample("chelsea.png");
    let long = ["-q", "refine", s(&chelsea), s(&chelsea), "-o", s(&out), "--prior", s(&prior), "--iters", "400"];
    let first = spawn_until(&long, &out);
    // Past its start (the lock is taken as OUTDIR is created).
    std::thread::sleep(std::time::Duration::from_millis(1000));
    let busy = format!("is in use by process {}", first.id());
    assert_error(&refine(&[s(&chelsea), s(&chelsea), "-o", s(&out)], &prior, &[]), &[&busy]);
    let video = d.join("pattern.mp4");
    ffmpeg(&["-f", "lavfi", "-i", "testsrc=size=64x48:rate=5", "-frames:v", "2", "-pix_fmt", "yuv420p", s(&video)]);
    assert_error(
        &run_borex(&["-q", "video", s(&video), "-o", s(&out), "--prior", s(&prior), "--iters", "2"], &[]),
        &[&busy],
    );
    let maps = d.join("maps");
    std::fs::create_dir(&maps).unwrap();
    blob_prior(&maps.join("chelsea.npy"));
    let method = format!("file:{}/{{stem}}.npy", s(&maps));
    assert_error(&run_borex(&["-q", "eval", s(&chelsea), "-o", s(&out), "--methods", &method], &[]), &[&busy]);
    // Single-image commands take the same lock (they said "holds files that are not a borex output").
    assert_error(&refine(&[s(&chelsea), "-o", s(&out)], &prior, &[]), &[&busy]);
    assert_error(&run_borex(&["-q", "explain", s(&chelsea), "-o", s(&out), "--method", "occlusion"], &[]), &[&busy]);
    assert_error(
        &run_borex(&["-q", "counterfactual", s(&chelsea), "-o", s(&out), "--target", "1", "--steps", "1"], &[]),
        &[&busy],
    );
    // No second run's temporaries beside the first run's.
    let stray: Vec<String> = names(&out).into_iter().filter(|n| n.ends_with(".tmp")).collect();
    assert!(stray.is_empty(), "{stray:?}");
    let o = interrupt(first);
    assert_eq!(o.status.code(), Some(130));
}

/// A single-image run holds its OUTDIR as a bulk job does: it makes the folder to hold
/// the lock, so a second run, single or bulk, stops at once instead of one swapping its
/// outputs over a folder the other is writing; what it made goes if it never finishes.
#[test]
fn a_single_image_run_holds_its_folder_too() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let prior = blob_prior(&d.join("prior.npy"));
    let out = d.join("one");
    let chelsea = sample("chelsea.png");
    let long = ["-q", "refine", s(&chelsea), "-o", s(&out), "--prior", s(&prior), "--iters", "400", "--no-metrics"];
    let first = spawn_until(&long, &out.join(".borex.lock"));
    std::thread::sleep(std::time::Duration::from_millis(1000));
    let busy = format!("is in use by process {}", first.id());
    assert_error(&refine(&[s(&chelsea), "-o", s(&out)], &prior, &[]), &[&busy]);
    assert_error(&refine(&[s(&chelsea), s(&chelsea), "-o", s(&out)], &prior, &[]), &[&busy]);
    let o = interrupt(first);
    assert_eq!(o.status.code(), Some(130));
    assert!(!out.exists(), "an interrupted first run leaves no folder: {:?}", names(d));
    // A finished run's folder holds its outputs and no lock file.
    ok(&refine(&[s(&chelsea), "-o", s(&out)], &prior, &[]));
    let files = names(&out);
    assert!(files.contains(&"report.json".to_string()) && !files.contains(&".borex.lock".to_string()), "{files:?}");
}

/// Ctrl-C during a bulk run: the images in flight are not recorded as
/// failed (nor at all), ONNX Runtime says nothing, and a rerun does them.
#[test]
fn ctrl_c_during_a_bulk_run_drops_the_images_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let prior = blob_prior(&d.join("prior.npy"));
    let out = d.join("out");
    let imgs = [sample("chelsea.png"), sample("coffee.png"), sample("rocket.jpg")];
    let mut args = vec!["-q", "refine"];
    args.extend(imgs.iter().map(|p| s(p)));
    args.extend(["-o", s(&out), "--prior", s(&prior), "--iters", "40", "--no-metrics", "--lockstep", "3"]);
    let child = spawn_until(&args, &out);
    // Well into the three loops' model calls.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let o = interrupt(child);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert_eq!(err.lines().count(), 1, "only borex's own line: {err}");
    assert!(err.starts_with("error: interrupted") && !err.to_lowercase().contains("onnx"), "{err}");
    if out.join("summary.csv").exists() {
        assert!(summary(&out).iter().all(|r| r.2 != "failed"), "{:?}", summary(&out));
    }
    for n in names(&out) {
        let p = out.join(&n);
        assert!(
            n == "job.json" || n == ".borex.lock" || p.join("report.json").is_file(),
            "{n}: neither the job, nor a finished image"
        );
    }
    let done = summary_after(&args);
    assert_eq!(done, ["ok", "ok", "ok"]);

    fn summary_after(args: &[&str]) -> Vec<String> {
        let o = run_borex(args, &[]);
        ok(&o);
        let out = Path::new(args[args.iter().position(|a| *a == "-o").unwrap() + 1]);
        summary(out).into_iter().map(|r| if r.2 == "earlier" { "ok".into() } else { r.2 }).collect()
    }
}

/// Image names that would address OUTDIR itself, its parent or borex's own
/// files get safe, unique folders; nothing is written outside OUTDIR (refine)
/// or outside `runs/` (eval).
#[test]
fn crafted_image_names_stay_inside_the_output_folder() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let prior = blob_prior(&d.join("prior.npy"));
    let w = d.join("w");
    std::fs::create_dir(&w).unwrap();
    let crafted = ["..png", "...png", ".png", "summary.csv.png"];
    for (name, img) in crafted.iter().zip(["chelsea.png", "coffee.png", "rocket.jpg", "coins.png"]) {
        std::fs::copy(sample(img), w.join(name)).unwrap();
    }
    let manifest = w.join("list.txt");
    std::fs::write(&manifest, crafted.join("\n")).unwrap();
    let before = names(&w);
    let out = w.join("out");
    ok(&refine(&["--manifest", s(&manifest), "-o", s(&out)], &prior, &[]));
    let folders: Vec<(String, String)> = summary(&out).into_iter().map(|(_, f, st)| (f, st)).collect();
    let want = [("image", "ok"), ("image-2", "ok"), ("png", "ok"), ("summary.csv_", "ok")];
    assert_eq!(folders, want.map(|(a, b)| (a.to_string(), b.to_string())));
    assert!(out.join("summary.csv").is_file());
    for (f, _) in &folders {
        assert!(out.join(f).join("report.json").is_file(), "{f}");
    }
    let mut expected = [before, vec!["out".to_string()]].concat();
    expected.sort();
    assert_eq!(names(&w), expected, "written beside OUTDIR");

    // eval: `...png` has the stem `..`, which named runs/.. before.
    let maps = d.join("maps");
    std::fs::create_dir(&maps).unwrap();
    blob_prior(&maps.join("...npy"));
    let ev = d.join("eval");
    let pattern = format!("file:{}/{{stem}}.npy", s(&maps));
    let eval = |seeds: &str| {
        run_borex(&["-q", "eval", s(&w.join("...png")), "-o", s(&ev), "--methods", &pattern, "--seeds", seeds], &[])
    };
    ok(&eval("0"));
    assert_eq!(names(&ev.join("runs")), ["image"]);
    for n in names(&ev) {
        assert!(ev.join(&n).is_file() || n == "runs" || n == "plots", "{n} written beside runs/");
    }
    // A rerun with other settings is refused naming them.
    assert_error(
        &eval("1"),
        &["holds a `borex eval` run with other input or settings", "--seeds ([0] there, [1] now)"],
    );
}

/// `-o LINK`, LINK a symbolic link to a folder: the outputs go into the
/// target, the link stays a link (the atomic folder swap used to replace it).
#[test]
fn an_output_link_stays_a_link() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let prior = blob_prior(&d.join("prior.npy"));
    let target = d.join("target");
    std::fs::create_dir(&target).unwrap();
    let link = d.join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let chelsea = sample("chelsea.png");
    for _ in 0..2 {
        ok(&refine(&[s(&chelsea), "-o", s(&link)], &prior, &[]));
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link was replaced");
        assert_eq!(std::fs::read_link(&link).unwrap(), target);
        assert_eq!(names(&target), ["overlay.png", "prior.npy", "refined.npy", "report.json"]);
    }
    assert_eq!(names(d), ["link", "prior.npy", "target"], "no staging folder left");
    let dangling = d.join("dangling");
    std::os::unix::fs::symlink(d.join("nowhere"), &dangling).unwrap();
    assert_error(&refine(&[s(&chelsea), "-o", s(&dangling)], &prior, &[]), &["dangling", "is a link to"]);
}
