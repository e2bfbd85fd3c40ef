//! Checkpoint parsing (safetensors, metadata, architecture, tensor table) on arbitrary bytes,
//! with and without an architecture hint; what loads must save and load back identically.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let hint = lamp::model::Arch::fmnist_ae();
    for h in [None, Some(&hint)] {
        if let Ok(c) = lamp::detect::Checkpoint::from_bytes(data, h) {
            let bytes = c.to_bytes().expect("a loaded checkpoint serialises");
            let back = lamp::detect::Checkpoint::from_bytes(&bytes, h).expect("and loads again");
            assert_eq!(back.to_bytes().expect("serialises"), bytes);
        }
    }
});
