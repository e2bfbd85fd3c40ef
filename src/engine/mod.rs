//! The host scheduler: owns the arenas (parameters, gradients, the optimizer's state,
//! activations, loss statistics), the training set (resident or streamed), and per-batch-size
//! plans of dispatches built once. A training step (gather, forward, loss, backward, optimizer)
//! is one compute pass; up to `steps_per_submit` of them go in one command buffer, submitted
//! without waiting (each step's uniform copied into place between passes from a table written
//! once per submit); the loss statistics are read back only when asked.
//!
//! `arenas` holds the buffers of bind group 0, `layout` says where each tensor lives in them,
//! `plan` builds a step's dispatches, `data` holds the training set, `stats` reads the loss
//! statistics back, `scoring` runs scoring batches back to back, `profile` times each dispatch.

pub mod arenas;
pub(crate) mod data;
pub mod layout;
pub(crate) mod plan;
pub mod profile;
mod scoring;
pub mod stats;

pub use arenas::Arenas;
pub use layout::{check_batch, fitting_batch, fitting_batch_with, ActLayout};
pub use stats::Stats;

use crate::device::Device;
use crate::error::{Error, Result};
use crate::kernels::{stats_len, Dispatch, OptimizerSpec, StepUniform, View};
use crate::model::{Arch, LossConfig, Optimizer, OptimizerKind, ParamTable};
use data::{ImageShape, TrainingData};
use plan::{Plan, PlanInputs};
use std::collections::HashMap;
use std::sync::Arc;

pub struct Engine {
    pub device: Arc<Device>,
    pub arch: Arch,
    pub table: ParamTable,
    pub loss: LossConfig,
    /// The optimizer of `train_step` and `grad_step(.., true)`, with its hyper-parameters.
    pub optimizer: Optimizer,
    pub max_batch: usize,
    /// Score every partial batch padded to `max_batch` (not only a last one after full ones), so
    /// that every batch runs the one plan: results independent of how many images a call scores,
    /// to the last bit on any device (a GPU may split a reduction differently at another batch
    /// size). `lamp score` sets it.
    pub pad_batches: bool,
    pub layout: ActLayout,
    /// Optimizer steps taken.
    pub t: u32,
    pub arenas: Arenas,
    /// The optimizer's state, parameter arena layout: Adam's moments; SGD's momentum buffer is
    /// `exp_avg`.
    pub exp_avg: wgpu::Buffer,
    pub exp_avg_sq: wgpu::Buffer,
    /// The optimizer steps over the arena, Adam's and SGD's.
    optimizer_steps: [Dispatch; 2],
    /// The launch that packs the weights for the GEMMs' vec4 path (kernels::pack), first in
    /// every forward pass; none where no GEMM reads packed weights.
    pack: Option<Dispatch>,
    data: Option<TrainingData>,
    plans: HashMap<usize, Plan>,
    staging: stats::Staging,
    /// Training steps recorded into one submit at most (1..=MAX_STEPS_PER_SUBMIT).
    steps_per_submit: usize,
    /// The step uniforms of one submit's steps, copied into the arenas' `step` in turn.
    step_table: wgpu::Buffer,
}

/// Training steps recorded into one command buffer by default: a submit costs the host tens of
/// microseconds (wgpu's tracking and the driver's), a sizeable part of a small model's step on a
/// GPU; eight steps make it small. `LAMP_STEPS_PER_SUBMIT` overrides it for training and `lamp
/// bench` (1 to `MAX_STEPS_PER_SUBMIT`, the step table's size).
pub const STEPS_PER_SUBMIT: usize = 8;
pub const MAX_STEPS_PER_SUBMIT: usize = 64;
pub const STEPS_PER_SUBMIT_ENV: &str = "LAMP_STEPS_PER_SUBMIT";

