//! Long recordings through `stt-server serve` with tiny.en and the Silero VAD
//! model: pieces cut at speech with silence left out and times mapped back,
//! the cut at quiet moments without VAD, the fallback guard re-decoding a
//! window, one request's pieces spread over idle workers and over one
//! worker's threads, streamed in order, and `stt-server transcribe --live` printing segments as pieces finish.
//!
//! The recording (about 80 s) is built from jfk.wav, espeak-ng sentences
//! (one of them a passage of parallel clauses) and silences of 6–20 s, so
//! the time of every sentence and silence is known exactly. Bounds: WER 0.3
//! against the reference (tiny.en on espeak-ng's voice); no word inside a
//! silence of 5 s or more (0.5 s of margin at each edge for the VAD's
//! padding) and, after each such silence, a segment starting within 1 s of
//! the speech, with VAD (without it, whisper's own timestamps in long
//! silences are coarser).

use std::sync::OnceLock;

use serde_json::Value;
use whisper_stt_tests::server::{metric_value, path_str, Form, Server};
use whisper_stt_tests::speech::Recording;
use whisper_stt_tests::{
    linked_artifacts, required_path, run_stt_server, tiny_en_model, word_error_rate,
};

const MAX_WER: f64 = 0.3;
/// A silence this long must hold no words.
const SILENCE_SECONDS: f64 = 5.0;
/// What the VAD's padding and whisper's timestamps may take off each edge.
const EDGE_SECONDS: f64 = 0.5;
/// How far a sentence's first segment may start from the sentence.
const START_SECONDS: f64 = 1.0;

fn recording() -> &'static Recording {
    static RECORDING: OnceLock<Recording> = OnceLock::new();
    RECORDING.get_or_init(|| {
        Recording::default()
            .fixture("jfk.wav")
            .silence(12.0)
            .say("The quick brown fox jumps over the lazy dog near the river bank.")
            .silence(6.0)
            .say(
                "It was the best of times, it was the worst of times, it was the age of \
                 wisdom, it was the age of foolishness, it was the season of light, it was \
                 the season of darkness.",
            )
            .silence(20.0)
            .say("Every evening the old clock in the square rings for a long time.")
            .silence(1.0)
            .fixture("jfk.wav")
    })
}

fn vad_model() -> String {
    path_str(&required_path("WHISPER_STT_TEST_VAD_MODEL")).to_owned()
}

fn server(extra: &[(&str, &str)]) -> Server {
    let model = tiny_en_model();
    let vad = vad_model();
    let mut env = vec![
        ("WHISPER_MODEL_PATH", path_str(&model)),
        ("WHISPER_VAD_MODEL", vad.as_str()),
    ];
    env.extend_from_slice(extra);
    Server::start(&env)
}

/// Transcribes the recording as verbose JSON with word times.
fn transcribe(server: &Server, fields: &[(&str, &str)]) -> Value {
    let mut form = Form::file("long.wav", recording().wav())
        .field("model", "whisper-1")
        .field("response_format", "verbose_json")
        .field("timestamp_granularities[]", "segment")
        .field("timestamp_granularities[]", "word");
    for (name, value) in fields {
        form = form.field(name, value);
    }
    let response = server.post_form("/v1/audio/transcriptions", &form);
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()
}

fn segments(answer: &Value) -> &Vec<Value> {
    answer["segments"].as_array().expect("segments")
}

fn seconds(value: &Value) -> f64 {
    value.as_f64().expect("a time in seconds")
}

fn assert_words_match(answer: &Value, what: &str) {
    let text = answer["text"].as_str().expect("text");
    let wer = word_error_rate(&recording().reference(), text);
    assert!(wer <= MAX_WER, "{what}: WER {wer:.3} > {MAX_WER}: {text:?}");
}

/// Segments in order, inside the audio, none starting before the previous one.
fn assert_times_in_order(answer: &Value) {
    let duration = recording().samples.len() as f64 / 16_000.0;
    let mut previous = 0.0;
    for segment in segments(answer) {
        let (start, end) = (seconds(&segment["start"]), seconds(&segment["end"]));
        assert!(
            start >= previous - 0.01 && start <= end && end <= duration + 0.01,
            "{segment}"
        );
        previous = start;
    }
}

fn assert_no_words_in_silence(answer: &Value) {
    let words = answer["words"].as_array().expect("words");
    assert!(!words.is_empty());
    for silence in recording().silences(SILENCE_SECONDS) {
        let inside = silence.start + EDGE_SECONDS..silence.end - EDGE_SECONDS;
        for word in words {
            let middle = (seconds(&word["start"]) + seconds(&word["end"])) / 2.0;
            assert!(
                !inside.contains(&middle),
                "word {word} inside the silence {:.1}..{:.1} s",
                silence.start,
                silence.end
            );
        }
    }
}

