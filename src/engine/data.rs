//! The training set as the engine holds it: resident on the device (each step's batch gathered
//! there by gather.wgsl) or, when it does not fit, kept in host memory and streamed (each step's
//! batch assembled on the host while the device runs the previous step). Either way a sample is
//! a `View` of an image: the whole image, or a window of it, flipped or rotated.

use super::arenas::pair_group;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::kernels::{Dispatch, GatherSpec, View};

/// The images' shape: `channels` × `side` × `side`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageShape {
    pub channels: u32,
    pub side: u32,
}

impl ImageShape {
    pub fn len(&self) -> usize {
        (self.channels * self.side * self.side) as usize
    }
}

/// One binding's worth of the resident data set.
pub(crate) struct Chunk {
    pub start: u32,
    pub len: u32,
    /// Group 1 of gather.wgsl: this chunk and the epoch's views.
    pub group: wgpu::BindGroup,
    /// Kept alive for the bind group.
    _buf: wgpu::Buffer,
}

pub(crate) enum TrainingData {
    Resident {
        n: usize,
        shape: ImageShape,
        chunks: Vec<Chunk>,
        /// The epoch's views, read by gather.wgsl.
        views: wgpu::Buffer,
    },
    Streamed {
        samples: Vec<f32>,
        n: usize,
        shape: ImageShape,
        order: Vec<View>,
        /// The batch being assembled: inputs, and (training to remove defects) targets.
        batch: Vec<f32>,
        target: Vec<f32>,
    },
}

impl TrainingData {
    /// Uploads `n` images of `shape`, split in chunks that each fit one binding.
    pub fn resident(dev: &Device, samples: &[f32], n: usize, shape: ImageShape) -> Result<Self> {
        let per = shape.len();
        let per_chunk =
            (dev.limits.max_storage_buffer_binding_size / (per as u64 * 4)).max(1) as usize;
        let views = dev.storage("views", 8 * n);
        let mut chunks = Vec::new();
        let mut start = 0;
        while start < n {
            let len = per_chunk.min(n - start);
            let buf = dev.checked("uploading the data set", || dev.storage("data", len * per))?;
            dev.queue.write_buffer(
                &buf,
                0,
                bytemuck::cast_slice(&samples[start * per..(start + len) * per]),
            );
            chunks.push(Chunk {
                start: start as u32,
                len: len as u32,
                group: pair_group(dev, &dev.registry.data, &buf, &views),
                _buf: buf,
            });
            start += len;
        }
        Ok(TrainingData::Resident {
            n,
            shape,
            chunks,
            views,
        })
    }

    pub fn streamed(samples: Vec<f32>, n: usize, shape: ImageShape, batch_capacity: usize) -> Self {
        TrainingData::Streamed {
            samples,
            n,
            shape,
            order: Vec::new(),
            batch: Vec::with_capacity(batch_capacity),
            target: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            TrainingData::Resident { n, .. } | TrainingData::Streamed { n, .. } => *n,
        }
    }

    pub fn shape(&self) -> ImageShape {
        match self {
            TrainingData::Resident { shape, .. } | TrainingData::Streamed { shape, .. } => *shape,
        }
    }

    /// Sets the samples of one epoch, in order: views of the images whose windows of side `out`
    /// lie inside them.
    pub fn set_epoch(&mut self, dev: &Device, views: &[View], out: u32) -> Result<()> {
        let (n, side) = (self.len(), self.shape().side);
        let outside =
            |v: &View| v.image as usize >= n || v.y0 + out > side || v.x0 + out > side || v.op > 7;
        if views.len() > n || views.iter().any(outside) {
            return Err(Error::invalid(
                "epoch views refer to samples outside the data set",
            ));
        }
        match self {
            TrainingData::Resident { views: buf, .. } => {
                dev.queue.write_buffer(buf, 0, bytemuck::cast_slice(views));
            }
            TrainingData::Streamed { order, .. } => *order = views.to_vec(),
        }
        Ok(())
    }

    /// The gather launches of a batch of windows of side `out`, inputs at `x_off` and targets at
    /// `t_off` (none when streamed: the host writes the batch).
    pub fn gather(
        &self,
        dev: &Device,
        out: u32,
        batch: u32,
        (x_off, t_off): (u32, u32),
    ) -> Result<Vec<Dispatch>> {
        let TrainingData::Resident { chunks, shape, .. } = self else {
            return Ok(Vec::new());
        };
        chunks
            .iter()
            .map(|c| {
                GatherSpec {
                    channels: shape.channels,
                    src: shape.side,
                    out,
                    batch,
                    x_off,
                    t_off,
                    chunk_start: c.start,
                    chunk_len: c.len,
                }
                .dispatch(dev, c.group.clone())
            })
            .collect()
    }

    /// Streamed: the batch at `offset` of the epoch, windows of side `out`, assembled on the
    /// host exactly as gather.wgsl would: the inputs, and with `targets` the clean samples.
    pub fn host_batch(
        &mut self,
        offset: usize,
        size: usize,
        out: u32,
        targets: bool,
    ) -> Result<(&[f32], &[f32])> {
        let TrainingData::Streamed {
            samples,
            order,
            batch,
            target,
            shape,
            ..
        } = self
        else {
            return Err(Error::invalid("the data set is on the device"));
        };
        if offset + size > order.len() {
            return Err(Error::invalid("batch runs past the end of the epoch order"));
        }
        batch.clear();
        target.clear();
        let per = shape.len();
        for v in &order[offset..offset + size] {
            let image = &samples[v.image as usize * per..][..per];
            let t = targets.then_some(&mut *target);
            v.extract_pair(image, (shape.channels, shape.side, out), batch, t);
        }
        Ok((batch, target))
    }
}
