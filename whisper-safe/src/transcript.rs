//! Owned transcription results.

use serde::Serialize;

/// The result of one run: owned, independent of the state that produced it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Transcript {
    /// Segments in time order.
    pub segments: Vec<Segment>,
    /// The language decoded (given or detected), as a code such as `en`.
    pub language: Option<String>,
    /// The probability of `language` when it was detected by [`State::detect_language`](crate::State::detect_language).
    pub language_probability: Option<f32>,
    /// Length of the audio passed in, in seconds.
    pub duration_seconds: f64,
    /// Where the run's time went.
    pub timings: RunTimings,
}

/// Where a run's time went, as seen from whisper.cpp's callbacks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct RunTimings {
    /// 30-second windows encoded.
    pub windows: u32,
    /// Seconds from each window's start to its first sampled token: the
    /// encoder and the prompt pass.
    pub encoder_seconds: f64,
    /// The rest of the run: sampling tokens one by one.
    pub decoder_seconds: f64,
}

impl RunTimings {
    /// The sum of both, window by window.
    pub fn add(&mut self, other: &RunTimings) {
        self.windows += other.windows;
        self.encoder_seconds += other.encoder_seconds;
        self.decoder_seconds += other.decoder_seconds;
    }
}

impl Transcript {
    /// The whole text: segment texts joined and trimmed.
    pub fn text(&self) -> String {
        let joined: String = self.segments.iter().map(|s| s.text.as_str()).collect();
        joined.trim().to_owned()
    }

    /// Clamps segment, token and word times into the audio: whisper.cpp may
    /// place the last segment's end past the end of the samples.
    pub(crate) fn clamp_times(&mut self) {
        let limit = self.duration_seconds;
        let clamp = |t: &mut f64| *t = t.clamp(0.0, limit);
        for segment in &mut self.segments {
            clamp(&mut segment.start);
            clamp(&mut segment.end);
            for token in &mut segment.tokens {
                token
                    .start
                    .iter_mut()
                    .chain(token.end.iter_mut())
                    .for_each(clamp);
            }
            for word in &mut segment.words {
                clamp(&mut word.start);
                clamp(&mut word.end);
            }
        }
    }

    /// The ids of its decoded tokens, text and timestamps, in order: the
    /// prompt for the audio that follows, as whisper.cpp and OpenAI prompt a
    /// window with the one before (a prompt without timestamp tokens makes
    /// the model answer without them: one segment per window).
    pub fn prompt_token_ids(&self) -> Vec<i32> {
        self.segments
            .iter()
            .flat_map(|s| s.tokens.iter())
            .map(|t| t.id)
            .collect()
    }

    /// Every word of every segment (empty unless word timestamps were asked for).
    pub fn words(&self) -> impl Iterator<Item = &Word> {
        self.segments.iter().flat_map(|s| s.words.iter())
    }
}

/// A stretch of speech with its text.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Segment {
    /// Position in the transcript, from 0.
    pub index: usize,
    /// Start in seconds from the beginning of the audio.
    pub start: f64,
    /// End in seconds.
    pub end: f64,
    /// The text, with whisper's leading space.
    pub text: String,
    /// The tokens, special tokens included (see [`Token::special`]).
    pub tokens: Vec<Token>,
    /// Words with times, when word timestamps were asked for.
    pub words: Vec<Word>,
    /// Mean log-probability of the text tokens.
    pub avg_logprob: f32,
    /// Probability that the window holds no speech (0 with stock libraries, which
    /// do not compute it: [`crate::patches`]).
    pub no_speech_prob: f32,
    /// The initial sampling temperature of the run (whisper.cpp does not report
    /// which fallback temperature produced each segment).
    pub temperature: f32,
}

