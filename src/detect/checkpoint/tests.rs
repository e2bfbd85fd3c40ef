//! Checkpoint tests: round trips, bit exactness and the damaged files the loader must refuse.

use super::*;
use crate::data::tensors::read_safetensors;
use crate::detect::edges::EdgeProfile;

#[test]
fn load_save_is_bit_exact_and_keeps_optimizer_state() {
    let arch = Arch::fmnist_ae();
    let params = arch.init(3);
    let n = params.len();
    let mut c = Checkpoint::new(arch.clone(), None, params);
    c.optimizer = Some(OptimizerState {
        t: 17,
        exp_avg: (0..n).map(|i| i as f32 * 1e-3).collect(),
        exp_avg_sq: (0..n).map(|i| i as f32 * 1e-6).collect(),
    });
    c.metadata.insert("train".into(), "{\"epochs\":3}".into());
    let a = c.to_bytes().unwrap();
    let back = Checkpoint::from_bytes(&a, None).unwrap();
    assert_eq!(back.params, c.params);
    assert_eq!(back.optimizer, c.optimizer);
    assert_eq!(
        back.to_bytes().unwrap(),
        a,
        "load → save must reproduce the bytes"
    );
}

#[test]
fn a_normal_map_round_trips_and_is_checked() {
    let arch = Arch::conv_ae(1, 16, vec![8, 16], 8).unwrap();
    let mut c = Checkpoint::new(arch.clone(), None, arch.init(2));
    c.normal_map = Some((0..256).map(|i| i as f32 * 1e-3).collect());
    let a = c.to_bytes().unwrap();
    let back = Checkpoint::from_bytes(&a, None).unwrap();
    assert_eq!(back.normal_map, c.normal_map);
    assert_eq!(back.to_bytes().unwrap(), a);
    // Negative: refused, naming the tensor.
    c.normal_map = Some(vec![-1.0; 256]);
    let e = Checkpoint::from_bytes(&c.to_bytes().unwrap(), None).unwrap_err();
    assert!(e.to_string().contains(NORMAL_MAP), "{e}");
    // Of another shape than the images' side: refused too.
    let map = vec![0.0f32; 256];
    let table = arch.param_table();
    let mut tensors: Tensors = table
        .entries
        .iter()
        .map(|e| {
            (
                e.name.clone(),
                (e.shape.clone(), &c.params[e.offset..e.offset + e.len()]),
            )
        })
        .collect();
    tensors.insert(NORMAL_MAP.into(), (vec![8, 32], map.as_slice()));
    let meta = BTreeMap::from([("arch".to_string(), to_json(&arch).unwrap())]);
    let e = Checkpoint::from_bytes(&write_safetensors(&meta, &tensors), None).unwrap_err();
    assert!(e.to_string().contains("expected F32 [16, 16]"), "{e}");
}

