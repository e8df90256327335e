//! Every GPU kernel against its CPU twin, on whatever adapter exists.

mod common;

use borex::compute::cpu::CpuKernels;
use borex::compute::gpu::{GpuContext, GpuKernels};
use borex::compute::{gaussian_kernel_1d, Baseline, BoxMask, ImageKernels, Keep, Masks, StoredBox};
use borex::refine::candidate_box;
use common::{gpu_or_skip, max_abs_diff};
use ndarray::{Array3, ArrayView3};
use std::sync::Arc;

/// A deterministic pseudo-random C×H×W tensor.
fn tensor(c: usize, h: usize, w: usize, seed: u32) -> Array3<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    Array3::from_shape_simple_fn((c, h, w), || {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        (s as f32 / u32::MAX as f32) * 4.0 - 2.0
    })
}

fn views(a: &[Array3<f32>]) -> Vec<ArrayView3<'_, f32>> {
    a.iter().map(|x| x.view()).collect()
}

fn both(name: &str) -> Option<(CpuKernels, GpuKernels)> {
    gpu_or_skip(name).map(|ctx| (CpuKernels, GpuKernels::new(ctx)))
}

fn compare_masks(
    cpu: &dyn ImageKernels,
    gpu: &dyn ImageKernels,
    image: ArrayView3<f32>,
    baseline: Baseline,
    masks: Masks,
) {
    let b_cpu = cpu.baseline(image, baseline).unwrap();
    let b_gpu = gpu.baseline(image, baseline).unwrap();
    assert!(max_abs_diff(b_cpu.as_slice().unwrap(), b_gpu.as_slice().unwrap()) <= 1e-5, "baseline {baseline:?}");
    let a = cpu.apply_masks(image, b_cpu.view(), masks).unwrap();
    let b = gpu.apply_masks(image, b_cpu.view(), masks).unwrap();
    assert_eq!(a.dim(), b.dim());
    let d = max_abs_diff(a.as_slice().unwrap(), b.as_slice().unwrap());
    assert!(d <= 1e-5, "{baseline:?}: max abs diff {d}");
}

#[test]
fn dense_masks_match_cpu() {
    let Some((cpu, gpu)) = both("dense_masks_match_cpu") else { return };
    let image = tensor(3, 37, 53, 1);
    let masks = tensor(9, 37, 53, 2).mapv(|v| (v + 2.0) / 4.0);
    for baseline in [Baseline::Zero, Baseline::Constant(0.7), Baseline::Blur] {
        compare_masks(&cpu, &gpu, image.view(), baseline, Masks::Dense(masks.view()));
    }
}

#[test]
fn box_masks_match_cpu() {
    let Some((cpu, gpu)) = both("box_masks_match_cpu") else { return };
    let image = tensor(3, 64, 48, 3);
    let mut boxes = vec![];
    for (i, (r, q, s)) in [(10u32, 10u32, 5u32), (0, 0, 30), (63, 47, 8), (32, 24, 100)].into_iter().enumerate() {
        let keep = if i % 2 == 0 { Keep::Inside } else { Keep::Outside };
        for keep in [keep, if keep == Keep::Inside { Keep::Outside } else { Keep::Inside }] {
            boxes.push(BoxMask {
                r0: r.saturating_sub(s),
                r1: (r + s).min(64),
                c0: q.saturating_sub(s),
                c1: (q + s).min(48),
                keep,
            });
        }
    }
    for baseline in [Baseline::Zero, Baseline::Blur] {
        compare_masks(&cpu, &gpu, image.view(), baseline, Masks::Boxes(&boxes));
    }
    // Box masks equal the same masks materialised densely.
    let dense = ndarray::Array3::from_shape_fn((boxes.len(), 64, 48), |(k, y, x)| boxes[k].value(y as u32, x as u32));
    let zero = Array3::zeros(image.raw_dim());
    let a = gpu.apply_masks(image.view(), zero.view(), Masks::Boxes(&boxes)).unwrap();
    let b = gpu.apply_masks(image.view(), zero.view(), Masks::Dense(dense.view())).unwrap();
    assert_eq!(a, b);
}

