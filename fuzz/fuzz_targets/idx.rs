//! The IDX reader (gzipped or raw) on arbitrary bytes: errors, never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = lamp::data::idx::parse_idx(data, std::path::Path::new("fuzz.idx"));
});
