//! Configuration from environment variables and command-line flags (flags win).
//!
//! Each setting is declared once, as a field of [`ModelArgs`] or [`ServeArgs`]:
//! flag, variable, help, a literal default (a constant that the checks below use
//! too) or a computed one stated as `[default: …]`, and a range stated as `(a–b)`.
//! `--help` shows these declarations, and the tables of docs/configuration.md are
//! rendered from them (a unit test fails when the document differs).
//!
//! Every value is read as text and validated here, so an invalid value stops the
//! start with a message naming both the variable and the flag.

use std::net::{SocketAddr, ToSocketAddrs};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use whisper_safe::AudioContext;

use crate::engine::ModelSource;
use crate::models::catalog::{self, ModelRequest, Quant};

/// Default `WHISPER_FLASH_ATTN`.
pub const DEFAULT_FLASH_ATTN: &str = "off";
/// Default `STT_HOST`: every interface.
pub const DEFAULT_HOST: &str = "0.0.0.0";
/// Default `STT_PORT`.
pub const DEFAULT_PORT: &str = "8080";
/// Default `STT_MAX_UPLOAD_BYTES`: 25 MiB, as OpenAI's API.
pub const DEFAULT_MAX_UPLOAD_BYTES: &str = "25M";
/// Default `STT_MAX_AUDIO_SECONDS`.
pub const DEFAULT_MAX_AUDIO_SECONDS: &str = "3600";
/// Default `STT_REQUEST_TIMEOUT_SECONDS`.
pub const DEFAULT_REQUEST_TIMEOUT_SECONDS: &str = "600";
/// Default `STT_SHUTDOWN_TIMEOUT_SECONDS`.
pub const DEFAULT_SHUTDOWN_TIMEOUT_SECONDS: &str = "30";
/// Default `STT_MAX_CONNECTIONS`.
pub const DEFAULT_MAX_CONNECTIONS: &str = "1024";
/// Default `STT_HEADER_TIMEOUT_SECONDS`.
pub const DEFAULT_HEADER_TIMEOUT_SECONDS: &str = "5";
/// Default `STT_KEEP_ALIVE_SECONDS`.
pub const DEFAULT_KEEP_ALIVE_SECONDS: &str = "5";
/// Default `STT_AUDIO_CONTEXT`.
pub const DEFAULT_AUDIO_CONTEXT: &str = "trimmed";
/// Time a client has to send an upload by default, unless half the request timeout is shorter.
pub const DEFAULT_BODY_TIMEOUT_SECONDS: f64 = 120.0;
/// Default `STT_MODEL_ALIASES`.
pub const DEFAULT_MODEL_ALIASES: &str =
    "whisper-1,gpt-4o-transcribe,gpt-4o-mini-transcribe,gpt-transcribe,gpt-live-transcribe";
/// Default `STT_LIVE_MAX_SESSIONS`.
pub const DEFAULT_LIVE_MAX_SESSIONS: &str = "8";
/// Default `STT_LIVE_IDLE_SECONDS`.
pub const DEFAULT_LIVE_IDLE_SECONDS: &str = "60";
/// Default `STT_LIVE_MAX_BUFFER_SECONDS`.
pub const DEFAULT_LIVE_MAX_BUFFER_SECONDS: &str = "300";
/// Default `STT_MAX_UPLOADS`.
pub const DEFAULT_MAX_UPLOADS: &str = "256";
/// `STT_MAX_UPLOADS`.
const MAX_UPLOADS: RangeInclusive<usize> = 1..=100_000;
/// Largest uploads the default upload memory holds at once.
pub const DEFAULT_UPLOADS_IN_MEMORY: u64 = 8;
/// Default `STT_BODY_IDLE_SECONDS`.
pub const DEFAULT_BODY_IDLE_SECONDS: &str = "10";
/// Default `STT_BODY_MIN_BYTES_PER_SECOND`.
pub const DEFAULT_BODY_MIN_BYTES_PER_SECOND: &str = "1K";
/// `STT_LIVE_MAX_SESSIONS`.
const LIVE_MAX_SESSIONS: RangeInclusive<usize> = 0..=100_000;
/// Requests that may wait per worker by default.
pub const DEFAULT_QUEUE_PER_WORKER: usize = 4;
/// Bytes of decoded audio per second: 16 kHz mono `f32`.
pub const SAMPLE_BYTES_PER_SECOND: u64 = 16_000 * 4;
/// Default `STT_THREADS_PER_PIECE`.
pub const DEFAULT_THREADS_PER_PIECE: &str = "1";
/// whisper.cpp gains little beyond this many threads per run.
pub const MAX_DEFAULT_THREADS_PER_WORKER: usize = 4;

