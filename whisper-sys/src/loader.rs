//! Opening the libraries: once per process, by full path, in dependency order.

use std::ffi::{c_char, CStr, CString};
use std::path::{Path, PathBuf};

use libloading::os::unix::{Library as RawLibrary, RTLD_LOCAL, RTLD_NOW};
use once_cell::sync::OnceCell;
use serde::Serialize;

use crate::error::error_chain;
use crate::locate::{self, Layout, LoaderConfig, GGML, GGML_BASE, GGML_CPU_LINKED, WHISPER};
use crate::manifest::Manifest;
use crate::{
    LoadError, WhisperApi, GGML_BACKEND_DEVICE_TYPE_ACCEL, GGML_BACKEND_DEVICE_TYPE_CPU,
    GGML_BACKEND_DEVICE_TYPE_GPU, GGML_BACKEND_DEVICE_TYPE_IGPU,
};

/// The whisper.cpp version the bindings were generated for.
pub const WHISPER_VERSION: &str = "1.8.3";
/// The ggml version the bindings were generated for.
pub const GGML_VERSION: &str = "0.9.5";

static LIBRARY: OnceCell<Library> = OnceCell::new();
static OPENED_HOOK: OnceCell<fn(&WhisperApi)> = OnceCell::new();

/// Registers a function the loader calls once the libraries are open, before
/// backends register (e.g. to install a log callback that then sees their
/// messages). Only the first registration counts; call it before [`load`].
pub fn on_opened(hook: fn(&WhisperApi)) {
    let _ = OPENED_HOOK.set(hook);
}

/// The loaded libraries: the function table and what was loaded. Lives for the
/// rest of the process; the libraries are never unloaded.
pub struct Library {
    api: WhisperApi,
    info: LoadInfo,
    _dependencies: NeverUnload,
}

impl Library {
    /// The raw function table. Calling into it is `unsafe`; see `whisper-safe`.
    pub fn api(&self) -> &WhisperApi {
        &self.api
    }

    /// What was loaded, from where, and which devices ggml registered.
    pub fn info(&self) -> &LoadInfo {
        &self.info
    }
}

/// A description of the loaded libraries (printed by `stt-server info`).
#[derive(Clone, Debug, Serialize)]
pub struct LoadInfo {
    /// The library directory.
    pub lib_dir: PathBuf,
    /// The detected layout.
    pub layout: Layout,
    /// Every library opened by the loader, in load order.
    pub libraries: Vec<PathBuf>,
    /// Backend modules registered at run time (dynamic layout).
    pub backend_modules: Vec<PathBuf>,
    /// The manifest every library was checked against, if there was one.
    pub manifest: Option<PathBuf>,
    /// `whisper_version()`.
    pub whisper_version: String,
    /// What libwhisper's `whisper_stt_patch_series()` returns: the whisper-stt
    /// patch series it was built with (`"whisper-stt-patches <sha256, 16 hex>
    /// <numbers>"`); `None` for a stock build, which lacks the symbol.
    pub patch_series: Option<String>,
    /// `ggml_version()`.
    pub ggml_version: String,
    /// Registered backends, by name.
    pub backends: Vec<String>,
    /// Registered compute devices.
    pub devices: Vec<DeviceInfo>,
    /// `whisper_print_system_info()`: the CPU feature line.
    pub system_info: String,
}

/// One ggml compute device.
#[derive(Clone, Debug, Serialize)]
pub struct DeviceInfo {
    /// Device name, e.g. `CPU`.
    pub name: String,
    /// Human-readable description, e.g. the CPU model.
    pub description: String,
    /// `cpu`, `gpu`, `igpu` or `accel`.
    pub kind: &'static str,
    /// Free memory in bytes as reported by the backend.
    pub memory_free: usize,
    /// Total memory in bytes as reported by the backend.
    pub memory_total: usize,
}

/// Handles that must stay mapped even when loading fails half-way or a library
/// fails its version or symbol check: ggml installs process-wide hooks (a
/// terminate handler, log callbacks) when it is loaded, so unloading is never
/// safe. Every handle goes in here as soon as it is open, before any check.
struct NeverUnload(Vec<RawLibrary>);

