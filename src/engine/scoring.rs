//! Scoring many samples: batches run back to back. Each batch's submit holds its forward pass,
//! its errors and a copy of its results into a mappable buffer of its own, so the next batch is
//! uploaded and submitted before this one's results are read: the device need not wait for the
//! host between batches (unless reading a batch takes longer than running the next), and the
//! host reads one batch while the next runs. Two such buffers take turns (a third batch waits
//! for the first's results). Results are those of one batch at a time, bit for bit: the order
//! of work on the device is unchanged.

use super::Engine;
use crate::error::{Error, Result};
use crate::kernels::STATS_HEADER;
use std::collections::VecDeque;
use std::sync::mpsc;

/// Batches whose results may be on their way at once (one runs while the other is read).
const IN_FLIGHT: usize = 2;

/// What one scoring submit runs: `kept` samples of a batch of `run` (padded), whether to copy
/// the reconstructions back, and whether to pack the weights first (the first batch of a call).
struct ScoringBatch {
    kept: usize,
    run: usize,
    keep_recon: bool,
    pack: bool,
}

/// A submitted batch whose results are being copied to `slot`.
struct InFlight {
    slot: usize,
    /// Samples of the batch that are the caller's (the rest is padding).
    kept: usize,
    /// The batch size it ran at.
    run: usize,
    submission: wgpu::SubmissionIndex,
    mapped: mpsc::Receiver<std::result::Result<(), wgpu::BufferAsyncError>>,
}

impl Engine {
    /// Scores `x` (any number of samples [n, C, H, W]) in batches: per-sample plain errors.
    pub fn score(&mut self, x: &[f32]) -> Result<Vec<f32>> {
        Ok(self.score_batches(x, false)?.0)
    }

    /// Scores `x` as `score` does, and returns the reconstructions too.
    pub fn score_with_recon(&mut self, x: &[f32]) -> Result<(Vec<f32>, Vec<f32>)> {
        self.score_batches(x, true)
    }

    fn score_batches(&mut self, x: &[f32], keep_recon: bool) -> Result<(Vec<f32>, Vec<f32>)> {
        let p = self.arch.input_len();
        if !x.len().is_multiple_of(p) {
            return Err(Error::invalid(format!(
                "{} values are not whole samples of {} (the model's input {:?})",
                x.len(),
                p,
                self.arch.input_shape()
            )));
        }
        let n = x.len() / p;
        let mut scores = Vec::with_capacity(n);
        let mut recon = Vec::with_capacity(if keep_recon { x.len() } else { 0 });
        // Per slot: max_batch errors, then (keep_recon) max_batch reconstructions.
        let slot_len = self.max_batch * (1 + if keep_recon { p } else { 0 });
        let slots: Vec<wgpu::Buffer> = (0..IN_FLIGHT.min(n.div_ceil(self.max_batch)))
            .map(|_| {
                self.device.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("scoring readback"),
                    size: (slot_len * 4) as u64,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            })
            .collect();
        let mut in_flight: VecDeque<InFlight> = VecDeque::new();
        let mut padded = Vec::new();
        for (i, start) in (0..n).step_by(self.max_batch).enumerate() {
            let b = self.max_batch.min(n - start);
            let chunk = &x[start * p..(start + b) * p];
            // A last, partial batch after full ones is padded to the full size: its plan is
            // built already, where a plan of its own would compile every layer again. Samples
            // are scored independently, so the padding changes nothing of the others.
            let run = if b < self.max_batch && (start > 0 || self.pad_batches) {
                padded.clear();
                padded.extend_from_slice(chunk);
                padded.resize(self.max_batch * p, 0.0);
                self.upload_batch(&padded, self.max_batch)?;
                self.max_batch
            } else {
                self.upload_batch(chunk, b)?;
                b
            };
            // The slot this batch copies into must have been read.
            if in_flight.len() == IN_FLIGHT {
                if let Some(done) = in_flight.pop_front() {
                    self.collect(&slots, done, keep_recon, &mut scores, &mut recon)?;
                }
            }
            let slot = i % IN_FLIGHT;
            let batch = ScoringBatch {
                kept: b,
                run,
                keep_recon,
                pack: i == 0,
            };
            in_flight.push_back(self.submit_scoring(&slots[slot], slot, batch)?);
        }
        while let Some(done) = in_flight.pop_front() {
            self.collect(&slots, done, keep_recon, &mut scores, &mut recon)?;
        }
        Ok((scores, recon))
    }

    /// Submits the uploaded batch's forward pass and errors, and copies its per-sample errors
    /// (and reconstructions) into `buf`, then asks for `buf` to be mapped.
    fn submit_scoring(
        &mut self,
        buf: &wgpu::Buffer,
        slot: usize,
        batch: ScoringBatch,
    ) -> Result<InFlight> {
        let ScoringBatch {
            kept,
            run,
            keep_recon,
            pack,
        } = batch;
        self.plan(run)?;
        let plan = &self.plans[&run];
        // The weights cannot change between the batches of one call: the first packs them
        // (kernels::pack), the others skip that launch (conv-ae 128: 12 ms a batch on lavapipe).
        let skip = usize::from(!pack && self.pack.is_some());
        let mut enc = self
            .arenas
            .record(&self.device, &[&plan.forward[skip..], &plan.score_loss]);
        let errors_at = (STATS_HEADER * 4) as u64;
        enc.copy_buffer_to_buffer(&self.arenas.stats, errors_at, buf, 0, (run * 4) as u64);
        if keep_recon {
            let p = self.arch.input_len();
            let recon_at = (self.layout.h[self.layout.h.len() - 1] * 4) as u64;
            let dst = (self.max_batch * 4) as u64;
            enc.copy_buffer_to_buffer(&self.arenas.acts, recon_at, buf, dst, (run * p * 4) as u64);
        }
        let submission = self.device.queue.submit([enc.finish()]);
        let (tx, mapped) = mpsc::channel();
        buf.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        Ok(InFlight {
            slot,
            kept,
            run,
            submission,
            mapped,
        })
    }

    /// Waits for a submitted batch and appends its kept samples' errors (and reconstructions).
    fn collect(
        &self,
        slots: &[wgpu::Buffer],
        done: InFlight,
        keep_recon: bool,
        scores: &mut Vec<f32>,
        recon: &mut Vec<f32>,
    ) -> Result<()> {
        self.device
            .device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(done.submission),
                timeout: None,
            })
            .map_err(|e| Error::Device(format!("device lost or timed out: {e}")))?;
        self.device.check()?;
        // The wait above ran the callback, or another thread's poll of the same device is
        // running it (detectors on one device in several threads): wait for it, never forever
        // (a dropped callback ends the wait at once).
        done.mapped
            .recv_timeout(std::time::Duration::from_secs(60))
            .map_err(|_| Error::Device("scoring readback: the callback never ran".into()))?
            .map_err(|e| Error::Device(format!("scoring readback failed: {e}")))?;
        debug_assert!(done.kept <= done.run);
        let buf = &slots[done.slot];
        {
            let view = buf
                .slice(..)
                .get_mapped_range()
                .map_err(|e| Error::Device(format!("scoring readback failed: {e}")))?;
            let values: &[f32] = bytemuck::cast_slice(&view);
            scores.extend_from_slice(&values[..done.kept]);
            if keep_recon {
                let p = self.arch.input_len();
                let at = self.max_batch;
                recon.extend_from_slice(&values[at..at + done.kept * p]);
            }
        }
        buf.unmap();
        Ok(())
    }
}
