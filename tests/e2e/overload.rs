//! `stt-server serve` under overload, with the real libraries and tiny.en:
//! forty concurrent one-hour uploads against the default limits, clients that
//! send their requests byte by byte, a hundred stalled uploads beside a normal
//! request, and a burst of a thousand uploads. Each test starts the binary
//! with the shared harness (`tests/support/server.rs`) and talks raw HTTP/1.1
//! over `TcpStream`.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use whisper_stt_tests::server::{exchange, metric_value, path_str, request_head, Form, Server};
use whisper_stt_tests::{fixture, reference, tiny_en_model, word_error_rate};

/// Bound on the normalized word error rate of jfk's transcript.
const MAX_WER: f64 = 0.1;
/// The default longest audio, seconds.
const MAX_AUDIO_SECONDS: f64 = 3600.0;
/// Bytes a run takes per second of audio beyond the job's samples:
/// whisper.cpp's padded copy of the samples while it computes the mel
/// (64,000) and the mel itself (80 bands × 100 frames × 4 bytes, kept by the
/// worker's state).
const RUN_BYTES_PER_SECOND: f64 = 96_000.0;
/// Connection buffers, thread stacks and allocator slack (docs/configuration.md).
const SLACK_BYTES: f64 = 64.0 * 1024.0 * 1024.0;
const TRANSCRIPTIONS: &str = "/v1/audio/transcriptions";

/// Starts the server with tiny.en and `env` (otherwise the defaults).
fn start(env: &[(&str, &str)]) -> Server {
    let model = tiny_en_model();
    let mut env = env.to_vec();
    env.push(("WHISPER_MODEL_PATH", path_str(&model)));
    Server::start(&env)
}

