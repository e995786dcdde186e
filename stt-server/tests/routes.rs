//! Route-level tests: the whole HTTP application (middleware, limits, queue,
//! workers, formats, errors) over a fake model that needs no libraries.
//!
//! The fake's behaviour is steered through the `prompt` field: `hold` blocks
//! the run until the test opens the gate (or the run is cancelled), `panic`
//! panics inside the decoder.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::StatusCode;
use actix_web::{test, web};
use serde_json::Value;
use stt_server::config::{Config, ServeArgs};
use stt_server::engine::{Decoder, Engine, Model, ModelLoader, ModelSource, SpeechDetector};
use stt_server::models::catalog;
use stt_server::server::{app, engine_config, AppState};
use whisper_safe::pieces::Span;
use whisper_safe::{Language, Params, RunOptions, Segment, Transcript, Word};

// ---------------------------------------------------------------- the fake

/// Shared by the fake's loads and runs: a gate for `hold` runs and counters.
#[derive(Default)]
struct World {
    open: Mutex<bool>,
    changed: Condvar,
    started: AtomicUsize,
    cancelled: AtomicUsize,
    last_params: Mutex<Option<Params>>,
}

impl World {
    fn open_gate(&self) {
        *self.open.lock().unwrap() = true;
        self.changed.notify_all();
    }
}

struct FakeLoader(Arc<World>);

