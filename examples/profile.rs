//! Times each dispatch of one fmnist-ae training step (batch 64) on this device:
//! `cargo run --release --example profile`.

use lamp::device::Device;
use lamp::engine::Engine;
use lamp::model::{Arch, LossConfig};

fn main() -> lamp::Result<()> {
    let arch = Arch::fmnist_ae();
    let mut e = Engine::new(
        Device::shared(None)?,
        arch.clone(),
        LossConfig::lamp(),
        64,
        &arch.init(0),
    )?;
    let data: Vec<f32> = (0..64 * 784).map(|i| (i % 255) as f32 / 255.0).collect();
    e.upload_dataset(&data, 64)?;
    e.set_order(&(0..64).collect::<Vec<u32>>())?;
    let mut total = 0.0;
    for (label, t, _) in e.profile_step(64, 5)? {
        println!("{label:20} {:8.2} ms", t * 1e3);
        total += t;
    }
    println!("total {:.1} ms", total * 1e3);
    Ok(())
}
