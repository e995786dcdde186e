//! How a job's audio becomes one transcript: cut into pieces of at most 30 s
//! (at the speech a voice-activity detector found, or at quiet moments), each
//! piece decoded under the fallback [`Guard`], its times mapped back onto the
//! recording, and the pieces stitched in order.
//!
//! Pieces are decoded in lanes, one decoding state each: a worker with more
//! threads than [`LongForm::threads_per_piece`] decodes that many pieces at
//! once on spare states, and idle workers join in while no job waits (a lent
//! state goes back as soon as one does). Each lane works through a run of
//! consecutive pieces, each prompted with the text before it when
//! [`LongForm::condition_on_previous_text`] is set (dropped after a piece that
//! needed a temperature above 0.5); a lane done early takes the
//! back half of the longest run left ([`Runs`]). A lane with no piece left
//! leaves its threads to the lanes of its worker still decoding, from their next
//! attempt on ([`Threads`]). The stitcher puts the pieces back in order.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;

use whisper_safe::guard::{normalized_words, Guard, Guarded};
use whisper_safe::pieces::{self, Piece, Span, MAX_PIECE_SAMPLES};
use whisper_safe::{CancelToken, Params, RunOptions, RunTimings, Segment, Transcript};

use super::model::Decoder;

/// How far before each 30 s limit a cut looks for a quiet moment.
const QUIET_SEARCH_SAMPLES: usize = 8 * whisper_safe::SAMPLE_RATE as usize;
/// A piece's text is prompted with at most this many tokens of the text
/// before it (whisper.cpp keeps half its 448-token context for the prompt).
const MAX_PROMPT_TOKENS: usize = 224;
/// A window decoded above this temperature does not prompt the next one
/// (faster-whisper's `prompt_reset_on_temperature`).
const PROMPT_RESET_TEMPERATURE: f32 = 0.5;
/// A piece whose decode ended at least this long before the piece does has
/// its rest decoded again.
const REMAINDER_MIN_SECONDS: f64 = 2.0;
/// At most this many rests are decoded per piece.
const MAX_REMAINDERS: u32 = 3;
/// Segments are cut at sentence ends where both sides last at least this long.
const MIN_SENTENCE_SECONDS: f64 = 1.0;
/// A segment's first word this far before its second is moved next to it
/// (whisper times a sentence's first token right after the previous one, even
/// across a silence the VAD left out, at least 1.2 s with its padding).
const MAX_LEADING_GAP_SECONDS: f64 = 1.0;

/// Cuts `region` of `audio` into pieces: the `speech` spans the VAD found in
/// it, joined up to 30 s, or (without VAD) the whole region; longer stretches
/// are cut at quiet moments. Audio of 30 s or less stays one piece.
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
    let region_audio = &audio[region.start..region.end];
    match speech {
        Some(spans) => {
            pieces::by_speech(region_audio, spans, MAX_PIECE_SAMPLES, QUIET_SEARCH_SAMPLES)
        }
        None => pieces::by_quiet(region_audio, MAX_PIECE_SAMPLES, QUIET_SEARCH_SAMPLES),
    }
    .into_iter()
    .map(shift)
    .collect()
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