/// `LAMP_STEPS_PER_SUBMIT` where set, otherwise `STEPS_PER_SUBMIT`.
pub fn steps_per_submit_from_env() -> Result<usize> {
    match std::env::var(STEPS_PER_SUBMIT_ENV) {
        Err(_) => Ok(STEPS_PER_SUBMIT),
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(k) if (1..=MAX_STEPS_PER_SUBMIT).contains(&k) => Ok(k),
            _ => Err(Error::invalid(format!(
                "{STEPS_PER_SUBMIT_ENV}={v:?}: must be a whole number from 1 to \
                 {MAX_STEPS_PER_SUBMIT}"
            ))),
        },
    }
}

/// One training step of a group (`Engine::train_steps`): the `batch` samples at `offset` of the
/// epoch's views, at learning rate `lr`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainStep {
    pub offset: usize,
    pub batch: usize,
    pub lr: f64,
}

impl Engine {
    /// Allocates every arena once for batches of up to `max_batch` and uploads `params`.
    pub fn new(
        device: Arc<Device>,
        arch: Arch,
        loss: LossConfig,
        max_batch: usize,
        params: &[f32],
    ) -> Result<Engine> {
        Engine::new_with(device, arch, loss, max_batch, params, false)
    }

    /// As `new`; with `targets`, the loss compares reconstructions with targets of their own
    /// (the clean samples of training to remove synthetic defects) instead of the inputs.
    pub fn new_with(
        device: Arc<Device>,
        arch: Arch,
        loss: LossConfig,
        max_batch: usize,
        params: &[f32],
        targets: bool,
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
        check_batch(&device, &arch, loss, max_batch, targets)?;
        let layout = ActLayout::of(&device, &arch, loss, max_batch, targets);
        let dev = &*device;
        let arenas = Arenas::with_packed(
            dev,
            table.len(),
            layout.packing.len(),
            layout.len,
            stats_len(max_batch),
        )?;
        let (exp_avg, exp_avg_sq) = dev.checked("allocating the optimizer's state", || {
            (
                dev.storage("exp_avg", table.len()),
                dev.storage("exp_avg_sq", table.len()),
            )
        })?;
        dev.queue
            .write_buffer(&arenas.params, 0, bytemuck::cast_slice(params));
        let state = arenas::pair_group(dev, &dev.registry.optimizer, &exp_avg, &exp_avg_sq);
        let step = |kind| {
            OptimizerSpec {
                kind,
                count: table.len() as u32,
            }
            .dispatch(dev, state.clone())
        };
        let optimizer_steps = [step(OptimizerKind::Adam)?, step(OptimizerKind::Sgd)?];
        let pack = layout.packing.dispatch(dev, layout.packed)?;
        let staging = stats::Staging::new(&dev.device);
        let step_words = std::mem::size_of::<StepUniform>() / 4;
        let step_table = dev.checked("allocating the step table", || {
            dev.storage("step table", MAX_STEPS_PER_SUBMIT * step_words)
        })?;
        let mut e = Engine {
            device,
            arch,
            table,
            loss,
            optimizer: Optimizer::default(),
            max_batch,
            layout,
            t: 0,
            arenas,
            exp_avg,
            exp_avg_sq,
            optimizer_steps,
            pack,
            data: None,
            plans: HashMap::new(),
            pad_batches: false,
            staging,
            steps_per_submit: STEPS_PER_SUBMIT,
            step_table,
        };
        e.reset_stats();
        e.plan(max_batch)?;
        Ok(e)
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
        let plan = Plan::build(&self.plan_inputs(), batch, self.gather(batch)?)?;
        self.plans.insert(batch, plan);
        Ok(())
    }

    /// Builds (once) the scoring plan and its training half for batches of `batch`.
    pub(crate) fn training_plan(&mut self, batch: usize) -> Result<()> {
        self.plan(batch)?;
        if self.plans[&batch].training.is_none() {
            let t = Plan::backprop(&self.plan_inputs(), batch)?;
            if let Some(plan) = self.plans.get_mut(&batch) {
                plan.training = Some(t);
            }
        }
        Ok(())
    }

