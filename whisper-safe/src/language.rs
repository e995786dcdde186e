//! Whisper's languages, as the loaded library lists them.

use std::ffi::CString;

use once_cell::sync::OnceCell;
use whisper_sys::WhisperApi;

use crate::context::whisper_sys_string;

/// A language whisper can transcribe.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Language {
    /// whisper's id.
    pub id: i32,
    /// Short code, e.g. `en`.
    pub code: String,
    /// English name, e.g. `english`.
    pub name: String,
}

static LANGUAGES: OnceCell<Vec<Language>> = OnceCell::new();

/// Every language of the loaded library.
pub(crate) fn all(api: &WhisperApi) -> Vec<Language> {
    LANGUAGES
        .get_or_init(|| {
            // SAFETY: ids 0..=whisper_lang_max_id() are valid; the strings are static.
            unsafe {
                (0..=(api.whisper_lang_max_id)())
                    .map(|id| Language {
                        id,
                        code: whisper_sys_string((api.whisper_lang_str)(id)),
                        name: whisper_sys_string((api.whisper_lang_str_full)(id)),
                    })
                    .collect()
            }
        })
        .clone()
}

/// Finds a language by code (`en`) or English name (`english`), case-insensitively.
pub(crate) fn find(api: &WhisperApi, code_or_name: &str) -> Option<Language> {
    let wanted = code_or_name.trim().to_ascii_lowercase();
    all(api)
        .into_iter()
        .find(|l| l.code == wanted || l.name == wanted)
}

/// The code as a C string for whisper_full_params.
pub(crate) fn c_code(language: &Language) -> CString {
    CString::new(language.code.as_str()).expect("language codes have no NUL")
}
