//! What our whisper.cpp patches (vendor/patches) and the 4-bit weight types change,
//! on the suite's linked build with real models and real speech.
//!
//! - 0002: `no_speech_prob` comes from the start-of-transcript row. Measured with
//!   base q5_1 before the patch: 0.000001 on 10 s of silence (the row read was never
//!   written); after: 0.91 on silence, 0.06 on jfk.wav, and white noise is dropped
//!   as no speech. Bounds: speech < 0.2, silence and noise > 0.6 (whisper.cpp's own
//!   `no_speech_thold`).
//! - 0001: the prompt pass computes logits only for the rows it flags (with 0002:
//!   the start-of-transcript row and the last one, gathered with `ggml_get_rows`); a
//!   second 30 s window, whose prompt carries the first window's text, still gives
//!   the words (WER ≤ 0.1, jfk.wav's bound).
//! - 0003: a window whose encoder input equals the last one encoded on the state (a
//!   temperature fallback; the first window after a language detection) reuses the
//!   encoder output. Seen through the run's encoder time (encoder start to the first
//!   token): base on jfk.wav spends 0.5-1.4 s encoding and about 0.03 s when the
//!   output is reused; the bound, a quarter of the first run's, leaves a wide margin
//!   for a busy machine. Another clip or another encoder context is encoded afresh
//!   (its own words come out).
//! - 0004: a later window of a trimmed context encodes the audio left plus the
//!   margin. jfk.wav twice (22 s) in one window, and split by a token budget after
//!   the first jfk.wav into two: the second window's encoder time (the split run's
//!   less the whole run's, the fastest of three each) was 0.52 of the whole window's
//!   with the patch and 0.97 on the stock build; bound 0.75.
//! - 0005: on a CPU with AMX-INT8, ggml's AMX tiles take the q8_0 weights of every
//!   width and no q4_0 weight. Read from whisper.cpp's load log ("AMX total size"):
//!   base-q8_0 had 15 of its 83 MB there before the patch (only the 2,048-wide
//!   feed-forward projections), 55 MB after (all but the token embedding, which
//!   stays for `ggml_get_rows`); bound: more than half. base-q4_0 had 7 MB there
//!   before, whose products were 13-29 % off. On a CPU without AMX: none at all.
//! - 0006: with flash attention on, the padding rows of the keys and values are
//!   masked. Before, fr_test_fr.wav with base-q5_1 and a trimmed context read "des
//!   oeufs et forêts" on a fresh state and "de zos et forêt" right after jfk.wav;
//!   now both states give the same text (and the WER bound of the reuse test).
//! - 0010: the library names its series (`whisper_stt_patch_series`), the manifest
//!   lists the same series and each patch's sha256, and `stt-server info`, the
//!   server's log and `stt_build_info` say it; nothing falls back.
//! - `stt-server models quantize --type q4_0|iq4_nl` writes files whisper.cpp loads
//!   and transcribes with (tiny.en on jfk.wav: WER ≤ 0.2; 4-bit weights cost
//!   accuracy, the bound is twice the f16 bound of safe_api.rs).

use std::path::Path;
use whisper_safe::{AudioContext, Context, ContextOptions, Params, State, Transcript};
use whisper_stt_tests::patch_checks;
use whisper_stt_tests::server::{path_str, Server};
use whisper_stt_tests::speech::{samples_of, white_noise};
use whisper_stt_tests::{
    base_f16_model, base_model, base_q8_0_model, fixture, init_linked, linked_artifacts, reference,
    run_stt_server, tiny_en_f16_model, tiny_en_model, word_error_rate,
};

fn run(state: &mut State, samples: &[f32]) -> Transcript {
    state
        .full(&Params::greedy().threads(2).language(Some("en")), samples)
        .expect("transcribe")
}

fn no_speech_probs(transcript: &Transcript) -> Vec<f32> {
    transcript
        .segments
        .iter()
        .map(|s| s.no_speech_prob)
        .collect()
}