impl Drop for NeverUnload {
    fn drop(&mut self) {
        for library in self.0.drain(..) {
            std::mem::forget(library);
        }
    }
}

/// GNU OpenMP's spin count before a waiting thread sleeps. With libgomp's
/// default (busy-waiting), two runs at once were 9–12× slower; 1000 costs
/// nothing alone.
const GOMP_SPINCOUNT: &str = "1000";

/// Sets the process-wide environment the libraries read, each variable only
/// when the user has not set it:
/// - `GGML_NO_BACKTRACE=1`: a crash never forks a debugger for a backtrace;
/// - `GOMP_SPINCOUNT=1000` (unless `OMP_WAIT_POLICY` is set either): OpenMP
///   threads of parallel runs stop spinning against each other.
///
/// Call it first thing in `main`, before any other thread exists (an async
/// runtime, a logger's or a test harness's threads): setting a variable races
/// with every thread that reads the environment, and libgomp reads its
/// settings when it is loaded. The loader does not do it itself, as it may run
/// after threads have started.
pub fn set_process_environment() {
    if std::env::var_os("GGML_NO_BACKTRACE").is_none() {
        std::env::set_var("GGML_NO_BACKTRACE", "1");
    }
    if std::env::var_os("GOMP_SPINCOUNT").is_none() && std::env::var_os("OMP_WAIT_POLICY").is_none()
    {
        std::env::set_var("GOMP_SPINCOUNT", GOMP_SPINCOUNT);
    }
}

/// Loads the libraries from the directory the environment selects
/// ([`LoaderConfig::from_env`]), or returns the ones already loaded.
/// Call [`set_process_environment`] before, at the start of `main`.
///
/// # Errors
/// Any [`LoadError`]; a failed attempt may be retried.
pub fn load() -> Result<&'static Library, LoadError> {
    match LIBRARY.get() {
        Some(library) => Ok(library),
        None => load_with(&LoaderConfig::from_env()?),
    }
}

/// Loads the libraries from `config.lib_dir`, once per process.
///
/// # Errors
/// Any [`LoadError`]; [`LoadError::AlreadyLoaded`] when another directory is loaded.
pub fn load_with(config: &LoaderConfig) -> Result<&'static Library, LoadError> {
    let library = LIBRARY.get_or_try_init(|| open(config))?;
    if !same_dir(&library.info.lib_dir, &config.lib_dir) {
        return Err(LoadError::AlreadyLoaded {
            loaded: library.info.lib_dir.clone(),
            requested: config.lib_dir.clone(),
        });
    }
    Ok(library)
}

/// The loaded libraries, if [`load`] or [`load_with`] succeeded before.
pub fn get() -> Option<&'static Library> {
    LIBRARY.get()
}

fn same_dir(a: &Path, b: &Path) -> bool {
    a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}

fn open(config: &LoaderConfig) -> Result<Library, LoadError> {
    let dir = config.lib_dir.as_path();
    if !dir.is_dir() {
        return Err(LoadError::DirNotFound {
            path: dir.to_owned(),
            variable: "lib_dir",
        });
    }
    let layout = Layout::detect(dir)?;
    let manifest = Manifest::find(dir)?;
    let pinned_file = config
        .cpu_backend
        .as_deref()
        .map(|pin| resolve_cpu_pin(dir, layout, pin))
        .transpose()?;

    let mut files = vec![dir.join(GGML_BASE)];
    if layout == Layout::Linked {
        files.push(
            pinned_file
                .clone()
                .unwrap_or_else(|| dir.join(GGML_CPU_LINKED)),
        );
    }
    files.extend([dir.join(GGML), dir.join(WHISPER)]);
    for file in &files {
        if !file.exists() {
            return Err(LoadError::MissingLibrary {
                path: file.clone(),
                layout: layout.name(),
            });
        }
        check_manifest(manifest.as_ref(), dir, file)?;
    }

    let mut dependencies = NeverUnload(Vec::with_capacity(files.len()));
    let mut patch_series = None;
    for file in &files {
        dependencies.0.push(open_now(file)?);
        let handle = dependencies.0.last().expect("just pushed");
        if file.ends_with(GGML_BASE) {
            check_version(handle, file, "ggml", b"ggml_version\0", GGML_VERSION)?;
        }
        if file.ends_with(WHISPER) {
            check_version(
                handle,
                file,
                "whisper",
                b"whisper_version\0",
                WHISPER_VERSION,
            )?;
            patch_series = probe_patch_series(handle);
        }
    }
    // The function table takes a handle of its own (opening a loaded library
    // again only counts a reference): if resolving fails and that handle is
    // dropped, the one in `dependencies` keeps libwhisper mapped.
    let whisper_path = dir.join(WHISPER);
    let whisper_handle = open_now(&whisper_path)?;
    // SAFETY: the library passed the version check, so its exports have the
    // signatures the bindings were generated from; every symbol is resolved now.
    let api = unsafe { WhisperApi::from_library(whisper_handle) }.map_err(|e| {
        LoadError::MissingSymbol {
            path: whisper_path.clone(),
            reason: error_chain(&e),
        }
    })?;
    if let Some(hook) = OPENED_HOOK.get() {
        hook(&api);
    }

    let backend_modules = match layout {
        Layout::Linked => Vec::new(),
        Layout::Dynamic => register_backends(&api, dir, manifest.as_ref(), pinned_file)?,
    };
    let info = describe(
        &api,
        dir,
        layout,
        files,
        backend_modules,
        manifest.as_ref(),
        patch_series,
    )?;
    Ok(Library {
        api,
        info,
        _dependencies: dependencies,
    })
}

