//! Criterion benchmark of one fmnist-ae training step (gather, forward, loss, backward, Adam in
//! one submit), batch 64, waiting for the device after each step. Validates the step against
//! the CPU reference before timing. Smoke mode for CI: `cargo bench --bench train_step -- --test`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use lamp::device::Device;
use lamp::engine::Engine;
use lamp::model::{Amp, Arch, Granularity, LossConfig, Metric};
use lamp::rng::SplitMix64;

fn train_step(c: &mut Criterion) {
    let g = Device::shared(None).expect("a wgpu adapter");
    let arch = Arch::fmnist_ae();
    let batch = 64;
    let n = 512;
    let mut rng = SplitMix64::new(1);
    let data: Vec<f32> = (0..n * arch.input_len())
        .map(|_| rng.next_f64() as f32)
        .collect();
    let mut group = c.benchmark_group("train_step");
    group
        .sample_size(10)
        .throughput(Throughput::Elements(batch as u64));
    for metric in [Metric::Mse, Metric::Ssim] {
        let cfg = LossConfig {
            metric,
            amp: Amp::Lamp,
            granularity: Granularity::Element,
        };
        let params = arch.init(0);
        let mut e = Engine::new(g.clone(), arch.clone(), cfg, batch, &params).expect("engine");
        // Validate before timing: the first step's loss against the CPU reference.
        e.upload_batch(&data[..batch * arch.input_len()], batch)
            .expect("upload");
        e.grad_step(batch, false).expect("step");
        let got = e.wait_stats().expect("stats").loss as f64;
        let x: Vec<f64> = data[..batch * arch.input_len()]
            .iter()
            .map(|&v| v as f64)
            .collect();
        let p: Vec<f64> = params.iter().map(|&v| v as f64).collect();
        let want = lamp::model::reference::model_grad(&arch, cfg, &p, &x, batch)
            .0
            .loss;
        assert!(
            ((got - want) / want).abs() < 1e-4,
            "step loss {got} vs reference {want}"
        );
        e.upload_dataset(&data, n).expect("dataset");
        e.set_order(&(0..n as u32).collect::<Vec<_>>())
            .expect("order");
        let mut off = 0;
        group.bench_function(format!("fmnist-ae/{metric:?}/batch{batch}"), |b| {
            b.iter(|| {
                e.train_step(off, batch).expect("step");
                e.device.wait().expect("wait");
                off = (off + batch) % n;
            })
        });
    }
    group.finish();
}

criterion_group!(benches, train_step);
criterion_main!(benches);