#[test]
fn no_speech_prob_is_high_on_silence_and_noise_and_low_on_speech() {
    init_linked();
    let base = Context::new(base_model(), &ContextOptions::default()).expect("load base");
    let mut state = base.create_state().unwrap();
    let silence = vec![0.0f32; 10 * 16_000];

    let jfk = run(&mut state, &samples_of(&fixture("jfk.wav")));
    let wer = word_error_rate(&reference("jfk.wav"), &jfk.text());
    assert!(wer <= 0.1, "jfk.wav: WER {wer:.3} for {:?}", jfk.text());
    let speech = no_speech_probs(&jfk);
    assert!(speech.iter().all(|&p| p < 0.2), "jfk.wav: {speech:?}");

    let quiet = run(&mut state, &silence);
    let silent = no_speech_probs(&quiet);
    assert!(!silent.is_empty(), "silence gave no segment to read");
    assert!(silent.iter().all(|&p| p > 0.6), "silence: {silent:?}");

    let hiss = run(&mut state, &white_noise(10.0, 0.1));
    let noisy = no_speech_probs(&hiss);
    assert!(
        noisy.iter().all(|&p| p > 0.6),
        "noise: {noisy:?} for {:?}",
        hiss.text()
    );

    // The same window gives the same value whatever ran before (the unpatched
    // build read whatever an earlier decoding step had left in that row).
    let again = no_speech_probs(&run(&mut state, &silence));
    assert!(
        (again[0] - silent[0]).abs() < 1e-3,
        "silence after noise: {again:?}, first time: {silent:?}"
    );
}

#[test]
fn a_second_window_prompted_with_the_first_keeps_the_words() {
    init_linked();
    let base = Context::new(base_model(), &ContextOptions::default()).expect("load base");
    let jfk = samples_of(&fixture("jfk.wav"));
    let gap = vec![0.0f32; 16_000];
    let samples: Vec<f32> = [&jfk, &gap, &jfk, &gap, &jfk]
        .into_iter()
        .flatten()
        .copied()
        .collect();
    assert!(samples.len() > 30 * 16_000, "needs two windows");
    let transcript = run(&mut base.create_state().unwrap(), &samples);
    let expected = vec![reference("jfk.wav"); 3].join(" ");
    let wer = word_error_rate(&expected, &transcript.text());
    assert!(wer <= 0.1, "WER {wer:.3} for {:?}", transcript.text());
}

#[test]
fn an_unchanged_window_reuses_the_encoder_output_and_a_changed_one_does_not() {
    init_linked();
    // Flash attention off, as the server runs (on, the CPU encoder is several
    // times slower).
    let options = ContextOptions {
        flash_attn: false,
        ..ContextOptions::default()
    };
    let base = Context::new(base_model(), &options).expect("load base");
    let mut state = base.create_state().unwrap();
    let jfk = samples_of(&fixture("jfk.wav"));
    let french = samples_of(&fixture("fr_test_fr.wav"));
    let english = Params::greedy()
        .threads(2)
        .language(Some("en"))
        .audio_context(AudioContext::Trimmed);
    let words = |transcript: &Transcript, name: &str, bound: f64| {
        let wer = word_error_rate(&reference(name), &transcript.text());
        assert!(
            wer <= bound,
            "{name}: WER {wer:.3} for {:?}",
            transcript.text()
        );
    };

    let first = state.full(&english, &jfk).expect("transcribe");
    words(&first, "jfk.wav", 0.1);
    let encoded = first.timings.encoder_seconds;

    // A fallback: the same window again, at a higher temperature.
    let fallback = state
        .full(&english.clone().temperature(0.4), &jfk)
        .expect("transcribe");
    words(&fallback, "jfk.wav", 0.2);
    let reused = fallback.timings.encoder_seconds;
    assert!(
        reused < encoded / 4.0,
        "the fallback spent {reused:.3} s in the encoder, the first run {encoded:.3} s"
    );

    // Other audio, then the same audio with another encoder context: both encoded.
    let other = state
        .full(&english.clone().language(Some("fr")), &french)
        .expect("transcribe");
    words(&other, "fr_test_fr.wav", 0.25);
    let full = state
        .full(&english.clone().audio_context(AudioContext::Full), &jfk)
        .expect("transcribe");
    words(&full, "jfk.wav", 0.1);
    assert!(
        full.timings.encoder_seconds >= reused * 4.0,
        "a full-context window after a trimmed one took {:.3} s to encode",
        full.timings.encoder_seconds
    );

    // Language detection encodes the first window as it is then decoded.
    let mut fresh = base.create_state().unwrap();
    let detected = fresh
        .full(&english.clone().language(None), &jfk)
        .expect("transcribe");
    assert_eq!(detected.language.as_deref(), Some("en"));
    words(&detected, "jfk.wav", 0.1);
    assert!(
        detected.timings.encoder_seconds < encoded / 4.0,
        "after detection the window spent {:.3} s in the encoder",
        detected.timings.encoder_seconds
    );
}