impl Segment {
    /// The segment cut at each sentence end (a text token ending in `.`, `?`,
    /// `!` or `。`, followed by a token that starts a new word) where both
    /// sides last at least `min_seconds`, each part starting at its first
    /// token's time: whisper often writes several sentences, up to a whole
    /// window, as one segment. Needs token times
    /// ([`Params::token_timestamps`](crate::Params::token_timestamps)); a
    /// segment without them, or whose token texts do not spell its text,
    /// comes back whole.
    pub fn split_at_sentences(self, min_seconds: f64) -> Vec<Segment> {
        let spelled: String = self
            .tokens
            .iter()
            .filter(|t| !t.special)
            .map(|t| t.text.as_str())
            .collect();
        let timed = self.tokens.iter().all(|t| t.special || t.start.is_some());
        if spelled != self.text || !timed {
            return vec![self];
        }
        let is_end = |t: &Token| {
            !t.special && {
                let text = t.text.trim_end();
                text.ends_with(['.', '?', '!', '。'])
            }
        };
        let mut cuts = Vec::new(); // token indexes that start a new part
        let mut part_start = self.start;
        for (i, pair) in self.tokens.windows(2).enumerate() {
            let (last, next) = (&pair[0], &pair[1]);
            let Some(at) = next.start.filter(|_| is_end(last) && !next.special) else {
                continue;
            };
            if next.text.starts_with(' ')
                && at - part_start >= min_seconds
                && self.end - at >= min_seconds
            {
                cuts.push(i + 1);
                part_start = at;
            }
        }
        if cuts.is_empty() {
            return vec![self];
        }
        let meta = self.clone_meta();
        let (start, end) = (self.start, self.end);
        let mut parts = Vec::with_capacity(cuts.len() + 1);
        let mut tokens = self.tokens;
        let mut words = self.words;
        for &cut in cuts.iter().rev() {
            let tail_tokens = tokens.split_off(cut);
            let at = tail_tokens[0].start.unwrap_or(start);
            let split = words.partition_point(|w| w.start < at);
            let tail_words = words.split_off(split);
            parts.push((at, tail_tokens, tail_words));
        }
        parts.push((start, tokens, words));
        parts.reverse();
        let starts: Vec<f64> = parts.iter().map(|p| p.0).collect();
        let mut segments = Vec::with_capacity(parts.len());
        for (k, (part_start, tokens, words)) in parts.into_iter().enumerate() {
            let part_end = starts.get(k + 1).copied().unwrap_or(end);
            let text = tokens
                .iter()
                .filter(|t| !t.special)
                .map(|t| t.text.as_str())
                .collect();
            segments.push(Segment {
                start: part_start,
                end: part_end.max(part_start),
                text,
                tokens,
                words,
                ..meta.clone()
            });
        }
        segments
    }

    /// The segment with its first word moved next to the second when more
    /// than `max_gap` seconds lie between them, and starting there. whisper
    /// times a sentence's first token right after the sentence before it, so
    /// after a silence (above all one the VAD left out of the piece) a segment
    /// cut at that sentence would start in the silence. The first word's
    /// tokens (a word starts at a text token with a leading space, as in
    /// [`Segment::words`]) and its [`Word`] move by the same amount, to end
    /// where the second word begins. Segments without token times come back
    /// as they are.
    pub fn close_leading_gap(mut self, max_gap: f64) -> Segment {
        let text: Vec<usize> = (0..self.tokens.len())
            .filter(|&i| !self.tokens[i].special)
            .collect();
        let Some(second_word) =
            (1..text.len()).find(|&k| self.tokens[text[k]].text.starts_with(' '))
        else {
            return self;
        };
        let first_word = &text[..second_word];
        let (Some(end), Some(next)) = (
            self.tokens[text[second_word - 1]].end,
            self.tokens[text[second_word]].start,
        ) else {
            return self;
        };
        let shift = next - end;
        if shift <= max_gap {
            return self;
        }
        for &i in first_word {
            let token = &mut self.tokens[i];
            token.start = token.start.map(|t| t + shift);
            token.end = token.end.map(|t| t + shift);
        }
        if let Some(word) = self.words.first_mut() {
            word.start += shift;
            word.end += shift;
        }
        if let Some(moved) = self.tokens[first_word[0]].start {
            self.start = self.start.max(moved);
        }
        self
    }

    /// A segment with this one's index, scores and temperature, and nothing else.
    fn clone_meta(&self) -> Segment {
        Segment {
            index: self.index,
            avg_logprob: self.avg_logprob,
            no_speech_prob: self.no_speech_prob,
            temperature: self.temperature,
            ..Segment::default()
        }
    }
}

/// One decoded token.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Token {
    /// Vocabulary id.
    pub id: i32,
    /// Its text (lossy UTF-8: a token may hold part of a character).
    pub text: String,
    /// Probability.
    pub probability: f32,
    /// Log-probability.
    pub logprob: f32,
    /// Start in seconds, when token timestamps were asked for.
    pub start: Option<f64>,
    /// End in seconds, when token timestamps were asked for.
    pub end: Option<f64>,
    /// A special or timestamp token, not text.
    pub special: bool,
}

/// A word with its time span.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Word {
    /// The word, without surrounding spaces.
    pub text: String,
    /// Start in seconds.
    pub start: f64,
    /// End in seconds.
    pub end: f64,
    /// Mean probability of its tokens.
    pub probability: f32,
}

