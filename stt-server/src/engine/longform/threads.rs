//! Threads: how a worker's threads are shared among the lanes of its crew,
//! and passed on when a lane is done.

use std::sync::atomic::{AtomicU32, Ordering};

use whisper_safe::{Params, RunOptions, Transcript};

use crate::engine::model::Decoder;

/// The threads of one worker's crew. A lane with no piece left leaves its
/// threads to the lanes still decoding, which take an even share of them from
/// their next attempt on (a temperature fallback, the rest of a piece, the next
/// piece): at the end of a job one lane often decodes its last piece alone.
pub(super) struct Threads {
    /// Threads of the lanes that are done.
    idle: AtomicU32,
    /// Lanes still decoding.
    working: AtomicU32,
}

impl Threads {
    pub(super) fn new(lanes: u32) -> Self {
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
    pub(super) fn lane(&self, share: u32) -> LaneThreads<'_> {
        LaneThreads { pool: self, share }
    }
}

/// One lane's place in [`Threads`].
pub(super) struct LaneThreads<'p> {
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
pub(super) struct LaneDecoder<'d, 'p> {
    pub(super) decoder: &'d mut dyn Decoder,
    pub(super) threads: LaneThreads<'p>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::longform::lanes::Team;
    use crate::engine::longform::stitch::Stitcher;
    use crate::engine::longform::test_support::{job, numbered_pieces, NoLender, Scripted};

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
        let cancel = whisper_safe::CancelToken::new();
        let params = Params::greedy().threads(2).language(Some("en"));
        let mut job = job(&audio, params.clone(), &cancel);
        job.pieces = pieces;
        let team = Team::new(&job, &params, &NoLender, 0..2, 1, Stitcher::new(&job));
        let pool = Threads::new(2);
        drop(pool.lane(1));
        let mut decoder = Scripted::new(|n, call| match n {
            0 => vec![(0.0, 2.0, " One.")],
            _ => vec![(0.0, call.seconds, " Two.")],
        });
        assert!(team.lane(0, &mut decoder, (1, &pool), false, Vec::new(), None));
        let calls: Vec<(f64, Option<u32>)> = decoder
            .calls
            .iter()
            .map(|c| (c.seconds, c.threads))
            .collect();
        assert_eq!(calls, [(5.0, Some(2)), (3.0, Some(2)), (5.0, Some(2))]);
        let (transcript, _) = team.finish().unwrap();
        assert_eq!(transcript.text(), "One. Two. Two.");
    }
}
