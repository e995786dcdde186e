//! Resumable, verified, locked file downloads over HTTP(S).
//!
//! [`download`] fetches one URL into a destination path:
//! - data goes to `<dest>.part` and resumes from its length with an HTTP `Range`
//!   request (a server that ignores the range restarts it from zero);
//! - the finished `.part` is checked against an optional [`Checksum`], synced to disk
//!   and renamed into place, so the destination only ever holds a complete, verified
//!   file; a `.part` whose checksum does not match is removed;
//! - a lock on `<dest>.lock` serializes concurrent pulls of the same destination
//!   (threads or processes): the later one waits and then finds the finished file;
//! - connect/read timeouts bound every network wait, and failures that may be
//!   transient are retried with exponential backoff.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use log::{debug, info, warn};
use sha2::Digest;

use super::file_lock::{sibling, FileLock};

/// Where the upstream ggml models are published.
pub const DEFAULT_BASE_URL: &str = "https://huggingface.co/ggerganov/whisper.cpp/resolve/main";

/// Environment variable that overrides [`DEFAULT_BASE_URL`].
pub const BASE_URL_ENV: &str = "WHISPER_MODEL_BASE_URL";

/// Upper bound of the pause between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Size of the copy buffer.
const CHUNK: usize = 64 * 1024;

/// Without a terminal, a progress line is logged at least this often.
const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The URL of `file_name` under `base` (`<base>/<file name>`).
pub fn model_url(base: &str, file_name: &str) -> String {
    format!("{}/{file_name}", base.trim_end_matches('/'))
}

/// Hash algorithm of a [`Checksum`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumKind {
    /// SHA-1 (what upstream publishes for the ggml models).
    Sha1,
    /// SHA-256.
    Sha256,
}

/// An expected file digest, as hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checksum {
    /// Expected SHA-1, hex.
    Sha1(String),
    /// Expected SHA-256, hex.
    Sha256(String),
}

impl Checksum {
    /// The hash algorithm.
    pub fn kind(&self) -> ChecksumKind {
        match self {
            Self::Sha1(_) => ChecksumKind::Sha1,
            Self::Sha256(_) => ChecksumKind::Sha256,
        }
    }

    /// The expected digest as given.
    pub fn expected(&self) -> &str {
        match self {
            Self::Sha1(hex) | Self::Sha256(hex) => hex,
        }
    }

    /// Whether `actual` (hex, any case) is the expected digest.
    pub fn matches(&self, actual: &str) -> bool {
        self.expected().trim().eq_ignore_ascii_case(actual.trim())
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sha1(hex) => write!(f, "sha1:{hex}"),
            Self::Sha256(hex) => write!(f, "sha256:{hex}"),
        }
    }
}

/// The lowercase hex digest of the file at `path`, read as a stream.
///
/// # Errors
/// Any error opening or reading the file.
pub fn file_checksum(path: &Path, kind: ChecksumKind) -> io::Result<String> {
    let file = File::open(path)?;
    match kind {
        ChecksumKind::Sha1 => hash_reader::<sha1::Sha1>(file),
        ChecksumKind::Sha256 => hash_reader::<sha2::Sha256>(file),
    }
}

fn hash_reader<D: Digest>(mut reader: impl Read) -> io::Result<String> {
    let mut hasher = D::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(hex::encode(hasher.finalize())),
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// How [`download`] behaves on the network and on screen.
#[derive(Debug, Clone)]
pub struct DownloadConfig {
    /// Limit for establishing a connection.
    pub connect_timeout: Duration,
    /// Limit for any single wait on data from the server (headers or body).
    pub read_timeout: Duration,
    /// Total number of requests tried for failures that may be transient
    /// (timeouts, dropped connections, 5xx, 408, 429); at least 1.
    pub max_attempts: u32,
    /// Pause after the first failed attempt; doubled after each further one.
    pub initial_backoff: Duration,
    /// Draw an indicatif progress bar (otherwise progress goes to the log).
    pub show_progress_bar: bool,
}

impl Default for DownloadConfig {
    /// 15 s connect, 60 s read, 5 attempts from 1 s backoff, a bar when stderr is a terminal.
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(60),
            max_attempts: 5,
            initial_backoff: Duration::from_secs(1),
            show_progress_bar: io::stderr().is_terminal(),
        }
    }
}

/// What a successful [`download`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadReport {
    /// Size of the file now at the destination.
    pub bytes: u64,
    /// Byte offset the successful request started at (0 for a fresh download).
    pub resumed_from: u64,
    /// Requests made (0 when the file was already present).
    pub attempts: u32,
    /// The destination already held a (verified, when a checksum was given) file.
    pub already_present: bool,
}