impl ModelLoader for FakeLoader {
    fn load(&self, path: &Path) -> whisper_safe::Result<Arc<dyn Model>> {
        let content = std::fs::read_to_string(path).map_err(|e| whisper_safe::Error::Model {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        if content.starts_with("broken") {
            return Err(whisper_safe::Error::Model {
                path: path.to_owned(),
                reason: "bad magic".into(),
            });
        }
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        Ok(Arc::new(FakeModel {
            multilingual: !name.contains(".en"),
            name,
            world: Arc::clone(&self.0),
        }))
    }

    fn load_speech_detector(&self, path: &Path) -> whisper_safe::Result<Box<dyn SpeechDetector>> {
        std::fs::metadata(path).map_err(|e| whisper_safe::Error::Model {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Box::new(LoudnessDetector))
    }
}

/// Speech is every 100 ms frame that is not silent.
struct LoudnessDetector;

impl SpeechDetector for LoudnessDetector {
    fn speech(
        &mut self,
        samples: &[f32],
        _tuning: &stt_server::engine::VadTuning,
    ) -> whisper_safe::Result<Vec<Span>> {
        let mut spans: Vec<Span> = Vec::new();
        for (i, frame) in samples.chunks(1_600).enumerate() {
            if frame.iter().all(|s| s.abs() < 1e-4) {
                continue;
            }
            let (start, end) = (i * 1_600, i * 1_600 + frame.len());
            match spans.last_mut() {
                Some(last) if last.end == start => last.end = end,
                _ => spans.push(Span { start, end }),
            }
        }
        Ok(spans)
    }
}

struct FakeModel {
    name: String,
    multilingual: bool,
    world: Arc<World>,
}

impl Model for FakeModel {
    fn multilingual(&self) -> bool {
        self.multilingual
    }

    fn languages(&self) -> Vec<Language> {
        let all = [
            (0, "en", "english"),
            (2, "de", "german"),
            (6, "fr", "french"),
        ];
        all.into_iter()
            .filter(|(_, code, _)| self.multilingual || *code == "en")
            .map(|(id, code, name)| Language {
                id,
                code: code.into(),
                name: name.into(),
            })
            .collect()
    }

    fn create_decoder(&self) -> whisper_safe::Result<Box<dyn Decoder>> {
        Ok(Box::new(FakeDecoder {
            name: self.name.clone(),
            world: Arc::clone(&self.world),
        }))
    }
}

struct FakeDecoder {
    name: String,
    world: Arc<World>,
}

fn segment(index: usize, start: f64, end: f64, text: &str, words: bool) -> Segment {
    let words = if words {
        let parts: Vec<&str> = text.split_whitespace().collect();
        let step = (end - start) / parts.len() as f64;
        parts
            .iter()
            .enumerate()
            .map(|(i, w)| Word {
                text: (*w).into(),
                start: start + i as f64 * step,
                end: start + (i + 1) as f64 * step,
                probability: 0.9,
            })
            .collect()
    } else {
        Vec::new()
    };
    Segment {
        index,
        start,
        end,
        text: text.into(),
        words,
        avg_logprob: -0.2,
        no_speech_prob: 0.01,
        ..Segment::default()
    }
}

impl Decoder for FakeDecoder {
    fn run(
        &mut self,
        params: &Params,
        samples: &[f32],
        mut options: RunOptions<'_>,
    ) -> whisper_safe::Result<Transcript> {
        let world = &self.world;
        *world.last_params.lock().unwrap() = Some(params.clone());
        let prompt = format!("{params:?}");
        if prompt.contains("Some(\"panic\")") {
            panic!("the fake decoder was asked to panic");
        }
        if prompt.contains("Some(\"hold\")") {
            world.started.fetch_add(1, Ordering::SeqCst);
            let mut open = world.open.lock().unwrap();
            while !*open {
                if options.cancel.is_some_and(|c| c.is_cancelled()) {
                    world.cancelled.fetch_add(1, Ordering::SeqCst);
                    return Err(whisper_safe::Error::Aborted);
                }
                open = world
                    .changed
                    .wait_timeout(open, Duration::from_millis(10))
                    .unwrap()
                    .0;
            }
        }
        let duration = samples.len() as f64 / 16_000.0;
        let segments = vec![
            segment(
                0,
                0.0,
                duration / 2.0,
                &format!(" Model {} heard", self.name),
                params.wants_words(),
            ),
            segment(
                1,
                duration / 2.0,
                duration,
                &format!(" {} samples.", samples.len()),
                params.wants_words(),
            ),
        ];
        if let Some(on_segment) = options.on_segment.as_mut() {
            for s in &segments {
                on_segment(s);
            }
        }
        Ok(Transcript {
            segments,
            language: Some(params.requested_language().unwrap_or("fr").to_owned()),
            language_probability: None,
            duration_seconds: duration,
            timings: Default::default(),
        })
    }
}

// ---------------------------------------------------------------- harness

struct Harness {
    world: Arc<World>,
    state: web::Data<AppState>,
    artifacts: tempfile::TempDir,
}

/// Writes a fake model file into the artifact layout; returns its path.
fn install(artifacts: &Path, id: &str, content: &str) -> PathBuf {
    let spec: stt_server::models::catalog::ModelSpec = id.parse().unwrap();
    let path = spec.path(artifacts);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, content).unwrap();
    path
}

fn harness(set: impl FnOnce(&mut ServeArgs)) -> Harness {
    let artifacts = tempfile::tempdir().unwrap();
    install(artifacts.path(), "tiny.en", "fake");
    let mut args = ServeArgs {
        host: "127.0.0.1".into(),
        port: 0,
        workers: Some(1),
        threads_per_worker: Some(1),
        queue_limit: Some(1),
        ..ServeArgs::default()
    };
    args.model.artifacts_dir = artifacts.path().to_owned();
    args.model.model_size = catalog::lookup("tiny.en").unwrap();
    set(&mut args);
    let config = Config::from_args(args).unwrap();
    let world = Arc::new(World::default());
    let registry = prometheus::Registry::new();
    let engine = Engine::start(
        engine_config(&config),
        Arc::new(FakeLoader(Arc::clone(&world))),
        &registry,
    )
    .unwrap();
    let state = web::Data::new(AppState::new(&config, engine, registry).unwrap());
    Harness {
        world,
        state,
        artifacts,
    }
}

impl Harness {
    fn load_default(&self) {
        let source = ModelSource::from_catalog("tiny.en".parse().unwrap(), self.artifacts.path());
        self.state.engine.load(&source).unwrap();
    }

    /// The parameters of the fake's last run.
    fn last_params(&self) -> Params {
        let last = self.world.last_params.lock().unwrap();
        last.clone().expect("a run")
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.world.open_gate();
        self.state.engine.shutdown();
    }
}

/// A 16 kHz mono WAV of `seconds` of a 440 Hz tone.
fn wav(seconds: f64) -> Vec<u8> {
    let tone: Vec<i16> = (0..(seconds * 16_000.0) as usize)
        .map(|i| ((i as f64 * 440.0 * std::f64::consts::TAU / 16_000.0).sin() * 8000.0) as i16)
        .collect();
    test_kit::wav(&tone)
}

const BOUNDARY: &str = "----stt-test-boundary";

/// A multipart body with an optional file and text fields.
fn multipart(file: Option<(&str, &str, &[u8])>, fields: &[(&str, &str)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    if let Some((name, mime, bytes)) = file {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: {mime}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// A multipart body with the WAV `audio` as `a.wav` and the text `fields`.
fn wav_form(audio: &[u8], fields: &[(&str, &str)]) -> Vec<u8> {
    multipart(Some(("a.wav", "audio/wav", audio)), fields)
}

/// A POST to `path` of a multipart body (set by the caller).
fn form_post(path: &str) -> test::TestRequest {
    test::TestRequest::post().uri(path).insert_header((
        "content-type",
        format!("multipart/form-data; boundary={BOUNDARY}"),
    ))
}

/// A POST to `path` of one second of tone and the text `fields`.
fn upload(path: &str, fields: &[(&str, &str)]) -> test::TestRequest {
    form_post(path).set_payload(wav_form(&wav(1.0), fields))
}

struct Reply {
    status: StatusCode,
    headers: actix_web::http::header::HeaderMap,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .map_or("", |v| v.to_str().unwrap())
    }

    /// Asserts an error envelope with this status and code.
    fn assert_error(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        let body = self.json();
        let error = &body["error"];
        assert_eq!(error["code"], code, "{body}");
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(
            error["type"].is_string() && error.get("param").is_some(),
            "{body}"
        );
        body
    }
}

async fn reply<B: MessageBody>(response: ServiceResponse<B>) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = actix_web::body::to_bytes(response.into_body())
        .await
        .unwrap_or_else(|_| panic!("body"));
    Reply {
        status,
        headers,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

macro_rules! service {
    ($h:expr) => {
        test::init_service(app($h.state.clone())).await
    };
}

/// A harness set up by `set` with the default model loaded, and its service.
macro_rules! loaded {
    ($set:expr) => {{
        let h = harness($set);
        h.load_default();
        let s = service!(h);
        (h, s)
    }};
}

/// A transcription of one second of tone with the form `fields`; a future of its [`Reply`].
macro_rules! transcribe {
    ($service:expr, $fields:expr $(,)?) => {
        call!($service, upload("/v1/audio/transcriptions", $fields))
    };
}

/// Asserts that a plain transcription is answered 200.
macro_rules! assert_serves {
    ($service:expr) => {
        let ok = transcribe!($service, &[]).await;
        assert_eq!(ok.status, 200, "{}", ok.body);
    };
}

/// Sends a request; a future of its [`Reply`].
macro_rules! call {
    ($service:expr, $request:expr $(,)?) => {
        async { reply(test::call_service($service, $request.to_request()).await).await }
    };
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("metric {name} not in:\n{text}"))
}

// ---------------------------------------------------------------- tests

#[actix_web::test]
async fn probes_follow_the_model_load() {
    let h = harness(|_| {});
    let s = service!(h);
    let health = call!(&s, test::TestRequest::get().uri("/health")).await;
    assert_eq!(health.status, 200);
    call!(&s, test::TestRequest::get().uri("/ready"))
        .await
        .assert_error(503, "model_not_ready");
    transcribe!(&s, &[])
        .await
        .assert_error(503, "model_not_ready");
    h.load_default();
    let ready = call!(&s, test::TestRequest::get().uri("/ready")).await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert_eq!(ready.json()["model"], "tiny.en-q8_0");
}

#[actix_web::test]
async fn every_response_format() {
    let (h, s) = loaded!(|_| {});
    let json = transcribe!(&s, &[("model", "whisper-1")]).await;
    assert_eq!(json.status, 200, "{}", json.body);
    assert_eq!(json.content_type(), "application/json");
    assert_eq!(
        json.json()["text"],
        "Model ggml-tiny.en-q8_0 heard 16000 samples."
    );

    let text = transcribe!(&s, &[("response_format", "text")]).await;
    assert!(text.content_type().starts_with("text/plain"));
    assert_eq!(text.body, "Model ggml-tiny.en-q8_0 heard 16000 samples.\n");

    let srt = transcribe!(&s, &[("response_format", "srt")]).await;
    assert!(
        srt.body
            .starts_with("1\n00:00:00,000 --> 00:00:00,500\nModel"),
        "{}",
        srt.body
    );
    let vtt = transcribe!(&s, &[("response_format", "vtt")]).await;
    assert!(
        vtt.body
            .starts_with("WEBVTT\n\n00:00:00.000 --> 00:00:00.500\n"),
        "{}",
        vtt.body
    );
    assert!(vtt.content_type().starts_with("text/vtt"));

    let verbose = transcribe!(&s, &[("response_format", "verbose_json")])
        .await
        .json();
    assert_eq!(verbose["task"], "transcribe");
    assert_eq!(verbose["language"], "english");
    assert_eq!(verbose["duration"], 1.0);
    assert_eq!(verbose["segments"].as_array().unwrap().len(), 2);
    assert!(verbose.get("words").is_none());
    for key in stt_server::server::formats::VERBOSE_SEGMENT_FIELDS {
        assert!(
            verbose["segments"][0].get(key).is_some(),
            "segment lacks {key}"
        );
    }

    let words = call!(
        &s,
        upload(
            "/v1/audio/transcriptions",
            &[
                ("response_format", "verbose_json"),
                ("timestamp_granularities[]", "word")
            ],
        ),
    )
    .await
    .json();
    assert!(words.get("segments").is_none(), "{words}");
    assert_eq!(words["words"][0]["word"], "Model");
    assert!(h.last_params().wants_words());

    let both = call!(
        &s,
        upload(
            "/v1/audio/transcriptions",
            &[
                ("response_format", "verbose_json"),
                ("timestamp_granularities[]", "word"),
                ("timestamp_granularities[]", "segment"),
            ],
        ),
    )
    .await
    .json();
    assert!(both["segments"].is_array() && both["words"].is_array());

    transcribe!(&s, &[("timestamp_granularities[]", "word")])
        .await
        .assert_error(400, "invalid_parameter");
}

#[actix_web::test]
async fn models_are_selected_by_id() {
    let (_h, s) = loaded!(|_| {});
    let aliases = [
        "whisper-1",
        "gpt-4o-transcribe",
        "gpt-4o-mini-transcribe",
        "gpt-transcribe",
        "gpt-live-transcribe",
    ];
    for id in aliases.into_iter().chain(["tiny.en-q8_0", "tiny.en"]) {
        let ok = transcribe!(&s, &[("model", id)]).await;
        assert_eq!(ok.status, 200, "{id}: {}", ok.body);
    }
    for id in ["gpt-9-transcribe", "base", "tiny.en-f16"] {
        let body = transcribe!(&s, &[("model", id)])
            .await
            .assert_error(404, "model_not_found");
        assert_eq!(body["error"]["param"], "model");
    }
}

#[actix_web::test]
async fn model_aliases_are_a_setting() {
    let (_h, s) = loaded!(|a| a.model_aliases = "whisper-1, house-model".into());
    let ok = transcribe!(&s, &[("model", "house-model")]).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    transcribe!(&s, &[("model", "gpt-4o-transcribe")])
        .await
        .assert_error(404, "model_not_found");
}

#[actix_web::test]
async fn translation_and_languages() {
    let h = harness(|a| a.model.model_size = catalog::lookup("base").unwrap());
    install(h.artifacts.path(), "base", "fake");
    h.state
        .engine
        .load(&ModelSource::from_catalog(
            "base".parse().unwrap(),
            h.artifacts.path(),
        ))
        .unwrap();
    let s = service!(h);
    let translated = call!(
        &s,
        upload(
            "/v1/audio/translations",
            &[("language", "German"), ("response_format", "verbose_json")]
        ),
    )
    .await;
    assert_eq!(translated.status, 200, "{}", translated.body);
    assert_eq!(translated.json()["task"], "translate");
    let params = h.last_params();
    assert!(params.is_translate());
    assert_eq!(params.requested_language(), Some("de"));

    let detected = transcribe!(&s, &[("response_format", "verbose_json")]).await;
    assert_eq!(
        detected.json()["language"],
        "french",
        "the fake reports fr when asked to detect"
    );
    assert_eq!(h.last_params().requested_language(), None);

    let unknown = transcribe!(&s, &[("language", "klingon")])
        .await
        .assert_error(400, "invalid_parameter");
    assert_eq!(unknown["error"]["param"], "language");
    transcribe!(&s, &[("temperature", "3")])
        .await
        .assert_error(400, "invalid_parameter");
}

#[actix_web::test]
async fn english_only_models_refuse_other_languages_and_translation() {
    let (h, s) = loaded!(|_| {});
    let fr = transcribe!(&s, &[("language", "fr")])
        .await
        .assert_error(400, "invalid_parameter");
    assert_eq!(fr["error"]["param"], "language");
    let translate = call!(&s, upload("/v1/audio/translations", &[]))
        .await
        .assert_error(400, "invalid_parameter");
    assert_eq!(translate["error"]["param"], "translate");
    transcribe!(&s, &[]).await;
    assert_eq!(
        h.last_params().requested_language(),
        Some("en"),
        "English-only models decode en without detection"
    );
}

#[actix_web::test]
async fn inference_speaks_whisper_cpp_server_fields() {
    let (h, s) = loaded!(|_| {});
    let text = call!(
        &s,
        upload(
            "/inference",
            &[
                ("response_format", "text"),
                ("temperature", "0.0"),
                ("temperature_inc", "0.2")
            ],
        ),
    )
    .await;
    assert_eq!(text.status, 200, "{}", text.body);
    assert_eq!(text.body, "Model ggml-tiny.en-q8_0 heard 16000 samples.\n");
    let json = call!(&s, upload("/inference", &[])).await;
    assert_eq!(
        json.json()["text"],
        "Model ggml-tiny.en-q8_0 heard 16000 samples."
    );
    assert_eq!(h.last_params().requested_language(), Some("en"));
}

#[actix_web::test]
async fn bad_inputs_get_documented_errors() {
    let (_h, s) = loaded!(|a| a.max_upload_bytes = 64 << 10);
    let form = || form_post("/v1/audio/transcriptions");
    let with_file = |name: &str, mime: &str, bytes: &[u8]| {
        form().set_payload(multipart(Some((name, mime, bytes)), &[]))
    };
    let mut random = vec![0u8; 4096];
    let mut seed = 12345u32;
    for b in &mut random {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
        *b = (seed >> 16) as u8;
    }
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";
    let full = wav(1.0);
    let truncated = &full[..30];
    let cases: Vec<(test::TestRequest, u16, &str)> = vec![
        (
            with_file("empty.wav", "audio/wav", b""),
            422,
            "invalid_audio",
        ),
        (
            with_file("cut.wav", "audio/wav", truncated),
            422,
            "invalid_audio",
        ),
        (
            with_file("short.wav", "audio/wav", &wav(0.05)),
            422,
            "invalid_audio",
        ),
        (
            with_file("image.png", "image/png", png),
            415,
            "unsupported_media_type",
        ),
        (
            test::TestRequest::post()
                .uri("/v1/audio/transcriptions")
                .insert_header(("content-type", "application/json"))
                .set_payload("{\"file\": \"x\"}"),
            415,
            "unsupported_media_type",
        ),
        (
            form().set_payload(multipart(None, &[("model", "whisper-1")])),
            400,
            "invalid_parameter",
        ),
        (form().set_payload("--garbage"), 400, "invalid_request"),
        (
            with_file("big.wav", "audio/wav", &wav(3.0)),
            413,
            "file_too_large",
        ),
        (
            form()
                .set_payload(Vec::new())
                .insert_header(("content-length", "1000000000000")),
            413,
            "file_too_large",
        ),
    ];
    for (n, (request, status, code)) in cases.into_iter().enumerate() {
        let reply = call!(&s, request).await;
        assert_eq!(reply.status.as_u16(), status, "case {n}: {}", reply.body);
        reply.assert_error(status, code);
    }
    // Random bytes may look like the start of some container (422) or like
    // nothing known (415); never a fault.
    let noise = call!(
        &s,
        with_file("noise.bin", "application/octet-stream", &random)
    )
    .await;
    match noise.status.as_u16() {
        415 => noise.assert_error(415, "unsupported_media_type"),
        _ => noise.assert_error(422, "invalid_audio"),
    };
    // The worker is still healthy.
    assert_serves!(&s);
}

#[actix_web::test]
async fn a_panicking_run_is_a_500_and_the_worker_survives() {
    let (_h, s) = loaded!(|_| {});
    let failed = call!(
        &s,
        upload("/v1/audio/transcriptions", &[("prompt", "panic")])
            .insert_header(("x-request-id", "boom-7"))
    )
    .await
    .assert_error(500, "internal_error");
    assert!(
        !failed.to_string().contains("panic"),
        "no internal details: {failed}"
    );
    assert!(
        failed.to_string().contains("boom-7"),
        "the request id: {failed}"
    );
    assert_serves!(&s);
}

#[actix_web::test]
async fn api_keys_guard_everything_but_the_probes() {
    let (_h, s) = loaded!(|a| a.api_keys = Some("k1,k2".into()));
    assert_eq!(
        call!(&s, test::TestRequest::get().uri("/health"))
            .await
            .status,
        200
    );
    assert_eq!(
        call!(&s, test::TestRequest::get().uri("/ready"))
            .await
            .status,
        200
    );
    let missing = call!(&s, test::TestRequest::get().uri("/v1/models")).await;
    missing.assert_error(401, "missing_api_key");
    assert_eq!(missing.headers.get("www-authenticate").unwrap(), "Bearer");
    call!(
        &s,
        upload("/v1/audio/transcriptions", &[]).insert_header(("authorization", "Bearer nope"))
    )
    .await
    .assert_error(401, "invalid_api_key");
    call!(&s, test::TestRequest::get().uri("/metrics"))
        .await
        .assert_error(401, "missing_api_key");
    let ok = call!(
        &s,
        upload("/v1/audio/transcriptions", &[]).insert_header(("authorization", "Bearer k2")),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
}

#[actix_web::test]
async fn request_ids_are_echoed_or_made() {
    let h = harness(|_| {});
    let s = service!(h);
    let kept = call!(
        &s,
        test::TestRequest::get()
            .uri("/health")
            .insert_header(("x-request-id", "abc-123"))
    )
    .await;
    assert_eq!(kept.headers.get("x-request-id").unwrap(), "abc-123");
    let replaced = call!(
        &s,
        test::TestRequest::get()
            .uri("/health")
            .insert_header(("x-request-id", "bad id;drop")),
    )
    .await;
    let made = replaced
        .headers
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(made.len(), 36, "a UUID: {made}");
    let error = call!(&s, test::TestRequest::get().uri("/nowhere")).await;
    error.assert_error(404, "not_found");
    assert!(error.headers.contains_key("x-request-id"));
    call!(&s, test::TestRequest::get().uri("/v1/audio/transcriptions"))
        .await
        .assert_error(405, "method_not_allowed");
}

/// Waits until `check` holds (the fake's runs happen on worker threads).
async fn until(what: &str, check: impl Fn() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
}

#[actix_web::test]
async fn a_full_queue_answers_429_at_once_and_recovers() {
    // One worker and one waiting place: the third concurrent request is refused.
    let (h, s) = loaded!(|_| {});
    let held = || upload("/v1/audio/transcriptions", &[("prompt", "hold")]);
    let engine = h.state.engine.clone();
    let (first, second, third) = futures_util::join!(call!(&s, held()), call!(&s, held()), async {
        until("one running and one waiting", || {
            engine.load_now() == (1, 1)
        })
        .await;
        let started = Instant::now();
        let refused = transcribe!(&s, &[]).await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "429 must not wait"
        );
        h.world.open_gate();
        refused
    });
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(second.status, 200, "{}", second.body);
    third.assert_error(429, "queue_full");
    let retry: u64 = third
        .headers
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    assert_eq!(transcribe!(&s, &[]).await.status, 200);
    assert_eq!(engine.load_now(), (0, 0));
}

#[actix_web::test]
async fn a_dropped_request_cancels_its_run_and_leaves_the_queue() {
    let (h, s) = loaded!(|_| {});
    let engine = h.state.engine.clone();
    let held = || upload("/v1/audio/transcriptions", &[("prompt", "hold")]);
    // The running request is dropped (as actix drops the handler of a client
    // that disconnects) once its run has started.
    let running = Box::pin(call!(&s, held()));
    let queued = Box::pin(call!(&s, held()));
    let both = futures_util::future::join(running, queued);
    let waiter = Box::pin(until("one running, one queued", || {
        engine.load_now() == (1, 1)
    }));
    match futures_util::future::select(both, waiter).await {
        futures_util::future::Either::Right(((), both)) => drop(both),
        futures_util::future::Either::Left(_) => panic!("held requests finished"),
    }
    assert_eq!(
        engine.load_now().0,
        0,
        "the queued job left the queue at once"
    );
    until("the running job is cancelled", || {
        h.world.cancelled.load(Ordering::SeqCst) == 1 && engine.load_now() == (0, 0)
    })
    .await;
    let metrics = call!(&s, test::TestRequest::get().uri("/metrics"))
        .await
        .body;
    assert_eq!(metric(&metrics, "stt_workers_busy"), 0.0);
    assert_eq!(metric(&metrics, "stt_queue_depth"), 0.0);
    assert!(
        metrics.contains("stt_jobs_total{outcome=\"cancelled\"} 1"),
        "{metrics}"
    );
    assert_serves!(&s);
}

#[actix_web::test]
async fn a_slow_request_times_out_and_is_cancelled() {
    let (h, s) = loaded!(|a| a.request_timeout_seconds = 0.3);
    transcribe!(&s, &[("prompt", "hold")])
        .await
        .assert_error(504, "request_timeout");
    let engine = h.state.engine.clone();
    until("the run is cancelled", || {
        h.world.cancelled.load(Ordering::SeqCst) == 1 && engine.load_now() == (0, 0)
    })
    .await;
}

#[actix_web::test]
async fn streaming_sends_deltas_then_done() {
    let (_h, s) = loaded!(|_| {});
    let sse = transcribe!(&s, &[("stream", "true")]).await;
    assert_eq!(sse.status, 200, "{}", sse.body);
    assert_eq!(sse.content_type(), "text/event-stream");
    let events: Vec<Value> = sse
        .body
        .split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| serde_json::from_str(e.strip_prefix("data: ").unwrap()).unwrap())
        .collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "transcript.text.delta",
            "transcript.text.delta",
            "transcript.text.done"
        ]
    );
    let joined: String = events[..2]
        .iter()
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(joined, "Model ggml-tiny.en-q8_0 heard 16000 samples.");
    assert_eq!(events[2]["text"], joined);
    transcribe!(&s, &[("stream", "true"), ("response_format", "vtt")])
        .await
        .assert_error(400, "invalid_parameter");
}

#[actix_web::test]
async fn models_are_listed_and_switched() {
    let h = harness(|_| {});
    h.load_default();
    install(h.artifacts.path(), "tiny.en-f16", "fake");
    install(h.artifacts.path(), "base-q8_0", "broken");
    let s = service!(h);
    let list = call!(&s, test::TestRequest::get().uri("/v1/models"))
        .await
        .json();
    let ids: Vec<(&str, bool)> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["id"].as_str().unwrap(), m["loaded"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        ids,
        [
            ("tiny.en-q8_0", true),
            ("tiny.en-f16", false),
            ("base-q8_0", false)
        ]
    );
    assert_eq!(list["data"][0]["object"], "model");
    let one = call!(&s, test::TestRequest::get().uri("/v1/models/whisper-1"))
        .await
        .json();
    assert_eq!(one["id"], "tiny.en-q8_0");
    call!(&s, test::TestRequest::get().uri("/v1/models/medium"))
        .await
        .assert_error(404, "model_not_found");

    // Unknown ids, and catalog ids not on disk.
    let path = call!(
        &s,
        test::TestRequest::post().uri("/v1/models/..%2F..%2Fetc%2Fpasswd/load")
    )
    .await;
    assert_eq!(path.status, 404, "{}", path.body);
    for id in ["huge", "medium", "whisper-1"] {
        call!(
            &s,
            test::TestRequest::post().uri(&format!("/v1/models/{id}/load"))
        )
        .await
        .assert_error(404, "model_not_found");
    }
    // A file that fails to load leaves the old model serving and ready. The
    // answer and /ready name the model, never its path or the loader's words;
    // the answer names its request id, under which the log has the cause.
    let failed = call!(
        &s,
        test::TestRequest::post()
            .uri("/v1/models/base-q8_0/load")
            .insert_header(("x-request-id", "load-42"))
    )
    .await;
    let body = failed.assert_error(500, "model_load_failed").to_string();
    let artifacts = h.artifacts.path().to_str().unwrap();
    for secret in ["bad magic", artifacts, ".bin", "/"] {
        assert!(!body.contains(secret), "{secret:?} in {body}");
    }
    assert!(
        body.contains("base-q8_0") && body.contains("load-42"),
        "{body}"
    );
    assert_eq!(failed.headers.get("x-request-id").unwrap(), "load-42");
    let ready = call!(&s, test::TestRequest::get().uri("/ready")).await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["model"], "tiny.en-q8_0");
    let last_error = ready.json()["last_error"].as_str().unwrap().to_owned();
    assert!(last_error.contains("base-q8_0"), "{last_error}");
    for secret in ["bad magic", artifacts, ".bin", "/"] {
        assert!(!last_error.contains(secret), "{secret:?} in {last_error}");
    }