#[test]
fn query_boxes_on_two_substrates_match_cpu() {
    let Some((cpu, gpu)) = both("query_boxes_on_two_substrates_match_cpu") else { return };
    let image = tensor(3, 64, 48, 4);
    let subs = [cpu.baseline(image.view(), Baseline::Blur).unwrap(), tensor(3, 64, 48, 5)];
    // The matched objective's query (inside on one substrate, outside on the
    // other), then runs of one substrate.
    let bx = |r0, c0, keep| BoxMask { r0, r1: r0 + 20, c0, c1: c0 + 16, keep };
    let boxes = [
        (0, bx(5, 7, Keep::Inside)),
        (1, bx(5, 7, Keep::Outside)),
        (1, bx(40, 30, Keep::Inside)),
        (1, bx(0, 0, Keep::Outside)),
        (0, bx(44, 32, Keep::Outside)),
    ];
    let a = cpu.apply_boxes(image.view(), &views(&subs), &boxes).unwrap();
    let b = gpu.apply_boxes(image.view(), &views(&subs), &boxes).unwrap();
    assert_eq!(a.dim(), (5, 3, 64, 48));
    let d = max_abs_diff(a.as_slice().unwrap(), b.as_slice().unwrap());
    assert!(d <= 1e-5, "max abs diff {d}");
}

#[test]
fn blur_matches_cpu_on_model_sized_input() {
    let Some((cpu, gpu)) = both("blur_matches_cpu_on_model_sized_input") else { return };
    let image = tensor(3, 224, 224, 4);
    let k = gaussian_kernel_1d(11, 5.0);
    let a = cpu.gaussian_blur(image.view(), &k).unwrap();
    let b = gpu.gaussian_blur(image.view(), &k).unwrap();
    let d = max_abs_diff(a.as_slice().unwrap(), b.as_slice().unwrap());
    assert!(d <= 1e-5, "max abs diff {d}");
    // And the blur really smooths: the variance drops by a large factor.
    let var = |x: &Array3<f32>| x.mapv(|v| v * v).mean().unwrap() - x.mean().unwrap().powi(2);
    assert!(var(&b) < var(&image) / 20.0);
}

#[test]
fn many_masks_are_chunked_and_still_match() {
    let Some((cpu, gpu)) = both("many_masks_are_chunked_and_still_match") else { return };
    // 64 box masks on a 224×224 image: the batch BOREx and the bench use.
    let image = tensor(3, 224, 224, 5);
    let boxes: Vec<BoxMask> = (0..64u32)
        .map(|i| BoxMask {
            r0: i,
            r1: i + 60,
            c0: 2 * i,
            c1: 2 * i + 30,
            keep: if i % 2 == 0 { Keep::Inside } else { Keep::Outside },
        })
        .collect();
    let zero = Array3::zeros(image.raw_dim());
    let a = cpu.apply_masks(image.view(), zero.view(), Masks::Boxes(&boxes)).unwrap();
    let b = gpu.apply_masks(image.view(), zero.view(), Masks::Boxes(&boxes)).unwrap();
    assert_eq!(a.dim(), (64, 3, 224, 224));
    assert!(max_abs_diff(a.as_slice().unwrap(), b.as_slice().unwrap()) <= 1e-5);
}

