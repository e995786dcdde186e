//! `stt-server serve` over real HTTP, with the real libraries and models: each
//! test spawns the binary on a free port of 127.0.0.1 and talks to it with a
//! small HTTP/1.1 client over `TcpStream` (so it can also disconnect, lie
//! about lengths, and stop mid-body). Transcripts are checked by word error
//! rate against the fixtures' references (bound 0.1), never as exact strings.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use whisper_stt_tests::http::has_head;
use whisper_stt_tests::server::{
    exchange, long_jfk, metric_value, parse_response, path_str, read, request_head, Form, Response,
    Server, START_LIMIT,
};
use whisper_stt_tests::{
    base_model, fixture, linked_artifacts, reference, stt_server_bin, tiny_en_f16_model,
    tiny_en_model, tiny_en_q8_0_model, word_error_rate,
};

/// Bound on the normalized word error rate of every transcript of jfk.
const MAX_WER: f64 = 0.1;

fn assert_jfk(text: &str, what: &str) {
    let wer = word_error_rate(&reference("jfk.wav"), text);
    assert!(wer <= MAX_WER, "{what}: WER {wer:.3} > {MAX_WER}: {text:?}");
}

/// The text of SRT or VTT subtitles: cue lines only.
fn subtitle_text(subtitles: &str) -> String {
    subtitles
        .lines()
        .filter(|l| {
            let l = l.trim();
            !l.is_empty() && l != "WEBVTT" && !l.contains("-->") && l.parse::<u32>().is_err()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

// ------------------------------------------------------------------ tests

#[test]
fn every_endpoint_and_format_on_jfk() {
    let model = tiny_en_model();
    let server = Server::start(&[("WHISPER_MODEL_PATH", path_str(&model))]);
    let transcribe = |fields: &[(&str, &str)]| {
        let form = fields
            .iter()
            .fold(Form::jfk(), |form, (n, v)| form.field(n, v));
        let response = server.post_form("/v1/audio/transcriptions", &form);
        assert_eq!(response.status, 200, "{fields:?}: {}", response.text());
        response
    };

    let json = transcribe(&[("model", "whisper-1")]);
    assert!(json
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    assert_jfk(json.json()["text"].as_str().unwrap(), "json");
    assert!(json.header("x-request-id").is_some_and(|id| !id.is_empty()));

    let text = transcribe(&[("response_format", "text"), ("model", "tiny.en-q5_1")]);
    assert!(text
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    assert_jfk(&text.text(), "text");

    for format in ["srt", "vtt"] {
        let subtitles = transcribe(&[("response_format", format)]).text();
        assert!(subtitles.contains("-->"), "{format}: {subtitles}");
        assert_eq!(
            format == "vtt",
            subtitles.starts_with("WEBVTT"),
            "{subtitles}"
        );
        assert_jfk(&subtitle_text(&subtitles), format);
    }

    let verbose = transcribe(&[
        ("response_format", "verbose_json"),
        ("timestamp_granularities[]", "word"),
        ("timestamp_granularities[]", "segment"),
    ])
    .json();
    assert_eq!(verbose["task"], "transcribe");
    assert_eq!(verbose["language"], "english");
    assert!(
        (verbose["duration"].as_f64().unwrap() - 11.0).abs() < 0.1,
        "{verbose}"
    );
    assert_jfk(verbose["text"].as_str().unwrap(), "verbose_json");
    let segments = verbose["segments"].as_array().expect("segments");
    let joined: String = segments
        .iter()
        .map(|s| s["text"].as_str().unwrap())
        .collect();
    assert_jfk(&joined, "segments");
    for key in stt_server::server::formats::VERBOSE_SEGMENT_FIELDS {
        assert!(
            segments[0].get(key).is_some(),
            "segment lacks {key}: {}",
            segments[0]
        );
    }
    let words = verbose["words"].as_array().expect("words");
    let word_text: Vec<&str> = words.iter().map(|w| w["word"].as_str().unwrap()).collect();
    assert_jfk(&word_text.join(" "), "words");
    assert!(words
        .windows(2)
        .all(|w| w[0]["start"].as_f64() <= w[1]["start"].as_f64()));

    let words_only = transcribe(&[
        ("response_format", "verbose_json"),
        ("timestamp_granularities[]", "word"),
    ])
    .json();
    assert!(words_only.get("segments").is_none() && words_only["words"].is_array());
    server
        .post_form(
            "/v1/audio/transcriptions",
            &Form::jfk().field("timestamp_granularities[]", "word"),
        )
        .assert_error(400, "invalid_parameter");

    // MP3 gives the same words.
    let mp3 = server.post_form(
        "/v1/audio/transcriptions",
        &Form::file("jfk.mp3", read(&fixture("jfk.mp3"))),
    );
    assert_jfk(mp3.json()["text"].as_str().unwrap(), "mp3");

    // Streaming: deltas, then done.
    let sse = transcribe(&[("stream", "true")]);
    assert_eq!(sse.header("content-type"), Some("text/event-stream"));
    let events: Vec<Value> = sse
        .text()
        .split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| serde_json::from_str(e.trim().strip_prefix("data: ").unwrap()).unwrap())
        .collect();
    let (done, deltas) = events.split_last().expect("events");
    assert_eq!(done["type"], "transcript.text.done");
    assert!(!deltas.is_empty() && deltas.iter().all(|e| e["type"] == "transcript.text.delta"));
    let streamed: String = deltas
        .iter()
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_jfk(&streamed, "stream deltas");
    assert_jfk(done["text"].as_str().unwrap(), "stream done");

    // whisper.cpp server compatibility.
    let inference = server.post_form(
        "/inference",
        &Form::jfk()
            .field("response_format", "text")
            .field("temperature", "0.0"),
    );
    assert_eq!(inference.status, 200, "{}", inference.text());
    assert_jfk(&inference.text(), "/inference");
    // An offset inside the 11 s clip decodes the rest; one past its end is a
    // clear 400, not an empty 200.
    let rest = server.post_form(
        "/inference",
        &Form::jfk()
            .field("response_format", "text")
            .field("offset_t", "5000"),
    );
    assert_eq!(rest.status, 200, "{}", rest.text());
    assert!(
        rest.text().to_lowercase().contains("country"),
        "{}",
        rest.text()
    );
    server
        .post_form("/inference", &Form::jfk().field("offset_t", "11500"))
        .assert_error(400, "invalid_parameter");

    // English-only model: no translation.
    server
        .post_form("/v1/audio/translations", &Form::jfk())
        .assert_error(400, "invalid_parameter");

    // Models.
    let models = server.get("/v1/models").json();
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["id"], "tiny.en-q5_1");
    assert_eq!(models["data"][0]["loaded"], true);
    assert_eq!(
        server.get("/v1/models/whisper-1").json()["id"],
        "tiny.en-q5_1"
    );
    server
        .get("/v1/models/large-v3")
        .assert_error(404, "model_not_found");
    server
        .post_form(
            "/v1/audio/transcriptions",
            &Form::jfk().field("model", "base"),
        )
        .assert_error(404, "model_not_found");

    // Metrics saw all of it.
    let metrics = server.metrics();
    assert!(
        metrics.contains(r#"stt_http_requests_total{method="POST",route="/v1/audio/transcriptions",status="200"}"#),
        "{metrics}"
    );
    assert!(
        metric_value(&metrics, "stt_audio_seconds_total").unwrap() > 80.0,
        "{metrics}"
    );
    assert!(metric_value(&metrics, "stt_real_time_factor_count").unwrap() >= 9.0);
    assert!(metric_value(&metrics, "stt_model_load_seconds").unwrap() > 0.0);
    assert_eq!(metric_value(&metrics, "stt_workers_busy"), Some(0.0));
}

#[test]
fn translations_endpoint_with_a_multilingual_model() {
    let model = base_model();
    let server = Server::start(&[("WHISPER_MODEL_PATH", path_str(&model))]);
    // English speech translated to English is its transcript.
    let verbose = server.post_form(
        "/v1/audio/translations",
        &Form::jfk().field("response_format", "verbose_json"),
    );
    assert_eq!(verbose.status, 200, "{}", verbose.text());
    let verbose = verbose.json();
    assert_eq!(verbose["task"], "translate");
    assert_jfk(verbose["text"].as_str().unwrap(), "translation");
    let detected = server.post_form(
        "/v1/audio/transcriptions",
        &Form::jfk().field("response_format", "verbose_json"),
    );
    assert_eq!(detected.json()["language"], "english", "detected language");
    let unknown = server.post_form(
        "/v1/audio/transcriptions",
        &Form::jfk().field("language", "xx"),
    );
    unknown.assert_error(400, "invalid_parameter");
}

#[test]
fn two_workers_serve_two_requests_in_parallel() {
    let model = tiny_en_model();
    let server = Server::start(&[
        ("WHISPER_MODEL_PATH", path_str(&model)),
        ("STT_WORKERS", "2"),
        ("STT_THREADS_PER_WORKER", "1"),
    ]);
    let texts: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| server.post_form("/v1/audio/transcriptions", &Form::jfk())))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                let response = h.join().expect("client thread");
                assert_eq!(response.status, 200, "{}", response.text());
                response.json()["text"].as_str().unwrap().to_owned()
            })
            .collect()
    });
    for text in &texts {
        assert_jfk(text, "parallel request");
    }
    // Neither waited for a worker: the total queue wait is a small part of one run.
    let metrics = server.metrics();
    let waited = metric_value(&metrics, "stt_queue_wait_seconds_sum").unwrap();
    let processing = metric_value(&metrics, "stt_processing_seconds_total").unwrap();
    assert!(
        waited < 0.25 * processing / 2.0,
        "requests queued {waited:.3} s against {processing:.3} s of processing"
    );
}

