//! The host scheduler: owns the arenas (parameters, gradients, Adam's two moments, activations,
//! loss statistics), the device-resident data set, and per-batch-size plans of dispatches built
//! once. A training step (gather, forward, loss, backward, Adam) is one command buffer, submitted
//! without waiting; the loss statistics are read back only when asked.

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::kernels::{self, Dispatch, Kernels, LossConfig, LossSpec, StepUniform};
use crate::layers::{self, LayerOffsets};
use crate::model::{Arch, Layer, ParamTable};
use crate::reference::AdamConfig;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Offsets (f32 elements) of every activation tensor, laid out for `max_batch` samples.
#[derive(Clone, Debug)]
pub struct ActLayout {
    pub x: usize,
    /// Post-activation output of each layer.
    pub h: Vec<usize>,
    /// Gradient with respect to each layer's pre-activation output.
    pub dz: Vec<usize>,
    /// SSIM scratch (5 maps per sample).
    pub scratch: usize,
    /// Split-K partial sums of the small weight gradients (kernels::SPLIT_K_SCRATCH, not per
    /// sample).
    pub partials: usize,
    pub len: usize,
}

impl ActLayout {
    pub fn new(
        layers: &[Layer],
        input_len: usize,
        scratch_per_sample: usize,
        max_batch: usize,
    ) -> ActLayout {
        let mut at = 0;
        let mut take = |n: usize| {
            let o = at;
            at += n * max_batch;
            o
        };
        let x = take(input_len);
        let h = layers.iter().map(|l| take(l.out_len())).collect();
        let dz = layers.iter().map(|l| take(l.out_len())).collect();
        let scratch = take(scratch_per_sample);
        let partials = at;
        at += kernels::SPLIT_K_SCRATCH;
        ActLayout {
            x,
            h,
            dz,
            scratch,
            partials,
            len: at,
        }
    }
}

/// The dispatches for one batch size.
struct Plan {
    forward: Vec<Dispatch>,
    loss: Vec<Dispatch>,
    score_loss: Vec<Dispatch>,
    backward: Vec<Dispatch>,
    gather: Vec<Dispatch>,
}

/// The training set on the device, in chunks that each fit one binding.
struct DeviceData {
    n: usize,
    chunks: Vec<(u32, u32, wgpu::BindGroup, wgpu::Buffer)>,
    indices: wgpu::Buffer,
}

/// A training set streamed from host memory: each step's batch is assembled on the host (while
/// the device runs the previous step) and written into the activation arena.
struct HostData {
    samples: Vec<f32>,
    n: usize,
    order: Vec<u32>,
    batch: Vec<f32>,
}

/// The loss statistics header (see loss.wgsl).
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    pub loss: f32,
    /// Mean loss over the steps since the last reset.
    pub mean_loss: f32,
    pub steps: u32,
    pub clamps_total: u64,
    pub nonfinite: bool,
    pub clamps_last: u64,
}

struct Staging {
    buf: wgpu::Buffer,
    ready: Arc<AtomicBool>,
    pending: bool,
}

pub struct Engine {
    pub gpu: Arc<Gpu>,
    pub kernels: Arc<Kernels>,
    pub arch: Arch,
    pub table: ParamTable,
    pub loss: LossConfig,
    pub adam: AdamConfig,
    pub max_batch: usize,
    pub layout: ActLayout,
    /// Optimizer steps taken.
    pub t: u32,
    /// Use SGD with momentum 0.9 (lr from `adam.lr`) instead of Adam.
    pub sgd: bool,
    pub arenas: kernels::Arenas,
    pub exp_avg: wgpu::Buffer,
    pub exp_avg_sq: wgpu::Buffer,
    adam_dispatch: Dispatch,
    sgd_dispatch: Dispatch,
    data: Option<DeviceData>,
    /// A training set kept on the host and streamed batch by batch (when it does not fit).
    stream: Option<HostData>,
    plans: HashMap<usize, Plan>,
    staging: Staging,
}