    // A request held on the old model finishes on it across the switch.
    let engine = h.state.engine.clone();
    let (held, switched) = futures_util::join!(transcribe!(&s, &[("prompt", "hold")]), async {
        until("the held run", || {
            h.world.started.load(Ordering::SeqCst) == 1
        })
        .await;
        let switched = call!(
            &s,
            test::TestRequest::post().uri("/v1/models/tiny.en-f16/load")
        )
        .await;
        h.world.open_gate();
        switched
    });
    assert_eq!(switched.status, 200, "{}", switched.body);
    assert_eq!(switched.json()["id"], "tiny.en-f16");
    assert_eq!(
        held.json()["text"],
        "Model ggml-tiny.en-q8_0 heard 16000 samples."
    );
    let after = transcribe!(&s, &[("model", "tiny.en-f16")]).await;
    assert_eq!(
        after.json()["text"],
        "Model ggml-tiny.en heard 16000 samples."
    );
    assert_eq!(engine.current().unwrap().id(), "tiny.en-f16");

    let metrics = call!(&s, test::TestRequest::get().uri("/metrics"))
        .await
        .body;
    assert!(
        metrics.contains("stt_model_switches_total{result=\"ok\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("stt_model_switches_total{result=\"failed\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("stt_model_loaded{model=\"tiny.en-f16\"} 1"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("stt_model_loaded{model=\"tiny.en-q8_0\"}"),
        "{metrics}"
    );
}

#[actix_web::test]
async fn metrics_count_requests_audio_and_load_time() {
    let (_h, s) = loaded!(|_| {});
    assert_eq!(transcribe!(&s, &[]).await.status, 200);
    transcribe!(&s, &[("language", "xx")]).await;
    let metrics = call!(&s, test::TestRequest::get().uri("/metrics")).await;
    assert!(metrics.content_type().starts_with("text/plain"));
    let text = metrics.body;
    for line in [
        "stt_http_requests_total{method=\"POST\",route=\"/v1/audio/transcriptions\",status=\"200\"} 1",
        "stt_http_requests_total{method=\"POST\",route=\"/v1/audio/transcriptions\",status=\"400\"} 1",
        "stt_audio_seconds_total 1",
        "stt_workers 1",
        "stt_ready 1",
    ] {
        assert!(text.contains(line), "{line} missing in:\n{text}");
    }
    assert!(metric(&text, "stt_model_load_seconds") > 0.0);
    assert_eq!(metric(&text, "stt_real_time_factor_count"), 1.0);
    assert!(text
        .contains("stt_http_request_duration_seconds_bucket{route=\"/v1/audio/transcriptions\""));
}

/// An upload to `path` whose body arrives only when the test sends it on the
/// returned channel (and ends when the sender is dropped).
fn pending_upload(
    path: &str,
) -> (
    actix_web::dev::Payload,
    test::TestRequest,
    tokio::sync::mpsc::UnboundedSender<web::Bytes>,
) {
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel::<web::Bytes>();
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let chunk = receiver.recv().await?;
        Some((Ok::<_, actix_web::error::PayloadError>(chunk), receiver))
    });
    let stream: std::pin::Pin<Box<dyn futures_util::Stream<Item = _>>> =
        Box::pin(futures_util::StreamExt::fuse(stream));
    let payload = actix_web::dev::Payload::Stream { payload: stream };
    (payload, form_post(path), sender)
}

/// Sends `request` with `payload` as its body; a future of its [`Reply`].
macro_rules! call_with_payload {
    ($service:expr, $request:expr, $payload:expr $(,)?) => {
        async {
            let (request, _) = $request.to_request().replace_payload($payload);
            reply(test::call_service($service, request).await).await
        }
    };
}

/// What requests hold, from the metrics: (admitted requests, audio memory
/// reserved, uploads being received, upload memory reserved).
macro_rules! held {
    ($service:expr) => {
        async {
            let text = call!($service, test::TestRequest::get().uri("/metrics"))
                .await
                .body;
            (
                metric(&text, "stt_admitted_requests"),
                metric(&text, "stt_audio_memory_reserved_bytes"),
                metric(&text, "stt_uploads_in_flight"),
                metric(&text, "stt_upload_memory_reserved_bytes"),
            )
        }
    };
}

/// Nothing held.
const FREE: (f64, f64, f64, f64) = (0.0, 0.0, 0.0, 0.0);

#[actix_web::test]
async fn uploads_take_no_place_until_their_bodies_are_complete() {
    // One worker and one waiting place; three uploads may arrive at once.
    let (h, s) = loaded!(|a| a.max_uploads = 3);
    let pending: Vec<_> = (0..3)
        .map(|_| pending_upload("/v1/audio/transcriptions"))
        .collect();
    let mut senders = Vec::new();
    let mut calls = Vec::new();
    for (body, request, sender) in pending {
        senders.push(sender);
        calls.push(call_with_payload!(&s, request, body));
    }
    let (answers, ()) = futures_util::join!(futures_util::future::join_all(calls), async {
        until("three uploads arriving", || {
            h.state.uploads.in_flight() == 3
        })
        .await;
        // More uploads than places, none holding a place or audio memory.
        assert_eq!(held!(&s).await, (0.0, 0.0, 3.0, 0.0));
        let started = Instant::now();
        let refused = transcribe!(&s, &[]).await;
        assert!(started.elapsed() < Duration::from_secs(2), "503 at once");
        refused.assert_error(503, "too_many_uploads");
        assert_eq!(refused.headers.get("retry-after").unwrap(), "1");
        // The bodies complete: two take the places, the third finds the
        // workers busy.
        let held_form = wav_form(&wav(1.0), &[("prompt", "hold")]);
        for sender in senders.drain(..) {
            sender.send(held_form.clone().into()).unwrap();
        }
        until("one running, one waiting, no upload", || {
            h.state.engine.load_now() == (1, 1) && h.state.uploads.in_flight() == 0
        })
        .await;
        h.world.open_gate();
    });
    let mut statuses: Vec<u16> = answers.iter().map(|a| a.status.as_u16()).collect();
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        [200, 200, 429],
        "{:?}",
        answers.iter().map(|a| &a.body).collect::<Vec<_>>()
    );
    answers
        .iter()
        .find(|a| a.status == 429)
        .unwrap()
        .assert_error(429, "queue_full");
    assert_eq!(held!(&s).await, FREE);
}

