//! The shader registry and the one place that builds pipelines and bind-group layouts, plus the
//! launch descriptions (`*Spec`) that mirror each shader's override constants field by field.
//!
//! Bind groups (explicit layouts, shared by every pipeline):
//!   group 0, the arenas: 0 params, 1 grads, 2 acts, 3 stats (storage), 4 step (uniform)
//!   group 1 of Adam: 0 exp_avg, 1 exp_avg_sq;   group 1 of gather: 0 data chunk, 1 indices

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The WGSL sources, one per kernel family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shader {
    /// gemm.wgsl with the plain entry (gemm_plain.wgsl).
    Gemm,
    /// gemm.wgsl with the subgroup entry (gemm_subgroup.wgsl); built where `GemmCore` allows.
    GemmSubgroup,
    BiasGrad,
    Loss,
    Adam,
    Gather,
}

impl Shader {
    pub const ALL: [Shader; 6] = [
        Shader::Gemm,
        Shader::GemmSubgroup,
        Shader::BiasGrad,
        Shader::Loss,
        Shader::Adam,
        Shader::Gather,
    ];

    pub fn file(self) -> &'static str {
        match self {
            Shader::Gemm => "shaders/gemm.wgsl + shaders/gemm_plain.wgsl",
            Shader::GemmSubgroup => "shaders/gemm.wgsl + shaders/gemm_subgroup.wgsl",
            Shader::BiasGrad => "shaders/bias_grad.wgsl",
            Shader::Loss => "shaders/loss.wgsl",
            Shader::Adam => "shaders/step.wgsl + shaders/adam.wgsl",
            Shader::Gather => "shaders/step.wgsl + shaders/gather.wgsl",
        }
    }

    pub fn source(self) -> &'static str {
        match self {
            // The body and an entry file, one after the other (WGSL has no includes).
            Shader::Gemm => concat!(
                include_str!("../shaders/gemm.wgsl"),
                include_str!("../shaders/gemm_plain.wgsl")
            ),
            Shader::GemmSubgroup => concat!(
                include_str!("../shaders/gemm.wgsl"),
                include_str!("../shaders/gemm_subgroup.wgsl")
            ),
            Shader::BiasGrad => include_str!("../shaders/bias_grad.wgsl"),
            Shader::Loss => include_str!("../shaders/loss.wgsl"),
            // The step uniform's declaration, then the kernels that read it.
            Shader::Adam => concat!(
                include_str!("../shaders/step.wgsl"),
                include_str!("../shaders/adam.wgsl")
            ),
            Shader::Gather => concat!(
                include_str!("../shaders/step.wgsl"),
                include_str!("../shaders/gather.wgsl")
            ),
        }
    }

    /// Which group-1 layout the shader's pipelines use.
    fn extra_group(self) -> ExtraGroup {
        match self {
            Shader::Adam => ExtraGroup::Optimizer,
            Shader::Gather => ExtraGroup::Data,
            _ => ExtraGroup::None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExtraGroup {
    None,
    Optimizer,
    Data,
}

/// Parses and validates a shader with naga, as wgpu will; used by tests so a broken shader fails
/// `cargo test`, and by `Kernels::new` to report errors with the file name.
pub fn validate(shader: Shader) -> std::result::Result<(), String> {
    let module = naga::front::wgsl::parse_str(shader.source())
        .map_err(|e| e.emit_to_string_with_path(shader.source(), shader.file()))?;
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::all(),
    )
    .validate(&module)
    .map_err(|e| e.emit_to_string_with_path(shader.source(), shader.file()))?;
    Ok(())
}

/// A pipeline's constants: (override name, value).
pub type Constants = Vec<(&'static str, f64)>;

#[derive(PartialEq, Eq, Hash)]
struct Key {
    shader: Shader,
    entry: &'static str,
    constants: Vec<(&'static str, u64)>,
}

/// How gemm.wgsl gets A's values for an invocation's rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GemmCore {
    /// Each invocation loads its own (any device).
    Plain,
    /// One load per subgroup lane and a broadcast; needs subgroups of at least 8 lanes.
    /// `max_size` is the device's largest subgroup: the tile keeps that many column lanes per
    /// row group, so that a subgroup never spans two row groups.
    Subgroup { max_size: u32 },
}

impl GemmCore {
    /// The best core the device allows; `LAMP_GEMM=plain` forces the plain one (to compare, or
    /// to step around a driver's subgroup bug).
    pub fn best(gpu: &Gpu) -> GemmCore {
        let (min, max) = gpu.subgroup_sizes;
        let forced_plain = std::env::var("LAMP_GEMM").is_ok_and(|v| v == "plain");
        if gpu.features.contains(wgpu::Features::SUBGROUP) && min >= 8 && !forced_plain {
            GemmCore::Subgroup { max_size: max }
        } else {
            GemmCore::Plain
        }
    }
    fn shader(self) -> Shader {
        match self {
            GemmCore::Plain => Shader::Gemm,
            GemmCore::Subgroup { .. } => Shader::GemmSubgroup,
        }
    }
}

/// Shader modules, the shared layouts and a cache of specialised pipelines.
pub struct Kernels {
    /// The GEMM core every launch uses unless it names another (tests run both).
    pub gemm_core: GemmCore,
    modules: HashMap<Shader, wgpu::ShaderModule>,
    pub arenas: wgpu::BindGroupLayout,
    pub optimizer: wgpu::BindGroupLayout,
    pub data: wgpu::BindGroupLayout,
    layouts: HashMap<ExtraGroup, wgpu::PipelineLayout>,
    cache: Mutex<HashMap<Key, Arc<wgpu::ComputePipeline>>>,
}

fn storage_entry(binding: u32) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only: false },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

impl Kernels {
    pub fn new(gpu: &Gpu) -> Result<Kernels> {
        let dev = &gpu.device;
        let gemm_core = GemmCore::best(gpu);
        let mut modules = HashMap::new();
        for s in Shader::ALL {
            if s == Shader::GemmSubgroup && gemm_core == GemmCore::Plain {
                continue;
            }
            validate(s)
                .map_err(|e| Error::Device(format!("shader {} is invalid:\n{e}", s.file())))?;
            let m = gpu.checked(s.file(), || {
                dev.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(s.file()),
                    source: wgpu::ShaderSource::Wgsl(s.source().into()),
                })
            })?;
            modules.insert(s, m);
        }
        let arenas = dev.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("arenas"),
            entries: &[
                storage_entry(0),
                storage_entry(1),
                storage_entry(2),
                storage_entry(3),
                wgpu::BindGroupLayoutEntry {
                    binding: 4,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                },
            ],
        });
        let pair = |label| {
            dev.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(label),
                entries: &[storage_entry(0), storage_entry(1)],
            })
        };
        let optimizer = pair("optimizer");
        let data = pair("data");
        let mut layouts = HashMap::new();
        for (g, extra) in [
            (ExtraGroup::None, None),
            (ExtraGroup::Optimizer, Some(&optimizer)),
            (ExtraGroup::Data, Some(&data)),
        ] {
            let groups: Vec<Option<&wgpu::BindGroupLayout>> = match extra {
                None => vec![Some(&arenas)],
                Some(l) => vec![Some(&arenas), Some(l)],
            };
            let pl = dev.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: None,
                bind_group_layouts: &groups,
                immediate_size: 0,
            });
            layouts.insert(g, pl);
        }
        Ok(Kernels {
            gemm_core,
            modules,
            arenas,
            optimizer,
            data,
            layouts,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The pipeline for `shader::entry` specialised with `constants`, built once and cached.
    pub fn pipeline(
        &self,
        gpu: &Gpu,
        shader: Shader,
        entry: &'static str,
        constants: &[(&'static str, f64)],
    ) -> Result<Arc<wgpu::ComputePipeline>> {
        let key = Key {
            shader,
            entry,
            constants: constants.iter().map(|(k, v)| (*k, v.to_bits())).collect(),
        };
        let mut cache = self
            .cache
            .lock()
            .map_err(|_| Error::Device("pipeline cache".into()))?;
        if let Some(p) = cache.get(&key) {
            return Ok(p.clone());
        }
        let module = self.modules.get(&shader).ok_or_else(|| {
            Error::Device(format!(
                "{} needs a feature this device lacks",
                shader.file()
            ))
        })?;
        let layout = &self.layouts[&shader.extra_group()];
        let p = gpu.checked(&format!("{}::{entry}", shader.file()), || {
            gpu.device
                .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(entry),
                    layout: Some(layout),
                    module,
                    entry_point: Some(entry),
                    compilation_options: wgpu::PipelineCompilationOptions {
                        constants,
                        zero_initialize_workgroup_memory: false,
                    },
                    cache: None,
                })
        })?;
        let p = Arc::new(p);
        cache.insert(key, p.clone());
        Ok(p)
    }
}

/// Workgroup counts for `tiles` tiles along x, folded into z past the per-dimension limit.
pub fn fold(tiles: u32, y: u32) -> [u32; 3] {
    const MAX: u32 = 65535;
    if tiles <= MAX {
        [tiles.max(1), y.max(1), 1]
    } else {
        let z = tiles.div_ceil(MAX);
        [tiles.div_ceil(z), y.max(1), z]
    }
}

/// One dispatch: a pipeline, its group-1 bind group (if any) and the workgroup counts.
#[derive(Clone)]
pub struct Dispatch {
    pub label: String,
    pub pipeline: Arc<wgpu::ComputePipeline>,
    /// Bind group 1, for the kernels that have one (Adam's moments, a data chunk).
    pub group1: Option<wgpu::BindGroup>,
    pub groups: [u32; 3],
    /// Useful floating-point operations of the launch (0 where not counted).
    pub flops: f64,
}

/// Activation fused into a producing kernel (and its derivative into the backward one).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Act {
    Identity,
    LeakyRelu(f32),
    Relu,
    Sigmoid,
}

