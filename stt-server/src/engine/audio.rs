//! Audio input for transcription: decode with `whisper_safe::audio` and sort
//! failures into what the client sent wrong.

use whisper_safe::audio::{self, AudioError, DecodeOptions, DecodedAudio};

/// Why an upload cannot be transcribed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InputError {
    /// Not a container or codec the decoder knows.
    #[error("unsupported audio: {0}")]
    Unsupported(String),
    /// A known format, but damaged, empty or too short.
    #[error("cannot decode audio: {0}")]
    Undecodable(String),
    /// Longer than the configured maximum.
    #[error("audio is longer than the maximum of {max_seconds} s")]
    TooLong {
        /// The limit.
        max_seconds: f64,
    },
    /// A fault of the decoder itself (details logged).
    #[error("audio decoding failed: {0}")]
    Internal(String),
}

/// Decodes an upload to 16 kHz mono. `file_name` and `mime` are hints only.
///
/// # Errors
/// [`InputError`]: never a panic, whatever the bytes.
pub fn decode(
    bytes: bytes::Bytes,
    file_name: Option<&str>,
    mime: Option<&str>,
    max_seconds: f64,
) -> Result<DecodedAudio, InputError> {
    let options = DecodeOptions {
        max_seconds: Some(max_seconds),
        extension_hint: file_name
            .and_then(|n| n.rsplit_once('.'))
            .map(|(_, ext)| ext.to_ascii_lowercase()),
        mime_hint: mime.map(str::to_owned),
    };
    let decoded = audio::decode_reader(std::io::Cursor::new(bytes), &options).map_err(classify)?;
    if decoded.samples.len() < whisper_safe::MIN_SAMPLES {
        return Err(InputError::Undecodable(format!(
            "the audio lasts {:.3} s; at least {:.1} s is needed",
            decoded.duration_seconds,
            whisper_safe::MIN_SAMPLES as f64 / f64::from(whisper_safe::SAMPLE_RATE)
        )));
    }
    Ok(decoded)
}

fn classify(error: AudioError) -> InputError {
    match error {
        AudioError::UnsupportedFormat { .. }
        | AudioError::NoAudioTrack { .. }
        | AudioError::UnsupportedSampleRate { .. } => InputError::Unsupported(error.to_string()),
        // A decoder panic is malformed data it failed to reject: the file's fault.
        AudioError::EmptyInput
        | AudioError::Corrupt { .. }
        | AudioError::Truncated { .. }
        | AudioError::Empty { .. }
        | AudioError::DecoderPanic { .. } => InputError::Undecodable(error.to_string()),
        AudioError::TooLong { max_seconds } => InputError::TooLong { max_seconds },
        other => InputError::Internal(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use test_kit::wav;

    use super::*;

    #[test]
    fn bad_inputs_are_sorted() {
        let decode = |b: Vec<u8>| decode(b.into(), Some("x.wav"), None, 10.0);
        assert!(matches!(
            decode(Vec::new()),
            Err(InputError::Undecodable(_))
        ));
        assert!(matches!(
            decode(b"\x89PNG\r\n\x1a\n0000000000000000".to_vec()),
            Err(InputError::Unsupported(_))
        ));
        assert!(matches!(
            decode(wav(&[0; 800])),
            Err(InputError::Undecodable(m)) if m.contains("0.050 s")
        ));
        assert_eq!(
            decode(wav(&vec![0; 16_000 * 11])).unwrap_err(),
            InputError::TooLong { max_seconds: 10.0 }
        );
        let ok = decode(wav(&vec![100; 16_000])).unwrap();
        assert_eq!(ok.samples.len(), 16_000);
        // A header declaring 0 samples per second made symphonia 0.5 panic: now the file's
        // fault, named (422), as is any decoder panic. (hound refuses to write rate 0: the
        // rate field, at byte 24 of its 44-byte header, is zeroed afterwards.)
        let mut zero_rate = wav(&vec![100; 16_000]);
        zero_rate[24..28].fill(0);
        assert!(matches!(
            decode(zero_rate),
            Err(InputError::Undecodable(m)) if m.contains("0 samples per second")
        ));
        let panic = AudioError::DecoderPanic {
            codec: "AAC in MP4".to_owned(),
            message: "index out of bounds".to_owned(),
            location: "src/lib.rs:1:1".to_owned(),
        };
        assert!(matches!(classify(panic), InputError::Undecodable(m) if m.contains("AAC in MP4")));
    }
}
