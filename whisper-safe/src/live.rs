//! Building blocks of live transcription, usable without the server:
//!
//! - [`StreamingVad`]: Silero speech probabilities for audio fed in pieces;
//! - [`TurnDetector`]: turns those probabilities into the start and end of
//!   a speaker's turn (threshold, padding before speech, silence that ends it);
//! - [`agreed_words`]: the words two consecutive decodes of a growing buffer
//!   agree on (LocalAgreement), which are safe to show: a later decode of
//!   more audio rarely changes them.
//!
//! Whisper is not a streaming model; live systems decode the growing turn
//! again every few hundred milliseconds and show only what stays stable.

use crate::guard::normalized_words;
use crate::vad::{Vad, WINDOW_SAMPLES};
use crate::Result;

const WINDOW: usize = WINDOW_SAMPLES as usize;
/// Windows of earlier audio run again before new ones, to warm Silero's LSTM
/// up (whisper.cpp starts its state afresh on every call): 256 ms.
const WARMUP_WINDOWS: usize = 8;
/// New windows gathered before the network runs (128 ms): fewer calls, each
/// paying the warm-up once.
const BATCH_WINDOWS: usize = 4;

/// Silero speech probabilities of 16 kHz audio fed in pieces of any length:
/// one probability per 512-sample window (32 ms), in order.
#[derive(Debug)]
pub struct StreamingVad {
    vad: Vad,
    /// The last [`WARMUP_WINDOWS`] windows already scored.
    history: Vec<f32>,
    /// Samples not yet scored.
    pending: Vec<f32>,
}

impl StreamingVad {
    /// Scores audio with `vad`.
    pub fn new(vad: Vad) -> Self {
        Self {
            vad,
            history: Vec::with_capacity(WARMUP_WINDOWS * WINDOW),
            pending: Vec::new(),
        }
    }

    /// Adds `samples`; returns the probabilities of the windows completed
    /// since the last call (none until 4 windows, 128 ms, are complete).
    ///
    /// # Errors
    /// As [`Vad::probabilities`].
    pub fn push(&mut self, samples: &[f32]) -> Result<Vec<f32>> {
        self.pending.extend_from_slice(samples);
        let windows = self.pending.len() / WINDOW;
        if windows < BATCH_WINDOWS {
            return Ok(Vec::new());
        }
        let new = windows * WINDOW;
        let mut input = Vec::with_capacity(self.history.len() + new);
        input.extend_from_slice(&self.history);
        input.extend_from_slice(&self.pending[..new]);
        let probabilities = self.vad.probabilities(&input)?;
        let warm = self.history.len() / WINDOW;
        let scored = probabilities.get(warm..warm + windows).unwrap_or_default();
        let keep = input.len().min(WARMUP_WINDOWS * WINDOW);
        self.history.clear();
        self.history.extend_from_slice(&input[input.len() - keep..]);
        self.pending.drain(..new);
        Ok(scored.to_vec())
    }
}

/// A source of speech probabilities for audio fed in pieces, one per
/// 512-sample window: Silero's [`StreamingVad`], or another detector.
pub trait SpeechProbabilities: Send {
    /// Adds `samples` (16 kHz); returns the probabilities of the windows
    /// completed since the last call, in order.
    ///
    /// # Errors
    /// The detector's.
    fn push(&mut self, samples: &[f32]) -> Result<Vec<f32>>;
}

impl SpeechProbabilities for StreamingVad {
    fn push(&mut self, samples: &[f32]) -> Result<Vec<f32>> {
        StreamingVad::push(self, samples)
    }
}

/// How speech probabilities become turns (OpenAI's `server_vad` fields).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TurnParams {
    /// A window with this speech probability or more is speech; silence is
    /// below `threshold − 0.15` (Silero's hysteresis).
    pub threshold: f32,
    /// Audio kept before the first speech window.
    pub prefix_padding_ms: u32,
    /// Silence that ends a turn.
    pub silence_duration_ms: u32,
    /// Speech shorter than this does not start a turn (a click, a breath).
    pub min_speech_ms: u32,
}