/// The lockstep group's masking: three loops' images and four substrates
/// uploaded once, every box of a step in one call, straight into the batch's
/// order, against the CPU twin box by box.
#[test]
fn stored_box_masks_of_many_loops_match_cpu_in_one_submission() {
    if gpu_or_skip("stored_box_masks_of_many_loops_match_cpu_in_one_submission").is_none() {
        return;
    }
    // A context of its own, so that its counters are this test's.
    let gpu = GpuKernels::new(Arc::new(GpuContext::new().unwrap()));
    let (h, w) = (37u32, 53u32);
    let images: Vec<Array3<f32>> = (0..3).map(|k| tensor(3, h as usize, w as usize, 20 + k)).collect();
    let blur = gaussian_kernel_1d(11, 5.0);
    let substrates: Vec<Array3<f32>> = vec![
        Array3::zeros((3, h as usize, w as usize)),
        CpuKernels.gaussian_blur(images[1].view(), &blur).unwrap(),
        Array3::from_elem((3, h as usize, w as usize), 0.7),
        tensor(3, h as usize, w as usize, 30),
    ];
    let store = gpu.mask_store(&views(&images), &views(&substrates)).unwrap().expect("the GPU path keeps a store");
    let mut boxes = vec![];
    // (image, substrate, r, q, s): inside, clipped at every edge, empty (s = 0), past the image.
    for (image, substrate, r, q, s) in [
        (0, 0, 10, 10, 5),
        (0, 0, 0, 0, 9),
        (1, 1, 36, 52, 8),
        (1, 2, 20, 30, 0),
        (2, 3, 18, 26, 100),
        (2, 0, 40, 60, 3),
        (1, 1, 5, 50, 7),
    ] {
        for keep in [Keep::Inside, Keep::Outside] {
            boxes.push(StoredBox { image, substrate, mask: candidate_box(r, q, s, h, w, keep) });
        }
    }
    let before = gpu.context().counters();
    let got = store.apply(&boxes).unwrap();
    let used = gpu.context().counters() - before;
    assert_eq!((used.submits, used.readbacks), (1, 1), "one submission and one readback for all {} boxes", boxes.len());
    assert_eq!(got.dim(), (boxes.len(), 3, h as usize, w as usize));
    for (k, b) in boxes.iter().enumerate() {
        let want = CpuKernels
            .apply_masks(images[b.image].view(), substrates[b.substrate].view(), Masks::Boxes(&[b.mask]))
            .unwrap();
        // m is 0 or 1: image·m + substrate·(1 − m) is exact on both paths.
        assert_eq!(got.slice(ndarray::s![k..k + 1, .., .., ..]), want, "box {k}: {b:?}");
    }
    // A box naming an image or substrate the store does not hold is an error, not a read past the buffer.
    let bad = StoredBox { image: 3, substrate: 0, mask: boxes[0].mask };
    assert!(store.apply(&[bad]).unwrap_err().to_string().contains("image 3 and substrate 0 of a store with 3 and 4"));
    let bad = StoredBox { image: 0, substrate: 4, mask: boxes[0].mask };
    assert!(store.apply(&[bad]).is_err());
}

/// A model-sized step of 64 boxes over 8 loops: still one submission and one
/// readback, however many dispatches the output binding limit asks for.
#[test]
fn a_large_stored_step_is_one_submission_and_matches_cpu() {
    if gpu_or_skip("a_large_stored_step_is_one_submission_and_matches_cpu").is_none() {
        return;
    }
    let gpu = GpuKernels::new(Arc::new(GpuContext::new().unwrap()));
    let images: Vec<Array3<f32>> = (0..8).map(|k| tensor(3, 224, 224, 40 + k)).collect();
    let substrates: Vec<Array3<f32>> = (0..16).map(|k| tensor(3, 224, 224, 60 + k)).collect();
    let store = gpu.mask_store(&views(&images), &views(&substrates)).unwrap().expect("8 loops fit");
    let boxes: Vec<StoredBox> = (0..64u32)
        .map(|i| {
            let keep = if i % 2 == 0 { Keep::Inside } else { Keep::Outside };
            StoredBox {
                image: (i / 8) as usize,
                substrate: (i % 16) as usize,
                mask: candidate_box(3 * i, 200 - 3 * i, 10 + i, 224, 224, keep),
            }
        })
        .collect();
    let before = gpu.context().counters();
    let got = store.apply(&boxes).unwrap();
    let used = gpu.context().counters() - before;
    assert_eq!((used.submits, used.readbacks), (1, 1));
    for (k, b) in boxes.iter().enumerate() {
        let want = CpuKernels
            .apply_masks(images[b.image].view(), substrates[b.substrate].view(), Masks::Boxes(&[b.mask]))
            .unwrap();
        assert_eq!(got.slice(ndarray::s![k..k + 1, .., .., ..]), want, "box {k}");
    }
}

#[test]
fn mismatched_mask_shape_is_an_error_on_both_paths() {
    let image = tensor(3, 8, 8, 6);
    let masks = Array3::<f32>::ones((2, 8, 9));
    let zero = Array3::zeros(image.raw_dim());
    let err = CpuKernels.apply_masks(image.view(), zero.view(), Masks::Dense(masks.view())).unwrap_err();
    assert!(err.to_string().contains("masks are 8×9 but the image is 8×8"), "{err}");
    if let Some((_, gpu)) = both("mismatched_mask_shape_is_an_error_on_both_paths") {
        assert!(gpu.apply_masks(image.view(), zero.view(), Masks::Dense(masks.view())).is_err());
    }
}