#[actix_web::test]
async fn uploads_reserve_their_declared_length_from_the_upload_memory() {
    // Room for one largest upload: 1 MiB of file and 1 MiB of form.
    let (h, s) = loaded!(|a| {
        a.max_upload_bytes = 1 << 20;
        a.upload_memory_bytes = Some(2 << 20);
    });
    let declared = |length: u64| {
        let (body, request, sender) = pending_upload("/v1/audio/transcriptions");
        (
            body,
            request.insert_header(("content-length", length.to_string())),
            sender,
        )
    };
    let (big_body, big, big_sender) = declared(1_500_000);
    let (small_body, small, small_sender) = declared(500_000);
    let (refused_body, refused, _refused_sender) = declared(600_000);
    let (big, small, refused) = futures_util::join!(
        call_with_payload!(&s, big, big_body),
        async {
            until("the big upload arriving", || {
                h.state.uploads.in_flight() == 1
            })
            .await;
            call_with_payload!(&s, small, small_body).await
        },
        async {
            until("both arriving", || h.state.uploads.in_flight() == 2).await;
            assert_eq!(held!(&s).await, (0.0, 0.0, 2.0, 2_000_000.0));
            let refused = call_with_payload!(&s, refused, refused_body).await;
            for sender in [big_sender, small_sender] {
                sender.send(wav_form(&wav(1.0), &[]).into()).unwrap();
            }
            refused
        }
    );
    assert_eq!(big.status, 200, "{}", big.body);
    assert_eq!(small.status, 200, "{}", small.body);
    refused.assert_error(503, "upload_memory_full");
    assert_eq!(held!(&s).await, FREE);
}

