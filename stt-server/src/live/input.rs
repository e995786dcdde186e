//! A live session's input audio: base64 text in the session's encoding to
//! 16 kHz mono samples, resampled as the audio arrives.

use base64::Engine as _;
use whisper_safe::audio::StreamResampler;

use super::protocol::{AudioFormat, ProtocolError, MAX_APPEND_BYTES};

/// Decodes appended audio of one format.
#[derive(Debug)]
pub struct InputAudio {
    format: AudioFormat,
    resampler: StreamResampler,
}

impl InputAudio {
    /// A decoder for `format`.
    ///
    /// # Errors
    /// `invalid_value` if the resampler cannot take the format's rate.
    pub fn new(format: AudioFormat) -> Result<Self, ProtocolError> {
        let resampler = StreamResampler::new(format.rate())
            .map_err(|e| ProtocolError::invalid("session.audio.input.format", e.to_string()))?;
        Ok(Self { format, resampler })
    }

    /// The format decoded.
    pub fn format(&self) -> AudioFormat {
        self.format
    }

    /// Decodes the base64 `audio` of an append and appends 16 kHz samples to `out`.
    ///
    /// # Errors
    /// `invalid_base64`, `audio_too_large` (more than 15 MiB), or
    /// `invalid_audio` (an odd number of bytes of 16-bit PCM). Nothing is
    /// appended then.
    pub fn decode(&mut self, audio: &str, out: &mut Vec<f32>) -> Result<(), ProtocolError> {
        // Base64 is 4/3 of the bytes: refuse before decoding what cannot fit.
        if audio.len() / 4 * 3 > MAX_APPEND_BYTES + 3 {
            return Err(too_large());
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(audio.trim())
            .map_err(|e| {
                ProtocolError::new("invalid_base64", format!("`audio` is not base64: {e}"))
            })?;
        if bytes.len() > MAX_APPEND_BYTES {
            return Err(too_large());
        }
        let mono: Vec<f32> = match self.format {
            AudioFormat::Pcm16 { .. } => {
                if bytes.len() % 2 != 0 {
                    return Err(ProtocolError::new(
                        "invalid_audio",
                        format!(
                            "{} bytes is not a whole number of 16-bit samples",
                            bytes.len()
                        ),
                    ));
                }
                bytes
                    .chunks_exact(2)
                    .map(|pair| f32::from(i16::from_le_bytes([pair[0], pair[1]])) / 32768.0)
                    .collect()
            }
            AudioFormat::Pcmu => bytes.iter().map(|&b| mu_law(b)).collect(),
            AudioFormat::Pcma => bytes.iter().map(|&b| a_law(b)).collect(),
        };
        self.resampler
            .push(&mono, out)
            .map_err(|e| ProtocolError::new("invalid_audio", e.to_string()))
    }
}

fn too_large() -> ProtocolError {
    ProtocolError::new(
        "audio_too_large",
        format!(
            "one append may carry at most {MAX_APPEND_BYTES} bytes of audio; send smaller pieces"
        ),
    )
}

/// G.711 μ-law to a sample in `[-1, 1]`.
fn mu_law(byte: u8) -> f32 {
    let b = !byte;
    let exponent = (b >> 4) & 0x07;
    let mantissa = i32::from(b & 0x0f);
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    let value = if b & 0x80 != 0 { -magnitude } else { magnitude };
    value as f32 / 32768.0
}

/// G.711 A-law to a sample in `[-1, 1]`.
fn a_law(byte: u8) -> f32 {
    let b = byte ^ 0x55;
    let exponent = (b >> 4) & 0x07;
    let mantissa = i32::from(b & 0x0f);
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    let value = if b & 0x80 != 0 { magnitude } else { -magnitude };
    value as f32 / 32768.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn g711_decodes_to_the_standard_values() {
        // ITU-T G.711 tables: μ-law 0xFF and A-law 0xD5 are (near) zero;
        // μ-law 0x00 is −32124, A-law 0x2A is −32256.
        assert_eq!(mu_law(0xFF), 0.0);
        assert_eq!(mu_law(0x00), -32124.0 / 32768.0);
        assert_eq!(mu_law(0x80), 32124.0 / 32768.0);
        assert_eq!(a_law(0xD5), 8.0 / 32768.0);
        assert_eq!(a_law(0x2A), -32256.0 / 32768.0);
        assert_eq!(a_law(0xAA), 32256.0 / 32768.0);
    }

    #[test]
    fn pcm_at_16_khz_passes_through_and_24_khz_is_resampled() {
        let mut pcm16 = InputAudio::new(AudioFormat::Pcm16 { rate: 16_000 }).unwrap();
        let mut out = Vec::new();
        pcm16
            .decode(&b64(&[0x00, 0x40, 0x00, 0xC0]), &mut out)
            .unwrap();
        assert_eq!(out, vec![0.5, -0.5]);

        let mut pcm24 = InputAudio::new(AudioFormat::Pcm16 { rate: 24_000 }).unwrap();
        let mut out = Vec::new();
        let one_second = vec![0u8; 48_000];
        pcm24.decode(&b64(&one_second), &mut out).unwrap();
        // All but the resampler's last partial chunk and delay (< 50 ms).
        assert!((15_200..=16_000).contains(&out.len()), "{}", out.len());
    }

    #[test]
    fn bad_appends_are_refused_with_a_code() {
        let mut pcm = InputAudio::new(AudioFormat::Pcm16 { rate: 24_000 }).unwrap();
        let mut out = Vec::new();
        assert_eq!(
            pcm.decode("***", &mut out).unwrap_err().code,
            "invalid_base64"
        );
        assert_eq!(
            pcm.decode(&b64(&[1, 2, 3]), &mut out).unwrap_err().code,
            "invalid_audio"
        );
        let huge = "A".repeat((MAX_APPEND_BYTES + 16) / 3 * 4);
        assert_eq!(
            pcm.decode(&huge, &mut out).unwrap_err().code,
            "audio_too_large"
        );
        assert!(out.is_empty());
    }
}
