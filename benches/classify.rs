//! Classify throughput of the bundled model (images/s) at batch 1 and 32,
//! CPU execution provider.

use borex::model::{Classifier, ModelOptions};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ndarray::Array4;

fn bench(c: &mut Criterion) {
    let path = borex::paths::default_model();
    if !path.exists() {
        eprintln!("{} missing: run scripts/setup.sh first", path.display());
        return;
    }
    let model = Classifier::load(&ModelOptions::new(path)).expect("bundled model loads");
    let mut g = c.benchmark_group("classify_224");
    g.sample_size(10);
    for batch in [1usize, 32] {
        let x =
            Array4::from_shape_fn((batch, 3, 224, 224), |(n, ch, y, x)| ((n + ch * 5 + y + x) % 13) as f32 / 6.5 - 1.0);
        g.throughput(Throughput::Elements(batch as u64));
        g.bench_function(format!("batch{batch}"), |b| b.iter(|| model.probabilities(x.view(), batch).unwrap()));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
