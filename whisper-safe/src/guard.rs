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
//! One departure from that rule saves the rest of the ladder: text that is
//! repetitive because the audio is (a litany, parallel sentences) compresses
//! above the threshold at every temperature, and the higher ones only sample
//! worse words. When a window failed on its compression ratio alone and an
//! attempt at a higher temperature gives the words of an earlier attempt
//! again (all but at most one word in [`AGREEMENT_WORDS`]: a sample differs
//! from the greedy words by a word now and then), without a loop in them (a
//! phrase said [`LOOP_REPEATS`] times or more back to back), that earlier
//! attempt is kept.
//!
//! whisper.cpp's own fallback (token entropy over the last 32 tokens) lets
//! loops of long sentences through; runs made here turn it off.

use std::io::Write;

use flate2::write::ZlibEncoder;
use flate2::Compression;

use crate::{Params, Result, RunTimings, Transcript};

/// A phrase said this many times back to back or more is a decoding loop, not
/// repetition in the audio (a question asked three times is not a loop).
pub const LOOP_REPEATS: usize = 4;

/// Two attempts whose words differ by at most one word in this many (at
/// least one word) say the same thing.
pub const AGREEMENT_WORDS: usize = 25;

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

    /// Whether `later`, sampled at a higher temperature, confirms the `earlier`
    /// attempt: both failed only on their compression ratio, with words that
    /// [`agree`], and those words hold no loop.
    fn confirms(
        &self,
        earlier: &(Transcript, WindowStats),
        later: (&Transcript, &WindowStats),
    ) -> bool {
        let probable = |stats: &WindowStats| {
            self.log_prob_threshold
                .is_none_or(|threshold| stats.avg_logprob >= threshold)
        };
        if !probable(&earlier.1) || !probable(later.1) {
            return false;
        }
        let words = normalized_words(&earlier.0.text());
        agree(&words, &normalized_words(&later.0.text())) && !has_loop(&words)
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
            let transcript = run(&attempt)?;
            timings.add(&transcript.timings);
            let stats = WindowStats::of(&transcript, temperature);
            let verdict = self.verdict(&stats);
            let kept = if verdict != Verdict::Retry {
                (transcript, stats)
            } else if let Some(earlier) = attempts
                .iter()
                .find(|earlier| self.confirms(earlier, (&transcript, &stats)))
            {
                log::debug!(
                    "temperature {temperature} gave the words of temperature {} \
                     again: repetition in the audio, that attempt kept",
                    earlier.1.temperature
                );
                earlier.clone()
            } else {
                log::debug!(
                    "temperature {temperature}: compression {:.2}, log-prob {:.2}, decoding again: {:?}",
                    stats.compression_ratio,
                    stats.avg_logprob,
                    transcript.text()
                );
                attempts.push((transcript, stats));
                continue;
            };
            let (mut transcript, stats) = kept;
            transcript.timings = timings;
            return Ok(Guarded {
                transcript,
                stats,
                decodes: attempts.len() as u32 + 1,
                silence: verdict == Verdict::Silence,
            });
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

/// The words of `text`, lower-cased, without punctuation: what two transcripts
/// are compared by.
pub fn normalized_words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Whether two word lists differ by at most one word in [`AGREEMENT_WORDS`]
/// (at least one): words inserted, dropped or replaced, counted as in a word
/// error rate.
fn agree(a: &[String], b: &[String]) -> bool {
    let allowed = (a.len().max(b.len()) / AGREEMENT_WORDS).max(1);
    edit_distance(a, b) <= allowed
}

/// The fewest items inserted, dropped or replaced that turn `a` into `b`
/// (Levenshtein distance): over words, what a word error rate counts.
pub fn edit_distance<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, item_a) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, item_b) in b.iter().enumerate() {
            let replaced = diagonal + usize::from(item_a != item_b);
            diagonal = row[j + 1];
            row[j + 1] = replaced.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// Whether some phrase of `words` is said [`LOOP_REPEATS`] times or more back to
/// back.
pub fn has_loop(words: &[String]) -> bool {
    repeats(words, 1, LOOP_REPEATS)
}

/// Whether some phrase of at least `min_words` of `words` is said `times`
/// times or more back to back.
pub fn repeats(words: &[String], min_words: usize, times: usize) -> bool {
    let times = times.max(2);
    let longest = words.len() / times;
    (min_words.max(1)..=longest).any(|n| {
        (0..=words.len() - n * times).any(|start| {
            let phrase = &words[start..start + n];
            (1..times).all(|k| &words[start + k * n..start + (k + 1) * n] == phrase)
        })
    })
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

    /// Parallel sentences as in the long-form set: above the threshold, no loop.
    const LITANY: &str = "A time to be born, and a time to die. A time to plant, and a time \
        to pluck up. A time to cast away stones, and a time to gather stones together. \
        A time to embrace, and a time to refrain from embracing. A time to get, and a time \
        to lose. A time to keep, and a time to cast away. A time to keep silence, and a time \
        to speak. A time to love, and a time to hate. A time of war, and a time of peace.";

    #[test]
    fn a_phrase_said_four_times_back_to_back_is_a_loop() {
        let words = |text: &str| normalized_words(text);
        assert!(has_loop(&words(LOOP)));
        assert!(has_loop(&words("judiciary powers ours, ours, ours, ours")));
        assert!(!has_loop(&words("ours, ours, ours")));
        assert!(!has_loop(&words(LITANY)));
        assert!(!has_loop(&words(PROSE)));
        assert!(!has_loop(&[]));
        let thrice = words("Ask what you can do. Ask what you can do. Ask what you can do. Ask");
        assert!(!has_loop(&thrice) && repeats(&thrice, 2, 3));
        assert!(!repeats(
            &words("it was the best of times it was the worst of times"),
            2,
            3
        ));
        assert!(
            !repeats(&words("no no no"), 2, 3),
            "one-word phrases are below the minimum"
        );
        assert_eq!(
            words("A time, to cast-away."),
            ["a", "time", "to", "cast", "away"]
        );
    }

    /// Decodes with `greedy` at temperature 0 and `sampled` above it; returns
    /// the temperatures tried and the result.
    fn decode_litany(greedy: Transcript, sampled: Transcript) -> (Vec<f32>, Guarded) {
        let mut seen = Vec::new();
        let guarded = Guard::default()
            .decode(&Params::greedy(), |params| {
                let t = params.initial_temperature().unwrap();
                seen.push(t);
                Ok(if t == 0.0 { &greedy } else { &sampled }.clone())
            })
            .unwrap();
        (seen, guarded)
    }

    #[test]
    fn repetition_in_the_audio_confirmed_at_a_higher_temperature_keeps_the_greedy_words() {
        assert!(
            compression_ratio(LITANY) > 2.4,
            "{}",
            compression_ratio(LITANY)
        );
        // The sampled attempt differs in punctuation and case only.
        let (seen, guarded) = decode_litany(
            window(LITANY, -0.08, 0.0),
            window(&LITANY.replace('.', ",").to_uppercase(), -0.01, 0.0),
        );
        assert_eq!(seen, [0.0, 0.2]);
        assert_eq!(guarded.decodes, 2);
        assert_eq!(guarded.stats.temperature, 0.0);
        assert_eq!(guarded.transcript.text(), LITANY);
    }

    #[test]
    fn a_sample_one_word_apart_confirms_the_greedy_words() {
        let greedy = LITANY.replace("of war", "on war");
        let (seen, guarded) =
            decode_litany(window(&greedy, -0.07, 0.0), window(LITANY, -0.02, 0.0));
        assert_eq!(seen, [0.0, 0.2]);
        assert_eq!(guarded.stats.temperature, 0.0);
        assert_eq!(guarded.transcript.text(), greedy);
    }

    #[test]
    fn two_sampled_attempts_that_agree_keep_the_first_of_them() {
        // Four words apart from the samples, of 91: more than one in 25.
        let greedy = LITANY
            .replace("of war", "on war")
            .replace("of peace", "on peace")
            .replace("to die", "to dine")
            .replace("to plant", "to plan");
        let (seen, guarded) =
            decode_litany(window(&greedy, -0.07, 0.0), window(LITANY, -0.02, 0.0));
        assert_eq!(seen, [0.0, 0.2, 0.4]);
        assert_eq!(guarded.stats.temperature, 0.2);
        assert_eq!(guarded.transcript.text(), LITANY);
    }

    #[test]
    fn word_lists_agree_when_at_most_one_word_in_25_differs() {
        let words = |n: usize, changed: &[usize]| -> Vec<String> {
            (0..n)
                .map(|i| {
                    if changed.contains(&i) {
                        "x".into()
                    } else {
                        format!("w{i}")
                    }
                })
                .collect()
        };
        assert!(agree(&words(10, &[]), &words(10, &[])));
        assert!(agree(&words(10, &[3]), &words(10, &[])));
        assert!(!agree(&words(10, &[3, 7]), &words(10, &[])));
        assert!(agree(&words(100, &[3, 20, 40, 70]), &words(100, &[])));
        assert!(!agree(&words(100, &[3, 20, 40, 70, 90]), &words(100, &[])));
        // A dropped word counts once, not as every later word shifted.
        let mut dropped = words(30, &[]);
        dropped.remove(5);
        assert!(agree(&dropped, &words(30, &[])));
        assert!(!agree(&words(3, &[]), &words(5, &[])));
    }

    #[test]
    fn a_confirmed_loop_or_improbable_text_is_still_decoded_again() {
        for (text, logprob) in [(LOOP, -0.1), (LITANY, -1.4)] {
            let mut calls = 0;
            Guard::default()
                .decode(&Params::greedy(), |_| {
                    calls += 1;
                    Ok(window(text, logprob, 0.0))
                })
                .unwrap();
            assert_eq!(calls, 6, "{text:?} at log-prob {logprob}");
        }
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
