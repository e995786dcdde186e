//! How a job's audio becomes one transcript: cut into pieces of at most 30 s
//! (at the speech a voice-activity detector found, or at quiet moments), each
//! piece decoded under the fallback [`Guard`], its times mapped back onto the
//! recording, and the pieces stitched in order.
//!
//! On one decoding state the pieces run in order, each prompted with the text
//! before it (dropped after a piece that needed a temperature above 0.5). When
//! other workers are idle and no job waits, their states decode pieces too
//! (without the previous-text prompt, as faster-whisper's batched mode); a
//! borrowed state goes back as soon as a job is waiting.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use whisper_safe::guard::{Guard, Guarded};
use whisper_safe::pieces::{self, Piece, Span, MAX_PIECE_SAMPLES};
use whisper_safe::{CancelToken, Params, RunOptions, RunTimings, Segment, Transcript};

use super::model::Decoder;

/// How far before each 30 s limit a cut without VAD looks for a quiet moment.
const QUIET_SEARCH_SAMPLES: usize = 8 * whisper_safe::SAMPLE_RATE as usize;
/// A piece's text is prompted with at most this many tokens of the text
/// before it (whisper.cpp keeps half its 448-token context for the prompt).
const MAX_PROMPT_TOKENS: usize = 224;
/// A window decoded above this temperature does not prompt the next one
/// (faster-whisper's `prompt_reset_on_temperature`).
const PROMPT_RESET_TEMPERATURE: f32 = 0.5;

/// Cuts `region` of `audio` into pieces: the `speech` spans the VAD found in
/// it, joined up to 30 s, or (without VAD) the whole region cut at quiet
/// moments; audio of 30 s or less stays one piece.
pub(crate) fn plan(audio: &[f32], region: Span, speech: Option<&[Span]>) -> Vec<Piece> {
    let shift = |piece: Piece| {
        Piece::new(
            piece
                .spans()
                .iter()
                .map(|s| Span {
                    start: s.start + region.start,
                    end: s.end + region.start,
                })
                .collect(),
        )
    };
    match speech {
        Some(spans) => pieces::by_speech(spans, MAX_PIECE_SAMPLES)
            .into_iter()
            .map(shift)
            .collect(),
        None => pieces::by_quiet(
            &audio[region.start..region.end],
            MAX_PIECE_SAMPLES,
            QUIET_SEARCH_SAMPLES,
        )
        .into_iter()
        .map(shift)
        .collect(),
    }
}

/// Hands a lent state back (`None` when it must not be used again).
type GiveBack<'a> = Box<dyn FnOnce(Option<Box<dyn Decoder>>) + Send + 'a>;

/// A decoding state lent by an idle worker; given back when dropped (not
/// when dropped by a panic, or after a failure that poisoned it).
pub(crate) struct Borrowed<'a> {
    decoder: Option<Box<dyn Decoder>>,
    give_back: Option<GiveBack<'a>>,
}

impl<'a> Borrowed<'a> {
    /// `decoder`, handed to `give_back` when done with.
    pub(crate) fn new(
        decoder: Box<dyn Decoder>,
        give_back: impl FnOnce(Option<Box<dyn Decoder>>) + Send + 'a,
    ) -> Self {
        Self {
            decoder: Some(decoder),
            give_back: Some(Box::new(give_back)),
        }
    }
}

impl Drop for Borrowed<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.decoder = None;
        }
        if let Some(give_back) = self.give_back.take() {
            give_back(self.decoder.take());
        }
    }
}

/// Where extra decoding states come from.
pub(crate) trait Lender: Sync {
    /// An idle worker's state, if one is idle and no job waits.
    fn borrow(&self) -> Option<Borrowed<'_>>;
    /// Whether a job is waiting, so borrowed states should go back.
    fn wanted_back(&self) -> bool;
}

