//! Configuration from environment variables and command-line flags (flags win).
//!
//! Every value is read as text and validated here, so an invalid value stops the
//! start with a message naming both the variable and the flag.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use whisper_safe::AudioContext;

use crate::engine::ModelSource;
use crate::models::catalog::{self, ModelRequest, Quant};

/// Default upload limit: 25 MiB, as OpenAI's API.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 25 * 1024 * 1024;
/// Default longest audio accepted, in seconds.
pub const DEFAULT_MAX_AUDIO_SECONDS: f64 = 3600.0;
/// Default time a request may take from arrival to answer.
pub const DEFAULT_REQUEST_TIMEOUT_SECONDS: f64 = 600.0;
/// Default grace period for in-flight requests at shutdown.
pub const DEFAULT_SHUTDOWN_TIMEOUT_SECONDS: u64 = 30;
/// Default time a client has to send a request's head (line and headers).
pub const DEFAULT_HEADER_TIMEOUT_SECONDS: f64 = 5.0;
/// Default time an idle keep-alive connection stays open.
pub const DEFAULT_KEEP_ALIVE_SECONDS: f64 = 5.0;
/// Default time a client has to send an upload, unless half the request timeout is shorter.
pub const DEFAULT_BODY_TIMEOUT_SECONDS: f64 = 120.0;
/// Default most open connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Bytes of decoded audio per second: 16 kHz mono `f32`.
pub const SAMPLE_BYTES_PER_SECOND: u64 = 16_000 * 4;
/// whisper.cpp gains little beyond this many threads per run.
const MAX_DEFAULT_THREADS_PER_WORKER: usize = 4;

/// Which model and libraries to load; shared by `serve` and `transcribe`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ModelArgs {
    /// Model size from the catalog: tiny, tiny.en, base, base.en, small, medium, large-v3, … [default: small]
    #[arg(long, env = "WHISPER_MODEL_SIZE", value_name = "SIZE")]
    pub model_size: Option<String>,
    /// Weight type of the model file: f16, q8_0, q5_1, q5_0, q4_0, iq4_nl [default: q8_0]
    #[arg(long, env = "WHISPER_MODEL_QUANT", value_name = "QUANT")]
    pub model_quant: Option<String>,
    /// Artifact directory: `<dir>/whisper_<size>_xeon/ggml-<size>-<quant>.bin` and the libraries [default: artifacts]
    #[arg(long, env = "WHISPER_ARTIFACTS_DIR", value_name = "DIR")]
    pub artifacts_dir: Option<PathBuf>,
    /// Directory of the whisper.cpp shared libraries (overrides the artifact layout).
    #[arg(long, env = "WHISPER_LIB_DIR", value_name = "DIR")]
    pub lib_dir: Option<PathBuf>,
    /// An explicit model file (overrides size and quantization).
    #[arg(long, env = "WHISPER_MODEL_PATH", value_name = "FILE")]
    pub model_path: Option<PathBuf>,
    /// CPU backend variant (`haswell`, …) or file, for the dynamic-backend layout.
    #[arg(long, env = "WHISPER_CPU_BACKEND", value_name = "VARIANT")]
    pub cpu_backend: Option<String>,
    /// Flash attention: `on` (less memory per state) or `off` (faster on the CPUs
    /// measured in docs/benchmarks.md) [default: off]
    #[arg(long, env = "WHISPER_FLASH_ATTN", value_name = "on|off")]
    pub flash_attn: Option<String>,
    /// Silero VAD model file, or `off`; audio longer than 30 s is then cut at
    /// speech [default: `<artifacts>/silero-vad/ggml-silero-v6.bin` when present]
    #[arg(long, env = "WHISPER_VAD_MODEL", value_name = "FILE|off")]
    pub vad_model: Option<String>,
}

