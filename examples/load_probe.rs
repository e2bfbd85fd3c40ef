//! What a load costs on this device: one 1024³ GEMM with the same register block (32 rows × 4
//! columns per invocation, A's rows by subgroup broadcast) and three ways of reading B — four
//! `f32` storage loads (lamp's gemm.wgsl), one `vec4<f32>` storage load, one `rgba32float` texel,
//! and the texel or the vec4 with A also read 4 values of k at a time (load_probe/gemm.wgsl). Checked against a CPU product on sampled entries, then timed (median of
//! 7 after a warm-up, submit + wait). `cargo run --release --example load_probe`.

use lamp::device::Device;
use std::time::Instant;
use wgpu::util::DeviceExt;

const N: usize = 1024;

fn main() -> lamp::Result<()> {
    let g = Device::shared(None)?;
    let (dev, queue) = (&g.device, &g.queue);
    println!("device: {}", g.describe());
    if !g.features.contains(wgpu::Features::SUBGROUP) || g.subgroup_sizes.0 < 8 {
        println!("the probe's kernels share A by subgroup broadcast: this device has no subgroups of 8 or more lanes");
        return Ok(());
    }
    let mut s = 0x2545_f491_4f6c_dd1du64;
    let mut rand = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let a: Vec<f32> = (0..N * N).map(|_| rand()).collect();
    let b: Vec<f32> = (0..N * N).map(|_| rand()).collect();
    let storage = |data: &[f32]| {
        dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents: bytemuck::cast_slice(data),
            usage: wgpu::BufferUsages::STORAGE,
        })
    };
    let (a_buf, b_buf) = (storage(&a), storage(&b));
    let c_buf = dev.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: (N * N * 4) as u64,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let tex = dev.create_texture_with_data(
        queue,
        &wgpu::TextureDescriptor {
            label: None,
            size: wgpu::Extent3d {
                width: (N / 4) as u32,
                height: N as u32,
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::Rgba32Float,
            usage: wgpu::TextureUsages::TEXTURE_BINDING,
            view_formats: &[],
        },
        wgpu::util::TextureDataOrder::LayerMajor,
        bytemuck::cast_slice(&b),
    );
    let view = tex.create_view(&Default::default());
    let module = dev.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("load_probe"),
        source: wgpu::ShaderSource::Wgsl(include_str!("load_probe/gemm.wgsl").into()),
    });
    // One layout for every form: all six bindings (the forms differ by a pipeline constant).
    let storage_entry = |binding: u32, read_only: bool| wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    };
    let bgl = dev.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: None,
        entries: &[
            storage_entry(0, true),
            storage_entry(1, true),
            storage_entry(2, true),
            wgpu::BindGroupLayoutEntry {
                binding: 3,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Texture {
                    sample_type: wgpu::TextureSampleType::Float { filterable: false },
                    view_dimension: wgpu::TextureViewDimension::D2,
                    multisampled: false,
                },
                count: None,
            },
            storage_entry(4, false),
            storage_entry(5, true),
        ],
    });
    let layout = dev.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: None,
        bind_group_layouts: &[Some(&bgl)],
        immediate_size: 0,
    });
    // A and B as storage (A twice: as f32 and as vec4), B as a texture, C.
    let resources = [
        a_buf.as_entire_binding(),
        b_buf.as_entire_binding(),
        b_buf.as_entire_binding(),
        wgpu::BindingResource::TextureView(&view),
        c_buf.as_entire_binding(),
        a_buf.as_entire_binding(),
    ];
    let bg = dev.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &bgl,
        entries: &resources
            .into_iter()
            .enumerate()
            .map(|(i, resource)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource,
            })
            .collect::<Vec<_>>(),
    });
    for (form, name) in ["scalar", "vec4", "texture", "texture_a4", "vec4_a4"]
        .into_iter()
        .enumerate()
    {
        let p = dev.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(name),
            layout: Some(&layout),
            module: &module,
            entry_point: Some("main"),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: &[("FORM", form as f64)],
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        });
        let run = || {
            let mut enc = dev.create_command_encoder(&Default::default());
            {
                let mut pass = enc.begin_compute_pass(&Default::default());
                pass.set_pipeline(&p);
                pass.set_bind_group(0, &bg, &[]);
                pass.dispatch_workgroups((N / 256) as u32, (N / 32) as u32, 1);
            }
            queue.submit([enc.finish()]);
            g.wait()
        };
        run()?;
        let c = g.read_f32(&c_buf, 0, N * N)?;
        let mut worst = 0.0f64;
        for i in (0..N * N).step_by(4099) {
            let (m, n) = (i / N, i % N);
            let r: f64 = (0..N)
                .map(|k| a[m * N + k] as f64 * b[k * N + n] as f64)
                .sum();
            worst = worst.max((c[i] as f64 - r).abs());
        }
        let mut t: Vec<f64> = (0..7)
            .map(|_| {
                let t0 = Instant::now();
                run().map(|_| t0.elapsed().as_secs_f64())
            })
            .collect::<lamp::Result<_>>()?;
        t.sort_by(f64::total_cmp);
        println!(
            "{name:10} {:6.2} GFLOP/s (median {:.1} ms), largest error {worst:.1e}",
            2.0 * (N * N * N) as f64 / t[3] / 1e9,
            t[3] * 1e3
        );
    }
    Ok(())
}
