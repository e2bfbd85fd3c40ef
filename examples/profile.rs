use lamp::engine::Engine;
use lamp::gpu::Gpu;
use lamp::kernels::*;
use lamp::model::Arch;
use std::sync::Arc;
fn main() {
    let g = Arc::new(Gpu::new(None).unwrap());
    let k = Arc::new(Kernels::new(&g).unwrap());
    let arch = Arch::fmnist_ae();
    let cfg = LossConfig {
        metric: Metric::Mse,
        amp: Amp::Lamp,
        granularity: Granularity::Element,
    };
    let mut e = Engine::new(g, k, arch.clone(), cfg, 64, &arch.init(0)).unwrap();
    let data: Vec<f32> = (0..64 * 784).map(|i| (i % 255) as f32 / 255.0).collect();
    e.upload_dataset(&data, 64).unwrap();
    e.set_order(&(0..64).collect::<Vec<u32>>()).unwrap();
    let mut tot = 0.0;
    for (l, t, _) in e.profile_step(64, 5).unwrap() {
        println!("{l:20} {:8.2} ms", t * 1e3);
        tot += t;
    }
    println!("total {:.1} ms", tot * 1e3);
}
