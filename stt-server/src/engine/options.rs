//! [`TranscribeOptions`]: what a client may choose per request, and the
//! decoding [`Params`] they become.

use std::time::Duration;

use whisper_safe::guard::Guard;
use whisper_safe::{AudioContext, Params, Sampling, MAX_DECODERS};

/// Per-request choices, already parsed; checked against the model by
/// [`LoadedModel::check`](super::LoadedModel::check).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TranscribeOptions {
    /// Spoken language code or name; `None` detects it.
    pub language: Option<String>,
    /// The languages the audio may be in (codes or names): detection chooses
    /// among them only (OpenAI's `languages[]`).
    pub languages: Vec<String>,
    /// Text that conditions the decoder.
    pub prompt: Option<String>,
    /// Initial sampling temperature (0..=1); `None`: 0 with fallback.
    pub temperature: Option<f32>,
    /// Retry failed windows at higher temperatures (default on).
    pub temperature_fallback: Option<bool>,
    /// Translate to English.
    pub translate: bool,
    /// Per-word timestamps.
    pub word_timestamps: bool,
    /// Beam search with this many beams (1..=8) instead of greedy decoding.
    pub beam_size: Option<u32>,
    /// Candidates sampled at temperature > 0 (1..=8).
    pub best_of: Option<u32>,
    /// Condition each 30-second window on the text of the previous ones;
    /// `None`: on for audio cut at quiet moments, off between the pieces a
    /// voice-activity detector cut (faster-whisper's batched pipeline), where
    /// each piece is speech on its own and the prompt pass only costs time.
    pub condition_on_previous_text: Option<bool>,
    /// Cut the audio at the speech a voice-activity detector finds and leave
    /// silence out; `None`: on for audio longer than 30 s when a VAD model is loaded.
    pub vad_filter: Option<bool>,
    /// The detector's settings where the request sets them (OpenAI's
    /// `chunking_strategy`).
    pub vad_tuning: VadTuning,
    /// Re-decode a window whose text's gzip compression ratio is above this
    /// (default 2.4: a repetition loop).
    pub compression_ratio_threshold: Option<f32>,
    /// Re-decode a window whose mean token log-probability is below this (default −1).
    pub log_prob_threshold: Option<f32>,
    /// A window with a no-speech probability above this and improbable text is
    /// silence and emits nothing (default 0.6).
    pub no_speech_threshold: Option<f32>,
    /// Most tokens decoded per window (live partial steps: a repetition loop
    /// on a second of audio must not take seconds); `None`: no cap.
    pub max_tokens: Option<u32>,
    /// Start offset into the audio.
    pub offset: Duration,
    /// Decode only this much after the offset.
    pub duration: Option<Duration>,
}

/// Overrides of the voice-activity detector's settings for one request.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct VadTuning {
    /// Speech probability that starts speech (0..=1).
    pub threshold: Option<f32>,
    /// Audio kept around each span of speech, milliseconds.
    pub speech_pad_ms: Option<u32>,
    /// Silence that ends a span, milliseconds.
    pub min_silence_ms: Option<u32>,
}

/// A choice out of range, with the request parameter it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {param}: {message}")]
pub struct InvalidOption {
    /// The request parameter.
    pub param: &'static str,
    /// What is wrong.
    pub message: String,
}

impl TranscribeOptions {
    /// Checks the ranges that do not depend on the model.
    ///
    /// # Errors
    /// [`InvalidOption`] naming the parameter.
    pub fn check_ranges(&self) -> Result<(), InvalidOption> {
        if let Some(t) = self.temperature {
            if !(0.0..=1.0).contains(&t) {
                return Err(InvalidOption {
                    param: "temperature",
                    message: format!("{t} is not between 0 and 1"),
                });
            }
        }
        for (param, value) in [("beam_size", self.beam_size), ("best_of", self.best_of)] {
            if let Some(n) = value {
                if !(1..=MAX_DECODERS).contains(&n) {
                    return Err(InvalidOption {
                        param,
                        message: format!("{n} is not between 1 and {MAX_DECODERS}"),
                    });
                }
            }
        }
        let thresholds = [
            (
                "compression_ratio_threshold",
                self.compression_ratio_threshold,
                0.0..=f32::MAX,
            ),
            (
                "log_prob_threshold",
                self.log_prob_threshold,
                f32::MIN..=0.0,
            ),
            ("no_speech_threshold", self.no_speech_threshold, 0.0..=1.0),
        ];
        for (param, value, range) in thresholds {
            if let Some(v) = value {
                if !range.contains(&v) {
                    return Err(InvalidOption {
                        param,
                        message: format!(
                            "{v} is not between {} and {}",
                            range.start(),
                            range.end()
                        ),
                    });
                }
            }
        }
        let tuning = self.vad_tuning;
        if tuning.threshold.is_some_and(|t| !(0.0..=1.0).contains(&t)) {
            return Err(InvalidOption {
                param: "chunking_strategy",
                message: "threshold is not between 0 and 1".into(),
            });
        }
        if [tuning.speech_pad_ms, tuning.min_silence_ms]
            .iter()
            .flatten()
            .any(|&ms| ms > 10_000)
        {
            return Err(InvalidOption {
                param: "chunking_strategy",
                message: "prefix_padding_ms and silence_duration_ms are at most 10000".into(),
            });
        }
        if self.prompt.as_deref().is_some_and(|p| p.contains('\0')) {
            return Err(InvalidOption {
                param: "prompt",
                message: "contains a NUL character".into(),
            });
        }
        Ok(())
    }

