//! A `stt-server serve` process on a free port of 127.0.0.1 and a small
//! HTTP/1.1 client over `TcpStream` (so tests can also disconnect, lie about
//! lengths, and stop mid-body), for the end-to-end tests.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::http;
use crate::{fixture, linked_artifacts, stt_server_bin};

/// Longest the server may take to start and load tiny models.
pub const START_LIMIT: Duration = Duration::from_secs(120);

// ------------------------------------------------------------------ server

pub struct Server {
    pub child: Child,
    pub port: u16,
    pub log: PathBuf,
    pub _dir: tempfile::TempDir,
}

/// How many ports [`Server::start`] tries.
const PORT_ATTEMPTS: usize = 5;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Server {
    /// Starts `stt-server serve` with the linked libraries and `env`, and
    /// waits until it is ready (checking that /health answers meanwhile).
    ///
    /// The port is free when chosen, but a client connection's ephemeral port can
    /// take it before the server binds; the server then exits naming the address,
    /// and starts again on another port.
    pub fn start(env: &[(&str, &str)]) -> Self {
        for _ in 0..PORT_ATTEMPTS {
            let mut server = Self::spawn(env);
            if !server.lost_its_port() {
                server.wait_ready();
                return server;
            }
        }
        panic!("stt-server found its port taken {PORT_ATTEMPTS} times");
    }

    /// Waits until the server answers or exits: `true` when it exited because
    /// its port was taken (any other exit panics with the log).
    fn lost_its_port(&mut self) -> bool {
        let started = Instant::now();
        while started.elapsed() < START_LIMIT {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                let log = self.log_text();
                assert!(
                    log.contains("Address already in use"),
                    "stt-server exited with {status}:\n{log}"
                );
                return true;
            }
            if self.try_get("/health").is_ok() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Starts `stt-server serve` with the linked libraries and `env`.
    pub fn spawn(env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("server.log");
        let port = free_port();
        let lib_dir = linked_artifacts().join("lib");
        let mut command = Command::new(stt_server_bin());
        command.arg("serve");
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if name.starts_with("WHISPER_") || name.starts_with("STT_") || name == "LD_LIBRARY_PATH"
            {
                command.env_remove(name.as_ref());
            }
        }
        command
            .env("STT_HOST", "127.0.0.1")
            .env("STT_PORT", port.to_string())
            .env("WHISPER_LIB_DIR", &lib_dir)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).expect("log file"))
            .stderr(std::fs::File::create(&log).expect("log file"));
        let child = command.spawn().expect("spawn stt-server serve");
        Self {
            child,
            port,
            log,
            _dir: dir,
        }
    }

    pub fn wait_ready(&mut self) {
        let started = Instant::now();
        let mut health_seen = false;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!("stt-server exited with {status}:\n{}", self.log_text());
            }
            if let Ok(health) = self.try_get("/health") {
                assert_eq!(
                    health.status,
                    200,
                    "/health while loading: {}",
                    health.text()
                );
                health_seen = true;
                let ready = self.get("/ready");
                if ready.status == 200 {
                    return;
                }
                assert_eq!(ready.status, 503, "/ready while loading: {}", ready.text());
                assert_eq!(ready.json()["error"]["code"], "model_not_ready");
            }
            assert!(
                started.elapsed() < START_LIMIT,
                "not ready after {START_LIMIT:?} (health answered: {health_seen}):\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn try_get(&self, path: &str) -> std::io::Result<Response> {
        exchange(self.port, &request_head("GET", path, &[], 0), &[])
    }

    pub fn get(&self, path: &str) -> Response {
        self.try_get(path)
            .unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", self.log_text()))
    }

    pub fn post(&self, path: &str, content_type: &str, body: &[u8]) -> Response {
        let head = request_head("POST", path, &[("Content-Type", content_type)], body.len());
        exchange(self.port, &head, body)
            .unwrap_or_else(|e| panic!("POST {path}: {e}\n{}", self.log_text()))
    }

    pub fn post_form(&self, path: &str, form: &Form) -> Response {
        self.post(path, &form.content_type(), &form.body())
    }

    pub fn metrics(&self) -> String {
        self.get("/metrics").text()
    }

    /// Polls /metrics until `metric` has `value` (bounded, so a bug fails
    /// instead of hanging).
    pub fn wait_metric(&self, metric: &str, value: f64) {
        let started = Instant::now();
        loop {
            let text = self.metrics();
            if metric_value(&text, metric) == Some(value) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{metric} never reached {value}:\n{text}\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A `kB` line of `/proc/<pid>/status` (`"VmRSS:"`, `"VmHWM:"`), in bytes.
    pub fn status_bytes(&self, key: &str) -> f64 {
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
    pub fn threads_named(&self, prefix: &str) -> usize {
        std::fs::read_dir(format!("/proc/{}/task", self.child.id()))
            .expect("/proc task")
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .filter(|name| name.starts_with(prefix))
            .count()
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                started.elapsed() < limit,
                "still running after {limit:?}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
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

pub fn metric_value(text: &str, metric: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(metric) && l[metric.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

// ------------------------------------------------------------------ HTTP

/// A response: status, headers in order and the whole body (de-chunked).
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text, lossily.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// Asserts an error envelope with this status and code.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{}", self.text());
        let body = self.json();
        let error = &body["error"];
        assert_eq!(error["code"], code, "{body}");
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
        assert!(
            error["type"].is_string() && error.get("param").is_some(),
            "{body}"
        );
    }
}

pub fn request_head(method: &str, path: &str, headers: &[(&str, &str)], length: usize) -> Vec<u8> {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {length}\r\n"
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// Sends a request and parses the answer (see [`http::exchange`]).
pub fn exchange(port: u16, head: &[u8], body: &[u8]) -> std::io::Result<Response> {
    parse_response(&http::exchange(port, head, body)?)
}

pub fn parse_response(raw: &[u8]) -> std::io::Result<Response> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no response head"))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| bad("head not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body).ok_or_else(|| bad("bad chunked body"))?;
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

pub fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

// ------------------------------------------------------------------ forms

pub const BOUNDARY: &str = "----whisper-stt-e2e";

/// One form part: its name, (file name, media type) for files, and content.
pub struct Part {
    pub name: String,
    pub file: Option<(String, String)>,
    pub bytes: Vec<u8>,
}

#[derive(Default)]
pub struct Form {
    pub parts: Vec<Part>,
}

impl Form {
    pub fn file(name: &str, bytes: Vec<u8>) -> Self {
        Self::default().with_file(name, "application/octet-stream", bytes)
    }

    pub fn jfk() -> Self {
        Self::file("jfk.wav", read(&fixture("jfk.wav")))
    }

    pub fn with_file(mut self, name: &str, mime: &str, bytes: Vec<u8>) -> Self {
        self.parts.push(Part {
            name: "file".into(),
            file: Some((name.into(), mime.into())),
            bytes,
        });
        self
    }

    pub fn field(mut self, name: &str, value: &str) -> Self {
        self.parts.push(Part {
            name: name.into(),
            file: None,
            bytes: value.as_bytes().to_vec(),
        });
        self
    }

    pub fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={BOUNDARY}")
    }

    pub fn body(&self) -> Vec<u8> {
        let mut body = Vec::new();
        for Part { name, file, bytes } in &self.parts {
            body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
            match file {
                Some((file_name, mime)) => body.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\nContent-Type: {mime}\r\n\r\n"
                    )
                    .as_bytes(),
                ),
                None => body.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
                ),
            }
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        body
    }
}

pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// jfk.wav's speech repeated `times` times, as a plain 16-bit WAV.
pub fn long_jfk(times: usize) -> Vec<u8> {
    let samples = crate::speech::samples_of(&fixture("jfk.wav"));
    crate::speech::wav_bytes(&samples.repeat(times))
}

pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}
