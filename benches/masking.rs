//! Batched masking of 64 masks on a 224×224 image: CPU twin vs GPU kernel,
//! dense masks and box masks; plus the blur baseline.

use borex::compute::cpu::CpuKernels;
use borex::compute::gpu::{GpuContext, GpuKernels};
use borex::compute::{gaussian_kernel_1d, BoxMask, ImageKernels, Keep, Masks};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ndarray::{Array3, Array4};

fn bench(c: &mut Criterion) {
    let image = Array3::from_shape_fn((3, 224, 224), |(ch, y, x)| ((ch * 7 + y * 3 + x) % 17) as f32 / 8.0 - 1.0);
    let baseline = Array3::<f32>::zeros(image.raw_dim());
    let dense = Array3::from_shape_fn((64, 224, 224), |(k, y, x)| ((k + y / 8 + x / 8) % 2) as f32);
    let boxes: Vec<BoxMask> = (0..64u32)
        .map(|i| BoxMask {
            r0: i,
            r1: i + 90,
            c0: 2 * i,
            c1: 2 * i + 90,
            keep: if i % 2 == 0 { Keep::Inside } else { Keep::Outside },
        })
        .collect();
    let mut backends: Vec<(String, Box<dyn ImageKernels>)> = vec![("cpu".into(), Box::new(CpuKernels))];
    match GpuContext::shared() {
        Ok(ctx) => backends.push((format!("gpu ({})", ctx.adapter_info().name), Box::new(GpuKernels::new(ctx)))),
        Err(e) => eprintln!("no GPU adapter, benchmarking the CPU path only: {e}"),
    }
    let mut g = c.benchmark_group("mask_64x224");
    g.sample_size(10);
    g.throughput(Throughput::Elements(64));
    for (name, k) in &backends {
        g.bench_function(format!("dense/{name}"), |b| {
            b.iter(|| -> Array4<f32> {
                k.apply_masks(image.view(), baseline.view(), Masks::Dense(dense.view())).unwrap()
            })
        });
        g.bench_function(format!("boxes/{name}"), |b| {
            b.iter(|| -> Array4<f32> { k.apply_masks(image.view(), baseline.view(), Masks::Boxes(&boxes)).unwrap() })
        });
    }
    g.finish();
    let mut g = c.benchmark_group("blur_224");
    g.sample_size(10);
    let w = gaussian_kernel_1d(11, 5.0);
    for (name, k) in &backends {
        g.bench_function(name.as_str(), |b| b.iter(|| k.gaussian_blur(image.view(), &w).unwrap()));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
