//! Long audio cut into [`Piece`]s of at most 30 s, each decoded on its own, and
//! times in a piece mapped back to the whole recording.
//!
//! Two ways to cut: [`by_speech`] joins the speech spans a voice-activity
//! detector found (silence between them is left out), [`by_quiet`] covers all
//! the audio and cuts at its quietest moment before each 30 s.

use std::borrow::Cow;

use crate::{Transcript, SAMPLE_RATE};

/// The longest piece whisper decodes in one window: 30 s of 16 kHz samples.
pub const MAX_PIECE_SAMPLES: usize = 30 * SAMPLE_RATE as usize;

/// How far past the joint of two spans an end time may fall and still be
/// taken as ending at the joint.
pub const JOINT_TOLERANCE_SECONDS: f64 = 1.0;

/// A stretch of the recording, in samples: `start..end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// First sample.
    pub start: usize,
    /// One past the last sample.
    pub end: usize,
}

impl Span {
    /// Samples in the span.
    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }

    /// Whether it holds no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The span of `start..end` seconds in audio of `n_samples`.
    pub fn from_seconds(start: f64, end: f64, n_samples: usize) -> Self {
        let at = |t: f64| ((t.max(0.0) * f64::from(SAMPLE_RATE)).round() as usize).min(n_samples);
        let start = at(start);
        Self {
            start,
            end: at(end).max(start),
        }
    }
}

/// One or more spans of the recording, decoded as one stretch of audio (the
/// spans one after another).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    spans: Vec<Span>,
}

impl Piece {
    /// A piece of the given spans, in order and not overlapping.
    pub fn new(spans: Vec<Span>) -> Self {
        Self { spans }
    }

    /// Its spans of the recording.
    pub fn spans(&self) -> &[Span] {
        &self.spans
    }

    /// Samples decoded.
    pub fn len(&self) -> usize {
        self.spans.iter().map(Span::len).sum()
    }

    /// Whether it holds no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Where it starts in the recording, in seconds.
    pub fn start_seconds(&self) -> f64 {
        self.spans.first().map_or(0.0, |s| seconds(s.start))
    }

    /// Where it ends in the recording, in seconds.
    pub fn end_seconds(&self) -> f64 {
        self.spans.last().map_or(0.0, |s| seconds(s.end))
    }

    /// Its samples out of the recording's (copied only when it joins spans).
    pub fn samples<'a>(&self, audio: &'a [f32]) -> Cow<'a, [f32]> {
        let clip = |s: &Span| &audio[s.start.min(audio.len())..s.end.min(audio.len())];
        match self.spans.as_slice() {
            [one] => Cow::Borrowed(clip(one)),
            spans => Cow::Owned(spans.iter().flat_map(clip).copied().collect()),
        }
    }

    /// The piece from `skip` samples into it on (empty when `skip` is past
    /// its end): what is left to decode when a decode stopped early.
    pub fn tail(&self, skip: usize) -> Piece {
        let mut skip = skip;
        let mut spans = Vec::new();
        for span in &self.spans {
            if skip >= span.len() {
                skip -= span.len();
                continue;
            }
            spans.push(Span {
                start: span.start + skip,
                end: span.end,
            });
            skip = 0;
        }
        Piece { spans }
    }

    /// A time `t` seconds into the piece, as seconds into the recording.
    /// Times past the piece's end map to its end.
    pub fn to_recording(&self, t: f64) -> f64 {
        let mut offset = 0.0;
        for span in &self.spans {
            let length = seconds(span.len());
            if t < offset + length {
                return seconds(span.start) + (t - offset).max(0.0);
            }
            offset += length;
        }
        self.end_seconds()
    }

    /// The span `start..end` seconds into the piece, as seconds into the
    /// recording. An end that passes the joint after the start's span by less
    /// than [`JOINT_TOLERANCE_SECONDS`] stays at that joint: whisper's end
    /// times drift a little, and the silence left out between spans must not
    /// be counted into a word.
    pub fn interval_to_recording(&self, start: f64, end: f64) -> (f64, f64) {
        let mapped_start = self.to_recording(start);
        let mut offset = 0.0;
        for span in &self.spans {
            let length = seconds(span.len());
            if start < offset + length {
                let joint = offset + length;
                let mapped_end = if end >= joint && end < joint + JOINT_TOLERANCE_SECONDS {
                    seconds(span.end)
                } else {
                    self.to_recording(end)
                };
                return (mapped_start, mapped_end.max(mapped_start));
            }
            offset += length;
        }
        (mapped_start, self.to_recording(end).max(mapped_start))
    }

    /// Moves every time of `transcript` (decoded from this piece) onto the
    /// recording's timeline.
    pub fn map_times(&self, transcript: &mut Transcript) {
        for segment in &mut transcript.segments {
            (segment.start, segment.end) = self.interval_to_recording(segment.start, segment.end);
            for token in &mut segment.tokens {
                if let (Some(start), Some(end)) = (token.start, token.end) {
                    let (start, end) = self.interval_to_recording(start, end);
                    (token.start, token.end) = (Some(start), Some(end));
                }
            }
            for word in &mut segment.words {
                (word.start, word.end) = self.interval_to_recording(word.start, word.end);
            }
        }
    }
}

