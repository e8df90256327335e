//! The lockstep driver against the single loop: F loops advanced together
//! (one model batch of 2F boxes per step, GP stages in parallel on the CPU
//! twin, in one device batch on the GPU path) must give each loop exactly what
//! `refine` gives it alone with the same seed: the same queries, the same
//! probabilities, the same map, bit for bit. The oracle is `refine` (F = 1),
//! itself checked against scikit-learn in tests/borex_reference.rs.

mod common;

use borex::compute::cpu::CpuKernels;
use borex::compute::gpu::{GpuContext, GpuKernels};
use borex::compute::{GpKernels, ImageKernels};
use borex::model::{Classifier, ModelOptions, Scorer};
use borex::refine::lockstep::{refine_lockstep, GpSchedule, LoopSpec};
use borex::refine::{refine, Objective, RefineConfig, Refined};
use common::{asset, fixture, gpu_or_skip};
use ndarray::{Array2, Array3};

/// Four different inputs for a tiny model (tests/fixtures/region_hinders_0.onnx:
/// class 0 falls as the region rows 8..16 × columns 20..28 brightens) at
/// 40×40: a smooth pattern and a prior rolled by a few pixels, each loop with
/// its own seed and length.
/// One loop's image, prior and settings.
type LoopInput = (Array3<f32>, Array2<f32>, RefineConfig);

fn tiny_inputs() -> (Classifier, Vec<LoopInput>) {
    let mut opts = ModelOptions::new(fixture("region_hinders_0.onnx"));
    opts.input_size = Some((40, 40));
    let model = Classifier::load(&opts).unwrap();
    let inputs = (0..4)
        .map(|k| {
            let x = Array3::from_shape_fn((3, 40, 40), |(c, y, x)| {
                (((y + 3 * k) % 40) as f32 * 0.31 + c as f32).sin() + (((x + 5 * k) % 40) as f32 * 0.17).cos()
            });
            let p = Array2::from_shape_fn((40, 40), |(y, x)| {
                let (yy, xx) = (((y + 3 * k) % 40) as f32, ((x + 5 * k) % 40) as f32);
                (-((yy - 12.0).powi(2) + (xx - 24.0).powi(2)) / 60.0).exp() + 0.1 * (xx * 0.3).sin()
            });
            let cfg = RefineConfig {
                iters: 6 + k, // loops of different lengths leave the group at different steps
                sizes: Some(vec![6, 4]),
                seed: 11 + k as u64,
                // One, two and shared-substrate inputs per query: the batch
                // gathers parts of different lengths.
                objective: [Objective::Paper, Objective::Insertion, Objective::Matched, Objective::Paper][k],
                ..RefineConfig::default()
            };
            (x, p, cfg)
        })
        .collect();
    (model, inputs)
}

fn same(name: &str, a: &Refined, b: &Refined) {
    assert_eq!(a.observations.len(), b.observations.len(), "{name}");
    for (t, (x, y)) in a.observations.iter().zip(&b.observations).enumerate() {
        assert_eq!((x.row, x.col, x.size, x.stored), (y.row, y.col, y.size, y.stored), "{name}: query {t}");
        assert_eq!(
            (x.p_inside.to_bits(), x.p_outside.to_bits(), x.f.to_bits()),
            (y.p_inside.to_bits(), y.p_outside.to_bits(), y.f.to_bits()),
            "{name}: query {t}"
        );
        assert_eq!(x.length_scales, y.length_scales, "{name}: query {t}");
    }
    assert_eq!(a.scaled_prior, b.scaled_prior, "{name}");
    assert_eq!(a.posterior_updates, b.posterior_updates, "{name}: appends and full recomputes");
    assert!(a.map.iter().zip(&b.map).all(|(x, y)| x.to_bits() == y.to_bits()), "{name}: maps differ");
}

