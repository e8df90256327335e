//! Lockstep throughput on the CPU path: N frames (the sample cat panned by a
//! few pixels per frame) refined with the paper preset (50 queries, a fixed
//! smooth prior so the loop is what is timed), F loops at a time, against the
//! model-only bound: the same forward passes (N/F · 50 batches of 2F
//! pre-masked inputs) with nothing else. One run, ratios within it.
//! `BOREX_BENCH_FRAMES` (default 16), `BOREX_BENCH_F` (default "1,8"),
//! `BOREX_BENCH_ITERS` (default 50). Under `cargo test` it runs 2 frames of
//! 2 queries at F = 1, 2 as a smoke test.

use borex::compute::cpu::CpuKernels;
use borex::compute::{ImageKernels, Keep, Masks};
use borex::model::{Classifier, ModelOptions, Scorer};
use borex::refine::lockstep::{refine_lockstep, GpSchedule, LoopSpec};
use borex::refine::{candidate_box, RefineConfig};
use ndarray::{concatenate, Array2, Array3, Axis};
use std::time::Instant;

fn env<T: std::str::FromStr>(k: &str, d: T) -> T {
    std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d)
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let n: usize = env("BOREX_BENCH_FRAMES", if benching { 16 } else { 2 });
    let iters: usize = env("BOREX_BENCH_ITERS", if benching { 50 } else { 2 });
    let fs: Vec<usize> = std::env::var("BOREX_BENCH_F")
        .unwrap_or(if benching { "1,8" } else { "1,2" }.into())
        .split(',')
        .filter_map(|x| x.trim().parse().ok())
        .collect();
    let model = Classifier::load(&ModelOptions::new(borex::paths::default_model())).expect("run scripts/setup.sh");
    let rgb = borex::image::load_rgb(&borex::paths::sample_image("chelsea.png")).unwrap();
    // Frames: the image panned 4 px per frame (wrapping), preprocessed.
    let frames: Vec<Array3<f32>> = (0..n)
        .map(|k| {
            let (w, h) = rgb.dimensions();
            let shifted = image::RgbImage::from_fn(w, h, |x, y| *rgb.get_pixel((x + 4 * k as u32) % w, y));
            model.preprocess().apply(&shifted).tensor
        })
        .collect();
    let (_, h, w) = frames[0].dim();
    let prior = Array2::from_shape_fn((h, w), |(y, x)| {
        (-(((y as f32 - 90.0).powi(2) + (x as f32 - 130.0).powi(2)) / 3000.0)).exp()
    });
    let cfg = RefineConfig { iters, ..RefineConfig::default() };
    let kernels = CpuKernels;
    let class = 285;
    println!(
        "lockstep bench: {n} frames, {iters} queries each, {h}×{w}, CPU path, {} threads",
        rayon::current_num_threads()
    );
    println!("| F | frames/s | model-only frames/s | ratio (time / model-only time) |");
    println!("|---|---|---|---|");
    for &f in &fs {
        let scorer = Scorer::new(&model, &kernels, 2 * f);
        let hidden = borex::progress::NoProgress;
        let t = Instant::now();
        for group in frames.chunks(f) {
            let specs: Vec<LoopSpec> =
                group.iter().map(|x| LoopSpec { image: x.view(), class, prior: prior.view(), config: &cfg }).collect();
            for r in refine_lockstep(&scorer, &kernels, &specs, GpSchedule::Parallel, &hidden).unwrap() {
                r.unwrap();
            }
        }
        let loop_s = t.elapsed().as_secs_f64();

        // The model-only bound: the same batch shapes, inputs masked beforehand.
        let zero = Array3::<f32>::zeros(frames[0].raw_dim());
        let batches: Vec<_> = frames
            .chunks(f)
            .map(|group| {
                let parts: Vec<_> = group
                    .iter()
                    .enumerate()
                    .map(|(k, x)| {
                        let (r, q) = (40 + 10 * k as u32, 60 + 7 * k as u32);
                        let boxes = [
                            candidate_box(r, q, 30, h as u32, w as u32, Keep::Inside),
                            candidate_box(r, q, 30, h as u32, w as u32, Keep::Outside),
                        ];
                        kernels.apply_masks(x.view(), zero.view(), Masks::Boxes(&boxes)).unwrap()
                    })
                    .collect();
                concatenate(Axis(0), &parts.iter().map(|p| p.view()).collect::<Vec<_>>()).unwrap()
            })
            .collect();
        let t = Instant::now();
        for b in &batches {
            for _ in 0..iters {
                std::hint::black_box(model.probabilities(b.view(), 2 * f).unwrap());
            }
        }
        let model_s = t.elapsed().as_secs_f64();
        println!("| {f} | {:.3} | {:.3} | {:.2} |", n as f64 / loop_s, n as f64 / model_s, loop_s / model_s);
    }
}