/// Resolves `WHISPER_CPU_BACKEND`: a path is taken as is; a variant name means
/// `libggml-cpu-<name>.so` in the library directory (dynamic layout only).
fn resolve_cpu_pin(dir: &Path, layout: Layout, pin: &str) -> Result<PathBuf, LoadError> {
    let path = if pin.contains('/') {
        PathBuf::from(pin)
    } else {
        dir.join(format!("libggml-cpu-{pin}.so"))
    };
    let usable = path.is_file() && (pin.contains('/') || layout == Layout::Dynamic);
    if usable {
        Ok(path)
    } else {
        Err(LoadError::BackendNotFound {
            requested: pin.to_owned(),
            path,
        })
    }
}

fn check_manifest(manifest: Option<&Manifest>, dir: &Path, file: &Path) -> Result<(), LoadError> {
    match manifest {
        Some(manifest) if file.parent() == Some(dir) => manifest.verify(file),
        Some(manifest) => {
            log::warn!(
                "{} is outside {} and not covered by {}",
                file.display(),
                dir.display(),
                manifest.path().display()
            );
            Ok(())
        }
        None => {
            log::debug!("no manifest in {}: checksums not verified", dir.display());
            Ok(())
        }
    }
}

fn open_now(file: &Path) -> Result<RawLibrary, LoadError> {
    // SAFETY: these are whisper.cpp/ggml libraries whose initialisers only set up
    // ggml's global state; RTLD_NOW makes a missing dependency fail here, not later.
    unsafe { RawLibrary::open(Some(file), RTLD_NOW | RTLD_LOCAL) }.map_err(|e| LoadError::Open {
        path: file.to_owned(),
        reason: error_chain(&e),
    })
}

fn check_version(
    handle: &RawLibrary,
    file: &Path,
    component: &'static str,
    symbol: &[u8],
    expected: &'static str,
) -> Result<(), LoadError> {
    type VersionFn = unsafe extern "C" fn() -> *const c_char;
    // SAFETY: `whisper_version` and `ggml_version` have had this signature in every
    // release; the symbol's presence is checked by `get`.
    let version =
        unsafe { handle.get::<VersionFn>(symbol) }.map_err(|e| LoadError::MissingSymbol {
            path: file.to_owned(),
            reason: error_chain(&e),
        })?;
    // SAFETY: the function returns a pointer to a static NUL-terminated string.
    let found = unsafe { c_string(version()) };
    if found == expected {
        Ok(())
    } else {
        Err(LoadError::VersionMismatch {
            path: file.to_owned(),
            component,
            expected,
            found,
        })
    }
}

