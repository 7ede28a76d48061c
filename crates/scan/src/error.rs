use std::path::{Path, PathBuf};

/// Every failure names the file it concerns, so a bad scan in a folder of thousands is easy to find.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The I/O error is part of the message, not a separate cause: printed with its causes
    /// (`{:#}`), it would otherwise appear twice.
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error("{path}: {msg}")]
    Invalid { path: PathBuf, msg: String },
}

impl ScanError {
    pub fn invalid(path: &Path, msg: impl Into<String>) -> Self {
        ScanError::Invalid {
            path: path.to_path_buf(),
            msg: msg.into(),
        }
    }
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        ScanError::Io {
            path: path.to_path_buf(),
            err: source,
        }
    }
}

pub type Result<T> = std::result::Result<T, ScanError>;
