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
    // (~150 MB for tiny) and frees it. The allocator keeps some freed memory at
    // first (glibc raises its mmap threshold after large frees), so RSS is
    // sampled every 20 cycles over 200 and judged on the second half: a leak grows
    // linearly, so 100 more cycles must add less than 5 % (a leaked state is
    // ~150 MB; leaked results would show as steady growth). Measured here: the
    // floor stays at ~105 MB while single samples jump by ~18 MB and fall back, so
    // the check compares floors (minimum per half), not single samples.
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
    let mut samples_kib = vec![rss_kib()];
    for _ in 0..10 {
        for _ in 0..20 {
            cycle();
        }
        samples_kib.push(rss_kib());
    }
    eprintln!("RSS every 20 cycles (KiB): {samples_kib:?}");
    let floor = |half: &[u64]| *half.iter().min().expect("samples");
    let (first, second) = (floor(&samples_kib[1..=5]), floor(&samples_kib[6..]));
    assert!(
        (second as f64) < first as f64 * 1.05,
        "the RSS floor rose from {first} to {second} KiB over cycles 100..200: {samples_kib:?}"
    );
}
