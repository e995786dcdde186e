//! Where the libraries are: the directory chosen by environment, and its layout.

use std::path::{Path, PathBuf};

use crate::LoadError;

/// Explicit library directory; wins over everything else.
pub const ENV_LIB_DIR: &str = "WHISPER_LIB_DIR";
/// Root of the artifacts (libraries and per-size model folders).
pub const ENV_ARTIFACTS_DIR: &str = "WHISPER_ARTIFACTS_DIR";
/// Model size; selects `whisper_<size>_xeon/lib` when that folder exists.
pub const ENV_MODEL_SIZE: &str = "WHISPER_MODEL_SIZE";
/// Pins the CPU backend: a variant name (dynamic layout) or a file path (both layouts).
pub const ENV_CPU_BACKEND: &str = "WHISPER_CPU_BACKEND";
/// `WHISPER_ARTIFACTS_DIR` when unset.
pub const DEFAULT_ARTIFACTS_DIR: &str = "artifacts";
/// `WHISPER_MODEL_SIZE` when unset.
pub const DEFAULT_MODEL_SIZE: &str = "small";

/// The four libraries by the names the loader opens.
pub const GGML_BASE: &str = "libggml-base.so.0";
/// CPU backend of the linked layout.
pub const GGML_CPU_LINKED: &str = "libggml-cpu.so.0";
/// Backend registry.
pub const GGML: &str = "libggml.so.0";
/// whisper.cpp itself.
pub const WHISPER: &str = "libwhisper.so.1";

/// How the artifact directory was built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// `libggml-cpu.so.0` is linked into `libggml.so.0`; load order base → cpu → ggml → whisper.
    Linked,
    /// CPU backends are `libggml-cpu-<variant>.so` modules registered at run time.
    Dynamic,
}

impl Layout {
    /// `linked` or `dynamic`.
    pub fn name(self) -> &'static str {
        match self {
            Layout::Linked => "linked",
            Layout::Dynamic => "dynamic",
        }
    }

    /// Detects the layout from the files in `dir`.
    ///
    /// # Errors
    /// [`LoadError::UnknownLayout`] when `dir` holds no CPU backend at all.
    pub fn detect(dir: &Path) -> Result<Self, LoadError> {
        if dir.join(GGML_CPU_LINKED).exists() {
            return Ok(Layout::Linked);
        }
        if !cpu_variants(dir)?.is_empty() {
            return Ok(Layout::Dynamic);
        }
        Err(LoadError::UnknownLayout {
            dir: dir.to_owned(),
        })
    }
}

/// The `libggml-cpu-<variant>.so` modules in `dir`, sorted.
///
/// # Errors
/// [`LoadError::Io`] when `dir` cannot be listed.
pub fn cpu_variants(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    backend_modules(dir).map(|modules| {
        modules
            .into_iter()
            .filter(|path| file_name(path).starts_with("libggml-cpu-"))
            .collect()
    })
}

/// Every `libggml-<name>.so` backend module in `dir` (what ggml's loader would open), sorted.
///
/// # Errors
/// [`LoadError::Io`] when `dir` cannot be listed.
pub fn backend_modules(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let entries = std::fs::read_dir(dir).map_err(|source| LoadError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let mut modules: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            let name = file_name(path);
            name.starts_with("libggml-") && name.ends_with(".so") && name != "libggml-base.so"
        })
        .collect();
    modules.sort();
    Ok(modules)
}

fn file_name(path: &Path) -> &str {
    path.file_name().and_then(|n| n.to_str()).unwrap_or("")
}

/// What the loader opens: a library directory and an optional CPU backend pin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoaderConfig {
    /// The directory holding the libraries.
    pub lib_dir: PathBuf,
    /// `WHISPER_CPU_BACKEND`: a variant name such as `haswell`, or a file path.
    pub cpu_backend: Option<String>,
}

impl LoaderConfig {
    /// A configuration for `lib_dir` without a CPU backend pin.
    pub fn new(lib_dir: impl Into<PathBuf>) -> Self {
        Self {
            lib_dir: lib_dir.into(),
            cpu_backend: None,
        }
    }

    /// Reads the environment, see [`LoaderConfig::resolve`].
    ///
    /// # Errors
    /// As [`LoaderConfig::resolve`].
    pub fn from_env() -> Result<Self, LoadError> {
        let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
        Self::resolve(
            var(ENV_LIB_DIR).map(PathBuf::from),
            var(ENV_ARTIFACTS_DIR).map(PathBuf::from),
            var(ENV_MODEL_SIZE).map(|v| v.to_string_lossy().into_owned()),
            var(ENV_CPU_BACKEND).map(|v| v.to_string_lossy().into_owned()),
        )
    }

    /// Picks the library directory. Precedence:
    /// 1. `lib_dir` (`WHISPER_LIB_DIR`) — must exist;
    /// 2. `<artifacts>/whisper_<size>_xeon/lib` if it exists;
    /// 3. `<artifacts>/lib`;
    ///
    /// where `<artifacts>` is `WHISPER_ARTIFACTS_DIR` (default `artifacts`) and
    /// `<size>` is `WHISPER_MODEL_SIZE` (default `small`).
    ///
    /// # Errors
    /// [`LoadError::DirNotFound`] for a missing explicit directory,
    /// [`LoadError::NoLibraryDir`] when no candidate exists.
    pub fn resolve(
        lib_dir: Option<PathBuf>,
        artifacts_dir: Option<PathBuf>,
        model_size: Option<String>,
        cpu_backend: Option<String>,
    ) -> Result<Self, LoadError> {
        if let Some(dir) = lib_dir {
            if !dir.is_dir() {
                return Err(LoadError::DirNotFound {
                    path: dir,
                    variable: ENV_LIB_DIR,
                });
            }
            return Ok(Self {
                lib_dir: dir,
                cpu_backend,
            });
        }
        let artifacts = artifacts_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_ARTIFACTS_DIR));
        let size = model_size.unwrap_or_else(|| DEFAULT_MODEL_SIZE.to_owned());
        let tried = vec![
            artifacts.join(format!("whisper_{size}_xeon")).join("lib"),
            artifacts.join("lib"),
        ];
        match tried.iter().find(|dir| dir.is_dir()) {
            Some(dir) => Ok(Self {
                lib_dir: dir.clone(),
                cpu_backend,
            }),
            None => Err(LoadError::NoLibraryDir { tried }),
        }
    }
}