impl Act {
    fn code(self) -> (f64, f64) {
        match self {
            Act::Identity => (0.0, 0.0),
            Act::LeakyRelu(a) => (1.0, a as f64),
            Act::Relu => (2.0, 0.0),
            Act::Sigmoid => (3.0, 0.0),
        }
    }
}

/// The three indexings of gemm.wgsl.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GemmMode {
    Conv = 0,
    ConvTranspose = 1,
    WeightGrad = 2,
}

/// Mirror of gemm.wgsl's overrides. Offsets are in f32 elements of their arena.
#[derive(Clone, Debug)]
pub struct GemmSpec {
    pub mode: GemmMode,
    pub batch: u32,
    /// G, the tensor read through the window: [C, H, W].
    pub g: [u32; 3],
    /// Q, the plain tensor: [C, H, W].
    pub q: [u32; 3],
    pub kernel: [u32; 2],
    pub stride: u32,
    pub pad: u32,
    pub w_off: u32,
    pub g_off: u32,
    pub q_off: u32,
    pub bias_off: Option<u32>,
    pub act: Act,
    /// Backward epilogue: multiply by act'(stored output at this offset).
    pub backward_h_off: Option<u32>,
    /// Weight gradients only: the batch is split into this many parts whose partial sums go to
    /// `partial_off` in acts and are then added up (1 = no split; see `with_split_k`).
    pub k_split: u32,
    pub partial_off: u32,
}

