//! Buffers, readback and error handling on the device: storage and uniform buffers, blocking
//! reads, and the error scopes that turn everything wgpu reports into an `Error`.

use super::Device;
use crate::error::{Error, Result};
use std::sync::mpsc;

impl Device {
    /// A storage buffer of `len` f32 (at least one element so a binding is never empty).
    pub fn storage(&self, label: &str, len: usize) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            // Whole vec4s: the GEMM also reads acts and params as vec4 arrays.
            size: (len.max(1) * 4).next_multiple_of(16) as u64,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    pub fn uniform(&self, label: &str, bytes: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// Reads `len` f32 from `buf` starting at element `offset`, waiting for the queue.
    pub fn read_f32(&self, buf: &wgpu::Buffer, offset: usize, len: usize) -> Result<Vec<f32>> {
        let bytes = self.read_bytes(buf, (offset * 4) as u64, (len * 4) as u64)?;
        Ok(bytemuck::cast_slice(&bytes).to_vec())
    }

    pub fn read_bytes(&self, buf: &wgpu::Buffer, offset: u64, size: u64) -> Result<Vec<u8>> {
        if size == 0 {
            return Ok(Vec::new());
        }
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(buf, offset, &staging, 0, size);
        self.queue.submit([enc.finish()]);
        let (tx, rx) = mpsc::channel();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.wait()?;
        rx.recv()
            .map_err(|_| Error::Device("readback callback never ran".into()))?
            .map_err(|e| Error::Device(format!("readback failed: {e}")))?;
        let out = staging
            .slice(..)
            .get_mapped_range()
            .map_err(|e| Error::Device(format!("readback failed: {e}")))?
            .to_vec();
        staging.unmap();
        Ok(out)
    }

    /// Blocks until all submitted work is done.
    pub fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Device(format!("device lost or timed out: {e}")))?;
        self.check()
    }

    /// An error wgpu reported outside any error scope since the device was made, if any.
    pub fn check(&self) -> Result<()> {
        match self.uncaptured.lock().ok().and_then(|s| s.clone()) {
            None => Ok(()),
            Some(e) if e.contains("out of memory") || e.contains("OutOfMemory") => {
                Err(Error::OutOfMemory(e))
            }
            Some(e) => Err(Error::Device(e)),
        }
    }

    /// Runs `f` inside validation and out-of-memory error scopes and turns what they caught into
    /// an error, so nothing wgpu reports is ignored.
    pub fn checked<T>(&self, what: &str, f: impl FnOnce() -> T) -> Result<T> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let val = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        let v = pollster::block_on(val.pop());
        let o = pollster::block_on(oom.pop());
        if let Some(e) = o {
            return Err(Error::OutOfMemory(format!("{what}: {e}")));
        }
        if let Some(e) = v {
            return Err(Error::Device(format!("{what}: {e}")));
        }
        Ok(out)
    }
}
