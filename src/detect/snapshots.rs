//! A training run's snapshots between epochs (`MODEL.partial.safetensors`): when they are
//! written, and what is on disk when training ends early.

use super::checkpoint::Checkpoint;
use super::train::EpochReport;
use crate::error::{Error, Result};
use std::path::Path;
use std::time::{Duration, Instant};

/// Snapshots between epochs, at most one write per interval (a checkpoint of a large model is
/// tens of MB, and short epochs would write gigabytes in a run); the newest one not written is
/// kept, to be written when training ends.
pub struct Snapshots<'a> {
    path: &'a Path,
    every: Duration,
    written: Option<Instant>,
    /// The epoch of the snapshot this run last wrote.
    on_disk: Option<u32>,
    pending: Option<(u32, Checkpoint)>,
}

impl<'a> Snapshots<'a> {
    pub fn new(path: &'a Path, every: Duration) -> Self {
        Snapshots {
            path,
            every,
            written: None,
            on_disk: None,
            pending: None,
        }
    }

    /// Writes `ck`, the state after `epoch` epochs, if it is the run's first or the interval has
    /// passed since the last write; otherwise keeps it.
    pub fn after_epoch(&mut self, epoch: u32, ck: Checkpoint) -> Result<()> {
        if self.written.is_some_and(|t| t.elapsed() < self.every) {
            self.pending = Some((epoch, ck));
            return Ok(());
        }
        self.pending = None;
        ck.save(self.path)?;
        self.written = Some(Instant::now());
        self.on_disk = Some(epoch);
        Ok(())
    }

    /// Writes the snapshot kept back, once training has ended with `trained`. A write that fails
    /// is the error, except after a stop that was asked for, which stays one (its exit status
    /// and resume hint), naming the snapshot that is on disk and why a later one is not.
    pub fn finish(&mut self, trained: Result<Vec<EpochReport>>) -> Result<Vec<EpochReport>> {
        let Some((epoch, ck)) = self.pending.take() else {
            return trained;
        };
        let written = ck.save(self.path);
        if written.is_ok() {
            self.on_disk = Some(epoch);
        }
        match (trained, written) {
            (trained, Ok(())) => trained,
            (Err(Error::Interrupted { signal, .. }), Err(w)) => Err(Error::Interrupted {
                signal,
                // Something is on disk: the first epoch's snapshot is written at once.
                epochs_done: self.on_disk.unwrap_or(0),
                unsaved: Some(w.to_string()),
            }),
            (_, Err(w)) => Err(w),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Arch;

    #[test]
    fn snapshots_are_written_first_then_by_interval_and_the_last_when_ended() {
        let dir = std::env::temp_dir().join(format!("lamp-snapshots-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.partial.safetensors");
        let arch = Arch::fmnist_ae();
        let after = |epoch: u32| {
            let mut ck = Checkpoint::new(arch.clone(), None, arch.init(epoch as u64));
            ck.metadata.insert("epochs_done".into(), epoch.to_string());
            ck
        };
        let on_disk = || Checkpoint::load(&path, None).unwrap().metadata["epochs_done"].clone();
        let stop = || Error::Interrupted {
            signal: 2,
            epochs_done: 3,
            unsaved: None,
        };
        // An hour apart: the first epoch's, then none until training ends (stopped here).
        let mut s = Snapshots::new(&path, Duration::from_secs(3600));
        for epoch in 1..=3 {
            s.after_epoch(epoch, after(epoch)).unwrap();
        }
        assert_eq!(on_disk(), "1");
        assert!(matches!(
            s.finish(Err(stop())),
            Err(Error::Interrupted { .. })
        ));
        assert_eq!(on_disk(), "3");
        // Finished well: the last epoch too (calibration may still fail), and nothing twice.
        s.after_epoch(4, after(4)).unwrap();
        assert_eq!(s.finish(Ok(Vec::new())).unwrap().len(), 0);
        assert_eq!(on_disk(), "4");
        // Zero: every epoch.
        let mut s = Snapshots::new(&path, Duration::ZERO);
        s.after_epoch(1, after(1)).unwrap();
        s.after_epoch(2, after(2)).unwrap();
        assert_eq!(on_disk(), "2");
        // A stop whose last snapshot cannot be written stays a stop, naming the one on disk.
        let mut s = Snapshots::new(&path, Duration::from_secs(3600));
        s.after_epoch(5, after(5)).unwrap();
        s.after_epoch(6, after(6)).unwrap();
        s.path = &dir; // a folder: the write fails
        match s.finish(Err(stop())) {
            Err(Error::Interrupted {
                epochs_done: 5,
                unsaved: Some(why),
                ..
            }) => assert!(why.contains("lamp-snapshots"), "{why}"),
            other => panic!("{other:?}"),
        }
        // Any other end: the failed write is the error.
        s.after_epoch(7, after(7)).unwrap();
        s.after_epoch(8, after(8)).unwrap();
        assert!(s.finish(Ok(Vec::new())).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