#[actix_web::test]
async fn a_stalled_body_is_shed_at_the_idle_timeout() {
    let (_h, s) = loaded!(|a| a.body_idle_seconds = 0.3);
    let (body, request, sender) = pending_upload("/v1/audio/transcriptions");
    // The first part arrives, then nothing.
    sender
        .send(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"language\"\r\n\r\nen\r\n"
            )
            .into(),
        )
        .unwrap();
    let started = Instant::now();
    call_with_payload!(&s, request, body)
        .await
        .assert_error(408, "body_stalled");
    assert!(started.elapsed() < Duration::from_secs(5));
    let text = call!(&s, test::TestRequest::get().uri("/metrics"))
        .await
        .body;
    assert!(
        text.contains("stt_uploads_shed_total{reason=\"stalled\"} 1"),
        "{text}"
    );
    assert_eq!(held!(&s).await, FREE);
}

#[actix_web::test]
async fn every_way_a_request_ends_releases_its_reservation() {
    let (h, s) = loaded!(|a| {
        a.request_timeout_seconds = 2.0;
        a.body_timeout_seconds = Some(0.3);
    });
    // Errors after admission: bad audio, bad parameters, an unknown model.
    for (fields, file, status) in [
        (&[][..], &b"not audio at all"[..], 415),
        (&[("language", "xx")][..], &wav(1.0)[..], 400),
        (&[("model", "large-v3")][..], &wav(1.0)[..], 404),
    ] {
        let bad = call!(
            &s,
            form_post("/v1/audio/transcriptions").set_payload(wav_form(file, fields))
        )
        .await;
        assert!([status, 422].contains(&bad.status.as_u16()), "{}", bad.body);
        assert_eq!(held!(&s).await, FREE, "after {}", bad.body);
    }
    // A body that stops arriving: 408 at the body timeout.
    let (body, request, _sender) = pending_upload("/v1/audio/transcriptions");
    call_with_payload!(&s, request, body)
        .await
        .assert_error(408, "body_timeout");
    assert_eq!(held!(&s).await, FREE, "after the body timeout");
    // A client gone while its body arrives.
    let (body, request, _sender) = pending_upload("/v1/audio/transcriptions");
    {
        let pending = Box::pin(call_with_payload!(&s, request, body));
        let admitted_once = Box::pin(until("the upload is admitted", || {
            h.state.uploads.in_flight() == 1
        }));
        match futures_util::future::select(pending, admitted_once).await {
            futures_util::future::Either::Right(((), pending)) => drop(pending),
            futures_util::future::Either::Left((reply, _)) => panic!("answered: {}", reply.body),
        }
    }
    assert_eq!(held!(&s).await, FREE, "after a disconnect");
    // A run past the request timeout (504, cancelled).
    transcribe!(&s, &[("prompt", "hold")])
        .await
        .assert_error(504, "request_timeout");
    until("the held run ends", || h.state.engine.admitted().0 == 0).await;
    assert_eq!(held!(&s).await, FREE, "after a timeout");
    // A success.
    assert_eq!(transcribe!(&s, &[]).await.status, 200);
    assert_eq!(held!(&s).await, FREE, "after a success");
}