/// Why a [`download`] failed. `Display` is one line naming the URL or path.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// The server answered with an error status.
    #[error("GET {url}: HTTP status {status}")]
    Http {
        /// Requested URL.
        url: String,
        /// HTTP status code.
        status: u16,
    },
    /// Connecting or waiting for data exceeded the configured timeout.
    #[error("GET {url}: timed out (no connection or no data within the timeout)")]
    Timeout {
        /// Requested URL.
        url: String,
    },
    /// The connection failed or broke (refused, reset, closed early, bad response).
    #[error("GET {url}: {reason}")]
    Transport {
        /// Requested URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The URL cannot be requested at all.
    #[error("invalid URL {url}: {reason}")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The downloaded data does not have the expected digest.
    #[error("checksum mismatch for {url}: expected {expected}, got {actual}")]
    ChecksumMismatch {
        /// Requested URL.
        url: String,
        /// Expected digest (`sha1:…`/`sha256:…`).
        expected: String,
        /// Digest of the data received.
        actual: String,
    },
    /// A local file operation failed (disk full, permissions, …).
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Every attempt failed with a possibly transient error; `last` is the final one.
    #[error("gave up after {attempts} attempt(s): {last}")]
    RetriesExhausted {
        /// Requests made.
        attempts: u32,
        /// The error of the last attempt.
        last: Box<DownloadError>,
    },
}

impl DownloadError {
    fn io(path: &Path, source: io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Whether trying again later may succeed.
    fn is_transient(&self) -> bool {
        match self {
            Self::Http { status, .. } => matches!(status, 408 | 416 | 429 | 500..=599),
            Self::Timeout { .. } | Self::Transport { .. } => true,
            Self::InvalidUrl { .. }
            | Self::ChecksumMismatch { .. }
            | Self::Io { .. }
            | Self::RetriesExhausted { .. } => false,
        }
    }

    /// Classifies an error reading from the network.
    fn from_read(url: &str, e: &io::Error) -> Self {
        if matches!(
            e.kind(),
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
        ) {
            Self::Timeout { url: url.into() }
        } else {
            Self::Transport {
                url: url.into(),
                reason: e.to_string(),
            }
        }
    }

    fn from_ureq(url: &str, e: ureq::Error) -> Self {
        let transport = match e {
            ureq::Error::Status(status, _) => {
                return Self::Http {
                    url: url.into(),
                    status,
                }
            }
            ureq::Error::Transport(t) => t,
        };
        if matches!(
            transport.kind(),
            ureq::ErrorKind::InvalidUrl | ureq::ErrorKind::UnknownScheme
        ) {
            return Self::InvalidUrl {
                url: url.into(),
                reason: transport.to_string(),
            };
        }
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&transport);
        while let Some(err) = cause {
            if let Some(io_err) = err.downcast_ref::<io::Error>() {
                return Self::from_read(url, io_err);
            }
            cause = err.source();
        }
        Self::Transport {
            url: url.into(),
            reason: transport.to_string(),
        }
    }
}

/// Downloads `url` to `dest`, resuming a previous `.part`, verifying `checksum` when
/// given, and renaming into place only once complete and verified.
///
/// If `dest` already exists (possibly finished meanwhile by a concurrent pull that
/// held the lock) and matches `checksum` (or no checksum is given), nothing is
/// fetched. An existing `dest` that does not match is downloaded again and replaced.
///
/// # Errors
/// [`DownloadError::Http`] for a non-transient status (no retry),
/// [`DownloadError::RetriesExhausted`] when every attempt failed transiently,
/// [`DownloadError::ChecksumMismatch`] (the `.part` is removed),
/// [`DownloadError::Io`] for local file errors such as a full disk (the partial data is
/// kept for a later resume), [`DownloadError::InvalidUrl`].
pub fn download(
    url: &str,
    dest: &Path,
    checksum: Option<&Checksum>,
    config: &DownloadConfig,
) -> Result<DownloadReport, DownloadError> {
    if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| DownloadError::io(dir, e))?;
    }
    let part = sibling(dest, ".part");
    let lock_path = sibling(dest, ".lock");
    let _lock = FileLock::acquire(&lock_path).map_err(|e| DownloadError::io(&lock_path, e))?;

    if let Some(bytes) = existing_valid(dest, checksum)? {
        info!("{} already present ({bytes} bytes)", dest.display());
        return Ok(DownloadReport {
            bytes,
            resumed_from: 0,
            attempts: 0,
            already_present: true,
        });
    }

    let (resumed_from, attempts) = fetch_with_retries(url, dest, &part, config)?;

    if let Some(expected) = checksum {
        if let Some(actual) = digest_mismatch(&part, expected)? {
            fs::remove_file(&part).map_err(|e| DownloadError::io(&part, e))?;
            return Err(DownloadError::ChecksumMismatch {
                url: url.into(),
                expected: expected.to_string(),
                actual,
            });
        }
    }
    let bytes = fs::metadata(&part)
        .map_err(|e| DownloadError::io(&part, e))?
        .len();
    fs::rename(&part, dest).map_err(|e| DownloadError::io(dest, e))?;
    sync_parent(dest)?;
    info!("downloaded {url} to {} ({bytes} bytes)", dest.display());
    Ok(DownloadReport {
        bytes,
        resumed_from,
        attempts,
        already_present: false,
    })
}

