//! The library's error type: every failure names the file or value at fault.

use std::path::PathBuf;

pub type Result<T, E = BorexError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum BorexError {
    // The io::Error is part of the message, not a `source`: reports print the chain once.
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },

    #[error("{path}: not a readable image ({reason})")]
    Image { path: PathBuf, reason: String },

    #[error("{path}: {reason}")]
    Model { path: PathBuf, reason: String },

    #[error("{path}: labels: {reason}")]
    Labels { path: PathBuf, reason: String },

    #[error("ONNX Runtime: {0}")]
    Runtime(String),

    #[error("GPU: {0}")]
    Gpu(String),

    #[error("no GPU adapter found ({0}); install a Vulkan driver (on machines without a GPU: Debian's mesa-vulkan-drivers and libvulkan1, which scripts/setup.sh installs) or use --device cpu")]
    NoAdapter(String),

    #[error("invalid input: {0}")]
    InvalidInput(String),
}

impl BorexError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), err: source }
    }

    pub fn model(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Self::Model { path: path.into(), reason: reason.into() }
    }

    pub fn invalid(msg: impl Into<String>) -> Self {
        Self::InvalidInput(msg.into())
    }
}

impl From<ort::Error> for BorexError {
    fn from(e: ort::Error) -> Self {
        Self::Runtime(e.to_string())
    }
}