#[actix_web::test]
async fn the_audio_memory_budget_bounds_admission() {
    // 6 MB: a worst case is the file and 40 s of samples (a 30 s WAV: 3.52 MB);
    // the decoded size (1.92 MB) replaces it once known, so a second 30 s
    // request fits beside the first, and a third (2.59 MB) finds the memory held.
    let (h, s) = loaded!(|a| {
        a.queue_limit = Some(4);
        a.max_upload_bytes = 1 << 20;
        a.max_audio_seconds = 40.0;
        a.audio_memory_bytes = Some(6_000_000);
    });
    let samples = 30.0 * 16_000.0 * 4.0;
    let held_form = || {
        form_post("/v1/audio/transcriptions")
            .set_payload(wav_form(&wav(30.0), &[("prompt", "hold")]))
    };
    let (a, b, c) = futures_util::join!(
        call!(&s, held_form()),
        async {
            until("one running", || h.state.engine.load_now() == (0, 1)).await;
            call!(&s, held_form()).await
        },
        async {
            until("one running, one waiting", || {
                h.state.engine.load_now() == (1, 1)
            })
            .await;
            assert_eq!(held!(&s).await, (2.0, 2.0 * samples, 0.0, 0.0));
            let refused = transcribe!(&s, &[]).await;
            h.world.open_gate();
            refused
        }
    );
    for ok in [a, b] {
        assert_eq!(ok.status, 200, "{}", ok.body);
    }
    c.assert_error(429, "queue_full");
    assert!(c.headers.contains_key("retry-after"));
    assert!(c.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("memory"));
    assert_eq!(held!(&s).await, FREE);
}

