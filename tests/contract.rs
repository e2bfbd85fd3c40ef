//! The Rust↔WGSL contract, checked by machine: every shader is valid WGSL; every launch sets
//! exactly the override constants its shader declares (a misspelt or forgotten name fails here,
//! and the shaders give their overrides no defaults, so it would also fail at pipeline creation,
//! never fall back silently); `struct Step` has `StepUniform`'s layout; the generated constants
//! carry the Rust values; the loss kernel refuses a model that does not end in a sigmoid.

mod common;
use common::*;
use lamp::device::{validate, ShaderSource};
use lamp::kernels::{
    all_shaders, bias_grad, gather, gemm, loss, optimizer, prelude, BiasGradSpec, GatherSpec,
    GemmCore, GemmMode, GemmSpec, Layout, LossSpec, OptimizerSpec, PackSpec, Stat, StepUniform,
};
use lamp::model::{self, Act, ActCode, Amp, Choice, Granularity, LossConfig, Metric};
use std::collections::BTreeSet;

fn module(s: &ShaderSource) -> naga::Module {
    validate(s).unwrap_or_else(|e| panic!("{} is invalid:\n{e}", s.files))
}

fn overrides(s: &ShaderSource) -> BTreeSet<String> {
    module(s)
        .overrides
        .iter()
        .filter_map(|(_, o)| o.name.clone())
        .collect()
}