/// Flags and variables of `stt-server serve`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ServeArgs {
    /// Model and libraries.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Address to listen on [default: 0.0.0.0]
    #[arg(long, env = "STT_HOST")]
    pub host: Option<String>,
    /// Port to listen on [default: 8080]
    #[arg(long, env = "STT_PORT")]
    pub port: Option<String>,
    /// Parallel decoding states (one thread each) [default: cores / threads per worker]
    #[arg(long, env = "STT_WORKERS")]
    pub workers: Option<String>,
    /// Compute threads of each run [default: min(4, cores / workers)]
    #[arg(long, env = "STT_THREADS_PER_WORKER")]
    pub threads_per_worker: Option<String>,
    /// Requests that may wait for a worker; beyond it, 429 [default: 4 × workers]
    #[arg(long, env = "STT_QUEUE_LIMIT")]
    pub queue_limit: Option<String>,
    /// Largest upload, bytes; suffixes K, M, G (×1024) or KB, MB, GB (×1000) [default: 25M]
    #[arg(long, env = "STT_MAX_UPLOAD_BYTES")]
    pub max_upload_bytes: Option<String>,
    /// Longest audio accepted, seconds [default: 3600]
    #[arg(long, env = "STT_MAX_AUDIO_SECONDS")]
    pub max_audio_seconds: Option<String>,
    /// Longest a request may take, seconds, queueing included [default: 600]
    #[arg(long, env = "STT_REQUEST_TIMEOUT_SECONDS")]
    pub request_timeout_seconds: Option<String>,
    /// Grace period for in-flight requests after SIGTERM/SIGINT, seconds [default: 30]
    #[arg(long, env = "STT_SHUTDOWN_TIMEOUT_SECONDS")]
    pub shutdown_timeout_seconds: Option<String>,
    /// Comma-separated bearer keys; when set, every endpoint except /health and /ready needs one.
    #[arg(long, env = "STT_API_KEYS", hide_env_values = true)]
    pub api_keys: Option<String>,
    /// Comma-separated bearer keys that may also load models; with any key configured, loads need one of these.
    #[arg(long, env = "STT_ADMIN_KEYS", hide_env_values = true)]
    pub admin_keys: Option<String>,
    /// Bytes the admitted requests' uploads and decoded audio may hold together [default: (workers + queue limit) × (max upload + 1 MiB + max audio × 64000)]
    #[arg(long, env = "STT_AUDIO_MEMORY_BYTES")]
    pub audio_memory_bytes: Option<String>,
    /// HTTP worker threads [default: cores]
    #[arg(long, env = "STT_HTTP_WORKERS")]
    pub http_workers: Option<String>,
    /// Most open connections; beyond it, new ones wait in the listen backlog [default: 1024]
    #[arg(long, env = "STT_MAX_CONNECTIONS")]
    pub max_connections: Option<String>,
    /// Time a client has to send a request's line and headers, seconds [default: 5]
    #[arg(long, env = "STT_HEADER_TIMEOUT_SECONDS")]
    pub header_timeout_seconds: Option<String>,
    /// Time an idle keep-alive connection stays open, seconds [default: 5]
    #[arg(long, env = "STT_KEEP_ALIVE_SECONDS")]
    pub keep_alive_seconds: Option<String>,
    /// Time a client has to send an upload, seconds; below the request timeout [default: min(120, request timeout ÷ 2)]
    #[arg(long, env = "STT_BODY_TIMEOUT_SECONDS")]
    pub body_timeout_seconds: Option<String>,
    /// Encoder context for audio under 30 s: `trimmed` (faster) or `full` [default: trimmed]
    #[arg(long, env = "STT_AUDIO_CONTEXT")]
    pub audio_context: Option<String>,
}

/// A value that stops the start.
#[derive(Debug, thiserror::Error)]
#[error("invalid {variable} (--{flag}) value {value:?}: {reason}")]
pub struct ConfigError {
    /// The environment variable.
    pub variable: &'static str,
    /// The flag, without dashes.
    pub flag: &'static str,
    /// The value given.
    pub value: String,
    /// Why it is refused.
    pub reason: String,
}

/// The validated model selection.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// Catalog size, and the weight type when one is set (used when no explicit
    /// path is given; see [`ModelRequest::resolve`] for a size without one).
    pub request: ModelRequest,
    /// Artifact directory.
    pub artifacts_dir: PathBuf,
    /// Library directory, when set explicitly.
    pub lib_dir: Option<PathBuf>,
    /// Explicit model file.
    pub model_path: Option<PathBuf>,
    /// CPU backend pin.
    pub cpu_backend: Option<String>,
    /// Flash attention in whisper.cpp's context.
    pub flash_attn: bool,
    /// The voice-activity detector model.
    pub vad_model: VadModel,
}

