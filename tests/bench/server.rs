//! [`Server`]: an `stt-server serve` child on 127.0.0.1, killed when dropped.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{BenchError, Result};
use crate::http::{self, Multipart, Response};
use crate::procfs;

/// Longest wait for `/ready`.
const READY_TIMEOUT: Duration = Duration::from_secs(300);

/// How to start the server.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerOptions {
    /// The `stt-server` binary.
    #[arg(long)]
    pub server_bin: PathBuf,
    /// whisper.cpp library directory (WHISPER_LIB_DIR).
    #[arg(long)]
    pub lib_dir: PathBuf,
    /// Model file (WHISPER_MODEL_PATH).
    #[arg(long)]
    pub model: PathBuf,
    /// STT_WORKERS.
    #[arg(long, default_value_t = 1)]
    pub workers: u32,
    /// STT_THREADS_PER_WORKER.
    #[arg(long, default_value_t = 2)]
    pub threads: u32,
    /// STT_QUEUE_LIMIT [default: the server's, 4 × workers].
    #[arg(long)]
    pub queue_limit: Option<u32>,
    /// STT_AUDIO_CONTEXT: trimmed or full [default: the server's].
    #[arg(long)]
    pub audio_context: Option<String>,
    /// STT_MAX_UPLOAD_BYTES [default: the server's, 25M].
    #[arg(long)]
    pub max_upload: Option<String>,
    /// Extra environment for the server, NAME=VALUE (e.g. OMP_WAIT_POLICY=passive).
    #[arg(long = "server-env", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
}

/// Parses `NAME=VALUE`.
///
/// # Errors
/// When there is no `=`.
pub fn parse_env(spec: &str) -> Result<(String, String), String> {
    spec.split_once('=')
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected NAME=VALUE, got {spec:?}"))
}

/// A running server.
pub struct Server {
    child: Child,
    bin: PathBuf,
    log: PathBuf,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Seconds from spawn to the first `200` from `/ready`.
    pub ready_seconds: f64,
}

