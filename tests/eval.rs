//! Evaluation: insertion/deletion against an independent numpy implementation
//! (scripts/make_causal_fixture.py), on the CPU kernels and their GPU twins.

mod common;

use borex::compute::{cpu::CpuKernels, gpu::GpuKernels, ImageKernels};
use borex::metrics::{causal_curve, CausalMetric, InsertionStart};
use borex::model::{Classifier, ModelOptions, Scorer};
use ndarray::{Array2, Array3};
use serde_json::Value;

fn causal_matches_numpy(kernels: &dyn ImageKernels, who: &str) {
    let f: Value =
        serde_json::from_str(&std::fs::read_to_string(common::fixture("causal_numpy.json")).unwrap()).unwrap();
    let img: Vec<Vec<Vec<f32>>> = serde_json::from_value(f["image"].clone()).unwrap();
    let map: Vec<Vec<f32>> = serde_json::from_value(f["map"].clone()).unwrap();
    let image = Array3::from_shape_fn((img.len(), img[0].len(), img[0][0].len()), |(c, y, x)| img[c][y][x]);
    let map = Array2::from_shape_fn((map.len(), map[0].len()), |(y, x)| map[y][x]);
    let model = Classifier::load(&ModelOptions::new(common::fixture("gap_linear_probs.onnx"))).unwrap();
    // Batch 5: 17 points span four model calls, the last one partial.
    let scorer = Scorer::new(&model, kernels, 5);
    let cases = f["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 6);
    for c in cases {
        let class = c["class"].as_u64().unwrap() as usize;
        let (metric, start) = match c["curve"].as_str().unwrap() {
            "deletion" => (CausalMetric::Deletion, InsertionStart::Blur),
            "insertion_blur" => (CausalMetric::Insertion, InsertionStart::Blur),
            "insertion_zero" => (CausalMetric::Insertion, InsertionStart::Zero),
            other => panic!("unknown curve {other}"),
        };
        let curve = causal_curve(&scorer, kernels, image.view(), map.view(), class, metric, start).unwrap();
        let want: Vec<f32> = serde_json::from_value(c["scores"].clone()).unwrap();
        assert!(
            common::max_abs_diff(&curve.scores, &want) < 1e-6,
            "{who} {} class {class}: {:?} vs {want:?}",
            c["curve"],
            curve.scores
        );
        let auc = c["auc"].as_f64().unwrap();
        assert!(
            (curve.auc as f64 - auc).abs() < 1e-6,
            "{who} {} class {class}: AUC {} vs numpy {auc}",
            c["curve"],
            curve.auc
        );
    }
}

#[test]
fn insertion_deletion_match_numpy_on_cpu() {
    causal_matches_numpy(&CpuKernels, "cpu");
}

#[test]
fn insertion_deletion_match_numpy_on_gpu() {
    if let Some(ctx) = common::gpu_or_skip("insertion_deletion_match_numpy_on_gpu") {
        causal_matches_numpy(&GpuKernels::new(ctx), "gpu");
    }
}

// ---- refine objectives: each query's two probabilities use the substrates the objective names.

fn query_substrates(objective: borex::refine::Objective) -> (f32, f32, f32, f32) {
    use borex::compute::{Baseline, ImageKernels};
    use borex::refine::{refine, RefineConfig};
    let model = Classifier::load(&ModelOptions::new(common::fixture("gap_linear_probs.onnx"))).unwrap();
    let kernels = CpuKernels;
    let scorer = Scorer::new(&model, &kernels, 4);
    let (h, w) = (24, 24);
    let image = Array3::from_shape_fn((3, h, w), |(c, y, x)| ((c * 7 + y * 3 + x * 5) % 11) as f32 / 5.0 - 1.0);
    let prior = Array2::from_shape_fn((h, w), |(y, x)| (y * w + x) as f32 / 100.0);
    let cfg = RefineConfig { iters: 1, sizes: Some(vec![4, 6]), objective, ..RefineConfig::default() };
    let r = refine(&scorer, &kernels, image.view(), 1, prior.view(), &cfg, &borex::progress::NoProgress).unwrap();
    let o = &r.observations[0];
    // The box by hand: rows/cols [c − s, c + s) clipped; blend by hand.
    let (r0, c0, sz) = (o.row as usize, o.col as usize, o.size as usize);
    let in_box = |y: usize, x: usize| y + sz >= r0 && y < r0 + sz && x + sz >= c0 && x < c0 + sz;
    let blur = kernels.baseline(image.view(), Baseline::Blur).unwrap();
    let p = |x: &Array3<f32>| scorer.probabilities(x.view()).unwrap()[1];
    let kept_on = |base: &Array3<f32>| {
        p(&Array3::from_shape_fn(
            image.raw_dim(),
            |(c, y, x)| if in_box(y, x) { image[[c, y, x]] } else { base[[c, y, x]] },
        ))
    };
    let removed_to = |base: &Array3<f32>| {
        p(&Array3::from_shape_fn(
            image.raw_dim(),
            |(c, y, x)| if in_box(y, x) { base[[c, y, x]] } else { image[[c, y, x]] },
        ))
    };
    let zero = Array3::zeros(image.raw_dim());
    let (want_in, want_out) = match objective {
        borex::refine::Objective::Paper => (kept_on(&zero), removed_to(&zero)),
        borex::refine::Objective::Matched => (kept_on(&blur), removed_to(&zero)),
        borex::refine::Objective::Insertion => (kept_on(&blur), p(&blur)),
        borex::refine::Objective::Deletion => (p(&image), removed_to(&zero)),
    };
    (o.p_inside, want_in, o.p_outside, want_out)
}

#[test]
fn every_objective_queries_its_substrates() {
    use borex::refine::Objective;
    for obj in [Objective::Paper, Objective::Matched, Objective::Insertion, Objective::Deletion] {
        let (got_in, want_in, got_out, want_out) = query_substrates(obj);
        assert!(
            (got_in - want_in).abs() < 1e-6 && (got_out - want_out).abs() < 1e-6,
            "{obj:?}: ({got_in}, {got_out}) vs ({want_in}, {want_out})"
        );
    }
    // The substrates differ enough on this image for a swap to be caught.
    let (_, kept_zero, _, _) = query_substrates(Objective::Paper);
    let (_, kept_blur, _, _) = query_substrates(Objective::Matched);
    assert!((kept_zero - kept_blur).abs() > 1e-4, "{kept_zero} vs {kept_blur}");
}

// ---- the `borex eval` command.

use common::{assert_error, asset, run_borex};
use std::path::Path;

fn sample(name: &str) -> String {
    asset(borex::paths::sample_image(name)).to_str().unwrap().to_string()
}

fn csv_rows(path: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    lines.map(|l| header.iter().cloned().zip(l.split(',').map(String::from)).collect()).collect()
}

#[test]
fn eval_refine_writes_tables_plots_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ev");
    let manifest = dir.path().join("images.txt");
    // A file that is not an image fails alone (a missing one stops the run before it starts: see below).
    std::fs::write(dir.path().join("broken.png"), b"not a PNG").unwrap();
    std::fs::write(&manifest, format!("# two images, one broken\n{}\nbroken.png\n", sample("coffee.png"))).unwrap();
    let args = [
        "--device",
        "cpu",
        "-q",
        "eval",
        "--manifest",
        manifest.to_str().unwrap(),
        "--refine",
        "--objectives",
        "paper,matched",
        "--iters",
        "3",
        "-o",
        out.to_str().unwrap(),
    ];
    let o = run_borex(&args, &[]);
    // The broken image is reported, the other one is evaluated, and the exit status says something failed.
    assert_error(&o, &["1 of 2 images"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("broken.png"));
    let rows = csv_rows(&out.join("results.csv"));
    assert_eq!(rows.len(), 3, "prior + two refinements");
    let maps: Vec<&str> = rows.iter().map(|r| r["map"].as_str()).collect();
    assert_eq!(maps, ["prior", "refined:matched", "refined:paper"]);
    for r in &rows {
        let f = |k: &str| r[k].parse::<f64>().unwrap();
        assert!((f("ins_del_blur") - (f("insertion_blur") - f("deletion"))).abs() < 2e-6);
        assert!((0.0..=1.0).contains(&f("insertion_zero")));
    }
    // summary.json's gain is refined − prior of the CSV values.
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let m = &s["methods"][0];
    assert_eq!(m["method"], "rise-fast");
    let paper = m["variants"].as_array().unwrap().iter().find(|v| v["variant"] == "paper").unwrap();
    let test = paper["tests"].as_array().unwrap().iter().find(|t| t["metric"] == "ins_del_blur").unwrap();
    let val = |map: &str| rows.iter().find(|r| r["map"] == map).unwrap()["ins_del_blur"].parse::<f64>().unwrap();
    assert!((test["mean_gain"].as_f64().unwrap() - (val("refined:paper") - val("prior"))).abs() < 2e-6);
    assert_eq!(test["n"], 1);
    assert_eq!(s["failures"].as_array().unwrap().len(), 1);
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("paired Wilcoxon") && md.contains("broken.png"));
    for p in ["plots/curves_rise-fast.png", "plots/scatter_rise-fast.png"] {
        let img = image::open(out.join(p)).unwrap();
        assert!(img.width() > 300 && img.height() > 300, "{p}");
    }
    // Rerun: nothing recomputed, the same table.
    let before = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let o = run_borex(&args, &[]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("0 rows computed, 1 already done"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert_eq!(std::fs::read_to_string(out.join("results.csv")).unwrap(), before);
}

#[test]
fn eval_rejects_bad_input_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    let o = out.to_str().unwrap();
    assert_error(&run_borex(&["-q", "eval", "-o", o], &[]), &["no images"]);
    assert_error(
        &run_borex(&["-q", "eval", "--manifest", "/nonexistent/list.txt", "-o", o], &[]),
        &["manifest", "/nonexistent/list.txt"],
    );
    assert_error(
        &run_borex(&["-q", "eval", &sample("coffee.png"), "--methods", "rise-fast,magic", "-o", o], &[]),
        &["magic"],
    );
    assert_error(
        &run_borex(&["-q", "eval", &sample("coffee.png"), "--objectives", "matched", "-o", o], &[]),
        &["--refine"],
    );
    assert_error(
        &run_borex(&["-q", "eval", &sample("coffee.png"), "--refine", "--objectives", "best", "-o", o], &[]),
        &["best"],
    );
    assert_error(
        &run_borex(&["-q", "eval", &sample("coffee.png"), "--methods", "file:maps/x.npy", "-o", o], &[]),
        &["{stem}"],
    );
    // Baselines: unknown names, counts beyond src/limits.rs or not beyond the prior's masks,
    // equal-budget without a refinement, a prior that is not RISE.
    let coffee = sample("coffee.png");
    let eval = |extra: &[&str]| {
        let mut args = vec!["-q", "eval", coffee.as_str(), "-o", o];
        args.extend_from_slice(extra);
        run_borex(&args, &[])
    };
    assert_error(
        &eval(&["--refine", "--baselines", "equal-budget,cheap"]),
        &["unknown baseline \"cheap\"", "equal-budget"],
    );
    // The antithetic continuation needs a RISE prior's masks.
    assert_error(
        &eval(&["--refine", "--objectives", "antithetic", "--methods", "gradcam"]),
        &["--objectives antithetic", "\"gradcam\" is not RISE"],
    );
    assert_error(&eval(&["--refine", "--baselines", "2000000"]), &["--baselines 2000000 is out of range", "1000000"]);
    assert_error(&eval(&["--refine", "--baselines", "100"]), &["--baselines 100", "does not continue", "rise-fast"]);
    assert_error(
        &eval(&["--refine", "--iters", "2000", "--baselines", "equal-budget", "--methods", "rise+masks=999000"]),
        &["--baselines 1003000 is out of range"],
    );
    assert_error(&eval(&["--baselines", "equal-budget"]), &["equal-budget needs --refine"]);
    assert_error(&eval(&["--refine", "--methods", "gradcam", "--baselines", "1000"]), &["\"gradcam\" is not RISE"]);
    assert_error(&eval(&["--refine", "--baselines", "1000,1000"]), &["same baseline twice"]);
    // A manifest naming a missing file stops the run before any work, naming the file.
    let manifest = dir.path().join("set.txt");
    std::fs::write(&manifest, format!("{coffee}\nnot-there.jpg\n")).unwrap();
    assert_error(
        &run_borex(&["-q", "eval", "--manifest", manifest.to_str().unwrap(), "-o", o], &[]),
        &["set.txt names", "not-there.jpg", "does not exist"],
    );
    assert!(!out.exists(), "no output folder for rejected input");
}

// ---- baselines: RISE continued from the prior's masks is RISE computed directly.

fn continuation_is_direct_rise(kernels: &dyn ImageKernels, who: &str) {
    use borex::eval::baselines::rise_continued;
    use borex::explain::rise::{rise, RiseParams};
    let model = Classifier::load(&ModelOptions::new(common::fixture("gap_linear_probs.onnx"))).unwrap();
    // Batch 5 against counts 7, 23, 40: the continuation cuts batches where a direct run does not.
    let scorer = Scorer::new(&model, kernels, 5);
    let image = Array3::from_shape_fn((3, 24, 24), |(c, y, x)| ((c * 5 + y * 7 + x * 3) % 13) as f32 / 6.0 - 1.0);
    let params = RiseParams { n: 7, s: 4, p: 0.4, seed: 11 };
    let counts = [7, 23, 40];
    for class in [1, 3] {
        let maps = rise_continued(&scorer, image.view(), class, &params, &counts).unwrap();
        for (n, map) in counts.iter().zip(&maps) {
            let direct =
                rise(&scorer, image.view(), class, &RiseParams { n: *n, ..params }, &borex::progress::NoProgress)
                    .unwrap();
            assert!(map == direct, "{who} class {class}: RISE-{n} continued differs from RISE-{n} computed directly");
        }
        // And differs from another seed's (the test can tell maps apart).
        let other =
            rise(&scorer, image.view(), class, &RiseParams { n: 40, seed: 12, ..params }, &borex::progress::NoProgress)
                .unwrap();
        assert!(maps[2] != other);
    }
}

#[test]
fn rise_continued_equals_rise_computed_directly_bit_for_bit() {
    continuation_is_direct_rise(&CpuKernels, "cpu");
    if let Some(ctx) = common::gpu_or_skip("rise_continued_equals_rise_computed_directly_bit_for_bit") {
        continuation_is_direct_rise(&GpuKernels::new(ctx), "gpu");
    }
    // The real model at batch 32, as `borex eval --baselines` runs it: the RISE-100 prior continued
    // to 130 masks (the batch of masks 96–127 is cut at 100) is RISE-130.
    use borex::eval::baselines::rise_continued;
    use borex::explain::rise::{rise, RiseParams};
    let model = Classifier::load(&ModelOptions::new(asset(borex::paths::default_model()))).unwrap();
    let scorer = Scorer::new(&model, &CpuKernels, 32);
    let x = borex::image::load_input(Path::new(&sample("coffee.png")), model.preprocess()).unwrap().0.tensor;
    let params = RiseParams::fast(4);
    let maps = rise_continued(&scorer, x.view(), 967, &params, &[100, 130]).unwrap();
    let hidden = borex::progress::NoProgress;
    assert!(maps[0] == rise(&scorer, x.view(), 967, &params, &hidden).unwrap(), "RISE-100 from the continuation");
    assert!(maps[1] == rise(&scorer, x.view(), 967, &RiseParams { n: 130, ..params }, &hidden).unwrap(), "RISE-130");
}

// ---- claims by confidence group, checked against a recount of results.csv.

#[test]
fn eval_groups_and_baselines_match_a_recount_of_the_csv() {
    // A 10-class GAP + linear model on 32×32 inputs keeps this fast; images of different
    // colours get top-1 probabilities in different confidence groups.
    let dir = tempfile::tempdir().unwrap();
    let labels = dir.path().join("labels.txt");
    std::fs::write(&labels, (0..10).map(|i| format!("class{i}\n")).collect::<String>()).unwrap();
    let colours: [[u8; 3]; 6] =
        [[250, 10, 10], [10, 240, 20], [20, 20, 230], [128, 128, 128], [250, 250, 10], [5, 5, 5]];
    let mut manifest = String::new();
    for (i, c) in colours.iter().enumerate() {
        let img = image::RgbImage::from_fn(40, 40, |x, y| {
            let t = ((x * 3 + y * 5) % 40) as u8;
            image::Rgb([c[0].saturating_add(t), c[1].saturating_sub(t / 2), c[2].saturating_add(t / 3)])
        });
        img.save(dir.path().join(format!("im{i}.png"))).unwrap();
        manifest.push_str(&format!("im{i}.png\n"));
    }
    std::fs::write(dir.path().join("set.txt"), manifest).unwrap();
    let out = dir.path().join("o");
    let (model, labels) = (common::fixture("ten_classes.onnx"), labels.to_str().unwrap().to_string());
    // The same evaluation of a manifest, with extra flags.
    let eval = |manifest: &str, extra: &[&str]| {
        let manifest = dir.path().join(manifest);
        let mut args = vec!["--device", "cpu", "-q", "eval", "--manifest", manifest.to_str().unwrap()];
        args.extend(["--model", model.to_str().unwrap(), "--labels", &labels, "--input-size", "32"]);
        args.extend(["--methods", "rise-fast+masks=20", "--seeds", "0,1", "--refine"]);
        args.extend(["--objectives", "matched+sizes=4/6", "--iters", "3", "--baselines", "equal-budget,60"]);
        args.extend(["-o", out.to_str().unwrap()]);
        args.extend(extra);
        run_borex(&args, &[])
    };
    let o = eval("set.txt", &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows = csv_rows(&out.join("results.csv"));
    // Per image and seed: prior, refined, RISE-26 (20 + 2·3: equal budget) and RISE-60.
    assert_eq!(rows.len(), 6 * 2 * 4);
    let methods: std::collections::BTreeSet<&str> = rows.iter().map(|r| r["method"].as_str()).collect();
    assert_eq!(
        methods.into_iter().collect::<Vec<_>>(),
        ["rise-fast+masks=20", "rise-fast+masks=26", "rise-fast+masks=60"]
    );
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    // Brute force: each image's group from its probability, then each group's gains by hand.
    let group = |p: f64| {
        if p >= 0.5 {
            0
        } else if p >= 0.2 {
            1
        } else {
            2
        }
    };
    let value = |key: &str, seed: &str, method: &str, map: &str, metric: &str| -> f64 {
        rows.iter()
            .find(|r| r["key"] == key && r["seed"] == seed && r["method"] == method && r["map"] == map)
            .unwrap_or_else(|| panic!("no row {key} {seed} {method} {map}"))[metric]
            .parse()
            .unwrap()
    };
    let mut nonempty = 0;
    for (g, gs) in s["groups"].as_array().unwrap().iter().enumerate() {
        let keys: std::collections::BTreeSet<&str> =
            rows.iter().filter(|r| group(r["probability"].parse().unwrap()) == g).map(|r| r["key"].as_str()).collect();
        assert_eq!(gs["images"].as_u64().unwrap() as usize, keys.len(), "group {g} membership");
        nonempty += usize::from(!keys.is_empty());
        let m = &gs["methods"][0];
        for metric in ["ins_del_blur", "ins_del_zero"] {
            let gains = |method: &str, map: &str| -> Vec<f64> {
                keys.iter()
                    .flat_map(|k| ["0", "1"].map(|seed| (*k, seed)))
                    .map(|(k, seed)| {
                        value(k, seed, method, map, metric) - value(k, seed, "rise-fast+masks=20", "prior", metric)
                    })
                    .collect()
            };
            let check = |tests: &serde_json::Value, want: Vec<f64>, what: &str| {
                let t = tests.as_array().unwrap().iter().find(|t| t["metric"] == metric).unwrap();
                assert_eq!(t["n"].as_u64().unwrap() as usize, want.len(), "group {g} {what} {metric} n");
                assert_eq!(t["wins"].as_u64().unwrap() as usize, want.iter().filter(|x| **x > 0.0).count());
                if !want.is_empty() {
                    let mean = want.iter().sum::<f64>() / want.len() as f64;
                    // The CSV keeps six decimals.
                    assert!((t["mean_gain"].as_f64().unwrap() - mean).abs() < 2e-6, "group {g} {what} {metric}");
                }
            };
            check(&m["variants"][0]["tests"], gains("rise-fast+masks=20", "refined:matched+sizes=4/6"), "refined");
            let bs = m["baselines"].as_array().unwrap();
            assert_eq!(bs.len(), 2);
            for (b, method) in bs.iter().zip(["rise-fast+masks=26", "rise-fast+masks=60"]) {
                assert_eq!(b["method"], method);
                check(&b["vs_prior"], gains(method, "prior"), method);
            }
        }
    }
    assert!(nonempty >= 2, "the colours should fall in at least two confidence groups");
    // Overall and per group, one bar row each.
    let bar = s["bar"].as_array().unwrap();
    assert_eq!(
        bar.iter().map(|r| r["group"].as_str().unwrap()).collect::<Vec<_>>(),
        ["all", "P ≥ 0.5", "0.2 ≤ P < 0.5", "P < 0.2"]
    );
    assert_eq!(bar[0]["equal_budget"]["masks"], 26);
    assert_eq!(bar[0]["fixed"]["masks"], 60);
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("## The bar") && md.contains("top-1 confidence") && md.contains("RISE-60"));
    // --summary-only with one more image: nothing computed, the same tables, the new image named as not run.
    let before = std::fs::read_to_string(out.join("results.csv")).unwrap();
    std::fs::copy(dir.path().join("im0.png"), dir.path().join("late.png")).unwrap();
    let set = std::fs::read_to_string(dir.path().join("set.txt")).unwrap();
    std::fs::write(dir.path().join("more.txt"), format!("{set}late.png\n")).unwrap();
    let o = eval("more.txt", &["--summary-only"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("0 rows computed, 12 already done"));
    assert_eq!(std::fs::read_to_string(out.join("results.csv")).unwrap(), before);
    assert!(!out.join("runs/late").exists());
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["images"], 6);
    assert!(s["not_run"][0].as_str().unwrap().ends_with("late.png"), "{}", s["not_run"]);
}

#[test]
fn eval_scores_map_files_and_reports_missing_ones() {
    // A map file per image through `file:PATTERN`; the 112×112 map is resized with a note,
    // and the image without a map fails alone.
    let dir = tempfile::tempdir().unwrap();
    let maps = dir.path().join("maps");
    std::fs::create_dir_all(&maps).unwrap();
    let map =
        Array2::from_shape_fn((112, 112), |(y, x)| ((y as f32 - 56.0).powi(2) + (x as f32 - 56.0).powi(2)).sqrt());
    ndarray_npy::write_npy(maps.join("coffee.npy"), &map).unwrap();
    let out = dir.path().join("o");
    let pattern = format!("file:{}/{{stem}}.npy", maps.display());
    let o = run_borex(
        &[
            "--device",
            "cpu",
            "-q",
            "eval",
            &sample("coffee.png"),
            &sample("chelsea.png"),
            "--methods",
            &pattern,
            "-o",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert_error(&o, &["1 of 2 images"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("chelsea.npy"), "{}", String::from_utf8_lossy(&o.stderr));
    let rows = csv_rows(&out.join("results.csv"));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["key"], "coffee");
    let rec: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            out.join("runs/coffee").join(borex::eval::file_safe(&pattern)).join("seed0/prior.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert!(rec["notes"][0].as_str().unwrap().contains("stretched to 224×224"), "{rec}");
    // A map of a shape that is neither the input's nor the image's fails that image alone, named.
    ndarray_npy::write_npy(maps.join("chelsea.npy"), &Array2::<f32>::ones((50, 80))).unwrap();
    let o = run_borex(
        &[
            "--device",
            "cpu",
            "-q",
            "eval",
            &sample("coffee.png"),
            &sample("chelsea.png"),
            "--methods",
            &pattern,
            "-o",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert_error(&o, &["1 of 2 images"]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("is 50×80: expected the model input's size 224×224"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn eval_refuses_map_files_that_rank_no_pixel() {
    // An all-zero or a constant map file used to be scored (pixels taken in index order)
    // and summarised like an explainer's map, exit 0. Each is refused by name (refine's
    // prior check, plus "constant"); the image with a real map is still scored.
    let dir = tempfile::tempdir().unwrap();
    let labels = dir.path().join("labels.txt");
    std::fs::write(&labels, (0..10).map(|i| format!("class{i}\n")).collect::<String>()).unwrap();
    let maps = dir.path().join("maps");
    std::fs::create_dir_all(&maps).unwrap();
    let mut images = vec![];
    for (stem, map) in [
        ("zero", Array2::<f32>::zeros((32, 32))),
        ("flat", Array2::from_elem((32, 32), 0.5f32)),
        ("ramp", Array2::from_shape_fn((32, 32), |(y, x)| (y * 32 + x) as f32)),
    ] {
        let img = image::RgbImage::from_fn(32, 32, |x, y| image::Rgb([(x * 8) as u8, (y * 8) as u8, 90]));
        let path = dir.path().join(format!("{stem}.png"));
        img.save(&path).unwrap();
        images.push(path.to_str().unwrap().to_string());
        ndarray_npy::write_npy(maps.join(format!("{stem}.npy")), &map).unwrap();
    }
    let pattern = format!("file:{}/{{stem}}.npy", maps.display());
    let out = dir.path().join("o");
    let (model, labels) = (common::fixture("ten_classes.onnx"), labels.to_str().unwrap().to_string());
    let mut args = vec!["--device", "cpu", "-q", "eval", "--model", model.to_str().unwrap(), "--labels", &labels];
    args.extend(["--input-size", "32", "--methods", &pattern, "-o", out.to_str().unwrap()]);
    args.extend(images.iter().map(String::as_str));
    let o = run_borex(&args, &[]);
    assert_error(&o, &["2 of 3 images had failures"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("map file {} is all zero", maps.join("zero.npy").display())), "{err}");
    assert!(
        err.contains(&format!("map file {} is constant (0.5 everywhere)", maps.join("flat.npy").display())),
        "{err}"
    );
    let rows = csv_rows(&out.join("results.csv"));
    assert_eq!(rows.iter().map(|r| r["key"].as_str()).collect::<Vec<_>>(), ["ramp"]);
    // Nothing recorded for the refused maps: a rerun (after the file is fixed) computes them.
    let row = |k: &str| out.join("runs").join(k).join(borex::eval::file_safe(&pattern)).join("seed0/prior.json");
    assert!(row("ramp").exists() && !row("zero").exists() && !row("flat").exists());
}

#[test]
fn eval_compares_each_method_with_the_first_per_image() {
    // Two map files per image: a centred blob and its negation. The summary's
    // "vs first" test must pair them by image (and seed) and take the
    // direction of each metric; checked against the CSV's own values.
    let dir = tempfile::tempdir().unwrap();
    for (name, sign) in [("blob", 1.0f32), ("hole", -1.0)] {
        let d = dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        for (stem, (cy, cx)) in [("coffee", (112.0, 112.0)), ("chelsea", (60.0, 70.0))] {
            let map = Array2::from_shape_fn((224, 224), |(y, x)| {
                -sign * ((y as f32 - cy).powi(2) + (x as f32 - cx).powi(2)).sqrt()
            });
            ndarray_npy::write_npy(d.join(format!("{stem}.npy")), &map).unwrap();
        }
    }
    let method = |name: &str| format!("file:{}/{{stem}}.npy", dir.path().join(name).display());
    let (blob, hole) = (method("blob"), method("hole"));
    let out = dir.path().join("o");
    let o = run_borex(
        &[
            "--device",
            "cpu",
            "-q",
            "eval",
            &sample("coffee.png"),
            &sample("chelsea.png"),
            "--methods",
            &format!("{blob},{hole}"),
            "-o",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows = csv_rows(&out.join("results.csv"));
    let value = |m: &str, key: &str, metric: &str| {
        rows.iter().find(|r| r["method"] == m && r["key"] == key).unwrap()[metric].parse::<f64>().unwrap()
    };
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let cmp = s["versus_first"].as_array().unwrap();
    assert_eq!(cmp.len(), 1);
    assert_eq!(
        (cmp[0]["method"].as_str().unwrap(), cmp[0]["reference"].as_str().unwrap()),
        (hole.as_str(), blob.as_str())
    );
    for (metric, higher) in [("ins_del_blur", true), ("deletion", false)] {
        let gains: Vec<f64> = ["coffee", "chelsea"]
            .iter()
            .map(|k| (value(&hole, k, metric) - value(&blob, k, metric)) * if higher { 1.0 } else { -1.0 })
            .collect();
        let t = cmp[0]["tests"].as_array().unwrap().iter().find(|t| t["metric"] == metric).unwrap();
        assert_eq!(t["n"], 2, "{metric}");
        assert!(
            (t["mean_gain"].as_f64().unwrap() - gains.iter().sum::<f64>() / 2.0).abs() < 2e-6,
            "{metric}: {t} vs {gains:?}"
        );
        assert_eq!(t["wins"].as_u64().unwrap() as usize, gains.iter().filter(|g| **g > 0.0).count(), "{metric}");
    }
    assert!(std::fs::read_to_string(out.join("summary.md")).unwrap().contains("## Methods vs `file:"));
}

// ---- `borex eval mosaic` on a class folder the test builds from the sample images:
// one sub-folder per class (named by ImageNet class id), each holding the image,
// its mirror and a centre crop.

fn class_folder(root: &Path, classes: &[(&str, &str)]) {
    for (class, name) in classes {
        let d = root.join(class);
        std::fs::create_dir_all(&d).unwrap();
        let img = image::open(sample(name)).unwrap().to_rgb8();
        img.save(d.join("a.png")).unwrap();
        image::imageops::flip_horizontal(&img).save(d.join("b.png")).unwrap();
        let (w, h) = img.dimensions();
        image::imageops::crop_imm(&img, w / 10, h / 10, w * 8 / 10, h * 8 / 10)
            .to_image()
            .save(d.join("c.png"))
            .unwrap();
    }
}

#[test]
fn mosaic_metrics_and_reliability() {
    let dir = tempfile::tempdir().unwrap();
    let classes = dir.path().join("classes");
    class_folder(&classes, &[("282", "chelsea.png"), ("967", "coffee.png"), ("657", "rocket.jpg")]);
    let out = dir.path().join("m");
    let o = run_borex(
        &[
            "--device",
            "cpu",
            "-q",
            "eval",
            "mosaic",
            classes.to_str().unwrap(),
            "--mosaics",
            "3",
            "--methods",
            "gradcam,cam",
            "-o",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows = csv_rows(&out.join("mosaics.csv"));
    assert_eq!(rows.len(), 6);
    for r in &rows {
        let f = |k: &str| r[k].parse::<f64>().unwrap();
        // Brute-force ratios from the written relevance sums; CAM maps are non-negative, so
        // there is no negative relevance: recall 1, and specificity's 0/0-free form is 0.
        assert!((f("precision") - f("tp") / (f("tp") + f("fp"))).abs() < 1e-5);
        assert_eq!((f("fn"), f("tn")), (0.0, 0.0));
        assert_eq!(f("recall"), 1.0);
        assert_eq!(
            r["tiles"].matches(&format!("{}/", r["target_folder"])).count(),
            2,
            "two target tiles: {}",
            r["tiles"]
        );
    }
    let mean_precision: f64 = rows.iter().map(|r| r["precision"].parse::<f64>().unwrap()).sum::<f64>() / 6.0;
    assert!(mean_precision > 0.5, "the explained class's tiles hold most of the relevance: {mean_precision}");
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let rel = s["reliability"].as_array().unwrap();
    let recall = rel.iter().find(|r| r["metric"] == "recall").unwrap();
    assert!(recall["alpha"].is_null(), "a constant metric has undefined α, not a number: {recall}");
    assert!(recall["spearman"][0][1].is_null());
    let precision = rel.iter().find(|r| r["metric"] == "precision").unwrap();
    let a = precision["alpha"].as_f64().unwrap();
    // Against a brute-force ordinal α over the written rows: each mosaic ranks the methods by precision.
    let methods = ["gradcam", "cam"];
    let table: Vec<Vec<f64>> = (0..3)
        .map(|m| {
            let value = |meth: &str| {
                let r = rows.iter().find(|r| r["mosaic"] == m.to_string() && r["method"] == meth).unwrap();
                r["precision"].parse::<f64>().unwrap()
            };
            let v: Vec<f64> = methods.iter().map(|meth| value(meth)).collect();
            // Average ranks, by counting: 1 + (number below) + (ties − 1)/2.
            v.iter()
                .map(|x| {
                    let below = v.iter().filter(|y| *y < x).count() as f64;
                    let ties = v.iter().filter(|y| *y == x).count() as f64;
                    1.0 + below + (ties - 1.0) / 2.0
                })
                .collect()
        })
        .collect();
    let want = brute_force_alpha_ordinal(&table);
    assert!((a - want).abs() < 1e-9, "α {a} vs brute force {want} over {table:?}");
    // Each mosaic's PNG, and beside it each method's map (for `borex report`).
    let files: Vec<String> = std::fs::read_dir(out.join("mosaics"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files.iter().filter(|f| f.ends_with(".png")).count(), 3, "{files:?}");
    assert_eq!(files.iter().filter(|f| f.ends_with(".npy")).count(), 3 * methods.len(), "{files:?}");
}

/// Krippendorff's ordinal α by its pairwise definition (Krippendorff 2011, §3–4), not the
/// coincidence matrix borex uses: `ratings[rater][unit]`, every value present.
/// D_o averages δ² over ordered pairs within a unit (weight 1/(m_u − 1)), D_e over all
/// ordered pairs of values; δ²(c, k) = (Σ_{g between c and k} n_g − (n_c + n_k)/2)².
fn brute_force_alpha_ordinal(ratings: &[Vec<f64>]) -> f64 {
    let units = ratings[0].len();
    let values: Vec<f64> = ratings.iter().flatten().copied().collect();
    let n = values.len() as f64;
    let count = |v: f64| values.iter().filter(|x| **x == v).count() as f64;
    let delta = |c: f64, k: f64| {
        let (lo, hi) = (c.min(k), c.max(k));
        let mut distinct: Vec<f64> = values.iter().copied().filter(|v| *v >= lo && *v <= hi).collect();
        distinct.sort_by(f64::total_cmp);
        distinct.dedup();
        (distinct.iter().map(|g| count(*g)).sum::<f64>() - (count(c) + count(k)) / 2.0).powi(2)
    };
    let mut observed = 0.0;
    for u in 0..units {
        let in_unit: Vec<f64> = ratings.iter().map(|r| r[u]).collect();
        let m = in_unit.len() as f64;
        for i in 0..in_unit.len() {
            for j in 0..in_unit.len() {
                if i != j {
                    observed += delta(in_unit[i], in_unit[j]) / (m - 1.0);
                }
            }
        }
    }
    let mut expected = 0.0;
    for i in 0..values.len() {
        for j in 0..values.len() {
            if i != j {
                expected += delta(values[i], values[j]);
            }
        }
    }
    1.0 - (observed / n) / (expected / (n * (n - 1.0)))
}

#[test]
fn brute_force_alpha_matches_the_krippendorff_package() {
    // krippendorff 0.9.0 (PyPI): alpha(reliability_data=D, level_of_measurement="ordinal"), D raters × units.
    for (data, want) in [
        (vec![vec![1.0, 2.0, 3.0, 3.0], vec![1.0, 2.0, 3.0, 4.0], vec![2.0, 2.0, 3.0, 4.0]], 0.875),
        (vec![vec![1.0, 2.0], vec![2.0, 1.0], vec![1.0, 2.0]], -0.11111111111111116),
        // Rank ties, as a mosaic whose two methods score alike gives.
        (vec![vec![1.0, 2.0], vec![1.5, 1.5], vec![1.0, 2.0]], 0.5833333333333333),
    ] {
        let got = brute_force_alpha_ordinal(&data);
        assert!((got - want).abs() < 1e-12, "{data:?}: {got} vs the package's {want}");
    }
}

#[test]
fn mosaic_rejects_bad_folders() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m");
    let one = dir.path().join("one");
    class_folder(&one, &[("282", "chelsea.png")]);
    assert_error(
        &run_borex(&["-q", "eval", "mosaic", one.to_str().unwrap(), "-o", out.to_str().unwrap()], &[]),
        &["at least two classes"],
    );
    let few = dir.path().join("few");
    class_folder(&few, &[("282", "chelsea.png"), ("967", "coffee.png")]);
    for f in ["b.png", "c.png"] {
        std::fs::remove_file(few.join("967").join(f)).unwrap();
    }
    assert_error(
        &run_borex(&["-q", "eval", "mosaic", few.to_str().unwrap(), "-o", out.to_str().unwrap()], &[]),
        &["\"967\"", "at least two per class"],
    );
    // One class under its id and its label: mosaics whose "other" tiles show the target class.
    let twice = dir.path().join("twice");
    class_folder(&twice, &[("282", "chelsea.png"), ("tiger cat", "chelsea.png"), ("967", "coffee.png")]);
    assert_error(
        &run_borex(&["-q", "eval", "mosaic", twice.to_str().unwrap(), "-o", out.to_str().unwrap()], &[]),
        &["class folders \"282\" and \"tiger cat\" both name class 282 (tiger cat)"],
    );
    assert!(!out.exists(), "nothing written");
    let bad = dir.path().join("bad");
    class_folder(&bad, &[("282", "chelsea.png"), ("not-a-class", "coffee.png")]);
    assert_error(
        &run_borex(&["-q", "eval", "mosaic", bad.to_str().unwrap(), "-o", out.to_str().unwrap()], &[]),
        &["not-a-class"],
    );
    assert_error(
        &run_borex(
            &["-q", "eval", "mosaic", dir.path().join("none").to_str().unwrap(), "-o", out.to_str().unwrap()],
            &[],
        ),
        &["not a folder"],
    );
}

// ---- the point readout: μ at each pixel as a box centre, averaged over sizes, without window averaging.

fn point_readout_matches_brute_force(kernels: &dyn borex::compute::GpKernels, who: &str) {
    use borex::gp::{FitOptions, Gp};
    use borex::refine::{full_res::point_map, RefineConfig};
    let (h, w) = (40, 50);
    let x = Array2::from_shape_fn((8, 3), |(i, j)| match j {
        0 => (5 + 4 * i) as f64,
        1 => (45 - 5 * i) as f64,
        _ => [3.0, 6.0][i % 2],
    });
    let y: Vec<f64> = (0..8).map(|i| ((i * 37 % 11) as f64 - 5.0) / 6.0).collect();
    let gp = Gp::fit(x.view(), &y, &FitOptions::default()).unwrap();
    let prior = Array2::from_shape_fn((h, w), |(r, q)| ((r * 7 + q * 3) % 13) as f32 / 130.0);
    let cfg = RefineConfig { sizes: Some(vec![3, 6]), ..RefineConfig::default() };
    let got = point_map(&gp, &prior, &cfg, kernels).unwrap();
    let pts = Array2::from_shape_fn((h * w * 2, 3), |(k, j)| match j {
        0 => ((k / 2) / w) as f64,
        1 => ((k / 2) % w) as f64,
        _ => [3.0, 6.0][k % 2],
    });
    let (mean, _) = gp.predict(pts.view());
    for r in 0..h {
        for q in 0..w {
            let k = r * w + q;
            let want = prior[[r, q]] as f64 + (mean[2 * k] + mean[2 * k + 1]) / 2.0;
            assert!((got[[r, q]] as f64 - want).abs() < 1e-4, "{who} ({r}, {q}): {} vs {want}", got[[r, q]]);
        }
    }
}

#[test]
fn point_readout_matches_brute_force_on_cpu_and_gpu() {
    point_readout_matches_brute_force(&CpuKernels, "cpu");
    if let Some(ctx) = common::gpu_or_skip("point_readout_matches_brute_force_on_cpu_and_gpu") {
        point_readout_matches_brute_force(&GpuKernels::new(ctx), "gpu");
    }
}
