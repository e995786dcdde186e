//! Model files: the catalog of known models, downloads, CTranslate2 import,
//! quantization and verification; the Silero VAD model ([`silero`]).

pub mod catalog;
pub mod ct2;
pub mod download;
pub mod file_lock;
mod hashing;
pub mod import;
pub mod pull;
pub mod quantize;
pub mod silero;

pub use silero::model_path as vad_model_path;
