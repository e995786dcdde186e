//! `whisper_safe::audio::decode` on arbitrary bytes, with the server's kind of
//! duration limit. Errors are fine; a panic is a finding, and so is one that
//! `decode` would catch and return as `DecoderPanic` (libFuzzer's panic hook
//! aborts at the panic itself), except the triaged ones in [`KNOWN_PANICS`].
//! Decoded audio must be what Whisper can take.
#![no_main]

use std::panic::{self, PanicHookInfo};

use libfuzzer_sys::{fuzz_target, Corpus};
use whisper_safe::audio::{decode, AudioError, DecodeOptions, WHISPER_SAMPLE_RATE};

/// The limit the fuzzed decodes run under: long enough for any seed.
const MAX_SECONDS: f64 = 30.0;

/// Panic sites of `symphonia` already found, reported upstream-style in the
/// fuzzing report and left to `decode`'s `catch_unwind` (→ `DecoderPanic`):
/// (file path suffix, line). The crate version is part of the path, so an
/// upgrade of `symphonia` re-arms every entry. "debug" ones are arithmetic
/// overflow checks, absent from release builds (the value wraps).
const KNOWN_PANICS: &[(&str, u32)] = &[
    // MKV: a malformed EBML variable-length integer (debug).
    ("symphonia-format-mkv-0.5.5/src/ebml.rs", 91),
    // MKV: `assert_eq!` "invalid position" after an element whose size lies.
    ("symphonia-format-mkv-0.5.5/src/ebml.rs", 317),
    // MKV: "EBML header must be read before calling this function".
    ("symphonia-format-mkv-0.5.5/src/ebml.rs", 343),
    // WAV extensible: channel count ≥ 32 above the mask's (debug).
    ("symphonia-format-riff-0.5.5/src/common.rs", 55),
    // ALAC: slice index out of range on a malformed frame.
    ("symphonia-codec-alac-0.5.5/src/lib.rs", 699),
    // ADTS: frame length shorter than its header (debug).
    ("symphonia-codec-aac-0.5.5/src/adts.rs", 303),
    // MS ADPCM: step size growing without bound on a malformed block (debug).
    ("symphonia-codec-adpcm-0.5.5/src/codec_ms.rs", 101),
    // MP4: the `stts` durations' sum overflows u64 (debug).
    ("symphonia-format-isomp4-0.5.5/src/atoms/stts.rs", 98),
];

fn is_known(info: &PanicHookInfo<'_>) -> bool {
    info.location().is_some_and(|at| {
        KNOWN_PANICS
            .iter()
            .any(|&(file, line)| at.line() == line && at.file().ends_with(file))
    })
}

/// Chains a hook before libFuzzer's aborting one that lets known panics unwind.
fn let_known_panics_unwind() {
    let abort = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if !is_known(info) {
            abort(info);
        }
    }));
}

fuzz_target!(init: let_known_panics_unwind(), |data: &[u8]| -> Corpus {
    let options = DecodeOptions {
        max_seconds: Some(MAX_SECONDS),
        ..DecodeOptions::default()
    };
    match decode(data, &options) {
        Ok(audio) => {
            assert!(
                audio.duration_seconds <= MAX_SECONDS,
                "{} s passed the limit",
                audio.duration_seconds
            );
            let expected = audio.duration_seconds * f64::from(WHISPER_SAMPLE_RATE);
            assert!(
                (audio.samples.len() as f64 - expected).abs() <= 1.0,
                "{} samples for {} s",
                audio.samples.len(),
                audio.duration_seconds
            );
            if let Some(bad) = audio.samples.iter().find(|s| !(-1.0..=1.0).contains(*s)) {
                panic!("sample {bad} is outside [-1, 1] ({})", audio.codec);
            }
            Corpus::Keep
        }
        // Only a known panic gets here: keep its input out of the corpus.
        Err(AudioError::DecoderPanic { .. }) => Corpus::Reject,
        Err(_) => Corpus::Keep,
    }
});
