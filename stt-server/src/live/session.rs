//! One live session's logic, without I/O: the input buffer, turn detection,
//! the decodes a turn needs and the events their results become.
//!
//! - Audio is appended to a buffer at 16 kHz. With server VAD, Silero scores
//!   it as it arrives and [`TurnDetector`] finds where turns start and end;
//!   a turn becomes an item. Without it, everything between commits is one
//!   item.
//! - While an item grows, [`Session::next_decode`] asks for a partial decode
//!   of the item's audio so far whenever a step of new audio has arrived and
//!   no decode of this session is running (so the step grows with load), and
//!   at once when the speech pauses. Two consecutive partial results agree
//!   on a prefix of words ([`agreed_words`]); words beyond what was sent go
//!   out as a delta, so a delta is never taken back.
//! - When the turn ends, its item is committed. If a partial decode already
//!   covered all its speech and the file path's guard accepts it as it is
//!   (partial decodes are one greedy pass, without the guard's retries), that
//!   result is final; otherwise the whole item is decoded once more with the
//!   guard.
//!   `completed` carries the full text, which wins where it differs from the
//!   deltas.
//! - With server VAD, an item also ends inside a turn where a sentence ends:
//!   when the speech pauses for 200 ms and the latest partial result, covering
//!   the speech up to the pause, ends with `.`, `?` or `!` and the guard accepts
//!   it (after 5 s of speech, any such pause will do). That result becomes the item's final text at once, so a sentence is
//!   final about half a second after it was spoken, whatever the turn's
//!   silence duration; the speech after the pause is the next item (announced
//!   by `speech_started`). `speech_stopped` names the turn's last item.
//! - A turn longer than 25 s without such an end is cut at a pause (at 30 s
//!   wherever it is) and continues as the next item.
//! - Every decode is prompted with the session's prompt and keywords only.

use std::collections::VecDeque;
use std::time::Instant;

use whisper_safe::guard::{normalized_words, repeats, Guard, Verdict, WindowStats};
use whisper_safe::live::{agreed_words, SpeechProbabilities, TurnDetector, TurnEvent, TurnParams};
use whisper_safe::{Transcript, SAMPLE_RATE};

use super::input::InputAudio;
use super::metrics::LiveMetrics;
use super::protocol::{LogProb, ProtocolError, ServerEvent, SessionConfig};

const RATE: usize = SAMPLE_RATE as usize;
/// Least new audio between two partial decodes of an item.
const STEP_SAMPLES: usize = RATE * 3 / 10;
/// Shortest item audio worth a partial decode.
const MIN_PARTIAL_SAMPLES: usize = RATE / 2;
/// Shortest buffer a commit accepts (OpenAI's rule).
const MIN_COMMIT_SAMPLES: usize = RATE / 10;
/// Items this long end at a pause even without a sentence's punctuation.
const CLAUSE_ITEM_SAMPLES: usize = RATE * 5;
/// A pause this long after a sentence's final punctuation ends its item.
const SENTENCE_PAUSE_SAMPLES: usize = RATE / 5;
/// A decode reaching this far past a pause's speech end holds all of its
/// speech (Silero ends speech within a window or two of the last sound).
const COVER_SAMPLES: usize = RATE / 10;
/// Items shorter than this are not cut at sentence ends.
const MIN_SENTENCE_ITEM_SAMPLES: usize = RATE;
/// An item this long is cut at the next pause.
const CUT_AT_PAUSE_SAMPLES: usize = RATE * 25;
/// An item this long is cut wherever it is (whisper hears 30 s at most).
const FORCED_CUT_SAMPLES: usize = RATE * 30;
/// Audio kept before a turn while no turn is in progress: the prefix padding
/// and the VAD's lag (its batches and the speech it needs to start a turn).
const IDLE_KEEP_SAMPLES: usize = RATE * 3 / 2;

/// Limits of a session.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SessionLimits {
    /// Most samples the input buffer holds before a commit (manual mode).
    pub max_buffer_samples: usize,
}

/// Which decode a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeKind {
    /// Of a growing item: may be skipped when late.
    Partial,
    /// Of a committed item: its `completed` event.
    Final,
}

/// A decode the session needs.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeRequest {
    /// The item.
    pub item_id: String,
    /// Partial or final.
    pub kind: DecodeKind,
    /// The item's audio, 16 kHz.
    pub samples: Vec<f32>,
    /// The decoding prompt: the text before a cut, the session's prompt and keywords.
    pub prompt: Option<String>,
    /// Stream position of the end of `samples`.
    pub audio_end: usize,
    /// Whether its result may be the item's final text (a final decode, or a
    /// partial one up to a pause that may end the item): it goes before
    /// partial steps.
    pub urgent: bool,
}

/// A word of a decode, with what is reported about it.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedWord {
    /// As whisper wrote it (a leading space between words).
    pub text: String,
    /// Log-probabilities of its tokens.
    pub logprobs: Vec<LogProb>,
    /// End of its segment, seconds into the decoded audio.
    pub end: f64,
}

/// A decode's result, as the session uses it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Decoded {
    /// The words, in order.
    pub words: Vec<DecodedWord>,
    /// The whole text.
    pub text: String,
    /// Whether the file path's guard accepts it as it is (probable text, no
    /// repetition loop): only such results give deltas, and a partial one may
    /// serve as the final text.
    pub trusted: bool,
}

