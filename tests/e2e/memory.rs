//! State create/run/drop cycles keep the heap in use flat, and the same check catches
//! a state kept per cycle. In their own test binary, run one after the other, so the
//! process-wide count is disturbed neither by other tests nor by each other.

use std::sync::Mutex;
use whisper_safe::audio::{decode, DecodeOptions};
use whisper_safe::{AudioContext, Context, ContextOptions, Params, State};
use whisper_stt_tests::leak_check::{LeakCheck, BLOCK_CYCLES};
use whisper_stt_tests::{fixture, init_linked, tiny_en_model};

/// The tests of this binary take turns: each judges the whole process's heap.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs `keep` on a state that has transcribed 1.5 s of speech, once per cycle, under
/// the leak check (a fresh state each cycle, trimmed encoder context).
fn judge_cycles(mut keep: impl FnMut(State)) -> Result<Vec<u64>, String> {
    init_linked();
    let context = Context::new(tiny_en_model(), &ContextOptions::default()).unwrap();
    let jfk = decode(
        std::fs::read(fixture("jfk.wav")).unwrap(),
        &DecodeOptions::default(),
    )
    .unwrap();
    let samples = &jfk.samples[..24_000];
    let p = Params::greedy()
        .threads(2)
        .language(Some("en"))
        .audio_context(AudioContext::Trimmed);
    LeakCheck::default().run(|| {
        let mut state = context.create_state().unwrap();
        state.full(&p, samples).unwrap();
        keep(state);
    })
}

/// The resident set of this process (KiB), reported beside the verdict.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line")
}

#[test]
fn create_run_drop_cycles_keep_memory_flat() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // Each cycle allocates a whole state and frees it: after the libraries' one-time
    // allocations the heap in use must come back to the same level every cycle.
    let rss_before = rss_kib();
    match judge_cycles(drop) {
        Ok(levels) => eprintln!(
            "flat; heap in use every {BLOCK_CYCLES} cycles (KiB): {levels:?}; RSS {rss_before} → \
             {} KiB (includes what the allocator keeps for reuse; not judged)",
            rss_kib()
        ),
        Err(leak) => panic!("{leak}"),
    }
}

#[test]
fn a_state_kept_per_cycle_is_caught_as_a_leak() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut kept = Vec::new();
    let verdict = judge_cycles(|state| kept.push(state));
    eprintln!("kept {} states: {verdict:?}", kept.len());
    assert!(verdict.is_err(), "a kept state per cycle passed as flat");
}