/// `STT_WORKERS` and `STT_HTTP_WORKERS`.
const WORKERS: RangeInclusive<usize> = 1..=256;
/// `STT_THREADS_PER_WORKER`.
const THREADS_PER_WORKER: RangeInclusive<usize> = 1..=512;
/// `STT_QUEUE_LIMIT`.
const QUEUE_LIMIT: RangeInclusive<usize> = 0..=100_000;
/// `STT_SHUTDOWN_TIMEOUT_SECONDS`.
const SHUTDOWN_TIMEOUT_SECONDS: RangeInclusive<usize> = 0..=3600;
/// `STT_MAX_CONNECTIONS`.
const MAX_CONNECTIONS: RangeInclusive<usize> = 1..=1_000_000;

/// Which model and libraries to load; shared by `serve` and `transcribe`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ModelArgs {
    /// Model size from the catalog: `tiny`, `tiny.en`, `base`, `base.en`, `small`,
    /// `small.en`, `medium`, `medium.en`, `large-v3`, `large-v3-turbo`.
    #[arg(
        long,
        env = "WHISPER_MODEL_SIZE",
        value_name = "SIZE",
        default_value = whisper_safe::DEFAULT_MODEL_SIZE
    )]
    pub model_size: Option<String>,
    /// Weight type of the model file: `f16`, `q8_0`, `q5_1`, `q5_0`, `q4_0`, `iq4_nl`
    /// [default: the file of the size already present, in the order q8_0, q5_1, f16,
    /// q5_0, q4_0, iq4_nl, else q8_0 (docs/models.md)].
    #[arg(long, env = "WHISPER_MODEL_QUANT", value_name = "QUANT")]
    pub model_quant: Option<String>,
    /// Artifact directory.
    ///
    /// The model is `<dir>/whisper_<size>_xeon/ggml-<size>[-<quant>].bin` (f16 files
    /// have no suffix), the libraries `<dir>/whisper_<size>_xeon/lib` or `<dir>/lib`.
    /// Run-time switches (`POST /v1/models/{id}/load`) and `GET /v1/models` look here.
    #[arg(
        long,
        env = "WHISPER_ARTIFACTS_DIR",
        value_name = "DIR",
        default_value = whisper_safe::DEFAULT_ARTIFACTS_DIR
    )]
    pub artifacts_dir: Option<PathBuf>,
    /// Directory of the whisper.cpp shared libraries; must exist [default: from the
    /// artifact layout].
    #[arg(long, env = "WHISPER_LIB_DIR", value_name = "DIR")]
    pub lib_dir: Option<PathBuf>,
    /// An explicit model file (must exist); overrides size and quantization [default:
    /// from size and quant].
    ///
    /// Its API id comes from its name (`ggml-base.en-q5_1.bin` → `base.en-q5_1`, else
    /// the file stem).
    #[arg(long, env = "WHISPER_MODEL_PATH", value_name = "FILE")]
    pub model_path: Option<PathBuf>,
    /// Dynamic-backend layout only: pin one CPU variant (`haswell`, …) or a backend
    /// file [default: all variants].
    #[arg(long, env = "WHISPER_CPU_BACKEND", value_name = "VARIANT")]
    pub cpu_backend: Option<String>,
    /// whisper.cpp's flash attention: `on` or `off`.
    ///
    /// `off` was 1.3–1.6× faster on the AVX2 machine of docs/benchmarks.md and costs
    /// more memory per worker (measured there); `on` saves that memory and may win on
    /// AVX-512 CPUs.
    #[arg(
        long,
        env = "WHISPER_FLASH_ATTN",
        value_name = "on|off",
        default_value = DEFAULT_FLASH_ATTN
    )]
    pub flash_attn: Option<String>,
    /// Silero VAD model file for long audio, or `off` [default:
    /// silero-vad/ggml-silero-v6.bin in the artifact directory, when present].
    ///
    /// A file named here must load, or the server does not start; the default file is
    /// used when present (its absence is a warning: long audio is then cut at quiet
    /// moments and silence is decoded). See docs/api.md, Long audio.
    #[arg(long, env = "WHISPER_VAD_MODEL", value_name = "FILE|off")]
    pub vad_model: Option<String>,
}