fn seconds(samples: usize) -> f64 {
    samples as f64 / f64::from(SAMPLE_RATE)
}

/// Joins consecutive speech spans of `audio` into pieces of at most
/// `max_samples`; a span longer than that is cut as [`by_quiet`] cuts, at the
/// quietest moment in the last `search` samples before each limit (a pause
/// between sentences, where an even cut would split a word). Empty spans are
/// dropped.
pub fn by_speech(audio: &[f32], speech: &[Span], max_samples: usize, search: usize) -> Vec<Piece> {
    let max_samples = max_samples.max(1);
    let mut pieces = Vec::new();
    let mut current: Vec<Span> = Vec::new();
    let mut current_len = 0;
    for span in speech.iter().filter(|s| !s.is_empty()) {
        let parts = if span.len() > max_samples {
            let end = span.end.min(audio.len()).max(span.start);
            quiet_cuts(&audio[span.start.min(end)..end], max_samples, search)
                .into_iter()
                .map(|part| Span {
                    start: span.start + part.start,
                    end: span.start + part.end,
                })
                .collect()
        } else {
            vec![*span]
        };
        for part in parts {
            if current_len + part.len() > max_samples && !current.is_empty() {
                pieces.push(Piece::new(std::mem::take(&mut current)));
                current_len = 0;
            }
            current_len += part.len();
            current.push(part);
        }
    }
    if !current.is_empty() {
        pieces.push(Piece::new(current));
    }
    pieces
}

/// Covers all of `audio` with pieces of at most `max_samples`, each cut at the
/// quietest 100 ms (lowest energy) in the last `search` samples before the
/// limit, so that a cut rarely falls inside a word.
pub fn by_quiet(audio: &[f32], max_samples: usize, search: usize) -> Vec<Piece> {
    quiet_cuts(audio, max_samples, search)
        .into_iter()
        .map(|span| Piece::new(vec![span]))
        .collect()
}

fn quiet_cuts(audio: &[f32], max_samples: usize, search: usize) -> Vec<Span> {
    const FRAME: usize = SAMPLE_RATE as usize / 10;
    let max_samples = max_samples.max(FRAME);
    let search = search.clamp(FRAME, max_samples);
    let mut spans = Vec::new();
    let mut start = 0;
    while start < audio.len() {
        let limit = start + max_samples;
        let end = if limit >= audio.len() {
            audio.len()
        } else {
            let from = limit - search;
            (from..=limit - FRAME)
                .step_by(FRAME / 2)
                .min_by(|&a, &b| {
                    energy(&audio[a..a + FRAME]).total_cmp(&energy(&audio[b..b + FRAME]))
                })
                .map_or(limit, |quietest| quietest + FRAME / 2)
        };
        spans.push(Span { start, end });
        start = end;
    }
    spans
}

