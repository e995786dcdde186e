//! Runs: which piece each lane decodes next.

use std::ops::Range;
use std::sync::Mutex;

use super::lock;

/// Which piece each lane decodes next. Every lane works through a run of
/// consecutive pieces, so each piece but a run's first is prompted with the
/// text before it. All pieces start as lane 0's run; a lane with nothing
/// left takes over the run of a lane that stopped, else the back half of the
/// longest run (all of it when one piece is left).
pub(super) struct Runs(Mutex<Vec<Run>>);

#[derive(Clone, Copy, Debug, PartialEq)]
struct Run {
    next: usize,
    end: usize,
    stopped: bool,
}

impl Runs {
    pub(super) fn new(pieces: Range<usize>, lanes: usize) -> Self {
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
    pub(super) fn next(&self, lane: usize) -> Option<usize> {
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
    pub(super) fn stop(&self, lane: usize) {
        lock(&self.0)[lane].stopped = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