/// Speech after a long silence (or at the start) begins a segment on time.
fn assert_sentences_start_on_time(answer: &Value) {
    let starts: Vec<f64> = segments(answer)
        .iter()
        .map(|s| seconds(&s["start"]))
        .collect();
    let parts = &recording().parts;
    let after_silence = parts.iter().enumerate().filter(|(i, p)| {
        p.text.is_some()
            && (*i == 0
                || parts[i - 1].text.is_none()
                    && parts[i - 1].end - parts[i - 1].start >= SILENCE_SECONDS)
    });
    for (_, part) in after_silence {
        let nearest = starts
            .iter()
            .map(|s| (s - part.start).abs())
            .fold(f64::INFINITY, f64::min);
        assert!(
            nearest <= START_SECONDS,
            "no segment starts within {START_SECONDS} s of {:.2} s ({:?}): {starts:?}",
            part.start,
            part.text
        );
    }
}

/// The number of pieces the last request's log line reports.
fn pieces_logged(log: &str) -> usize {
    let line = log
        .lines()
        .rfind(|l| l.contains(" piece(s) of "))
        .expect("a transcription log line");
    let before = &line[..line.find(" piece(s) of ").unwrap()];
    before
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a piece count")
}

fn metric(server: &Server, name: &str) -> f64 {
    metric_value(&server.metrics(), name).unwrap_or(0.0)
}

#[test]
fn vad_pieces_leave_silence_out_and_keep_the_recordings_times() {
    let server = server(&[]);
    // Longer than 30 s: VAD is on by default.
    let answer = transcribe(&server, &[]);
    assert_words_match(&answer, "VAD by default");
    assert_times_in_order(&answer);
    assert_no_words_in_silence(&answer);
    assert_sentences_start_on_time(&answer);
    let log = server.log_text();
    assert!(log.contains(" of speech on "), "{log}");
    let stage = metric(&server, "stt_stage_seconds_total{stage=\"vad\"}");
    assert!(stage > 0.0, "VAD time is counted");
}

#[test]
fn without_vad_the_audio_is_cut_at_quiet_moments() {
    let server = server(&[]);
    let answer = transcribe(&server, &[("vad_filter", "false")]);
    assert_words_match(&answer, "no VAD");
    assert_times_in_order(&answer);
    // About 80 s of audio: at least three pieces of at most 30 s, no VAD.
    let log = server.log_text();
    let pieces = pieces_logged(&log);
    assert!(pieces >= 3, "{log}");
    assert!(!log.contains("of speech on"), "{log}");
}

#[test]
fn a_window_that_fails_the_guard_is_decoded_again_at_each_temperature() {
    let server = server(&[]);
    let fallbacks = || metric(&server, "stt_windows_total{result=\"fallback\"}");
    let transcribe_jfk = |field: &str, value: &str| {
        let form = Form::jfk().field("model", "whisper-1").field(field, value);
        let response = server.post_form("/v1/audio/transcriptions", &form);
        assert_eq!(response.status, 200, "{}", response.text());
        let text = response.json()["text"].as_str().unwrap().to_owned();
        let wer = word_error_rate(&whisper_stt_tests::reference("jfk.wav"), &text);
        assert!(wer <= 0.2, "{field}={value}: WER {wer:.3}: {text:?}");
    };
    // A log-probability threshold no text can pass: every temperature is
    // tried, and the most probable attempt is kept.
    transcribe_jfk("log_prob_threshold", "0");
    assert_eq!(fallbacks(), 5.0);
    assert!(server.log_text().contains("5 fallback(s)"));
    // A compression threshold no text can pass, with probable text: a higher
    // temperature soon gives jfk's words again (a sample at 0.2 almost always
    // does), and the attempt it confirms is kept before the ladder's end.
    transcribe_jfk("compression_ratio_threshold", "0.1");
    let confirmed = fallbacks() - 5.0;
    assert!((1.0..5.0).contains(&confirmed), "{confirmed} fallbacks");
    // The default thresholds let jfk through at temperature 0.
    let before = fallbacks();
    transcribe_jfk("language", "en");
    assert_eq!(fallbacks(), before);
}

/// Transcribes the recording (language given, so every piece can start at
/// once) and checks words, times and silences, and that two decoding states
/// worked on it.
fn assert_decoded_well_on_two_states(server: &Server, what: &str) {
    let answer = transcribe(server, &[("language", "en")]);
    assert_words_match(&answer, what);
    assert_times_in_order(&answer);
    assert_no_words_in_silence(&answer);
    assert_sentences_start_on_time(&answer);
    let log = server.log_text();
    assert!(log.contains("on 2 state(s)"), "{log}");
    let le_1 = metric(server, "stt_decoding_states_bucket{le=\"1\"}");
    let le_2 = metric(server, "stt_decoding_states_bucket{le=\"2\"}");
    assert_eq!((le_1, le_2), (0.0, 1.0), "{}", server.metrics());
}