/// Without an adapter a GPU test fails (so `cargo test` cannot pass with the GPU
/// path untested), unless BOREX_ALLOW_NO_GPU=1 turns it into a loud skip. Runs
/// this binary's `dense_masks_match_cpu` with the Vulkan loader pointed nowhere.
#[test]
fn a_missing_adapter_fails_gpu_tests_unless_allowed() {
    let run = |allow: bool| {
        let mut c = std::process::Command::new(std::env::current_exe().unwrap());
        c.args(["--exact", "dense_masks_match_cpu", "--nocapture", "--test-threads", "1"])
            .env("VK_ICD_FILENAMES", "/nonexistent/icd.json")
            .env("VK_DRIVER_FILES", "/nonexistent/icd.json")
            .env_remove("BOREX_ALLOW_NO_GPU");
        if allow {
            c.env("BOREX_ALLOW_NO_GPU", "1");
        }
        let o = c.output().unwrap();
        (o.status.success(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
    };
    let (ok, out) = run(false);
    assert!(!ok && out.contains("no GPU adapter") && out.contains("BOREX_ALLOW_NO_GPU=1"), "{out}");
    let (ok, out) = run(true);
    assert!(ok && out.contains("SKIPPED dense_masks_match_cpu"), "{out}");
}

mod gp {
    use super::*;
    use borex::compute::GpKernels;
    use borex::gp::{CandidateGrid, FitOptions, Gp};
    use ndarray::Array2;

    /// A GP fitted to `n` BOREx-like observations on the 224×224 reference grid.
    fn fitted(n: usize, seed: u32) -> (CandidateGrid, Vec<f32>, Gp) {
        let grid = CandidateGrid::reference(224, 224);
        let noise = tensor(1, n, 4, seed);
        let x = Array2::from_shape_fn((n, 3), |(i, j)| match j {
            0 => 112.0 + 50.0 * noise[[0, i, 0]] as f64,
            1 => 112.0 + 50.0 * noise[[0, i, 1]] as f64,
            _ => [30.0, 45.0, 60.0, 75.0][i % 4] + 0.3 * noise[[0, i, 2]] as f64,
        });
        let y: Vec<f64> = (0..n).map(|i| (noise[[0, i, 3]] as f64 / 2.0).tanh()).collect();
        let gp = Gp::fit(x.view(), &y, &FitOptions::default()).unwrap();
        let prior = tensor(1, 224, 224, seed + 1).iter().map(|v| v * 0.05).collect();
        (grid, prior, gp)
    }

    #[test]
    fn posterior_ucb_argmax_and_map_match_cpu() {
        let Some((cpu, gpu)) = both("posterior_ucb_argmax_and_map_match_cpu") else { return };
        for n in [1, 10, 50] {
            let (grid, prior, gp) = fitted(n, 10 + n as u32);
            let inputs = gp.posterior_inputs();
            let mut a = cpu.session(&grid, &prior).unwrap();
            let mut b = gpu.session(&grid, &prior).unwrap();
            a.set_gp(&inputs).unwrap();
            b.set_gp(&inputs).unwrap();
            let (mu_a, sd_a) = a.posterior().unwrap();
            let (mu_b, sd_b) = b.posterior().unwrap();
            assert_eq!(mu_a.len(), 200_704);
            let (dm, ds) = (max_abs_diff(&mu_a, &mu_b), max_abs_diff(&sd_a, &sd_b));
            assert!(dm <= 1e-4 && ds <= 1e-3, "n={n}: mean diff {dm}, std diff {ds}");
            let (ia, va) = a.ucb_argmax(10.0).unwrap();
            let (ib, vb) = b.ucb_argmax(10.0).unwrap();
            // Same winner, or a near-tie the two paths' rounding may order differently.
            let ucb_b = |i: usize| mu_b[i] + 10.0 * sd_b[i];
            assert!(ia == ib || (ucb_b(ia) - vb).abs() <= 1e-3, "n={n}: argmax {ia} ({va}) vs {ib} ({vb})");
            assert!((va - vb).abs() <= 1e-3, "n={n}: UCB max {va} vs {vb}");
            let (ma, mb) = (a.mean_map().unwrap(), b.mean_map().unwrap());
            assert_eq!(ma.len(), 224 * 224);
            let d = max_abs_diff(&ma, &mb);
            assert!(d <= 1e-3, "n={n}: map diff {d}");
        }
    }

    /// Brute force: per size the mean of `m` over rows and columns [p−s, p+s]
    /// inside the image (the reference's AvgPool2d(2s+1, stride 1, padding s,
    /// count_include_pad=False)), then the mean over sizes, in f64.
    fn brute_window(m: &[f32], h: usize, w: usize, sizes: &[u32], r: usize, q: usize) -> f64 {
        let per_size = sizes.iter().enumerate().map(|(k, &s)| {
            let s = s as usize;
            let (r0, r1, q0, q1) = (r.saturating_sub(s), (r + s + 1).min(h), q.saturating_sub(s), (q + s + 1).min(w));
            let sum: f64 =
                (r0..r1).flat_map(|y| (q0..q1).map(move |x| (y, x))).map(|(y, x)| m[(k * h + y) * w + x] as f64).sum();
            sum / ((r1 - r0) * (q1 - q0)) as f64
        });
        per_size.sum::<f64>() / sizes.len() as f64
    }

    /// Rows/columns where the window meets an edge or a size boundary, plus the middle.
    fn probe_lines(n: usize, sizes: &[u32]) -> Vec<usize> {
        let mut v: Vec<usize> = vec![0, 1, n / 2, n - 2, n - 1];
        for &s in sizes {
            let s = s as usize;
            v.extend([s - 1, s, s + 1, n - s - 2, n - s - 1, n - s]);
        }
        v.sort();
        v.dedup();
        v
    }

    /// The window-averaging kernels on the reference grid (224×224, sizes 30..75)
    /// against a brute-force average of a rough field: μ = a random prior (one
    /// far-away observation adds nothing), so a window one pixel off shows.
    #[test]
    fn window_average_matches_brute_force_on_the_reference_grid() {
        let grid = CandidateGrid::reference(224, 224);
        let prior: Vec<f32> = tensor(1, 224, 224, 91).iter().copied().collect();
        let far = Array2::from_shape_vec((1, 3), vec![1e6, 1e6, 30.0]).unwrap();
        let gp = Gp::with_length_scales(far.view(), &[0.5], &[12.0, 12.0, 10.0], 0.01).unwrap();
        let mu: Vec<f32> = (0..grid.sizes.len()).flat_map(|_| prior.iter().copied()).collect();
        let lines = probe_lines(224, &grid.sizes);
        let check = |name: &str, map: &[f32]| {
            for &r in &lines {
                for &q in &lines {
                    let want = brute_window(&mu, 224, 224, &grid.sizes, r, q);
                    let got = map[r * 224 + q] as f64;
                    assert!((got - want).abs() < 2e-6, "{name} ({r}, {q}): {got} vs brute force {want}");
                }
            }
        };
        check("window_average", &borex::compute::cpu::window_average(&grid, &mu));
        let mut cpu = CpuKernels.session(&grid, &prior).unwrap();
        cpu.set_gp(&gp.posterior_inputs()).unwrap();
        check("cpu mean_map", &cpu.mean_map().unwrap());
        let Some((_, gpu)) = both("window_average_matches_brute_force_on_the_reference_grid") else { return };
        let mut g = gpu.session(&grid, &prior).unwrap();
        g.set_gp(&gp.posterior_inputs()).unwrap();
        check("gpu mean_map", &g.mean_map().unwrap());
    }

    #[test]
    fn argmax_ties_go_to_the_first_index_on_both_paths() {
        let Some((cpu, gpu)) = both("argmax_ties_go_to_the_first_index_on_both_paths") else { return };
        // A constant prior and one far-away observation: the UCB is flat, the first candidate wins.
        let grid = CandidateGrid::new(40, 50, vec![3, 6]);
        let prior = vec![0.25f32; 2000];
        let x = Array2::from_shape_vec((1, 3), vec![5000.0, 5000.0, 3.0]).unwrap();
        let gp = Gp::with_length_scales(x.view(), &[0.7], &[1.0, 1.0, 1.0], 0.01).unwrap();
        for k in [&cpu as &dyn GpKernels, &gpu] {
            let mut s = k.session(&grid, &prior).unwrap();
            s.set_gp(&gp.posterior_inputs()).unwrap();
            let (i, v) = s.ucb_argmax(2.0).unwrap();
            assert_eq!(i, 0);
            assert!((v - 2.25).abs() < 1e-6);
        }
    }
}

mod full_res {
    use super::*;
    use borex::compute::{GpKernels, MapGrid};
    use borex::gp::{CandidateGrid, FitOptions, Gp};
    use ndarray::Array2;

    fn gp_and_prior() -> (Gp, Vec<f32>) {
        let noise = tensor(1, 12, 4, 77);
        let x = Array2::from_shape_fn((12, 3), |(i, j)| match j {
            2 => [30.0, 45.0, 60.0, 75.0][i % 4],
            _ => 112.0 + 60.0 * noise[[0, i, j]] as f64,
        });
        let y: Vec<f64> = (0..12).map(|i| noise[[0, i, 3]] as f64 / 3.0).collect();
        let gp = Gp::fit(x.view(), &y, &FitOptions::default()).unwrap();
        (gp, tensor(1, 224, 224, 78).iter().map(|v| v * 0.05).collect())
    }

    /// On the model grid itself (identity coordinates) the full-resolution path
    /// must reproduce the session's normalised map; on a larger grid GPU and CPU agree.
    #[test]
    fn map_on_grid_matches_session_map_and_cpu() {
        let (gp, prior) = gp_and_prior();
        let grid = CandidateGrid::reference(224, 224);
        let identity = MapGrid {
            prior: &prior,
            prior_hw: (224, 224),
            rows: (0..224).map(|v| v as f32).collect(),
            cols: (0..224).map(|v| v as f32).collect(),
            sizes: vec![30.0, 45.0, 60.0, 75.0],
            windows: vec![30, 45, 60, 75],
        };
        let mut session = CpuKernels.session(&grid, &prior).unwrap();
        session.set_gp(&gp.posterior_inputs()).unwrap();
        let want = session.mean_map().unwrap();
        let got = CpuKernels.map_on_grid(&identity, &gp.posterior_inputs()).unwrap();
        assert!(max_abs_diff(&want, &got) < 1e-5);

        let Some((_, gpu)) = both("map_on_grid_matches_session_map_and_cpu") else { return };
        let big = MapGrid {
            rows: (0..300).map(|v| v as f32 * 0.8 - 8.0).collect(),
            cols: (0..400).map(|v| v as f32 * 0.6 - 4.0).collect(),
            windows: vec![38, 56, 75, 94],
            ..identity
        };
        let a = CpuKernels.map_on_grid(&big, &gp.posterior_inputs()).unwrap();
        let b = gpu.map_on_grid(&big, &gp.posterior_inputs()).unwrap();
        assert_eq!(a.len(), 300 * 400);
        let d = max_abs_diff(&a, &b);
        assert!(d <= 1e-4, "full-res map diff {d}");
    }
}

mod rise {
    use super::*;
    use borex::compute::RiseParams;

    /// GPU-generated RISE masks equal the CPU twin's for the same seed, and the
    /// GPU accumulation equals the CPU's.
    #[test]
    fn masks_and_sums_match_cpu() {
        let Some((cpu, gpu)) = both("rise::masks_and_sums_match_cpu") else { return };
        let image = tensor(3, 50, 70, 9);
        for params in [
            RiseParams::fast(0),
            RiseParams::standard(0xDEAD_BEEF_0000_0042),
            RiseParams { n: 20, s: 5, p: 0.25, seed: 7 },
        ] {
            let mut a = cpu.rise_session(image.view(), &params, 2).unwrap();
            let mut b = gpu.rise_session(image.view(), &params, 2).unwrap();
            for (start, count) in [(0usize, 6usize), (6, 6), (12, 3)] {
                let (ma, mb) = (a.masked(start, count).unwrap(), b.masked(start, count).unwrap());
                let (ka, kb) = (a.last_masks().unwrap(), b.last_masks().unwrap());
                assert_eq!(ka.dim(), (count, 50, 70));
                let dk = max_abs_diff(ka.as_slice().unwrap(), kb.as_slice().unwrap());
                assert!(dk <= 1e-6, "{params:?} masks {start}..: {dk}");
                assert!(max_abs_diff(ma.as_slice().unwrap(), mb.as_slice().unwrap()) <= 1e-5);
                let w: Vec<f32> = (0..count * 2).map(|i| (i as f32 * 0.37).sin().abs()).collect();
                a.accumulate(&w).unwrap();
                b.accumulate(&w).unwrap();
            }
            let ((sa, ta), (sb, tb)) = (a.finish().unwrap(), b.finish().unwrap());
            assert!(max_abs_diff(ta.as_slice().unwrap(), tb.as_slice().unwrap()) <= 1e-4);
            for (x, y) in sa.iter().zip(&sb) {
                assert!(max_abs_diff(x.as_slice().unwrap(), y.as_slice().unwrap()) <= 1e-4);
            }
        }
    }
}
