//! Guards on a decoded window against repetition loops and invented text:
//! faster-whisper's rule, applied around any run of whisper.cpp.
//!
//! A window is decoded at temperature 0. It is decoded again at the next
//! temperature when its text compresses too well (gzip ratio above
//! [`Guard::compression_ratio_threshold`]: the same words over and over) or its
//! tokens are improbable (mean log-probability below
//! [`Guard::log_prob_threshold`]), unless the window is silence (no-speech
//! probability above [`Guard::no_speech_threshold`] with improbable text),
//! which is dropped. When every temperature fails, the attempt with the best
//! mean log-probability among those that do not loop is kept.
//!
//! whisper.cpp's own fallback (token entropy over the last 32 tokens) lets
//! loops of long sentences through; runs made here turn it off.

use std::io::Write;

use flate2::write::ZlibEncoder;
use flate2::Compression;

use crate::{Params, Result, RunTimings, Transcript};

/// Thresholds and temperatures of the fallback rule; the defaults are
/// faster-whisper's.
#[derive(Clone, Debug, PartialEq)]
pub struct Guard {
    /// Temperatures tried in order; one entry turns fallback off.
    pub temperatures: Vec<f32>,
    /// Re-decode when the text's gzip compression ratio is above this.
    pub compression_ratio_threshold: Option<f32>,
    /// Re-decode when the mean token log-probability is below this.
    pub log_prob_threshold: Option<f32>,
    /// A window whose no-speech probability is above this, with text below
    /// the log-probability threshold, is silence: dropped, not re-decoded.
    pub no_speech_threshold: Option<f32>,
}

impl Default for Guard {
    fn default() -> Self {
        Self {
            temperatures: Self::fallback_temperatures(0.0),
            compression_ratio_threshold: Some(2.4),
            log_prob_threshold: Some(-1.0),
            no_speech_threshold: Some(0.6),
        }
    }
}

impl Guard {
    /// `start`, then steps of 0.2 up to 1.0 (OpenAI's and faster-whisper's schedule).
    pub fn fallback_temperatures(start: f32) -> Vec<f32> {
        let mut temperatures = vec![start];
        let mut t = start;
        while t + 0.2 <= 1.0 + 1e-6 {
            t += 0.2;
            temperatures.push((t * 10.0).round() / 10.0);
        }
        temperatures
    }

    /// What to do with a window decoded with these `stats`.
    pub fn verdict(&self, stats: &WindowStats) -> Verdict {
        let improbable = self
            .log_prob_threshold
            .is_some_and(|threshold| stats.avg_logprob < threshold);
        let silent = self
            .no_speech_threshold
            .is_some_and(|threshold| stats.no_speech_prob > threshold);
        if !stats.has_text || (silent && improbable) {
            return Verdict::Silence;
        }
        let loops = self
            .compression_ratio_threshold
            .is_some_and(|threshold| stats.compression_ratio > threshold);
        if loops || improbable {
            Verdict::Retry
        } else {
            Verdict::Accept
        }
    }

    /// Decodes one window with `run`, once per temperature until the verdict
    /// is not [`Verdict::Retry`]. `run` gets `params` with the temperature set
    /// and whisper.cpp's own fallback off. The transcript kept carries the
    /// timings of every attempt.
    ///
    /// # Errors
    /// The first error `run` returns.
    pub fn decode(
        &self,
        params: &Params,
        mut run: impl FnMut(&Params) -> Result<Transcript>,
    ) -> Result<Guarded> {
        let temperatures = if self.temperatures.is_empty() {
            vec![0.0]
        } else {
            self.temperatures.clone()
        };
        let mut attempts: Vec<(Transcript, WindowStats)> = Vec::with_capacity(1);
        let mut timings = RunTimings::default();
        for &temperature in &temperatures {
            let attempt = params
                .clone()
                .temperature(temperature)
                .temperature_fallback(false);
            let mut transcript = run(&attempt)?;
            timings.add(&transcript.timings);
            let stats = WindowStats::of(&transcript, temperature);
            match self.verdict(&stats) {
                Verdict::Retry => attempts.push((transcript, stats)),
                verdict => {
                    transcript.timings = timings;
                    return Ok(Guarded {
                        transcript,
                        stats,
                        decodes: attempts.len() as u32 + 1,
                        silence: verdict == Verdict::Silence,
                    });
                }
            }
        }
        let decodes = attempts.len() as u32;
        let threshold = self.compression_ratio_threshold.unwrap_or(f32::INFINITY);
        let no_loop = attempts
            .iter()
            .any(|(_, stats)| stats.compression_ratio <= threshold);
        let (mut transcript, stats) = attempts
            .into_iter()
            .filter(|(_, stats)| !no_loop || stats.compression_ratio <= threshold)
            .max_by(|a, b| a.1.avg_logprob.total_cmp(&b.1.avg_logprob))
            .expect("at least one temperature was tried");
        transcript.timings = timings;
        Ok(Guarded {
            transcript,
            stats,
            decodes,
            silence: false,
        })
    }
}

