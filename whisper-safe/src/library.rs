//! Access to the loaded libraries, with the log bridge installed first.

use once_cell::sync::OnceCell;
use whisper_sys::{Library, WhisperApi};

use crate::{logging, Result};

pub use whisper_sys::{
    set_process_environment, DeviceInfo, Layout, LoadError, LoadInfo, LoaderConfig,
    DEFAULT_ARTIFACTS_DIR, DEFAULT_MODEL_SIZE,
};

static BRIDGED: OnceCell<()> = OnceCell::new();

/// Loads the libraries from the environment (see [`LoaderConfig::from_env`]) and
/// routes their log output to the `log` crate. Idempotent.
///
/// # Errors
/// [`Error::Load`](crate::Error::Load) naming the file and the cause.
pub fn init() -> Result<&'static LoadInfo> {
    whisper_sys::on_opened(bridge_logs);
    Ok(ready(whisper_sys::load()?).info())
}

/// Like [`init`], with an explicit library directory.
///
/// # Errors
/// [`Error::Load`](crate::Error::Load), also when another directory is already loaded.
pub fn init_with(config: &LoaderConfig) -> Result<&'static LoadInfo> {
    whisper_sys::on_opened(bridge_logs);
    Ok(ready(whisper_sys::load_with(config)?).info())
}

/// What was loaded, if the libraries are loaded.
pub fn loaded() -> Option<&'static LoadInfo> {
    whisper_sys::get().map(Library::info)
}

/// The function table, loading from the environment on first use.
pub(crate) fn api() -> Result<&'static WhisperApi> {
    match whisper_sys::get() {
        Some(library) => Ok(ready(library).api()),
        None => init().map(|_| ready(whisper_sys::get().expect("just loaded")).api()),
    }
}

/// Installs the log bridge once: from the loader's hook (so backend registration
/// is logged too), or on first use when someone else loaded the libraries.
fn bridge_logs(api: &WhisperApi) {
    BRIDGED.get_or_init(|| logging::install(api));
}

fn ready(library: &'static Library) -> &'static Library {
    bridge_logs(library.api());
    library
}