#[actix_web::test]
async fn metric_labels_come_from_fixed_sets() {
    let (_h, s) = loaded!(|a| a.api_keys = Some("sekrit-key".into()));
    for n in 0..30 {
        let method = actix_web::http::Method::from_bytes(format!("BREW{n}").as_bytes()).unwrap();
        let answer = call!(
            &s,
            test::TestRequest::default()
                .method(method)
                .uri("/v1/models")
                .insert_header(("authorization", "Bearer sekrit-key"))
        )
        .await;
        assert_eq!(answer.status, 405);
    }
    for authorization in [None, Some("Bearer wrong-key-1"), Some("Bearer wrong-key-2")] {
        let mut request = test::TestRequest::get().uri("/v1/models/x1");
        if let Some(value) = authorization {
            request = request.insert_header(("authorization", value));
        }
        assert_eq!(call!(&s, request).await.status, 401);
    }
    let text = call!(
        &s,
        test::TestRequest::get()
            .uri("/metrics")
            .insert_header(("authorization", "Bearer sekrit-key"))
    )
    .await
    .body;
    let series: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("stt_http_requests_total{"))
        .collect();
    assert!(!text.contains("BREW"), "{text}");
    assert!(
        text.contains(
            "stt_http_requests_total{method=\"other\",route=\"/v1/models\",status=\"405\"} 30"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "stt_http_requests_total{method=\"GET\",route=\"/v1/models/{id}\",status=\"401\"} 3"
        ),
        "{text}"
    );
    assert!(series.len() <= 3, "{series:?}");
    assert_eq!(
        metric(&text, "stt_auth_refusals_total{code=\"missing_api_key\"}"),
        1.0
    );
    assert_eq!(
        metric(&text, "stt_auth_refusals_total{code=\"invalid_api_key\"}"),
        2.0
    );
    for secret in ["sekrit", "wrong-key"] {
        assert!(!text.contains(secret), "{secret} in the metrics");
    }
}