#[test]
fn a_reference_image_round_trips_and_is_checked() {
    let arch = Arch::conv_ae(1, 16, vec![8, 16], 8).unwrap();
    let mut c = Checkpoint::new(arch.clone(), None, arch.init(2));
    let aligns = |c: &mut Checkpoint, reach: u32| {
        let score = ScoreConfig {
            align: reach,
            ..Default::default()
        };
        c.metadata.insert("score".into(), to_json(&score).unwrap());
    };
    aligns(&mut c, 3);
    c.reference = Some((0..256).map(|i| i as f32 / 256.0).collect());
    let a = c.to_bytes().unwrap();
    let back = Checkpoint::from_bytes(&a, None).unwrap();
    assert_eq!(back.reference, c.reference);
    // Version 2, which a lamp that cannot align refuses; other models stay at 1.
    assert_eq!(back.metadata["version"], "2");
    let plain = Checkpoint::new(arch.clone(), None, arch.init(2));
    let plain = Checkpoint::from_bytes(&plain.to_bytes().unwrap(), None).unwrap();
    assert_eq!(plain.metadata["version"], "1");
    assert_eq!(back.to_bytes().unwrap(), a);
    let refused = |c: &Checkpoint, why: &str| {
        let e = Checkpoint::from_bytes(&c.to_bytes().unwrap(), None).unwrap_err();
        assert!(
            e.to_string().contains(REFERENCE) && e.to_string().contains(why),
            "{e}"
        );
    };
    // Pixel values outside [0, 1]; a reference the score does not use; a model that aligns
    // without one; a model of patches with one.
    c.reference = Some(vec![1.5; 256]);
    refused(&c, "[0, 1]");
    c.reference = Some(vec![0.5; 256]);
    aligns(&mut c, 0);
    refused(&c, "does not align");
    aligns(&mut c, 3);
    let mut lost = c.clone();
    lost.reference = None;
    refused(&lost, "has no tensor");
    c.metadata
        .insert("patch".into(), r#"{"image":64,"stride":8}"#.into());
    refused(&c, "patches");
}

#[test]
fn rejects_wrong_shapes_missing_tensors_and_future_versions() {
    let arch = Arch::fmnist_ae();
    let c = Checkpoint::new(arch.clone(), None, arch.init(1));
    let other = Arch::conv_ae(1, 28, vec![16, 64], 32).unwrap();
    let mut wrong = Checkpoint::new(other.clone(), None, other.init(1));
    wrong.metadata.clear();
    let bytes = wrong.to_bytes().unwrap();
    // Claims fmnist-ae but holds another shape of enc1.
    let mut meta: BTreeMap<String, String> = BTreeMap::new();
    meta.insert("arch".into(), serde_json::to_string(&arch).unwrap());
    let owned = read_safetensors(&bytes).unwrap();
    let tensors: Tensors = owned
        .iter()
        .map(|(n, (s, v))| (n.clone(), (s.clone(), v.as_slice())))
        .collect();
    let e = Checkpoint::from_bytes(&write_safetensors(&meta, &tensors), None).unwrap_err();
    assert!(e.to_string().contains("enc1.weight has shape"), "{e}");

    let good = arch.init(1);
    let mut fewer: Tensors = arch
        .param_table()
        .entries
        .iter()
        .map(|e| {
            (
                e.name.clone(),
                (e.shape.clone(), &good[e.offset..e.offset + e.len()]),
            )
        })
        .collect();
    fewer.remove("dec2.bias");
    let e = Checkpoint::from_bytes(&write_safetensors(&meta, &fewer), None).unwrap_err();
    assert!(e.to_string().contains("missing tensor dec2.bias"), "{e}");

    let mut future = c.clone();
    future.metadata.insert("version".into(), "99".into());
    let mut bytes = future.to_bytes().unwrap();
    // to_bytes writes the current version; patch the header to a future one, in place.
    let pat = b"\"version\":\"1\"";
    let at = bytes.windows(pat.len()).position(|w| w == pat).unwrap();
    bytes[at + pat.len() - 2] = b'9';
    let e = Checkpoint::from_bytes(&bytes, None).unwrap_err();
    assert!(e.to_string().contains("newer than this lamp reads"), "{e}");

    let e = Checkpoint::from_bytes(b"not a checkpoint at all", None).unwrap_err();
    assert!(e.to_string().contains("not a valid safetensors"), "{e}");
}

#[test]
fn an_edge_profile_round_trips_and_is_checked() {
    let arch = Arch::conv_ae(1, 16, vec![8, 16], 8).unwrap();
    let mut c = Checkpoint::new(arch.clone(), None, arch.init(2));
    let patch = Patches {
        image: 64,
        stride: 8,
    };
    c.metadata.insert("patch".into(), to_json(&patch).unwrap());
    let maps: Vec<Vec<f32>> = (0..3)
        .map(|i| {
            (0..64 * 64)
                .map(|q| ((q * 7 + i) % 13) as f32 * 1e-3)
                .collect()
        })
        .collect();
    c.edge_profile = Some(EdgeProfile::of(&maps, 64, 16));
    let a = c.to_bytes().unwrap();
    let back = Checkpoint::from_bytes(&a, None).unwrap();
    assert_eq!(back.edge_profile, c.edge_profile);
    assert_eq!(back.to_bytes().unwrap(), a);
    // Version 2: a lamp that reads only 1 would score the maps as they are.
    assert_eq!(back.metadata["version"], "2");
    // Neither written nor read (the loader runs the same check): of another reach than the
    // windows (16 px) make, in a model of whole images, beside a normal map.
    let refused = |c: &Checkpoint, why: &str| {
        let e = c.to_bytes().unwrap_err();
        assert!(e.to_string().contains(why), "{e}");
    };
    let mut other = c.clone();
    other.edge_profile = Some(EdgeProfile::of(&maps, 64, 8));
    refused(&other, "reach 8 px");
    let mut whole = c.clone();
    whole.metadata.remove("patch");
    refused(&whole, "not trained on patches");
    let mut both = c.clone();
    both.normal_map = Some(vec![0.0; 64 * 64]);
    refused(&both, "beside a normal map");
    // Damaged on disk: negative values; a normal map in a patch model.
    let read_refused = |c: &Checkpoint, tensor: &str, why: &str| {
        let e = Checkpoint::from_bytes(&c.to_bytes().unwrap(), None).unwrap_err();
        assert!(e.to_string().contains(tensor), "{e}");
        assert!(e.to_string().contains(why), "{e}");
    };
    let mut negative = c.clone();
    if let Some(p) = negative.edge_profile.as_mut() {
        p.sd[3] = -1.0;
    }
    read_refused(&negative, EDGE_PROFILE, "never negative");
    let mut normal = c.clone();
    normal.edge_profile = None;
    normal.normal_map = Some(vec![0.0; 64 * 64]);
    read_refused(&normal, NORMAL_MAP, "patches");
}

#[test]
fn a_damaged_file_fails_its_checksum_and_files_without_one_still_load() {
    let arch = Arch::fmnist_ae();
    let c = Checkpoint::new(arch.clone(), None, arch.init(4));
    let bytes = c.to_bytes().unwrap();
    let back = Checkpoint::from_bytes(&bytes, None).unwrap();
    assert_eq!(back.params, c.params);
    // One bit of the last weight's bytes flipped: still a finite number.
    let mut flipped = bytes.clone();
    let at = flipped.len() - 2;
    flipped[at] ^= 0x01;
    let e = Checkpoint::from_bytes(&flipped, None).unwrap_err();
    assert!(e.to_string().contains("checksum"), "{e}");
    // Written without the checksum (as before it existed), the same damage is not seen.
    let mut meta = back.metadata.clone();
    assert!(meta.remove(DATA_CRC32).is_some());
    meta.insert("arch".into(), to_json(&arch).unwrap());
    let owned = read_safetensors(&flipped).unwrap();
    let tensors: Tensors = owned
        .iter()
        .map(|(n, (s, v))| (n.clone(), (s.clone(), v.as_slice())))
        .collect();
    let old = Checkpoint::from_bytes(&write_safetensors(&meta, &tensors), None).unwrap();
    assert_ne!(old.params, c.params);
}
