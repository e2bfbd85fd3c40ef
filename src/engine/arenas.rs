//! The arenas: the five buffers of bind group 0 (parameters, gradients, activations, loss
//! statistics, step uniform) and the group itself. The engine owns one; tests and benches make
//! their own to launch single kernels on random data.

use crate::device::Device;
use crate::error::Result;
use crate::kernels::{Dispatch, StepUniform};

pub struct Arenas {
    /// `[P]`: every parameter tensor, laid out by the model's `ParamTable`; past them (from P
    /// rounded up to 4) the weights packed for the GEMM's vec4 path (kernels::pack), which the
    /// optimizer and checkpoints never see.
    pub params: wgpu::Buffer,
    /// `[P]`: their gradients, same layout.
    pub grads: wgpu::Buffer,
    /// Activations, their gradients, the batch input and scratch (engine::layout::ActLayout).
    pub acts: wgpu::Buffer,
    /// The stats header and per-sample sections (kernels::prelude::Stat).
    pub stats: wgpu::Buffer,
    pub step: wgpu::Buffer,
    pub group: wgpu::BindGroup,
}

impl Arenas {
    /// Allocates arenas of the given lengths (f32 elements).
    pub fn new(dev: &Device, params: usize, acts: usize, stats: usize) -> Result<Arenas> {
        Arenas::with_packed(dev, params, 0, acts, stats)
    }

    /// As `new`, with room for `packed` floats of packed weights after the parameters.
    pub fn with_packed(
        dev: &Device,
        params: usize,
        packed: usize,
        acts: usize,
        stats: usize,
    ) -> Result<Arenas> {
        let (params, grads, acts, stats, step) = dev.checked("allocating arenas", || {
            (
                dev.storage("params", params.next_multiple_of(4) + packed),
                dev.storage("grads", params),
                dev.storage("acts", acts),
                dev.storage("stats", stats),
                dev.uniform("step", std::mem::size_of::<StepUniform>() as u64),
            )
        })?;
        let group = dev.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("arenas"),
            layout: &dev.registry.arenas,
            entries: &[
                bind(&params, 0),
                bind(&grads, 1),
                bind(&acts, 2),
                bind(&stats, 3),
                bind(&step, 4),
                bind(&acts, 5),
                bind(&params, 6),
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
    pub fn submit(&self, dev: &Device, dispatches: &[&[Dispatch]]) -> wgpu::SubmissionIndex {
        let enc = self.record(dev, dispatches);
        dev.queue.submit([enc.finish()])
    }

    /// A command encoder holding `dispatches` in one compute pass, for a caller that adds
    /// copies after them.
    pub fn record(&self, dev: &Device, dispatches: &[&[Dispatch]]) -> wgpu::CommandEncoder {
        let mut enc = dev
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("step"),
            });
        self.record_pass(&mut enc, dispatches);
        enc
    }

    /// Appends one compute pass of `dispatches` to `enc` (several steps go in one encoder).
    pub fn record_pass(&self, enc: &mut wgpu::CommandEncoder, dispatches: &[&[Dispatch]]) {
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
}

fn bind(b: &wgpu::Buffer, i: u32) -> wgpu::BindGroupEntry<'_> {
    wgpu::BindGroupEntry {
        binding: i,
        resource: b.as_entire_binding(),
    }
}

/// A group-1 bind group of two storage buffers with `layout` (the registry's): the optimizer's
/// state (exp_avg, exp_avg_sq), or a data chunk and the epoch's order.
pub fn pair_group(
    dev: &Device,
    layout: &wgpu::BindGroupLayout,
    a: &wgpu::Buffer,
    b: &wgpu::Buffer,
) -> wgpu::BindGroup {
    dev.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("group 1"),
        layout,
        entries: &[bind(a, 0), bind(b, 1)],
    })
}