/// `stt-server models quantize` of the f16 model `input` to `quant`, written to `out`.
fn quantize(input: &Path, out: &Path, quant: &str) {
    let lib = linked_artifacts().join("lib");
    let args = [
        "models",
        "quantize",
        input.to_str().unwrap(),
        out.to_str().unwrap(),
        "--type",
        quant,
    ];
    let done = run_stt_server(&args, &[("WHISPER_LIB_DIR", &lib)]);
    assert!(
        done.status.success(),
        "{quant}: {}",
        String::from_utf8_lossy(&done.stderr)
    );
}

/// `stt-server transcribe` of jfk.wav with `model`: its log and the transcript.
fn transcribe_logged(model: &Path) -> (String, String) {
    let lib = linked_artifacts().join("lib");
    let jfk = fixture("jfk.wav");
    let args = ["transcribe", "--threads", "2", jfk.to_str().unwrap()];
    let env = [
        ("WHISPER_LIB_DIR", lib.as_path()),
        ("WHISPER_MODEL_PATH", model),
        ("RUST_LOG", Path::new("info")),
    ];
    let done = run_stt_server(&args, &env);
    let log = String::from_utf8_lossy(&done.stderr).into_owned();
    assert!(done.status.success(), "{}: {log}", model.display());
    (log, String::from_utf8_lossy(&done.stdout).into_owned())
}

/// Megabytes of weights whisper.cpp placed in the buffer type `name`, read from its
/// load log (`whisper_model_load: AMX total size = 14.94 MB`); 0 if none.
fn megabytes_in(log: &str, name: &str) -> f64 {
    let label = format!(" {name} total size =");
    log.lines()
        .find_map(|line| line.split_once(&label))
        .map_or(0.0, |(_, rest)| {
            rest.trim().trim_end_matches("MB").trim().parse().unwrap()
        })
}

#[test]
fn on_a_cpu_with_amx_the_tiles_take_q8_0_weights_of_any_width_and_no_q4_0_weight() {
    let dir = tempfile::tempdir().unwrap();
    let q4_0 = dir.path().join("ggml-base-q4_0.bin");
    quantize(&base_f16_model(), &q4_0, "q4_0");

    let amx = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap()
        .split_whitespace()
        .any(|flag| flag == "amx_int8");
    let (q8_0_log, q8_0_text) = transcribe_logged(&base_q8_0_model());
    let (q4_0_log, q4_0_text) = transcribe_logged(&q4_0);
    let q8_0_amx = megabytes_in(&q8_0_log, "AMX");
    let q8_0_cpu = megabytes_in(&q8_0_log, "CPU");
    let q4_0_amx = megabytes_in(&q4_0_log, "AMX");
    if amx {
        let share = q8_0_amx / (q8_0_amx + q8_0_cpu);
        assert!(
            share > 0.5,
            "{q8_0_amx} MB of base-q8_0 in AMX tiles, {q8_0_cpu} MB not"
        );
    } else {
        assert_eq!(q8_0_amx, 0.0, "AMX tiles on a CPU without amx_int8");
    }
    assert_eq!(q4_0_amx, 0.0, "q4_0 weights in AMX tiles");
    for (name, text, bound) in [("q8_0", q8_0_text, 0.1), ("q4_0", q4_0_text, 0.2)] {
        let wer = word_error_rate(&reference("jfk.wav"), &text);
        assert!(wer <= bound, "{name}: WER {wer:.3} for {text:?}");
    }
}

#[test]
fn with_flash_attention_a_trimmed_window_reads_the_same_whatever_the_state_decoded_before() {
    init_linked();
    patch_checks::assert_a_trimmed_window_reads_the_same_whatever_the_state_decoded_before();
}

#[test]
fn four_bit_types_quantize_load_and_transcribe() {
    init_linked();
    let dir = tempfile::tempdir().unwrap();
    let samples = samples_of(&fixture("jfk.wav"));
    for quant in ["q4_0", "iq4_nl"] {
        let out = dir.path().join(format!("ggml-tiny.en-{quant}.bin"));
        let input = tiny_en_f16_model();
        quantize(&input, &out, quant);
        let bytes = std::fs::metadata(&out).unwrap().len();
        let f16_bytes = std::fs::metadata(&input).unwrap().len();
        let ratio = bytes as f64 / f16_bytes as f64;
        assert!((0.25..=0.35).contains(&ratio), "{quant}: {ratio:.3}× f16");

        let context = Context::new(&out, &ContextOptions::default())
            .unwrap_or_else(|e| panic!("{quant}: {e}"));
        let text = run(&mut context.create_state().unwrap(), &samples).text();
        let wer = word_error_rate(&reference("jfk.wav"), &text);
        assert!(wer <= 0.2, "{quant}: WER {wer:.3} for {text:?}");
    }
}