/// Which voice-activity detector model to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VadModel {
    /// This file, as configured: a missing or broken file stops the start.
    Explicit(PathBuf),
    /// The artifact layout's file, when it is there.
    Default(PathBuf),
    /// None (`WHISPER_VAD_MODEL=off`).
    Off,
}

impl ModelConfig {
    /// Validates the model flags and variables.
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable.
    pub fn from_args(args: ModelArgs) -> Result<Self, ConfigError> {
        let size = text(args.model_size);
        let size = size.as_deref().unwrap_or(whisper_safe::DEFAULT_MODEL_SIZE);
        let model = catalog::lookup(size).map_err(|e| ConfigError {
            variable: "WHISPER_MODEL_SIZE",
            flag: "model-size",
            value: size.to_owned(),
            reason: e.to_string(),
        })?;
        let quant = text(args.model_quant)
            .map(|q| {
                q.parse::<Quant>().map_err(|e| ConfigError {
                    variable: "WHISPER_MODEL_QUANT",
                    flag: "model-quant",
                    value: q.clone(),
                    reason: e.to_string(),
                })
            })
            .transpose()?;
        let model_path = args.model_path.filter(|p| !p.as_os_str().is_empty());
        if let Some(path) = &model_path {
            if !path.is_file() {
                return Err(ConfigError {
                    variable: "WHISPER_MODEL_PATH",
                    flag: "model-path",
                    value: path.display().to_string(),
                    reason: "no such file".into(),
                });
            }
        }
        let flash_attn = match text(args.flash_attn).as_deref() {
            None | Some("off") => false,
            Some("on") => true,
            Some(other) => {
                return Err(ConfigError {
                    variable: "WHISPER_FLASH_ATTN",
                    flag: "flash-attn",
                    value: other.to_owned(),
                    reason: "expected on or off".into(),
                })
            }
        };
        let artifacts_dir = args
            .artifacts_dir
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from(whisper_safe::DEFAULT_ARTIFACTS_DIR));
        let vad_model = match text(args.vad_model) {
            None => VadModel::Default(crate::models::vad_model_path(&artifacts_dir)),
            Some(off) if off.eq_ignore_ascii_case("off") => VadModel::Off,
            Some(path) => {
                let path = PathBuf::from(path);
                if !path.is_file() {
                    return Err(ConfigError {
                        variable: "WHISPER_VAD_MODEL",
                        flag: "vad-model",
                        value: path.display().to_string(),
                        reason: "no such file (stt-server models pull silero-vad, or off)".into(),
                    });
                }
                VadModel::Explicit(path)
            }
        };
        let lib_dir = args.lib_dir.filter(|p| !p.as_os_str().is_empty());
        if let Some(dir) = &lib_dir {
            if !dir.is_dir() {
                return Err(ConfigError {
                    variable: "WHISPER_LIB_DIR",
                    flag: "lib-dir",
                    value: dir.display().to_string(),
                    reason: "no such directory".into(),
                });
            }
        }
        Ok(Self {
            request: ModelRequest { model, quant },
            artifacts_dir,
            lib_dir,
            model_path,
            cpu_backend: text(args.cpu_backend),
            flash_attn,
            vad_model,
        })
    }

    /// Loads the voice-activity detector into `engine`: an explicit file must
    /// load; the default one is used when present and loadable, and otherwise
    /// logged (long audio is then cut at quiet moments).
    ///
    /// # Errors
    /// [`ConfigError`] naming the file and the cause.
    pub fn load_vad(&self, engine: &crate::engine::Engine) -> Result<(), ConfigError> {
        let (path, explicit) = match &self.vad_model {
            VadModel::Off => {
                log::info!("voice-activity detection off (WHISPER_VAD_MODEL=off)");
                return Ok(());
            }
            VadModel::Explicit(path) => (path, true),
            VadModel::Default(path) => (path, false),
        };
        if !explicit && !path.is_file() {
            log::warn!(
                "no VAD model at {}: long audio is cut at quiet moments and silence is \
                 decoded (stt-server models pull silero-vad)",
                path.display()
            );
            return Ok(());
        }
        match engine.load_speech_detector(path) {
            Ok(()) => Ok(()),
            Err(e) if explicit => Err(ConfigError {
                variable: "WHISPER_VAD_MODEL",
                flag: "vad-model",
                value: path.display().to_string(),
                reason: e.to_string(),
            }),
            Err(e) => {
                log::error!("cannot load the VAD model {}: {e}", path.display());
                Ok(())
            }
        }
    }

    /// The model to load at start: the explicit file, else the catalog entry in
    /// the artifact layout (for a size without a weight type, a file already
    /// present is preferred; one log line says which and why).
    pub fn initial_source(&self) -> ModelSource {
        match &self.model_path {
            Some(path) => ModelSource::from_path(path.clone()),
            None => {
                let resolved = self.request.resolve(&self.artifacts_dir);
                log::info!("serving model {resolved}");
                ModelSource::from_catalog(resolved.spec, &self.artifacts_dir)
            }
        }
    }

    /// How whisper.cpp contexts are created.
    pub fn context_options(&self) -> whisper_safe::ContextOptions {
        whisper_safe::ContextOptions {
            flash_attn: self.flash_attn,
            ..Default::default()
        }
    }

    /// Where the libraries are loaded from (same precedence as the loader's own:
    /// explicit directory, then the artifact layout).
    ///
    /// # Errors
    /// [`whisper_safe::LoadError`] when no library directory exists.
    pub fn loader_config(&self) -> Result<whisper_safe::LoaderConfig, whisper_safe::LoadError> {
        whisper_safe::LoaderConfig::resolve(
            self.lib_dir.clone(),
            Some(self.artifacts_dir.clone()),
            Some(self.request.model.id.to_owned()),
            self.cpu_backend.clone(),
        )
    }
}