#[test]
fn a_full_queue_answers_429_and_the_server_recovers() {
    let model = tiny_en_model();
    let server = Server::start(&[
        ("WHISPER_MODEL_PATH", path_str(&model)),
        ("STT_WORKERS", "1"),
        ("STT_QUEUE_LIMIT", "0"),
    ]);
    let long = Form::file("long.wav", long_jfk(3));
    std::thread::scope(|scope| {
        let busy = scope.spawn(|| server.post_form("/v1/audio/transcriptions", &long));
        server.wait_metric("stt_workers_busy", 1.0);
        let refused = server.post_form("/v1/audio/transcriptions", &Form::jfk());
        refused.assert_error(429, "queue_full");
        let retry: u64 = refused
            .header("retry-after")
            .expect("Retry-After")
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry), "Retry-After {retry}");
        assert_eq!(server.get("/health").status, 200);
        let long = busy.join().expect("client");
        assert_eq!(long.status, 200, "{}", long.text());
    });
    let after = server.post_form("/v1/audio/transcriptions", &Form::jfk());
    assert_eq!(after.status, 200, "{}", after.text());
    assert_jfk(after.json()["text"].as_str().unwrap(), "after 429");
    assert_eq!(
        metric_value(&server.metrics(), "stt_queue_rejections_total"),
        Some(1.0)
    );
}