impl Borrowed<'_> {
    /// Runs `work` on the state, and drops the state when `work` says a
    /// failure left it unusable.
    fn work(&mut self, work: impl FnOnce(&mut dyn Decoder) -> bool) {
        if let Some(decoder) = self.decoder.as_mut() {
            if !work(decoder.as_mut()) {
                self.decoder = None;
            }
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
    /// One more state of the job's model, for a worker's spare threads.
    fn spare(&self) -> Option<Borrowed<'_>>;
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
    /// Prompt each piece with the text before it (when the same state
    /// decoded that text).
    pub condition_on_previous_text: bool,
    /// Threads each piece runs with when a worker's threads decode several
    /// pieces at once (one state each).
    pub threads_per_piece: u32,
    /// Every piece is speech (cut by voice-activity detection), so a decode
    /// that ends early or says nothing has skipped words.
    pub speech_only: bool,
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
    /// Windows decoded again after whisper.cpp ended a piece early or
    /// answered it with nothing.
    pub remainders: u32,
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
    /// Decodes every piece on `decoder`, on spare states for the worker's
    /// other threads, and on idle workers' states from `lender` while it has
    /// them, and returns the stitched transcript.
    ///
    /// When no language was asked for, the first piece is decoded alone and
    /// the language found in it is kept for the others (whisper.cpp would run
    /// the encoder once more per piece to detect it again).
    ///
    /// # Errors
    /// The first error of any piece; pieces not started yet are not run.
    pub(crate) fn run(
        &self,
        decoder: &mut dyn Decoder,
        lender: &dyn Lender,
    ) -> whisper_safe::Result<(Transcript, LongFormStats)> {
        let mut stitcher = Stitcher::new(self);
        if self.pieces.is_empty() {
            return Ok(stitcher.finish());
        }
        let mut params = self.params.clone();
        let mut prompt = Vec::new();
        let mut start = 0;
        if self.params.requested_language().is_none() {
            let first = self.decode(decoder, &params, 0, &[], true)?;
            if let Some(found) = first.guarded.transcript.language.as_deref() {
                params = params.language(Some(found));
            }
            self.carry_prompt(&mut prompt, &first);
            stitcher.add(0, &self.pieces[0], first);
            start = 1;
        }
        let (mut own_spares, crews) = self.gather(self.pieces.len() - start, lender);
        let lanes = 1 + own_spares.len() + crews.iter().map(|c| 1 + c.1.len()).sum::<usize>();
        stitcher.stats.states = lanes;
        let team = Team {
            job: self,
            params: &params,
            lender,
            runs: Runs::new(start..self.pieces.len(), lanes),
            in_order: lanes == 1,
            stitcher: Mutex::new(stitcher),
            failed: AtomicBool::new(false),
            first_error: Mutex::new(None),
        };
        std::thread::scope(|scope| {
            let mut first_lane = 1 + own_spares.len();
            for (mut state, mut spares) in crews {
                let lanes = first_lane..first_lane + 1 + spares.len();
                first_lane = lanes.end;
                let team = &team;
                scope.spawn(move || {
                    // The worker's turn goes back (with `state`) only once
                    // every lane of its crew is done.
                    team.crew(lanes, Lead::Lent(&mut state), &mut spares);
                });
            }
            team.crew(
                0..1 + own_spares.len(),
                Lead::Own {
                    decoder,
                    prompt,
                    last: start.checked_sub(1),
                },
                &mut own_spares,
            );
        });
        let stitcher = team
            .stitcher
            .into_inner()
            .unwrap_or_else(|e| e.into_inner());
        match team
            .first_error
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
        {
            Some(error) => Err(error),
            None => Ok(stitcher.finish()),
        }
    }

    /// States for `pieces` pieces: spare states for the job's own worker's
    /// other lanes, and idle workers' states, each with its spares, while
    /// there are pieces for them.
    fn gather<'l>(
        &self,
        pieces: usize,
        lender: &'l dyn Lender,
    ) -> (Vec<Borrowed<'l>>, Vec<Crew<'l>>) {
        let per_state = self.lanes_per_state();
        let mut left = pieces.saturating_sub(1);
        let spares = |wanted: usize, left: &mut usize| {
            let mut taken = Vec::new();
            while taken.len() < wanted && *left > 0 {
                let Some(spare) = lender.spare() else { break };
                taken.push(spare);
                *left -= 1;
            }
            taken
        };
        let own = spares(per_state - 1, &mut left);
        let mut crews = Vec::new();
        while left > 0 {
            let Some(state) = lender.borrow() else { break };
            left -= 1;
            crews.push((state, spares(per_state - 1, &mut left)));
        }
        (own, crews)
    }

    /// How many pieces one worker decodes at once: its threads ÷ threads per piece.
    fn lanes_per_state(&self) -> usize {
        let threads = self.params.thread_count().unwrap_or(1);
        (threads / self.threads_per_piece.max(1)).max(1) as usize
    }

    /// Adds what `decoded` said to the previous-text `prompt`, or clears it
    /// after a piece that needed a high temperature.
    fn carry_prompt(&self, prompt: &mut Vec<i32>, decoded: &Decoded) {
        if !self.condition_on_previous_text {
            return;
        }
        let guarded = &decoded.guarded;
        if guarded.stats.temperature > PROMPT_RESET_TEMPERATURE {
            prompt.clear();
        } else if !guarded.silence {
            prompt.extend(guarded.transcript.prompt_token_ids());
            keep_last(prompt, MAX_PROMPT_TOKENS);
        }
    }

    /// Decodes piece `index` prompted with `prompt`, with its times on the
    /// recording's timeline.
    ///
    /// whisper.cpp ends a window early when the model closes its last
    /// segment with a single timestamp (taken as "no speech after this"), and
    /// a prompt can make the model answer a piece with nothing at all. When
    /// the pieces are [`speech_only`](Self::speech_only), neither can be
    /// right: an empty answer is decoded once more without the prompt, and
    /// the rest after the last segment (when at least
    /// [`REMAINDER_MIN_SECONDS`]) is decoded again, prompted with what came
    /// before it.
    ///
    /// The request's text prompt goes to the first piece and, when the pieces
    /// are not prompted with each other's text, to every piece (as
    /// faster-whisper's batched pipeline gives it to every chunk): spelling
    /// and vocabulary hold for the whole recording.
    fn decode(
        &self,
        decoder: &mut dyn Decoder,
        params: &Params,
        index: usize,
        prompt: &[i32],
        in_order: bool,
    ) -> whisper_safe::Result<Decoded> {
        let piece = &self.pieces[index];
        let done_before: usize = self.pieces[..index].iter().map(Piece::len).sum();
        let text_prompt = (index == 0 || !self.condition_on_previous_text)
            && params.initial_prompt_text().is_some();
        let mut window = |part: &Piece, prompt: &[i32], text_prompt: bool| {
            let skipped = piece.len() - part.len();
            self.decode_window(
                decoder,
                params,
                part,
                prompt,
                text_prompt && skipped == 0,
                in_order.then_some(done_before + skipped),
            )
        };
        let mut guarded = window(piece, prompt, text_prompt)?;
        let mut decoded = Decoded::default();
        if self.speech_only && !guarded.stats.has_text && (text_prompt || !prompt.is_empty()) {
            decoded.unprompted_retries += 1;
            guarded = window(piece, &[], false)?;
        }
        let mut rest = piece.tail(samples_of(
            guarded.transcript.segments.last().map_or(0.0, |s| s.end),
        ));
        piece.map_times(&mut guarded.transcript);
        decoded.fallbacks += guarded.fallbacks();
        let mut all = guarded;
        while self.speech_only
            && !all.silence
            && decoded.remainders < MAX_REMAINDERS
            && rest.len() >= samples_of(REMAINDER_MIN_SECONDS)
        {
            let mut rest_prompt = prompt.to_vec();
            rest_prompt.extend(all.transcript.prompt_token_ids());
            keep_last(&mut rest_prompt, MAX_PROMPT_TOKENS);
            let mut tail = window(&rest, &rest_prompt, false)?;
            decoded.remainders += 1;
            decoded.fallbacks += tail.fallbacks();
            let Some(end) = tail.transcript.segments.last().map(|s| s.end) else {
                break;
            };
            if tail.silence {
                break;
            }
            let next = rest.tail(samples_of(end));
            rest.map_times(&mut tail.transcript);
            merge(&mut all, tail);
            rest = next;
        }
        log::debug!(
            "piece {index} ({:.2}-{:.2} s, {:.1} s of audio): temperature {}, compression {:.2}, \
             log-prob {:.2}, no-speech {:.2}, silence {}, {} window(s), {} fallback(s), \
             {} rest(s) decoded, {} retried without prompt, {} segment(s) ending at {:.2} s",
            piece.start_seconds(),
            piece.end_seconds(),
            seconds_of(piece.len()),
            all.stats.temperature,
            all.stats.compression_ratio,
            all.stats.avg_logprob,
            all.stats.no_speech_prob,
            all.silence,
            all.transcript.timings.windows,
            decoded.fallbacks,
            decoded.remainders,
            decoded.unprompted_retries,
            all.transcript.segments.len(),
            all.transcript.segments.last().map_or(0.0, |s| s.end),
        );
        decoded.guarded = all;
        Ok(decoded)
    }

    /// Decodes `part` once under the guard, with its times still its own;
    /// the request's text prompt is kept only when `initial_prompt` is set;
    /// reports progress when `done_before` (samples of the job before it) is
    /// given.
    fn decode_window(
        &self,
        decoder: &mut dyn Decoder,
        params: &Params,
        part: &Piece,
        prompt: &[i32],
        initial_prompt: bool,
        done_before: Option<usize>,
    ) -> whisper_safe::Result<Guarded> {
        let mut samples = part.samples(self.audio);
        if samples.len() < whisper_safe::MIN_SAMPLES {
            let mut padded = samples.into_owned();
            padded.resize(whisper_safe::MIN_SAMPLES, 0.0);
            samples = Cow::Owned(padded);
        }
        // Token times let segments be cut at sentence ends (Stitcher::emit).
        let mut params = params.clone().token_timestamps(true);
        if !initial_prompt {
            params = params.initial_prompt(None);
        }
        if !prompt.is_empty() {
            params = params.prompt_tokens(prompt);
        }
        let total: usize = self.pieces.iter().map(Piece::len).sum::<usize>().max(1);
        let part_len = part.len();
        let mut progress = |percent: u8| {
            if let (Some(report), Some(done_before)) = (self.on_progress, done_before) {
                let done = done_before as f32 + part_len as f32 * f32::from(percent) / 100.0;
                report(done / total as f32);
            }
        };
        self.guard.decode(&params, |attempt| {
            decoder.run(
                attempt,
                &samples,
                RunOptions {
                    cancel: Some(self.cancel),
                    on_progress: Some(&mut progress),
                    on_segment: None,
                },
            )
        })
    }
}