/// The validated configuration of `serve`.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Model and libraries.
    pub model: ModelConfig,
    /// Listening address.
    pub listen: SocketAddr,
    /// Parallel decoding states.
    pub workers: usize,
    /// Compute threads per run.
    pub threads_per_worker: usize,
    /// Requests that may wait for a worker.
    pub queue_limit: usize,
    /// Largest upload in bytes.
    pub max_upload_bytes: u64,
    /// Longest audio accepted.
    pub max_audio_seconds: f64,
    /// Longest a request may take.
    pub request_timeout: Duration,
    /// Grace period at shutdown.
    pub shutdown_timeout: Duration,
    /// Accepted bearer keys (empty: no authentication unless admin keys are set).
    pub api_keys: Vec<String>,
    /// Keys that may also load models.
    pub admin_keys: Vec<String>,
    /// Encoder context policy.
    pub audio_context: AudioContext,
    /// Bytes the admitted requests' uploads and decoded audio may hold together.
    pub audio_memory_bytes: u64,
    /// HTTP worker threads.
    pub http_workers: usize,
    /// Most open connections.
    pub max_connections: usize,
    /// Time to send a request's head.
    pub header_timeout: Duration,
    /// Idle keep-alive time.
    pub keep_alive: Duration,
    /// Time to send an upload.
    pub body_timeout: Duration,
}