impl Default for TurnParams {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            prefix_padding_ms: 300,
            silence_duration_ms: 500,
            min_speech_ms: 96,
        }
    }
}

/// A change of turn, at a sample index of the whole stream (16 kHz).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnEvent {
    /// Speech began; the turn's audio starts at `start` (padding included).
    Started {
        /// First sample of the turn.
        start: usize,
    },
    /// Speech ended at `speech_end` and the silence after it lasted until `end`.
    Stopped {
        /// End of the last speech window.
        speech_end: usize,
        /// End of the silence that ended the turn.
        end: usize,
    },
}

/// Finds turns in a stream of per-window speech probabilities.
#[derive(Debug, Clone)]
pub struct TurnDetector {
    params: TurnParams,
    /// Windows seen.
    windows: usize,
    /// Consecutive speech windows before a turn started.
    speech_run: usize,
    /// In a turn: consecutive silent windows, and the end of the last speech window.
    in_turn: Option<(usize, usize)>,
}

fn ms_to_windows(ms: u32) -> usize {
    (ms as usize * crate::SAMPLE_RATE as usize / 1000).div_ceil(WINDOW)
}

impl TurnDetector {
    /// A detector with `params`, before any audio.
    pub fn new(params: TurnParams) -> Self {
        Self {
            params,
            windows: 0,
            speech_run: 0,
            in_turn: None,
        }
    }

    /// A detector whose stream has already run `position` samples (the
    /// windows it counts start there, rounded down to a whole window).
    pub fn starting_at(params: TurnParams, position: usize) -> Self {
        Self {
            windows: position / WINDOW,
            ..Self::new(params)
        }
    }

    /// Whether a turn is in progress.
    pub fn in_turn(&self) -> bool {
        self.in_turn.is_some()
    }

    /// Whether the current turn's speech has paused (a silent window last).
    pub fn paused(&self) -> bool {
        self.in_turn.is_some_and(|(silent, _)| silent > 0)
    }

    /// In a turn whose speech has paused: the silence so far (samples) and
    /// where the speech before it ended.
    pub fn pause(&self) -> Option<(usize, usize)> {
        match self.in_turn {
            Some((silent, speech_end)) if silent > 0 => Some((silent * WINDOW, speech_end)),
            _ => None,
        }
    }

    /// Samples of the stream seen so far.
    pub fn position(&self) -> usize {
        self.windows * WINDOW
    }

    /// Ends the turn in progress without an event (a manual commit or a cut);
    /// a new turn starts at the next speech.
    pub fn reset_turn(&mut self) {
        self.in_turn = None;
        self.speech_run = 0;
    }

    /// Feeds the next windows' probabilities; returns the turn changes.
    pub fn push(&mut self, probabilities: &[f32]) -> Vec<TurnEvent> {
        let p = self.params;
        let silence_below = (p.threshold - 0.15).max(0.01);
        let min_speech = ms_to_windows(p.min_speech_ms).max(1);
        let silence_windows = ms_to_windows(p.silence_duration_ms).max(1);
        let padding = p.prefix_padding_ms as usize * crate::SAMPLE_RATE as usize / 1000;
        let mut events = Vec::new();
        for &probability in probabilities {
            self.windows += 1;
            let end = self.windows * WINDOW;
            match &mut self.in_turn {
                None => {
                    if probability >= p.threshold {
                        self.speech_run += 1;
                        if self.speech_run >= min_speech {
                            let first = end - self.speech_run * WINDOW;
                            events.push(TurnEvent::Started {
                                start: first.saturating_sub(padding),
                            });
                            self.in_turn = Some((0, end));
                            self.speech_run = 0;
                        }
                    } else {
                        self.speech_run = 0;
                    }
                }
                Some((silent, speech_end)) => {
                    if probability < silence_below {
                        *silent += 1;
                        if *silent >= silence_windows {
                            events.push(TurnEvent::Stopped {
                                speech_end: *speech_end,
                                end,
                            });
                            self.in_turn = None;
                        }
                    } else {
                        *silent = 0;
                        *speech_end = end;
                    }
                }
            }
        }
        events
    }
}