/// One job's decoding.
pub(crate) struct LongForm<'a> {
    /// All the job's samples (pieces index into them).
    pub audio: &'a [f32],
    /// The pieces, in order.
    pub pieces: Vec<Piece>,
    /// Parameters of every piece (temperature and prompt are set per attempt).
    pub params: Params,
    /// The fallback rule.
    pub guard: Guard,
    /// Prompt each piece with the text before it (sequential runs only).
    pub condition_on_previous_text: bool,
    /// Stops every piece.
    pub cancel: &'a CancelToken,
    /// Receives each segment, in order, as soon as its piece is stitched.
    pub on_segment: Option<&'a (dyn Fn(&Segment) + Sync)>,
    /// Receives the share of the audio done (0..=1).
    pub on_progress: Option<&'a (dyn Fn(f32) + Sync)>,
}

/// What the decoding of one job did.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct LongFormStats {
    /// Pieces decoded.
    pub pieces: usize,
    /// Decodes run (pieces + fallbacks).
    pub decodes: u32,
    /// Re-decodes at a higher temperature.
    pub fallbacks: u32,
    /// Pieces found to be silence.
    pub silent: usize,
    /// Pieces dropped because their text repeated the previous piece's.
    pub duplicates: usize,
    /// Segments dropped from a loop that every temperature repeated.
    pub looped_segments: usize,
    /// Decoding states that worked on the job.
    pub states: usize,
    /// Seconds of audio decoded (speech only, with VAD).
    pub decoded_seconds: f64,
    /// Encoder and decoder time over all decodes.
    pub timings: RunTimings,
}

impl<'a> LongForm<'a> {
    /// Decodes every piece on `decoder`, and on states from `lender` while
    /// it has them, and returns the stitched transcript.
    ///
    /// # Errors
    /// The first error of any piece; pieces not started yet are not run.
    pub(crate) fn run(
        &self,
        decoder: &mut dyn Decoder,
        lender: &dyn Lender,
    ) -> whisper_safe::Result<(Transcript, LongFormStats)> {
        let mut borrowed = Vec::new();
        while borrowed.len() + 1 < self.pieces.len() {
            match lender.borrow() {
                Some(state) => borrowed.push(state),
                None => break,
            }
        }
        let mut stitcher = Stitcher::new(self);
        stitcher.stats.states = borrowed.len() + 1;
        if borrowed.is_empty() {
            self.run_in_order(decoder, &mut stitcher)?;
        } else {
            self.run_spread(decoder, borrowed, lender, &mut stitcher)?;
        }
        Ok(stitcher.finish())
    }

    fn run_in_order(
        &self,
        decoder: &mut dyn Decoder,
        stitcher: &mut Stitcher<'a>,
    ) -> whisper_safe::Result<()> {
        let mut prompt: Vec<i32> = Vec::new();
        for (index, piece) in self.pieces.iter().enumerate() {
            let guarded = self.decode(decoder, index, &prompt, true)?;
            if self.condition_on_previous_text {
                if guarded.stats.temperature > PROMPT_RESET_TEMPERATURE {
                    prompt.clear();
                } else if !guarded.silence {
                    prompt.extend(guarded.transcript.prompt_token_ids());
                    let excess = prompt.len().saturating_sub(MAX_PROMPT_TOKENS);
                    prompt.drain(..excess);
                }
            }
            stitcher.add(index, piece, guarded);
        }
        Ok(())
    }

