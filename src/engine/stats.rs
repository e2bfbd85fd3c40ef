//! The loss statistics: the stats header read back asynchronously (a copy into a staging buffer
//! and a map that is polled, never waited for) or on demand.

use super::Engine;
use crate::error::{Error, Result};
use crate::kernels::{Stat, STATS_HEADER};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

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

impl Stats {
    fn decode(h: &[f32]) -> Stats {
        let at = |s: Stat| h[s.index()];
        let steps = at(Stat::Steps) as u32;
        Stats {
            loss: at(Stat::Loss),
            mean_loss: if steps > 0 {
                at(Stat::LossSum) / steps as f32
            } else {
                f32::NAN
            },
            steps,
            clamps_total: at(Stat::ClampSum) as u64,
            nonfinite: at(Stat::NonFinite).to_bits() != 0,
            clamps_last: at(Stat::Clamps) as u64,
        }
    }
}

/// The staging buffer of the asynchronous readback and whether a read is in flight.
pub(crate) struct Staging {
    buf: wgpu::Buffer,
    ready: Arc<AtomicBool>,
    pending: bool,
}

impl Staging {
    pub fn new(dev: &wgpu::Device) -> Staging {
        Staging {
            buf: dev.create_buffer(&wgpu::BufferDescriptor {
                label: Some("stats readback"),
                size: (STATS_HEADER * 4) as u64,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
            ready: Arc::new(AtomicBool::new(false)),
            pending: false,
        }
    }
}

impl Engine {
    /// Zeroes the running loss sums and the non-finite flag (ordered after submitted work).
    pub fn reset_stats(&self) {
        let zeros = [0f32; STATS_HEADER];
        self.device
            .queue
            .write_buffer(&self.arenas.stats, 0, bytemuck::cast_slice(&zeros));
    }

    /// Starts an asynchronous read of the statistics header; `poll_stats` collects it.
    pub fn request_stats(&mut self) {
        if self.staging.pending {
            return;
        }
        let dev = &self.device;
        let mut enc = dev.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(
            &self.arenas.stats,
            0,
            &self.staging.buf,
            0,
            (STATS_HEADER * 4) as u64,
        );
        dev.queue.submit([enc.finish()]);
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
        self.device.check()?;
        if !self.staging.pending {
            return Ok(None);
        }
        self.device
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
            Stats::decode(bytemuck::cast_slice(&view))
        };
        self.staging.buf.unmap();
        self.staging.pending = false;
        Ok(Some(s))
    }

    /// Requests the statistics and waits for them.
    pub fn wait_stats(&mut self) -> Result<Stats> {
        self.request_stats();
        self.device.wait()?;
        // The wait ran the callback, or another thread's poll of the same device is running it
        // (engines on one device in several threads): wait for it a while, never forever.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            if let Some(s) = self.poll_stats()? {
                return Ok(s);
            }
            if std::time::Instant::now() > deadline {
                return Err(Error::Device("statistics readback did not complete".into()));
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}
