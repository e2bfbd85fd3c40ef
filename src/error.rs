//! lamp's error type: every failure a user can cause ends here, with a message that names the
//! file (or argument) and the problem, and becomes a one-line error and a non-zero exit.

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
    #[error("training stopped: {0}")]
    NonFinite(String),
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
}
