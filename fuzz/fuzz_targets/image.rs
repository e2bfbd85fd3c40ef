//! The image loader (format sniffing, decoding limits, conversion and resizing) on arbitrary
//! bytes, as 1 and 3 channels.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("lamp-fuzz-image-{}.png", std::process::id()));
    if std::fs::write(&path, data).is_ok() {
        let _ = lamp::data::load_image(&path, 1, 28);
        let _ = lamp::data::load_image(&path, 3, 16);
    }
});