/// Flags and variables of `stt-server serve`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ServeArgs {
    /// Model and libraries.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Listening address (IP or host name).
    #[arg(long, env = "STT_HOST", default_value = DEFAULT_HOST)]
    pub host: Option<String>,
    /// Listening port.
    #[arg(long, env = "STT_PORT", default_value = DEFAULT_PORT)]
    pub port: Option<String>,
    /// Decoding states over the one loaded model (1–256) [default: cores ÷ threads per
    /// worker].
    ///
    /// Each runs one request at a time on its own thread.
    #[arg(long, env = "STT_WORKERS")]
    pub workers: Option<String>,
    /// Compute threads of each run (1–512) [default: min(4, cores ÷ workers)].
    #[arg(long, env = "STT_THREADS_PER_WORKER")]
    pub threads_per_worker: Option<String>,
    /// Compute threads of each piece of a long recording (1–512).
    ///
    /// A worker decodes threads per worker ÷ this many pieces at once, each on a decoding
    /// state of its own (created when first needed); set it to the threads per worker to
    /// decode one piece at a time (a larger value does the same, with a warning at start).
    #[arg(long, env = "STT_THREADS_PER_PIECE", default_value = DEFAULT_THREADS_PER_PIECE)]
    pub threads_per_piece: Option<String>,
    /// Requests that may be admitted beyond the workers (0–100,000) [default: 4 ×
    /// workers].
    ///
    /// Their bodies are complete; they are being decoded or waiting. Beyond, 429 at
    /// once: the workers are busy. `0`: no waiting.
    #[arg(long, env = "STT_QUEUE_LIMIT")]
    pub queue_limit: Option<String>,
    /// Largest `file` part, bytes: `K`, `M`, `G` are ×1024 (`25M` is 26,214,400),
    /// `KB`, `MB`, `GB` ×1000.
    #[arg(long, env = "STT_MAX_UPLOAD_BYTES", default_value = DEFAULT_MAX_UPLOAD_BYTES)]
    pub max_upload_bytes: Option<String>,
    /// Longest audio accepted, seconds (413 beyond; checked while decoding).
    #[arg(long, env = "STT_MAX_AUDIO_SECONDS", default_value = DEFAULT_MAX_AUDIO_SECONDS)]
    pub max_audio_seconds: Option<String>,
    /// Longest a request may take, seconds, upload and queueing included (504 beyond;
    /// the run is stopped).
    #[arg(
        long,
        env = "STT_REQUEST_TIMEOUT_SECONDS",
        default_value = DEFAULT_REQUEST_TIMEOUT_SECONDS
    )]
    pub request_timeout_seconds: Option<String>,
    /// After SIGTERM/SIGINT, how long requests in flight may still run, seconds
    /// (0–3600).
    #[arg(
        long,
        env = "STT_SHUTDOWN_TIMEOUT_SECONDS",
        default_value = DEFAULT_SHUTDOWN_TIMEOUT_SECONDS
    )]
    pub shutdown_timeout_seconds: Option<String>,
    /// Comma-separated bearer keys; when set, every endpoint but `/health` and
    /// `/ready` needs `Authorization: Bearer <key>`.
    #[arg(long, env = "STT_API_KEYS", hide_env_values = true)]
    pub api_keys: Option<String>,
    /// Comma-separated bearer keys that may also load models
    /// (`POST /v1/models/{id}/load`).
    ///
    /// When any key (of either list) is set, a load needs one of these: other keys get
    /// 403, and with `STT_API_KEYS` alone nobody can load.
    #[arg(long, env = "STT_ADMIN_KEYS", hide_env_values = true)]
    pub admin_keys: Option<String>,
    /// The audio memory budget: bytes the admitted requests' files and decoded
    /// samples may hold together, at least one request's worst case [default:
    /// (workers + queue limit) × (max upload + 1 MiB + max audio seconds × 64000)].
    ///
    /// Lower it to let fewer hour-long uploads in at once while short ones still queue
    /// (docs/configuration.md, Memory bound).
    #[arg(long, env = "STT_AUDIO_MEMORY_BYTES")]
    pub audio_memory_bytes: Option<String>,
    /// HTTP event-loop threads (1–256) [default: cores].
    ///
    /// They parse and route; decoding and inference run elsewhere.
    #[arg(long, env = "STT_HTTP_WORKERS")]
    pub http_workers: Option<String>,
    /// Open connections at most (1–1,000,000); beyond, new ones wait in the listen
    /// backlog until one closes (each costs up to ~64 KiB of buffers).
    #[arg(long, env = "STT_MAX_CONNECTIONS", default_value = DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: Option<String>,
    /// Seconds a connection's first request line and headers may take to arrive,
    /// else 408 and close.
    #[arg(
        long,
        env = "STT_HEADER_TIMEOUT_SECONDS",
        default_value = DEFAULT_HEADER_TIMEOUT_SECONDS
    )]
    pub header_timeout_seconds: Option<String>,
    /// Seconds an idle keep-alive connection stays open.
    #[arg(
        long,
        env = "STT_KEEP_ALIVE_SECONDS",
        default_value = DEFAULT_KEEP_ALIVE_SECONDS
    )]
    pub keep_alive_seconds: Option<String>,
    /// Seconds the upload may take to arrive, below the request timeout [default:
    /// min(120, request timeout ÷ 2)].
    ///
    /// Beyond, 408 `body_timeout` and the connection is closed; being below the
    /// request timeout, a stalled upload never holds its place until then.
    #[arg(long, env = "STT_BODY_TIMEOUT_SECONDS")]
    pub body_timeout_seconds: Option<String>,
    /// Seconds a body may send nothing; beyond, 408 `body_stalled`, the connection is
    /// closed and its memory freed.
    #[arg(long, env = "STT_BODY_IDLE_SECONDS", default_value = DEFAULT_BODY_IDLE_SECONDS)]
    pub body_idle_seconds: Option<String>,
    /// Slowest average a body may arrive at once its first idle-timeout seconds have
    /// passed, bytes per second (`K` ×1024; `0`: no floor); below, 408 `body_too_slow`.
    #[arg(
        long,
        env = "STT_BODY_MIN_BYTES_PER_SECOND",
        default_value = DEFAULT_BODY_MIN_BYTES_PER_SECOND
    )]
    pub body_min_bytes_per_second: Option<String>,
    /// Uploads being received at once (1–100,000); beyond, 503 `too_many_uploads`
    /// before the body is read.
    ///
    /// An upload takes no worker place until its body is complete.
    #[arg(long, env = "STT_MAX_UPLOADS", default_value = DEFAULT_MAX_UPLOADS)]
    pub max_uploads: Option<String>,
    /// Bytes the uploads being received may hold together, at least one largest
    /// upload [default: 8 × (max upload + 1 MiB)].
    ///
    /// An upload reserves its declared length when it starts (a chunked one, what has
    /// arrived); beyond, 503 `upload_memory_full` before more is read.
    #[arg(long, env = "STT_UPLOAD_MEMORY_BYTES")]
    pub upload_memory_bytes: Option<String>,
    /// Encoder context for audio under 30 s: `trimmed` or `full`.
    ///
    /// `trimmed`: the encoder computes only the audio plus 2 s of margin (about 2×
    /// faster on short clips, same words in the measurements); `full`: always 30 s
    /// windows.
    #[arg(long, env = "STT_AUDIO_CONTEXT", default_value = DEFAULT_AUDIO_CONTEXT)]
    pub audio_context: Option<String>,
    /// Comma-separated model names answered as the serving model, on the file
    /// endpoints and in live sessions (OpenAI's names, so that their clients work
    /// unchanged).
    #[arg(long, env = "STT_MODEL_ALIASES", default_value = DEFAULT_MODEL_ALIASES)]
    pub model_aliases: Option<String>,
    /// Live transcription sessions at once (0–100,000); more get 429 at the upgrade.
    #[arg(long, env = "STT_LIVE_MAX_SESSIONS", default_value = DEFAULT_LIVE_MAX_SESSIONS)]
    pub live_max_sessions: Option<String>,
    /// Seconds a live session may send no audio before it is closed (close code 1008;
    /// pings and other events do not count).
    #[arg(long, env = "STT_LIVE_IDLE_SECONDS", default_value = DEFAULT_LIVE_IDLE_SECONDS)]
    pub live_idle_seconds: Option<String>,
    /// Seconds of audio a live session's input buffer holds before a commit
    /// (manual turns; server VAD cuts turns at 30 s).
    #[arg(
        long,
        env = "STT_LIVE_MAX_BUFFER_SECONDS",
        default_value = DEFAULT_LIVE_MAX_BUFFER_SECONDS
    )]
    pub live_max_buffer_seconds: Option<String>,
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
        let size = or_default(args.model_size, whisper_safe::DEFAULT_MODEL_SIZE);
        let model = catalog::lookup(&size).map_err(|e| ConfigError {
            variable: "WHISPER_MODEL_SIZE",
            flag: "model-size",
            value: size.clone(),
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
        let flash_attn = match or_default(args.flash_attn, DEFAULT_FLASH_ATTN).as_str() {
            "off" => false,
            "on" => true,
            other => {
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
    /// Compute threads per piece of a long recording.
    pub threads_per_piece: usize,
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
    /// How uploads are admitted and how fast they must arrive.
    pub uploads: crate::server::upload::UploadLimits,
    /// Model names answered as the serving model.
    pub model_aliases: Vec<String>,
    /// Live-session limits.
    pub live: crate::live::LiveLimits,
}

impl Config {
    /// Validates every flag and variable of `serve`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first invalid variable.
    pub fn from_args(args: ServeArgs) -> Result<Self, ConfigError> {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let model = ModelConfig::from_args(args.model)?;
        let host = or_default(args.host, DEFAULT_HOST);
        let port: u16 = parse(or_default(args.port, DEFAULT_PORT), "STT_PORT", "port")?;
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
        let workers = text(args.workers)
            .map(|v| parse_range(v, "STT_WORKERS", "workers", &WORKERS))
            .transpose()?;
        let threads = text(args.threads_per_worker)
            .map(|v| {
                parse_range(
                    v,
                    "STT_THREADS_PER_WORKER",
                    "threads-per-worker",
                    &THREADS_PER_WORKER,
                )
            })
            .transpose()?;
        let (workers, threads_per_worker) = pool_shape(cores, workers, threads);
        if workers * threads_per_worker > cores {
            log::warn!(
                "{workers} workers × {threads_per_worker} threads exceed the {cores} cores: \
                 concurrent runs will compete for them"
            );
        }
        let threads_per_piece = parse_range(
            or_default(args.threads_per_piece, DEFAULT_THREADS_PER_PIECE),
            "STT_THREADS_PER_PIECE",
            "threads-per-piece",
            &THREADS_PER_WORKER,
        )?;
        if threads_per_piece > threads_per_worker {
            log::warn!(
                "{threads_per_piece} threads per piece exceed the {threads_per_worker} threads \
                 per worker: each worker decodes one piece at a time with its \
                 {threads_per_worker} thread(s)"
            );
        }
        let queue_limit = text(args.queue_limit)
            .map(|v| parse_range(v, "STT_QUEUE_LIMIT", "queue-limit", &QUEUE_LIMIT))
            .transpose()?
            .unwrap_or(DEFAULT_QUEUE_PER_WORKER * workers);
        let max_upload_bytes = or_default(args.max_upload_bytes, DEFAULT_MAX_UPLOAD_BYTES);
        let max_upload_bytes = parse_bytes(&max_upload_bytes)
            .filter(|&n| n > 0)
            .ok_or_else(|| ConfigError {
                variable: "STT_MAX_UPLOAD_BYTES",
                flag: "max-upload-bytes",
                value: max_upload_bytes.clone(),
                reason: "expected a positive byte count such as 26214400, 25M or 25MB".into(),
            })?;
        let max_audio_seconds = seconds(
            or_default(args.max_audio_seconds, DEFAULT_MAX_AUDIO_SECONDS),
            "STT_MAX_AUDIO_SECONDS",
            "max-audio-seconds",
        )?;
        let request_timeout = seconds(
            or_default(
                args.request_timeout_seconds,
                DEFAULT_REQUEST_TIMEOUT_SECONDS,
            ),
            "STT_REQUEST_TIMEOUT_SECONDS",
            "request-timeout-seconds",
        )?;
        let shutdown_timeout = parse_range(
            or_default(
                args.shutdown_timeout_seconds,
                DEFAULT_SHUTDOWN_TIMEOUT_SECONDS,
            ),
            "STT_SHUTDOWN_TIMEOUT_SECONDS",
            "shutdown-timeout-seconds",
            &SHUTDOWN_TIMEOUT_SECONDS,
        )?;
        let api_keys = keys(args.api_keys, "STT_API_KEYS", "api-keys")?;
        let admin_keys = keys(args.admin_keys, "STT_ADMIN_KEYS", "admin-keys")?;
        let audio_context = match or_default(args.audio_context, DEFAULT_AUDIO_CONTEXT).as_str() {
            "trimmed" => AudioContext::Trimmed,
            "full" => AudioContext::Full,
            other => {
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
        let http_workers = text(args.http_workers)
            .map(|v| parse_range(v, "STT_HTTP_WORKERS", "http-workers", &WORKERS))
            .transpose()?
            .unwrap_or(cores);
        let max_connections = parse_range(
            or_default(args.max_connections, DEFAULT_MAX_CONNECTIONS),
            "STT_MAX_CONNECTIONS",
            "max-connections",
            &MAX_CONNECTIONS,
        )?;
        let header_timeout = seconds(
            or_default(args.header_timeout_seconds, DEFAULT_HEADER_TIMEOUT_SECONDS),
            "STT_HEADER_TIMEOUT_SECONDS",
            "header-timeout-seconds",
        )?;
        let keep_alive = seconds(
            or_default(args.keep_alive_seconds, DEFAULT_KEEP_ALIVE_SECONDS),
            "STT_KEEP_ALIVE_SECONDS",
            "keep-alive-seconds",
        )?;
        let body_timeout = match text(args.body_timeout_seconds)
            .map(|v| seconds(v, "STT_BODY_TIMEOUT_SECONDS", "body-timeout-seconds"))
            .transpose()?
        {
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
        let upload_bytes =
            max_upload_bytes.saturating_add(crate::server::form::FORM_OVERHEAD_BYTES);
        let uploads = crate::server::upload::UploadLimits {
            max_uploads: parse_range(
                or_default(args.max_uploads, DEFAULT_MAX_UPLOADS),
                "STT_MAX_UPLOADS",
                "max-uploads",
                &MAX_UPLOADS,
            )?,
            memory_bytes: match text(args.upload_memory_bytes) {
                None => upload_bytes.saturating_mul(DEFAULT_UPLOADS_IN_MEMORY),
                Some(v) => parse_bytes(&v)
                    .filter(|&n| n >= upload_bytes)
                    .ok_or_else(|| ConfigError {
                        variable: "STT_UPLOAD_MEMORY_BYTES",
                        flag: "upload-memory-bytes",
                        value: v.clone(),
                        reason: format!(
                            "expected a byte count such as 512M of at least one largest upload, \
                             {upload_bytes} bytes (max upload + 1 MiB)"
                        ),
                    })?,
            },
            idle_timeout: Duration::from_secs_f64(seconds(
                or_default(args.body_idle_seconds, DEFAULT_BODY_IDLE_SECONDS),
                "STT_BODY_IDLE_SECONDS",
                "body-idle-seconds",
            )?),
            min_bytes_per_second: {
                let v = or_default(
                    args.body_min_bytes_per_second,
                    DEFAULT_BODY_MIN_BYTES_PER_SECOND,
                );
                parse_bytes(&v).ok_or_else(|| ConfigError {
                    variable: "STT_BODY_MIN_BYTES_PER_SECOND",
                    flag: "body-min-bytes-per-second",
                    value: v.clone(),
                    reason: "expected a byte count per second such as 1024 or 1K (0: no floor)"
                        .into(),
                })?
            },
            body_timeout: Duration::from_secs_f64(body_timeout),
        };
        let model_aliases: Vec<String> = or_default(args.model_aliases, DEFAULT_MODEL_ALIASES)
            .split(',')
            .map(|a| a.trim().to_owned())
            .filter(|a| !a.is_empty())
            .collect();
        let live = crate::live::LiveLimits {
            max_sessions: parse_range(
                or_default(args.live_max_sessions, DEFAULT_LIVE_MAX_SESSIONS),
                "STT_LIVE_MAX_SESSIONS",
                "live-max-sessions",
                &LIVE_MAX_SESSIONS,
            )?,
            idle_timeout: Duration::from_secs_f64(seconds(
                or_default(args.live_idle_seconds, DEFAULT_LIVE_IDLE_SECONDS),
                "STT_LIVE_IDLE_SECONDS",
                "live-idle-seconds",
            )?),
            max_buffer_seconds: seconds(
                or_default(
                    args.live_max_buffer_seconds,
                    DEFAULT_LIVE_MAX_BUFFER_SECONDS,
                ),
                "STT_LIVE_MAX_BUFFER_SECONDS",
                "live-max-buffer-seconds",
            )?,
        };
        Ok(Self {
            model,
            listen,
            workers,
            threads_per_worker,
            threads_per_piece,
            queue_limit,
            max_upload_bytes,
            max_audio_seconds,
            request_timeout: Duration::from_secs_f64(request_timeout),
            shutdown_timeout: Duration::from_secs(shutdown_timeout as u64),
            api_keys,
            admin_keys,
            audio_context,
            audio_memory_bytes,
            http_workers,
            max_connections,
            header_timeout: Duration::from_secs_f64(header_timeout),
            keep_alive: Duration::from_secs_f64(keep_alive),
            uploads,
            model_aliases,
            live,
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
            "listen {}, model {model}, lib dir {}, {} workers × {} threads ({} per piece), \
             queue limit {}, \
             max upload {} bytes, max audio {} s, audio memory budget {} bytes, \
             request timeout {} s, body timeout {} s (idle {} s, at least {} bytes/s), \
             uploads at most {} holding {} bytes, header timeout {} s, keep-alive {} s, \
             {} HTTP workers, max {} connections, shutdown grace {} s, audio context {:?}, \
             {} API keys, {} admin keys, model aliases {}, live sessions at most {} \
             (idle {} s, buffer {} s)",
            self.listen,
            self.model
                .lib_dir
                .as_ref()
                .map_or_else(|| "(from artifacts)".into(), |d| d.display().to_string()),
            self.workers,
            self.threads_per_worker,
            self.threads_per_piece,
            self.queue_limit,
            self.max_upload_bytes,
            self.max_audio_seconds,
            self.audio_memory_bytes,
            self.request_timeout.as_secs_f64(),
            self.uploads.body_timeout.as_secs_f64(),
            self.uploads.idle_timeout.as_secs_f64(),
            self.uploads.min_bytes_per_second,
            self.uploads.max_uploads,
            self.uploads.memory_bytes,
            self.header_timeout.as_secs_f64(),
            self.keep_alive.as_secs_f64(),
            self.http_workers,
            self.max_connections,
            self.shutdown_timeout.as_secs(),
            self.audio_context,
            self.api_keys.len(),
            self.admin_keys.len(),
            self.model_aliases.join("/"),
            self.live.max_sessions,
            self.live.idle_timeout.as_secs_f64(),
            self.live.max_buffer_seconds,
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

/// The value given, else the declared default, which then passes the same checks.
fn or_default(value: Option<String>, default: &str) -> String {
    text(value).unwrap_or_else(|| default.to_owned())
}

fn parse<T: FromStr>(
    value: String,
    variable: &'static str,
    flag: &'static str,
) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    value.parse::<T>().map_err(|e| ConfigError {
        variable,
        flag,
        reason: e.to_string(),
        value,
    })
}

fn parse_range(
    value: String,
    variable: &'static str,
    flag: &'static str,
    range: &RangeInclusive<usize>,
) -> Result<usize, ConfigError> {
    match parse::<usize>(value, variable, flag)? {
        n if !range.contains(&n) => Err(ConfigError {
            variable,
            flag,
            value: n.to_string(),
            reason: format!("must be in {}..={}", range.start(), range.end()),
        }),
        n => Ok(n),
    }
}

fn seconds(value: String, variable: &'static str, flag: &'static str) -> Result<f64, ConfigError> {
    match parse::<f64>(value, variable, flag)? {
        s if !(s.is_finite() && s > 0.0 && s <= 1e7) => Err(ConfigError {
            variable,
            flag,
            value: s.to_string(),
            reason: "must be a positive number of seconds".into(),
        }),
        s => Ok(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Args, FromArgMatches};

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
        assert_eq!(config.uploads.body_timeout, Duration::from_secs(120));
        let short = serve(|a| a.request_timeout_seconds = Some("60".into())).unwrap();
        assert_eq!(short.uploads.body_timeout, Duration::from_secs(30));
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

    /// Marks the start of the generated block in docs/configuration.md (the line goes on
    /// to say how to regenerate it).
    const GENERATED: &str = "<!-- generated from stt-server/src/config.rs";
    /// Marks its end.
    const END_GENERATED: &str = "<!-- end generated -->";

    /// `serve`'s settings as clap declares them, without their variables, so that the
    /// tests' own environment stays out.
    fn serve_command() -> clap::Command {
        ServeArgs::augment_args(clap::Command::new("serve"))
            .mut_args(|a| a.env(None::<&'static str>))
    }

    /// `serve`'s settings from these flags, clap's declared defaults filled in.
    fn parse_flags(flags: &[&str]) -> ServeArgs {
        let matches = serve_command()
            .try_get_matches_from(std::iter::once("serve").chain(flags.iter().copied()))
            .unwrap_or_else(|e| panic!("{flags:?}: {e}"));
        ServeArgs::from_arg_matches(&matches).unwrap()
    }

    /// A setting's help, all paragraphs on one line.
    fn help(arg: &clap::Arg) -> String {
        arg.get_long_help()
            .or(arg.get_help())
            .map_or_else(String::new, |h| h.to_string().replace("\n\n", " "))
    }

    /// The help without its `[default: …]`, and that default.
    fn stated_default(help: &str) -> (String, Option<&str>) {
        match help.split_once(" [default: ") {
            Some((before, rest)) => {
                let (default, after) = rest.split_once(']').expect("`[default: …]` closed");
                (format!("{before}{after}"), Some(default))
            }
            None => (help.to_owned(), None),
        }
    }

    /// The first `(a–b)` a help states.
    fn stated_range(help: &str) -> Option<(usize, usize)> {
        let number = |s: &str| s.replace(',', "").parse::<usize>().ok();
        help.split('(').skip(1).find_map(|s| {
            let (low, high) = s.split_once(')')?.0.split_once('–')?;
            Some((number(low)?, number(high)?))
        })
    }

    /// One table row: variable, flag, default (declared, else stated), help.
    fn row(arg: &clap::Arg) -> String {
        let id = arg.get_id();
        let variable = arg.get_env().unwrap_or_else(|| panic!("{id}: no variable"));
        let flag = arg.get_long().unwrap_or_else(|| panic!("{id}: no flag"));
        let help = help(arg);
        let (meaning, stated) = stated_default(&help);
        let default = match (arg.get_default_values(), stated) {
            ([], None) => "unset".to_owned(),
            ([], Some(stated)) => stated.to_owned(),
            (declared, None) => declared
                .iter()
                .map(|v| format!("`{}`", v.to_string_lossy()))
                .collect::<Vec<_>>()
                .join(", "),
            (_, Some(_)) => panic!("{id}: a declared default and a stated one"),
        };
        let cell = |s: &str| s.trim_end_matches('.').replace('|', "\\|");
        format!(
            "| `{}` | `--{flag}` | {} | {} |\n",
            variable.to_string_lossy(),
            cell(&default),
            cell(&meaning)
        )
    }

    /// The reference tables of docs/configuration.md, one row per setting.
    fn reference_markdown() -> String {
        let model = ModelArgs::augment_args(clap::Command::new("model"));
        let serve = ServeArgs::augment_args(clap::Command::new("serve"));
        let is_model = |arg: &clap::Arg| model.get_arguments().any(|m| m.get_id() == arg.get_id());
        let sections: [(&str, Vec<&clap::Arg>); 2] = [
            ("Model and libraries", model.get_arguments().collect()),
            (
                "HTTP and workers",
                serve.get_arguments().filter(|a| !is_model(a)).collect(),
            ),
        ];
        let mut markdown = String::new();
        for (heading, args) in sections {
            markdown += &format!(
                "\n## {heading}\n\n| variable | flag | default | meaning |\n|---|---|---|---|\n"
            );
            markdown.extend(args.into_iter().map(row));
        }
        markdown + "\n"
    }

    /// `doc` with the generated block's content replaced by `block`.
    fn splice(doc: &str, block: &str) -> Option<String> {
        let start = doc.find(GENERATED)?;
        let start = start + doc[start..].find("-->\n")? + "-->\n".len();
        let end = start + doc[start..].find(END_GENERATED)?;
        Some(format!("{}{block}{}", &doc[..start], &doc[end..]))
    }

    /// With `WHISPER_STT_BLESS` set, rewrites the block instead.
    #[test]
    fn configuration_doc_matches_the_declarations() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md");
        let doc =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let declared = splice(&doc, &reference_markdown()).unwrap_or_else(|| {
            panic!(
                "{}: no `{GENERATED} … -->` … `{END_GENERATED}`",
                path.display()
            )
        });
        if std::env::var_os("WHISPER_STT_BLESS").is_some() {
            std::fs::write(&path, &declared).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            return;
        }
        let differs = doc.lines().zip(declared.lines()).position(|(a, b)| a != b);
        let line = differs.unwrap_or(doc.lines().count().min(declared.lines().count()));
        assert!(
            doc == declared,
            "docs/configuration.md differs from the declarations in stt-server/src/config.rs \
             from line {}:\n  doc:      {}\n  declared: {}\nregenerate with \
             WHISPER_STT_BLESS=1 cargo test --release -p stt-server --lib configuration_doc",
            line + 1,
            doc.lines().nth(line).unwrap_or("(end)"),
            declared.lines().nth(line).unwrap_or("(end)"),
        );
    }

    #[test]
    fn declared_defaults_are_the_checked_ones() {
        // clap fills in the declared defaults; unset fields fall back to the same constants.
        assert_eq!(
            Config::from_args(parse_flags(&[])).unwrap(),
            Config::from_args(ServeArgs::default()).unwrap()
        );
        // Defaults computed at start state the constants they use.
        let command = serve_command();
        let stated = [
            (
                "threads-per-worker",
                format!("min({MAX_DEFAULT_THREADS_PER_WORKER}, "),
            ),
            (
                "queue-limit",
                format!("{DEFAULT_QUEUE_PER_WORKER} × workers"),
            ),
            (
                "body-timeout-seconds",
                format!("min({DEFAULT_BODY_TIMEOUT_SECONDS}, "),
            ),
            (
                "audio-memory-bytes",
                format!(
                    "+ {} MiB + max audio seconds × {SAMPLE_BYTES_PER_SECOND})",
                    crate::server::form::FORM_OVERHEAD_BYTES >> 20
                ),
            ),
        ];
        for (flag, text) in stated {
            let arg = command.get_arguments().find(|a| a.get_long() == Some(flag));
            let help = help(arg.unwrap_or_else(|| panic!("no --{flag}")));
            let default = stated_default(&help)
                .1
                .unwrap_or_else(|| panic!("{flag}: {help}"));
            assert!(
                default.contains(&text),
                "--{flag}: {default:?} lacks {text:?}"
            );
        }
        let model = ModelArgs::augment_args(clap::Command::new("model"));
        let sizes = model
            .get_arguments()
            .find(|a| a.get_long() == Some("model-size"));
        let sizes = help(sizes.unwrap());
        for known in catalog::models() {
            assert!(
                sizes.contains(&format!("`{}`", known.id)),
                "{sizes} lacks {}",
                known.id
            );
        }
    }

    #[test]
    fn stated_ranges_are_the_checked_ones() {
        let mut checked = Vec::new();
        for arg in serve_command().get_arguments() {
            let Some((low, high)) = stated_range(&help(arg)) else {
                continue;
            };
            let flag = format!("--{}", arg.get_long().unwrap());
            let check = |n: usize| Config::from_args(parse_flags(&[&flag, &n.to_string()]));
            for n in [low, high] {
                check(n).unwrap_or_else(|e| panic!("{flag} {n}: {e}"));
            }
            for n in low.checked_sub(1).into_iter().chain([high + 1]) {
                let Err(err) = check(n) else {
                    panic!("{flag} {n}: accepted outside the stated {low}–{high}");
                };
                let err = err.to_string();
                assert!(err.contains(&format!("({flag})")), "{flag} {n}: {err}");
            }
            checked.push(flag);
        }
        assert_eq!(
            checked,
            [
                "--workers",
                "--threads-per-worker",
                "--threads-per-piece",
                "--queue-limit",
                "--shutdown-timeout-seconds",
                "--http-workers",
                "--max-connections",
                "--max-uploads",
                "--live-max-sessions",
            ]
        );
    }
}