#[test]
fn pieces_spread_over_idle_workers_and_stream_in_order() {
    let server = server(&[("STT_WORKERS", "2"), ("STT_THREADS_PER_WORKER", "1")]);
    assert_decoded_well_on_two_states(&server, "two workers");

    let form = Form::file("long.wav", recording().wav())
        .field("model", "whisper-1")
        .field("language", "en")
        .field("stream", "true");
    let response = server.post_form("/v1/audio/transcriptions", &form);
    assert_eq!(response.status, 200, "{}", response.text());
    let events: Vec<Value> = response
        .text()
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).expect("event JSON"))
        .collect();
    let deltas: String = events
        .iter()
        .filter(|e| e["type"] == "transcript.text.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    let done = events
        .iter()
        .find(|e| e["type"] == "transcript.text.done")
        .expect("a done event");
    assert_eq!(deltas.trim(), done["text"].as_str().unwrap().trim());
    let wer = word_error_rate(&recording().reference(), &deltas);
    assert!(wer <= MAX_WER, "streamed: WER {wer:.3}: {deltas:?}");
}

#[test]
fn a_worker_decodes_pieces_side_by_side_on_its_threads() {
    // One worker with two threads: two pieces at once, one thread each (the
    // default one thread per piece), on its own state and a spare one.
    let lanes = server(&[("STT_WORKERS", "1"), ("STT_THREADS_PER_WORKER", "2")]);
    assert_decoded_well_on_two_states(&lanes, "two lanes of one worker");

    // Two threads per piece: one piece at a time on the worker's state.
    let one_lane = server(&[
        ("STT_WORKERS", "1"),
        ("STT_THREADS_PER_WORKER", "2"),
        ("STT_THREADS_PER_PIECE", "2"),
    ]);
    let answer = transcribe(&one_lane, &[("language", "en")]);
    assert_words_match(&answer, "one lane");
    let log = one_lane.log_text();
    assert!(log.contains("on 1 state(s)"), "{log}");
}

#[test]
fn silence_alone_gives_no_text() {
    let server = server(&[]);
    let silent = Recording::default().silence(40.0);
    let form = Form::file("silence.wav", silent.wav()).field("model", "whisper-1");
    let response = server.post_form("/v1/audio/transcriptions", &form);
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["text"], "");
}

#[test]
fn vad_without_a_model_is_a_clear_400() {
    let model = tiny_en_model();
    let server = Server::start(&[
        ("WHISPER_MODEL_PATH", path_str(&model)),
        ("WHISPER_VAD_MODEL", "off"),
    ]);
    let form = Form::jfk()
        .field("model", "whisper-1")
        .field("vad_filter", "true");
    let response = server.post_form("/v1/audio/transcriptions", &form);
    response.assert_error(400, "invalid_parameter");
    // Without the field, long audio is cut at quiet moments instead.
    let form = Form::file("long.wav", recording().wav()).field("model", "whisper-1");
    let response = server.post_form("/v1/audio/transcriptions", &form);
    assert_eq!(response.status, 200, "{}", response.text());
}

#[test]
fn the_cli_prints_segments_as_each_piece_is_decoded() {
    let dir = tempfile::tempdir().unwrap();
    let audio = dir.path().join("long.wav");
    std::fs::write(&audio, recording().wav()).unwrap();
    let model = tiny_en_model();
    let vad = required_path("WHISPER_STT_TEST_VAD_MODEL");
    let lib_dir = linked_artifacts().join("lib");
    let output = run_stt_server(
        &[
            "transcribe",
            path_str(&audio),
            "--threads",
            "2",
            "--live",
            "--progress",
            "true",
        ],
        &[
            ("WHISPER_LIB_DIR", &lib_dir),
            ("WHISPER_MODEL_PATH", &model),
            ("WHISPER_VAD_MODEL", &vad),
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let live: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with('[') && l.contains(" --> "))
        .collect();
    assert!(live.len() >= 3, "{stderr}");
    let live_text: Vec<&str> = live
        .iter()
        .map(|l| l.split_once("] ").expect("a timed line").1)
        .collect();
    let wer = word_error_rate(&recording().reference(), &live_text.join(" "));
    assert!(wer <= MAX_WER, "live lines: WER {wer:.3}: {live_text:?}");
    let final_wer = word_error_rate(&recording().reference(), &stdout);
    assert!(final_wer <= MAX_WER, "stdout: WER {final_wer:.3}: {stdout}");
}

#[test]
fn a_piece_of_almost_thirty_seconds_is_decoded_with_the_full_context() {
    let server = server(&[]);
    // 29.5 s: a trimmed context (frames + 100 of margin) would pass 1500.
    let audio = Recording::default()
        .fixture("jfk.wav")
        .silence(3.0)
        .fixture("jfk.wav")
        .silence(4.5);
    assert!((audio.samples.len() as f64 / 16_000.0 - 29.5).abs() < 0.01);
    for vad in ["true", "false"] {
        let form = Form::file("almost30.wav", audio.wav())
            .field("model", "whisper-1")
            .field("vad_filter", vad);
        let response = server.post_form("/v1/audio/transcriptions", &form);
        assert_eq!(response.status, 200, "vad {vad}: {}", response.text());
        let text = response.json()["text"].as_str().unwrap().to_owned();
        let wer = word_error_rate(&audio.reference(), &text);
        assert!(wer <= MAX_WER, "vad {vad}: WER {wer:.3}: {text:?}");
    }
}