/// Groups a segment's text tokens into words: a token starting with a space
/// starts a new word. Times are clamped to the segment and kept monotonic.
/// Never panics, whatever the times (it runs inside whisper.cpp's callbacks): a
/// segment that ends before it starts is taken as ending where it starts.
pub(crate) fn words_of(tokens: &[Token], raw_texts: &[Vec<u8>], start: f64, end: f64) -> Vec<Word> {
    let end = end.max(start);
    struct Pending {
        bytes: Vec<u8>,
        start: f64,
        end: f64,
        probabilities: Vec<f32>,
    }
    let mut words = Vec::new();
    let mut current: Option<Pending> = None;
    let finish = |pending: Pending, words: &mut Vec<Word>| {
        let text = String::from_utf8_lossy(&pending.bytes).trim().to_owned();
        if text.is_empty() {
            return;
        }
        // max/min rather than clamp: clamp panics on NaN bounds.
        let previous_end = words.last().map_or(start, |w: &Word| w.end);
        let word_start = pending.start.max(previous_end).min(end);
        let word_end = pending.end.max(word_start).min(end);
        let probability =
            pending.probabilities.iter().sum::<f32>() / pending.probabilities.len() as f32;
        words.push(Word {
            text,
            start: word_start,
            end: word_end,
            probability,
        });
    };
    for (token, bytes) in tokens.iter().zip(raw_texts) {
        if token.special || bytes.is_empty() {
            continue;
        }
        let token_start = token.start.unwrap_or(start);
        let token_end = token.end.unwrap_or(token_start);
        let starts_word = bytes[0] == b' ';
        match current.as_mut() {
            Some(pending) if !starts_word => {
                pending.bytes.extend_from_slice(bytes);
                pending.end = pending.end.max(token_end);
                pending.probabilities.push(token.probability);
            }
            _ => {
                if let Some(pending) = current.take() {
                    finish(pending, &mut words);
                }
                current = Some(Pending {
                    bytes: bytes.clone(),
                    start: token_start,
                    end: token_end,
                    probabilities: vec![token.probability],
                });
            }
        }
    }
    if let Some(pending) = current {
        finish(pending, &mut words);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(text: &str, start: f64, end: f64) -> (Token, Vec<u8>) {
        (
            Token {
                text: text.into(),
                probability: 0.5,
                start: Some(start),
                end: Some(end),
                ..Token::default()
            },
            text.as_bytes().to_vec(),
        )
    }

    #[test]
    fn a_first_word_across_a_silence_moves_next_to_the_second() {
        let word = |text: &str, start: f64, end: f64| Word {
            text: text.into(),
            start,
            end,
            probability: 0.5,
        };
        let timestamp = Token {
            special: true,
            start: Some(23.91),
            end: Some(23.91),
            ..Token::default()
        };
        let segment = Segment {
            start: 23.91,
            end: 33.65,
            text: " Can you hear".into(),
            tokens: vec![
                timestamp,
                token(" Can", 23.91, 24.0).0,
                token(" you", 32.04, 32.17).0,
                token(" hear", 32.32, 32.65).0,
            ],
            words: vec![
                word("Can", 23.91, 24.0),
                word("you", 32.04, 32.17),
                word("hear", 32.32, 32.65),
            ],
            ..Segment::default()
        };
        let moved = segment.clone().close_leading_gap(1.0);
        assert!((moved.start - 31.95).abs() < 1e-9, "{}", moved.start);
        assert_eq!(moved.end, 33.65);
        let can = &moved.tokens[1];
        assert!((can.start.unwrap() - 31.95).abs() < 1e-9 && can.end == Some(32.04));
        assert!((moved.words[0].start - 31.95).abs() < 1e-9 && moved.words[0].end == 32.04);
        assert_eq!(moved.tokens[2..], segment.tokens[2..]);
        assert_eq!(moved.words[1..], segment.words[1..]);
        // A first word of two tokens moves as one.
        let mut split = segment.clone();
        split.text = " Can't you hear".into();
        split.tokens.insert(2, token("'t", 24.0, 24.1).0);
        split.words[0] = word("Can't", 23.91, 24.1);
        let moved = split.close_leading_gap(1.0);
        let times: Vec<_> = moved.tokens[1..3]
            .iter()
            .map(|t| (t.start, t.end))
            .collect();
        let near = |a: Option<f64>, b: f64| (a.unwrap() - b).abs() < 1e-9;
        assert!(
            near(times[0].0, 31.85) && near(times[0].1, 31.94),
            "{times:?}"
        );
        assert!(
            near(times[1].0, 31.94) && near(times[1].1, 32.04),
            "{times:?}"
        );
        assert!(
            (moved.words[0].start - 31.85).abs() < 1e-9
                && (moved.words[0].end - 32.04).abs() < 1e-9
        );
        assert!((moved.start - 31.85).abs() < 1e-9);
        // A pause within the limit, or no token times: unchanged.
        assert_eq!(segment.clone().close_leading_gap(10.0), segment);
        let untimed = Segment {
            tokens: vec![Token::default(), Token::default()],
            ..Segment::default()
        };
        assert_eq!(untimed.clone().close_leading_gap(1.0), untimed);
    }

    #[test]
    fn long_segments_split_at_sentence_ends_with_their_tokens_and_words() {
        let timestamp = |id| Token {
            id,
            special: true,
            ..Token::default()
        };
        let text = |text: &str, start: f64| token(text, start, start + 0.4).0;
        let word = |text: &str, start: f64| Word {
            text: text.into(),
            start,
            end: start + 0.4,
            probability: 0.5,
        };
        let segment = Segment {
            index: 3,
            start: 10.0,
            end: 19.0,
            text: " One two. Three? Four. Five".into(),
            tokens: vec![
                timestamp(50364),
                text(" One", 10.1),
                text(" two.", 12.0),
                text(" Three?", 14.2),
                text(" Four.", 14.8),
                text(" Five", 17.5),
                timestamp(50814),
            ],
            words: vec![
                word("One", 10.1),
                word("two.", 12.0),
                word("Three?", 14.2),
                word("Four.", 14.8),
                word("Five", 17.5),
            ],
            avg_logprob: -0.2,
            ..Segment::default()
        };
        let parts = segment.clone().split_at_sentences(1.0);
        // "Three?" lasts 0.6 s before "Four." starts: no cut there.
        let spans: Vec<_> = parts.iter().map(|p| (p.start, p.end)).collect();
        assert_eq!(spans, [(10.0, 14.2), (14.2, 17.5), (17.5, 19.0)]);
        let texts: Vec<_> = parts.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(texts, [" One two.", " Three? Four.", " Five"]);
        assert_eq!(parts[0].tokens.first(), Some(&timestamp(50364)));
        assert_eq!(parts[2].tokens.last(), Some(&timestamp(50814)));
        let words: Vec<usize> = parts.iter().map(|p| p.words.len()).collect();
        assert_eq!(words, [2, 2, 1]);
        assert!(parts.iter().all(|p| p.index == 3 && p.avg_logprob == -0.2));
        // Without token times, or with text the tokens do not spell, it stays whole.
        let mut untimed = segment.clone();
        untimed.tokens[2].start = None;
        assert_eq!(untimed.clone().split_at_sentences(1.0), [untimed]);
        let mut respelled = segment;
        respelled.text = " One two! Three? Four. Five".into();
        assert_eq!(respelled.clone().split_at_sentences(1.0), [respelled]);
    }

    #[test]
    fn tokens_join_into_words_with_clamped_monotonic_times() {
        let (tokens, raw): (Vec<_>, Vec<_>) = [
            token(" And", 0.0, 0.3),
            token(" so", 0.2, 0.5),
            token(" fell", 0.6, 0.8),
            token("ow", 0.8, 1.0),
            token(",", 1.0, 1.0),
            token(" Amer", 1.1, 9.0),
        ]
        .into_iter()
        .unzip();
        let words = words_of(&tokens, &raw, 0.0, 2.0);
        let texts: Vec<_> = words.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(texts, ["And", "so", "fellow,", "Amer"]);
        assert_eq!(
            words[1].start, 0.3,
            "start clamped to the previous word's end"
        );
        assert_eq!(words[3].end, 2.0, "end clamped to the segment");
        assert!(words.windows(2).all(|w| w[0].end <= w[1].start));
    }

    /// whisper.cpp's segment times come from C; a segment whose end precedes its
    /// start (or times that are not numbers) must not panic inside a callback.
    #[test]
    fn a_segment_ending_before_it_starts_gives_words_without_panicking() {
        let (tokens, raw): (Vec<_>, Vec<_>) = [
            token(" ask", 1.5, 1.7),
            token(" not", 1.0, 2.5),
            token(" what", f64::NAN, f64::NAN),
        ]
        .into_iter()
        .unzip();
        let words = words_of(&tokens, &raw, 2.0, 1.0);
        let texts: Vec<_> = words.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(texts, ["ask", "not", "what"]);
        for word in &words {
            assert_eq!((word.start, word.end), (2.0, 2.0), "{word:?}");
        }
        let nan_segment = words_of(&tokens, &raw, f64::NAN, f64::NAN);
        assert_eq!(nan_segment.len(), 3);
    }
}
