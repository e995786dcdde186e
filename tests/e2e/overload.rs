//! `stt-server serve` under overload, with the real libraries and tiny.en:
//! forty concurrent one-hour uploads against the default limits, and many
//! clients that send their requests byte by byte. Each test spawns the binary
//! on a free port of 127.0.0.1 and talks raw HTTP/1.1 over `TcpStream`.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use whisper_stt_tests::http;
use whisper_stt_tests::{
    fixture, linked_artifacts, reference, stt_server_bin, tiny_en_model, word_error_rate,
};

/// Bound on the normalized word error rate of jfk's transcript.
const MAX_WER: f64 = 0.1;
/// Longest the server may take to start and load tiny.en.
const START_LIMIT: Duration = Duration::from_secs(120);
/// The default longest audio, seconds.
const MAX_AUDIO_SECONDS: f64 = 3600.0;
/// Bytes a run takes per second of audio beyond the job's samples:
/// whisper.cpp's padded copy of the samples while it computes the mel
/// (64,000) and the mel itself (80 bands × 100 frames × 4 bytes, kept by the
/// worker's state).
const RUN_BYTES_PER_SECOND: f64 = 96_000.0;
/// Connection buffers, thread stacks and allocator slack (docs/configuration.md).
const SLACK_BYTES: f64 = 64.0 * 1024.0 * 1024.0;
const BOUNDARY: &str = "----whisper-stt-overload";

struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts `stt-server serve` with the linked libraries, tiny.en and `env`
    /// (otherwise the defaults), and waits until it is ready.
    fn start(env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("server.log");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut command = Command::new(stt_server_bin());
        command.arg("serve");
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if name.starts_with("WHISPER_") || name.starts_with("STT_") {
                command.env_remove(name.as_ref());
            }
        }
        let child = command
            .env("STT_HOST", "127.0.0.1")
            .env("STT_PORT", port.to_string())
            .env("WHISPER_LIB_DIR", linked_artifacts().join("lib"))
            .env("WHISPER_MODEL_PATH", tiny_en_model())
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).expect("log file"))
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn stt-server serve");
        let mut server = Self {
            child,
            port,
            log,
            _dir: dir,
        };
        let started = Instant::now();
        while get(port, "/ready").map_or(true, |r| r.status != 200) {
            if let Some(status) = server.child.try_wait().expect("try_wait") {
                panic!("stt-server exited with {status}:\n{}", server.log_text());
            }
            assert!(
                started.elapsed() < START_LIMIT,
                "not ready:\n{}",
                server.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A `kB` line of /proc/<pid>/status, in bytes.
    fn status_bytes(&self, key: &str) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc status");
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {key} in /proc status"));
        kb * 1024.0
    }

    /// Threads of the server whose name starts with `prefix`.
    fn threads_named(&self, prefix: &str) -> usize {
        std::fs::read_dir(format!("/proc/{}/task", self.child.id()))
            .expect("/proc task")
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .filter(|name| name.starts_with(prefix))
            .count()
    }

    fn metric(&self, name: &str) -> f64 {
        let text = get(self.port, "/metrics").expect("GET /metrics").text();
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
    }

    /// Transcribes jfk.wav, asserting 200 and its words; returns the time taken.
    fn transcribe_jfk(&self) -> Duration {
        let body = form(
            "jfk.wav",
            &std::fs::read(fixture("jfk.wav")).expect("jfk.wav"),
        );
        let started = Instant::now();
        let response = request(self.port, &upload_head(body.len()), &body).expect("POST jfk");
        let taken = started.elapsed();
        assert_eq!(response.status, 200, "{}", response.text());
        let text = response.text();
        let json: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        let wer = word_error_rate(&reference("jfk.wav"), json["text"].as_str().unwrap());
        assert!(wer <= MAX_WER, "WER {wer:.3}: {text}");
        taken
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- stt-server log ---\n{}", self.log_text());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Response {
    status: u16,
    body: Vec<u8>,
}

impl Response {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn get(port: u16, path: &str) -> std::io::Result<Response> {
    let head = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    request(port, head.as_bytes(), &[])
}

fn upload_head(length: usize) -> Vec<u8> {
    format!(
        "POST /v1/audio/transcriptions HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {length}\r\n\r\n"
    )
    .into_bytes()
}

fn form(file_name: &str, bytes: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// Sends `head` and `body` and reads the answer's status and body (see
/// [`http::exchange`]).
fn request(port: u16, head: &[u8], body: &[u8]) -> std::io::Result<Response> {
    let raw = http::exchange(port, head, body)?;
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::new(ErrorKind::InvalidData, "no response head"))?;
    let status = std::str::from_utf8(&raw[..end])
        .ok()
        .and_then(|head| head.split(' ').nth(1)?.parse().ok())
        .ok_or_else(|| std::io::Error::new(ErrorKind::InvalidData, "no status"))?;
    Ok(Response {
        status,
        body: raw[end + 4..].to_vec(),
    })
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
    let body = form("hour.mp3", &mp3);
    let server = Server::start(&[]);
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    assert_eq!(
        server.threads_named("stt-decode-"),
        cores,
        "decoding threads"
    );
    let idle = server.status_bytes("VmRSS:");
    let workers = server.metric("stt_workers");
    let budget = server.metric("stt_audio_memory_budget_bytes");
    let bound = idle + budget + workers * MAX_AUDIO_SECONDS * RUN_BYTES_PER_SECOND + SLACK_BYTES;

    let head = upload_head(body.len());
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..40)
            .map(|_| scope.spawn(|| request(server.port, &head, &body)))
            .collect();
        clients
            .into_iter()
            .map(|client| match client.join().expect("client thread") {
                Ok(response) => {
                    assert!(
                        [200, 413, 429].contains(&response.status),
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
        "40 one-hour uploads: {} × 200, {} × 413, {} × 429; peak RSS {:.0} MB, bound {:.0} MB \
         (idle {:.0} MB + budget {:.0} MB + runs {:.0} MB + slack)",
        count(200),
        count(413),
        count(429),
        mb(peak),
        mb(bound),
        mb(idle),
        mb(budget),
        mb(workers * MAX_AUDIO_SECONDS * RUN_BYTES_PER_SECOND),
    );
    assert!(count(429) > 0, "the limits refused none: {statuses:?}");
    assert!(
        peak <= bound,
        "peak RSS {:.0} MB above the bound {:.0} MB",
        mb(peak),
        mb(bound)
    );
    assert_eq!(server.metric("stt_admitted_requests"), 0.0);
    assert_eq!(server.metric("stt_audio_memory_reserved_bytes"), 0.0);
    server.transcribe_jfk();
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
    let body_timeout = Duration::from_secs(3);
    let header_timeout = Duration::from_secs(5);
    let server = Server::start(&[("STT_BODY_TIMEOUT_SECONDS", "3")]);
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
    let jfk = form(
        "jfk.wav",
        &std::fs::read(fixture("jfk.wav")).expect("jfk.wav"),
    );
    let mut slow_bodies: Vec<Trickle> = (0..3)
        .map(|_| {
            let mut bytes = upload_head(jfk.len());
            let head_len = bytes.len();
            bytes.extend_from_slice(&jfk);
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
            server.transcribe_jfk()
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
            closed >= body_timeout - Duration::from_millis(500)
                && closed < body_timeout + Duration::from_secs(3),
            "slow body {n} closed after {closed:?}"
        );
        assert_eq!(
            trickle.status(),
            Some(408),
            "{}",
            String::from_utf8_lossy(&trickle.answer)
        );
    }
    assert_eq!(server.metric("stt_admitted_requests"), 0.0);
    server.transcribe_jfk();
}