/// Split-K applies to weight gradients with at most this many outputs...
pub const SPLIT_K_MAX_OUTPUTS: u32 = 1024;
/// ...cut into at most this many parts, so its scratch is `SPLIT_K_SCRATCH` floats.
pub const SPLIT_K_PARTS: u32 = 16;
pub const SPLIT_K_SCRATCH: usize = (SPLIT_K_MAX_OUTPUTS * SPLIT_K_PARTS) as usize;

impl GemmSpec {
    /// Splits a weight gradient with few outputs (the 1-channel layers: a single tile that
    /// would leave cores idle) into parts of the batch, with partial sums at `scratch_off` in
    /// acts (`SPLIT_K_SCRATCH` floats). Other launches are returned unchanged.
    pub fn with_split_k(self, scratch_off: u32) -> GemmSpec {
        let outputs = self.m() * self.n();
        if self.mode != GemmMode::WeightGrad || outputs > SPLIT_K_MAX_OUTPUTS || self.batch < 4 {
            return self;
        }
        GemmSpec {
            k_split: (self.batch / 2).min(SPLIT_K_PARTS),
            partial_off: scratch_off,
            ..self
        }
    }
    pub fn m(&self) -> u32 {
        self.q[0]
    }
    /// Columns of the GEMM (all phases together for MODE conv-T).
    pub fn n(&self) -> u32 {
        match self.mode {
            GemmMode::WeightGrad => self.g[0] * self.kernel[0] * self.kernel[1],
            _ => self.batch * self.q[1] * self.q[2],
        }
    }
    /// Reduction length (for conv-T, as if every tap were visited).
    pub fn k(&self) -> u32 {
        match self.mode {
            GemmMode::WeightGrad => self.batch * self.q[1] * self.q[2],
            _ => self.g[0] * self.kernel[0] * self.kernel[1],
        }
    }
    /// Multiply-adds the layer needs, counted as 2 FLOPs each (for conv-T only the taps that
    /// land, i.e. what the phase decomposition computes).
    pub fn flops(&self) -> f64 {
        let s2 = if self.mode == GemmMode::ConvTranspose {
            (self.stride * self.stride) as f64
        } else {
            1.0
        };
        2.0 * self.m() as f64 * self.n() as f64 * self.k() as f64 / s2
    }
    /// Lanes along m and rows per invocation, so that small layers keep lanes busy.
    fn tile(&self, core: GemmCore) -> (u32, u32) {
        if let GemmCore::Subgroup { max_size } = core {
            // Loads of A are cheap here, so 8 or 16 rows per invocation wherever Q_C allows
            // (BENCHMARKS.md, v5/v6). 16 pays for weight gradients and wide forward convolutions
            // (more FMAs per load of B); conv-T phases and input gradients lose a little with it.
            let m = self.m();
            let sixteen = match self.mode {
                GemmMode::WeightGrad => true,
                GemmMode::Conv => m >= 64 && self.backward_h_off.is_none(),
                GemmMode::ConvTranspose => false,
            };
            // LM: a power of two, so that 64/LM column lanes split into whole subgroups, and at
            // most 64/max_size, so that a subgroup never spans two row groups.
            let lm_cap = (64 / max_size.max(1)).max(1);
            let lanes = |rows: u32| 1 << (m / rows).clamp(1, 8).min(lm_cap).ilog2();
            return match m {
                m if m >= 16 && sixteen => (lanes(16), 16),
                m if m >= 8 => (lanes(8), 8),
                m => (1, m.max(1)),
            };
        }
        // 8 rows per invocation pays off for wide GEMMs (measured: weight gradients and conv
        // layers with 64+ output channels); conv-T phases and narrow GEMMs do better with 4,
        // which keeps more workgroups (BENCHMARKS.md, v4).
        let (m, n) = (self.m(), self.n());
        let wide = n >= 128
            && match self.mode {
                GemmMode::WeightGrad => m >= 32,
                GemmMode::Conv => m >= 64,
                GemmMode::ConvTranspose => false,
            };
        match m {
            _ if wide => (if m >= 64 { 8 } else { 4 }, 8),
            m if m >= 32 => (8, 4),
            m if m >= 16 => (4, 4),
            m if m >= 8 => (2, 4),
            m if m >= 4 => (1, 4),
            m => (1, m.max(1)),
        }
    }
    pub fn constants(&self, core: GemmCore) -> Constants {
        let (act, alpha) = self.act.code();
        let (lm, tm) = self.tile(core);
        vec![
            ("MODE", self.mode as u32 as f64),
            ("BATCH", self.batch as f64),
            ("G_C", self.g[0] as f64),
            ("G_H", self.g[1] as f64),
            ("G_W", self.g[2] as f64),
            ("Q_C", self.q[0] as f64),
            ("Q_H", self.q[1] as f64),
            ("Q_W", self.q[2] as f64),
            ("KH", self.kernel[0] as f64),
            ("KW", self.kernel[1] as f64),
            ("STRIDE", self.stride as f64),
            ("PAD", self.pad as f64),
            ("W_OFF", self.w_off as f64),
            ("G_OFF", self.g_off as f64),
            ("Q_OFF", self.q_off as f64),
            ("B_OFF", self.bias_off.unwrap_or(0) as f64),
            ("HAS_BIAS", if self.bias_off.is_some() { 1.0 } else { 0.0 }),
            ("ACT", act),
            ("ALPHA", alpha),
            (
                "BACKWARD",
                if self.backward_h_off.is_some() {
                    1.0
                } else {
                    0.0
                },
            ),
            ("H_OFF", self.backward_h_off.unwrap_or(0) as f64),
            ("LM", lm as f64),
            ("TM", tm as f64),
            ("KSPLIT", self.k_split.max(1) as f64),
            ("P_OFF", self.partial_off as f64),
        ]
    }
    /// Workgroup counts: column tiles (times the STRIDE² phases for conv-T) and row tiles.
    pub fn workgroups(&self, core: GemmCore) -> [u32; 3] {
        let (lm, tm) = self.tile(core);
        let cols_per_tile = 4 * (64 / lm);
        let col_tiles = match self.mode {
            GemmMode::ConvTranspose => {
                let s = self.stride;
                let per_phase = self.batch * self.q[1].div_ceil(s) * self.q[2].div_ceil(s);
                per_phase.div_ceil(cols_per_tile) * s * s
            }
            GemmMode::WeightGrad => self.n().div_ceil(cols_per_tile) * self.k_split.max(1),
            _ => self.n().div_ceil(cols_per_tile),
        };
        fold(col_tiles, self.m().div_ceil(lm * tm))
    }
    /// The GEMM launch with the device's core. A split-K spec also needs its sum of parts:
    /// launch those through `dispatches`.
    pub fn dispatch(&self, gpu: &Gpu, k: &Kernels, label: impl Into<String>) -> Result<Dispatch> {
        debug_assert!(
            self.k_split <= 1,
            "split-K launches go through `dispatches`"
        );
        self.dispatch_with(gpu, k, k.gemm_core, label)
    }
    /// The launches: the GEMM, and with split-K the sum of its parts into `grads`.
    pub fn dispatches(&self, gpu: &Gpu, k: &Kernels, label: &str) -> Result<Vec<Dispatch>> {
        self.dispatches_with(gpu, k, k.gemm_core, label)
    }
    pub fn dispatches_with(
        &self,
        gpu: &Gpu,
        k: &Kernels,
        core: GemmCore,
        label: &str,
    ) -> Result<Vec<Dispatch>> {
        let mut d = vec![self.dispatch_with(gpu, k, core, label)?];
        if self.k_split > 1 {
            // The parts [k_split, outputs] summed per output: bias_grad's reduction exactly.
            let sum = BiasGradSpec {
                batch: self.k_split,
                channels: self.m() * self.n(),
                spatial: 1,
                dz_off: self.partial_off,
                db_off: self.w_off,
            };
            d.push(sum.dispatch(gpu, k, format!("{label} (sum of parts)"))?);
        }
        Ok(d)
    }
    /// The GEMM launch alone with a given core (tests check each core the device has).
    pub fn dispatch_with(
        &self,
        gpu: &Gpu,
        k: &Kernels,
        core: GemmCore,
        label: impl Into<String>,
    ) -> Result<Dispatch> {
        Ok(Dispatch {
            label: label.into(),
            pipeline: k.pipeline(gpu, core.shader(), "main", &self.constants(core))?,
            group1: None,
            groups: self.workgroups(core),
            flops: self.flops(),
        })
    }
}

