//! [`Context`]: a loaded model, shared read-only by every [`State`](crate::State).

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

use whisper_sys::{whisper_context, WhisperApi};

use crate::ggml_file;
use crate::{library, logging, patches, Error, Result};

/// Serialises model loads and state creation: both touch whisper.cpp's global
/// log hook and allocate backends.
pub(crate) static INIT_LOCK: Mutex<()> = Mutex::new(());

/// How to load a model.
#[derive(Clone, Debug)]
pub struct ContextOptions {
    /// Flash attention in the encoder and decoder (default on, as whisper.cpp).
    /// Off needs more memory per state and was 1.3–1.6× faster on an AVX2 CPU, on
    /// by 1.25× on an AVX-512 one: measure on yours (docs/benchmarks.md). Stock
    /// libraries, without patch 0006, always get it off ([`crate::patches`]).
    pub flash_attn: bool,
    /// Use a GPU backend when one is registered (default on; no effect on CPU-only builds).
    pub use_gpu: bool,
    /// Which GPU device to use.
    pub gpu_device: u32,
}

impl Default for ContextOptions {
    fn default() -> Self {
        Self {
            flash_attn: true,
            use_gpu: true,
            gpu_device: 0,
        }
    }
}

/// Facts about the loaded model.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ModelInfo {
    /// The file it was loaded from.
    pub path: PathBuf,
    /// whisper.cpp's name for the model type: `tiny`, `base`, `small`, `medium`, `large`.
    pub model_type: String,
    /// Whether the model knows languages other than English.
    pub multilingual: bool,
    /// Vocabulary size.
    pub n_vocab: i32,
    /// Encoder context in mel frames / 2 (1500 = 30 s).
    pub n_audio_ctx: i32,
    /// Encoder layers.
    pub n_audio_layer: i32,
    /// Decoder context in tokens.
    pub n_text_ctx: i32,
    /// Decoder layers.
    pub n_text_layer: i32,
    /// Mel bands.
    pub n_mels: i32,
    /// Weight type code (`whisper_model_ftype`).
    pub ftype: i32,
}

/// A loaded model: cheap to clone, `Send + Sync`. Freed when the last clone and
/// the last [`State`](crate::State) made from it are dropped.
#[derive(Clone)]
pub struct Context {
    pub(crate) inner: Arc<ContextInner>,
}

pub(crate) struct ContextInner {
    pub(crate) ptr: NonNull<whisper_context>,
    pub(crate) api: &'static WhisperApi,
    pub(crate) info: ModelInfo,
    /// `whisper_token_eot`: token ids at or above it are special or timestamps.
    pub(crate) token_eot: i32,
    /// Whether the library computes `no_speech_prob` (patch 0002).
    pub(crate) computes_no_speech_prob: bool,
}

// SAFETY: a whisper_context holds the weights and vocabulary, read-only after
// load; every mutable run goes through a separate whisper_state (upstream's
// whisper_full_parallel shares one context across threads the same way). This
// crate never calls the functions that use the context's default state.
unsafe impl Send for ContextInner {}
// SAFETY: see above; shared access only reads.
unsafe impl Sync for ContextInner {}

impl Drop for ContextInner {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from whisper_init_*_no_state and is freed once, here;
        // every State holds a clone of the Arc, so none outlives it.
        unsafe { (self.api.whisper_free)(self.ptr.as_ptr()) };
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("model", &self.inner.info)
            .finish()
    }
}

impl Context {
    /// Loads a ggml model file (loading the libraries first if needed), after
    /// checking its whole structure ([`ggml_file::verify`](crate::ggml_file::verify)).
    ///
    /// # Errors
    /// [`Error::Load`] if the libraries cannot be loaded; [`Error::Model`] if the
    /// file is missing, not a sound whisper ggml model, or whisper.cpp rejects it.
    pub fn new(path: impl AsRef<Path>, options: &ContextOptions) -> Result<Self> {
        let path = path.as_ref();
        let api = library::api()?;
        check_model_file(path)?;
        let c_path =
            CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| Error::Model {
                path: path.to_owned(),
                reason: "path contains a NUL byte".into(),
            })?;
        let gpu_device = i32::try_from(options.gpu_device).map_err(|_| Error::InvalidParam {
            name: "gpu_device",
            reason: format!("{} is out of range", options.gpu_device),
        })?;
        let ptr = {
            let _guard = INIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
            logging::clear_last_error();
            // SAFETY: the defaults come from the library itself; we only change
            // plain fields. `c_path` outlives the call, which copies what it needs.
            unsafe {
                let mut params = (api.whisper_context_default_params)();
                params.use_gpu = options.use_gpu;
                params.flash_attn =
                    options.flash_attn && patches::has(patches::FLASH_ATTENTION_MASK);
                params.gpu_device = gpu_device;
                (api.whisper_init_from_file_with_params_no_state)(c_path.as_ptr(), params)
            }
        };
        let ptr = NonNull::new(ptr).ok_or_else(|| Error::Model {
            path: path.to_owned(),
            reason: logging::take_last_error("whisper.cpp could not load it"),
        })?;
        // SAFETY: `ptr` is a valid context; these getters only read model facts.
        let (info, token_eot) = unsafe {
            let ctx = ptr.as_ptr();
            let info = ModelInfo {
                path: path.to_owned(),
                model_type: whisper_sys_string((api.whisper_model_type_readable)(ctx)),
                multilingual: (api.whisper_is_multilingual)(ctx) != 0,
                n_vocab: (api.whisper_model_n_vocab)(ctx),
                n_audio_ctx: (api.whisper_model_n_audio_ctx)(ctx),
                n_audio_layer: (api.whisper_model_n_audio_layer)(ctx),
                n_text_ctx: (api.whisper_model_n_text_ctx)(ctx),
                n_text_layer: (api.whisper_model_n_text_layer)(ctx),
                n_mels: (api.whisper_model_n_mels)(ctx),
                ftype: (api.whisper_model_ftype)(ctx),
            };
            (info, (api.whisper_token_eot)(ctx))
        };
        log::info!(
            "loaded {} model from {} ({})",
            info.model_type,
            path.display(),
            if info.multilingual {
                "multilingual"
            } else {
                "English-only"
            }
        );
        Ok(Self {
            inner: Arc::new(ContextInner {
                ptr,
                api,
                info,
                token_eot,
                computes_no_speech_prob: patches::has(patches::NO_SPEECH_PROB),
            }),
        })
    }

    /// Facts about the model.
    pub fn info(&self) -> &ModelInfo {
        &self.inner.info
    }

    /// The languages this model accepts: every whisper language when
    /// multilingual, only `en` otherwise.
    pub fn languages(&self) -> Vec<crate::Language> {
        if self.inner.info.multilingual {
            crate::language::all(self.inner.api)
        } else {
            crate::language::all(self.inner.api)
                .into_iter()
                .filter(|l| l.code == "en")
                .collect()
        }
    }
}

/// Copies a static C string from the library.
pub(crate) fn whisper_sys_string(ptr: *const std::ffi::c_char) -> String {
    if ptr.is_null() {
        return String::new();
    }
    // SAFETY: whisper.cpp returns pointers to static NUL-terminated strings here.
    unsafe { std::ffi::CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned()
}

/// Walks the whole file ([`ggml_file::verify`]) before whisper.cpp sees it: its
/// loader trusts the structure, and a defect there ends in an abort.
fn check_model_file(path: &Path) -> Result<()> {
    ggml_file::verify(path).map_err(|e| Error::Model {
        path: path.to_owned(),
        reason: e.reason(),
    })?;
    Ok(())
}
