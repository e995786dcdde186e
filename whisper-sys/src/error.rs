//! The loader's error type.

use std::error::Error as StdError;
use std::fmt::Write as _;
use std::path::PathBuf;

/// Why the whisper.cpp libraries could not be loaded. Every variant names the
/// file or directory concerned; dynamic-linker messages are kept whole.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// No library directory was configured and none of the derived candidates exists.
    #[error("no whisper.cpp library directory found (set WHISPER_LIB_DIR or WHISPER_ARTIFACTS_DIR); tried: {}", display_paths(.tried))]
    NoLibraryDir {
        /// The candidate directories, in the order they were tried.
        tried: Vec<PathBuf>,
    },
    /// The configured library directory does not exist or is not a directory.
    #[error("library directory {} does not exist or is not a directory (from {variable})", .path.display())]
    DirNotFound {
        /// The directory.
        path: PathBuf,
        /// The setting it came from.
        variable: &'static str,
    },
    /// A library the layout needs is not in the directory.
    #[error("missing library {}: the {layout} layout needs it", .path.display())]
    MissingLibrary {
        /// The expected file.
        path: PathBuf,
        /// The layout being loaded.
        layout: &'static str,
    },
    /// The directory holds neither `libggml-cpu.so.0` nor any `libggml-cpu-*.so`.
    #[error("no CPU backend in {}: expected libggml-cpu.so.0 (linked layout) or libggml-cpu-<variant>.so (dynamic layout)", .dir.display())]
    UnknownLayout {
        /// The library directory.
        dir: PathBuf,
    },
    /// `dlopen` failed; `reason` is the dynamic linker's whole message.
    #[error("cannot load {}: {reason}", .path.display())]
    Open {
        /// The file passed to `dlopen`.
        path: PathBuf,
        /// The dlerror chain.
        reason: String,
    },
    /// A symbol the bindings need is not exported.
    #[error("{} lacks a required symbol: {reason}", .path.display())]
    MissingSymbol {
        /// The library searched.
        path: PathBuf,
        /// The dlerror chain (names the symbol).
        reason: String,
    },
    /// The library reports another version than the one the bindings were made for.
    #[error("{} is {component} {found}, but this build needs exactly {expected}", .path.display())]
    VersionMismatch {
        /// The library file.
        path: PathBuf,
        /// `whisper` or `ggml`.
        component: &'static str,
        /// The version the bindings were generated for.
        expected: &'static str,
        /// The version the library reports.
        found: String,
    },
    /// `manifest.json` exists but cannot be read or parsed.
    #[error("invalid artifact manifest {}: {reason}", .path.display())]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A library is not listed in the directory's manifest.
    #[error("{} is not listed in {}; regenerate it with scripts/write-manifest.sh", .path.display(), .manifest.display())]
    NotInManifest {
        /// The library file.
        path: PathBuf,
        /// The manifest.
        manifest: PathBuf,
    },
    /// A library's sha256 differs from its manifest entry.
    #[error("{} has sha256 {actual}, but {} says {expected}", .path.display(), .manifest.display())]
    ChecksumMismatch {
        /// The library file.
        path: PathBuf,
        /// The manifest.
        manifest: PathBuf,
        /// The sha256 the manifest lists.
        expected: String,
        /// The sha256 of the file.
        actual: String,
    },
    /// Reading a file failed.
    #[error("cannot read {}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// `WHISPER_CPU_BACKEND` names a variant or file that is not there.
    #[error("CPU backend {} (from WHISPER_CPU_BACKEND={requested}) does not exist", .path.display())]
    BackendNotFound {
        /// The value of `WHISPER_CPU_BACKEND`.
        requested: String,
        /// The file it resolves to.
        path: PathBuf,
    },
    /// `ggml_backend_load` refused a backend module.
    #[error("ggml could not register the backend {} (not a ggml backend, or unsupported by this CPU)", .path.display())]
    BackendRejected {
        /// The module file.
        path: PathBuf,
    },
    /// After loading, ggml has no compute device; loading a model would abort the process.
    #[error("no ggml compute device registered from {}: no backend module there supports this CPU", .dir.display())]
    NoDevices {
        /// The library directory.
        dir: PathBuf,
    },
    /// The libraries are already loaded from another directory in this process.
    #[error("whisper.cpp is already loaded from {}; cannot also load {} in the same process", .loaded.display(), .requested.display())]
    AlreadyLoaded {
        /// Where the loaded libraries came from.
        loaded: PathBuf,
        /// The directory asked for now.
        requested: PathBuf,
    },
}

/// Formats an error and all its sources as `outer: cause: root cause`.
pub(crate) fn error_chain(error: &dyn StdError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            let _ = write!(text, ": {cause_text}");
        }
        source = cause.source();
    }
    text
}

fn display_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