/// Mirror of bias_grad.wgsl's overrides: db[c] = sum of dz[n, c, s].
#[derive(Clone, Debug)]
pub struct BiasGradSpec {
    pub batch: u32,
    pub channels: u32,
    pub spatial: u32,
    pub dz_off: u32,
    pub db_off: u32,
}

impl BiasGradSpec {
    pub fn dispatch(&self, gpu: &Gpu, k: &Kernels, label: impl Into<String>) -> Result<Dispatch> {
        // One invocation per channel where the sums are short (see bias_grad.wgsl).
        let per_lane = self.batch * self.spatial <= 2048;
        let c: Constants = vec![
            ("BATCH", self.batch as f64),
            ("C", self.channels as f64),
            ("S", self.spatial as f64),
            ("DZ_OFF", self.dz_off as f64),
            ("DB_OFF", self.db_off as f64),
            ("PER_LANE", if per_lane { 1.0 } else { 0.0 }),
        ];
        Ok(Dispatch {
            label: label.into(),
            pipeline: k.pipeline(gpu, Shader::BiasGrad, "main", &c)?,
            group1: None,
            groups: if per_lane {
                fold(self.channels.div_ceil(64), 1)
            } else {
                fold(self.channels, 1)
            },
            flops: 0.0,
        })
    }
}

