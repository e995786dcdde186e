//! `whisper_safe::audio::decode` on arbitrary bytes, with the server's kind of
//! duration limit. Errors are fine; a panic is a finding, including one that
//! `decode` catches and returns as `DecoderPanic` (a decoder of symphonia or
//! the Opus path failed to reject malformed data: it is reported with its
//! location, triaged, and fixed upstream or guarded before the decoder).
//! Decoded audio must be what Whisper can take.
#![no_main]

use libfuzzer_sys::fuzz_target;
use whisper_safe::audio::{decode, AudioError, DecodeOptions, WHISPER_SAMPLE_RATE};

/// The limit the fuzzed decodes run under: long enough for any seed.
const MAX_SECONDS: f64 = 30.0;

fuzz_target!(|data: &[u8]| {
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
        }
        Err(AudioError::DecoderPanic {
            codec,
            message,
            location,
        }) => panic!("decoder panic on {codec} at {location}: {message}"),
        Err(_) => {}
    }
});
