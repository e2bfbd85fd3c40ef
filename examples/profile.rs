//! Times each dispatch of one training step on this device, each submitted alone:
//! `cargo run --release --example profile [CHANNELS SIZE BATCH [ROUNDS]]`. Without arguments,
//! fmnist-ae at batch 64; otherwise the model `lamp train` would choose for such images.
//!
//! Two engines, one with the grouped layouts (the default) and one with `LAMP_LAYOUT=plain`,
//! are timed in turns, ROUNDS times (5), so that a machine whose speed drifts slows both alike;
//! each dispatch's time is its minimum over the rounds (each round a median of 3).

use lamp::device::Device;
use lamp::engine::layout::choose_layout;
use lamp::engine::Engine;
use lamp::model::{Arch, LossConfig};

fn engine(arch: &Arch, batch: usize, layout: &str) -> lamp::Result<Engine> {
    // Read once, when the engine lays out its arenas.
    choose_layout(layout);
    let mut e = Engine::new(
        Device::shared(None)?,
        arch.clone(),
        LossConfig::lamp(),
        batch,
        &arch.init(0),
    )?;
    let len = arch.input_len();
    let data: Vec<f32> = (0..batch * len).map(|i| (i % 255) as f32 / 255.0).collect();
    e.upload_dataset(&data, batch)?;
    e.set_order(&(0..batch as u32).collect::<Vec<u32>>())?;
    Ok(e)
}

fn main() -> lamp::Result<()> {
    let args: Vec<u32> = std::env::args()
        .skip(1)
        .map(|a| {
            a.parse()
                .map_err(|_| lamp::Error::invalid(format!("{a:?} is not a number")))
        })
        .collect::<lamp::Result<_>>()?;
    let (arch, batch, rounds) = match args[..] {
        [] => (Arch::fmnist_ae(), 64, 5),
        [c, s, b] => (Arch::for_images(c, s)?, b, 5),
        [c, s, b, r] => (Arch::for_images(c, s)?, b, r),
        _ => {
            return Err(lamp::Error::invalid(
                "usage: profile [CHANNELS SIZE BATCH [ROUNDS]]",
            ))
        }
    };
    let batch = batch.max(1) as usize;
    println!(
        "{} batch {batch}: minimum over {rounds} rounds, ms",
        arch.describe()
    );
    let mut engines = [
        ("grouped", engine(&arch, batch, "grouped")?),
        ("plain", engine(&arch, batch, "plain")?),
    ];
    // label -> best time per engine
    let mut best: Vec<(String, [f64; 2])> = Vec::new();
    for _ in 0..rounds.max(1) {
        for (k, (_, e)) in engines.iter_mut().enumerate() {
            for (label, t, _) in e.profile_step(batch, 3)? {
                let row = match best.iter().position(|(l, _)| *l == label) {
                    Some(i) => i,
                    None => {
                        best.push((label, [f64::INFINITY; 2]));
                        best.len() - 1
                    }
                };
                best[row].1[k] = best[row].1[k].min(t * 1e3);
            }
        }
    }
    println!(
        "{:36} {:>9} {:>9} {:>7}",
        "dispatch", engines[0].0, engines[1].0, "ratio"
    );
    let mut total = [0.0; 2];
    for (label, [a, b]) in &best {
        let (a, b) = (
            if a.is_finite() { *a } else { 0.0 },
            if b.is_finite() { *b } else { 0.0 },
        );
        total[0] += a;
        total[1] += b;
        println!("{label:36} {a:9.2} {b:9.2} {:7.3}", a / b);
    }
    println!(
        "{:36} {:9.1} {:9.1} {:7.3}",
        "total",
        total[0],
        total[1],
        total[0] / total[1]
    );
    Ok(())
}
