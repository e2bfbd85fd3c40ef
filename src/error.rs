//! lamp's error type: every failure a user can cause ends here, with a message that names the
//! file (or option) and the problem. Options are named as the library spells them, in backticks
//! (`` `lr` ``, `` `val_split` ``); the command line shows its flags there instead.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    NoAdapter(String),
    #[error("GPU device: {0}")]
    Device(String),
    #[error("out of GPU memory: {0}")]
    OutOfMemory(String),
    #[error("{path}: {msg}")]
    File { path: PathBuf, msg: String },
    #[error("{0}")]
    Invalid(String),
    /// An option outside what it allows, e.g. `lr` = -1.
    #[error("`{option}` {problem}")]
    Setting {
        option: &'static str,
        problem: String,
    },
    #[error("training stopped: {0}")]
    NonFinite(String),
    /// A stop was asked for (SIGINT, SIGTERM: `detect::STOP_SIGNAL`); training ended at a step
    /// boundary, and the snapshot on disk is the one after `epochs_done` whole epochs (`unsaved`:
    /// why a later epoch's could not be written, if one could not).
    #[error(
        "interrupted by signal {signal} after {}{}",
        count(*epochs_done, "whole epoch"),
        unsaved.as_ref().map_or(String::new(), |e| format!("; a later epoch's snapshot could not be written: {e}"))
    )]
    Interrupted {
        signal: i32,
        epochs_done: u32,
        unsaved: Option<String>,
    },
    /// A checkpoint written between epochs of a run that never finished (so never calibrated).
    #[error(
        "{}: training stopped after epoch {epochs_done} and was never calibrated; finish the run by \
         resuming it from this checkpoint",
        path.display()
    )]
    Unfinished { path: PathBuf, epochs_done: String },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn file(path: impl AsRef<Path>, msg: impl std::fmt::Display) -> Error {
        Error::File {
            path: path.as_ref().to_path_buf(),
            msg: msg.to_string(),
        }
    }
    pub fn invalid(msg: impl std::fmt::Display) -> Error {
        Error::Invalid(msg.to_string())
    }
    /// `option` (its name in the library's options) and what is wrong with its value.
    pub fn setting(option: &'static str, problem: impl std::fmt::Display) -> Error {
        Error::Setting {
            option,
            problem: problem.to_string(),
        }
    }
}

/// `n` and a noun, plural unless n is 1: "1 epoch", "3 held-out images" (nouns with a plain -s
/// plural), for messages.
pub fn count(n: impl Into<u64>, noun: &str) -> String {
    let n = n.into();
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