/// Returns the device readbacks of the single loops and of the lockstep run
/// when `ctx` is the GPU context both ran on.
#[allow(clippy::too_many_arguments)]
fn check(
    name: &str,
    model: &Classifier,
    inputs: &[(Array3<f32>, Array2<f32>, RefineConfig)],
    class: usize,
    image_kernels: &dyn ImageKernels,
    gp_kernels: &dyn GpKernels,
    schedule: GpSchedule,
    ctx: Option<&GpuContext>,
) -> (u64, u64) {
    let hidden = borex::progress::NoProgress;
    let readbacks = || ctx.map_or(0, |c| c.counters().readbacks);
    let before = readbacks();
    let alone: Vec<Refined> = inputs
        .iter()
        .map(|(x, p, cfg)| {
            refine(&Scorer::new(model, image_kernels, 2), gp_kernels, x.view(), class, p.view(), cfg, &hidden).unwrap()
        })
        .collect();
    let between = readbacks();
    let specs: Vec<LoopSpec> =
        inputs.iter().map(|(x, p, cfg)| LoopSpec { image: x.view(), class, prior: p.view(), config: cfg }).collect();
    let scorer = Scorer::new(model, image_kernels, 2 * specs.len());
    let together = refine_lockstep(&scorer, gp_kernels, &specs, schedule, &hidden).unwrap();
    let after = readbacks();
    // Two images per query, or one box and a constant scored once per loop.
    let one_sided = |c: &RefineConfig| matches!(c.objective, Objective::Insertion | Objective::Deletion);
    let evaluations: usize = inputs.iter().map(|(_, _, c)| if one_sided(c) { c.iters + 1 } else { 2 * c.iters }).sum();
    assert_eq!(scorer.evaluations(), evaluations as u64, "{name}: evaluations per query");
    for (k, (a, b)) in alone.iter().zip(&together).enumerate() {
        same(&format!("{name} loop {k}"), a, b.as_ref().unwrap());
    }
    // The four inputs really differ: the test would not pass with one loop's result copied.
    assert_ne!(
        (alone[0].observations[0].row, alone[0].observations[0].col),
        (alone[1].observations[0].row, alone[1].observations[0].col)
    );
    (between - before, after - between)
}

#[test]
fn four_loops_in_lockstep_equal_four_single_loops_cpu() {
    let (model, inputs) = tiny_inputs();
    check("cpu", &model, &inputs, 0, &CpuKernels, &CpuKernels, GpSchedule::Parallel, None);
}

#[test]
fn four_loops_in_lockstep_equal_four_single_loops_gpu() {
    if gpu_or_skip("four_loops_in_lockstep_equal_four_single_loops_gpu").is_none() {
        return;
    }
    // A context of its own, so that its readbacks are this test's.
    let ctx = std::sync::Arc::new(GpuContext::new().unwrap());
    let (model, inputs) = tiny_inputs();
    let gpu = GpuKernels::new(ctx.clone());
    let (alone, together) = check("gpu", &model, &inputs, 0, &gpu, &gpu, GpSchedule::Sequential, Some(&ctx));
    // The GP stages read back once per step for all four loops (argmaxes and
    // the maps of the loops that end), not once per loop and query; so does
    // the masking of every loop's boxes, where a loop alone reads back once
    // per substrate (two for the matched objective). Alone Σ iters·(1 +
    // substrates) readbacks, together 2·max iters.
    let iters: Vec<usize> = inputs.iter().map(|i| i.2.iters).collect();
    let substrates = |o: Objective| if o == Objective::Matched { 2 } else { 1 };
    let alone_reads: usize = inputs.iter().map(|(_, _, c)| c.iters * (1 + substrates(c.objective))).sum();
    let saved = alone_reads - 2 * iters.iter().max().unwrap();
    assert_eq!(alone - together, saved as u64, "readbacks alone {alone}, in lockstep {together}");
}

/// The bundled EfficientNet-Lite0: a row's probabilities must not depend on
/// the batch it is in, or lockstep would change the trajectory.
#[test]
fn lockstep_on_the_real_model_equals_single_loops() {
    let model = Classifier::load(&ModelOptions::new(asset(borex::paths::default_model()))).unwrap();
    let pre = model.preprocess().clone();
    let names = ["chelsea.png", "coffee.png", "rocket.jpg", "astronaut.png"];
    let inputs: Vec<_> = names
        .iter()
        .enumerate()
        .map(|(k, n)| {
            let (p, _) = borex::image::load_input(&asset(borex::paths::sample_image(n)), &pre).unwrap();
            let (_, h, w) = p.tensor.dim();
            // A smooth prior with its peak in a different place per image.
            let prior = Array2::from_shape_fn((h, w), |(y, x)| {
                (-(((y as f32 - 40.0 * k as f32 - 50.0).powi(2) + (x as f32 - 100.0).powi(2)) / 2000.0)).exp()
            });
            (p.tensor, prior, RefineConfig { iters: 3, seed: k as u64, ..RefineConfig::default() })
        })
        .collect();
    check("real model", &model, &inputs, 281, &CpuKernels, &CpuKernels, GpSchedule::Parallel, None);
}
