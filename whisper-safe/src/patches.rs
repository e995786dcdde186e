//! What this crate relies on from whisper-stt's patch series
//! (`vendor/patches/`), and what it does with libraries built without it.
//!
//! A patched libwhisper names its series ([`LoadInfo::patch_series`]); a stock
//! whisper.cpp 1.8.3 build (a GPU build from upstream, a distribution package)
//! does not. With a stock build:
//! - `no_speech_prob` is not computed (0002): segments report 0, so the
//!   no-speech rule never drops a window; silence is left to the VAD and the
//!   log-probability rule;
//! - flash attention is turned off (0006 masks the padding it would attend to,
//!   without which the words depend on what the state decoded before);
//! - later windows of a trimmed context re-encode the first window's length
//!   (0004): the same words, more encoder time;
//! - on CPUs with AMX-INT8, q4_0 and q4_1 weights go to AMX tiles, whose
//!   products are wrong (0005): use q5_1 or q8_0 weights there.

use crate::library::LoadInfo;

/// Patch 0002: `no_speech_prob` from the start-of-transcript row.
pub const NO_SPEECH_PROB: u32 = 2;
/// Patch 0004: a trimmed encoder context shrinks with the audio left.
pub const TRIMMED_LATER_WINDOWS: u32 = 4;
/// Patch 0005: AMX tiles for q8_0 of any width, none for q4_0/q4_1.
pub const AMX_TILES: u32 = 5;
/// Patch 0006: flash attention masks the padding of its keys and values.
pub const FLASH_ATTENTION_MASK: u32 = 6;

/// Whether the loaded libwhisper was built with patch `number`; `false` for a
/// stock build and before the libraries are loaded.
pub fn has(number: u32) -> bool {
    whisper_sys::get().is_some_and(|library| in_series(library.info(), number))
}

/// Whether `info`'s patch series holds patch `number`.
pub fn in_series(info: &LoadInfo, number: u32) -> bool {
    info.patch_series.as_deref().is_some_and(|series| {
        series
            .split_whitespace()
            .nth(2)
            .unwrap_or("")
            .split(',')
            .any(|n| n.parse::<u32>() == Ok(number))
    })
}

/// What works differently with `info`'s libraries than with the full series,
/// one line each; empty when every patch this crate relies on is there.
pub fn fallbacks(info: &LoadInfo) -> Vec<&'static str> {
    let amx = info.system_info.contains("AMX_INT8 = 1");
    [
        (
            NO_SPEECH_PROB,
            true,
            "no_speech_prob is not computed (reported as 0; silence is left to the VAD \
             and the log-probability rule)",
        ),
        (
            FLASH_ATTENTION_MASK,
            true,
            "flash attention is off (it would attend to unmasked padding)",
        ),
        (
            TRIMMED_LATER_WINDOWS,
            true,
            "later windows of a trimmed context encode the first window's length \
             (more encoder time)",
        ),
        (
            AMX_TILES,
            amx,
            "q4_0 and q4_1 weights give wrong products on this CPU's AMX tiles: use \
             q5_1 or q8_0",
        ),
    ]
    .into_iter()
    .filter(|&(number, applies, _)| applies && !in_series(info, number))
    .map(|(_, _, what)| what)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(series: Option<&str>, system_info: &str) -> LoadInfo {
        LoadInfo {
            lib_dir: "lib".into(),
            layout: crate::Layout::Linked,
            libraries: Vec::new(),
            backend_modules: Vec::new(),
            manifest: None,
            whisper_version: "1.8.3".into(),
            patch_series: series.map(str::to_owned),
            ggml_version: "0.9.5".into(),
            backends: Vec::new(),
            devices: Vec::new(),
            system_info: system_info.into(),
        }
    }

    #[test]
    fn the_series_numbers_decide_the_fallbacks() {
        let full = info(
            Some("whisper-stt-patches 0123456789abcdef 0001,0002,0003,0004,0005,0006,0010"),
            "AMX_INT8 = 1",
        );
        assert!(in_series(&full, NO_SPEECH_PROB) && in_series(&full, 10));
        assert!(fallbacks(&full).is_empty());
        let without_0002 = info(
            Some("whisper-stt-patches 0123456789abcdef 0001,0004,0005,0006"),
            "",
        );
        assert_eq!(fallbacks(&without_0002).len(), 1);
        let stock = info(None, "AVX2 = 1");
        assert!(!in_series(&stock, NO_SPEECH_PROB));
        assert_eq!(fallbacks(&stock).len(), 3, "no AMX line without AMX");
        assert_eq!(fallbacks(&info(None, "AMX_INT8 = 1")).len(), 4);
        let unknown = info(Some("whisper-stt-patches unknown"), "");
        assert_eq!(fallbacks(&unknown).len(), 3);
    }
}
