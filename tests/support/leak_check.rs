//! Telling a memory leak from warm-up in a loop that should free what it allocates.
//!
//! The measure is the heap in use as the C allocator counts it
//! ([`whisper_safe::heap::heap_in_use_bytes`]): the resident set also holds the freed
//! memory an allocator keeps for reuse, which grows in steps for a while, at times
//! after a long flat stretch, by amounts that differ between CPUs, allocators and test
//! orders (seen: 25 MiB over 100 cycles, and a 7 MiB step after 190 flat cycles).
//! Memory in use has its own warm-up (one-time allocations of the libraries), so
//! [`LeakCheck`] waits until the level has not moved for a stretch of blocks, then
//! requires no growth over at least as many cycles again; a level that never settles,
//! or that rises far beyond anything warm-up does, is a leak.

/// Cycles per block: the block's level is the least value measured after each of
/// them, so a value caught while a thread still holds a buffer does not count.
pub const BLOCK_CYCLES: usize = 5;

/// The judgement of a loop's memory, fed one block floor at a time.
#[derive(Debug)]
pub struct LeakCheck {
    /// Blocks the floor must stay within the tolerance to count as warmed up.
    pub settle_blocks: usize,
    /// Fewest blocks checked after warm-up (at least as many as warm-up took).
    pub min_check_blocks: usize,
    /// Warm-up longer than this many blocks is a floor that never settles.
    pub max_warmup_blocks: usize,
    /// Growth of the floor above the first block's that no warm-up reaches (KiB).
    pub max_rise_kib: u64,
    floors: Vec<u64>,
    phase: Phase,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    /// `level` is the highest floor so far, unmoved for `steady` blocks.
    WarmingUp { level: u64, steady: usize },
    /// Warm-up ended after `warmup` blocks at `baseline`.
    Checking { baseline: u64, warmup: usize },
}

/// What a new floor means.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Run another block.
    Continue,
    /// The floor stayed flat after warm-up for the whole check.
    Flat,
    /// A leak, with the reason.
    Leak(String),
}

impl Default for LeakCheck {
    /// Warm-up counts as over when the level is unmoved for 3 blocks (15 cycles); then
    /// at least 8 blocks (40 cycles) are checked; warm-up may take 40 blocks; a rise of
    /// 256 MiB is a leak at once (a tiny.en state is about 16 MiB, so keeping one per
    /// cycle passes that within four blocks).
    fn default() -> Self {
        LeakCheck {
            settle_blocks: 3,
            min_check_blocks: 8,
            max_warmup_blocks: 40,
            max_rise_kib: 256 * 1024,
            floors: Vec::new(),
            phase: Phase::WarmingUp {
                level: 0,
                steady: 0,
            },
        }
    }
}

/// How far a level may move and still count as unmoved: 1 % of it, at least 1 MiB
/// (small caches come and go).
fn tolerance_kib(floor: u64) -> u64 {
    (floor / 100).max(1024)
}

impl LeakCheck {
    /// Takes the floor of the next block and says what it means.
    pub fn observe(&mut self, floor_kib: u64) -> Verdict {
        self.floors.push(floor_kib);
        let first = self.floors[0];
        if floor_kib > first + self.max_rise_kib {
            return Verdict::Leak(format!(
                "the heap in use rose from {first} to {floor_kib} KiB, more than any warm-up"
            ));
        }
        match self.phase {
            Phase::WarmingUp { level, steady } => {
                let (level, steady) = if floor_kib > level + tolerance_kib(level) {
                    (floor_kib, 0)
                } else {
                    (level, steady + 1)
                };
                let blocks = self.floors.len();
                if steady >= self.settle_blocks {
                    self.phase = Phase::Checking {
                        baseline: level,
                        warmup: blocks,
                    };
                } else if blocks >= self.max_warmup_blocks {
                    return Verdict::Leak(format!(
                        "the heap in use never settled in {blocks} blocks of {BLOCK_CYCLES} cycles"
                    ));
                } else {
                    self.phase = Phase::WarmingUp { level, steady };
                }
                Verdict::Continue
            }
            Phase::Checking { baseline, warmup } => {
                if floor_kib > baseline + tolerance_kib(baseline) {
                    return Verdict::Leak(format!(
                        "the heap in use settled at {baseline} KiB after {} cycles, then \
                         rose to {floor_kib} KiB",
                        warmup * BLOCK_CYCLES
                    ));
                }
                let checked = self.floors.len() - warmup;
                if checked >= warmup.max(self.min_check_blocks) {
                    Verdict::Flat
                } else {
                    Verdict::Continue
                }
            }
        }
    }