    fn plan_inputs(&self) -> PlanInputs<'_> {
        PlanInputs {
            dev: &self.device,
            arch: &self.arch,
            table: &self.table,
            layout: &self.layout,
            loss: self.loss,
            max_batch: self.max_batch,
            pack: self.pack.as_ref(),
        }
    }

    fn gather(&self, batch: usize) -> Result<Vec<Dispatch>> {
        match &self.data {
            Some(d) => d.gather(
                &self.device,
                self.arch.size,
                batch as u32,
                (self.layout.x as u32, self.layout.target as u32),
            ),
            None => Ok(Vec::new()),
        }
    }

    /// Puts the training set on the device (`n` samples of the model's input shape), split in
    /// chunks that each fit one storage binding.
    pub fn upload_dataset(&mut self, samples: &[f32], n: usize) -> Result<()> {
        let shape = self.image_shape(self.arch.size);
        self.check_dataset(samples, n, shape)?;
        self.data = Some(TrainingData::resident(&self.device, samples, n, shape)?);
        self.refresh_gathers()
    }

    /// Rebuilds the gather of every plan made before the data set changed.
    fn refresh_gathers(&mut self) -> Result<()> {
        let sizes: Vec<usize> = self.plans.keys().copied().collect();
        for s in sizes {
            let g = self.gather(s)?;
            if let Some(plan) = self.plans.get_mut(&s) {
                plan.gather = g;
            }
        }
        Ok(())
    }

    /// Samples in the training set, if one is set.
    pub fn data_len(&self) -> Option<usize> {
        self.data.as_ref().map(|d| d.len())
    }

    /// The side of the training set's images (the model's input size, or larger in patch mode).
    pub fn data_side(&self) -> Option<u32> {
        self.data.as_ref().map(|d| d.shape().side)
    }

    fn image_shape(&self, side: u32) -> ImageShape {
        ImageShape {
            channels: self.arch.channels,
            side,
        }
    }

    fn check_dataset(&self, samples: &[f32], n: usize, shape: ImageShape) -> Result<()> {
        if samples.len() != n * shape.len() || n == 0 {
            return Err(Error::invalid(format!(
                "data set of {n} images of {}x{}x{} needs {} values",
                shape.channels,
                shape.side,
                shape.side,
                n * shape.len()
            )));
        }
        if shape.side < self.arch.size {
            return Err(Error::invalid(format!(
                "images of {} pixels are smaller than the model's input ({})",
                shape.side, self.arch.size
            )));
        }
        Ok(())
    }

    /// Puts the training set — `n` images of the model's channels and `side` pixels a side (the
    /// model's input size, or more for training on patches) — on the device when it takes at
    /// most `device_limit` bytes, and otherwise keeps it on the host and streams it. Returns
    /// whether it is resident.
    pub fn set_dataset(
        &mut self,
        samples: Vec<f32>,
        n: usize,
        side: u32,
        device_limit: u64,
    ) -> Result<bool> {
        let shape = self.image_shape(side);
        self.check_dataset(&samples, n, shape)?;
        if (samples.len() as u64) * 4 <= device_limit {
            self.data = Some(TrainingData::resident(&self.device, &samples, n, shape)?);
            self.refresh_gathers()?;
            return Ok(true);
        }
        let capacity = self.max_batch * self.arch.input_len();
        self.data = Some(TrainingData::streamed(samples, n, shape, capacity));
        self.refresh_gathers()?;
        Ok(false)
    }

    /// Sets the order in which the data set's whole images are visited (one epoch).
    pub fn set_order(&mut self, order: &[u32]) -> Result<()> {
        let views: Vec<View> = order.iter().map(|&i| View::whole(i)).collect();
        self.set_epoch(&views)
    }

    /// Sets the samples of one epoch, in order: views (windows of the model's input size, flips,
    /// rotations) of the data set's images.
    pub fn set_epoch(&mut self, views: &[View]) -> Result<()> {
        let out = self.arch.size;
        let data = self
            .data
            .as_mut()
            .ok_or_else(|| Error::invalid("no data set on the device"))?;
        data.set_epoch(&self.device, views, out)
    }

    /// Training steps recorded into one submit at most.
    pub fn steps_per_submit(&self) -> usize {
        self.steps_per_submit
    }

    /// Sets how many training steps go into one submit, clamped to 1..=MAX_STEPS_PER_SUBMIT
    /// (the step table's size).
    pub fn set_steps_per_submit(&mut self, k: usize) {
        self.steps_per_submit = k.clamp(1, MAX_STEPS_PER_SUBMIT);
    }

    /// Counts an optimizer step and returns its uniform: Adam's step counter, the optimizer's
    /// hyper-parameters at its current learning rate, and the batch's offset in the epoch.
    fn next_step(&mut self, batch_offset: u32) -> StepUniform {
        self.t += 1;
        StepUniform::new(&self.optimizer, self.t, batch_offset)
    }

    fn write_step(&mut self, batch_offset: u32) {
        let u = self.next_step(batch_offset);
        self.device
            .queue
            .write_buffer(&self.arenas.step, 0, bytemuck::bytes_of(&u));
    }

    fn submit(&self, dispatches: &[&[Dispatch]]) {
        self.arenas.submit(&self.device, dispatches);
    }

    /// The optimizer's dispatch (the kind `optimizer` names).
    fn optimizer_step(&self) -> &Dispatch {
        match self.optimizer.kind() {
            OptimizerKind::Adam => &self.optimizer_steps[0],
            OptimizerKind::Sgd => &self.optimizer_steps[1],
        }
    }

    /// One training step on the batch at `batch_offset` of the epoch order at the optimizer's
    /// learning rate: gather (or the host's batch), forward, loss, backward and the optimizer in
    /// one submit. Does not wait.
    pub fn train_step(&mut self, batch_offset: usize, batch: usize) -> Result<()> {
        let lr = self.optimizer.lr();
        self.train_steps(&[TrainStep {
            offset: batch_offset,
            batch,
            lr,
        }])
    }

    /// Training steps in order, `steps_per_submit` of them recorded into each command buffer
    /// (one compute pass a step; a streamed data set submits each step on its own, its batch
    /// written by the host). Leaves the optimizer at the last step's learning rate. Does not wait.
    pub fn train_steps(&mut self, steps: &[TrainStep]) -> Result<()> {
        for s in steps {
            self.training_plan(s.batch)?;
        }
        let n = match &self.data {
            None => return Err(Error::invalid("no data set on the device")),
            Some(TrainingData::Streamed { .. }) => {
                for s in steps {
                    self.optimizer.set_lr(s.lr);
                    self.streamed_step(s.offset, s.batch)?;
                }
                return Ok(());
            }
            Some(d) => d.len(),
        };
        if steps.iter().any(|s| s.offset + s.batch > n) {
            return Err(Error::invalid("batch runs past the end of the data set"));
        }
        // Checked before any state changes, so that an error leaves no group half counted.
        for s in steps {
            self.plans[&s.batch]
                .training
                .as_ref()
                .ok_or_else(no_training_plan)?;
        }
        let size = std::mem::size_of::<StepUniform>() as u64;
        for group in steps.chunks(self.steps_per_submit) {
            let uniforms: Vec<StepUniform> = group
                .iter()
                .map(|s| {
                    self.optimizer.set_lr(s.lr);
                    self.next_step(s.offset as u32)
                })
                .collect();
            let dev = &self.device;
            dev.queue
                .write_buffer(&self.step_table, 0, bytemuck::cast_slice(&uniforms));
            let mut enc = dev
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("training steps"),
                });
            let update = std::slice::from_ref(self.optimizer_step());
            for (i, s) in group.iter().enumerate() {
                let plan = &self.plans[&s.batch];
                let t = plan.training.as_ref().ok_or_else(no_training_plan)?;
                enc.copy_buffer_to_buffer(
                    &self.step_table,
                    i as u64 * size,
                    &self.arenas.step,
                    0,
                    size,
                );
                self.arenas.record_pass(
                    &mut enc,
                    &[&plan.gather, &plan.forward, &t.loss, &t.backward, update],
                );
            }
            dev.queue.submit([enc.finish()]);
        }
        Ok(())
    }

    /// A step of a streamed data set: the host assembles the batch and writes it, then the step
    /// runs on it.
    fn streamed_step(&mut self, offset: usize, batch: usize) -> Result<()> {
        let out = self.arch.size;
        let targets = self.layout.target != self.layout.x;
        let Some(d) = self.data.as_mut() else {
            return Err(Error::invalid("no data set on the device"));
        };
        let (x, t) = d.host_batch(offset, batch, out, targets)?;
        let acts = &self.arenas.acts;
        let q = &self.device.queue;
        q.write_buffer(acts, (self.layout.x * 4) as u64, bytemuck::cast_slice(x));
        if targets {
            q.write_buffer(
                acts,
                (self.layout.target * 4) as u64,
                bytemuck::cast_slice(t),
            );
        }
        self.grad_step(batch, true)
    }

    /// Number of dispatches in one training step of `batch` (a submit holds up to
    /// `steps_per_submit` steps).
    pub fn step_dispatches(&mut self, batch: usize) -> Result<usize> {
        self.training_plan(batch)?;
        Ok(self.plans[&batch].step_dispatches())
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
        // The inputs, and the loss's targets where they have a region of their own.
        let mut regions = vec![self.layout.x];
        if self.layout.target != self.layout.x {
            regions.push(self.layout.target);
        }
        for r in regions {
            self.device.queue.write_buffer(
                &self.arenas.acts,
                (r * 4) as u64,
                bytemuck::cast_slice(x),
            );
        }
        Ok(())
    }

    /// Forward, loss and backward on the uploaded batch; `update` adds an optimizer step.
    pub fn grad_step(&mut self, batch: usize, update: bool) -> Result<()> {
        self.training_plan(batch)?;
        if update {
            self.write_step(0);
        }
        let plan = &self.plans[&batch];
        let t = plan.training.as_ref().ok_or_else(no_training_plan)?;
        let step: &[Dispatch] = if update {
            std::slice::from_ref(self.optimizer_step())
        } else {
            &[]
        };
        self.submit(&[&plan.forward, &t.loss, &t.backward, step]);
        Ok(())
    }

    /// Forward pass, per-sample errors and the (amplified) loss of the uploaded batch; no
    /// gradient.
    pub fn score_step(&mut self, batch: usize) -> Result<()> {
        self.plan(batch)?;
        let plan = &self.plans[&batch];
        self.submit(&[&plan.forward, &plan.score_loss]);
        Ok(())
    }

    /// Per-sample plain errors of the last loss evaluated.
    pub fn errors(&self, batch: usize) -> Result<Vec<f32>> {
        self.device
            .read_f32(&self.arenas.stats, crate::kernels::STATS_HEADER, batch)
    }

    /// The reconstruction of the last forward pass.
    pub fn recon(&self, batch: usize) -> Result<Vec<f32>> {
        let n = self.layout.h.len();
        self.device.read_f32(
            &self.arenas.acts,
            self.layout.h[n - 1],
            batch * self.arch.input_len(),
        )
    }

    pub fn read_params(&self) -> Result<Vec<f32>> {
        self.device
            .read_f32(&self.arenas.params, 0, self.table.len())
    }
    pub fn read_grads(&self) -> Result<Vec<f32>> {
        self.device
            .read_f32(&self.arenas.grads, 0, self.table.len())
    }
    pub fn read_moments(&self) -> Result<(Vec<f32>, Vec<f32>)> {
        Ok((
            self.device.read_f32(&self.exp_avg, 0, self.table.len())?,
            self.device
                .read_f32(&self.exp_avg_sq, 0, self.table.len())?,
        ))
    }
    pub fn write_params(&self, p: &[f32]) {
        self.device
            .queue
            .write_buffer(&self.arenas.params, 0, bytemuck::cast_slice(p));
    }
    pub fn write_moments(&self, m: &[f32], v: &[f32]) {
        self.device
            .queue
            .write_buffer(&self.exp_avg, 0, bytemuck::cast_slice(m));
        self.device
            .queue
            .write_buffer(&self.exp_avg_sq, 0, bytemuck::cast_slice(v));
    }
}

/// A training step found its plan without the training half (`training_plan` builds it first).
fn no_training_plan() -> Error {
    Error::invalid("internal: a training step ran before its plan's backward pass was built")
}