/// Workgroup count for a 256-wide grid-stride kernel over `n` elements.
fn strided_groups(n: u64) -> [u32; 3] {
    [(n.div_ceil(256)).clamp(1, 65535) as u32, 1, 1]
}

pub fn adam_dispatch(gpu: &Gpu, k: &Kernels, count: u32) -> Result<Dispatch> {
    optimizer_dispatch(gpu, k, count, "main")
}

/// The optimizer step over the arena: `main` (Adam) or `sgd` (SGD with momentum).
pub fn optimizer_dispatch(
    gpu: &Gpu,
    k: &Kernels,
    count: u32,
    entry: &'static str,
) -> Result<Dispatch> {
    Ok(Dispatch {
        label: if entry == "sgd" {
            "sgd".into()
        } else {
            "adam".into()
        },
        pipeline: k.pipeline(gpu, Shader::Adam, entry, &[("COUNT", count as f64)])?,
        group1: None,
        groups: strided_groups(count as u64),
        flops: 0.0,
    })
}

/// Mirror of gather.wgsl's overrides.
pub fn gather_dispatch(
    gpu: &Gpu,
    k: &Kernels,
    per_sample: u32,
    batch: u32,
    x_off: u32,
    chunk: (u32, u32),
) -> Result<Dispatch> {
    let c: Constants = vec![
        ("P", per_sample as f64),
        ("BATCH", batch as f64),
        ("X_OFF", x_off as f64),
        ("CHUNK_START", chunk.0 as f64),
        ("CHUNK_LEN", chunk.1 as f64),
    ];
    Ok(Dispatch {
        label: "gather".into(),
        pipeline: k.pipeline(gpu, Shader::Gather, "main", &c)?,
        group1: None,
        groups: strided_groups(batch as u64 * per_sample as u64),
        flops: 0.0,
    })
}