impl Config {
    /// Validates every flag and variable of `serve`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first invalid variable.
    pub fn from_args(args: ServeArgs) -> Result<Self, ConfigError> {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let model = ModelConfig::from_args(args.model)?;
        let host = text(args.host).unwrap_or_else(|| "0.0.0.0".into());
        let port: u16 = parse(args.port, "STT_PORT", "port")?.unwrap_or(8080);
        let listen = (host.as_str(), port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| ConfigError {
                variable: "STT_HOST",
                flag: "host",
                value: host.clone(),
                reason: "not an address or a resolvable host name".into(),
            })?;
        let workers = parse_range(args.workers, "STT_WORKERS", "workers", 1..=256)?;
        let threads = parse_range(
            args.threads_per_worker,
            "STT_THREADS_PER_WORKER",
            "threads-per-worker",
            1..=512,
        )?;
        let (workers, threads_per_worker) = pool_shape(cores, workers, threads);
        if workers * threads_per_worker > cores {
            log::warn!(
                "{workers} workers × {threads_per_worker} threads exceed the {cores} cores: \
                 concurrent runs will compete for them"
            );
        }
        let queue_limit = parse_range(
            args.queue_limit,
            "STT_QUEUE_LIMIT",
            "queue-limit",
            0..=100_000,
        )?
        .unwrap_or(4 * workers);
        let max_upload_bytes = match text(args.max_upload_bytes) {
            None => DEFAULT_MAX_UPLOAD_BYTES,
            Some(v) => parse_bytes(&v)
                .filter(|&n| n > 0)
                .ok_or_else(|| ConfigError {
                    variable: "STT_MAX_UPLOAD_BYTES",
                    flag: "max-upload-bytes",
                    value: v.clone(),
                    reason: "expected a positive byte count such as 26214400, 25M or 25MB".into(),
                })?,
        };
        let max_audio_seconds = seconds(
            args.max_audio_seconds,
            "STT_MAX_AUDIO_SECONDS",
            "max-audio-seconds",
        )?
        .unwrap_or(DEFAULT_MAX_AUDIO_SECONDS);
        let request_timeout = seconds(
            args.request_timeout_seconds,
            "STT_REQUEST_TIMEOUT_SECONDS",
            "request-timeout-seconds",
        )?
        .unwrap_or(DEFAULT_REQUEST_TIMEOUT_SECONDS);
        let shutdown_timeout = parse_range(
            args.shutdown_timeout_seconds,
            "STT_SHUTDOWN_TIMEOUT_SECONDS",
            "shutdown-timeout-seconds",
            0..=3600,
        )?
        .map_or(DEFAULT_SHUTDOWN_TIMEOUT_SECONDS, |s| s as u64);
        let api_keys = keys(args.api_keys, "STT_API_KEYS", "api-keys")?;
        let admin_keys = keys(args.admin_keys, "STT_ADMIN_KEYS", "admin-keys")?;
        let audio_context = match text(args.audio_context).as_deref() {
            None | Some("trimmed") => AudioContext::Trimmed,
            Some("full") => AudioContext::Full,
            Some(other) => {
                return Err(ConfigError {
                    variable: "STT_AUDIO_CONTEXT",
                    flag: "audio-context",
                    value: other.to_owned(),
                    reason: "expected `trimmed` or `full`".into(),
                })
            }
        };
        let request_bytes = request_memory_bytes(max_upload_bytes, max_audio_seconds);
        let audio_memory_bytes = match text(args.audio_memory_bytes) {
            None => request_bytes.saturating_mul((workers + queue_limit) as u64),
            Some(v) => parse_bytes(&v)
                .filter(|&n| n >= request_bytes)
                .ok_or_else(|| ConfigError {
                    variable: "STT_AUDIO_MEMORY_BYTES",
                    flag: "audio-memory-bytes",
                    value: v.clone(),
                    reason: format!(
                        "expected a byte count such as 2G of at least one request's worst case, \
                         {request_bytes} bytes (max upload + 1 MiB + max audio seconds × 64000)"
                    ),
                })?,
        };
        let http_workers = parse_range(
            args.http_workers,
            "STT_HTTP_WORKERS",
            "http-workers",
            1..=256,
        )?
        .unwrap_or(cores);
        let max_connections = parse_range(
            args.max_connections,
            "STT_MAX_CONNECTIONS",
            "max-connections",
            1..=1_000_000,
        )?
        .unwrap_or(DEFAULT_MAX_CONNECTIONS);
        let header_timeout = seconds(
            args.header_timeout_seconds,
            "STT_HEADER_TIMEOUT_SECONDS",
            "header-timeout-seconds",
        )?
        .unwrap_or(DEFAULT_HEADER_TIMEOUT_SECONDS);
        let keep_alive = seconds(
            args.keep_alive_seconds,
            "STT_KEEP_ALIVE_SECONDS",
            "keep-alive-seconds",
        )?
        .unwrap_or(DEFAULT_KEEP_ALIVE_SECONDS);
        let body_timeout = match seconds(
            args.body_timeout_seconds.clone(),
            "STT_BODY_TIMEOUT_SECONDS",
            "body-timeout-seconds",
        )? {
            None => DEFAULT_BODY_TIMEOUT_SECONDS.min(request_timeout / 2.0),
            Some(s) if s < request_timeout => s,
            Some(s) => {
                return Err(ConfigError {
                    variable: "STT_BODY_TIMEOUT_SECONDS",
                    flag: "body-timeout-seconds",
                    value: s.to_string(),
                    reason: format!(
                        "must be shorter than the request timeout ({request_timeout} s)"
                    ),
                })
            }
        };
        Ok(Self {
            model,
            listen,
            workers,
            threads_per_worker,
            queue_limit,
            max_upload_bytes,
            max_audio_seconds,
            request_timeout: Duration::from_secs_f64(request_timeout),
            shutdown_timeout: Duration::from_secs(shutdown_timeout),
            api_keys,
            admin_keys,
            audio_context,
            audio_memory_bytes,
            http_workers,
            max_connections,
            header_timeout: Duration::from_secs_f64(header_timeout),
            keep_alive: Duration::from_secs_f64(keep_alive),
            body_timeout: Duration::from_secs_f64(body_timeout),
        })
    }