/// What the guard decided about one decoded window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Keep it.
    Accept,
    /// Decode it again at the next temperature.
    Retry,
    /// It holds no speech: emit nothing.
    Silence,
}

/// The figures the guard judges a window by.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct WindowStats {
    /// The sampling temperature it was decoded at.
    pub temperature: f32,
    /// Bytes of its text over bytes of the text zlib-compressed.
    pub compression_ratio: f32,
    /// Sum of the tokens' log-probabilities over (tokens + 1), as faster-whisper
    /// averages (the end-of-text token counts).
    pub avg_logprob: f32,
    /// whisper.cpp's probability that the window holds no speech.
    pub no_speech_prob: f32,
    /// Whether it holds any text.
    pub has_text: bool,
}

impl WindowStats {
    /// The figures of `transcript`, decoded at `temperature`.
    pub fn of(transcript: &Transcript, temperature: f32) -> Self {
        let tokens: Vec<_> = transcript
            .segments
            .iter()
            .flat_map(|s| s.tokens.iter())
            .collect();
        let logprob_sum: f32 = tokens.iter().map(|t| t.logprob).sum();
        let text = transcript.text();
        Self {
            temperature,
            compression_ratio: compression_ratio(&text),
            avg_logprob: logprob_sum / (tokens.len() + 1) as f32,
            no_speech_prob: transcript
                .segments
                .first()
                .map_or(0.0, |s| s.no_speech_prob),
            has_text: !text.is_empty(),
        }
    }
}

/// A window as the guard left it.
#[derive(Clone, Debug, Default)]
pub struct Guarded {
    /// The transcript kept (empty of meaning when [`silence`](Self::silence)).
    pub transcript: Transcript,
    /// Its figures.
    pub stats: WindowStats,
    /// How many times the window was decoded.
    pub decodes: u32,
    /// The window is silence: nothing of it should be emitted.
    pub silence: bool,
}

impl Guarded {
    /// Decodes after the first (re-decodes at a higher temperature).
    pub fn fallbacks(&self) -> u32 {
        self.decodes.saturating_sub(1)
    }
}