/// An idle worker's state, and spare states for its other threads.
type Crew<'l> = (Borrowed<'l>, Vec<Borrowed<'l>>);

/// The first lane of a worker's crew.
enum Lead<'d, 'l> {
    /// The job's own state, going on from the piece decoded `last` (with
    /// its `prompt`).
    Own {
        decoder: &'d mut dyn Decoder,
        prompt: Vec<i32>,
        last: Option<usize>,
    },
    /// An idle worker's state; the lanes of its crew stop when a job waits.
    Lent(&'d mut Borrowed<'l>),
}

/// The lanes (a decoding state each) of one job, and what they share.
struct Team<'j, 'a> {
    job: &'j LongForm<'a>,
    params: &'j Params,
    lender: &'j dyn Lender,
    runs: Runs,
    /// One lane only: progress is reported within each piece.
    in_order: bool,
    stitcher: Mutex<Stitcher<'a>>,
    failed: AtomicBool,
    first_error: Mutex<Option<whisper_safe::Error>>,
}

impl Team<'_, '_> {
    /// Runs one worker's `lanes`: `lead` on this thread and each of
    /// `spares` on a thread of its own, the worker's threads split between
    /// them. A spare or lent state that a failure left unusable is dropped.
    fn crew(&self, lanes: Range<usize>, lead: Lead<'_, '_>, spares: &mut [Borrowed<'_>]) {
        let threads = self.params.thread_count().unwrap_or(1);
        let n = lanes.len() as u32;
        let share = |i: usize| (threads / n + u32::from((i as u32) < threads % n)).max(1);
        let pool = Threads::new(n);
        let lent = matches!(lead, Lead::Lent(_));
        std::thread::scope(|scope| {
            for (i, spare) in spares.iter_mut().enumerate() {
                let lane = lanes.start + 1 + i;
                let pool = &pool;
                scope.spawn(move || {
                    spare.work(|decoder| {
                        self.lane(lane, decoder, (share(1 + i), pool), lent, Vec::new(), None)
                    });
                });
            }
            let own = (share(0), &pool);
            match lead {
                Lead::Own {
                    decoder,
                    prompt,
                    last,
                } => {
                    // The job's own state goes back (or not) in `worker`.
                    self.lane(lanes.start, decoder, own, lent, prompt, last);
                }
                Lead::Lent(state) => state
                    .work(|decoder| self.lane(lanes.start, decoder, own, lent, Vec::new(), None)),
            }
        });
    }

    /// Decodes pieces of `lane`'s runs on `decoder` with its `share` of the
    /// crew's threads (more once other lanes of `pool` are done), each
    /// prompted with the text before it when this lane decoded that (`last`,
    /// `prompt`), until no piece is left, a piece fails, or (when `lent`) a
    /// job waits. Returns whether the state is still usable.
    fn lane(
        &self,
        lane: usize,
        decoder: &mut dyn Decoder,
        (share, pool): (u32, &Threads),
        lent: bool,
        mut prompt: Vec<i32>,
        mut last: Option<usize>,
    ) -> bool {
        let decoder = &mut LaneDecoder {
            decoder,
            threads: pool.lane(share),
        };
        loop {
            if self.failed.load(Ordering::SeqCst) {
                return true;
            }
            if lent && self.lender.wanted_back() {
                self.runs.stop(lane);
                return true;
            }
            let Some(index) = self.runs.next(lane) else {
                return true;
            };
            if last.map(|l| l + 1) != Some(index) {
                prompt.clear();
            }
            match self
                .job
                .decode(decoder, self.params, index, &prompt, self.in_order)
            {
                Ok(decoded) => {
                    self.job.carry_prompt(&mut prompt, &decoded);
                    lock(&self.stitcher).add(index, &self.job.pieces[index], decoded);
                    last = Some(index);
                }
                Err(error) => {
                    self.failed.store(true, Ordering::SeqCst);
                    let healthy = !poisons(&error);
                    lock(&self.first_error).get_or_insert(error);
                    return healthy;
                }
            }
        }
    }
}

/// The threads of one worker's crew. A lane with no piece left leaves its
/// threads to the lanes still decoding, which take an even share of them from
/// their next attempt on (a temperature fallback, the rest of a piece, the next
/// piece): at the end of a job one lane often decodes its last piece alone.
struct Threads {
    /// Threads of the lanes that are done.
    idle: AtomicU32,
    /// Lanes still decoding.
    working: AtomicU32,
}

impl Threads {
    fn new(lanes: u32) -> Self {
        Self {
            idle: AtomicU32::new(0),
            working: AtomicU32::new(lanes),
        }
    }