    /// The most one admitted request holds before its job runs: its upload
    /// with the form around it, and its decoded samples at the longest audio.
    pub fn request_memory_bytes(&self) -> u64 {
        request_memory_bytes(self.max_upload_bytes, self.max_audio_seconds)
    }

    /// One line describing the effective configuration (keys are counted, never shown).
    pub fn summary(&self) -> String {
        let model = match &self.model.model_path {
            Some(path) => format!("file {}", path.display()),
            None => format!(
                "{} in {}",
                self.model.request,
                self.model.artifacts_dir.display()
            ),
        };
        format!(
            "listen {}, model {model}, lib dir {}, {} workers × {} threads, queue limit {}, \
             max upload {} bytes, max audio {} s, audio memory budget {} bytes, \
             request timeout {} s, body timeout {} s, header timeout {} s, keep-alive {} s, \
             {} HTTP workers, max {} connections, shutdown grace {} s, audio context {:?}, \
             {} API keys, {} admin keys",
            self.listen,
            self.model
                .lib_dir
                .as_ref()
                .map_or_else(|| "(from artifacts)".into(), |d| d.display().to_string()),
            self.workers,
            self.threads_per_worker,
            self.queue_limit,
            self.max_upload_bytes,
            self.max_audio_seconds,
            self.audio_memory_bytes,
            self.request_timeout.as_secs_f64(),
            self.body_timeout.as_secs_f64(),
            self.header_timeout.as_secs_f64(),
            self.keep_alive.as_secs_f64(),
            self.http_workers,
            self.max_connections,
            self.shutdown_timeout.as_secs(),
            self.audio_context,
            self.api_keys.len(),
            self.admin_keys.len(),
        )
    }
}

/// See [`Config::request_memory_bytes`].
fn request_memory_bytes(max_upload_bytes: u64, max_audio_seconds: f64) -> u64 {
    let samples = (max_audio_seconds * SAMPLE_BYTES_PER_SECOND as f64).ceil() as u64;
    max_upload_bytes
        .saturating_add(crate::server::form::FORM_OVERHEAD_BYTES)
        .saturating_add(samples)
}