impl Server {
    /// Starts the server and waits until `/ready` answers 200.
    ///
    /// # Errors
    /// [`BenchError::Server`] when it exits or is not ready within 5 minutes.
    pub fn start(options: &ServerOptions) -> Result<Self> {
        let server_error = |reason: String| BenchError::Server {
            bin: options.server_bin.clone(),
            reason,
        };
        let addr = free_port().map_err(|e| server_error(format!("no free port: {e}")))?;
        let log = std::env::temp_dir().join(format!("bench-stt-server-{}.log", addr.port()));
        let log_file = std::fs::File::create(&log).map_err(BenchError::io(&log))?;
        let mut command = Command::new(&options.server_bin);
        command
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", std::env::var_os("HOME").unwrap_or_default())
            .env("RUST_LOG", "warn")
            .env("GGML_NO_BACKTRACE", "1")
            .env("WHISPER_LIB_DIR", &options.lib_dir)
            .env("WHISPER_MODEL_PATH", &options.model)
            .env("STT_HOST", "127.0.0.1")
            .env("STT_PORT", addr.port().to_string())
            .env("STT_WORKERS", options.workers.to_string())
            .env("STT_THREADS_PER_WORKER", options.threads.to_string())
            .env("STT_REQUEST_TIMEOUT_SECONDS", "3600")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        if let Some(limit) = options.queue_limit {
            command.env("STT_QUEUE_LIMIT", limit.to_string());
        }
        if let Some(context) = &options.audio_context {
            command.env("STT_AUDIO_CONTEXT", context);
        }
        if let Some(max) = &options.max_upload {
            command.env("STT_MAX_UPLOAD_BYTES", max);
        }
        for (name, value) in &options.env {
            command.env(name, value);
        }
        let started = Instant::now();
        let child = command
            .spawn()
            .map_err(|e| server_error(format!("cannot start: {e}")))?;
        let mut server = Self {
            child,
            bin: options.server_bin.clone(),
            log,
            addr,
            ready_seconds: 0.0,
        };
        loop {
            if let Some(status) = server.child.try_wait().ok().flatten() {
                return Err(server.error(format!("exited with {status} before ready")));
            }
            if let Ok(response) = http::get(addr, "/ready", Duration::from_secs(5)) {
                if response.status == 200 {
                    break;
                }
            }
            if started.elapsed() > READY_TIMEOUT {
                return Err(server.error(format!("not ready after {READY_TIMEOUT:?}")));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        server.ready_seconds = started.elapsed().as_secs_f64();
        Ok(server)
    }

    /// An error naming the server's log, with its last lines.
    pub fn error(&self, reason: String) -> BenchError {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(8).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        BenchError::Server {
            bin: self.bin.clone(),
            reason: format!("{reason}; log {}: {}", self.log.display(), tail.join(" | ")),
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Resident memory now, KiB (0 once gone).
    pub fn rss_kib(&self) -> u64 {
        procfs::rss_kib(self.pid()).unwrap_or(0)
    }

    /// Peak resident memory so far, KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        procfs::peak_rss_kib(self.pid()).unwrap_or(0)
    }

    /// `GET /metrics` as text.
    ///
    /// # Errors
    /// [`BenchError::Http`], or [`BenchError::Server`] for a non-200 answer.
    pub fn metrics(&self) -> Result<String> {
        let response = http::get(self.addr, "/metrics", Duration::from_secs(30))?;
        if response.status != 200 {
            return Err(self.error(format!("/metrics answered {}", response.status)));
        }
        Ok(response.text())
    }

    /// `POST /v1/audio/transcriptions` of `bytes` as `file_name`, in `language`, JSON answer.
    ///
    /// # Errors
    /// [`BenchError::Http`] when no complete response arrives.
    pub fn transcribe(&self, file_name: &str, bytes: &[u8], language: &str) -> Result<Response> {
        let (content_type, body) = Multipart::new()
            .text("model", "whisper-1")
            .text("language", language)
            .text("response_format", "json")
            .file("file", file_name, "application/octet-stream", bytes)
            .finish();
        Ok(http::post(
            self.addr,
            "/v1/audio/transcriptions",
            &content_type,
            &body,
            Duration::from_secs(3600),
        )?)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `text` of a JSON transcription response.
pub fn response_text(response: &Response) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(&response.body).ok()?;
    value.get("text")?.as_str().map(str::to_owned)
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> std::io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// The value of each sample of a Prometheus metric whose labels include all of `labels`.
pub fn metric_values(metrics: &str, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, label_text) = match series.split_once('{') {
                Some((metric, rest)) => (metric, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let matches = metric == name
                && labels
                    .iter()
                    .all(|(k, v)| label_text.contains(&format!("{k}=\"{v}\"")));
            matches.then(|| value.parse().ok()).flatten()
        })
        .collect()
}

/// The sum of [`metric_values`].
pub fn metric_sum(metrics: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    metric_values(metrics, name, labels).iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_lines_are_matched_by_name_and_labels() {
        let text =
            "# HELP x\nstt_http_requests_total{method=\"POST\",route=\"/v1/a\",status=\"200\"} 7\n\
                    stt_http_requests_total{method=\"GET\",route=\"/ready\",status=\"200\"} 3\n\
                    stt_queue_rejections_total 2\n";
        let name = "stt_http_requests_total";
        assert_eq!(metric_sum(text, name, &[("status", "200")]), 10.0);
        assert_eq!(metric_sum(text, name, &[("route", "/v1/a")]), 7.0);
        assert_eq!(metric_sum(text, "stt_queue_rejections_total", &[]), 2.0);
        assert!(metric_values(text, "stt_missing", &[]).is_empty());
        assert_eq!(parse_env("A=b=c"), Ok(("A".into(), "b=c".into())));
        assert!(parse_env("A").is_err());
    }
}
