//! Raw FFI to whisper.cpp, loaded at run time.
//!
//! whisper.cpp's shared libraries are opened by full path, in dependency order,
//! from a directory chosen by environment — no `LD_LIBRARY_PATH`:
//!
//! | layout | files in the directory | open order |
//! |---|---|---|
//! | linked | `libggml-base.so.0`, `libggml-cpu.so.0`, `libggml.so.0`, `libwhisper.so.1` | base → cpu → ggml → whisper |
//! | dynamic | `libggml-base.so.0`, `libggml.so.0`, `libwhisper.so.1`, `libggml-cpu-<variant>.so`… | base → ggml → whisper, then the backend modules |
//!
//! [`load`] reads the environment ([`LoaderConfig::from_env`] documents the
//! precedence of `WHISPER_LIB_DIR`, `WHISPER_ARTIFACTS_DIR`, `WHISPER_MODEL_SIZE`
//! and `WHISPER_CPU_BACKEND`), opens each library with `RTLD_NOW`, checks
//! `ggml_version()` and `whisper_version()` exactly, verifies every file against
//! `manifest.json` when the directory has one, registers the backends, and refuses
//! to continue without a compute device. It runs once per process and never unloads.
//!
//! ```no_run
//! let library = whisper_sys::load()?;
//! println!("{} on {:?}", library.info().whisper_version, library.info().layout);
//! # Ok::<(), whisper_sys::LoadError>(())
//! ```
//!
//! Everything in [`WhisperApi`] is `unsafe` to call; the `whisper-safe` crate wraps it.

mod error;
mod loader;
mod locate;
mod manifest;

#[allow(
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    dead_code,
    unsafe_op_in_unsafe_fn,
    clippy::all
)]
mod bindings {
    include!("bindings.rs");
}

pub use bindings::*;
pub use error::LoadError;
pub use loader::{
    get, load, load_with, on_opened, DeviceInfo, Library, LoadInfo, GGML_VERSION, WHISPER_VERSION,
};
pub use locate::{
    Layout, LoaderConfig, DEFAULT_ARTIFACTS_DIR, DEFAULT_MODEL_SIZE, ENV_ARTIFACTS_DIR,
    ENV_CPU_BACKEND, ENV_LIB_DIR, ENV_MODEL_SIZE,
};
pub use manifest::MANIFEST_FILE;

#[cfg(all(test, feature = "regenerate"))]
mod bindings_are_current {
    /// The checked-in bindings equal what bindgen makes from the pinned headers.
    #[test]
    fn checked_in_bindings_match_the_pinned_headers() {
        let generated = include_str!(concat!(env!("OUT_DIR"), "/bindings.rs"));
        let checked_in = include_str!("bindings.rs");
        assert!(
            generated == checked_in,
            "whisper-sys/src/bindings.rs is stale: run scripts/regen-bindings.sh"
        );
    }
}