impl Decoded {
    /// The words of `transcript`: a text token with a leading space starts a
    /// word, special tokens are left out.
    pub fn of(transcript: &Transcript) -> Self {
        let mut words: Vec<DecodedWord> = Vec::new();
        for segment in &transcript.segments {
            for token in segment.tokens.iter().filter(|t| !t.special) {
                let starts_word = token.text.starts_with(' ') || words.is_empty();
                if starts_word {
                    words.push(DecodedWord {
                        text: String::new(),
                        logprobs: Vec::new(),
                        end: segment.end,
                    });
                }
                if let Some(word) = words.last_mut() {
                    word.text.push_str(&token.text);
                    word.logprobs.push(LogProb::of(&token.text, token.logprob));
                    word.end = segment.end;
                }
            }
        }
        words.retain(|w| !w.text.trim().is_empty());
        let stats = WindowStats::of(transcript, 0.0);
        let text = transcript.text();
        // Stricter than the file path: a phrase of two words or more said
        // three times (a short decode's loop never reaches the guard's four).
        let trusted = Guard::default().verdict(&stats) == Verdict::Accept
            && !repeats(&normalized_words(&text), 2, 3);
        Self {
            words,
            text,
            trusted,
        }
    }

    fn word_texts(&self) -> Vec<String> {
        self.words.iter().map(|w| w.text.clone()).collect()
    }
}

/// An item being spoken.
#[derive(Debug)]
struct Item {
    id: String,
    /// Stream position of its first sample.
    start: usize,
    /// Words already sent as deltas.
    sent: usize,
    /// The latest partial decode's words.
    hypothesis: Vec<String>,
    /// The latest partial result and the stream position its audio ended at.
    latest: Option<(usize, Decoded)>,
    /// Stream position of the end of the last partial decode asked for.
    stepped_to: usize,
    /// A pause that may end the item: (speech end, the pause's cut point).
    /// A decode of the item up to the cut point decides.
    pause: Option<(usize, usize)>,
    /// Speech end of the last pause considered.
    pause_seen: usize,
}

/// A committed item waiting for its final text.
#[derive(Debug)]
struct Ending {
    item: Item,
    samples: Vec<f32>,
    /// Stream position where its speech ended.
    speech_end: usize,
    /// Whether its final decode was asked for.
    decoding: bool,
}

/// The decode a session has running.
#[derive(Debug, Clone, PartialEq)]
struct InFlight {
    item_id: String,
    kind: DecodeKind,
    audio_end: usize,
}

/// A live transcription session's state.
pub struct Session {
    config: SessionConfig,
    input: InputAudio,
    limits: SessionLimits,
    metrics: LiveMetrics,
    /// Server VAD: the probabilities and the turns (with `config.turn_detection`).
    vad: Option<(Box<dyn SpeechProbabilities>, TurnDetector)>,
    /// Samples received since the session began.
    position: usize,
    /// Samples from `buffer_start` to `position`.
    buffer: Vec<f32>,
    buffer_start: usize,
    item: Option<Item>,
    endings: VecDeque<Ending>,
    in_flight: Option<InFlight>,
    previous_item: Option<String>,
    /// When each stretch of the stream arrived: (end position, instant).
    arrivals: VecDeque<(usize, Instant)>,
    next_item: u64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Session(at {} samples)", self.position)
    }
}

/// Opens a VAD for a session (the server's Silero model), when it has one.
pub type VadFactory<'a> = &'a dyn Fn() -> Option<Box<dyn SpeechProbabilities>>;

