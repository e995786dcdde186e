//! State create/run/drop cycles keep memory flat. In its own test binary so the
//! process-wide RSS is not disturbed by other tests running in parallel.

use whisper_safe::audio::{decode, DecodeOptions};
use whisper_safe::{AudioContext, Context, ContextOptions, LoaderConfig, Params};
use whisper_stt_tests::{fixture, linked_artifacts, tiny_en_model};

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[test]
fn create_run_drop_cycles_keep_memory_flat() {
    // 1.5 s of speech, trimmed encoder context: each cycle allocates a whole state
    // (~150 MB for tiny) and frees it. Bound: after warm-up, 200 cycles grow RSS by
    // less than 10 % — a leaked state (~150 MB) or leaked results would exceed it.
    whisper_safe::init_with(&LoaderConfig::new(linked_artifacts().join("lib"))).unwrap();
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
    let cycle = || {
        let mut state = context.create_state().unwrap();
        state.full(&p, samples).unwrap();
    };
    for _ in 0..20 {
        cycle();
    }
    let before = rss_kib();
    for _ in 0..200 {
        cycle();
    }
    let after = rss_kib();
    assert!(
        (after as f64) < before as f64 * 1.10,
        "RSS grew from {before} KiB to {after} KiB over 200 cycles"
    );
}