/// Comma-separated bearer keys.
fn keys(
    value: Option<String>,
    variable: &'static str,
    flag: &'static str,
) -> Result<Vec<String>, ConfigError> {
    let keys: Vec<String> = text(value)
        .map(|keys| {
            keys.split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    match keys
        .iter()
        .find(|k| k.chars().any(|c| c.is_whitespace() || c.is_control()))
    {
        Some(bad) => Err(ConfigError {
            variable,
            flag,
            value: format!("<{} characters>", bad.len()),
            reason: "a key contains whitespace or control characters".into(),
        }),
        None => Ok(keys),
    }
}

/// Workers and threads per worker: given values are kept; missing ones are
/// chosen so that workers × threads fits the cores, with at most
/// [`MAX_DEFAULT_THREADS_PER_WORKER`] threads per run.
pub fn pool_shape(cores: usize, workers: Option<usize>, threads: Option<usize>) -> (usize, usize) {
    let cores = cores.max(1);
    match (workers, threads) {
        (Some(w), Some(t)) => (w, t),
        (Some(w), None) => (w, (cores / w).clamp(1, MAX_DEFAULT_THREADS_PER_WORKER)),
        (None, Some(t)) => ((cores / t).max(1), t),
        (None, None) => {
            let t = cores.min(MAX_DEFAULT_THREADS_PER_WORKER);
            (cores / t, t)
        }
    }
}

/// Parses `25M` (×1024²), `25MB` (×1000²), `26214400`.
pub fn parse_bytes(value: &str) -> Option<u64> {
    let value = value.trim();
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (number, suffix) = value.split_at(split);
    let number: u64 = number.parse().ok()?;
    let factor: u64 = match suffix.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KI" | "KIB" => 1 << 10,
        "M" | "MI" | "MIB" => 1 << 20,
        "G" | "GI" | "GIB" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return None,
    };
    number.checked_mul(factor)
}

/// A non-empty, trimmed value.
fn text(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn parse<T: FromStr>(
    value: Option<String>,
    variable: &'static str,
    flag: &'static str,
) -> Result<Option<T>, ConfigError>
where
    T::Err: std::fmt::Display,
{
    text(value)
        .map(|v| {
            v.parse::<T>().map_err(|e| ConfigError {
                variable,
                flag,
                value: v.clone(),
                reason: e.to_string(),
            })
        })
        .transpose()
}

fn parse_range(
    value: Option<String>,
    variable: &'static str,
    flag: &'static str,
    range: std::ops::RangeInclusive<usize>,
) -> Result<Option<usize>, ConfigError> {
    let parsed: Option<usize> = parse(value, variable, flag)?;
    match parsed {
        Some(n) if !range.contains(&n) => Err(ConfigError {
            variable,
            flag,
            value: n.to_string(),
            reason: format!("must be in {}..={}", range.start(), range.end()),
        }),
        other => Ok(other),
    }
}

fn seconds(
    value: Option<String>,
    variable: &'static str,
    flag: &'static str,
) -> Result<Option<f64>, ConfigError> {
    let parsed: Option<f64> = parse(value, variable, flag)?;
    match parsed {
        Some(s) if !(s.is_finite() && s > 0.0 && s <= 1e7) => Err(ConfigError {
            variable,
            flag,
            value: s.to_string(),
            reason: "must be a positive number of seconds".into(),
        }),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(set: impl FnOnce(&mut ServeArgs)) -> Result<Config, ConfigError> {
        let mut args = ServeArgs::default();
        set(&mut args);
        Config::from_args(args)
    }

    #[test]
    fn defaults_fit_the_cores() {
        assert_eq!(pool_shape(2, None, None), (1, 2));
        assert_eq!(pool_shape(16, None, None), (4, 4));
        assert_eq!(pool_shape(1, None, None), (1, 1));
        assert_eq!(pool_shape(8, Some(2), None), (2, 4));
        assert_eq!(pool_shape(2, Some(2), None), (2, 1));
        assert_eq!(pool_shape(8, None, Some(1)), (8, 1));
        assert_eq!(pool_shape(2, Some(3), Some(3)), (3, 3));
        for cores in 1..64 {
            let (w, t) = pool_shape(cores, None, None);
            assert!(w * t <= cores && w >= 1 && t >= 1, "{cores}: {w}×{t}");
        }
    }

    #[test]
    fn defaults_are_documented_values() {
        let config = serve(|_| {}).unwrap();
        assert_eq!(config.listen, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(config.max_upload_bytes, 26_214_400);
        assert_eq!(config.model.request.to_string(), "small");
        assert_eq!(config.queue_limit, 4 * config.workers);
        assert!(config.api_keys.is_empty() && config.admin_keys.is_empty());
        assert_eq!(config.audio_context, AudioContext::Trimmed);
        // 25 MiB + 1 MiB of form + 3600 s × 64000 B per place.
        assert_eq!(config.request_memory_bytes(), 27_262_976 + 230_400_000);
        assert_eq!(
            config.audio_memory_bytes,
            config.request_memory_bytes() * (config.workers + config.queue_limit) as u64
        );
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        assert_eq!(config.http_workers, cores);
        assert_eq!(config.max_connections, 1024);
        assert_eq!(config.header_timeout, Duration::from_secs(5));
        assert_eq!(config.keep_alive, Duration::from_secs(5));
        assert_eq!(config.body_timeout, Duration::from_secs(120));
        let short = serve(|a| a.request_timeout_seconds = Some("60".into())).unwrap();
        assert_eq!(short.body_timeout, Duration::from_secs(30));
        assert!(!config.model.context_options().flash_attn);
        let on = serve(|a| a.model.flash_attn = Some("on".into())).unwrap();
        assert!(on.model.context_options().flash_attn);
    }

    #[test]
    fn invalid_values_name_the_variable() {
        type Case = (fn(&mut ServeArgs), &'static str);
        let cases: Vec<Case> = vec![
            (|a| a.port = Some("eighty".into()), "STT_PORT"),
            (|a| a.port = Some("70000".into()), "STT_PORT"),
            (|a| a.workers = Some("0".into()), "STT_WORKERS"),
            (
                |a| a.threads_per_worker = Some("-1".into()),
                "STT_THREADS_PER_WORKER",
            ),
            (|a| a.queue_limit = Some("many".into()), "STT_QUEUE_LIMIT"),
            (
                |a| a.max_upload_bytes = Some("25 parsecs".into()),
                "STT_MAX_UPLOAD_BYTES",
            ),
            (
                |a| a.max_audio_seconds = Some("-3".into()),
                "STT_MAX_AUDIO_SECONDS",
            ),
            (
                |a| a.request_timeout_seconds = Some("NaN".into()),
                "STT_REQUEST_TIMEOUT_SECONDS",
            ),
            (|a| a.host = Some("not a host!".into()), "STT_HOST"),
            (
                |a| a.model.model_size = Some("huge".into()),
                "WHISPER_MODEL_SIZE",
            ),
            (
                |a| a.model.model_quant = Some("q3_k".into()),
                "WHISPER_MODEL_QUANT",
            ),
            (
                |a| a.model.model_path = Some("/nonexistent/model.bin".into()),
                "WHISPER_MODEL_PATH",
            ),
            (
                |a| a.model.lib_dir = Some("/nonexistent/lib".into()),
                "WHISPER_LIB_DIR",
            ),
            (|a| a.api_keys = Some("good,bad key".into()), "STT_API_KEYS"),
            (|a| a.admin_keys = Some("bad\tkey".into()), "STT_ADMIN_KEYS"),
            (
                |a| a.audio_memory_bytes = Some("100M".into()),
                "STT_AUDIO_MEMORY_BYTES",
            ),
            (|a| a.http_workers = Some("0".into()), "STT_HTTP_WORKERS"),
            (
                |a| a.max_connections = Some("none".into()),
                "STT_MAX_CONNECTIONS",
            ),
            (
                |a| a.header_timeout_seconds = Some("0".into()),
                "STT_HEADER_TIMEOUT_SECONDS",
            ),
            (
                |a| a.keep_alive_seconds = Some("-1".into()),
                "STT_KEEP_ALIVE_SECONDS",
            ),
            (
                |a| a.body_timeout_seconds = Some("600".into()),
                "STT_BODY_TIMEOUT_SECONDS",
            ),
            (
                |a| a.audio_context = Some("half".into()),
                "STT_AUDIO_CONTEXT",
            ),
            (
                |a| a.model.flash_attn = Some("maybe".into()),
                "WHISPER_FLASH_ATTN",
            ),
        ];
        for (set, variable) in cases {
            let err = serve(set).expect_err(variable).to_string();
            assert!(err.contains(variable), "{variable}: {err}");
        }
    }

    #[test]
    fn values_parse() {
        let config = serve(|a| {
            a.host = Some("127.0.0.1".into());
            a.port = Some("0".into());
            a.workers = Some("2".into());
            a.threads_per_worker = Some("1".into());
            a.queue_limit = Some("0".into());
            a.max_upload_bytes = Some("1MB".into());
            a.api_keys = Some(" a , b,,".into());
            a.audio_context = Some("full".into());
            a.model.model_size = Some("tiny.en".into());
            a.model.model_quant = Some("F16".into());
        })
        .unwrap();
        assert_eq!(config.listen, "127.0.0.1:0".parse().unwrap());
        assert_eq!((config.workers, config.threads_per_worker), (2, 1));
        assert_eq!(config.queue_limit, 0);
        assert_eq!(config.max_upload_bytes, 1_000_000);
        assert_eq!(config.api_keys, ["a", "b"]);
        assert_eq!(config.audio_context, AudioContext::Full);
        assert_eq!(config.model.request.to_string(), "tiny.en-f16");
        assert!(!config.summary().contains("a, b"));
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_bytes("25M"), Some(26_214_400));
        assert_eq!(parse_bytes("25MB"), Some(25_000_000));
        assert_eq!(parse_bytes("1k"), Some(1024));
        assert_eq!(parse_bytes("123"), Some(123));
        assert_eq!(parse_bytes("M"), None);
        assert_eq!(parse_bytes("99999999999999999999G"), None);
    }
}