fn energy(frame: &[f32]) -> f32 {
    frame.iter().map(|s| s * s).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Segment, Word};

    const S: usize = SAMPLE_RATE as usize;

    fn span(start: f64, end: f64) -> Span {
        Span::from_seconds(start, end, usize::MAX)
    }

    #[test]
    fn speech_spans_join_up_to_the_limit_and_long_ones_split() {
        // Speech everywhere but a pause of 300 ms at 71.0 s, inside the 70 s span.
        let n = 120 * S;
        let audio: Vec<f32> = (0..n)
            .map(|i| {
                let t = i as f64 / S as f64;
                if (71.0..71.3).contains(&t) {
                    0.0
                } else {
                    (t * 440.0 * std::f64::consts::TAU).sin() as f32 * 0.5
                }
            })
            .collect();
        let speech = [
            span(1.0, 11.0),
            span(15.0, 30.0),
            span(40.0, 46.0),
            span(50.0, 120.0),
        ];
        let pieces = by_speech(&audio, &speech, MAX_PIECE_SAMPLES, 10 * S);
        let lengths: Vec<f64> = pieces.iter().map(|p| seconds(p.len())).collect();
        // 10 + 15 fit in 30, 6 more do not; the 70 s span is cut in the pause
        // (not in equal parts through a word), then before each 30 s.
        assert_eq!(pieces[0].spans(), &[span(1.0, 11.0), span(15.0, 30.0)]);
        assert_eq!(pieces[1].spans()[0], span(40.0, 46.0));
        let cut = pieces[1].spans().last().unwrap().end as f64 / S as f64;
        assert!((71.0..=71.3).contains(&cut), "{cut} {lengths:?}");
        assert!(pieces.iter().all(|p| p.len() <= MAX_PIECE_SAMPLES));
        let total: usize = pieces.iter().map(Piece::len).sum();
        assert_eq!(total, speech.iter().map(Span::len).sum::<usize>());
        assert!(by_speech(&audio, &[], MAX_PIECE_SAMPLES, 10 * S).is_empty());
    }

    #[test]
    fn times_map_through_the_left_out_silence() {
        let piece = Piece::new(vec![span(1.0, 11.0), span(15.0, 30.0)]);
        assert_eq!(piece.to_recording(0.0), 1.0);
        assert_eq!(piece.to_recording(9.5), 10.5);
        assert_eq!(piece.to_recording(10.0), 15.0);
        assert_eq!(piece.to_recording(12.0), 17.0);
        assert_eq!(piece.to_recording(99.0), 30.0);
        let mut transcript = Transcript {
            segments: vec![Segment {
                start: 8.0,
                end: 12.0,
                words: vec![Word {
                    start: 9.0,
                    end: 10.5,
                    ..Word::default()
                }],
                ..Segment::default()
            }],
            ..Transcript::default()
        };
        piece.map_times(&mut transcript);
        let segment = &transcript.segments[0];
        assert_eq!((segment.start, segment.end), (9.0, 17.0));
        assert_eq!((segment.words[0].start, segment.words[0].end), (10.0, 11.0));
        // An end just past the joint stays at the joint, not after the silence.
        assert_eq!(piece.interval_to_recording(9.0, 10.4), (10.0, 11.0));
        assert_eq!(piece.interval_to_recording(10.2, 10.4), (15.2, 15.4));
    }

    #[test]
    fn a_tail_skips_into_the_span_where_it_starts() {
        let piece = Piece::new(vec![
            Span {
                start: 100,
                end: 200,
            },
            Span {
                start: 500,
                end: 600,
            },
        ]);
        assert_eq!(piece.tail(0), piece);
        assert_eq!(
            piece.tail(30).spans(),
            [
                Span {
                    start: 130,
                    end: 200
                },
                Span {
                    start: 500,
                    end: 600
                }
            ]
        );
        assert_eq!(
            piece.tail(100).spans(),
            [Span {
                start: 500,
                end: 600
            }]
        );
        assert_eq!(
            piece.tail(150).spans(),
            [Span {
                start: 550,
                end: 600
            }]
        );
        assert!(piece.tail(200).is_empty());
        assert!(piece.tail(900).is_empty());
    }

    #[test]
    fn samples_of_a_joined_piece_are_its_spans_in_order() {
        let audio: Vec<f32> = (0..10).map(|i| i as f32).collect();
        let piece = Piece::new(vec![Span { start: 1, end: 3 }, Span { start: 6, end: 8 }]);
        assert_eq!(&*piece.samples(&audio), &[1.0, 2.0, 6.0, 7.0]);
        let one = Piece::new(vec![Span { start: 2, end: 5 }]);
        assert!(matches!(
            one.samples(&audio),
            Cow::Borrowed(&[2.0, 3.0, 4.0])
        ));
    }

    #[test]
    fn quiet_cuts_cover_the_audio_and_fall_in_the_pause() {
        // A tone with a pause of 300 ms at 26.0 s and another at 52.0 s.
        let n = 70 * S;
        let audio: Vec<f32> = (0..n)
            .map(|i| {
                let t = i as f64 / S as f64;
                let pause = (26.0..26.3).contains(&t) || (52.0..52.3).contains(&t);
                if pause {
                    0.0
                } else {
                    (t * 440.0 * std::f64::consts::TAU).sin() as f32 * 0.5
                }
            })
            .collect();
        let pieces = by_quiet(&audio, MAX_PIECE_SAMPLES, 10 * S);
        assert_eq!(pieces.len(), 3);
        let cuts: Vec<f64> = pieces.iter().map(Piece::end_seconds).collect();
        assert!((26.0..=26.3).contains(&cuts[0]), "{cuts:?}");
        assert!((52.0..=52.3).contains(&cuts[1]), "{cuts:?}");
        assert_eq!(cuts[2], 70.0);
        assert!(pieces
            .windows(2)
            .all(|w| w[0].spans()[0].end == w[1].spans()[0].start));
        assert!(pieces.iter().all(|p| p.len() <= MAX_PIECE_SAMPLES));
        assert_eq!(
            by_quiet(&audio[..5 * S], MAX_PIECE_SAMPLES, 10 * S).len(),
            1
        );
    }
}
