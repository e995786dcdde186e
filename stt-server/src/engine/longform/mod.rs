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
//! back half of the longest run left ([`Runs`](runs::Runs)). A lane with no
//! piece left leaves its threads to the lanes of its worker still decoding,
//! from their next attempt on ([`Threads`](threads::Threads)). The stitcher
//! puts the pieces back in order.
//!
//! Here: [`LongForm`], a job's decoding, and [`LongForm::run`], its entry.
//! The parts, in the order a job meets them:
//! - [`plan`](mod@plan): where the audio is cut into pieces;
//! - [`lending`]: states lent by idle workers and spare ones ([`Lender`],
//!   [`Borrowed`]), and which failures leave a state unusable ([`poisons`]);
//! - [`lanes`]: the lanes a job's pieces are decoded in, side by side, and
//!   the states gathered for them;
//! - [`runs`]: which piece each lane decodes next;
//! - [`threads`]: a worker's threads shared among its lanes;
//! - [`piece`]: one piece's decoding, its windows and rests;
//! - [`prompt`]: the text each piece is prompted with;
//! - [`stitch`]: the decoded pieces put back together in order.

mod lanes;
mod lending;
mod piece;
mod plan;
mod prompt;
mod runs;
mod stitch;
#[cfg(test)]
mod test_support;
mod threads;

use std::sync::Mutex;

use whisper_safe::guard::Guard;
use whisper_safe::pieces::Piece;
use whisper_safe::{CancelToken, Params, RunTimings, Segment, Transcript};

use super::model::Decoder;
use lanes::{Lead, Team};
use stitch::Stitcher;

pub(crate) use lending::{poisons, Borrowed, Lender};
pub(crate) use plan::plan;

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

impl LongForm<'_> {
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
        let team = Team::new(
            self,
            &params,
            lender,
            start..self.pieces.len(),
            lanes,
            stitcher,
        );
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
        team.finish()
    }
}

fn samples_of(seconds: f64) -> usize {
    (seconds.max(0.0) * f64::from(whisper_safe::SAMPLE_RATE)).round() as usize
}

fn seconds_of(samples: usize) -> f64 {
    samples as f64 / f64::from(whisper_safe::SAMPLE_RATE)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::test_support::{job, NoLender, Scripted};
    use super::*;

    #[test]
    fn the_language_found_in_the_first_piece_is_kept_for_the_others() {
        let audio = vec![0.1; 16_000 * 50];
        let cancel = CancelToken::new();
        let mut decoder = Scripted::new(|_, call| vec![(0.0, call.seconds, " Hallo.")]);
        job(&audio, Params::greedy(), &cancel)
            .run(&mut decoder, &NoLender)
            .unwrap();
        let languages: Vec<_> = decoder.calls.iter().map(|c| c.language.clone()).collect();
        assert_eq!(languages, [None, Some("de".to_owned())]);
        // A language asked for is kept as asked.
        let mut decoder = Scripted::new(|_, call| vec![(0.0, call.seconds, " Hello.")]);
        job(&audio, Params::greedy().language(Some("en")), &cancel)
            .run(&mut decoder, &NoLender)
            .unwrap();
        assert!(decoder
            .calls
            .iter()
            .all(|c| c.language.as_deref() == Some("en")));
    }
}