impl Engine {
    /// Allocates every arena once for batches of up to `max_batch` and uploads `params`.
    pub fn new(
        gpu: Arc<Gpu>,
        kernels: Arc<Kernels>,
        arch: Arch,
        loss: LossConfig,
        max_batch: usize,
        params: &[f32],
    ) -> Result<Engine> {
        arch.check()?;
        if max_batch == 0 {
            return Err(Error::invalid("batch size must be at least 1"));
        }
        let table = arch.param_table();
        if params.len() != table.len() {
            return Err(Error::invalid(format!(
                "parameter arena has {} values, {} needs {}",
                params.len(),
                arch.name,
                table.len()
            )));
        }
        let layout = Self::layout(&arch, loss, max_batch);
        let fits = Self::fitting_batch(&gpu, &arch, loss, usize::MAX);
        if max_batch > fits {
            return Err(Error::invalid(format!(
                "batch {max_batch} needs {} MiB of activations, more than the device binds ({} MiB); \
                 at most {fits} samples per batch fit",
                (layout.len as u64 * 4) >> 20,
                gpu.limits.max_storage_buffer_binding_size >> 20,
            )));
        }
        let d = &gpu.device;
        let arenas = kernels::Arenas::new(
            &gpu,
            &kernels,
            table.len(),
            layout.len,
            kernels::stats_len(max_batch),
        )?;
        let (exp_avg, exp_avg_sq) = gpu.checked("allocating Adam's moments", || {
            (
                gpu.storage("exp_avg", table.len()),
                gpu.storage("exp_avg_sq", table.len()),
            )
        })?;
        gpu.queue
            .write_buffer(&arenas.params, 0, bytemuck::cast_slice(params));
        let optimizer = kernels::optimizer_group(&gpu, &kernels, &exp_avg, &exp_avg_sq);
        let mut adam_dispatch = kernels::adam_dispatch(&gpu, &kernels, table.len() as u32)?;
        adam_dispatch.group1 = Some(optimizer.clone());
        let mut sgd_dispatch =
            kernels::optimizer_dispatch(&gpu, &kernels, table.len() as u32, "sgd")?;
        sgd_dispatch.group1 = Some(optimizer);
        let staging = Staging {
            buf: d.create_buffer(&wgpu::BufferDescriptor {
                label: Some("stats readback"),
                size: (kernels::STATS_HEADER * 4) as u64,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
            ready: Arc::new(AtomicBool::new(false)),
            pending: false,
        };
        let mut e = Engine {
            gpu,
            kernels,
            arch,
            table,
            loss,
            adam: AdamConfig::default(),
            max_batch,
            layout,
            t: 0,
            sgd: false,
            arenas,
            exp_avg,
            exp_avg_sq,
            adam_dispatch,
            sgd_dispatch,
            data: None,
            stream: None,
            plans: HashMap::new(),
            staging,
        };
        e.reset_stats();
        e.plan(max_batch)?;
        Ok(e)
    }

    fn layout(arch: &Arch, loss: LossConfig, batch: usize) -> ActLayout {
        let scratch = if loss.metric == kernels::Metric::Ssim {
            LossSpec::scratch_per_sample(arch.input_shape())
        } else {
            0
        };
        ActLayout::new(&arch.layers(), arch.input_len(), scratch, batch)
    }

    /// The largest batch up to `want` whose activations fit one storage binding (and 32-bit
    /// indexing) on this device.
    pub fn fitting_batch(gpu: &Gpu, arch: &Arch, loss: LossConfig, want: usize) -> usize {
        // Per-sample regions end where the fixed split-K scratch begins.
        let one = Self::layout(arch, loss, 1);
        let (per_sample, fixed) = (one.partials as u64, (one.len - one.partials) as u64);
        let limit = (gpu.limits.max_storage_buffer_binding_size / 4).min(u32::MAX as u64);
        let room = limit.saturating_sub(fixed);
        (room / per_sample.max(1)).min(want as u64) as usize
    }

    fn offsets(&self, li: usize) -> LayerOffsets {
        let layers = self.arch.layers();
        let l = &layers[li];
        let w = &self.table.entries[2 * li];
        let b = &self.table.entries[2 * li + 1];
        debug_assert_eq!(w.name, format!("{}.weight", l.name));
        LayerOffsets {
            weight: w.offset as u32,
            bias: b.offset as u32,
            input: if li == 0 {
                self.layout.x
            } else {
                self.layout.h[li - 1]
            } as u32,
            output: self.layout.h[li] as u32,
            dz: self.layout.dz[li] as u32,
        }
    }

    /// Builds (once) the dispatches for batches of `batch` samples.
    fn plan(&mut self, batch: usize) -> Result<()> {
        if self.plans.contains_key(&batch) {
            return Ok(());
        }
        if batch == 0 || batch > self.max_batch {
            return Err(Error::invalid(format!(
                "batch {batch} is outside 1..={}",
                self.max_batch
            )));
        }
        let (gpu, k) = (&*self.gpu, &*self.kernels);
        let b = batch as u32;
        let layers = self.arch.layers();
        let n = layers.len();
        let mut forward = Vec::new();
        for (li, l) in layers.iter().enumerate() {
            forward.push(layers::forward(l, b, &self.offsets(li)).dispatch(
                gpu,
                k,
                format!("{} forward", l.name),
            )?);
        }
        let spec = |grad| LossSpec {
            loss: self.loss,
            batch: b,
            stats_batch: self.max_batch as u32,
            shape: self.arch.input_shape(),
            x_off: self.layout.x as u32,
            y_off: self.layout.h[n - 1] as u32,
            dz_off: self.layout.dz[n - 1] as u32,
            scratch_off: self.layout.scratch as u32,
            grad,
        };
        let loss = spec(true).dispatches(gpu, k)?;
        let score_loss = spec(false).dispatches(gpu, k)?;
        let mut backward = Vec::new();
        for li in (0..n).rev() {
            let l = &layers[li];
            let o = self.offsets(li);
            backward.extend(
                layers::weight_grad(l, b, &o)
                    .with_split_k(self.layout.partials as u32)
                    .dispatches(gpu, k, &format!("{} weight grad", l.name))?,
            );
            backward.push(layers::bias_grad(l, b, &o).dispatch(
                gpu,
                k,
                format!("{} bias grad", l.name),
            )?);
            if li > 0 {
                let below = layers[li - 1].act;
                let dz_below = self.layout.dz[li - 1] as u32;
                let spec = layers::input_grad(l, b, &o, dz_below, below);
                backward.push(spec.dispatch(gpu, k, format!("{} input grad", l.name))?);
            }
        }
        let gather = self.gather_dispatches(b)?;
        self.plans.insert(
            batch,
            Plan {
                forward,
                loss,
                score_loss,
                backward,
                gather,
            },
        );
        Ok(())
    }

    fn gather_dispatches(&self, b: u32) -> Result<Vec<Dispatch>> {
        let Some(data) = &self.data else {
            return Ok(Vec::new());
        };
        let mut v = Vec::new();
        for (start, len, bg, _) in &data.chunks {
            let mut d = kernels::gather_dispatch(
                &self.gpu,
                &self.kernels,
                self.arch.input_len() as u32,
                b,
                self.layout.x as u32,
                (*start, *len),
            )?;
            d.group1 = Some(bg.clone());
            v.push(d);
        }
        Ok(v)
    }

    /// Puts the training set on the device (`n` samples of the model's input length), split in
    /// chunks that each fit one storage binding.
    pub fn upload_dataset(&mut self, samples: &[f32], n: usize) -> Result<()> {
        let p = self.arch.input_len();
        if samples.len() != n * p || n == 0 {
            return Err(Error::invalid(format!(
                "data set of {n} samples needs {} values",
                n * p
            )));
        }
        let per_chunk =
            (self.gpu.limits.max_storage_buffer_binding_size / (p as u64 * 4)).max(1) as usize;
        let mut chunks = Vec::new();
        let mut start = 0;
        while start < n {
            let len = per_chunk.min(n - start);
            let buf = self.gpu.checked("uploading the data set", || {
                self.gpu.storage("data", len * p)
            })?;
            self.gpu.queue.write_buffer(
                &buf,
                0,
                bytemuck::cast_slice(&samples[start * p..(start + len) * p]),
            );
            chunks.push((start as u32, len as u32, buf));
            start += len;
        }
        let indices = self.gpu.storage("indices", n);
        let chunks = chunks
            .into_iter()
            .map(|(s, l, buf)| {
                let bg = self
                    .gpu
                    .device
                    .create_bind_group(&wgpu::BindGroupDescriptor {
                        label: Some("data"),
                        layout: &self.kernels.data,
                        entries: &[
                            wgpu::BindGroupEntry {
                                binding: 0,
                                resource: buf.as_entire_binding(),
                            },
                            wgpu::BindGroupEntry {
                                binding: 1,
                                resource: indices.as_entire_binding(),
                            },
                        ],
                    });
                (s, l, bg, buf)
            })
            .collect();
        self.data = Some(DeviceData { n, chunks, indices });
        // Plans made before the data set existed have no gather: rebuild them.
        let sizes: Vec<usize> = self.plans.keys().copied().collect();
        for s in sizes {
            let g = self.gather_dispatches(s as u32)?;
            if let Some(plan) = self.plans.get_mut(&s) {
                plan.gather = g;
            }
        }
        Ok(())
    }

    /// Puts the training set on the device when it takes at most `device_limit` bytes, and
    /// otherwise keeps it on the host and streams it. Returns whether it is resident.
    pub fn set_dataset(&mut self, samples: Vec<f32>, n: usize, device_limit: u64) -> Result<bool> {
        let p = self.arch.input_len();
        if samples.len() != n * p || n == 0 {
            return Err(Error::invalid(format!(
                "data set of {n} samples needs {} values",
                n * p
            )));
        }
        if (samples.len() as u64) * 4 <= device_limit {
            self.upload_dataset(&samples, n)?;
            return Ok(true);
        }
        let batch = Vec::with_capacity(self.max_batch * p);
        self.stream = Some(HostData {
            samples,
            n,
            order: Vec::new(),
            batch,
        });
        Ok(false)
    }

    /// Sets the order in which the data set is visited (one epoch).
    pub fn set_order(&mut self, order: &[u32]) -> Result<()> {
        if let Some(h) = &mut self.stream {
            if order.len() > h.n || order.iter().any(|&i| i as usize >= h.n) {
                return Err(Error::invalid(
                    "epoch order refers to samples outside the data set",
                ));
            }
            h.order = order.to_vec();
            return Ok(());
        }
        let data = self
            .data
            .as_ref()
            .ok_or_else(|| Error::invalid("no data set on the device"))?;
        if order.len() > data.n || order.iter().any(|&i| i as usize >= data.n) {
            return Err(Error::invalid(
                "epoch order refers to samples outside the data set",
            ));
        }
        self.gpu
            .queue
            .write_buffer(&data.indices, 0, bytemuck::cast_slice(order));
        Ok(())
    }

    fn write_step(&mut self, batch_offset: u32) {
        self.t += 1;
        let u = if self.sgd {
            StepUniform::sgd(
                self.adam.lr,
                0.9,
                self.adam.weight_decay,
                self.t,
                batch_offset,
            )
        } else {
            StepUniform::adam(&self.adam, self.t, batch_offset)
        };
        self.gpu
            .queue
            .write_buffer(&self.arenas.step, 0, bytemuck::bytes_of(&u));
    }

    fn submit(&self, dispatches: &[&[Dispatch]]) {
        self.arenas.submit(&self.gpu, dispatches);
    }

    /// One training step on the batch at `batch_offset` of the epoch order: gather, forward,
    /// loss, backward and Adam in one submit. Does not wait.
    pub fn train_step(&mut self, batch_offset: usize, batch: usize) -> Result<()> {
        if let Some(mut h) = self.stream.take() {
            let result = self.stream_step(&mut h, batch_offset, batch);
            self.stream = Some(h);
            return result;
        }
        let data_n = self
            .data
            .as_ref()
            .map(|d| d.n)
            .ok_or_else(|| Error::invalid("no data set on the device"))?;
        if batch_offset + batch > data_n {
            return Err(Error::invalid("batch runs past the end of the data set"));
        }
        self.plan(batch)?;
        self.write_step(batch_offset as u32);
        let plan = &self.plans[&batch];
        let adam = std::slice::from_ref(self.optimizer_dispatch());
        self.submit(&[
            &plan.gather,
            &plan.forward,
            &plan.loss,
            &plan.backward,
            adam,
        ]);
        Ok(())
    }

    fn optimizer_dispatch(&self) -> &Dispatch {
        if self.sgd {
            &self.sgd_dispatch
        } else {
            &self.adam_dispatch
        }
    }

    /// Times each dispatch of a training step of `batch` on its own, median of `reps` runs:
    /// (label, seconds, useful FLOPs or 0). With GPU timestamp queries (where the adapter has
    /// them) the time is the compute pass's own, from timestamps written at its beginning and
    /// end; otherwise host clocks around submit and wait.
    pub fn profile_step(&mut self, batch: usize, reps: usize) -> Result<Vec<(String, f64, f64)>> {
        self.plan(batch)?;
        let timestamps = self.gpu.features.contains(wgpu::Features::TIMESTAMP_QUERY);
        let dev = &self.gpu.device;
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
        let period_ns = self.gpu.queue.get_timestamp_period() as f64;
        let plan = &self.plans[&batch];
        let all: Vec<&Dispatch> = plan
            .gather
            .iter()
            .chain(&plan.forward)
            .chain(&plan.loss)
            .chain(&plan.backward)
            .chain(std::iter::once(self.optimizer_dispatch()))
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
                self.gpu.queue.submit([enc.finish()]);
                self.gpu.wait()?;
                let host = t0.elapsed().as_secs_f64();
                let t = match &resolve {
                    Some(r) => {
                        let b = self.gpu.read_bytes(r, 0, 16)?;
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

    fn stream_step(&mut self, h: &mut HostData, batch_offset: usize, batch: usize) -> Result<()> {
        if batch_offset + batch > h.order.len() {
            return Err(Error::invalid("batch runs past the end of the epoch order"));
        }
        let p = self.arch.input_len();
        h.batch.clear();
        for &i in &h.order[batch_offset..batch_offset + batch] {
            h.batch
                .extend_from_slice(&h.samples[i as usize * p..(i as usize + 1) * p]);
        }
        self.upload_batch(&h.batch, batch)?;
        self.grad_step(batch, true)
    }

    /// Whether `profile_step` times with GPU timestamps.
    pub fn has_timestamps(&self) -> bool {
        self.gpu.features.contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// Number of dispatches and submits in one training step of `batch`.
    pub fn step_dispatches(&mut self, batch: usize) -> Result<usize> {
        self.plan(batch)?;
        let p = &self.plans[&batch];
        Ok(p.gather.len() + p.forward.len() + p.loss.len() + p.backward.len() + 1)
    }

    /// Useful FLOPs of one training step (forward, backward data and weight grads).
    pub fn step_flops(&self, batch: usize) -> f64 {
        self.arch.layers().iter().map(|l| l.macs()).sum::<f64>() * 2.0 * 3.0 * batch as f64
    }

    /// Puts a batch `x` [batch, C, H, W] into the activation arena's input.
    pub fn upload_batch(&mut self, x: &[f32], batch: usize) -> Result<()> {
        if x.len() != batch * self.arch.input_len() {
            return Err(Error::invalid(format!(
                "batch of {batch} needs {} values, got {}",
                batch * self.arch.input_len(),
                x.len()
            )));
        }
        self.plan(batch)?;
        self.gpu.queue.write_buffer(
            &self.arenas.acts,
            (self.layout.x * 4) as u64,
            bytemuck::cast_slice(x),
        );
        Ok(())
    }

    /// Forward, loss and backward on the uploaded batch; `update` adds an Adam step.
    pub fn grad_step(&mut self, batch: usize, update: bool) -> Result<()> {
        self.plan(batch)?;
        if update {
            self.write_step(0);
        }
        let plan = &self.plans[&batch];
        let adam: &[Dispatch] = if update {
            std::slice::from_ref(self.optimizer_dispatch())
        } else {
            &[]
        };
        self.submit(&[&plan.forward, &plan.loss, &plan.backward, adam]);
        Ok(())
    }

    /// Forward pass and per-sample errors of the uploaded batch (no gradient).
    pub fn score_step(&mut self, batch: usize) -> Result<()> {
        self.plan(batch)?;
        let plan = &self.plans[&batch];
        self.submit(&[&plan.forward, &plan.score_loss]);
        Ok(())
    }

    /// Scores `x` (any number of samples) in batches: per-sample plain errors.
    pub fn score(&mut self, x: &[f32]) -> Result<Vec<f32>> {
        let p = self.arch.input_len();
        let n = x.len() / p;
        let mut out = Vec::with_capacity(n);
        for start in (0..n).step_by(self.max_batch) {
            let b = self.max_batch.min(n - start);
            self.upload_batch(&x[start * p..(start + b) * p], b)?;
            self.score_step(b)?;
            out.extend(self.errors(b)?);
        }
        Ok(out)
    }

    /// Per-sample plain errors of the last loss evaluated.
    pub fn errors(&self, batch: usize) -> Result<Vec<f32>> {
        self.gpu
            .read_f32(&self.arenas.stats, kernels::STATS_HEADER, batch)
    }

    /// The reconstruction of the last forward pass.
    pub fn recon(&self, batch: usize) -> Result<Vec<f32>> {
        let n = self.arch.layers().len();
        self.gpu.read_f32(
            &self.arenas.acts,
            self.layout.h[n - 1],
            batch * self.arch.input_len(),
        )
    }

    pub fn read_params(&self) -> Result<Vec<f32>> {
        self.gpu.read_f32(&self.arenas.params, 0, self.table.len())
    }
    pub fn read_grads(&self) -> Result<Vec<f32>> {
        self.gpu.read_f32(&self.arenas.grads, 0, self.table.len())
    }
    pub fn read_moments(&self) -> Result<(Vec<f32>, Vec<f32>)> {
        Ok((
            self.gpu.read_f32(&self.exp_avg, 0, self.table.len())?,
            self.gpu.read_f32(&self.exp_avg_sq, 0, self.table.len())?,
        ))
    }
    pub fn write_params(&self, p: &[f32]) {
        self.gpu
            .queue
            .write_buffer(&self.arenas.params, 0, bytemuck::cast_slice(p));
    }
    pub fn write_moments(&self, m: &[f32], v: &[f32]) {
        self.gpu
            .queue
            .write_buffer(&self.exp_avg, 0, bytemuck::cast_slice(m));
        self.gpu
            .queue
            .write_buffer(&self.exp_avg_sq, 0, bytemuck::cast_slice(v));
    }

    /// Zeroes the running loss sums and the non-finite flag (ordered after submitted work).
    pub fn reset_stats(&self) {
        let zeros = [0f32; kernels::STATS_HEADER];
        self.gpu
            .queue
            .write_buffer(&self.arenas.stats, 0, bytemuck::cast_slice(&zeros));
    }

    fn decode_stats(h: &[f32]) -> Stats {
        let steps = h[kernels::STAT_STEPS] as u32;
        Stats {
            loss: h[kernels::STAT_LOSS],
            mean_loss: if steps > 0 {
                h[kernels::STAT_LOSS_SUM] / steps as f32
            } else {
                f32::NAN
            },
            steps,
            clamps_total: h[kernels::STAT_CLAMP_SUM] as u64,
            nonfinite: h[kernels::STAT_NONFINITE].to_bits() != 0,
            clamps_last: h[kernels::STAT_CLAMPS] as u64,
        }
    }

    /// Starts an asynchronous read of the statistics header; `poll_stats` collects it.
    pub fn request_stats(&mut self) {
        if self.staging.pending {
            return;
        }
        let mut enc = self.gpu.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(
            &self.arenas.stats,
            0,
            &self.staging.buf,
            0,
            (kernels::STATS_HEADER * 4) as u64,
        );
        self.gpu.queue.submit([enc.finish()]);
        let ready = self.staging.ready.clone();
        ready.store(false, Ordering::SeqCst);
        self.staging
            .buf
            .slice(..)
            .map_async(wgpu::MapMode::Read, move |r| {
                if r.is_ok() {
                    ready.store(true, Ordering::SeqCst);
                }
            });
        self.staging.pending = true;
    }

    /// The statistics requested earlier, if they have arrived (never blocks).
    pub fn poll_stats(&mut self) -> Result<Option<Stats>> {
        self.gpu.check()?;
        if !self.staging.pending {
            return Ok(None);
        }
        self.gpu
            .device
            .poll(wgpu::PollType::Poll)
            .map_err(|e| Error::Device(format!("device lost: {e}")))?;
        if !self.staging.ready.load(Ordering::SeqCst) {
            return Ok(None);
        }
        let s = {
            let view = self
                .staging
                .buf
                .slice(..)
                .get_mapped_range()
                .map_err(|e| Error::Device(format!("statistics readback: {e}")))?;
            Self::decode_stats(bytemuck::cast_slice(&view))
        };
        self.staging.buf.unmap();
        self.staging.pending = false;
        Ok(Some(s))
    }

    /// Requests the statistics and waits for them.
    pub fn wait_stats(&mut self) -> Result<Stats> {
        self.request_stats();
        self.gpu.wait()?;
        self.poll_stats()?
            .ok_or_else(|| Error::Device("statistics readback did not complete".into()))
    }
}