    fn run_spread(
        &self,
        decoder: &mut dyn Decoder,
        borrowed: Vec<Borrowed<'_>>,
        lender: &dyn Lender,
        stitcher: &mut Stitcher<'a>,
    ) -> whisper_safe::Result<()> {
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let first_error = Mutex::new(None);
        let shared = Mutex::new(std::mem::replace(stitcher, Stitcher::new(self)));
        let work = |decoder: &mut dyn Decoder, lent: bool| -> bool {
            loop {
                if failed.load(Ordering::SeqCst) || (lent && lender.wanted_back()) {
                    return true;
                }
                let index = next.fetch_add(1, Ordering::SeqCst);
                let Some(piece) = self.pieces.get(index) else {
                    return true;
                };
                match self.decode(decoder, index, &[], false) {
                    Ok(guarded) => lock(&shared).add(index, piece, guarded),
                    Err(error) => {
                        let healthy = !poisons(&error);
                        failed.store(true, Ordering::SeqCst);
                        lock(&first_error).get_or_insert(error);
                        return healthy;
                    }
                }
            }
        };
        let work = &work;
        std::thread::scope(|scope| {
            for mut state in borrowed {
                scope.spawn(move || {
                    if let Some(decoder) = state.decoder.as_mut() {
                        if !work(decoder.as_mut(), true) {
                            drop(state.decoder.take());
                        }
                    }
                });
            }
            work(decoder, false);
        });
        *stitcher = shared.into_inner().unwrap_or_else(|e| e.into_inner());
        match first_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Decodes piece `index` under the guard, prompted with `prompt`, with its
    /// times on the recording's timeline; reports progress inside the piece
    /// when `in_order` (pieces run one after another).
    fn decode(
        &self,
        decoder: &mut dyn Decoder,
        index: usize,
        prompt: &[i32],
        in_order: bool,
    ) -> whisper_safe::Result<Guarded> {
        let piece = &self.pieces[index];
        let mut samples = piece.samples(self.audio);
        if samples.len() < whisper_safe::MIN_SAMPLES {
            let mut padded = samples.into_owned();
            padded.resize(whisper_safe::MIN_SAMPLES, 0.0);
            samples = Cow::Owned(padded);
        }
        let mut params = self.params.clone();
        if index > 0 {
            params = params.initial_prompt(None);
        }
        if !prompt.is_empty() {
            params = params.prompt_tokens(prompt);
        }
        let done_before: usize = self.pieces[..index].iter().map(Piece::len).sum();
        let total: usize = self.pieces.iter().map(Piece::len).sum::<usize>().max(1);
        let piece_len = piece.len();
        let mut progress = |percent: u8| {
            if let Some(report) = self.on_progress.filter(|_| in_order) {
                let done = done_before as f32 + piece_len as f32 * f32::from(percent) / 100.0;
                report(done / total as f32);
            }
        };
        let mut guarded = self.guard.decode(&params, |attempt| {
            decoder.run(
                attempt,
                &samples,
                RunOptions {
                    cancel: Some(self.cancel),
                    on_progress: Some(&mut progress),
                    on_segment: None,
                },
            )
        })?;
        piece.map_times(&mut guarded.transcript);
        Ok(guarded)
    }
}

/// Whether `error` left the decoding state unusable.
pub(crate) fn poisons(error: &whisper_safe::Error) -> bool {
    matches!(
        error,
        whisper_safe::Error::Poisoned | whisper_safe::Error::Transcription { code: -7, .. }
    )
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Puts decoded pieces together in order, whatever order they finish in.
struct Stitcher<'a> {
    piece_lengths: Vec<usize>,
    audio_seconds: f64,
    loop_threshold: Option<f32>,
    on_segment: Option<&'a (dyn Fn(&Segment) + Sync)>,
    on_progress: Option<&'a (dyn Fn(f32) + Sync)>,
    waiting: BTreeMap<usize, Guarded>,
    next: usize,
    segments: Vec<Segment>,
    language: Option<String>,
    previous_text: String,
    stats: LongFormStats,
}

impl<'a> Stitcher<'a> {
    fn new(job: &LongForm<'a>) -> Self {
        Self {
            piece_lengths: job.pieces.iter().map(Piece::len).collect(),
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

    fn add(&mut self, index: usize, piece: &Piece, guarded: Guarded) {
        debug_assert_eq!(self.piece_lengths[index], piece.len());
        self.stats.pieces += 1;
        self.stats.decodes += guarded.decodes;
        self.stats.fallbacks += guarded.fallbacks();
        self.stats.decoded_seconds += piece.len() as f64 / f64::from(whisper_safe::SAMPLE_RATE);
        self.stats.timings.add(&guarded.transcript.timings);
        self.waiting.insert(index, guarded);
        while let Some(guarded) = self.waiting.remove(&self.next) {
            self.next += 1;
            self.emit(guarded);
        }
        if let Some(report) = self.on_progress {
            let total: usize = self.piece_lengths.iter().sum::<usize>().max(1);
            let done: usize = self.piece_lengths[..self.next].iter().sum();
            report(done as f32 / total as f32);
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
        for mut segment in guarded.transcript.segments {
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

    fn finish(self) -> (Transcript, LongFormStats) {
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

/// Lower-case words of letters and digits, one space apart.
fn normalize(text: &str) -> String {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use whisper_safe::{Token, Transcript};

    /// Answers every piece with one segment of two text tokens between two
    /// timestamp tokens, and keeps the prompt of each call.
    struct Recorder(std::sync::Arc<Mutex<Vec<Vec<i32>>>>);

    impl Decoder for Recorder {
        fn run(
            &mut self,
            params: &Params,
            samples: &[f32],
            _: RunOptions<'_>,
        ) -> whisper_safe::Result<Transcript> {
            lock(&self.0).push(params.prompt_token_list().to_vec());
            let token = |id, special| Token {
                id,
                special,
                logprob: -0.1,
                ..Token::default()
            };
            let call = lock(&self.0).len() as i32;
            Ok(Transcript {
                segments: vec![Segment {
                    start: 0.0,
                    end: samples.len() as f64 / 16_000.0,
                    text: format!(" piece number {call}"),
                    tokens: vec![
                        token(50364, true),
                        token(100 + call, false),
                        token(200 + call, false),
                        token(50414, true),
                    ],
                    ..Segment::default()
                }],
                ..Transcript::default()
            })
        }
    }

    struct NoLender;

    impl Lender for NoLender {
        fn borrow(&self) -> Option<Borrowed<'_>> {
            None
        }
        fn wanted_back(&self) -> bool {
            false
        }
    }

    #[test]
    fn each_piece_is_prompted_with_the_tokens_before_it_timestamps_included() {
        let audio = vec![0.1; 16_000 * 70];
        let pieces = plan(
            &audio,
            Span {
                start: 0,
                end: audio.len(),
            },
            None,
        );
        assert_eq!(pieces.len(), 3);
        let prompts = std::sync::Arc::new(Mutex::new(Vec::new()));
        let cancel = CancelToken::new();
        let job = LongForm {
            audio: &audio,
            pieces,
            params: Params::greedy(),
            guard: Guard::default(),
            condition_on_previous_text: true,
            cancel: &cancel,
            on_segment: None,
            on_progress: None,
        };
        let (transcript, stats) = job
            .run(&mut Recorder(std::sync::Arc::clone(&prompts)), &NoLender)
            .unwrap();
        let prompts = lock(&prompts).clone();
        assert_eq!(prompts[0], Vec::<i32>::new());
        assert_eq!(prompts[1], [50364, 101, 201, 50414]);
        assert_eq!(prompts[2], [50364, 101, 201, 50414, 50364, 102, 202, 50414]);
        assert_eq!(stats.pieces, 3);
        assert_eq!(stats.states, 1);
        let starts: Vec<f64> = transcript.segments.iter().map(|s| s.start).collect();
        assert_eq!(starts[0], 0.0);
        assert!(starts.windows(2).all(|w| w[0] < w[1]), "{starts:?}");
        let indexes: Vec<usize> = transcript.segments.iter().map(|s| s.index).collect();
        assert_eq!(indexes, [0, 1, 2]);
    }
}
