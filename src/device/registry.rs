//! The shader registry: the one place that builds bind-group layouts, shader modules and
//! pipelines. Layouts are explicit and shared, so one arena bind group feeds every kernel;
//! modules are compiled on first use and pipelines cached by (shader, entry point, constants).
//!
//! Bind groups:
//!   group 0, the arenas: 0 params, 1 grads, 2 acts, 3 stats (storage), 4 step (uniform),
//!            5 acts and 6 params again, as vec4s (the GEMM's vec4 paths). The two views of a
//!            buffer are both writable, which wgpu allows; a kernel must never read through one
//!            view what it writes through the other in the same launch (none does: the GEMM
//!            reads G, Q, H and weights and writes Q or partial sums, pack.wgsl reads the
//!            parameters and writes past them).
//!   group 1 of the optimizer: 0 exp_avg, 1 exp_avg_sq;   group 1 of gather: 0 data chunk, 1 indices;
//!   group 1 of pack.wgsl (the `Data` layout): 0 and 1 both its index table
//!
//! The registry knows no shader by name: each kernel family describes its source in a
//! `ShaderSource` (kernels/), and the registry compiles whatever it is handed.

use super::Device;
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The bind group 1 a shader's pipelines take (group 0 is always the arenas).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Group1 {
    None,
    /// The optimizer's two state buffers.
    Optimizer,
    /// A chunk of the device-resident data set and the epoch's order (also pack.wgsl's index
    /// table, bound twice).
    Data,
}

/// A shader: the files it is built from (named in errors) and its whole WGSL text.
pub struct ShaderSource {
    pub files: &'static str,
    pub text: fn() -> String,
    pub group1: Group1,
}

/// A pipeline's override constants: (name, value).
pub type Constants = Vec<(&'static str, f64)>;

#[derive(PartialEq, Eq, Hash)]
struct Key {
    shader: &'static str,
    entry: &'static str,
    constants: Vec<(&'static str, u64)>,
}

/// Layouts, compiled modules and compiled pipelines of one device (in memory; the driver's cache on
/// disk is `pipeline_cache`).
pub struct Registry {
    pub arenas: wgpu::BindGroupLayout,
    pub optimizer: wgpu::BindGroupLayout,
    pub data: wgpu::BindGroupLayout,
    layouts: HashMap<Group1, wgpu::PipelineLayout>,
    modules: Mutex<HashMap<&'static str, Arc<wgpu::ShaderModule>>>,
    pipelines: Mutex<HashMap<Key, Arc<wgpu::ComputePipeline>>>,
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

impl Registry {
    pub(super) fn new(dev: &wgpu::Device) -> Registry {
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
                // acts and params again as vec4s (prelude.wgsl)
                storage_entry(5),
                storage_entry(6),
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
            (Group1::None, None),
            (Group1::Optimizer, Some(&optimizer)),
            (Group1::Data, Some(&data)),
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
        Registry {
            arenas,
            optimizer,
            data,
            layouts,
            modules: Mutex::new(HashMap::new()),
            pipelines: Mutex::new(HashMap::new()),
        }
    }
}

/// Parses and validates a shader with naga, as wgpu will, and returns its module: tests use it so
/// that a broken shader fails `cargo test`, and so that they can read its overrides and types;
/// the registry, so that errors name the file.
pub fn validate(shader: &ShaderSource) -> std::result::Result<naga::Module, String> {
    let text = (shader.text)();
    let module = naga::front::wgsl::parse_str(&text)
        .map_err(|e| e.emit_to_string_with_path(&text, shader.files))?;
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::all(),
    )
    .validate(&module)
    .map_err(|e| e.emit_to_string_with_path(&text, shader.files))?;
    Ok(module)
}

impl Device {
    fn module(&self, shader: &'static ShaderSource) -> Result<Arc<wgpu::ShaderModule>> {
        let mut modules = self
            .registry
            .modules
            .lock()
            .map_err(|_| Error::Device("shader cache".into()))?;
        if let Some(m) = modules.get(shader.files) {
            return Ok(m.clone());
        }
        validate(shader)
            .map_err(|e| Error::Device(format!("shader {} is invalid:\n{e}", shader.files)))?;
        let text = (shader.text)();
        let m = self.checked(shader.files, || {
            self.device
                .create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(shader.files),
                    source: wgpu::ShaderSource::Wgsl(text.into()),
                })
        })?;
        let m = Arc::new(m);
        modules.insert(shader.files, m.clone());
        Ok(m)
    }

    /// The pipeline for `shader::entry` specialised with `constants`, built once and cached.
    pub fn pipeline(
        &self,
        shader: &'static ShaderSource,
        entry: &'static str,
        constants: &[(&'static str, f64)],
    ) -> Result<Arc<wgpu::ComputePipeline>> {
        let key = Key {
            shader: shader.files,
            entry,
            constants: constants.iter().map(|(k, v)| (*k, v.to_bits())).collect(),
        };
        if let Some(p) = self
            .registry
            .pipelines
            .lock()
            .map_err(|_| Error::Device("the map of compiled pipelines".into()))?
            .get(&key)
        {
            return Ok(p.clone());
        }
        let module = self.module(shader)?;
        let layout = &self.registry.layouts[&shader.group1];
        let t0 = std::time::Instant::now();
        let p = self.checked(&format!("{}::{entry}", shader.files), || {
            self.device
                .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(entry),
                    layout: Some(layout),
                    module: &module,
                    entry_point: Some(entry),
                    compilation_options: wgpu::PipelineCompilationOptions {
                        constants,
                        zero_initialize_workgroup_memory: false,
                    },
                    cache: self.pipeline_cache.as_ref().map(|c| &c.cache),
                })
        })?;
        if let Some(c) = &self.pipeline_cache {
            c.touch();
        }
        log::debug!(
            "pipeline {}::{entry} compiled in {:.1} ms",
            shader.files,
            t0.elapsed().as_secs_f64() * 1e3
        );
        let p = Arc::new(p);
        self.registry
            .pipelines
            .lock()
            .map_err(|_| Error::Device("the map of compiled pipelines".into()))?
            .insert(key, p.clone());
        Ok(p)
    }
}
