//! A safe Rust API over whisper.cpp, loaded at run time by `whisper-sys`.
//!
//! - [`Context`]: a loaded model — cheap to clone, `Send + Sync`, freed with its last user.
//! - [`State`]: one decoding state — `Send`, not `Sync`; create one per worker thread.
//! - [`Params`]: decoding parameters on top of the library's own defaults.
//! - [`Transcript`]: owned segments, tokens, words and language.
//! - [`audio`] (feature `audio`, default): decode WAV (RF64 too), FLAC, MP3, AAC/M4A,
//!   ALAC, Vorbis and Opus (Ogg, WebM) to 16 kHz mono.
//! - [`heap`]: the heap in use as the C allocator counts it (leak checks, metrics).
//! - [`Vad`]: Silero voice activity detection (`Send`, not `Sync`): spans of
//!   speech in seconds; [`vad`] also checks the VAD model file.
//! - [`live`]: live transcription's pieces: a VAD fed audio in pieces, turn
//!   detection, and the agreement of two decodes.
//! - [`patches`]: what the crate relies on from whisper-stt's patch series, and
//!   its fallbacks with stock libraries.
//! - [`ggml_file`]: the model file format — reader, writer and the structural
//!   check [`Context::new`] runs before whisper.cpp reads a file.
//!
//! Every input is validated before it reaches C; a callback panic is caught;
//! nothing here aborts the process on bad input.
//!
//! ```no_run
//! use whisper_safe::{Context, ContextOptions, Params};
//!
//! whisper_safe::set_process_environment(); // first thing in main
//! whisper_safe::init()?; // libraries from WHISPER_LIB_DIR / WHISPER_ARTIFACTS_DIR
//! let context = Context::new("ggml-base-q5_1.bin", &ContextOptions::default())?;
//! let mut state = context.create_state()?;
//! let audio = whisper_safe::audio::decode(&std::fs::read("speech.mp3")?, &Default::default())?;
//! let transcript = state.full(&Params::greedy().threads(2).language(Some("en")), &audio.samples)?;
//! println!("{}", transcript.text());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Errors
//! Every fallible function returns [`Error`], whose messages name the file,
//! parameter or code concerned.
//!
//! # Safety
//! This crate contains the `unsafe` needed to call whisper.cpp; its API is safe.
//! Call [`set_process_environment`] first thing in `main`, before other threads
//! start.
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

#[cfg(feature = "audio")]
pub mod audio;
mod context;
mod error;
pub mod ggml_file;
pub mod guard;
pub mod heap;
mod language;
mod library;
pub mod live;
mod logging;
mod params;
pub mod patches;
pub mod pieces;
pub mod quantize;
mod state;
mod transcript;
pub mod vad;
pub mod vad_halves;

pub use context::{Context, ContextOptions, ModelInfo};
pub use error::{Error, Result};
pub use language::Language;
pub use library::{
    init, init_with, loaded, set_process_environment, DeviceInfo, Layout, LoadError, LoadInfo,
    LoaderConfig, DEFAULT_ARTIFACTS_DIR, DEFAULT_MODEL_SIZE,
};
pub use params::{AudioContext, Params, Sampling, MAX_DECODERS, TRIM_LIMIT_SECONDS};
pub use state::{CancelToken, RunOptions, State, MIN_SAMPLES, SAMPLE_RATE};
pub use transcript::{RunTimings, Segment, Token, Transcript, Word};
pub use vad::{SpeechSpan, Vad, VadOptions, VadParams};
