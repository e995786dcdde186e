//! The error type of the safe API.

use std::path::PathBuf;

/// Everything that can go wrong in `whisper-safe`. Inputs are validated before
/// any call into C, so invalid input is an error here, never a process abort.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The whisper.cpp libraries could not be loaded.
    #[error(transparent)]
    Load(#[from] whisper_sys::LoadError),
    /// The model file is missing, unreadable or not a whisper ggml model.
    #[error("cannot load model {}: {reason}", .path.display())]
    Model {
        /// The model file.
        path: PathBuf,
        /// What whisper.cpp or the pre-check reported.
        reason: String,
    },
    /// whisper.cpp could not allocate a decoding state.
    #[error("cannot create a decoding state: {reason}")]
    StateInit {
        /// The last error whisper.cpp logged.
        reason: String,
    },
    /// The audio cannot be transcribed as given.
    #[error("invalid audio: {0}")]
    InvalidAudio(String),
    /// A parameter is out of range.
    #[error("invalid parameter {name}: {reason}")]
    InvalidParam {
        /// The parameter.
        name: &'static str,
        /// Why it is rejected.
        reason: String,
    },
    /// The language code is not one whisper knows, or the model cannot use it.
    #[error("unsupported language {code:?}: {reason}")]
    UnsupportedLanguage {
        /// The code as given.
        code: String,
        /// Why it is rejected.
        reason: String,
    },
    /// The run was cancelled through its [`CancelToken`](crate::CancelToken).
    #[error("transcription aborted")]
    Aborted,
    /// A user callback (or the reading of a segment for it) panicked; the run
    /// was stopped and the panic message kept.
    #[error("a callback panicked: {0}")]
    CallbackPanicked(String),
    /// `whisper_full_with_state` failed with a return code.
    #[error("whisper_full failed with code {code}: {reason}")]
    Transcription {
        /// The return code.
        code: i32,
        /// What the code means, and whisper.cpp's last error message.
        reason: String,
    },
    /// whisper.cpp's voice activity detection failed.
    #[error("voice activity detection failed: {reason}")]
    Vad {
        /// The last error whisper.cpp logged.
        reason: String,
    },
    /// whisper.cpp freed this state after a failed allocation (code -7); it
    /// cannot be used again. Create a new [`State`](crate::State).
    #[error("the decoding state was freed by a failed run and cannot be reused")]
    Poisoned,
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