    /// Threads for the next attempt of a lane whose own share is `share`.
    fn for_attempt(&self, share: u32) -> u32 {
        let working = self.working.load(Ordering::SeqCst).max(1);
        share + self.idle.load(Ordering::SeqCst) / working
    }

    /// A lane with `share` threads: it leaves them to the others when dropped.
    fn lane(&self, share: u32) -> LaneThreads<'_> {
        LaneThreads { pool: self, share }
    }
}

/// One lane's place in [`Threads`].
struct LaneThreads<'p> {
    pool: &'p Threads,
    share: u32,
}

impl Drop for LaneThreads<'_> {
    fn drop(&mut self) {
        self.pool.idle.fetch_add(self.share, Ordering::SeqCst);
        self.pool.working.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A lane's decoder: every run takes the lane's threads at that moment.
struct LaneDecoder<'d, 'p> {
    decoder: &'d mut dyn Decoder,
    threads: LaneThreads<'p>,
}

impl Decoder for LaneDecoder<'_, '_> {
    fn run(
        &mut self,
        params: &Params,
        samples: &[f32],
        options: RunOptions<'_>,
    ) -> whisper_safe::Result<Transcript> {
        let threads = self.threads.pool.for_attempt(self.threads.share);
        self.decoder
            .run(&params.clone().threads(threads), samples, options)
    }
}

/// Which piece each lane decodes next. Every lane works through a run of
/// consecutive pieces, so each piece but a run's first is prompted with the
/// text before it. All pieces start as lane 0's run; a lane with nothing
/// left takes over the run of a lane that stopped, else the back half of the
/// longest run (all of it when one piece is left).
struct Runs(Mutex<Vec<Run>>);

#[derive(Clone, Copy, Debug, PartialEq)]
struct Run {
    next: usize,
    end: usize,
    stopped: bool,
}

impl Runs {
    fn new(pieces: Range<usize>, lanes: usize) -> Self {
        let empty = Run {
            next: pieces.end,
            end: pieces.end,
            stopped: false,
        };
        let mut runs = vec![empty; lanes.max(1)];
        runs[0].next = pieces.start;
        Self(Mutex::new(runs))
    }

    /// The next piece for `lane`, if any is left.
    fn next(&self, lane: usize) -> Option<usize> {
        let mut runs = lock(&self.0);
        if runs[lane].next == runs[lane].end {
            let (donor, run) = runs
                .iter()
                .copied()
                .enumerate()
                .filter(|(_, r)| r.next < r.end)
                .max_by_key(|(_, r)| (r.stopped, r.end - r.next))?;
            let from = if run.stopped {
                run.next
            } else {
                run.next + (run.end - run.next) / 2
            };
            runs[donor].end = from;
            runs[lane] = Run {
                next: from,
                end: run.end,
                stopped: false,
            };
        }
        let run = &mut runs[lane];
        run.next += 1;
        Some(run.next - 1)
    }

    /// `lane` decodes no more; its pieces left go to the others.
    fn stop(&self, lane: usize) {
        lock(&self.0)[lane].stopped = true;
    }
}

/// A decoded piece: its windows merged, and what it took.
#[derive(Clone, Debug, Default)]
struct Decoded {
    guarded: Guarded,
    /// Re-decodes at a higher temperature, over all its windows.
    fallbacks: u32,
    /// Windows decoded for the rest after an early end.
    remainders: u32,
    /// Times an empty answer was decoded again without the prompt.
    unprompted_retries: u32,
}

/// Appends `tail` (the rest of the same piece, decoded after `all`) to `all`.
fn merge(all: &mut Guarded, tail: Guarded) {
    all.decodes += tail.decodes;
    all.stats.temperature = all.stats.temperature.max(tail.stats.temperature);
    all.stats.compression_ratio = all
        .stats
        .compression_ratio
        .max(tail.stats.compression_ratio);
    all.stats.avg_logprob = all.stats.avg_logprob.min(tail.stats.avg_logprob);
    all.stats.has_text |= tail.stats.has_text;
    all.transcript.timings.add(&tail.transcript.timings);
    all.transcript.segments.extend(tail.transcript.segments);
}

/// Keeps the last `n` entries of `tokens`.
fn keep_last(tokens: &mut Vec<i32>, n: usize) {
    let excess = tokens.len().saturating_sub(n);
    tokens.drain(..excess);
}

fn samples_of(seconds: f64) -> usize {
    (seconds.max(0.0) * f64::from(whisper_safe::SAMPLE_RATE)).round() as usize
}

fn seconds_of(samples: usize) -> f64 {
    samples as f64 / f64::from(whisper_safe::SAMPLE_RATE)
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
    stats: LongFormStats,
}

impl<'a> Stitcher<'a> {
    fn new(job: &LongForm<'a>) -> Self {
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

    fn add(&mut self, index: usize, piece: &Piece, decoded: Decoded) {
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
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    use whisper_safe::{Token, Transcript};

    /// What a scripted decoder was asked: the language, the prompt, the
    /// seconds of audio and the threads of each call.
    #[derive(Clone, Debug, PartialEq)]
    struct Call {
        language: Option<String>,
        prompt: Vec<i32>,
        text_prompt: Option<String>,
        seconds: f64,
        threads: Option<u32>,
    }

    /// whisper's timestamp token for `seconds` into a window.
    fn timestamp(seconds: f64) -> Token {
        Token {
            id: 50364 + (seconds / 0.02).round() as i32,
            special: true,
            ..Token::default()
        }
    }

    /// Answers each call with `answer(call number, call)`: segments as
    /// `(start, end, text)` in the window's own seconds, each a timestamp
    /// token, one text token (id 400 + text length) and a timestamp token.
    struct Scripted<F> {
        calls: Vec<Call>,
        answer: F,
    }

    impl<F> Decoder for Scripted<F>
    where
        F: FnMut(usize, &Call) -> Vec<(f64, f64, &'static str)> + Send,
    {
        fn run(
            &mut self,
            params: &Params,
            samples: &[f32],
            _: RunOptions<'_>,
        ) -> whisper_safe::Result<Transcript> {
            let call = Call {
                language: params.requested_language().map(str::to_owned),
                prompt: params.prompt_token_list().to_vec(),
                text_prompt: params.initial_prompt_text().map(str::to_owned),
                seconds: samples.len() as f64 / 16_000.0,
                threads: params.thread_count(),
            };
            let segments = (self.answer)(self.calls.len(), &call)
                .into_iter()
                .map(|(start, end, text)| Segment {
                    start,
                    end,
                    text: text.into(),
                    tokens: vec![
                        timestamp(start),
                        Token {
                            id: 400 + text.len() as i32,
                            text: text.into(),
                            logprob: -0.1,
                            ..Token::default()
                        },
                        timestamp(end),
                    ],
                    ..Segment::default()
                })
                .collect();
            self.calls.push(call);
            Ok(Transcript {
                segments,
                language: Some("de".into()),
                ..Transcript::default()
            })
        }
    }

    fn job<'a>(audio: &'a [f32], params: Params, cancel: &'a CancelToken) -> LongForm<'a> {
        LongForm {
            audio,
            pieces: plan(
                audio,
                Span {
                    start: 0,
                    end: audio.len(),
                },
                None,
            ),
            params,
            guard: Guard::default(),
            condition_on_previous_text: true,
            threads_per_piece: 1,
            speech_only: true,
            cancel,
            on_segment: None,
            on_progress: None,
        }
    }

    #[test]
    fn the_language_found_in_the_first_piece_is_kept_for_the_others() {
        let audio = vec![0.1; 16_000 * 50];
        let cancel = CancelToken::new();
        let mut decoder = Scripted {
            calls: Vec::new(),
            answer: |_, call: &Call| vec![(0.0, call.seconds, " Hallo.")],
        };
        job(&audio, Params::greedy(), &cancel)
            .run(&mut decoder, &NoLender)
            .unwrap();
        let languages: Vec<_> = decoder.calls.iter().map(|c| c.language.clone()).collect();
        assert_eq!(languages, [None, Some("de".to_owned())]);
        // A language asked for is kept as asked.
        let mut decoder = Scripted {
            calls: Vec::new(),
            answer: |_, call: &Call| vec![(0.0, call.seconds, " Hello.")],
        };
        job(&audio, Params::greedy().language(Some("en")), &cancel)
            .run(&mut decoder, &NoLender)
            .unwrap();
        assert!(decoder
            .calls
            .iter()
            .all(|c| c.language.as_deref() == Some("en")));
    }

    #[test]
    fn the_rest_of_a_piece_ended_early_is_decoded_prompted_with_what_came_before() {
        // One piece of 25 s; the first answer stops at 10 s, the second
        // (the 15 s left) at 9 s of its own, the third covers the last 6 s.
        let audio = vec![0.1; 16_000 * 25];
        let cancel = CancelToken::new();
        let mut decoder = Scripted {
            calls: Vec::new(),
            answer: |n, call: &Call| match n {
                0 => vec![(0.0, 4.0, " One."), (4.0, 10.0, " Two.")],
                1 => vec![(0.0, 9.0, " Three.")],
                _ => vec![(0.0, call.seconds, " Four.")],
            },
        };
        let (transcript, stats) = job(&audio, Params::greedy(), &cancel)
            .run(&mut decoder, &NoLender)
            .unwrap();
        let seconds: Vec<f64> = decoder.calls.iter().map(|c| c.seconds).collect();
        assert_eq!(seconds, [25.0, 15.0, 6.0]);
        let text_ids = |call: &Call| -> Vec<i32> {
            call.prompt
                .iter()
                .copied()
                .filter(|&id| id < 50364)
                .collect()
        };
        assert_eq!(text_ids(&decoder.calls[1]), [405, 405]);
        assert_eq!(text_ids(&decoder.calls[2]), [405, 405, 407]);
        let spans: Vec<(f64, f64)> = transcript
            .segments
            .iter()
            .map(|s| (s.start, s.end))
            .collect();
        assert_eq!(spans, [(0.0, 4.0), (4.0, 10.0), (10.0, 19.0), (19.0, 25.0)]);
        assert_eq!(transcript.text(), "One. Two. Three. Four.");
        assert_eq!(stats.remainders, 2);
        assert_eq!(stats.fallbacks, 0);
        // Pieces not known to be speech (no VAD) may end in silence: an early
        // end stands, as in whisper.cpp.
        let mut decoder = Scripted {
            calls: Vec::new(),
            answer: |_, _: &Call| vec![(0.0, 10.0, " One.")],
        };
        let mut unknown = job(&audio, Params::greedy(), &cancel);
        unknown.speech_only = false;
        let (transcript, stats) = unknown.run(&mut decoder, &NoLender).unwrap();
        assert_eq!(decoder.calls.len(), 1);
        assert_eq!(transcript.segments.len(), 1);
        assert_eq!(stats.remainders, 0);
    }

    #[test]
    fn an_empty_answer_to_a_prompted_piece_is_decoded_again_without_the_prompt() {
        let audio = vec![0.1; 16_000 * 50];
        let cancel = CancelToken::new();
        let mut decoder = Scripted {
            calls: Vec::new(),
            answer: |n, call: &Call| match (n, call.prompt.is_empty()) {
                (0, _) => vec![(0.0, call.seconds, " First.")],
                (_, true) => vec![(0.0, call.seconds, " Second.")],
                (_, false) => Vec::new(),
            },
        };
        let (transcript, stats) = job(&audio, Params::greedy(), &cancel)
            .run(&mut decoder, &NoLender)
            .unwrap();
        let prompts: Vec<usize> = decoder.calls.iter().map(|c| c.prompt.len()).collect();
        assert_eq!(prompts, [0, 3, 0]);
        assert_eq!(transcript.segments.len(), 2);
        assert_eq!(stats.silent, 0);
        assert_eq!(stats.remainders, 1);
    }

    struct NoLender;

    impl Lender for NoLender {
        fn borrow(&self) -> Option<Borrowed<'_>> {
            None
        }
        fn spare(&self) -> Option<Borrowed<'_>> {
            None
        }
        fn wanted_back(&self) -> bool {
            false
        }
    }

    #[test]
    fn a_segment_that_is_only_a_non_speech_tag_is_dropped() {
        let audio = vec![0.1; 16_000 * 50];
        let cancel = CancelToken::new();
        let mut decoder = Scripted {
            calls: Vec::new(),
            answer: |n, call: &Call| match n {
                0 => vec![
                    (0.0, 20.0, " Hello there."),
                    (20.0, call.seconds, " [BLANK_AUDIO]"),
                ],
                _ => vec![(0.0, call.seconds, " [Music] and words.")],
            },
        };
        let (transcript, _) = job(&audio, Params::greedy().language(Some("en")), &cancel)
            .run(&mut decoder, &NoLender)
            .unwrap();
        assert_eq!(transcript.text(), "Hello there. [Music] and words.");
        assert!(is_non_speech_tag(" [ Silence ] "));
        assert!(!is_non_speech_tag("[]"));
        assert!(!is_non_speech_tag("[a] and [b]"));
    }

    #[test]
    fn runs_split_in_halves_and_a_stopped_run_is_taken_whole() {
        let runs = Runs::new(0..10, 3);
        assert_eq!(runs.next(0), Some(0));
        // Lane 1 takes the back half of lane 0's run, lane 2 the back half
        // of the longest run then left (lane 1's).
        assert_eq!(runs.next(1), Some(5));
        assert_eq!(runs.next(2), Some(8));
        assert_eq!(
            (runs.next(0), runs.next(1), runs.next(2)),
            (Some(1), Some(6), Some(9))
        );
        // Lane 1 stops with piece 7 left: lane 2, out of pieces, takes it
        // before the back half of lane 0's 2..5.
        runs.stop(1);
        assert_eq!(runs.next(2), Some(7));
        assert_eq!(runs.next(2), Some(3));
        assert_eq!(runs.next(0), Some(2));
        // One piece left in a run: the lane out of pieces takes it.
        assert_eq!(runs.next(2), Some(4));
        assert_eq!(runs.next(0), None);
        assert_eq!(runs.next(2), None);
    }

    /// Per call: the piece, the prompt's text tokens, the threads, the decoder.
    type EchoLog = Arc<Mutex<Vec<(usize, Vec<i32>, u32, &'static str)>>>;

    /// A decoder that answers the piece whose samples are `index / 100`
    /// with one segment " P{index}." (text token `1000 + index`), and logs
    /// per call the index, the prompt's text tokens, the threads and its
    /// own name.
    struct PieceEcho {
        name: &'static str,
        log: EchoLog,
        /// Waited on at the first call (every call when `lockstep`), so that
        /// every state starts a piece before any finishes one.
        start: Option<Arc<std::sync::Barrier>>,
        lockstep: bool,
        /// Set at the first call (a job starts waiting).
        waiting: Option<Arc<AtomicBool>>,
    }

    impl Decoder for PieceEcho {
        fn run(
            &mut self,
            params: &Params,
            samples: &[f32],
            _: RunOptions<'_>,
        ) -> whisper_safe::Result<Transcript> {
            if let Some(start) = &self.start {
                start.wait();
            }
            if !self.lockstep {
                self.start = None;
            }
            if let Some(waiting) = &self.waiting {
                waiting.store(true, Ordering::SeqCst);
            }
            let index = (samples[0] * 100.0).round() as usize;
            let prompt = params
                .prompt_token_list()
                .iter()
                .copied()
                .filter(|&id| id < 50364)
                .collect();
            let threads = params.thread_count().unwrap_or(0);
            lock(&self.log).push((index, prompt, threads, self.name));
            let end = samples.len() as f64 / 16_000.0;
            Ok(Transcript {
                segments: vec![Segment {
                    start: 0.0,
                    end,
                    text: format!(" P{index}."),
                    tokens: vec![
                        timestamp(0.0),
                        Token {
                            id: 1000 + index as i32,
                            logprob: -0.1,
                            ..Token::default()
                        },
                        timestamp(end),
                    ],
                    ..Segment::default()
                }],
                language: Some("en".into()),
                ..Transcript::default()
            })
        }
    }

    /// `n` pieces of 5 s, piece `i`'s samples all `i / 100`.
    fn numbered_pieces(n: usize) -> (Vec<f32>, Vec<Piece>) {
        let len = 16_000 * 5;
        let audio = (0..n * len).map(|s| (s / len) as f32 / 100.0).collect();
        let pieces = (0..n)
            .map(|i| {
                Piece::new(vec![Span {
                    start: i * len,
                    end: (i + 1) * len,
                }])
            })
            .collect();
        (audio, pieces)
    }

    /// Lends `spares` and `lent` states (each [`PieceEcho`]s on `log`);
    /// counts the states given back.
    struct Lending {
        spares: Mutex<Vec<PieceEcho>>,
        lent: Mutex<Vec<PieceEcho>>,
        waiting: Arc<AtomicBool>,
        given_back: AtomicUsize,
    }

    impl Lending {
        fn hand_out<'a>(&'a self, from: &Mutex<Vec<PieceEcho>>) -> Option<Borrowed<'a>> {
            let decoder = lock(from).pop()?;
            Some(Borrowed::new(Box::new(decoder), move |back| {
                assert!(back.is_some(), "a healthy state is given back");
                self.given_back.fetch_add(1, Ordering::SeqCst);
            }))
        }
    }

    impl Lender for Lending {
        fn borrow(&self) -> Option<Borrowed<'_>> {
            self.hand_out(&self.lent)
        }
        fn spare(&self) -> Option<Borrowed<'_>> {
            self.hand_out(&self.spares)
        }
        fn wanted_back(&self) -> bool {
            self.waiting.load(Ordering::SeqCst)
        }
    }

    fn echo(name: &'static str, log: &EchoLog) -> PieceEcho {
        PieceEcho {
            name,
            log: Arc::clone(log),
            start: None,
            lockstep: false,
            waiting: None,
        }
    }

    /// Two decoders on `log` that wait for each other at their first call
    /// (at every call when `lockstep`).
    fn pair(log: &EchoLog, names: [&'static str; 2], lockstep: bool) -> [PieceEcho; 2] {
        let start = Arc::new(std::sync::Barrier::new(2));
        names.map(|name| PieceEcho {
            start: Some(Arc::clone(&start)),
            lockstep,
            ..echo(name, log)
        })
    }

    /// Decodes `n` numbered pieces with `threads` threads on `own` and the
    /// states of `lending`, checks that they come back in order, that
    /// progress counted every piece as it was done, and that two states
    /// worked, one of them lent and given back.
    fn run_numbered(n: usize, threads: u32, own: &mut PieceEcho, lending: &Lending) {
        let (audio, pieces) = numbered_pieces(n);
        let cancel = CancelToken::new();
        let params = Params::greedy().threads(threads).language(Some("en"));
        let mut job = job(&audio, params, &cancel);
        job.pieces = pieces;
        let progress = Mutex::new(Vec::new());
        let report = |share: f32| lock(&progress).push((share * n as f32).round() as usize);
        job.on_progress = Some(&report);
        let (transcript, stats) = job.run(own, lending).unwrap();
        let pieces_done: Vec<usize> = (1..=n).collect();
        assert_eq!(*lock(&progress), pieces_done);
        let expected: Vec<String> = (0..n).map(|i| format!("P{i}.")).collect();
        assert_eq!(transcript.text(), expected.join(" "));
        assert_eq!(stats.states, 2);
        assert_eq!(lending.given_back.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_worker_with_two_threads_decodes_two_runs_of_pieces_at_once_each_prompted_in_turn() {
        let log = EchoLog::default();
        let [mut own, spare] = pair(&log, ["own", "spare"], true);
        let lending = Lending {
            spares: Mutex::new(vec![spare]),
            lent: Mutex::new(Vec::new()),
            waiting: Arc::new(AtomicBool::new(false)),
            given_back: AtomicUsize::new(0),
        };
        run_numbered(10, 2, &mut own, &lending);
        let log = lock(&log).clone();
        assert_eq!(log.len(), 10);
        assert!(
            log.iter().all(|(_, _, threads, _)| *threads == 1),
            "{log:?}"
        );
        // Decoding in step, each state keeps to its half, every piece
        // prompted with the one before it but the first of each half.
        for (index, prompt, _, name) in &log {
            assert_eq!(*name, if *index < 5 { "own" } else { "spare" }, "{log:?}");
            match index {
                0 | 5 => assert!(prompt.is_empty(), "{log:?}"),
                _ => assert_eq!(prompt.last(), Some(&(1000 + *index as i32 - 1)), "{log:?}"),
            }
        }
    }

    #[test]
    fn a_lane_with_no_piece_left_leaves_its_threads_to_the_lanes_still_decoding() {
        let pool = Threads::new(3);
        assert_eq!(pool.for_attempt(1), 1);
        // A lane of two threads is done: the two others get one more each.
        drop(pool.lane(2));
        assert_eq!(pool.for_attempt(1), 2);

        // A lane takes them from its next attempt on: here the other lane of a
        // worker with two threads is done before this one starts, so the first
        // piece, the rest of it (its decode ends at 2 s of 5) and the second
        // piece all run with both threads.
        let (audio, pieces) = numbered_pieces(2);
        let cancel = CancelToken::new();
        let params = Params::greedy().threads(2).language(Some("en"));
        let mut job = job(&audio, params.clone(), &cancel);
        job.pieces = pieces;
        let team = Team {
            job: &job,
            params: &params,
            lender: &NoLender,
            runs: Runs::new(0..2, 1),
            in_order: false,
            stitcher: Mutex::new(Stitcher::new(&job)),
            failed: AtomicBool::new(false),
            first_error: Mutex::new(None),
        };
        let pool = Threads::new(2);
        drop(pool.lane(1));
        let mut decoder = Scripted {
            calls: Vec::new(),
            answer: |n, call: &Call| match n {
                0 => vec![(0.0, 2.0, " One.")],
                _ => vec![(0.0, call.seconds, " Two.")],
            },
        };
        assert!(team.lane(0, &mut decoder, (1, &pool), false, Vec::new(), None));
        let calls: Vec<(f64, Option<u32>)> = decoder
            .calls
            .iter()
            .map(|c| (c.seconds, c.threads))
            .collect();
        assert_eq!(calls, [(5.0, Some(2)), (3.0, Some(2)), (5.0, Some(2))]);
        let (transcript, _) = team.stitcher.into_inner().unwrap().finish();
        assert_eq!(transcript.text(), "One. Two. Two.");
    }

    #[test]
    fn a_lent_state_goes_back_when_a_job_waits_and_the_others_decode_its_pieces() {
        let log = EchoLog::default();
        let [mut own, mut lent] = pair(&log, ["own", "lent"], false);
        let waiting = Arc::new(AtomicBool::new(false));
        lent.waiting = Some(Arc::clone(&waiting));
        let lending = Lending {
            spares: Mutex::new(Vec::new()),
            lent: Mutex::new(vec![lent]),
            waiting,
            given_back: AtomicUsize::new(0),
        };
        run_numbered(6, 1, &mut own, &lending);
        // The lent state decoded one piece (3, the first of the back half it
        // took) and stopped; the job's own state took the rest over.
        let log = lock(&log).clone();
        let lent: Vec<usize> = log
            .iter()
            .filter(|(.., name)| *name == "lent")
            .map(|(i, ..)| *i)
            .collect();
        assert_eq!(lent, [3], "{log:?}");
        let mut decoded: Vec<usize> = log.iter().map(|(i, ..)| *i).collect();
        decoded.sort_unstable();
        assert_eq!(decoded, [0, 1, 2, 3, 4, 5], "{log:?}");
    }

    #[test]
    fn the_requests_prompt_reaches_every_piece_not_prompted_with_the_one_before() {
        let audio = vec![0.1; 16_000 * 70];
        let cancel = CancelToken::new();
        let text_prompts = |condition: bool| {
            let mut job = job(
                &audio,
                Params::greedy().initial_prompt(Some("Kubernetes, Grafana.")),
                &cancel,
            );
            job.condition_on_previous_text = condition;
            let mut decoder = Scripted {
                calls: Vec::new(),
                answer: |_, call: &Call| vec![(0.0, call.seconds, " Words.")],
            };
            job.run(&mut decoder, &NoLender).unwrap();
            decoder
                .calls
                .iter()
                .map(|c| (c.text_prompt.is_some(), c.prompt.is_empty()))
                .collect::<Vec<_>>()
        };
        // Independent pieces: each gets the request's prompt, none the text before.
        assert_eq!(text_prompts(false), [(true, true); 3]);
        // Conditioned pieces: the first gets it, the others the text before.
        assert_eq!(
            text_prompts(true),
            [(true, true), (false, false), (false, false)]
        );
    }

    #[test]
    fn an_empty_answer_under_the_requests_prompt_is_decoded_again_without_it() {
        let audio = vec![0.1; 16_000 * 25];
        let cancel = CancelToken::new();
        let mut job = job(
            &audio,
            Params::greedy().initial_prompt(Some("Hints.")),
            &cancel,
        );
        job.condition_on_previous_text = false;
        let mut decoder = Scripted {
            calls: Vec::new(),
            answer: |_, call: &Call| match call.text_prompt {
                Some(_) => Vec::new(),
                None => vec![(0.0, call.seconds, " Words.")],
            },
        };
        let (transcript, stats) = job.run(&mut decoder, &NoLender).unwrap();
        let prompted: Vec<bool> = decoder
            .calls
            .iter()
            .map(|c| c.text_prompt.is_some())
            .collect();
        assert_eq!(prompted, [true, false]);
        assert_eq!(transcript.text().trim(), "Words.");
        assert_eq!(stats.remainders, 1);
    }

    #[test]
    fn each_piece_is_prompted_with_the_tokens_before_it_timestamps_included() {
        let audio = vec![0.1; 16_000 * 70];
        let cancel = CancelToken::new();
        let job = job(&audio, Params::greedy(), &cancel);
        assert_eq!(job.pieces.len(), 3);
        let mut decoder = Scripted {
            calls: Vec::new(),
            answer: |n, call: &Call| match n {
                0 => vec![(0.0, call.seconds, " One.")],
                1 => vec![(0.0, call.seconds, " Two two.")],
                _ => vec![(0.0, call.seconds, " Three.")],
            },
        };
        let (transcript, stats) = job.run(&mut decoder, &NoLender).unwrap();
        let end = |n: usize| timestamp(decoder.calls[n].seconds).id;
        assert_eq!(decoder.calls[0].prompt, Vec::<i32>::new());
        assert_eq!(decoder.calls[1].prompt, [50364, 405, end(0)]);
        assert_eq!(
            decoder.calls[2].prompt,
            [50364, 405, end(0), 50364, 409, end(1)]
        );
        assert_eq!(stats.pieces, 3);
        assert_eq!(stats.states, 1);
        let starts: Vec<f64> = transcript.segments.iter().map(|s| s.start).collect();
        assert_eq!(starts[0], 0.0);
        assert!(starts.windows(2).all(|w| w[0] < w[1]), "{starts:?}");
        let indexes: Vec<usize> = transcript.segments.iter().map(|s| s.index).collect();
        assert_eq!(indexes, [0, 1, 2]);
    }
}