#[test]
fn the_library_names_its_patch_series_as_the_manifest_does() {
    init_linked();
    let info = whisper_safe::loaded().expect("loaded");
    let series = info
        .patch_series
        .clone()
        .expect("a patched build names its series");
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(linked_artifacts().join("manifest.json")).expect("manifest"),
    )
    .unwrap();
    assert_eq!(manifest["patch_series"], series.as_str());
    let patches: Vec<std::path::PathBuf> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../vendor/patches"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
    let listed = manifest["patches"].as_array().expect("patches listed");
    assert_eq!(listed.len(), patches.len(), "{listed:?}");
    let numbers: Vec<&str> = series
        .split_whitespace()
        .nth(2)
        .unwrap()
        .split(',')
        .collect();
    assert_eq!(numbers.len(), patches.len(), "{series}");
    for number in [
        whisper_safe::patches::NO_SPEECH_PROB,
        whisper_safe::patches::TRIMMED_LATER_WINDOWS,
        whisper_safe::patches::FLASH_ATTENTION_MASK,
    ] {
        assert!(whisper_safe::patches::in_series(info, number), "{series}");
    }
    assert!(whisper_safe::patches::fallbacks(info).is_empty());

    let output = run_stt_server(
        &["info"],
        &[("WHISPER_LIB_DIR", &linked_artifacts().join("lib"))],
    );
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(printed["patch_series"], series.as_str());
    assert_eq!(printed["fallbacks"], serde_json::json!([]));

    let model = tiny_en_model();
    let server = Server::start(&[("WHISPER_MODEL_PATH", path_str(&model))]);
    let log = server.log_text();
    assert!(log.contains(&format!("patch series: {series}")), "{log}");
    assert!(!log.contains("without the patches"), "{log}");
    let metrics = server.metrics();
    assert!(
        metrics.contains(&format!("patches=\"{series}\"")),
        "{metrics}"
    );
}

#[test]
fn a_later_window_of_a_trimmed_context_encodes_only_the_audio_left() {
    init_linked();
    let options = ContextOptions {
        flash_attn: false,
        ..ContextOptions::default()
    };
    let base = Context::new(base_model(), &options).expect("load base");
    let jfk = samples_of(&fixture("jfk.wav"));
    let twice: Vec<f32> = jfk.iter().chain(&jfk).copied().collect();
    let trimmed = Params::greedy()
        .threads(2)
        .language(Some("en"))
        .audio_context(AudioContext::Trimmed);
    // A token budget that ends the first window after the first jfk.wav: the
    // second window starts at its last timestamp, on the audio left.
    let split = trimmed.clone().max_tokens(Some(30));
    let fastest = |params: &Params| {
        (0..3)
            .map(|_| {
                // A fresh state each time: 0003 would reuse an unchanged window.
                base.create_state()
                    .unwrap()
                    .full(params, &twice)
                    .expect("transcribe")
            })
            .min_by(|a, b| {
                a.timings
                    .encoder_seconds
                    .total_cmp(&b.timings.encoder_seconds)
            })
            .unwrap()
    };
    let one = fastest(&trimmed);
    let two = fastest(&split);
    assert_eq!((one.timings.windows, two.timings.windows), (1, 2));
    let expected = format!("{0} {0}", reference("jfk.wav"));
    let wer = word_error_rate(&expected, &two.text());
    assert!(wer <= 0.1, "WER {wer:.3} for {:?}", two.text());
    // The second window holds 11 s of 22 (plus the margin): about half the
    // first's encoder time with 0004 (measured 0.52), the whole of it without
    // (0.97 on the stock build).
    let second = two.timings.encoder_seconds - one.timings.encoder_seconds;
    let share = second / one.timings.encoder_seconds;
    assert!(
        share < 0.75,
        "the second window took {share:.2} of the first's encoder time \
         ({second:.3} s of {:.3} s)",
        one.timings.encoder_seconds
    );
}