/// UTF-8 bytes of `text` over the bytes of its zlib stream at the default
/// level (faster-whisper's `get_compression_ratio`); 0 for empty text.
pub fn compression_ratio(text: &str) -> f32 {
    if text.is_empty() {
        return 0.0;
    }
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
    // Writing into a Vec cannot fail.
    let compressed = encoder
        .write_all(text.as_bytes())
        .and_then(|()| encoder.finish())
        .map_or(text.len(), |bytes| bytes.len());
    text.len() as f32 / compressed.max(1) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Segment, Token};

    fn window(text: &str, logprob: f32, no_speech_prob: f32) -> Transcript {
        let tokens = text
            .split_inclusive(' ')
            .map(|word| Token {
                text: word.into(),
                logprob,
                ..Token::default()
            })
            .collect();
        Transcript {
            segments: vec![Segment {
                text: text.into(),
                tokens,
                no_speech_prob,
                ..Segment::default()
            }],
            ..Transcript::default()
        }
    }

    const LOOP: &str =
        "It was the best of times. It was the best of times. It was the best of times. \
        It was the best of times. It was the best of times. It was the best of times.";
    const PROSE: &str = "And so my fellow Americans, ask not what your country can do for you, \
        ask what you can do for your country.";

    #[test]
    fn a_repeated_sentence_compresses_well_and_prose_does_not() {
        assert!(compression_ratio(LOOP) > 2.4, "{}", compression_ratio(LOOP));
        assert!(
            compression_ratio(PROSE) < 2.0,
            "{}",
            compression_ratio(PROSE)
        );
        assert_eq!(compression_ratio(""), 0.0);
    }

    #[test]
    fn temperatures_step_by_a_fifth_up_to_one() {
        assert_eq!(
            Guard::fallback_temperatures(0.0),
            [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
        );
        assert_eq!(Guard::fallback_temperatures(0.5), [0.5, 0.7, 0.9]);
        assert_eq!(Guard::fallback_temperatures(1.0), [1.0]);
    }

    #[test]
    fn verdicts_follow_faster_whisper() {
        let guard = Guard::default();
        let stats =
            |text, logprob, no_speech| WindowStats::of(&window(text, logprob, no_speech), 0.0);
        assert_eq!(guard.verdict(&stats(PROSE, -0.2, 0.01)), Verdict::Accept);
        assert_eq!(guard.verdict(&stats(LOOP, -0.1, 0.01)), Verdict::Retry);
        assert_eq!(guard.verdict(&stats(PROSE, -1.5, 0.1)), Verdict::Retry);
        assert_eq!(guard.verdict(&stats(PROSE, -1.5, 0.9)), Verdict::Silence);
        // Probable text is kept even when the no-speech probability is high.
        assert_eq!(guard.verdict(&stats(PROSE, -0.2, 0.9)), Verdict::Accept);
        assert_eq!(guard.verdict(&stats("", 0.0, 0.0)), Verdict::Silence);
    }

    #[test]
    fn a_loop_is_decoded_again_until_it_stops() {
        let guard = Guard::default();
        let mut seen = Vec::new();
        let guarded = guard
            .decode(&Params::greedy(), |params| {
                let t = params.initial_temperature().unwrap();
                seen.push(t);
                let mut transcript = if t < 0.3 {
                    window(LOOP, -0.1, 0.0)
                } else {
                    window(PROSE, -0.3, 0.0)
                };
                transcript.timings = RunTimings {
                    windows: 1,
                    encoder_seconds: 2.0,
                    decoder_seconds: 0.5,
                };
                Ok(transcript)
            })
            .unwrap();
        assert_eq!(seen, [0.0, 0.2, 0.4]);
        assert_eq!(guarded.decodes, 3);
        // The time of the attempts thrown away counts too.
        assert_eq!(guarded.transcript.timings.windows, 3);
        assert_eq!(guarded.transcript.timings.encoder_seconds, 6.0);
        assert_eq!(guarded.transcript.timings.decoder_seconds, 1.5);
        assert_eq!(guarded.fallbacks(), 2);
        assert_eq!(guarded.stats.temperature, 0.4);
        assert_eq!(guarded.transcript.text(), PROSE);
    }

    #[test]
    fn when_every_temperature_fails_the_most_probable_non_loop_is_kept() {
        let guard = Guard::default();
        let guarded = guard
            .decode(&Params::greedy(), |params| {
                let t = params.initial_temperature().unwrap();
                Ok(match (t * 10.0).round() as i32 {
                    0 => window(LOOP, -0.05, 0.0),
                    4 => window("the best guess", -1.5, 0.0),
                    _ => window("a worse guess", -3.0, 0.0),
                })
            })
            .unwrap();
        assert_eq!(guarded.decodes, 6);
        assert_eq!(guarded.transcript.text(), "the best guess");
        assert!(!guarded.silence);
    }

    #[test]
    fn silence_is_not_decoded_again() {
        let guarded = Guard::default()
            .decode(&Params::greedy(), |_| Ok(window("Thank you.", -1.8, 0.95)))
            .unwrap();
        assert!(guarded.silence);
        assert_eq!(guarded.decodes, 1);
    }

    #[test]
    fn errors_stop_the_attempts() {
        let mut calls = 0;
        let result = Guard::default().decode(&Params::greedy(), |_| {
            calls += 1;
            Err(crate::Error::Aborted)
        });
        assert!(matches!(result, Err(crate::Error::Aborted)));
        assert_eq!(calls, 1);
    }
}
