//! Where everything lives in the arenas: the activation arena's layout for a batch capacity,
//! each layer's offsets in both arenas, and the largest batch a device can hold.

use crate::device::Device;
use crate::error::{Error, Result};
use crate::kernels::{LayerOffsets, Layout, LossSpec, Packing, SplitK};
use crate::model::{Arch, Layer, LayerKind, LossConfig, Metric, ParamTable};

/// `LAMP_LAYOUT=plain` keeps every activation NCHW (no grouped maps): to compare, and a way back
/// should the grouped layouts misbehave on some driver. Linear layers' 1x1 tensors read the same
/// in both layouts, so their GEMMs still take the vec4 paths (and their weights are packed).
pub const LAYOUT_ENV: &str = "LAMP_LAYOUT";

/// 0: as `LAMP_LAYOUT` says; 1: grouped; 2: plain (`choose_layout`).
static LAYOUT_CHOICE: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Makes engines created from now on use `layout` ("grouped" or "plain"; anything else: as
/// `LAMP_LAYOUT` says), whatever the environment: to compare the two in one process.
pub fn choose_layout(layout: &str) {
    let v = match layout {
        "grouped" => 1,
        "plain" => 2,
        _ => 0,
    };
    LAYOUT_CHOICE.store(v, std::sync::atomic::Ordering::Relaxed);
}

/// The activations' layout this process uses: "grouped" (the default) or "plain"
/// (`LAMP_LAYOUT=plain`), as `lamp info` and `lamp bench` name it.
pub fn layout_name() -> &'static str {
    match LAYOUT_CHOICE.load(std::sync::atomic::Ordering::Relaxed) {
        1 => return "grouped",
        2 => return "plain",
        _ => {}
    }
    match std::env::var(LAYOUT_ENV).as_deref() {
        Ok("plain") => "plain",
        Ok("grouped") | Err(_) => "grouped",
        Ok(other) => {
            log::warn!("{LAYOUT_ENV}={other:?}: not plain or grouped; using grouped");
            "grouped"
        }
    }
}

/// Which layers' outputs (and their gradients) are grouped, `[N, C/4, H, W, 4]` (gemm.wgsl):
/// every hidden tensor of a convolution whose channels divide by 4, so that the GEMMs around it
/// read four channels per load. Left plain: the model's input and output (the loss and the host
/// read them) and 1x1 tensors (the same in both layouts). A grouped tensor that a linear layer
/// flattens (the encoder's last map, the decoder's first) is grouped only where the linear
/// layer's other side has whole quads too: the packed weights carry the flattening's order
/// (kernels::pack::Layout::Flat), and the linear layer's GEMMs read them (VEC_K).
pub fn grouping(layers: &[Layer]) -> Vec<bool> {
    let plain = layout_name() == "plain";
    let linear = |l: &Layer| l.kind == LayerKind::Linear;
    (0..layers.len())
        .map(|li| {
            let (l, Some(next)) = (&layers[li], layers.get(li + 1)) else {
                return false;
            };
            // The tensor's map: the convolution's view of it.
            let map = if linear(l) { next.input } else { l.output };
            let flat_sides_ok = (!linear(l) || l.input[0].is_multiple_of(4))
                && (!linear(next) || next.output[0].is_multiple_of(4));
            !plain && map[0].is_multiple_of(4) && map[1] * map[2] > 1 && flat_sides_ok
        })
        .collect()
}

/// How layer li sees its input and its output: grouped tensors are `Flat` to a linear layer.
pub fn layer_layouts(layers: &[Layer], grouped: &[bool], li: usize) -> (Layout, Layout) {
    let l = &layers[li];
    let linear = l.kind == LayerKind::Linear;
    let input = match li.checked_sub(1) {
        Some(b) if grouped[b] && linear => Layout::Flat {
            hw: layers[b].output[1] * layers[b].output[2],
        },
        Some(b) if grouped[b] => Layout::Grouped,
        _ => Layout::Plain,
    };
    let output = match layers.get(li + 1) {
        Some(n) if grouped[li] && linear => Layout::Flat {
            hw: n.input[1] * n.input[2],
        },
        _ if grouped[li] => Layout::Grouped,
        _ => Layout::Plain,
    };
    (input, output)
}

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
    /// Where the weights packed for the GEMMs' vec4 path start in *params* (past the
    /// parameters, `packing.len()` floats; `Arenas::with_packed`).
    pub packed: usize,
    /// Layer li's output and dz grouped (`grouping`).
    pub grouped: Vec<bool>,
    pub packing: Packing,
    pub len: usize,
}

