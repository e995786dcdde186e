//! Checks run on both the patched and the stock whisper.cpp builds
//! (`tests/e2e/patched_build.rs`, `tests/e2e/stock_build.rs`), each with the
//! build loaded by its suite.

use whisper_safe::{AudioContext, Context, ContextOptions, Params};

use crate::speech::samples_of;
use crate::{base_model, fixture, reference, word_error_rate};

/// Loads base with flash attention asked for, and checks that fr_test_fr.wav in
/// a trimmed context reads the same on a fresh state and right after jfk.wav on
/// another (within WER 0.25). jfk.wav's window (11 s) is longer than the French
/// one (6.7 s): its keys and values fill rows that the French window's padding
/// covers, which flash attention attends to unless they are masked (patch 0006)
/// or flash attention is off (the stock build's fallback).
pub fn assert_a_trimmed_window_reads_the_same_whatever_the_state_decoded_before() {
    let options = ContextOptions {
        flash_attn: true,
        ..ContextOptions::default()
    };
    let base = Context::new(base_model(), &options).expect("load base");
    let french = samples_of(&fixture("fr_test_fr.wav"));
    let trimmed = Params::greedy()
        .threads(2)
        .audio_context(AudioContext::Trimmed);
    let in_french = trimmed.clone().language(Some("fr"));
    let first = base
        .create_state()
        .unwrap()
        .full(&in_french, &french)
        .expect("transcribe")
        .text();
    let mut used = base.create_state().unwrap();
    used.full(
        &trimmed.language(Some("en")),
        &samples_of(&fixture("jfk.wav")),
    )
    .expect("transcribe");
    let after = used.full(&in_french, &french).expect("transcribe").text();
    assert_eq!(first, after, "fresh state, then after jfk.wav");
    let wer = word_error_rate(&reference("fr_test_fr.wav"), &after);
    assert!(wer <= 0.25, "WER {wer:.3} for {after:?}");
}