/// A metric the server reports.
fn metric(server: &Server, name: &str) -> f64 {
    let text = server.metrics();
    metric_value(&text, name).unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

/// The head of an upload of `form`.
fn upload_head(form: &Form, length: usize) -> Vec<u8> {
    request_head(
        "POST",
        TRANSCRIPTIONS,
        &[("Content-Type", form.content_type().as_str())],
        length,
    )
}

/// Transcribes jfk.wav, asserting 200 and its words; returns the time taken.
fn transcribe_jfk(server: &Server) -> Duration {
    let form = Form::jfk();
    let started = Instant::now();
    let response = server.post_form(TRANSCRIPTIONS, &form);
    let taken = started.elapsed();
    assert_eq!(response.status, 200, "{}", response.text());
    let json = response.json();
    let wer = word_error_rate(&reference("jfk.wav"), json["text"].as_str().unwrap());
    assert!(wer <= MAX_WER, "WER {wer:.3}: {json}");
    taken
}

/// An MP3 of `seconds` (jfk's speech, then silence, every minute) at 16 kHz
/// mono, 48 kbit/s: about 21 MB per hour.
fn long_mp3(dir: &Path, seconds: f64) -> Vec<u8> {
    let minute = dir.join("minute.wav");
    let mp3 = dir.join("long.mp3");
    let ffmpeg = |args: &[&str]| {
        let status = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y"])
            .args(args)
            .status()
            .expect("run ffmpeg (scripts/install-deps.sh installs it)");
        assert!(status.success(), "ffmpeg {args:?}");
    };
    let jfk = fixture("jfk.wav");
    ffmpeg(&[
        "-i",
        jfk.to_str().unwrap(),
        "-af",
        "apad=whole_dur=60",
        "-ar",
        "16000",
        "-ac",
        "1",
        minute.to_str().unwrap(),
    ]);
    ffmpeg(&[
        "-stream_loop",
        "-1",
        "-i",
        minute.to_str().unwrap(),
        "-t",
        &seconds.to_string(),
        "-ar",
        "16000",
        "-ac",
        "1",
        "-b:a",
        "48k",
        mp3.to_str().unwrap(),
    ]);
    std::fs::read(&mp3).expect("the MP3")
}

#[test]
fn forty_one_hour_uploads_stay_within_the_documented_memory_bound() {
    // Just over the default limit of one hour: every upload admitted is read
    // and decoded to the limit (the most memory one request can take) and then
    // refused with 413, so no hour-long transcription runs and the test stays short.
    let dir = tempfile::tempdir().expect("temp dir");
    let mp3 = long_mp3(dir.path(), MAX_AUDIO_SECONDS + 5.0);
    let form = Form::file("hour.mp3", mp3);
    let body = form.body();
    let server = start(&[]);
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    assert_eq!(
        server.threads_named("stt-decode-"),
        cores,
        "decoding threads"
    );
    let idle = server.status_bytes("VmRSS:");
    let workers = metric(&server, "stt_workers");
    let budget = metric(&server, "stt_audio_memory_budget_bytes");
    let uploads = metric(&server, "stt_upload_memory_budget_bytes");
    let bound =
        idle + budget + uploads + workers * MAX_AUDIO_SECONDS * RUN_BYTES_PER_SECOND + SLACK_BYTES;

    let head = upload_head(&form, body.len());
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..40)
            .map(|_| scope.spawn(|| exchange(server.port, &head, &body)))
            .collect();
        clients
            .into_iter()
            .map(|client| match client.join().expect("client thread") {
                Ok(response) => {
                    assert!(
                        [200, 413, 429, 503].contains(&response.status),
                        "{} {}",
                        response.status,
                        response.text()
                    );
                    response.status
                }
                Err(e) => panic!("a client got no answer: {e}"),
            })
            .collect()
    });
    let count = |status| statuses.iter().filter(|&&s| s == status).count();
    let peak = server.status_bytes("VmHWM:");
    let mb = |bytes: f64| bytes / 1e6;
    eprintln!(
        "40 one-hour uploads: {} × 200, {} × 413, {} × 429, {} × 503; peak RSS {:.0} MB, \
         bound {:.0} MB (idle {:.0} MB + audio budget {:.0} MB + upload budget {:.0} MB \
         + runs {:.0} MB + slack)",
        count(200),
        count(413),
        count(429),
        count(503),
        mb(peak),
        mb(bound),
        mb(idle),
        mb(budget),
        mb(uploads),
        mb(workers * MAX_AUDIO_SECONDS * RUN_BYTES_PER_SECOND),
    );
    assert!(
        count(429) + count(503) > 0,
        "the limits refused none: {statuses:?}"
    );
    assert!(
        peak <= bound,
        "peak RSS {:.0} MB above the bound {:.0} MB",
        mb(peak),
        mb(bound)
    );
    assert_eq!(metric(&server, "stt_admitted_requests"), 0.0);
    assert_eq!(metric(&server, "stt_audio_memory_reserved_bytes"), 0.0);
    assert_eq!(metric(&server, "stt_uploads_in_flight"), 0.0);
    transcribe_jfk(&server);
}

/// A connection that sends its request one byte per tick.
struct Trickle {
    stream: TcpStream,
    bytes: Vec<u8>,
    sent: usize,
    /// When the server closed it (or answered), since the start.
    closed: Option<Duration>,
    answer: Vec<u8>,
}

impl Trickle {
    fn open(port: u16, bytes: Vec<u8>) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_nonblocking(true).expect("non-blocking");
        Self {
            stream,
            bytes,
            sent: 0,
            closed: None,
            answer: Vec::new(),
        }
    }

    /// Sends the next byte and notes whether the server has closed.
    fn tick(&mut self, since: Instant) {
        if self.closed.is_some() {
            return;
        }
        let mut buffer = [0u8; 4096];
        let gone = loop {
            match self.stream.read(&mut buffer) {
                Ok(0) => break true,
                Ok(n) => self.answer.extend_from_slice(&buffer[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
                Err(_) => break true,
            }
        };
        let write_failed = self.sent < self.bytes.len()
            && match self.stream.write(&self.bytes[self.sent..=self.sent]) {
                Ok(n) => {
                    self.sent += n;
                    false
                }
                Err(e) => e.kind() != ErrorKind::WouldBlock,
            };
        if gone || write_failed {
            self.closed = Some(since.elapsed());
        }
    }

    /// The answer as text.
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.answer).into_owned()
    }

    fn status(&self) -> Option<u16> {
        std::str::from_utf8(self.answer.get(..12)?)
            .ok()?
            .split(' ')
            .nth(1)?
            .parse()
            .ok()
    }
}

