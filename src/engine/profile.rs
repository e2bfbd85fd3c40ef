//! Timing each dispatch of a training step on its own (for `lamp bench`): GPU timestamps where
//! the adapter has them, host clocks around submit and wait otherwise.

use super::Engine;
use crate::error::Result;
use crate::kernels::Dispatch;

impl Engine {
    /// Times each dispatch of a training step of `batch` on its own, median of `reps` runs:
    /// (label, seconds, useful FLOPs or 0). With GPU timestamp queries (where the adapter has
    /// them) the time is the compute pass's own, from timestamps written at its beginning and
    /// end; otherwise host clocks around submit and wait.
    pub fn profile_step(&mut self, batch: usize, reps: usize) -> Result<Vec<(String, f64, f64)>> {
        self.training_plan(batch)?;
        let timestamps = self
            .device
            .features
            .contains(wgpu::Features::TIMESTAMP_QUERY);
        let dev = &self.device.device;
        let (qs, resolve) = if timestamps {
            let qs = dev.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("profile"),
                ty: wgpu::QueryType::Timestamp,
                count: 2,
            });
            let buf = dev.create_buffer(&wgpu::BufferDescriptor {
                label: Some("timestamps"),
                size: 16,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            (Some(qs), Some(buf))
        } else {
            (None, None)
        };
        let period_ns = self.device.queue.get_timestamp_period() as f64;
        let plan = &self.plans[&batch];
        let (loss, backward) = plan
            .training
            .as_ref()
            .map_or((&[][..], &[][..]), |t| (&t.loss[..], &t.backward[..]));
        let all: Vec<&Dispatch> = plan
            .gather
            .iter()
            .chain(&plan.forward)
            .chain(loss)
            .chain(backward)
            .chain(std::iter::once(self.optimizer_step()))
            .collect();
        let mut out = Vec::new();
        for d in &all {
            let mut times = Vec::with_capacity(reps);
            for _ in 0..reps.max(1) {
                let t0 = std::time::Instant::now();
                let mut enc = dev.create_command_encoder(&Default::default());
                {
                    let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: Some("profile"),
                        timestamp_writes: qs.as_ref().map(|q| wgpu::ComputePassTimestampWrites {
                            query_set: q,
                            beginning_of_pass_write_index: Some(0),
                            end_of_pass_write_index: Some(1),
                        }),
                    });
                    pass.set_bind_group(0, &self.arenas.group, &[]);
                    if let Some(g) = &d.group1 {
                        pass.set_bind_group(1, g, &[]);
                    }
                    pass.set_pipeline(&d.pipeline);
                    pass.dispatch_workgroups(d.groups[0], d.groups[1], d.groups[2]);
                }
                if let (Some(q), Some(r)) = (&qs, &resolve) {
                    enc.resolve_query_set(q, 0..2, r, 0);
                }
                self.device.queue.submit([enc.finish()]);
                self.device.wait()?;
                let host = t0.elapsed().as_secs_f64();
                let t = match &resolve {
                    Some(r) => {
                        let b = self.device.read_bytes(r, 0, 16)?;
                        let ts: &[u64] = bytemuck::cast_slice(&b);
                        let dt = ts[1].wrapping_sub(ts[0]) as f64 * period_ns * 1e-9;
                        // A driver whose timestamps do not advance falls back to host time.
                        if dt > 0.0 && dt <= host {
                            dt
                        } else {
                            host
                        }
                    }
                    None => host,
                };
                times.push(t);
            }
            times.sort_by(f64::total_cmp);
            out.push((d.label.clone(), times[times.len() / 2], d.flops));
        }
        Ok(out)
    }

    /// Whether `profile_step` times with GPU timestamps.
    pub fn has_timestamps(&self) -> bool {
        self.device
            .features
            .contains(wgpu::Features::TIMESTAMP_QUERY)
    }
}
