//! Model sizes from the command line or a checkpoint: arbitrary channels, size, stages and latent
//! through `Arch::check` (via `conv_ae`). What passes must have bounded parameters and
//! activations, and its layers and parameter table must build without wrapping or panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 12 {
        return;
    }
    let word = |i: usize| u32::from_le_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
    let (channels, size, latent) = (word(0), word(4), word(8));
    let stages: Vec<u32> = data[12..]
        .chunks(4)
        .take(64)
        .map(|c| {
            let mut b = [0u8; 4];
            b[..c.len()].copy_from_slice(c);
            u32::from_le_bytes(b)
        })
        .collect();
    if let Ok(a) = lamp::model::Arch::conv_ae(channels, size, stages, latent) {
        let table = a.param_table();
        assert!(table.len() as u64 <= lamp::model::arch::MAX_PARAMS);
        let layers = a.layers();
        let acts: u64 = layers.iter().map(|l| l.out_len() as u64).sum();
        assert!(acts <= lamp::model::arch::MAX_ACTS_PER_SAMPLE);
        assert_eq!(a.input_len() as u64, channels as u64 * size as u64 * size as u64);
    }
});