/// Opens a connection and sends a whole transcription request without reading.
fn send_and_hold(port: u16, form: &Form) -> TcpStream {
    let body = form.body();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let head = request_head(
        "POST",
        "/v1/audio/transcriptions",
        &[("Content-Type", &form.content_type())],
        body.len(),
    );
    stream.write_all(&head).expect("write head");
    stream.write_all(&body).expect("write body");
    stream
}

#[test]
fn a_disconnecting_client_frees_its_worker_and_its_queue_place() {
    let model = tiny_en_model();
    let server = Server::start(&[
        ("WHISPER_MODEL_PATH", path_str(&model)),
        ("STT_WORKERS", "1"),
        ("STT_QUEUE_LIMIT", "1"),
    ]);
    let long = Form::file("long.wav", long_jfk(20));
    let running = send_and_hold(server.port, &long);
    server.wait_metric("stt_workers_busy", 1.0);
    let queued = send_and_hold(server.port, &long);
    server.wait_metric("stt_queue_depth", 1.0);

    queued.shutdown(Shutdown::Both).expect("close");
    drop(queued);
    server.wait_metric("stt_queue_depth", 0.0);
    running.shutdown(Shutdown::Both).expect("close");
    drop(running);
    server.wait_metric("stt_workers_busy", 0.0);
    let metrics = server.metrics();
    assert!(
        metrics.contains(r#"stt_jobs_total{outcome="cancelled"} 1"#),
        "the running job was cancelled, not finished:\n{metrics}"
    );

    let next = server.post_form("/v1/audio/transcriptions", &Form::jfk());
    assert_eq!(next.status, 200, "{}", next.text());
    assert_jfk(next.json()["text"].as_str().unwrap(), "after disconnects");
}

#[test]
fn a_model_switch_under_continuous_requests_loses_none() {
    let artifacts = tempfile::tempdir().expect("temp dir");
    let folder = artifacts.path().join("whisper_tiny.en_xeon");
    std::fs::create_dir_all(&folder).unwrap();
    std::os::unix::fs::symlink(tiny_en_model(), folder.join("ggml-tiny.en-q5_1.bin")).unwrap();
    std::os::unix::fs::symlink(tiny_en_f16_model(), folder.join("ggml-tiny.en.bin")).unwrap();
    let server = Server::start(&[
        ("WHISPER_ARTIFACTS_DIR", path_str(artifacts.path())),
        ("WHISPER_MODEL_SIZE", "tiny.en"),
        ("WHISPER_MODEL_QUANT", "q5_1"),
        ("STT_WORKERS", "2"),
        ("STT_THREADS_PER_WORKER", "1"),
        ("STT_QUEUE_LIMIT", "8"),
    ]);
    let listed: Vec<Value> = server.get("/v1/models").json()["data"]
        .as_array()
        .unwrap()
        .clone();
    let ids: Vec<&str> = listed.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["tiny.en-q5_1", "tiny.en-f16"]);

    let stop = AtomicBool::new(false);
    let responses = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                while !stop.load(Ordering::SeqCst) {
                    let response = server.post_form("/v1/audio/transcriptions", &Form::jfk());
                    responses.lock().unwrap().push(response);
                }
            });
        }
        // A failed assertion below must end the request loops, or the scope never returns.
        let _stop_on_exit = SetOnDrop(&stop);
        let count = || responses.lock().unwrap().len();
        let wait_for = |n: usize| {
            let started = Instant::now();
            while count() < n {
                assert!(
                    started.elapsed() < Duration::from_secs(120),
                    "requests stalled"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        wait_for(2);
        let switched = server.post("/v1/models/tiny.en-f16/load", "text/plain", b"");
        assert_eq!(switched.status, 200, "{}", switched.text());
        assert_eq!(switched.json()["id"], "tiny.en-f16");
        wait_for(count() + 3);
        let back = server.post("/v1/models/tiny.en-q5_1/load", "text/plain", b"");
        assert_eq!(back.status, 200, "{}", back.text());
        assert_eq!(back.json()["id"], "tiny.en-q5_1");
        wait_for(count() + 3);
    });
    let responses = responses.into_inner().unwrap();
    assert!(responses.len() >= 8, "{} requests", responses.len());
    for response in &responses {
        assert_eq!(
            response.status,
            200,
            "a request was lost: {}",
            response.text()
        );
        assert_jfk(response.json()["text"].as_str().unwrap(), "during switches");
    }
    let metrics = server.metrics();
    assert!(
        metrics.contains(r#"stt_model_switches_total{result="ok"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"stt_model_loaded{model="tiny.en-q5_1"} 1"#),
        "{metrics}"
    );
    assert_eq!(server.get("/ready").json()["model"], "tiny.en-q5_1");
    // A model that is not on disk cannot be loaded, and nothing changes.
    let absent = server.post("/v1/models/base/load", "text/plain", b"");
    absent.assert_error(404, "model_not_found");
    assert!(absent.text().contains("size base"), "{}", absent.text());
    server
        .post("/v1/models/tiny.en-q8_0/load", "text/plain", b"")
        .assert_error(404, "model_not_found");
    // The bare size of the serving model means the serving model.
    let bare = server.post("/v1/models/tiny.en/load", "text/plain", b"");
    assert_eq!(bare.status, 200, "{}", bare.text());
    assert_eq!(bare.json()["id"], "tiny.en-q5_1");
    assert_eq!(server.get("/ready").json()["model"], "tiny.en-q5_1");
}

/// An artifact directory holding tiny.en in the given weight types (symlinks to
/// the test models).
fn artifacts_with(quants: &[&str]) -> tempfile::TempDir {
    let artifacts = tempfile::tempdir().expect("temp dir");
    let folder = artifacts.path().join("whisper_tiny.en_xeon");
    std::fs::create_dir_all(&folder).unwrap();
    for &quant in quants {
        let model = match quant {
            "q5_1" => tiny_en_model(),
            "q8_0" => tiny_en_q8_0_model(),
            other => panic!("no test model of type {other}"),
        };
        let link = folder.join(format!("ggml-tiny.en-{quant}.bin"));
        std::os::unix::fs::symlink(model, link).unwrap();
    }
    artifacts
}

#[test]
fn a_bare_size_serves_the_file_already_present() {
    // (files present, WHISPER_MODEL_QUANT, model served or None when nothing loads)
    let cases: [(&[&str], Option<&str>, Option<&str>); 5] = [
        (&["q5_1"], None, Some("tiny.en-q5_1")),
        (&["q8_0"], None, Some("tiny.en-q8_0")),
        (&["q5_1", "q8_0"], None, Some("tiny.en-q8_0")),
        (&["q5_1", "q8_0"], Some("q5_1"), Some("tiny.en-q5_1")),
        // A named type is obeyed even when another is present; the server does not
        // fetch (the entrypoint does), so nothing loads and /ready says so.
        (&["q5_1"], Some("q8_0"), None),
    ];
    for (present, quant, served) in cases {
        let artifacts = artifacts_with(present);
        let mut env = vec![
            ("WHISPER_ARTIFACTS_DIR", path_str(artifacts.path())),
            ("WHISPER_MODEL_SIZE", "tiny.en"),
        ];
        env.extend(quant.map(|q| ("WHISPER_MODEL_QUANT", q)));
        let case = format!("{present:?} with WHISPER_MODEL_QUANT={quant:?}");
        match served {
            Some(id) => {
                let server = Server::start(&env);
                assert_eq!(server.get("/ready").json()["model"], id, "{case}");
                let log = server.log_text();
                let why = if quant.is_some() {
                    "weight type named"
                } else {
                    "the first file of size tiny.en present"
                };
                assert!(
                    log.lines()
                        .any(|l| l.contains(&format!("serving model {id}")) && l.contains(why)),
                    "{case}: no log line saying which model and why:\n{log}"
                );
                let bare = server.post("/v1/models/tiny.en/load", "text/plain", b"");
                assert_eq!(bare.json()["id"], id, "{case}: {}", bare.text());
            }
            None => {
                let server = Server::spawn(&env);
                let missing = "ggml-tiny.en-q8_0.bin";
                let started = Instant::now();
                while !server.log_text().contains(missing) {
                    assert!(
                        started.elapsed() < START_LIMIT,
                        "{case}: the log never named {missing}:\n{}",
                        server.log_text()
                    );
                    std::thread::sleep(Duration::from_millis(20));
                }
                assert_eq!(server.get("/ready").status, 503, "{case}");
            }
        }
    }
}

/// Sets its flag when dropped.
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn sigterm_drains_requests_in_flight_and_exits_zero() {
    let model = tiny_en_model();
    // A generous grace period: the point is that the request in flight finishes.
    let mut server = Server::start(&[
        ("WHISPER_MODEL_PATH", path_str(&model)),
        ("STT_WORKERS", "1"),
        ("STT_SHUTDOWN_TIMEOUT_SECONDS", "300"),
    ]);
    let response = std::thread::scope(|scope| {
        let in_flight = scope.spawn(|| server.post_form("/v1/audio/transcriptions", &Form::jfk()));
        server.wait_metric("stt_workers_busy", 1.0);
        server.signal("TERM");
        in_flight.join().expect("client")
    });
    assert_eq!(response.status, 200, "{}", response.text());
    assert_jfk(
        response.json()["text"].as_str().unwrap(),
        "request in flight at SIGTERM",
    );
    let status = server.wait_exit(Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "exit status {status}");
    assert!(
        TcpStream::connect(("127.0.0.1", server.port)).is_err(),
        "the port is closed after shutdown"
    );
}

#[test]
fn sigterm_during_the_model_load_exits_zero() {
    // base with two states and their warm-up runs: loading takes long enough
    // for /ready to report it. The load cannot be interrupted inside whisper.cpp;
    // the server lets it finish, then stops.
    let base = base_model();
    let mut server = Server::spawn(&[
        ("WHISPER_MODEL_PATH", path_str(&base)),
        ("STT_WORKERS", "2"),
        ("STT_THREADS_PER_WORKER", "1"),
    ]);
    let started = Instant::now();
    loop {
        if let Ok(ready) = server.try_get("/ready") {
            assert_eq!(ready.status, 503, "ready before SIGTERM: {}", ready.text());
            let message = ready.json()["error"]["message"].to_string();
            if message.contains("is loading") {
                break;
            }
        }
        assert!(
            started.elapsed() < START_LIMIT,
            "/ready never reported a load in progress:\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(60));
    let log = server.log_text();
    assert_eq!(status.code(), Some(0), "exit status {status}:\n{log}");
    let order = [
        "SIGTERM received",
        "serving model base-q5_1",
        "server] stopped",
    ]
    .map(|line| {
        log.find(line)
            .unwrap_or_else(|| panic!("no {line:?} in:\n{log}"))
    });
    assert!(
        order.is_sorted(),
        "the load finishes after SIGTERM, then the server stops:\n{log}"
    );
}

#[test]
fn bad_inputs_get_documented_4xx_and_health_stays_up() {
    let model = tiny_en_model();
    let server = Server::start(&[
        ("WHISPER_MODEL_PATH", path_str(&model)),
        ("STT_MAX_UPLOAD_BYTES", "1M"),
    ]);
    let jfk = read(&fixture("jfk.wav"));
    let mut random = vec![0u8; 64 * 1024];
    let mut seed = 0x9e37_79b9u32;
    for b in &mut random {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        *b = seed as u8;
    }
    let png: Vec<u8> = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10\x08\x02\0\0\0\x90\x91h6"
        .iter()
        .copied()
        .chain(std::iter::repeat_n(0u8, 512))
        .collect();
    let check = |what: &str, response: Response, status: &[u16]| {
        assert!(
            status.contains(&response.status),
            "{what}: {} {}",
            response.status,
            response.text()
        );
        let code = response.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(!code.is_empty(), "{what}: envelope {}", response.text());
        let health = server.get("/health");
        assert_eq!(health.status, 200, "/health after {what}");
    };
    let upload = |name: &str, bytes: Vec<u8>| {
        server.post_form("/v1/audio/transcriptions", &Form::file(name, bytes))
    };

    check("empty file", upload("empty.wav", Vec::new()), &[422]);
    check(
        "truncated header",
        upload("cut.wav", jfk[..30].to_vec()),
        &[422],
    );
    check(
        "truncated after 0.05 s",
        upload("cut.wav", jfk[..jfk.len().min(2_000)].to_vec()),
        &[422],
    );
    check("random bytes", upload("noise.wav", random), &[415, 422]);
    check("PNG", upload("image.png", png), &[415]);
    check(
        "wrong content type",
        server.post(
            "/v1/audio/transcriptions",
            "application/json",
            br#"{"file":"jfk.wav"}"#,
        ),
        &[415],
    );
    check(
        "no content type",
        exchange(
            server.port,
            &request_head("POST", "/v1/audio/transcriptions", &[], 3),
            b"abc",
        )
        .unwrap(),
        &[415],
    );
    check(
        "missing file field",
        server.post_form(
            "/v1/audio/transcriptions",
            &Form::default().field("model", "whisper-1"),
        ),
        &[400],
    );
    check(
        "unknown language",
        server.post_form(
            "/v1/audio/transcriptions",
            &Form::jfk().field("language", "xx"),
        ),
        &[400],
    );
    check(
        "bad response_format",
        server.post_form(
            "/v1/audio/transcriptions",
            &Form::jfk().field("response_format", "xml"),
        ),
        &[400],
    );
    check("oversized body", upload("big.wav", long_jfk(4)), &[413]);
    // A huge declared length is refused from the headers alone: the body is never
    // sent, so a server that waited for it could not answer 413.
    let head = request_head(
        "POST",
        "/v1/audio/transcriptions",
        &[("Content-Type", &Form::default().content_type())],
        1_000_000_000_000,
    );
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(&head).unwrap();
    stream.write_all(b"--").unwrap();
    let mut raw = Vec::new();
    let mut buffer = [0u8; 4096];
    while !has_head(&raw) || !raw.ends_with(b"}") {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&buffer[..n]),
        }
    }
    check(
        "huge declared length",
        parse_response(&raw).unwrap(),
        &[413],
    );
    drop(stream);

    let good = server.post_form("/v1/audio/transcriptions", &Form::jfk());
    assert_eq!(good.status, 200, "{}", good.text());
    assert_jfk(
        good.json()["text"].as_str().unwrap(),
        "after the bad inputs",
    );
    let metrics = server.metrics();
    assert_eq!(
        metric_value(&metrics, "stt_jobs_total{outcome=\"failed\"}"),
        None,
        "{metrics}"
    );
}

#[test]
fn invalid_configuration_stops_the_start_naming_the_variable() {
    for (variable, value) in [
        ("STT_PORT", "eighty"),
        ("STT_WORKERS", "0"),
        ("STT_MAX_UPLOAD_BYTES", "lots"),
        ("WHISPER_MODEL_SIZE", "gigantic"),
    ] {
        let output = Command::new(stt_server_bin())
            .arg("serve")
            .env(variable, value)
            .env("WHISPER_LIB_DIR", linked_artifacts().join("lib"))
            .output()
            .expect("run stt-server");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{variable}={value} was accepted");
        assert!(stderr.contains(variable), "{variable}: {stderr}");
    }
}
