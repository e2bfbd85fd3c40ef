//! The MVTec AD tree loader on trees built from the input: the bytes choose which files exist
//! (images and masks of a defect type, masks without images) and what they contain.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let root = std::env::temp_dir().join(format!("lamp-fuzz-mvtec-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let dirs = ["test/good", "test/crack", "ground_truth/crack"];
    for d in dirs {
        let _ = std::fs::create_dir_all(root.join(d));
    }
    // Each record: 1 byte (directory and name), 1 byte length, then that many content bytes.
    let mut i = 0;
    while i + 2 <= data.len() {
        let (sel, len) = (data[i], data[i + 1] as usize);
        let body = &data[i + 2..(i + 2 + len).min(data.len())];
        i += 2 + len;
        let name = format!("{:03}", sel % 4);
        let path = match sel / 4 % 3 {
            0 => root.join("test/good").join(format!("{name}.png")),
            1 => root.join("test/crack").join(format!("{name}.png")),
            _ => root.join("ground_truth/crack").join(format!("{name}_mask.png")),
        };
        let _ = std::fs::write(path, body);
    }
    let _ = lamp::data::mvtec_test(&root, 1, 16);
});