/// `whisper_stt_patch_series()` (added by patch 0010), or `None` when the
/// library lacks it: a stock build.
fn probe_patch_series(whisper: &RawLibrary) -> Option<String> {
    type SeriesFn = unsafe extern "C" fn() -> *const c_char;
    // SAFETY: the symbol, where present, is patch 0010's function of this
    // signature; its absence is an error from `get`, not a crash.
    let series = unsafe { whisper.get::<SeriesFn>(b"whisper_stt_patch_series\0") }.ok()?;
    // SAFETY: it returns a pointer to a static NUL-terminated string.
    Some(unsafe { c_string(series()) })
}

/// Copies a C string owned by the library; NULL gives an empty string.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string valid for this call.
pub(crate) unsafe fn c_string(ptr: *const c_char) -> String {
    if ptr.is_null() {
        String::new()
    } else {
        // SAFETY: guaranteed by the caller.
        unsafe { CStr::from_ptr(ptr) }
            .to_string_lossy()
            .into_owned()
    }
}

/// Registers the dynamic layout's backend modules: the pinned one, or every module
/// in `dir` (after checking each against the manifest). Runs once per process.
fn register_backends(
    api: &WhisperApi,
    dir: &Path,
    manifest: Option<&Manifest>,
    pinned: Option<PathBuf>,
) -> Result<Vec<PathBuf>, LoadError> {
    let c_path = |path: &Path| {
        CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| LoadError::Open {
            path: path.to_owned(),
            reason: "path contains a NUL byte".to_owned(),
        })
    };
    if let Some(module) = pinned {
        check_manifest(manifest, dir, &module)?;
        let path = c_path(&module)?;
        // SAFETY: `path` is a valid C string; ggml copies what it needs.
        let registered = unsafe { (api.ggml_backend_load)(path.as_ptr()) };
        if registered.is_null() {
            return Err(LoadError::BackendRejected { path: module });
        }
        return Ok(vec![module]);
    }
    let modules = locate::backend_modules(dir)?;
    for module in &modules {
        check_manifest(manifest, dir, module)?;
    }
    let path = c_path(dir)?;
    // SAFETY: `path` is a valid C string. Called once per process (the loader runs
    // once), as a second call would register every backend twice.
    unsafe { (api.ggml_backend_load_all_from_path)(path.as_ptr()) };
    Ok(modules)
}

fn describe(
    api: &WhisperApi,
    dir: &Path,
    layout: Layout,
    libraries: Vec<PathBuf>,
    backend_modules: Vec<PathBuf>,
    manifest: Option<&Manifest>,
    patch_series: Option<String>,
) -> Result<LoadInfo, LoadError> {
    // SAFETY: plain getters of ggml's backend registry and static strings; indices
    // stay below the counts ggml reports.
    unsafe {
        let device_count = (api.ggml_backend_dev_count)();
        if device_count == 0 {
            return Err(LoadError::NoDevices {
                dir: dir.to_owned(),
            });
        }
        let backends = (0..(api.ggml_backend_reg_count)())
            .map(|i| c_string((api.ggml_backend_reg_name)((api.ggml_backend_reg_get)(i))))
            .collect();
        let devices = (0..device_count)
            .map(|i| {
                let device = (api.ggml_backend_dev_get)(i);
                let (mut free, mut total) = (0usize, 0usize);
                (api.ggml_backend_dev_memory)(device, &mut free, &mut total);
                DeviceInfo {
                    name: c_string((api.ggml_backend_dev_name)(device)),
                    description: c_string((api.ggml_backend_dev_description)(device)),
                    kind: match (api.ggml_backend_dev_type)(device) {
                        GGML_BACKEND_DEVICE_TYPE_CPU => "cpu",
                        GGML_BACKEND_DEVICE_TYPE_GPU => "gpu",
                        GGML_BACKEND_DEVICE_TYPE_IGPU => "igpu",
                        GGML_BACKEND_DEVICE_TYPE_ACCEL => "accel",
                        _ => "unknown",
                    },
                    memory_free: free,
                    memory_total: total,
                }
            })
            .collect();
        Ok(LoadInfo {
            lib_dir: dir.to_owned(),
            layout,
            libraries,
            backend_modules,
            manifest: manifest.map(|m| m.path().to_owned()),
            whisper_version: c_string((api.whisper_version)()),
            patch_series,
            ggml_version: c_string((api.ggml_version)()),
            backends,
            devices,
            system_info: c_string((api.whisper_print_system_info)())
                .trim()
                .to_owned(),
        })
    }
}
