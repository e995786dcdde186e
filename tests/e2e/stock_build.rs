//! Stock whisper.cpp 1.8.3, built without our patches (`scripts/build-artifacts.sh
//! --patches none`, `WHISPER_STT_TEST_STOCK`): the libraries are told from a
//! patched build, and what depends on a patch falls back (`whisper_safe::patches`):
//! no `no_speech_prob` (0002), no flash attention (0006). `scripts/test.sh` also
//! runs the server and long-form suites against these libraries, with the bounds
//! the patched build meets.

use std::path::PathBuf;
use std::sync::OnceLock;

use whisper_safe::{Context, ContextOptions, LoaderConfig, Params};
use whisper_stt_tests::patch_checks;
use whisper_stt_tests::server::{path_str, Form, Server};
use whisper_stt_tests::speech::samples_of;
use whisper_stt_tests::{
    base_model, fixture, reference, required_path, run_stt_server, tiny_en_model, word_error_rate,
};

fn stock_lib() -> PathBuf {
    required_path("WHISPER_STT_TEST_STOCK").join("lib")
}

fn init_stock() -> &'static whisper_safe::LoadInfo {
    static INFO: OnceLock<&'static whisper_safe::LoadInfo> = OnceLock::new();
    INFO.get_or_init(|| {
        whisper_safe::init_with(&LoaderConfig::new(stock_lib())).expect("load the stock build")
    })
}

#[test]
fn the_stock_build_is_told_from_a_patched_one() {
    let info = init_stock();
    assert_eq!(info.patch_series, None, "{info:?}");
    let fallbacks = whisper_safe::patches::fallbacks(info);
    assert!(fallbacks.len() >= 3, "{fallbacks:?}");
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(required_path("WHISPER_STT_TEST_STOCK").join("manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["patch_series"], serde_json::Value::Null);
    assert_eq!(manifest["patches"], serde_json::json!([]));

    let output = run_stt_server(&["info"], &[("WHISPER_LIB_DIR", &stock_lib())]);
    assert!(output.status.success(), "{output:?}");
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(printed["patch_series"], serde_json::Value::Null);
    assert_eq!(
        printed["fallbacks"].as_array().unwrap().len(),
        fallbacks.len()
    );
}

#[test]
fn segments_carry_no_no_speech_prob_and_the_words_hold() {
    init_stock();
    let base = Context::new(base_model(), &ContextOptions::default()).expect("load base");
    let mut state = base.create_state().unwrap();
    let params = Params::greedy().threads(2).language(Some("en"));
    let transcript = state
        .full(&params, &samples_of(&fixture("jfk.wav")))
        .expect("transcribe");
    let wer = word_error_rate(&reference("jfk.wav"), &transcript.text());
    assert!(wer <= 0.1, "WER {wer:.3} for {:?}", transcript.text());
    // The stock library reads a row it never wrote; the fallback reports 0.
    assert!(transcript.segments.iter().all(|s| s.no_speech_prob == 0.0));
}

#[test]
fn flash_attention_asked_for_is_off_so_a_window_reads_the_same_after_another() {
    // The 0006 check of patched_build.rs: without the mask, flash attention
    // read fr_test_fr.wav differently after jfk.wav on the same state.
    init_stock();
    patch_checks::assert_a_trimmed_window_reads_the_same_whatever_the_state_decoded_before();
}

#[test]
fn the_server_names_the_stock_build_in_its_log_and_metrics() {
    let model = tiny_en_model();
    let server = Server::start(&[
        ("WHISPER_LIB_DIR", path_str(&stock_lib())),
        ("WHISPER_MODEL_PATH", path_str(&model)),
    ]);
    let answer = server.post_form("/v1/audio/transcriptions", &Form::jfk());
    assert_eq!(answer.status, 200, "{}", answer.text());
    let log = server.log_text();
    assert!(log.contains("stock whisper.cpp libraries"), "{log}");
    assert_eq!(
        log.matches("without the patches: ").count(),
        1,
        "the fallbacks are named once: {log}"
    );
    let metrics = server.metrics();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("stt_build_info{"))
        .unwrap_or_else(|| panic!("no stt_build_info in {metrics}"));
    assert!(line.contains("patches=\"stock\""), "{line}");
    assert!(line.contains("whisper_cpp=\"1.8.3\""), "{line}");
    assert!(line.ends_with(" 1"), "{line}");
}
