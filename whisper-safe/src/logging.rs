//! Routes whisper.cpp and ggml log output to the `log` crate (targets
//! `whisper_cpp` and `ggml`), and remembers each thread's last error line so
//! failures can say why.

use std::cell::RefCell;
use std::ffi::{c_char, c_void, CStr};

use whisper_sys::{
    ggml_log_level, WhisperApi, GGML_LOG_LEVEL_CONT, GGML_LOG_LEVEL_DEBUG, GGML_LOG_LEVEL_ERROR,
    GGML_LOG_LEVEL_INFO, GGML_LOG_LEVEL_WARN,
};

thread_local! {
    /// The partial line (ggml logs in fragments) and its level, per thread.
    static PENDING: RefCell<(String, log::Level)> = const { RefCell::new((String::new(), log::Level::Info)) };
    static LAST_ERROR: RefCell<Option<String>> = const { RefCell::new(None) };
}

const WHISPER_TARGET: &str = "whisper_cpp";
const GGML_TARGET: &str = "ggml";

/// Installs the bridge; called once, before any model is loaded.
pub(crate) fn install(api: &WhisperApi) {
    // SAFETY: the callbacks are `extern "C"` functions that never unwind (the log
    // crate's loggers are called inside catch_unwind) and need no user data.
    unsafe {
        (api.whisper_log_set)(Some(whisper_log), std::ptr::null_mut());
        (api.ggml_log_set)(Some(ggml_log), std::ptr::null_mut());
    }
}

/// Clears this thread's remembered error line.
pub(crate) fn clear_last_error() {
    LAST_ERROR.with(|last| last.borrow_mut().take());
}

/// Takes this thread's last error line, or `fallback`.
pub(crate) fn take_last_error(fallback: &str) -> String {
    LAST_ERROR
        .with(|last| last.borrow_mut().take())
        .unwrap_or_else(|| fallback.to_owned())
}

unsafe extern "C" fn whisper_log(level: ggml_log_level, text: *const c_char, _: *mut c_void) {
    // SAFETY: whisper.cpp passes a NUL-terminated string valid for this call.
    unsafe { forward(WHISPER_TARGET, level, text) }
}

unsafe extern "C" fn ggml_log(level: ggml_log_level, text: *const c_char, _: *mut c_void) {
    // SAFETY: ggml passes a NUL-terminated string valid for this call.
    unsafe { forward(GGML_TARGET, level, text) }
}

/// # Safety
/// `text` is NULL or a NUL-terminated string valid for this call.
unsafe fn forward(target: &'static str, level: ggml_log_level, text: *const c_char) {
    if text.is_null() {
        return;
    }
    // SAFETY: guaranteed by the caller.
    let text = unsafe { CStr::from_ptr(text) }.to_string_lossy();
    // A panicking logger must not unwind into C.
    let _ = std::panic::catch_unwind(|| {
        PENDING.with(|pending| {
            let mut pending = pending.borrow_mut();
            if level != GGML_LOG_LEVEL_CONT {
                pending.1 = map_level(level);
            }
            pending.0.push_str(&text);
            while let Some(end) = pending.0.find('\n') {
                let line: String = pending.0.drain(..=end).collect();
                emit(target, pending.1, line.trim_end());
            }
        });
    });
}

fn emit(target: &'static str, level: log::Level, line: &str) {
    if line.is_empty() {
        return;
    }
    if level == log::Level::Error {
        LAST_ERROR.with(|last| *last.borrow_mut() = Some(line.to_owned()));
    }
    log::log!(target: target, level, "{line}");
}

fn map_level(level: ggml_log_level) -> log::Level {
    match level {
        GGML_LOG_LEVEL_ERROR => log::Level::Error,
        GGML_LOG_LEVEL_WARN => log::Level::Warn,
        GGML_LOG_LEVEL_INFO => log::Level::Info,
        GGML_LOG_LEVEL_DEBUG => log::Level::Debug,
        _ => log::Level::Trace,
    }
}
