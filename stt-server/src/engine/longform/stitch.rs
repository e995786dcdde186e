//! Stitching: decoded pieces back in order, in segments cut at sentence
//! ends, without silence, tags, repeats and loops.

use std::collections::BTreeMap;

use whisper_safe::guard::{normalized_words, Guarded};
use whisper_safe::pieces::Piece;
use whisper_safe::{Segment, Transcript};

use super::piece::Decoded;
use super::{seconds_of, LongForm, LongFormStats};

/// Segments are cut at sentence ends where both sides last at least this long.
const MIN_SENTENCE_SECONDS: f64 = 1.0;
/// A segment's first word this far before its second is moved next to it
/// (whisper times a sentence's first token right after the previous one, even
/// across a silence the VAD left out, at least 1.2 s with its padding).
const MAX_LEADING_GAP_SECONDS: f64 = 1.0;

/// Puts decoded pieces together in order, whatever order they finish in.
pub(super) struct Stitcher<'a> {
    /// Seconds of audio in all the pieces.
    total_seconds: f64,
    audio_seconds: f64,
    loop_threshold: Option<f32>,
    on_segment: Option<&'a (dyn Fn(&Segment) + Sync)>,
    on_progress: Option<&'a (dyn Fn(f32) + Sync)>,
    waiting: BTreeMap<usize, Guarded>,
    next: usize,
    segments: Vec<Segment>,
    language: Option<String>,
    previous_text: String,
    pub(super) stats: LongFormStats,
}

impl<'a> Stitcher<'a> {
    pub(super) fn new(job: &LongForm<'a>) -> Self {
        Self {
            total_seconds: seconds_of(job.pieces.iter().map(Piece::len).sum()),
            audio_seconds: job.audio.len() as f64 / f64::from(whisper_safe::SAMPLE_RATE),
            loop_threshold: job.guard.compression_ratio_threshold,
            on_segment: job.on_segment,
            on_progress: job.on_progress,
            waiting: BTreeMap::new(),
            next: 0,
            segments: Vec::new(),
            language: None,
            previous_text: String::new(),
            stats: LongFormStats::default(),
        }
    }

    pub(super) fn add(&mut self, index: usize, piece: &Piece, decoded: Decoded) {
        self.stats.pieces += 1;
        self.stats.decodes += decoded.guarded.decodes;
        self.stats.fallbacks += decoded.fallbacks;
        self.stats.remainders += decoded.remainders + decoded.unprompted_retries;
        self.stats.decoded_seconds += seconds_of(piece.len());
        self.stats.timings.add(&decoded.guarded.transcript.timings);
        self.waiting.insert(index, decoded.guarded);
        while let Some(guarded) = self.waiting.remove(&self.next) {
            self.next += 1;
            self.emit(guarded);
        }
        if let Some(report) = self.on_progress {
            // Every piece done counts, stitched yet or not (lanes finish out
            // of order).
            report((self.stats.decoded_seconds / self.total_seconds.max(1e-9)) as f32);
        }
    }

    fn emit(&mut self, guarded: Guarded) {
        if self.language.is_none() {
            self.language = guarded.transcript.language.clone();
        }
        if guarded.silence {
            self.stats.silent += 1;
            return;
        }
        let text = normalize(&guarded.transcript.text());
        if text.is_empty() {
            return;
        }
        if text == self.previous_text {
            self.stats.duplicates += 1;
            return;
        }
        self.previous_text = text;
        let still_loops = self
            .loop_threshold
            .is_some_and(|threshold| guarded.stats.compression_ratio > threshold);
        let sentences = guarded
            .transcript
            .segments
            .into_iter()
            .flat_map(|segment| segment.split_at_sentences(MIN_SENTENCE_SECONDS))
            .map(|segment| segment.close_leading_gap(MAX_LEADING_GAP_SECONDS));
        for mut segment in sentences {
            if is_non_speech_tag(&segment.text) {
                log::debug!("dropped {:?} at {:.2} s", segment.text, segment.start);
                continue;
            }
            if still_loops && self.repeats_twice(&segment) {
                self.stats.looped_segments += 1;
                continue;
            }
            segment.index = self.segments.len();
            segment.temperature = guarded.stats.temperature;
            if let Some(forward) = self.on_segment {
                forward(&segment);
            }
            self.segments.push(segment);
        }
    }

    /// Whether `segment`'s text is that of the last two segments kept.
    fn repeats_twice(&self, segment: &Segment) -> bool {
        let text = normalize(&segment.text);
        let n = self.segments.len();
        n >= 2
            && self.segments[n - 2..]
                .iter()
                .all(|s| normalize(&s.text) == text)
    }

    pub(super) fn finish(self) -> (Transcript, LongFormStats) {
        let transcript = Transcript {
            segments: self.segments,
            language: self.language,
            language_probability: None,
            duration_seconds: self.audio_seconds,
            timings: self.stats.timings,
        };
        (transcript, self.stats)
    }
}

/// Whether `text` is only a bracketed tag such as `[BLANK_AUDIO]` or
/// `[MUSIC]`, which whisper writes for sound without words.
fn is_non_speech_tag(text: &str) -> bool {
    let text = text.trim();
    let inner = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or("");
    !inner.trim().is_empty() && !inner.contains(['[', ']'])
}

/// Lower-case words of letters and digits, one space apart.
fn normalize(text: &str) -> String {
    normalized_words(text).join(" ")
}

#[cfg(test)]
mod tests {
    use whisper_safe::{CancelToken, Params};

    use super::*;
    use crate::engine::longform::test_support::{job, NoLender, Scripted};

    #[test]
    fn a_segment_that_is_only_a_non_speech_tag_is_dropped() {
        let audio = vec![0.1; 16_000 * 50];
        let cancel = CancelToken::new();
        let mut decoder = Scripted::new(|n, call| match n {
            0 => vec![
                (0.0, 20.0, " Hello there."),
                (20.0, call.seconds, " [BLANK_AUDIO]"),
            ],
            _ => vec![(0.0, call.seconds, " [Music] and words.")],
        });
        let (transcript, _) = job(&audio, Params::greedy().language(Some("en")), &cancel)
            .run(&mut decoder, &NoLender)
            .unwrap();
        assert_eq!(transcript.text(), "Hello there. [Music] and words.");
        assert!(is_non_speech_tag(" [ Silence ] "));
        assert!(!is_non_speech_tag("[]"));
        assert!(!is_non_speech_tag("[a] and [b]"));
    }
}