#[test]
fn slow_clients_are_closed_and_a_normal_client_is_served_meanwhile() {
    // A body trickled at 10 bytes/s never stalls for the idle timeout but is
    // far under the floor (1 KiB/s) once the grace (the idle timeout) is over.
    let grace = Duration::from_secs(3);
    let header_timeout = Duration::from_secs(5);
    let server = start(&[("STT_BODY_IDLE_SECONDS", "3")]);
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    assert_eq!(
        server.threads_named("actix-rt|system"),
        cores,
        "HTTP workers"
    );
    let started = Instant::now();
    // Heads that never end, and uploads (within the places) whose bodies crawl.
    let mut slow_heads: Vec<Trickle> = (0..100)
        .map(|_| {
            let head = format!(
                "POST /v1/audio/transcriptions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: {}",
                "a".repeat(1000)
            );
            Trickle::open(server.port, head.into_bytes())
        })
        .collect();
    let jfk = Form::jfk();
    let jfk_body = jfk.body();
    let mut slow_bodies: Vec<Trickle> = (0..3)
        .map(|_| {
            let mut bytes = upload_head(&jfk, jfk_body.len());
            let head_len = bytes.len();
            bytes.extend_from_slice(&jfk_body);
            let mut trickle = Trickle::open(server.port, bytes);
            // The head at once, then the body byte by byte.
            trickle.stream.set_nonblocking(false).unwrap();
            trickle
                .stream
                .write_all(&trickle.bytes[..head_len])
                .unwrap();
            trickle.stream.set_nonblocking(true).unwrap();
            trickle.sent = head_len;
            trickle
        })
        .collect();
    let limit = header_timeout + Duration::from_secs(5);
    let normal = std::thread::scope(|scope| {
        let normal = scope.spawn(|| {
            std::thread::sleep(Duration::from_secs(1));
            transcribe_jfk(&server)
        });
        while started.elapsed() < limit
            && slow_heads
                .iter()
                .chain(&slow_bodies)
                .any(|t| t.closed.is_none())
        {
            for trickle in slow_heads.iter_mut().chain(slow_bodies.iter_mut()) {
                trickle.tick(started);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        normal.join().expect("normal client")
    });
    eprintln!("normal request served in {normal:?} among 103 slow clients");
    assert!(
        normal < Duration::from_secs(15),
        "the normal request took {normal:?}"
    );
    for (n, trickle) in slow_heads.iter().enumerate() {
        let closed = trickle
            .closed
            .unwrap_or_else(|| panic!("slow head {n} still open after {limit:?}"));
        assert!(
            closed >= header_timeout - Duration::from_millis(500),
            "slow head {n} closed after only {closed:?}"
        );
        assert!(matches!(trickle.status(), None | Some(408)));
    }
    for (n, trickle) in slow_bodies.iter().enumerate() {
        let closed = trickle
            .closed
            .unwrap_or_else(|| panic!("slow body {n} still open after {limit:?}"));
        assert!(
            closed >= grace - Duration::from_millis(500) && closed < grace + Duration::from_secs(3),
            "slow body {n} closed after {closed:?}"
        );
        assert_eq!(trickle.status(), Some(408), "{}", trickle.text());
        assert!(
            trickle.text().contains("body_too_slow"),
            "{}",
            trickle.text()
        );
    }
    assert_eq!(metric(&server, "stt_admitted_requests"), 0.0);
    assert_eq!(metric(&server, "stt_uploads_in_flight"), 0.0);
    transcribe_jfk(&server);
}

/// `count` connections that each send the head of a jfk.wav upload and the
/// first bytes of its body, then nothing.
fn stalled_uploads(server: &Server, count: usize) -> Vec<Trickle> {
    let jfk = Form::jfk();
    let body = jfk.body();
    let mut bytes = upload_head(&jfk, body.len());
    bytes.extend_from_slice(&body[..200]);
    (0..count)
        .map(|_| {
            let mut trickle = Trickle::open(server.port, bytes.clone());
            trickle.stream.set_nonblocking(false).unwrap();
            trickle.stream.write_all(&bytes).expect("send the head");
            trickle.stream.set_nonblocking(true).unwrap();
            trickle.sent = bytes.len();
            trickle
        })
        .collect()
}

/// Polls `trickles` until each is closed or `limit` has passed since `started`.
fn wait_closed(trickles: &mut [Trickle], started: Instant, limit: Duration) {
    while started.elapsed() < limit && trickles.iter().any(|t| t.closed.is_none()) {
        for trickle in trickles.iter_mut() {
            trickle.tick(started);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Slack for a normal request beside stalled uploads: at most twice its time
/// alone plus this (the stalled connections cost the event loop a little).
const BESIDE_STALLED_SLACK: Duration = Duration::from_millis(500);

#[test]
fn a_hundred_stalled_uploads_leave_a_normal_request_its_usual_time() {
    let idle = Duration::from_secs(3);
    let server = start(&[("STT_BODY_IDLE_SECONDS", "3")]);
    transcribe_jfk(&server); // warm
    let alone = transcribe_jfk(&server);
    let started = Instant::now();
    let mut stalled = stalled_uploads(&server, 100);
    // Every stalled upload is being received (the server reads the heads as they come).
    server.wait_metric("stt_uploads_in_flight", 100.0);
    assert_eq!(metric(&server, "stt_admitted_requests"), 0.0);
    let beside = transcribe_jfk(&server);
    eprintln!("jfk alone {alone:?}, beside 100 stalled uploads {beside:?}");
    assert!(
        beside <= alone * 2 + BESIDE_STALLED_SLACK,
        "beside stalled uploads {beside:?}, alone {alone:?}"
    );
    wait_closed(&mut stalled, started, idle + Duration::from_secs(5));
    for (n, trickle) in stalled.iter().enumerate() {
        let closed = trickle
            .closed
            .unwrap_or_else(|| panic!("stalled upload {n} still open"));
        assert!(
            closed >= idle - Duration::from_millis(500) && closed < idle + Duration::from_secs(2),
            "stalled upload {n} closed after {closed:?}"
        );
        assert_eq!(trickle.status(), Some(408), "{}", trickle.text());
        assert!(
            trickle.text().contains("body_stalled"),
            "{}",
            trickle.text()
        );
    }
    let text = server.metrics();
    assert!(
        text.contains("stt_uploads_shed_total{reason=\"stalled\"} 100"),
        "{text}"
    );
    assert_eq!(metric(&server, "stt_uploads_in_flight"), 0.0);
    assert_eq!(metric(&server, "stt_upload_bytes_held"), 0.0);
}

#[test]
fn a_burst_of_a_thousand_uploads_gets_documented_answers_within_the_memory_bound() {
    let idle = Duration::from_secs(3);
    let server = start(&[("STT_BODY_IDLE_SECONDS", "3")]);
    let rss = server.status_bytes("VmRSS:");
    let bound = rss
        + metric(&server, "stt_audio_memory_budget_bytes")
        + metric(&server, "stt_upload_memory_budget_bytes")
        + SLACK_BYTES;
    let max_uploads = 256;
    let started = Instant::now();
    let mut burst = stalled_uploads(&server, 1000);
    wait_closed(&mut burst, started, idle + Duration::from_secs(10));
    let peak = server.status_bytes("VmHWM:");
    let mut answers = std::collections::BTreeMap::<String, usize>::new();
    for trickle in &burst {
        assert!(trickle.closed.is_some(), "a burst connection still open");
        let text = trickle.text();
        let code = ["too_many_uploads", "body_stalled"]
            .into_iter()
            .find(|code| text.contains(code))
            .unwrap_or_else(|| panic!("undocumented answer: {text:?}"));
        *answers
            .entry(format!("{} {code}", trickle.status().unwrap()))
            .or_default() += 1;
    }
    eprintln!(
        "1000 uploads at once: {answers:?}; peak RSS {:.0} MB, bound {:.0} MB",
        peak / 1e6,
        bound / 1e6
    );
    assert_eq!(answers.get("408 body_stalled"), Some(&max_uploads));
    assert_eq!(
        answers.get("503 too_many_uploads"),
        Some(&(1000 - max_uploads))
    );
    assert!(peak <= bound, "peak RSS {peak} above {bound}");
    assert_eq!(metric(&server, "stt_uploads_in_flight"), 0.0);
    transcribe_jfk(&server);
}
