//! What a caller submits ([`JobSpec`]) and what it gets back ([`Outcome`] or
//! [`RunError`]); the queue that carries jobs is in `queue`.

use std::sync::Arc;

use tokio::sync::mpsc;
use whisper_safe::{Segment, Transcript};

use super::model::LoadedModel;
use super::options::TranscribeOptions;

/// What a caller asks for.
pub struct JobSpec {
    /// The request id, for log lines.
    pub request_id: Arc<str>,
    /// 16 kHz mono samples.
    pub samples: Vec<f32>,
    /// Decoding choices.
    pub options: TranscribeOptions,
    /// The language code checked by [`LoadedModel::check`] (`None`: detect).
    pub language: Option<String>,
    /// Receives each segment as soon as its piece is decoded (streaming responses).
    pub segments: Option<mpsc::UnboundedSender<Segment>>,
    /// Receives the share of the audio done, 0..=1 (progress bars).
    pub progress: Option<Arc<dyn Fn(f32) + Send + Sync>>,
}

/// A successful transcription.
#[derive(Debug)]
pub struct Outcome {
    /// The transcript.
    pub transcript: Transcript,
    /// The model that produced it.
    pub model: Arc<LoadedModel>,
}

/// Why a submitted job produced no transcript.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RunError {
    /// Cancelled (the client went away, or the request timed out).
    #[error("transcription cancelled")]
    Cancelled,
    /// whisper refused the audio.
    #[error("invalid audio: {0}")]
    InvalidAudio(String),
    /// whisper refused a parameter.
    #[error("invalid {param}: {message}")]
    InvalidParam {
        /// The request parameter.
        param: &'static str,
        /// Why.
        message: String,
    },
    /// A fault in the engine or in whisper.cpp (details are logged).
    #[error("transcription failed: {0}")]
    Failed(String),
}

impl From<whisper_safe::Error> for RunError {
    fn from(error: whisper_safe::Error) -> Self {
        use whisper_safe::Error as E;
        match error {
            E::Aborted => Self::Cancelled,
            E::InvalidAudio(message) => Self::InvalidAudio(message),
            E::InvalidParam { name, reason } => Self::InvalidParam {
                param: name,
                message: reason,
            },
            E::UnsupportedLanguage { code, reason } => Self::InvalidParam {
                param: "language",
                message: format!("{code:?}: {reason}"),
            },
            other => Self::Failed(other.to_string()),
        }
    }
}