/// How many of `current`'s words the previous decode `previous` agrees on: the
/// length of their longest common prefix of words, compared as the word error
/// rate compares them (case and punctuation aside).
pub fn agreed_words(previous: &[String], current: &[String]) -> usize {
    previous
        .iter()
        .zip(current)
        .take_while(|(a, b)| same_word(a, b))
        .count()
}

fn same_word(a: &str, b: &str) -> bool {
    normalized_words(a) == normalized_words(b)
}

/// The words of a decode as they are shown: split at spaces, each with its
/// punctuation.
pub fn words_of(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        words_of(text)
    }

    #[test]
    fn agreement_is_the_common_prefix_case_and_punctuation_aside() {
        assert_eq!(
            agreed_words(&words("And so my"), &words("And so, my fellow")),
            3
        );
        assert_eq!(agreed_words(&words("ask not what"), &words("Ask knot")), 1);
        assert_eq!(agreed_words(&[], &words("hello")), 0);
        assert_eq!(agreed_words(&words("one two three"), &words("one two")), 2);
    }

    fn turn_events(params: TurnParams, probabilities: &[f32]) -> Vec<TurnEvent> {
        let mut detector = TurnDetector::new(params);
        // Fed in uneven pieces: the result must not depend on the split.
        let mut events = Vec::new();
        for chunk in probabilities.chunks(3) {
            events.extend(detector.push(chunk));
        }
        events
    }

    #[test]
    fn a_turn_starts_after_enough_speech_and_ends_after_enough_silence() {
        let params = TurnParams {
            threshold: 0.5,
            prefix_padding_ms: 64,
            silence_duration_ms: 160, // 5 windows
            min_speech_ms: 96,        // 3 windows
        };
        // 10 silent windows, 2 speech (too short), 3 silent, 8 speech, 3 silent
        // (a pause), 4 speech, 6 silent.
        let mut p = vec![0.1; 10];
        p.extend([0.9; 2]);
        p.extend([0.1; 3]);
        p.extend([0.9; 8]);
        p.extend([0.1; 3]);
        p.extend([0.9; 4]);
        p.extend([0.1; 6]);
        let events = turn_events(params, &p);
        let w = WINDOW;
        assert_eq!(
            events,
            vec![
                TurnEvent::Started {
                    start: 15 * w - 2 * w
                },
                TurnEvent::Stopped {
                    speech_end: 30 * w,
                    end: 35 * w
                },
            ]
        );
    }

    #[test]
    fn hysteresis_keeps_a_turn_through_middling_probabilities() {
        let params = TurnParams {
            silence_duration_ms: 64,
            min_speech_ms: 32,
            prefix_padding_ms: 0,
            threshold: 0.5,
        };
        let p = [0.9, 0.4, 0.4, 0.4, 0.2, 0.2];
        let events = turn_events(params, &p);
        assert_eq!(
            events,
            vec![
                TurnEvent::Started { start: 0 },
                TurnEvent::Stopped {
                    speech_end: 4 * WINDOW,
                    end: 6 * WINDOW
                }
            ]
        );
    }

    #[test]
    fn reset_ends_a_turn_silently() {
        let mut detector = TurnDetector::new(TurnParams {
            min_speech_ms: 32,
            ..TurnParams::default()
        });
        assert_eq!(detector.push(&[0.9]).len(), 1);
        assert!(detector.in_turn());
        detector.reset_turn();
        assert!(!detector.in_turn());
        assert_eq!(detector.push(&[0.1; 40]), vec![]);
        assert_eq!(detector.position(), 41 * WINDOW);
    }
}