impl ActLayout {
    /// Every region starts at a multiple of 4 floats (the vec4 reads of gemm.wgsl); `weights`:
    /// each layer's weight offset in params, `params_len` their arena's length; `grouped`:
    /// `grouping`'s.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        layers: &[Layer],
        weights: &[usize],
        params_len: usize,
        grouped: Vec<bool>,
        input_len: usize,
        scratch_per_sample: usize,
        max_batch: usize,
        targets: bool,
        split_scratch: usize,
    ) -> ActLayout {
        let mut at = 0;
        let mut take = |n: usize| {
            let o = at;
            at += (n * max_batch).next_multiple_of(4);
            o
        };
        let x = take(input_len);
        let target = if targets { take(input_len) } else { x };
        let h = layers.iter().map(|l| take(l.out_len())).collect();
        let dz = layers.iter().map(|l| take(l.out_len())).collect();
        let scratch = take(scratch_per_sample);
        let partials = at;
        at += split_scratch.next_multiple_of(4);
        // In params, past the parameters: packed weights take no room from the activations.
        let packed = params_len.next_multiple_of(4);
        let layouts: Vec<(Layout, Layout)> = (0..layers.len())
            .map(|li| layer_layouts(layers, &grouped, li))
            .collect();
        let packing = Packing::new(layers, weights, &layouts, packed, false);
        ActLayout {
            x,
            target,
            h,
            dz,
            scratch,
            partials,
            packed,
            grouped,
            packing,
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
        let layers = arch.layers();
        let table = arch.param_table();
        let weights: Vec<usize> = layers
            .iter()
            .map(|l| {
                table
                    .layer(&l.name)
                    .expect("every layer has a weight and a bias")
                    .0
                    .offset
            })
            .collect();
        let build = |grouped| {
            ActLayout::new(
                &layers,
                &weights,
                table.len(),
                grouped,
                arch.input_len(),
                scratch,
                batch,
                targets,
                split,
            )
        };
        let layout = build(grouping(&layers));
        // The packed copies share the parameters' binding: where together they would not fit,
        // plain maps and unpacked weights (the scalar paths), rather than no model at all.
        let limit = (dev.limits.max_storage_buffer_binding_size / 4) as usize;
        if layout.packed + layout.packing.len() <= limit {
            return layout;
        }
        log::warn!(
            "the weights packed for the vec4 GEMM paths do not fit beside the parameters in one \
             binding of this device: plain layouts, unpacked weights (slower)"
        );
        ActLayout {
            packing: Packing::none(layers.len()),
            ..build(vec![false; layers.len()])
        }
    }

    /// Layer `li`'s tensors: its weight and bias in the parameter arena, its input, output and
    /// output gradient here.
    pub fn layer(&self, table: &ParamTable, layers: &[Layer], li: usize) -> LayerOffsets {
        let (w, b) = table
            .layer(&layers[li].name)
            .expect("every layer has a weight and a bias");
        let (packed_forward, packed_input_grad) = self.packing.forms[li];
        let (input_layout, output_layout) = layer_layouts(layers, &self.grouped, li);
        LayerOffsets {
            weight: w.offset as u32,
            bias: b.offset as u32,
            input: if li == 0 { self.x } else { self.h[li - 1] } as u32,
            output: self.h[li] as u32,
            dz: self.dz[li] as u32,
            input_layout,
            output_layout,
            packed_forward,
            packed_input_grad,
        }
    }
}

/// Whether a batch of `batch` samples fits this device (`fitting_batch_with`); the error says
/// how many do.
pub fn check_batch(
    dev: &Device,
    arch: &Arch,
    loss: LossConfig,
    batch: usize,
    targets: bool,
) -> Result<()> {
    let fits = fitting_batch_with(dev, arch, loss, usize::MAX, targets);
    if batch <= fits {
        return Ok(());
    }
    let layout = ActLayout::of(dev, arch, loss, batch, targets);
    Err(Error::invalid(format!(
        "batch {batch} needs {} MiB of activations, more than the device binds ({} MiB); at \
         most {fits} samples per batch fit",
        (layout.len as u64 * 4) >> 20,
        dev.limits.max_storage_buffer_binding_size >> 20,
    )))
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
