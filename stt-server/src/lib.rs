//! stt-server: an OpenAI-compatible speech-to-text service on whisper.cpp.
//!
//! The binary (`src/main.rs`) is a thin CLI over this library: `serve`,
//! `transcribe`, `info` and `models …`.
#![forbid(unsafe_code)]

pub mod config;
pub mod engine;
pub mod live;
pub mod models;
pub mod server;
pub mod transcribe;