fn names(constants: &[(&'static str, f64)]) -> BTreeSet<String> {
    constants.iter().map(|(n, _)| n.to_string()).collect()
}

fn assert_same(what: &str, spec: BTreeSet<String>, shader: BTreeSet<String>) {
    let missing: Vec<_> = shader.difference(&spec).collect();
    let unknown: Vec<_> = spec.difference(&shader).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "{what}: overrides the spec does not set {missing:?}, names the shader lacks {unknown:?}"
    );
}

#[test]
fn every_shader_passes_naga_validation() {
    for s in all_shaders() {
        module(s);
    }
}

#[test]
fn every_spec_sets_exactly_its_shaders_overrides() {
    let gemm_spec = GemmSpec {
        mode: GemmMode::Conv,
        batch: 2,
        g: [3, 8, 8],
        q: [4, 4, 4],
        kernel: [3, 3],
        stride: 2,
        pad: 1,
        w_off: 0,
        g_off: 0,
        q_off: 0,
        bias_off: Some(0),
        act: Act::LeakyRelu(0.2),
        backward_h_off: None,
        k_split: 1,
        lane_parts: 1,
        partial_off: 0,
        g_layout: Layout::Grouped,
        q_layout: Layout::Grouped,
        packed: None,
        phase: None,
    };
    for (core, shader) in [
        (GemmCore::Plain, &gemm::GEMM_PLAIN),
        (
            GemmCore::Subgroup {
                max_size: 8,
                wide_rows: 16,
            },
            &gemm::GEMM_SUBGROUP,
        ),
        (
            GemmCore::Subgroup {
                max_size: 8,
                wide_rows: 32,
            },
            &gemm::GEMM_SUBGROUP_WIDE,
        ),
        (GemmCore::Tiled, &gemm::GEMM_TILED),
    ] {
        assert_same(
            shader.files,
            names(&gemm_spec.constants(core)),
            overrides(shader),
        );
    }
    let pack = PackSpec { len: 8, dst: 0 };
    assert_same(
        "pack",
        names(&pack.constants()),
        overrides(&lamp::kernels::pack::PACK),
    );
    let bias = BiasGradSpec::new(2, 3, 4, 0, 0);
    assert_same(
        "bias_grad",
        names(&bias.constants()),
        overrides(&bias_grad::BIAS_GRAD),
    );
    let loss = LossSpec {
        loss: LossConfig::default(),
        batch: 2,
        stats_batch: 2,
        shape: [1, 12, 12],
        x_off: 0,
        y_off: 0,
        dz_off: 0,
        scratch_off: 0,
        grad: true,
        output_act: Act::Sigmoid,
    };
    assert_same("loss", names(&loss.constants()), overrides(&loss::LOSS));
    let opt = OptimizerSpec {
        kind: model::OptimizerKind::Adam,
        count: 10,
    };
    assert_same(
        "optimizer",
        names(&opt.constants()),
        overrides(&optimizer::OPTIMIZER),
    );
    let g = GatherSpec {
        channels: 3,
        src: 12,
        out: 8,
        batch: 2,
        x_off: 0,
        t_off: 0,
        chunk_start: 0,
        chunk_len: 5,
    };
    assert_same("gather", names(&g.constants()), overrides(&gather::GATHER));
}

#[test]
fn a_misspelt_or_missing_override_fails_at_pipeline_creation() {
    let dev = device();
    let mut c = BiasGradSpec::new(2, 3, 4, 0, 0).constants();
    c[0].0 = "BACTH";
    let e = dev.pipeline(&bias_grad::BIAS_GRAD, "main", &c).err();
    assert!(
        e.is_some(),
        "a misspelt name must not fall back to a default"
    );
    c.remove(0);
    let e = dev.pipeline(&bias_grad::BIAS_GRAD, "main", &c).err();
    assert!(
        e.is_some(),
        "a missing value must not fall back to a default"
    );
}

#[test]
fn step_struct_has_the_uniforms_layout() {
    let m = module(&optimizer::OPTIMIZER);
    let (members, span) = m
        .types
        .iter()
        .find_map(|(_, t)| match (&t.name, &t.inner) {
            (Some(n), naga::TypeInner::Struct { members, span }) if n == "Step" => {
                Some((members.clone(), *span))
            }
            _ => None,
        })
        .expect("struct Step in the prelude");
    assert_eq!(span as usize, std::mem::size_of::<StepUniform>(), "size");
    for (name, offset) in StepUniform::FIELDS {
        let m = members
            .iter()
            .find(|m| m.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("struct Step has no field {name}"));
        assert_eq!(m.offset as usize, offset, "offset of {name}");
    }
}

/// The value of the module constant `name`.
fn constant(m: &naga::Module, name: &str) -> naga::Literal {
    let (_, c) = m
        .constants
        .iter()
        .find(|(_, c)| c.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no constant {name} in the prelude"));
    match m.global_expressions[c.init] {
        naga::Expression::Literal(l) => l,
        ref e => panic!("{name} is {e:?}"),
    }
}

#[test]
fn the_prelude_carries_the_rust_values() {
    let m = module(&loss::LOSS);
    let u = |name: &str, v: u32| assert_eq!(constant(&m, name), naga::Literal::U32(v), "{name}");
    for &x in Metric::ALL {
        u(&format!("METRIC_{}", x.name().to_uppercase()), x as u32);
    }
    for &x in Amp::ALL {
        u(&format!("AMP_{}", x.name().to_uppercase()), x as u32);
    }
    for &x in Granularity::ALL {
        u(&format!("GRAN_{}", x.name().to_uppercase()), x as u32);
    }
    for x in ActCode::ALL {
        u(&format!("ACT_{}", x.name().to_uppercase()), x as u32);
    }
    for x in GemmMode::ALL {
        u(&format!("MODE_{}", x.name().to_uppercase()), x as u32);
    }
    u("STAT_NONFINITE", Stat::NonFinite.index() as u32);
    u("STATS_HEADER", prelude::STATS_HEADER as u32);
    let f =
        |name: &str, v: f64| assert_eq!(constant(&m, name), naga::Literal::F32(v as f32), "{name}");
    f("CLAMP_MAX", model::loss::CLAMP_MAX);
    f("SSIM_C1", model::ssim::C1);
    f("SSIM_C2", model::ssim::C2);
    f("SSIM_SIGMA", model::ssim::SIGMA);
    u("SSIM_WIN", model::ssim::WINDOW as u32);
    u("SSIM_HALF", model::ssim::HALF as u32);
    // Every activation has a code, and the loss kernel refuses all but a sigmoid at the output.
    let dev = device();
    for act in [Act::Identity, Act::LeakyRelu(0.2), Act::Relu] {
        let spec = LossSpec {
            loss: LossConfig::default(),
            batch: 1,
            stats_batch: 1,
            shape: [1, 4, 4],
            x_off: 0,
            y_off: 0,
            dz_off: 0,
            scratch_off: 0,
            grad: true,
            output_act: act,
        };
        let e = spec.dispatches(&dev).err().expect("only a sigmoid output");
        assert!(e.to_string().contains("sigmoid"), "{e}");
    }
}