/// The error metric (DESIGN §1).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    Mae,
    Mse,
    Ssim,
}

/// Amplification: `none` is the baseline A(e) = e, `lamp` is A(e) = -ln(1 - e).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Amp {
    None,
    Lamp,
}

/// Where the amplification acts.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    Element,
    Sample,
    Batch,
}

/// The loss configuration: metric, amplification and granularity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LossConfig {
    pub metric: Metric,
    pub amp: Amp,
    pub granularity: Granularity,
}

impl std::fmt::Display for LossConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}/{:?}/{:?}", self.metric, self.amp, self.granularity)
    }
}

/// Header length of the stats buffer and where its per-sample sections start (see loss.wgsl).
pub const STATS_HEADER: usize = 8;
pub const STAT_LOSS: usize = 0;
pub const STAT_LOSS_SUM: usize = 1;
pub const STAT_STEPS: usize = 2;
pub const STAT_CLAMP_SUM: usize = 3;
pub const STAT_NONFINITE: usize = 4;
pub const STAT_CLAMPS: usize = 5;

pub fn stats_len(max_batch: usize) -> usize {
    STATS_HEADER + 3 * max_batch
}

/// Mirror of loss.wgsl's overrides.
#[derive(Clone, Debug)]
pub struct LossSpec {
    pub loss: LossConfig,
    pub batch: u32,
    pub stats_batch: u32,
    /// Sample shape [C, H, W].
    pub shape: [u32; 3],
    pub x_off: u32,
    pub y_off: u32,
    pub dz_off: u32,
    pub scratch_off: u32,
    pub grad: bool,
}