#[actix_web::test]
async fn loading_a_model_needs_an_admin_key() {
    let h = harness(|a| {
        a.api_keys = Some("user-key".into());
        a.admin_keys = Some("admin-key".into());
    });
    h.load_default();
    install(h.artifacts.path(), "tiny.en-f16", "fake");
    let s = service!(h);
    let load = |key: Option<&str>| {
        let mut request = test::TestRequest::post().uri("/v1/models/tiny.en-f16/load");
        if let Some(key) = key {
            request = request.insert_header(("authorization", format!("Bearer {key}")));
        }
        request
    };
    call!(&s, load(None))
        .await
        .assert_error(401, "missing_api_key");
    call!(&s, load(Some("user-key")))
        .await
        .assert_error(403, "admin_key_required");
    assert_eq!(h.state.engine.current().unwrap().id(), "tiny.en-q8_0");
    // Both keys transcribe.
    for key in ["user-key", "admin-key"] {
        let ok = call!(
            &s,
            upload("/v1/audio/transcriptions", &[])
                .insert_header(("authorization", format!("Bearer {key}")))
        )
        .await;
        assert_eq!(ok.status, 200, "{key}: {}", ok.body);
    }
    let loaded = call!(&s, load(Some("admin-key"))).await;
    assert_eq!(loaded.status, 200, "{}", loaded.body);
    assert_eq!(h.state.engine.current().unwrap().id(), "tiny.en-f16");

    // Transcription keys alone: nobody may load.
    let (_h, s) = loaded!(|a| a.api_keys = Some("user-key".into()));
    call!(&s, load(Some("user-key")))
        .await
        .assert_error(403, "admin_key_required");
}
