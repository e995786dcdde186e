//! Lanes: the pieces of one job decoded side by side, one decoding state
//! each. A worker's lanes form a crew (its own or a lent state, with spare
//! states for its other threads); the crews of one job form its [`Team`].

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use whisper_safe::{Params, Transcript};

use super::lending::{poisons, Borrowed, Lender};
use super::runs::Runs;
use super::stitch::Stitcher;
use super::threads::{LaneDecoder, Threads};
use super::{lock, LongForm, LongFormStats};
use crate::engine::model::Decoder;

/// An idle worker's state, and spare states for its other threads.
pub(super) type Crew<'l> = (Borrowed<'l>, Vec<Borrowed<'l>>);

impl LongForm<'_> {
    /// States for `pieces` pieces: spare states for the job's own worker's
    /// other lanes, and idle workers' states, each with its spares, while
    /// there are pieces for them.
    pub(super) fn gather<'l>(
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
}

/// The first lane of a worker's crew.
pub(super) enum Lead<'d, 'l> {
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
pub(super) struct Team<'j, 'a> {
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

impl<'j, 'a> Team<'j, 'a> {
    /// `lanes` lanes for the pieces `pieces` of `job` (all of them lane 0's
    /// run at first), put together by `stitcher`.
    pub(super) fn new(
        job: &'j LongForm<'a>,
        params: &'j Params,
        lender: &'j dyn Lender,
        pieces: Range<usize>,
        lanes: usize,
        stitcher: Stitcher<'a>,
    ) -> Self {
        Self {
            job,
            params,
            lender,
            runs: Runs::new(pieces, lanes),
            in_order: lanes == 1,
            stitcher: Mutex::new(stitcher),
            failed: AtomicBool::new(false),
            first_error: Mutex::new(None),
        }
    }

    /// The stitched transcript once every lane is done.
    ///
    /// # Errors
    /// The first error of any lane.
    pub(super) fn finish(self) -> whisper_safe::Result<(Transcript, LongFormStats)> {
        let stitcher = self
            .stitcher
            .into_inner()
            .unwrap_or_else(|e| e.into_inner());
        match self
            .first_error
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
        {
            Some(error) => Err(error),
            None => Ok(stitcher.finish()),
        }
    }
}

impl Team<'_, '_> {
    /// Runs one worker's `lanes`: `lead` on this thread and each of
    /// `spares` on a thread of its own, the worker's threads split between
    /// them. A spare or lent state that a failure left unusable is dropped.
    pub(super) fn crew(
        &self,
        lanes: Range<usize>,
        lead: Lead<'_, '_>,
        spares: &mut [Borrowed<'_>],
    ) {
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
    pub(super) fn lane(
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    use whisper_safe::{CancelToken, RunOptions};

    use super::*;
    use crate::engine::longform::test_support::{job, numbered_pieces, text_segment};

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
                segments: vec![text_segment(
                    0.0,
                    end,
                    &format!(" P{index}."),
                    1000 + index as i32,
                )],
                language: Some("en".into()),
                ..Transcript::default()
            })
        }
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
}