impl LossSpec {
    /// f32 elements of SSIM scratch needed per sample.
    pub fn scratch_per_sample(shape: [u32; 3]) -> usize {
        let [c, h, w] = shape.map(|v| v as usize);
        5 * c * h.saturating_sub(10) * w.saturating_sub(10)
    }
    fn constants(&self) -> Constants {
        vec![
            ("METRIC", self.loss.metric as u32 as f64),
            ("AMP", self.loss.amp as u32 as f64),
            ("GRAN", self.loss.granularity as u32 as f64),
            ("BATCH", self.batch as f64),
            ("STATS_B", self.stats_batch as f64),
            ("C", self.shape[0] as f64),
            ("H", self.shape[1] as f64),
            ("W", self.shape[2] as f64),
            ("X_OFF", self.x_off as f64),
            ("Y_OFF", self.y_off as f64),
            ("DZ_OFF", self.dz_off as f64),
            ("S_OFF", self.scratch_off as f64),
            ("GRAD", if self.grad { 1.0 } else { 0.0 }),
        ]
    }
    /// loss_elements, then (when a gradient or the batch loss is wanted) loss_finalize.
    pub fn dispatches(&self, gpu: &Gpu, k: &Kernels) -> Result<Vec<Dispatch>> {
        if self.loss.metric == Metric::Ssim && (self.shape[1] < 11 || self.shape[2] < 11) {
            return Err(Error::invalid(format!(
                "ssim needs images of at least 11x11 pixels, got {}x{}",
                self.shape[1], self.shape[2]
            )));
        }
        let c = self.constants();
        let mut v = vec![Dispatch {
            label: "loss_elements".into(),
            pipeline: k.pipeline(gpu, Shader::Loss, "loss_elements", &c)?,
            group1: None,
            groups: [self.batch, 1, 1],
            flops: 0.0,
        }];
        v.push(Dispatch {
            label: "loss_finalize".into(),
            pipeline: k.pipeline(gpu, Shader::Loss, "loss_finalize", &c)?,
            group1: None,
            groups: [if self.grad { self.batch } else { 1 }, 1, 1],
            flops: 0.0,
        });
        Ok(v)
    }
}

/// The step uniform shared by gather and Adam (mirrors `struct Step`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct StepUniform {
    pub batch_offset: u32,
    pub t: u32,
    pub step_size: f32,
    pub bc2_sqrt: f32,
    pub beta2: f32,
    pub one_minus_beta1: f32,
    pub one_minus_beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    pub pad: [u32; 3],
}