    /// Runs `cycle` in blocks until a verdict, measuring the heap in use after every
    /// cycle.
    ///
    /// # Errors
    /// The leak's description, with every level seen (KiB).
    ///
    /// # Panics
    /// Where the C library does not count its heap (not glibc).
    pub fn run(mut self, mut cycle: impl FnMut()) -> Result<Vec<u64>, String> {
        loop {
            let level = (0..BLOCK_CYCLES)
                .map(|_| {
                    cycle();
                    heap_in_use_kib()
                })
                .min()
                .expect("a block has cycles");
            match self.observe(level) {
                Verdict::Continue => {}
                Verdict::Flat => return Ok(self.floors),
                Verdict::Leak(reason) => {
                    return Err(format!("{reason}; levels (KiB): {:?}", self.floors))
                }
            }
        }
    }
}

/// The heap in use (KiB).
///
/// # Panics
/// Where the C library does not count it.
pub fn heap_in_use_kib() -> u64 {
    whisper_safe::heap::heap_in_use_bytes()
        .expect("the C library counts its heap in use (glibc's mallinfo2)")
        / 1024
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judge(floors: impl IntoIterator<Item = u64>) -> Verdict {
        let mut check = LeakCheck::default();
        for floor in floors {
            match check.observe(floor) {
                Verdict::Continue => {}
                verdict => return verdict,
            }
        }
        Verdict::Continue
    }

    #[test]
    fn warm_up_that_settles_late_is_not_a_leak() {
        // Warm-up in steps, then flat to the kilobyte: the RSS floors of the failing
        // CI run, one per block.
        let seen = [
            102036, 114980, 116412, 124372, 124372, 126460, 127388, 127388, 127388, 127388, 127428,
        ];
        let floors = seen.into_iter().chain(std::iter::repeat(127428));
        assert_eq!(judge(floors.take(200)), Verdict::Flat);
    }

    #[test]
    fn steady_growth_never_settles_and_is_a_leak() {
        // 400 KiB a cycle: 4 MiB a block, more than the tolerance every time.
        let verdict = judge((0..100).map(|b| 100_000 + b * 4_000));
        assert!(
            matches!(&verdict, Verdict::Leak(r) if r.contains("never settled")),
            "{verdict:?}"
        );
    }

    #[test]
    fn growth_after_settling_is_a_leak() {
        let floors = std::iter::repeat_n(120_000, 5).chain((1..20).map(|b| 120_000 + b * 800));
        let verdict = judge(floors);
        assert!(
            matches!(&verdict, Verdict::Leak(r) if r.contains("then rose")),
            "{verdict:?}"
        );
    }

    #[test]
    fn a_large_jump_is_a_leak_at_once() {
        let verdict = judge([100_000, 100_000, 400_000]);
        assert!(
            matches!(&verdict, Verdict::Leak(r) if r.contains("more than any warm-up")),
            "{verdict:?}"
        );
    }

    #[test]
    fn the_check_lasts_at_least_as_long_as_warm_up() {
        let mut check = LeakCheck::default();
        let warmup: Vec<u64> = (0..30).map(|b| 100_000 + b * 2_000).collect();
        let mut blocks = 0;
        for floor in warmup.iter().copied().chain(std::iter::repeat(158_000)) {
            blocks += 1;
            if check.observe(floor) == Verdict::Flat {
                break;
            }
        }
        // 30 rising blocks + 3 to settle = 33 of warm-up, then 33 checked.
        assert_eq!(blocks, 66);
    }
}
