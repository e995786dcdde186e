//! [`BenchError`]: what stops a measurement.

use std::path::PathBuf;

/// Why a measurement could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// whisper.cpp refused to load or run.
    #[error("whisper.cpp: {0}")]
    Whisper(#[from] whisper_safe::Error),
    /// A clip could not be decoded.
    #[error("audio {path}: {source}")]
    Audio {
        /// The clip.
        path: PathBuf,
        /// The cause.
        source: whisper_safe::audio::AudioError,
    },
    /// An HTTP exchange failed below the status line.
    #[error(transparent)]
    Http(#[from] crate::http::HttpError),
    /// The server did not start, died or answered nonsense.
    #[error("stt-server {bin}: {reason}")]
    Server {
        /// The binary.
        bin: PathBuf,
        /// What happened.
        reason: String,
    },
    /// A child command failed or printed no result.
    #[error("command `{command}` failed: {reason}")]
    Command {
        /// The command line.
        command: String,
        /// Exit status and the end of its output.
        reason: String,
    },
    /// A result printed by a child command is not the JSON expected.
    #[error("result of `{command}` is not valid JSON: {source}")]
    Json {
        /// The command line.
        command: String,
        /// The cause.
        source: serde_json::Error,
    },
    /// Checks of the load test failed (each listed).
    #[error("load test failed {} check(s): {}", .0.len(), .0.join("; "))]
    Checks(Vec<String>),
}

impl BenchError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}

/// Result of the harness.
pub type Result<T, E = BenchError> = std::result::Result<T, E>;