    /// The fallback rule of each window: faster-whisper's defaults, with the
    /// thresholds and temperatures asked for.
    pub fn guard(&self) -> Guard {
        let defaults = Guard::default();
        let start = self.temperature.unwrap_or(0.0);
        Guard {
            temperatures: if self.temperature_fallback == Some(false) {
                vec![start]
            } else {
                Guard::fallback_temperatures(start)
            },
            compression_ratio_threshold: self
                .compression_ratio_threshold
                .or(defaults.compression_ratio_threshold),
            log_prob_threshold: self.log_prob_threshold.or(defaults.log_prob_threshold),
            no_speech_threshold: self.no_speech_threshold.or(defaults.no_speech_threshold),
        }
    }

    /// Whether each piece is prompted with the text of the pieces before it:
    /// as asked, else only when the pieces were not cut by voice-activity
    /// detection (`speech_only`).
    pub fn conditions_pieces(&self, speech_only: bool) -> bool {
        self.condition_on_previous_text.unwrap_or(!speech_only)
    }

    /// The decoding parameters of a run with `threads` threads. `language` is the
    /// code checked against the model (`None`: detect).
    pub fn params(
        &self,
        language: Option<&str>,
        threads: u32,
        audio_context: AudioContext,
    ) -> Params {
        let base = match (self.beam_size, self.best_of) {
            (Some(beam_size), _) => Params::beam_search(beam_size),
            (None, Some(best_of)) => Params::new(Sampling::Greedy { best_of }),
            (None, None) => Params::greedy(),
        };
        let mut params = base
            .threads(threads)
            .language(language)
            .translate(self.translate)
            .initial_prompt(self.prompt.as_deref())
            .word_timestamps(self.word_timestamps)
            .offset(self.offset)
            .duration(self.duration)
            .audio_context(audio_context)
            .max_tokens(self.max_tokens);
        if let Some(t) = self.temperature {
            params = params.temperature(t);
        }
        if let Some(fallback) = self.temperature_fallback {
            params = params.temperature_fallback(fallback);
        }
        if let Some(condition) = self.condition_on_previous_text {
            params = params.condition_on_previous_text(condition);
        }
        params
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_checked() {
        let bad = [
            TranscribeOptions {
                temperature: Some(1.5),
                ..Default::default()
            },
            TranscribeOptions {
                beam_size: Some(9),
                ..Default::default()
            },
            TranscribeOptions {
                best_of: Some(0),
                ..Default::default()
            },
            TranscribeOptions {
                prompt: Some("a\0b".into()),
                ..Default::default()
            },
            TranscribeOptions {
                compression_ratio_threshold: Some(-1.0),
                ..Default::default()
            },
            TranscribeOptions {
                log_prob_threshold: Some(0.5),
                ..Default::default()
            },
            TranscribeOptions {
                no_speech_threshold: Some(f32::NAN),
                ..Default::default()
            },
        ];
        let params: Vec<_> = bad
            .iter()
            .map(|o| o.check_ranges().unwrap_err().param)
            .collect();
        assert_eq!(
            params,
            [
                "temperature",
                "beam_size",
                "best_of",
                "prompt",
                "compression_ratio_threshold",
                "log_prob_threshold",
                "no_speech_threshold"
            ]
        );
        assert!(TranscribeOptions::default().check_ranges().is_ok());
    }

    #[test]
    fn the_guard_takes_the_thresholds_and_the_fallback_choice() {
        let guard = TranscribeOptions::default().guard();
        assert_eq!(guard, Guard::default());
        let options = TranscribeOptions {
            temperature: Some(0.4),
            compression_ratio_threshold: Some(3.0),
            no_speech_threshold: Some(0.8),
            ..Default::default()
        };
        let guard = options.guard();
        assert_eq!(guard.temperatures, [0.4, 0.6, 0.8, 1.0]);
        assert_eq!(guard.compression_ratio_threshold, Some(3.0));
        assert_eq!(guard.log_prob_threshold, Some(-1.0));
        assert_eq!(guard.no_speech_threshold, Some(0.8));
        let fixed = TranscribeOptions {
            temperature_fallback: Some(false),
            ..Default::default()
        };
        assert_eq!(fixed.guard().temperatures, [0.0]);
    }

    #[test]
    fn pieces_cut_by_vad_are_not_prompted_with_each_other_unless_asked() {
        let default = TranscribeOptions::default();
        assert!(!default.conditions_pieces(true));
        assert!(default.conditions_pieces(false));
        for asked in [true, false] {
            let options = TranscribeOptions {
                condition_on_previous_text: Some(asked),
                ..Default::default()
            };
            assert_eq!(options.conditions_pieces(true), asked);
            assert_eq!(options.conditions_pieces(false), asked);
        }
    }

    #[test]
    fn params_carry_the_choices() {
        let options = TranscribeOptions {
            translate: true,
            word_timestamps: true,
            temperature: Some(0.4),
            beam_size: Some(3),
            ..Default::default()
        };
        let params = options.params(Some("fr"), 2, AudioContext::Trimmed);
        assert!(params.is_translate() && params.wants_words());
        assert_eq!(params.initial_temperature(), Some(0.4));
        assert_eq!(params.requested_language(), Some("fr"));
        assert_eq!(
            params,
            Params::beam_search(3)
                .threads(2)
                .language(Some("fr"))
                .translate(true)
                .word_timestamps(true)
                .temperature(0.4)
                .audio_context(AudioContext::Trimmed)
        );
        // 11 s of audio: trimmed context is frames + 100, rounded up to a multiple of 16.
        assert_eq!(params.audio_ctx_frames(176_000), 656);
        // 29.5 s: the margin would pass the model's 1500 frames; full context.
        assert_eq!(params.audio_ctx_frames(472_000), 0);
        assert_eq!(params.audio_ctx_frames(440_000), 1488);
        // 28.0 s: 1400 + 100 frames round up past 1488; full context.
        assert_eq!(params.audio_ctx_frames(448_000), 0);
    }
}