/// Fetches `url` into `part`, retrying transient failures. Returns the offset the
/// successful request started at and the number of requests made.
fn fetch_with_retries(
    url: &str,
    dest: &Path,
    part: &Path,
    config: &DownloadConfig,
) -> Result<(u64, u32), DownloadError> {
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(config.connect_timeout)
        .timeout_read(config.read_timeout)
        .user_agent(concat!("stt-server/", env!("CARGO_PKG_VERSION")))
        .build();
    let name = dest.file_name().map_or_else(
        || dest.display().to_string(),
        |n| n.to_string_lossy().into(),
    );
    let mut progress = Progress::new(config.show_progress_bar, name);
    let max_attempts = config.max_attempts.max(1);
    let mut attempts = 0;
    let resumed_from = loop {
        attempts += 1;
        match fetch_once(&agent, url, part, &mut progress) {
            Ok(start) => break start,
            Err(e) if e.is_transient() && attempts < max_attempts => {
                let delay = backoff(config.initial_backoff, attempts);
                warn!("{e}; retrying in {delay:?} (attempt {attempts}/{max_attempts})");
                thread::sleep(delay);
            }
            Err(e) => {
                progress.abandon();
                return Err(if e.is_transient() {
                    DownloadError::RetriesExhausted {
                        attempts,
                        last: Box::new(e),
                    }
                } else {
                    e
                });
            }
        }
    };
    progress.finish();
    Ok((resumed_from, attempts))
}

/// The actual digest of `path` if it differs from `expected`.
fn digest_mismatch(path: &Path, expected: &Checksum) -> Result<Option<String>, DownloadError> {
    let actual = file_checksum(path, expected.kind()).map_err(|e| DownloadError::io(path, e))?;
    Ok((!expected.matches(&actual)).then_some(actual))
}

/// The pause after failed attempt number `attempt` (1-based).
fn backoff(initial: Duration, attempt: u32) -> Duration {
    initial
        .saturating_mul(1 << (attempt - 1).min(20))
        .min(MAX_BACKOFF)
}

/// Size of `dest` if it exists and matches `checksum` (when given).
fn existing_valid(dest: &Path, checksum: Option<&Checksum>) -> Result<Option<u64>, DownloadError> {
    let meta = match fs::metadata(dest) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(DownloadError::io(dest, e)),
    };
    if let Some(expected) = checksum {
        if let Some(actual) = digest_mismatch(dest, expected)? {
            warn!(
                "{} exists but has checksum {actual}, expected {expected}; downloading it again",
                dest.display()
            );
            return Ok(None);
        }
    }
    Ok(Some(meta.len()))
}