impl Session {
    /// A session with `config`.
    ///
    /// # Errors
    /// `invalid_value` when the format cannot be decoded, or server VAD is
    /// asked for and `open_vad` has none.
    pub fn new(
        config: SessionConfig,
        limits: SessionLimits,
        metrics: LiveMetrics,
        open_vad: VadFactory<'_>,
    ) -> Result<Self, ProtocolError> {
        let input = InputAudio::new(config.format)?;
        let mut session = Self {
            config: config.clone(),
            input,
            limits,
            metrics,
            vad: None,
            position: 0,
            buffer: Vec::new(),
            buffer_start: 0,
            item: None,
            endings: VecDeque::new(),
            in_flight: None,
            previous_item: None,
            arrivals: VecDeque::new(),
            next_item: 1,
        };
        session.configure(config, open_vad)?;
        Ok(session)
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Whether an item is waiting for its final text or being decoded.
    pub fn has_pending_work(&self) -> bool {
        !self.endings.is_empty() || self.in_flight.is_some()
    }

    /// Applies a new configuration. A changed format starts a new decoder
    /// (audio buffered so far stays); changed turn detection starts afresh.
    ///
    /// # Errors
    /// As [`Session::new`]; the session is then unchanged.
    pub fn configure(
        &mut self,
        config: SessionConfig,
        open_vad: VadFactory<'_>,
    ) -> Result<(), ProtocolError> {
        let input = if config.format == self.input.format() {
            None
        } else {
            Some(InputAudio::new(config.format)?)
        };
        let keep_vad = self.vad.is_some() && config.turn_detection == self.config.turn_detection;
        let vad = match config.turn_detection {
            Some(server_vad) if !keep_vad => {
                let vad = open_vad().ok_or_else(|| {
                    ProtocolError::invalid(
                        "session.audio.input.turn_detection",
                        "server_vad needs the VAD model, which this server has not loaded \
                         (stt-server models pull silero-vad); use null for manual commits",
                    )
                })?;
                let params = TurnParams {
                    threshold: server_vad.threshold,
                    prefix_padding_ms: server_vad.prefix_padding_ms,
                    silence_duration_ms: server_vad.silence_duration_ms,
                    ..TurnParams::default()
                };
                Some((vad, TurnDetector::starting_at(params, self.position)))
            }
            _ => None,
        };
        if let Some(input) = input {
            self.input = input;
        }
        if !keep_vad {
            self.vad = vad;
        }
        self.config = config;
        Ok(())
    }

    fn new_item(&mut self, start: usize) -> &mut Item {
        let id = format!("item_{:08x}{:06}", rand_u32(), self.next_item);
        self.next_item += 1;
        self.item.insert(Item {
            id,
            start: start.max(self.buffer_start),
            sent: 0,
            hypothesis: Vec::new(),
            latest: None,
            stepped_to: start,
            pause: None,
            pause_seen: 0,
        })
    }

    /// `input_audio_buffer.append`: decodes `audio` (base64), runs turn
    /// detection, and returns the events that follow.
    ///
    /// # Errors
    /// The append's [`ProtocolError`]; nothing is added then.
    pub fn append(&mut self, audio: &str, now: Instant) -> Result<Vec<ServerEvent>, ProtocolError> {
        let mut samples = Vec::new();
        self.input.decode(audio, &mut samples)?;
        if self.vad.is_none() && self.buffer.len() + samples.len() > self.limits.max_buffer_samples
        {
            return Err(ProtocolError::new(
                "input_audio_buffer_full",
                format!(
                    "the input buffer holds at most {} s of audio; commit or clear it",
                    self.limits.max_buffer_samples / RATE
                ),
            ));
        }
        self.metrics
            .audio_seconds
            .inc_by(samples.len() as f64 / RATE as f64);
        self.position += samples.len();
        self.buffer.extend_from_slice(&samples);
        self.arrivals.push_back((self.position, now));
        let mut events = Vec::new();
        match &mut self.vad {
            None => {
                if self.item.is_none() && !samples.is_empty() {
                    self.new_item(self.buffer_start);
                }
            }
            Some((vad, turns)) => {
                let probabilities = vad
                    .push(&samples)
                    .map_err(|e| ProtocolError::new("vad_failed", e.to_string()))?;
                for turn in turns.push(&probabilities) {
                    match turn {
                        TurnEvent::Started { start } => {
                            let item = self.new_item(start);
                            let (id, start) = (item.id.clone(), item.start);
                            events.push(ServerEvent::SpeechStarted {
                                audio_start_ms: ms(start),
                                item_id: id,
                            });
                        }
                        TurnEvent::Stopped { speech_end, end } => {
                            // The turn's last item: in progress, or ended at a sentence.
                            let last = self
                                .item
                                .as_ref()
                                .map(|i| &i.id)
                                .or(self.previous_item.as_ref());
                            if let Some(item_id) = last {
                                events.push(ServerEvent::SpeechStopped {
                                    audio_end_ms: ms(end),
                                    item_id: item_id.clone(),
                                });
                            }
                            events.extend(self.commit_item(speech_end, end));
                        }
                    }
                }
                events.extend(self.resume_after_sentence());
                events.extend(self.note_pause());
                events.extend(self.cut_long_item());
            }
        }
        if self.item.is_none() && self.vad.is_some() {
            self.trim_idle_buffer();
        }
        events.extend(self.finish_ready());
        Ok(events)
    }

    /// Starts the next item of a turn whose last item ended at a sentence,
    /// once its speech resumes.
    fn resume_after_sentence(&mut self) -> Vec<ServerEvent> {
        let resumed = self
            .vad
            .as_ref()
            .is_some_and(|(_, turns)| turns.in_turn() && turns.pause().is_none());
        if self.item.is_some() || !resumed {
            return Vec::new();
        }
        let item = self.new_item(self.buffer_start);
        vec![ServerEvent::SpeechStarted {
            audio_start_ms: ms(item.start),
            item_id: item.id.clone(),
        }]
    }

    /// Notes a pause of the item in progress long enough to end it. When the
    /// latest partial result already holds the speech before it, that result
    /// decides at once; otherwise the next decode covers the item up to the
    /// pause (see [`Session::cut_at_pause`]).
    fn note_pause(&mut self) -> Vec<ServerEvent> {
        let (Some((_, turns)), Some(item)) = (&self.vad, &mut self.item) else {
            return Vec::new();
        };
        let Some((silence, speech_end)) = turns.pause() else {
            return Vec::new();
        };
        if silence < SENTENCE_PAUSE_SAMPLES
            || speech_end <= item.pause_seen
            || speech_end < item.start + MIN_SENTENCE_ITEM_SAMPLES
        {
            return Vec::new();
        }
        item.pause_seen = speech_end;
        item.pause = Some((speech_end, speech_end + SENTENCE_PAUSE_SAMPLES));
        match item.latest.as_ref().map(|(end, _)| *end) {
            Some(decoded_to) => self.cut_at_pause(decoded_to),
            None => Vec::new(),
        }
    }

    /// A decode of the item up to `decoded_to` is done: when it holds the
    /// speech before the pause, it decides. The item ends at its pause when
    /// that result ends a sentence (or the item is long) and the guard accepts
    /// it: the result is the item's final text. The speech after the pause, if
    /// it has resumed, is the next item.
    fn cut_at_pause(&mut self, decoded_to: usize) -> Vec<ServerEvent> {
        let Some(item) = &mut self.item else {
            return Vec::new();
        };
        let Some((speech_end, cut)) = item.pause else {
            return Vec::new();
        };
        if decoded_to < speech_end + COVER_SAMPLES {
            return Vec::new();
        }
        item.pause = None;
        // The latest result, if the guard refused this one.
        let Some((_, decoded)) = item
            .latest
            .as_ref()
            .filter(|(end, _)| *end >= speech_end + COVER_SAMPLES)
        else {
            return Vec::new();
        };
        let min_length = if ends_with_sentence(&decoded.text) {
            MIN_SENTENCE_ITEM_SAMPLES
        } else {
            CLAUSE_ITEM_SAMPLES
        };
        if !decoded.trusted || decoded.words.is_empty() || speech_end < item.start + min_length {
            return Vec::new();
        }
        let mut events = self.commit_item(speech_end, cut);
        events.extend(self.finish_ready());
        events.extend(self.resume_after_sentence());
        events
    }

    /// Cuts the item in progress when it has grown too long for one window.
    fn cut_long_item(&mut self) -> Vec<ServerEvent> {
        let Some(item) = &self.item else {
            return Vec::new();
        };
        let length = self.position - item.start;
        let paused = self.vad.as_ref().is_some_and(|(_, turns)| turns.paused());
        if length < FORCED_CUT_SAMPLES && !(length >= CUT_AT_PAUSE_SAMPLES && paused) {
            return Vec::new();
        }
        self.metrics.forced_cuts.inc();
        let end = self.position;
        let mut events = self.commit_item(end, end);
        events.extend(self.finish_ready());
        let next = self.new_item(end);
        events.push(ServerEvent::SpeechStarted {
            audio_start_ms: ms(next.start),
            item_id: next.id.clone(),
        });
        events
    }

    fn trim_idle_buffer(&mut self) {
        if self.buffer.len() > IDLE_KEEP_SAMPLES * 2 {
            let drop = self.buffer.len() - IDLE_KEEP_SAMPLES;
            self.buffer.drain(..drop);
            self.buffer_start += drop;
        }
        self.prune_arrivals();
    }

    fn prune_arrivals(&mut self) {
        let needed = self
            .endings
            .front()
            .map_or(self.buffer_start, |e| e.item.start);
        while self.arrivals.len() > 1 && self.arrivals[1].0 <= needed {
            self.arrivals.pop_front();
        }
    }

    /// When the sample at stream position `at` arrived.
    fn arrival(&self, at: usize) -> Option<Instant> {
        self.arrivals
            .iter()
            .find(|(end, _)| *end >= at)
            .map(|(_, instant)| *instant)
    }

    /// Ends the item in progress at `end` (speech until `speech_end`).
    fn commit_item(&mut self, speech_end: usize, end: usize) -> Vec<ServerEvent> {
        let Some(item) = self.item.take() else {
            return Vec::new();
        };
        let from = item.start.saturating_sub(self.buffer_start);
        let to = end.saturating_sub(self.buffer_start).min(self.buffer.len());
        let samples = self.buffer[from.min(to)..to].to_vec();
        self.buffer.drain(..to);
        self.buffer_start += to;
        let event = ServerEvent::Committed {
            item_id: item.id.clone(),
            previous_item_id: self.previous_item.replace(item.id.clone()),
        };
        self.endings.push_back(Ending {
            item,
            samples,
            speech_end,
            decoding: false,
        });
        vec![event]
    }

    /// `input_audio_buffer.commit`.
    ///
    /// # Errors
    /// `input_audio_buffer_commit_empty` for less than 100 ms of audio.
    pub fn commit(&mut self) -> Result<Vec<ServerEvent>, ProtocolError> {
        let held = self.position - self.item.as_ref().map_or(self.buffer_start, |i| i.start);
        if held < MIN_COMMIT_SAMPLES {
            return Err(ProtocolError::new(
                "input_audio_buffer_commit_empty",
                format!(
                    "buffer too small: expected at least 100 ms of audio, but the buffer has {:.2} ms",
                    held as f64 * 1000.0 / RATE as f64
                ),
            ));
        }
        if self.item.is_none() {
            self.new_item(self.buffer_start);
        }
        if let Some((_, turns)) = &mut self.vad {
            turns.reset_turn();
        }
        let end = self.position;
        let mut events = self.commit_item(end, end);
        events.extend(self.finish_ready());
        Ok(events)
    }

    /// `input_audio_buffer.clear`: drops the buffer and the item in progress
    /// (committed items still get their text).
    pub fn clear(&mut self) -> Vec<ServerEvent> {
        self.item = None;
        self.buffer.clear();
        self.buffer_start = self.position;
        if let Some((_, turns)) = &mut self.vad {
            turns.reset_turn();
        }
        self.prune_arrivals();
        vec![ServerEvent::Cleared]
    }

    /// The prompt of a decode: the session's prompt and keywords. The text
    /// completed before is not used: prompted with it, whisper repeated it
    /// ("Ask what you can do. Ask what you can do. …" after "… can do for
    /// you"), as the file path found between VAD pieces.
    fn decoding_prompt(&self) -> Option<String> {
        self.config.decoding_prompt()
    }

    /// The next decode to run, if one is due and none is running.
    pub fn next_decode(&mut self) -> Option<DecodeRequest> {
        if self.in_flight.is_some() {
            return None;
        }
        let request = if let Some(ending) = self.endings.front() {
            DecodeRequest {
                item_id: ending.item.id.clone(),
                kind: DecodeKind::Final,
                samples: ending.samples.clone(),
                prompt: self.decoding_prompt(),
                audio_end: ending.item.start + ending.samples.len(),
                urgent: true,
            }
        } else {
            let item = self.item.as_ref()?;
            // Up to a pause that may end the item, else all the audio so far.
            let end = item
                .pause
                .map_or(self.position, |(_, cut)| cut.min(self.position));
            let length = end - item.start;
            let new_audio = end.saturating_sub(item.stepped_to);
            let paused = self.vad.as_ref().is_some_and(|(_, turns)| turns.paused());
            let due =
                item.pause.is_some() || new_audio >= STEP_SAMPLES || (paused && new_audio > 0);
            if !(MIN_PARTIAL_SAMPLES..=FORCED_CUT_SAMPLES).contains(&length) || !due {
                return None;
            }
            let from = item.start - self.buffer_start;
            DecodeRequest {
                item_id: item.id.clone(),
                kind: DecodeKind::Partial,
                samples: self.buffer[from..end - self.buffer_start].to_vec(),
                prompt: self.decoding_prompt(),
                audio_end: end,
                urgent: item.pause.is_some_and(|(_, cut)| cut == end),
            }
        };
        match request.kind {
            DecodeKind::Final => {
                if let Some(ending) = self.endings.front_mut() {
                    ending.decoding = true;
                }
            }
            DecodeKind::Partial => {
                if let Some(item) = &mut self.item {
                    item.stepped_to = item.stepped_to.max(request.audio_end);
                }
            }
        }
        self.in_flight = Some(InFlight {
            item_id: request.item_id.clone(),
            kind: request.kind,
            audio_end: request.audio_end,
        });
        Some(request)
    }

    /// A decode asked for by [`next_decode`](Self::next_decode) is done:
    /// `Ok` with its result, `Err` with why not (a skipped partial step is
    /// `Err(None)`). Returns the events that follow.
    pub fn decoded(
        &mut self,
        result: Result<Decoded, Option<String>>,
        now: Instant,
    ) -> Vec<ServerEvent> {
        let Some(done) = self.in_flight.take() else {
            return Vec::new();
        };
        let mut events = Vec::new();
        match (done.kind, result) {
            (DecodeKind::Partial, Ok(decoded)) => {
                events.extend(self.agree(&done, decoded, now));
                events.extend(self.cut_at_pause(done.audio_end));
            }
            (DecodeKind::Partial, Err(_)) => {}
            (DecodeKind::Final, result) => {
                if let Some(ending) = self.endings.pop_front() {
                    events.push(match result {
                        Ok(decoded) => self.completed(&ending, decoded, now),
                        Err(reason) => ServerEvent::Failed {
                            item_id: ending.item.id.clone(),
                            content_index: 0,
                            error: serde_json::json!({
                                "type": "server_error",
                                "code": "transcription_failed",
                                "message": reason.unwrap_or_else(|| "the decode was cancelled".into()),
                            }),
                        },
                    });
                }
            }
        }
        events.extend(self.finish_ready());
        events
    }

    /// Takes a partial result: sends the words it and the one before agree on.
    fn agree(&mut self, done: &InFlight, decoded: Decoded, now: Instant) -> Vec<ServerEvent> {
        let in_progress = self.item.as_mut().filter(|i| i.id == done.item_id);
        let item = match in_progress {
            Some(item) => item,
            None => match self.endings.iter_mut().find(|e| e.item.id == done.item_id) {
                Some(ending) => &mut ending.item,
                None => return Vec::new(), // cleared meanwhile
            },
        };
        if !decoded.trusted {
            // A looped or improbable decode neither gives words nor counts as
            // the hypothesis the next one must agree with.
            return Vec::new();
        }
        let words = decoded.word_texts();
        let agreed = agreed_words(&item.hypothesis, &words);
        let mut events = Vec::new();
        let mut word_ends: Vec<usize> = Vec::new();
        if agreed > item.sent {
            let new = &decoded.words[item.sent..agreed];
            let mut delta: String = new.iter().map(|w| w.text.as_str()).collect();
            if item.sent == 0 {
                delta = delta.trim_start().to_owned();
            }
            let logprobs = self
                .config
                .logprobs
                .then(|| new.iter().flat_map(|w| w.logprobs.clone()).collect());
            word_ends = new
                .iter()
                .map(|w| (item.start + (w.end * RATE as f64) as usize).min(done.audio_end))
                .collect();
            item.sent = agreed;
            events.push(ServerEvent::Delta {
                item_id: item.id.clone(),
                content_index: 0,
                delta,
                logprobs,
            });
        }
        item.hypothesis = words;
        item.latest = Some((done.audio_end, decoded));
        for at in word_ends {
            if let Some(arrived) = self.arrival(at) {
                self.metrics
                    .partial_latency
                    .observe(now.saturating_duration_since(arrived).as_secs_f64());
            }
        }
        events
    }

    /// Sends the final text of committed items whose speech a partial
    /// decode already covered, in order.
    fn finish_ready(&mut self) -> Vec<ServerEvent> {
        let mut events = Vec::new();
        while let Some(ending) = self.endings.front() {
            if ending.decoding {
                break;
            }
            let covered = ending
                .item
                .latest
                .as_ref()
                .is_some_and(|(end, decoded)| *end >= ending.speech_end && decoded.trusted);
            let running = self
                .in_flight
                .as_ref()
                .is_some_and(|f| f.item_id == ending.item.id);
            if !covered || running {
                break;
            }
            let Some(mut ending) = self.endings.pop_front() else {
                break;
            };
            let decoded = ending
                .item
                .latest
                .take()
                .map(|(_, d)| d)
                .unwrap_or_default();
            events.push(self.completed(&ending, decoded, Instant::now()));
        }
        events
    }

    fn completed(&mut self, ending: &Ending, decoded: Decoded, now: Instant) -> ServerEvent {
        if let Some(arrived) = self.arrival(ending.speech_end) {
            self.metrics
                .final_latency
                .observe(now.saturating_duration_since(arrived).as_secs_f64());
        }
        self.prune_arrivals();
        ServerEvent::Completed {
            item_id: ending.item.id.clone(),
            content_index: 0,
            transcript: decoded.text.clone(),
            usage: serde_json::json!({
                "type": "duration",
                "seconds": ending.samples.len() as f64 / RATE as f64,
            }),
            logprobs: self.config.logprobs.then(|| {
                decoded
                    .words
                    .iter()
                    .flat_map(|w| w.logprobs.clone())
                    .collect()
            }),
        }
    }
}

/// Whether `text` ends a sentence (closing quotes and brackets aside).
fn ends_with_sentence(text: &str) -> bool {
    text.trim_end()
        .trim_end_matches(['"', '\'', ')', ']', '»', '”', '’'])
        .ends_with(['.', '?', '!', '。', '？', '！'])
}

fn ms(samples: usize) -> u64 {
    (samples as u64 * 1000) / RATE as u64
}

/// A random number for ids (not a secret).
fn rand_u32() -> u32 {
    uuid::Uuid::new_v4().as_u128() as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::protocol::{AudioFormat, ServerVad};
    use base64::Engine as _;

    fn metrics() -> LiveMetrics {
        LiveMetrics::register(&prometheus::Registry::new()).unwrap()
    }

    fn manual_session() -> Session {
        let config = SessionConfig {
            format: AudioFormat::Pcm16 { rate: 16_000 },
            model: "whisper-1".into(),
            language: None,
            prompt: String::new(),
            keywords: vec![],
            turn_detection: None,
            noise_reduction: serde_json::Value::Null,
            logprobs: true,
        };
        let limits = SessionLimits {
            max_buffer_samples: RATE * 10,
        };
        Session::new(config, limits, metrics(), &|| None).unwrap()
    }

    fn pcm(seconds: f64) -> String {
        let n = (seconds * RATE as f64) as usize;
        base64::engine::general_purpose::STANDARD.encode(vec![0u8; n * 2])
    }

    fn decoded(text: &str) -> Decoded {
        Decoded {
            words: text
                .split(' ')
                .enumerate()
                .map(|(i, w)| DecodedWord {
                    text: if i == 0 {
                        w.to_owned()
                    } else {
                        format!(" {w}")
                    },
                    logprobs: vec![LogProb::of(w, -0.1)],
                    end: 0.5,
                })
                .collect(),
            text: text.to_owned(),
            trusted: true,
        }
    }

    #[test]
    fn deltas_are_the_words_two_decodes_agree_on_and_completed_wins() {
        let mut s = manual_session();
        let now = Instant::now();
        s.append(&pcm(0.6), now).unwrap();
        let first = s.next_decode().expect("a partial step is due");
        assert_eq!(first.kind, DecodeKind::Partial);
        assert!(s.next_decode().is_none(), "one decode at a time");
        assert!(s.decoded(Ok(decoded("And so my")), now).is_empty());
        s.append(&pcm(0.4), now).unwrap();
        let second = s.next_decode().unwrap();
        assert_eq!(second.samples.len(), RATE);
        let events = s.decoded(Ok(decoded("And so, my fellow")), now);
        assert!(
            matches!(&events[..], [ServerEvent::Delta { delta, logprobs: Some(lp), .. }]
                if delta == "And so, my" && lp.len() == 3),
            "{events:?}"
        );
        s.append(&pcm(0.4), now).unwrap();
        s.next_decode().unwrap();
        let events = s.decoded(Ok(decoded("And so, my fellow Americans")), now);
        assert!(matches!(&events[..], [ServerEvent::Delta { delta, .. }] if delta == " fellow"));
        // A commit with the latest decode covering the audio completes at once.
        let events = s.commit().unwrap();
        assert!(
            matches!(&events[..], [
                ServerEvent::Committed { previous_item_id: None, .. },
                ServerEvent::Completed { transcript, .. },
            ] if transcript == "And so, my fellow Americans"),
            "{events:?}"
        );
        assert!(s.next_decode().is_none());
        // More audio, then a commit before any decode covers it: a final decode.
        s.append(&pcm(0.3), now).unwrap();
        let events = s.commit().unwrap();
        assert!(matches!(
            &events[..],
            [ServerEvent::Committed {
                previous_item_id: Some(_),
                ..
            }]
        ));
        assert!(s.next_decode().is_some_and(|r| r.kind == DecodeKind::Final));
        let events = s.decoded(Ok(decoded("Ask not.")), now);
        assert!(
            matches!(&events[..], [ServerEvent::Completed { transcript, .. }]
            if transcript == "Ask not.")
        );
        assert!(!s.has_pending_work());
    }

    #[test]
    fn a_commit_waits_for_a_covering_result() {
        let mut s = manual_session();
        let now = Instant::now();
        s.append(&pcm(0.6), now).unwrap();
        s.next_decode().unwrap();
        // Committed while the partial step runs: it covers the whole buffer,
        // so its result becomes the final text.
        let events = s.commit().unwrap();
        assert_eq!(events.len(), 1);
        assert!(s.next_decode().is_none());
        let events = s.decoded(Ok(decoded("Hello there")), now);
        assert!(
            matches!(&events[..], [ServerEvent::Completed { transcript, .. }] if transcript == "Hello there")
        );
    }

    fn transcript(text: &str) -> Transcript {
        let tokens = text
            .split_inclusive(' ')
            .map(|t| whisper_safe::Token {
                text: format!(" {}", t.trim()),
                logprob: -0.1,
                probability: 0.9,
                ..Default::default()
            })
            .collect();
        Transcript {
            segments: vec![whisper_safe::Segment {
                end: 3.0,
                text: format!(" {text}"),
                tokens,
                avg_logprob: -0.1,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn decodes_become_words_and_a_looped_one_is_not_trusted() {
        let fine = Decoded::of(&transcript("Ask not what your country can do."));
        assert!(fine.trusted);
        assert_eq!(fine.words.len(), 7);
        assert_eq!(fine.words[0].text, " Ask");
        let looped = Decoded::of(&transcript(
            "Ask what you can do. Ask what you can do. Ask what you can do. Ask what",
        ));
        assert!(!looped.trusted);
        // An untrusted partial result gives no delta and is not agreed with.
        let mut s = manual_session();
        let now = Instant::now();
        s.append(&pcm(0.6), now).unwrap();
        s.next_decode().unwrap();
        assert!(s.decoded(Ok(looped.clone()), now).is_empty());
        s.append(&pcm(0.4), now).unwrap();
        s.next_decode().unwrap();
        assert!(s.decoded(Ok(looped), now).is_empty());
    }

    #[test]
    fn a_partial_result_the_guard_refuses_is_decoded_again() {
        let mut s = manual_session();
        let now = Instant::now();
        s.append(&pcm(0.6), now).unwrap();
        s.next_decode().unwrap();
        s.commit().unwrap();
        let looped = Decoded {
            trusted: false,
            ..decoded("the the the the")
        };
        assert!(s.decoded(Ok(looped), now).is_empty());
        let again = s.next_decode().unwrap();
        assert_eq!(again.kind, DecodeKind::Final);
        assert_eq!(again.samples.len(), RATE * 6 / 10);
    }

    #[test]
    fn bad_commits_and_full_buffers_are_errors_and_clear_drops_the_item() {
        let mut s = manual_session();
        let now = Instant::now();
        assert_eq!(
            s.commit().unwrap_err().code,
            "input_audio_buffer_commit_empty"
        );
        s.append(&pcm(0.05), now).unwrap();
        assert_eq!(
            s.commit().unwrap_err().code,
            "input_audio_buffer_commit_empty"
        );
        assert_eq!(
            s.append(&pcm(11.0), now).unwrap_err().code,
            "input_audio_buffer_full"
        );
        s.append(&pcm(1.0), now).unwrap();
        let step = s.next_decode().unwrap();
        assert_eq!(s.clear(), vec![ServerEvent::Cleared]);
        // The running step's result belongs to a cleared item: no event.
        assert!(s.decoded(Ok(decoded("gone")), now).is_empty());
        assert!(step.kind == DecodeKind::Partial);
        assert!(s.next_decode().is_none());
    }

    #[test]
    fn a_failed_final_is_reported_for_its_item() {
        let mut s = manual_session();
        let now = Instant::now();
        s.append(&pcm(0.3), now).unwrap();
        s.commit().unwrap();
        let request = s.next_decode().unwrap();
        assert_eq!(request.kind, DecodeKind::Final);
        let events = s.decoded(Err(Some("boom".into())), now);
        assert!(
            matches!(&events[..], [ServerEvent::Failed { item_id, .. }] if *item_id == request.item_id)
        );
    }

    /// Speech where a 512-sample window is loud: a stand-in for Silero.
    struct Loudness {
        pending: Vec<f32>,
    }

    impl SpeechProbabilities for Loudness {
        fn push(&mut self, samples: &[f32]) -> whisper_safe::Result<Vec<f32>> {
            self.pending.extend_from_slice(samples);
            let windows = self.pending.len() / 512;
            let probabilities = self.pending[..windows * 512]
                .chunks(512)
                .map(|w| {
                    if w.iter().map(|x| x.abs()).sum::<f32>() / 512.0 > 0.05 {
                        0.95
                    } else {
                        0.02
                    }
                })
                .collect();
            self.pending.drain(..windows * 512);
            Ok(probabilities)
        }
    }

    fn vad_session() -> Session {
        let mut config = manual_session().config().clone();
        config.turn_detection = Some(ServerVad::default());
        let limits = SessionLimits {
            max_buffer_samples: RATE * 10,
        };
        let open: VadFactory<'_> = &|| {
            Some(Box::new(Loudness {
                pending: Vec::new(),
            }))
        };
        Session::new(config, limits, metrics(), open).unwrap()
    }

    /// 16-bit PCM: `seconds` of a loud tone (speech) or of silence.
    fn sound(seconds: f64, loud: bool) -> Vec<u8> {
        let n = (seconds * RATE as f64) as usize;
        (0..n)
            .flat_map(|i| {
                let v = if loud {
                    ((i as f32 * 0.05).sin() * 9000.0) as i16
                } else {
                    0
                };
                v.to_le_bytes()
            })
            .collect()
    }

    /// A decode's answer in a test.
    type Answer<'a> = &'a mut dyn FnMut(&DecodeRequest) -> Decoded;

    /// Streams `pcm` in 100 ms appends; with `answer`, each due decode is
    /// answered by it (without, none runs). Returns every event.
    fn stream(s: &mut Session, pcm: &[u8], mut answer: Option<Answer<'_>>) -> Vec<ServerEvent> {
        let mut events = Vec::new();
        for chunk in pcm.chunks(3200) {
            let b64 = base64::engine::general_purpose::STANDARD.encode(chunk);
            events.extend(s.append(&b64, Instant::now()).unwrap());
            if let Some(answer) = answer.as_mut() {
                events.extend(decode_due(s, *answer));
            }
        }
        events
    }

    /// Runs the decodes due now, answered by `answer`; returns the events.
    fn decode_due(s: &mut Session, answer: Answer<'_>) -> Vec<ServerEvent> {
        let mut events = Vec::new();
        while let Some(request) = s.next_decode() {
            let decoded = answer(&request);
            events.extend(s.decoded(Ok(decoded), Instant::now()));
        }
        events
    }

    /// [`stream`] with each decode answered by `transcribe(seconds decoded)`.
    fn drive(s: &mut Session, pcm: &[u8], transcribe: &dyn Fn(f64) -> Decoded) -> Vec<ServerEvent> {
        let mut answer =
            |request: &DecodeRequest| transcribe(request.samples.len() as f64 / RATE as f64);
        stream(s, pcm, Some(&mut answer))
    }

    fn kinds(events: &[ServerEvent]) -> Vec<&'static str> {
        events
            .iter()
            .filter_map(|e| match e {
                ServerEvent::SpeechStarted { .. } => Some("started"),
                ServerEvent::SpeechStopped { .. } => Some("stopped"),
                ServerEvent::Committed { .. } => Some("committed"),
                ServerEvent::Completed { .. } => Some("completed"),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn server_vad_ends_an_item_at_a_sentence_pause_and_the_turn_after_the_silence() {
        let mut s = vad_session();
        let mut pcm = sound(0.5, false);
        pcm.extend(sound(1.8, true));
        pcm.extend(sound(0.35, false)); // a pause inside the turn
        pcm.extend(sound(3.0, true));
        pcm.extend(sound(1.0, false)); // ends the turn (500 ms)
                                       // Whole sentences once the decode holds more than 2 s of audio.
        let transcribe = |seconds: f64| {
            if seconds < 1.0 {
                decoded("First")
            } else if seconds < 2.6 {
                decoded("First sentence.")
            } else {
                decoded("Second one.")
            }
        };
        let events = drive(&mut s, &pcm, &transcribe);
        // Both sentences end at a pause: each item is final before the turn's
        // silence is over; speech_stopped then names the last one.
        assert_eq!(
            kinds(&events),
            [
                "started",
                "committed",
                "completed",
                "started",
                "committed",
                "completed",
                "stopped"
            ],
            "{events:?}"
        );
        let ids: Vec<&str> = events
            .iter()
            .filter_map(|e| match e {
                ServerEvent::Committed { item_id, .. }
                | ServerEvent::SpeechStopped { item_id, .. } => Some(item_id.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(ids[1], ids[2], "speech_stopped names the turn's last item");
        let texts: Vec<&str> = events
            .iter()
            .filter_map(|e| match e {
                ServerEvent::Completed { transcript, .. } => Some(transcript.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(texts, ["First sentence.", "Second one."]);
        // The first item's audio begins with the prefix padding before speech.
        let ServerEvent::SpeechStarted { audio_start_ms, .. } = &events[0] else {
            panic!("{events:?}")
        };
        assert!((150..=250).contains(audio_start_ms), "{audio_start_ms}");
        assert!(!s.has_pending_work());
    }

    #[test]
    fn decodes_that_may_end_an_item_are_urgent_and_partial_steps_are_not() {
        let mut s = vad_session();
        let mut speech = sound(0.5, false);
        speech.extend(sound(1.8, true));
        let mut requests = Vec::new();
        let mut answer = |request: &DecodeRequest| {
            requests.push((request.kind, request.urgent));
            decoded("and then")
        };
        stream(&mut s, &speech, Some(&mut answer));
        // A pause that may end the item, no decode running meanwhile: the
        // latest result does not hold the speech before it.
        stream(&mut s, &sound(0.35, false), None);
        decode_due(&mut s, &mut answer);
        stream(&mut s, &sound(1.0, true), None);
        s.commit().unwrap();
        let request = s.next_decode().expect("the committed item's final decode");
        requests.push((request.kind, request.urgent));
        let urgent: Vec<_> = requests.iter().filter(|(_, urgent)| *urgent).collect();
        assert_eq!(
            urgent,
            [&(DecodeKind::Partial, true), &(DecodeKind::Final, true)],
            "{requests:?}"
        );
        assert!(
            requests.len() > 4,
            "partial steps while speaking: {requests:?}"
        );
    }

    #[test]
    fn a_partial_result_that_holds_the_speech_ends_the_item_without_another_decode() {
        let mut s = vad_session();
        let mut pcm = sound(0.5, false);
        pcm.extend(sound(1.8, true));
        pcm.extend(sound(0.4, false)); // a pause inside the turn
        let mut urgent = 0;
        let mut answer = |request: &DecodeRequest| {
            urgent += usize::from(request.urgent);
            decoded("First sentence.")
        };
        let events = stream(&mut s, &pcm, Some(&mut answer));
        assert_eq!(
            kinds(&events),
            ["started", "committed", "completed"],
            "{events:?}"
        );
        assert_eq!(urgent, 0, "the partial step during the pause decided");
    }

    #[test]
    fn a_pause_without_a_sentence_end_does_not_cut_a_short_item() {
        let mut s = vad_session();
        let mut pcm = sound(0.3, false);
        pcm.extend(sound(2.0, true));
        pcm.extend(sound(0.35, false));
        pcm.extend(sound(1.5, true));
        pcm.extend(sound(1.0, false));
        let events = drive(&mut s, &pcm, &|_| decoded("and then we went"));
        assert_eq!(
            kinds(&events),
            ["started", "stopped", "committed", "completed"],
            "{events:?}"
        );
    }

    #[test]
    fn a_turn_without_pauses_is_cut_at_30_seconds() {
        let mut s = vad_session();
        let mut pcm = sound(0.3, false);
        pcm.extend(sound(33.0, true));
        pcm.extend(sound(1.0, false));
        let events = drive(&mut s, &pcm, &|_| decoded("on and on"));
        assert_eq!(
            kinds(&events),
            // The cut item's final decode runs after the next item began.
            [
                "started",
                "committed",
                "started",
                "completed",
                "stopped",
                "committed",
                "completed"
            ],
            "{events:?}"
        );
    }

    #[test]
    fn server_vad_without_a_model_is_refused() {
        let mut config = manual_session().config().clone();
        config.turn_detection = Some(ServerVad::default());
        let limits = SessionLimits {
            max_buffer_samples: RATE,
        };
        let error = Session::new(config, limits, metrics(), &|| None).unwrap_err();
        assert_eq!(
            error.param.as_deref(),
            Some("session.audio.input.turn_detection")
        );
    }
}