impl StepUniform {
    /// The uniform of an SGD-with-momentum step: lr in step_size, momentum in beta2.
    pub fn sgd(
        lr: f64,
        momentum: f64,
        weight_decay: f64,
        t: u32,
        batch_offset: u32,
    ) -> StepUniform {
        StepUniform {
            batch_offset,
            t,
            step_size: lr as f32,
            beta2: momentum as f32,
            weight_decay: weight_decay as f32,
            ..Default::default()
        }
    }

    /// The uniform of Adam step `t` (1-based), bias corrections computed in f64.
    pub fn adam(cfg: &crate::reference::AdamConfig, t: u32, batch_offset: u32) -> StepUniform {
        let bc1 = 1.0 - cfg.beta1.powi(t as i32);
        let bc2 = 1.0 - cfg.beta2.powi(t as i32);
        StepUniform {
            batch_offset,
            t,
            step_size: (cfg.lr / bc1) as f32,
            bc2_sqrt: bc2.sqrt() as f32,
            beta2: cfg.beta2 as f32,
            one_minus_beta1: (1.0 - cfg.beta1) as f32,
            one_minus_beta2: (1.0 - cfg.beta2) as f32,
            eps: cfg.eps as f32,
            weight_decay: cfg.weight_decay as f32,
            pad: [0; 3],
        }
    }
}

/// The five buffers of bind group 0 and the group itself. The engine owns one; tests make their
/// own to launch single kernels on random data.
pub struct Arenas {
    pub params: wgpu::Buffer,
    pub grads: wgpu::Buffer,
    pub acts: wgpu::Buffer,
    pub stats: wgpu::Buffer,
    pub step: wgpu::Buffer,
    pub group: wgpu::BindGroup,
}

impl Arenas {
    /// Allocates arenas of the given lengths (f32 elements).
    pub fn new(gpu: &Gpu, k: &Kernels, params: usize, acts: usize, stats: usize) -> Result<Arenas> {
        let (params, grads, acts, stats, step) = gpu.checked("allocating arenas", || {
            (
                gpu.storage("params", params),
                gpu.storage("grads", params),
                gpu.storage("acts", acts),
                gpu.storage("stats", stats),
                gpu.uniform("step", std::mem::size_of::<StepUniform>() as u64),
            )
        })?;
        let group = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("arenas"),
            layout: &k.arenas,
            entries: &[
                bind(&params, 0),
                bind(&grads, 1),
                bind(&acts, 2),
                bind(&stats, 3),
                bind(&step, 4),
            ],
        });
        Ok(Arenas {
            params,
            grads,
            acts,
            stats,
            step,
            group,
        })
    }

    /// Records `dispatches` in one compute pass of one command buffer and submits it.
    pub fn submit(&self, gpu: &Gpu, dispatches: &[&[Dispatch]]) {
        let mut enc = gpu
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("step"),
            });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
            pass.set_bind_group(0, &self.group, &[]);
            for d in dispatches.iter().flat_map(|d| d.iter()) {
                if let Some(g) = &d.group1 {
                    pass.set_bind_group(1, g, &[]);
                }
                pass.set_pipeline(&d.pipeline);
                pass.dispatch_workgroups(d.groups[0], d.groups[1], d.groups[2]);
            }
        }
        gpu.queue.submit([enc.finish()]);
    }
}

fn bind(b: &wgpu::Buffer, i: u32) -> wgpu::BindGroupEntry<'_> {
    wgpu::BindGroupEntry {
        binding: i,
        resource: b.as_entire_binding(),
    }
}

/// Bind group 1 of Adam over two moment buffers.
pub fn optimizer_group(
    gpu: &Gpu,
    k: &Kernels,
    m: &wgpu::Buffer,
    v: &wgpu::Buffer,
) -> wgpu::BindGroup {
    gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("optimizer"),
        layout: &k.optimizer,
        entries: &[bind(m, 0), bind(v, 1)],
    })
}
