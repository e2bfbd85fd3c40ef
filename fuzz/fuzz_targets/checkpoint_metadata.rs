//! Checkpoint metadata that lies: a valid fmnist-ae checkpoint whose metadata values (arch,
//! calibration, patch, score, loss, version, optimizer step) come from the input as text.
//! Whatever loads must be usable without a panic or an unbounded allocation: its image size,
//! parameter table and layers, its training state.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const KEYS: [&str; 7] = [
    "arch",
    "calibration",
    "patch",
    "score",
    "loss",
    "version",
    "optimizer.step",
];

fn good() -> &'static lamp::detect::Checkpoint {
    static C: OnceLock<lamp::detect::Checkpoint> = OnceLock::new();
    C.get_or_init(|| {
        let arch = lamp::model::Arch::fmnist_ae();
        let params = arch.init(0);
        lamp::detect::Checkpoint::new(arch, Some(lamp::model::LossConfig::lamp()), params)
    })
}

fuzz_target!(|data: &[u8]| {
    // The input: up to 7 values separated by 0xFF, one per key (missing ones stay as they are).
    let mut ck = good().clone();
    for (key, value) in KEYS.iter().zip(data.split(|&b| b == 0xFF)) {
        ck.metadata
            .insert(key.to_string(), String::from_utf8_lossy(value).into_owned());
    }
    let Ok(bytes) = ck.to_bytes() else { return };
    if let Ok(c) = lamp::detect::Checkpoint::from_bytes(&bytes, None) {
        let side = c.image_size();
        assert!(side as u64 <= 4096, "image size {side} passed the checks");
        let table = c.arch.param_table();
        assert!(table.len() as u64 <= lamp::model::arch::MAX_PARAMS);
        let _ = c.arch.layers();
        let _ = c.trained(std::path::Path::new("fuzz.safetensors"));
    }
});
