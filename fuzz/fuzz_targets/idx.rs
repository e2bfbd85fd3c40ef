//! The IDX reader (gzipped or raw) on arbitrary bytes: errors, never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("lamp-fuzz-idx-{}", std::process::id()));
    if std::fs::write(&path, data).is_ok() {
        let _ = lamp::data::read_idx(&path);
    }
});
