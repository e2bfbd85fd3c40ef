//! The training set as the engine holds it: resident on the device (each step's batch gathered
//! there by gather.wgsl) or, when it does not fit, kept in host memory and streamed (each step's
//! batch assembled on the host while the device runs the previous step).

use super::arenas::pair_group;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::kernels::{Dispatch, GatherSpec};

/// One binding's worth of the resident data set.
pub(crate) struct Chunk {
    pub start: u32,
    pub len: u32,
    /// Group 1 of gather.wgsl: this chunk and the epoch's order.
    pub group: wgpu::BindGroup,
    /// Kept alive for the bind group.
    _buf: wgpu::Buffer,
}

pub(crate) enum TrainingData {
    Resident {
        n: usize,
        chunks: Vec<Chunk>,
        /// The epoch's order, read by gather.wgsl.
        indices: wgpu::Buffer,
    },
    Streamed {
        samples: Vec<f32>,
        n: usize,
        order: Vec<u32>,
        /// The batch being assembled.
        batch: Vec<f32>,
    },
}

impl TrainingData {
    /// Uploads `n` samples of `per_sample` values, split in chunks that each fit one binding.
    pub fn resident(dev: &Device, samples: &[f32], n: usize, per_sample: usize) -> Result<Self> {
        let per_chunk =
            (dev.limits.max_storage_buffer_binding_size / (per_sample as u64 * 4)).max(1) as usize;
        let indices = dev.storage("indices", n);
        let mut chunks = Vec::new();
        let mut start = 0;
        while start < n {
            let len = per_chunk.min(n - start);
            let buf = dev.checked("uploading the data set", || {
                dev.storage("data", len * per_sample)
            })?;
            dev.queue.write_buffer(
                &buf,
                0,
                bytemuck::cast_slice(&samples[start * per_sample..(start + len) * per_sample]),
            );
            chunks.push(Chunk {
                start: start as u32,
                len: len as u32,
                group: pair_group(dev, &dev.registry.data, &buf, &indices),
                _buf: buf,
            });
            start += len;
        }
        Ok(TrainingData::Resident { n, chunks, indices })
    }

    pub fn streamed(samples: Vec<f32>, n: usize, batch_capacity: usize) -> Self {
        TrainingData::Streamed {
            samples,
            n,
            order: Vec::new(),
            batch: Vec::with_capacity(batch_capacity),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            TrainingData::Resident { n, .. } | TrainingData::Streamed { n, .. } => *n,
        }
    }

    /// Sets the order in which the data set is visited (one epoch).
    pub fn set_order(&mut self, dev: &Device, order: &[u32]) -> Result<()> {
        if order.len() > self.len() || order.iter().any(|&i| i as usize >= self.len()) {
            return Err(Error::invalid(
                "epoch order refers to samples outside the data set",
            ));
        }
        match self {
            TrainingData::Resident { indices, .. } => {
                dev.queue
                    .write_buffer(indices, 0, bytemuck::cast_slice(order));
            }
            TrainingData::Streamed { order: o, .. } => *o = order.to_vec(),
        }
        Ok(())
    }

    /// The gather launches of a batch (none when streamed: the host writes the batch).
    pub fn gather(
        &self,
        dev: &Device,
        per_sample: u32,
        batch: u32,
        x_off: u32,
    ) -> Result<Vec<Dispatch>> {
        let TrainingData::Resident { chunks, .. } = self else {
            return Ok(Vec::new());
        };
        chunks
            .iter()
            .map(|c| {
                GatherSpec {
                    per_sample,
                    batch,
                    x_off,
                    chunk_start: c.start,
                    chunk_len: c.len,
                }
                .dispatch(dev, c.group.clone())
            })
            .collect()
    }

    /// Streamed: the batch at `offset` of the epoch's order, assembled on the host.
    pub fn host_batch(&mut self, offset: usize, size: usize, per_sample: usize) -> Result<&[f32]> {
        let TrainingData::Streamed {
            samples,
            order,
            batch,
            ..
        } = self
        else {
            return Err(Error::invalid("the data set is on the device"));
        };
        if offset + size > order.len() {
            return Err(Error::invalid("batch runs past the end of the epoch order"));
        }
        batch.clear();
        for &i in &order[offset..offset + size] {
            let i = i as usize;
            batch.extend_from_slice(&samples[i * per_sample..(i + 1) * per_sample]);
        }
        Ok(batch)
    }
}