/// One request: appends to `part` from its current length. Returns the offset the
/// response started at. The `.part` is synced to disk before returning `Ok`.
fn fetch_once(
    agent: &ureq::Agent,
    url: &str,
    part: &Path,
    progress: &mut Progress,
) -> Result<u64, DownloadError> {
    let io_err = |e| DownloadError::io(part, e);
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(part)
        .map_err(io_err)?;
    let offset = file.metadata().map_err(io_err)?.len();

    // Identity encoding keeps byte offsets and Content-Length meaningful for resuming.
    let mut request = agent.get(url).set("Accept-Encoding", "identity");
    if offset > 0 {
        info!("resuming {url} at byte {offset}");
        request = request.set("Range", &format!("bytes={offset}-"));
    }
    let response = match request.call() {
        Ok(response) => response,
        Err(ureq::Error::Status(416, response)) if offset > 0 => {
            let total = response
                .header("Content-Range")
                .and_then(|v| ContentRange::parse(v).total);
            if total == Some(offset) {
                debug!("{} already holds all {offset} bytes", part.display());
                file.sync_all().map_err(io_err)?;
                return Ok(offset);
            }
            warn!("{url}: range {offset}- not satisfiable (size {total:?}); restarting");
            file.set_len(0).map_err(io_err)?;
            return Err(DownloadError::Http {
                url: url.into(),
                status: 416,
            });
        }
        Err(e) => return Err(DownloadError::from_ureq(url, e)),
    };

    let start = if response.status() == 206 {
        let range = response.header("Content-Range").map(ContentRange::parse);
        if range.and_then(|r| r.start) != Some(offset) {
            file.set_len(0).map_err(io_err)?;
            return Err(DownloadError::Transport {
                url: url.into(),
                reason: format!(
                    "asked for bytes {offset}- but got Content-Range {:?}; restarting",
                    response.header("Content-Range")
                ),
            });
        }
        offset
    } else {
        if offset > 0 {
            info!("{url}: server ignored the range request; restarting from zero");
            file.set_len(0).map_err(io_err)?;
        }
        0
    };
    file.seek(SeekFrom::Start(start)).map_err(io_err)?;
    let total = response
        .header("Content-Length")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|len| start + len);
    progress.start(start, total);

    let mut reader = response.into_reader();
    let mut buf = vec![0u8; CHUNK];
    let mut pos = start;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // Keep what arrived for the next attempt.
                file.sync_data().map_err(io_err)?;
                return Err(DownloadError::from_read(url, &e));
            }
        };
        file.write_all(&buf[..n]).map_err(io_err)?;
        pos += n as u64;
        progress.advance(pos);
    }
    file.sync_all().map_err(io_err)?;
    Ok(start)
}

/// Makes the rename of `path` durable by syncing its directory (Unix only; elsewhere
/// directories cannot be opened for syncing).
fn sync_parent(path: &Path) -> Result<(), DownloadError> {
    if cfg!(unix) {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| DownloadError::io(dir, e))?;
    }
    Ok(())
}

/// The parts of a `Content-Range: bytes <start>-<end>/<total>` (or `bytes */<total>`)
/// header that are present.
#[derive(Debug, Clone, Copy)]
struct ContentRange {
    start: Option<u64>,
    total: Option<u64>,
}

impl ContentRange {
    fn parse(value: &str) -> Self {
        let spec = value.trim().strip_prefix("bytes").unwrap_or("").trim();
        let (range, total) = spec.split_once('/').unwrap_or((spec, "*"));
        Self {
            start: range
                .split_once('-')
                .and_then(|(s, _)| s.trim().parse().ok()),
            total: total.trim().parse().ok(),
        }
    }
}

/// Progress display: an indicatif bar on a terminal, otherwise log lines.
enum Progress {
    Bar(ProgressBar),
    Log(LogProgress),
}

/// Logs a line every 10 % (or every [`LOG_INTERVAL`] when the size is unknown or
/// progress is slow).
struct LogProgress {
    name: String,
    total: Option<u64>,
    last_step: u64,
    last_time: Instant,
}

impl LogProgress {
    fn step(&self, pos: u64) -> u64 {
        self.total.map_or(0, |t| percent(pos, t) / 10)
    }

    fn line(&mut self, pos: u64) {
        self.last_step = self.step(pos);
        self.last_time = Instant::now();
        match self.total {
            Some(t) => info!("{}: {pos} of {t} bytes ({}%)", self.name, percent(pos, t)),
            None => info!("{}: {pos} bytes (size unknown)", self.name),
        }
    }
}

impl Progress {
    fn new(show_bar: bool, name: String) -> Self {
        if show_bar {
            let bar = ProgressBar::no_length().with_message(name);
            let style = ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
            )
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            Self::Bar(bar)
        } else {
            Self::Log(LogProgress {
                name,
                total: None,
                last_step: 0,
                last_time: Instant::now(),
            })
        }
    }

    /// A (new) response starts at `pos` of `total` bytes.
    fn start(&mut self, pos: u64, total: Option<u64>) {
        match self {
            Self::Bar(bar) => {
                match total {
                    Some(len) => bar.set_length(len),
                    None => bar.unset_length(),
                }
                bar.set_position(pos);
            }
            Self::Log(log) => {
                log.total = total;
                log.line(pos);
            }
        }
    }

    fn advance(&mut self, pos: u64) {
        match self {
            Self::Bar(bar) => bar.set_position(pos),
            Self::Log(log) => {
                if log.step(pos) > log.last_step || log.last_time.elapsed() >= LOG_INTERVAL {
                    log.line(pos);
                }
            }
        }
    }

    fn finish(&self) {
        if let Self::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }

    fn abandon(&self) {
        if let Self::Bar(bar) = self {
            bar.abandon();
        }
    }
}

fn percent(pos: u64, total: u64) -> u64 {
    pos.saturating_mul(100).checked_div(total).unwrap_or(100)
}
