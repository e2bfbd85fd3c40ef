//! Where everything lives in the arenas: the activation arena's layout for a batch capacity,
//! each layer's offsets in both arenas, and the largest batch a device can hold.

use crate::device::Device;
use crate::kernels::{LayerOffsets, LossSpec, SplitK};
use crate::model::{Arch, Layer, LossConfig, Metric, ParamTable};

/// Offsets (f32 elements) of every activation tensor, laid out for `max_batch` samples.
#[derive(Clone, Debug)]
pub struct ActLayout {
    /// The batch input [B, C, H, W].
    pub x: usize,
    /// What the loss compares the reconstruction with: the input itself, or (training to remove
    /// synthetic defects) the clean samples in a region of their own.
    pub target: usize,
    /// Post-activation output of each layer.
    pub h: Vec<usize>,
    /// Gradient with respect to each layer's pre-activation output.
    pub dz: Vec<usize>,
    /// SSIM scratch (5 maps per sample).
    pub scratch: usize,
    /// Split-K partial sums of the weight gradients (`SplitK::scratch` floats, not per sample).
    pub partials: usize,
    pub len: usize,
}

impl ActLayout {
    pub fn new(
        layers: &[Layer],
        input_len: usize,
        scratch_per_sample: usize,
        max_batch: usize,
        targets: bool,
        split_scratch: usize,
    ) -> ActLayout {
        let mut at = 0;
        let mut take = |n: usize| {
            let o = at;
            at += n * max_batch;
            o
        };
        let x = take(input_len);
        let target = if targets { take(input_len) } else { x };
        let h = layers.iter().map(|l| take(l.out_len())).collect();
        let dz = layers.iter().map(|l| take(l.out_len())).collect();
        let scratch = take(scratch_per_sample);
        let partials = at;
        at += split_scratch;
        ActLayout {
            x,
            target,
            h,
            dz,
            scratch,
            partials,
            len: at,
        }
    }

    /// The layout of `arch` trained or scored with `loss` on `dev`, for `batch` samples, with a
    /// region of its own for the loss's targets where `targets`.
    pub fn of(
        dev: &Device,
        arch: &Arch,
        loss: LossConfig,
        batch: usize,
        targets: bool,
    ) -> ActLayout {
        let scratch = if loss.metric == Metric::Ssim {
            LossSpec::scratch_per_sample(arch.input_shape())
        } else {
            0
        };
        let split = SplitK::for_device(dev).scratch();
        ActLayout::new(
            &arch.layers(),
            arch.input_len(),
            scratch,
            batch,
            targets,
            split,
        )
    }

    /// Layer `li`'s tensors: its weight and bias in the parameter arena, its input, output and
    /// output gradient here.
    pub fn layer(&self, table: &ParamTable, layers: &[Layer], li: usize) -> LayerOffsets {
        let (w, b) = table
            .layer(&layers[li].name)
            .expect("every layer has a weight and a bias");
        LayerOffsets {
            weight: w.offset as u32,
            bias: b.offset as u32,
            input: if li == 0 { self.x } else { self.h[li - 1] } as u32,
            output: self.h[li] as u32,
            dz: self.dz[li] as u32,
        }
    }
}

/// The largest batch up to `want` whose activations fit one storage binding (and 32-bit
/// indexing) on this device.
pub fn fitting_batch(dev: &Device, arch: &Arch, loss: LossConfig, want: usize) -> usize {
    fitting_batch_with(dev, arch, loss, want, false)
}

/// As `fitting_batch`, with a region for the loss's targets where `targets`.
pub fn fitting_batch_with(
    dev: &Device,
    arch: &Arch,
    loss: LossConfig,
    want: usize,
    targets: bool,
) -> usize {
    // Per-sample regions end where the fixed split-K scratch begins.
    let one = ActLayout::of(dev, arch, loss, 1, targets);
    let (per_sample, fixed) = (one.partials as u64, (one.len - one.partials) as u64);
    let limit = (dev.limits.max_storage_buffer_binding_size / 4).min(u32::MAX as u64);
    let room = limit.saturating_sub(fixed);
    (room / per_sample.max(1)).min(want as u64) as usize
}
