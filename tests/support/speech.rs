//! Audio for tests: fixtures decoded, espeak-ng sentences, white noise, recordings
//! laid end to end with the time of every part known exactly, and WAV files of
//! samples (written by `hound`).

use std::process::Command;

use whisper_safe::audio::{decode, DecodeOptions};
use whisper_safe::SAMPLE_RATE;

use crate::fixture;

/// 16 kHz mono samples of `path` (any format the server reads; its extension is the hint).
pub fn samples_of(path: &std::path::Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let options = DecodeOptions {
        extension_hint: path.extension().map(|e| e.to_string_lossy().into_owned()),
        ..DecodeOptions::default()
    };
    decode(bytes, &options)
        .unwrap_or_else(|e| panic!("decode {}: {e}", path.display()))
        .samples
}

/// `seconds` of uniform white noise in ±`amplitude` at 16 kHz, from a fixed seed
/// (RMS `amplitude / √3`).
pub fn white_noise(seconds: f64, amplitude: f32) -> Vec<f32> {
    let mut x: u32 = 12_345;
    (0..(seconds * f64::from(SAMPLE_RATE)) as usize)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            ((x >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0) * amplitude
        })
        .collect()
}

/// `text` spoken by espeak-ng (American English, 150 words per minute).
///
/// # Panics
/// When espeak-ng is missing (`apt-get install espeak-ng`) or fails.
pub fn espeak(text: &str) -> Vec<f32> {
    let dir = tempfile::tempdir().expect("temp dir");
    let wav = dir.path().join("speech.wav");
    let status = Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "150", "-w"])
        .arg(&wav)
        .arg(text)
        .status()
        .expect("espeak-ng is needed (apt-get install espeak-ng)");
    assert!(status.success(), "espeak-ng failed on {text:?}");
    samples_of(&wav)
}

/// One part of a [`Recording`]: where it lies and what is said in it.
#[derive(Clone, Debug, PartialEq)]
pub struct Part {
    /// Start in seconds.
    pub start: f64,
    /// End in seconds.
    pub end: f64,
    /// The words, or `None` for silence.
    pub text: Option<String>,
}

/// Samples built part by part, with each part's time span.
#[derive(Clone, Debug, Default)]
pub struct Recording {
    /// 16 kHz mono samples.
    pub samples: Vec<f32>,
    /// The parts in order.
    pub parts: Vec<Part>,
}

impl Recording {
    fn seconds(&self) -> f64 {
        self.samples.len() as f64 / f64::from(SAMPLE_RATE)
    }

    fn push(mut self, samples: &[f32], text: Option<&str>) -> Self {
        let start = self.seconds();
        self.samples.extend_from_slice(samples);
        let end = self.seconds();
        self.parts.push(Part {
            start,
            end,
            text: text.map(str::to_owned),
        });
        self
    }

    /// Adds `text` spoken by espeak-ng.
    pub fn say(self, text: &str) -> Self {
        self.push(&espeak(text), Some(text))
    }

    /// Adds a fixture with its reference transcript.
    pub fn fixture(self, name: &str) -> Self {
        let samples = samples_of(&fixture(name));
        self.push(&samples, Some(&crate::reference(name)))
    }

    /// Adds `seconds` of digital silence.
    pub fn silence(self, seconds: f64) -> Self {
        let samples = vec![0.0; (seconds * f64::from(SAMPLE_RATE)) as usize];
        self.push(&samples, None)
    }

    /// Every spoken part's words, in order.
    pub fn reference(&self) -> String {
        self.parts
            .iter()
            .filter_map(|p| p.text.as_deref())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The silent parts of at least `seconds`.
    pub fn silences(&self, seconds: f64) -> Vec<&Part> {
        self.parts
            .iter()
            .filter(|p| p.text.is_none() && p.end - p.start >= seconds)
            .collect()
    }

    /// The spoken parts.
    pub fn speech(&self) -> Vec<&Part> {
        self.parts.iter().filter(|p| p.text.is_some()).collect()
    }

    /// A 16-bit PCM WAV file of the samples.
    pub fn wav(&self) -> Vec<u8> {
        wav_bytes(&self.samples)
    }
}

/// `samples` (16 kHz mono, −1..1) as a 16-bit PCM WAV file.
pub fn wav_bytes(samples: &[f32]) -> Vec<u8> {
    let pcm: Vec<i16> = samples
        .iter()
        .map(|s| (s.clamp(-1.0, 1.0) * f32::from(i16::MAX)).round() as i16)
        .collect();
    test_kit::wav(&pcm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_know_their_times_and_the_wav_holds_every_sample() {
        let recording = Recording::default()
            .push(&[0.5; 16_000], Some("one"))
            .silence(2.0)
            .push(&[-0.5; 8_000], Some("two"));
        assert_eq!(recording.parts[1].start, 1.0);
        assert_eq!(recording.parts[1].end, 3.0);
        assert_eq!(recording.parts[2].end, 3.5);
        assert_eq!(recording.reference(), "one two");
        assert_eq!(recording.silences(1.0).len(), 1);
        let wav = recording.wav();
        let reader = hound::WavReader::new(std::io::Cursor::new(wav)).unwrap();
        assert_eq!(reader.len() as usize, recording.samples.len());
        assert_eq!(reader.spec().sample_rate, 16_000);
    }
}
