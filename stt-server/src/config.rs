//! Configuration from environment variables and command-line flags (flags win).
//!
//! Each setting is declared once, as a field of [`ModelArgs`] or [`ServeArgs`]:
//! flag, variable, help, the value parser that checks it, a literal default or a
//! computed one stated as `[default: …]`, and a range stated as `(a–b)`. `--help`
//! shows these declarations, and the tables of docs/configuration.md are rendered
//! from them (a unit test fails when the document differs).
//!
//! clap parses every value, so an invalid one stops the start with a message naming
//! the flag, and the variable too when read through [`parse_from`] (which also takes
//! a variable set to blanks as unset). [`Config::from_args`] then computes the
//! defaults that depend on other settings and checks the settings against each other.

use std::ffi::{OsStr, OsString};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use clap::builder::{PathBufValueParser, TypedValueParser};
use clap::{ArgAction, Command, FromArgMatches};
use whisper_safe::AudioContext;

use crate::engine::ModelSource;
use crate::models::catalog::{self, CatalogError, KnownModel, ModelRequest, Quant};

/// Time a client has to send an upload by default, unless half the request timeout is shorter.
pub const DEFAULT_BODY_TIMEOUT_SECONDS: f64 = 120.0;
/// Largest uploads the default upload memory holds at once.
pub const DEFAULT_UPLOADS_IN_MEMORY: u64 = 8;
/// Requests that may wait per worker by default.
pub const DEFAULT_QUEUE_PER_WORKER: usize = 4;
/// Bytes of decoded audio per second: 16 kHz mono `f32`.
pub const SAMPLE_BYTES_PER_SECOND: u64 = 16_000 * 4;
/// whisper.cpp gains little beyond this many threads per run.
pub const MAX_DEFAULT_THREADS_PER_WORKER: usize = 4;

/// Which model and libraries to load; shared by `serve` and `transcribe`.
///
/// [`Default`] is the declared defaults.
#[derive(clap::Args, Debug, Clone)]
pub struct ModelArgs {
    /// Model size from the catalog: `tiny`, `tiny.en`, `base`, `base.en`, `small`,
    /// `small.en`, `medium`, `medium.en`, `large-v3`, `large-v3-turbo`.
    #[arg(
        long,
        env = "WHISPER_MODEL_SIZE",
        value_name = "SIZE",
        default_value = whisper_safe::DEFAULT_MODEL_SIZE,
        value_parser = model_size
    )]
    pub model_size: &'static KnownModel,
    /// Weight type of the model file: `f16`, `q8_0`, `q5_1`, `q5_0`, `q4_0`, `iq4_nl`
    /// [default: the file of the size already present, in the order q8_0, q5_1, f16,
    /// q5_0, q4_0, iq4_nl, else q8_0 (docs/models.md)].
    #[arg(long, env = "WHISPER_MODEL_QUANT", value_name = "QUANT", value_parser = parsed::<Quant>)]
    pub model_quant: Option<Quant>,
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
    pub artifacts_dir: PathBuf,
    /// Directory of the whisper.cpp shared libraries; must exist [default: from the
    /// artifact layout].
    #[arg(
        long,
        env = "WHISPER_LIB_DIR",
        value_name = "DIR",
        value_parser = PathBufValueParser::new().try_map(existing_dir)
    )]
    pub lib_dir: Option<PathBuf>,
    /// An explicit model file (must exist); overrides size and quantization [default:
    /// from size and quant].
    ///
    /// Its API id comes from its name (`ggml-base.en-q5_1.bin` → `base.en-q5_1`, else
    /// the file stem).
    #[arg(
        long,
        env = "WHISPER_MODEL_PATH",
        value_name = "FILE",
        value_parser = PathBufValueParser::new().try_map(existing_file)
    )]
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
        default_value = "off",
        value_parser = on_off,
        action = ArgAction::Set
    )]
    pub flash_attn: bool,
    /// Silero VAD model file for long audio, or `off` [default:
    /// silero-vad/ggml-silero-v6.bin in the artifact directory, when present].
    ///
    /// A file named here must load, or the server does not start; the default file is
    /// used when present (its absence is a warning: long audio is then cut at quiet
    /// moments and silence is decoded). See docs/api.md, Long audio.
    #[arg(long, env = "WHISPER_VAD_MODEL", value_name = "FILE|off", value_parser = vad_model)]
    pub vad_model: Option<VadModel>,
}

/// Flags and variables of `stt-server serve`.
///
/// [`Default`] is the declared defaults.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// Model and libraries.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Listening address (IP or host name).
    #[arg(long, env = "STT_HOST", default_value = "0.0.0.0")]
    pub host: String,
    /// Listening port.
    #[arg(long, env = "STT_PORT", default_value = "8080", value_parser = parsed::<u16>)]
    pub port: u16,
    /// Decoding states over the one loaded model (1–256) [default: cores ÷ threads per
    /// worker].
    ///
    /// Each runs one request at a time on its own thread.
    #[arg(long, env = "STT_WORKERS", value_parser = count::<1, 256>)]
    pub workers: Option<usize>,
    /// Compute threads of each run (1–512) [default: min(4, cores ÷ workers)].
    #[arg(long, env = "STT_THREADS_PER_WORKER", value_parser = count::<1, 512>)]
    pub threads_per_worker: Option<usize>,
    /// Compute threads of each piece of a long recording (1–512).
    ///
    /// A worker decodes threads per worker ÷ this many pieces at once, each on a decoding
    /// state of its own (created when first needed); set it to the threads per worker to
    /// decode one piece at a time (a larger value does the same, with a warning at start).
    #[arg(long, env = "STT_THREADS_PER_PIECE", default_value = "1", value_parser = count::<1, 512>)]
    pub threads_per_piece: usize,
    /// Requests that may be admitted beyond the workers (0–100,000) [default: 4 ×
    /// workers].
    ///
    /// Their bodies are complete; they are being decoded or waiting. Beyond, 429 at
    /// once: the workers are busy. `0`: no waiting.
    #[arg(long, env = "STT_QUEUE_LIMIT", value_parser = count::<0, 100_000>)]
    pub queue_limit: Option<usize>,
    /// Largest `file` part, bytes: `K`, `M`, `G` are ×1024 (`25M` is 26,214,400),
    /// `KB`, `MB`, `GB` ×1000.
    #[arg(long, env = "STT_MAX_UPLOAD_BYTES", default_value = "25M", value_parser = positive_bytes)]
    pub max_upload_bytes: u64,
    /// Longest audio accepted, seconds (413 beyond; checked while decoding).
    #[arg(
        long,
        env = "STT_MAX_AUDIO_SECONDS",
        default_value = "3600",
        value_parser = parse_seconds
    )]
    pub max_audio_seconds: f64,
    /// Longest a request may take, seconds, upload and queueing included (504 beyond;
    /// the run is stopped).
    #[arg(
        long,
        env = "STT_REQUEST_TIMEOUT_SECONDS",
        default_value = "600",
        value_parser = parse_seconds
    )]
    pub request_timeout_seconds: f64,
    /// After SIGTERM/SIGINT, how long requests in flight may still run, seconds
    /// (0–3600).
    #[arg(
        long,
        env = "STT_SHUTDOWN_TIMEOUT_SECONDS",
        default_value = "30",
        value_parser = count::<0, 3600>
    )]
    pub shutdown_timeout_seconds: usize,
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
    #[arg(long, env = "STT_AUDIO_MEMORY_BYTES", value_parser = parse_bytes)]
    pub audio_memory_bytes: Option<u64>,
    /// HTTP event-loop threads (1–256) [default: cores].
    ///
    /// They parse and route; decoding and inference run elsewhere.
    #[arg(long, env = "STT_HTTP_WORKERS", value_parser = count::<1, 256>)]
    pub http_workers: Option<usize>,
    /// Open connections at most (1–1,000,000); beyond, new ones wait in the listen
    /// backlog until one closes (each costs up to ~64 KiB of buffers).
    #[arg(
        long,
        env = "STT_MAX_CONNECTIONS",
        default_value = "1024",
        value_parser = count::<1, 1_000_000>
    )]
    pub max_connections: usize,
    /// Seconds a connection's first request line and headers may take to arrive,
    /// else 408 and close.
    #[arg(
        long,
        env = "STT_HEADER_TIMEOUT_SECONDS",
        default_value = "5",
        value_parser = parse_seconds
    )]
    pub header_timeout_seconds: f64,
    /// Seconds an idle keep-alive connection stays open.
    #[arg(long, env = "STT_KEEP_ALIVE_SECONDS", default_value = "5", value_parser = parse_seconds)]
    pub keep_alive_seconds: f64,
    /// Seconds the upload may take to arrive, below the request timeout [default:
    /// min(120, request timeout ÷ 2)].
    ///
    /// Beyond, 408 `body_timeout` and the connection is closed; being below the
    /// request timeout, a stalled upload never holds its place until then.
    #[arg(long, env = "STT_BODY_TIMEOUT_SECONDS", value_parser = parse_seconds)]
    pub body_timeout_seconds: Option<f64>,
    /// Seconds a body may send nothing; beyond, 408 `body_stalled`, the connection is
    /// closed and its memory freed.
    #[arg(long, env = "STT_BODY_IDLE_SECONDS", default_value = "10", value_parser = parse_seconds)]
    pub body_idle_seconds: f64,
    /// Slowest average a body may arrive at once its first idle-timeout seconds have
    /// passed, bytes per second (`K` ×1024; `0`: no floor); below, 408 `body_too_slow`.
    #[arg(
        long,
        env = "STT_BODY_MIN_BYTES_PER_SECOND",
        default_value = "1K",
        value_parser = parse_bytes
    )]
    pub body_min_bytes_per_second: u64,
    /// Uploads being received at once (1–100,000); beyond, 503 `too_many_uploads`
    /// before the body is read.
    ///
    /// An upload takes no worker place until its body is complete.
    #[arg(long, env = "STT_MAX_UPLOADS", default_value = "256", value_parser = count::<1, 100_000>)]
    pub max_uploads: usize,
    /// Bytes the uploads being received may hold together, at least one largest
    /// upload [default: 8 × (max upload + 1 MiB)].
    ///
    /// An upload reserves its declared length when it starts (a chunked one, what has
    /// arrived); beyond, 503 `upload_memory_full` before more is read.
    #[arg(long, env = "STT_UPLOAD_MEMORY_BYTES", value_parser = parse_bytes)]
    pub upload_memory_bytes: Option<u64>,
    /// Encoder context for audio under 30 s: `trimmed` or `full`.
    ///
    /// `trimmed`: the encoder computes only the audio plus 2 s of margin (about 2×
    /// faster on short clips, same words in the measurements); `full`: always 30 s
    /// windows.
    #[arg(long, env = "STT_AUDIO_CONTEXT", default_value = "trimmed", value_parser = audio_context)]
    pub audio_context: AudioContext,
    /// Comma-separated model names answered as the serving model, on the file
    /// endpoints and in live sessions (OpenAI's names, so that their clients work
    /// unchanged).
    #[arg(
        long,
        env = "STT_MODEL_ALIASES",
        default_value = "whisper-1,gpt-4o-transcribe,gpt-4o-mini-transcribe,gpt-transcribe,gpt-live-transcribe"
    )]
    pub model_aliases: String,
    /// Live transcription sessions at once (0–100,000); more get 429 at the upgrade.
    #[arg(
        long,
        env = "STT_LIVE_MAX_SESSIONS",
        default_value = "8",
        value_parser = count::<0, 100_000>
    )]
    pub live_max_sessions: usize,
    /// Seconds a live session may send no audio before it is closed (close code 1008;
    /// pings and other events do not count).
    #[arg(long, env = "STT_LIVE_IDLE_SECONDS", default_value = "60", value_parser = parse_seconds)]
    pub live_idle_seconds: f64,
    /// Seconds of audio a live session's input buffer holds before a commit
    /// (manual turns; server VAD cuts turns at 30 s).
    #[arg(
        long,
        env = "STT_LIVE_MAX_BUFFER_SECONDS",
        default_value = "300",
        value_parser = parse_seconds
    )]
    pub live_max_buffer_seconds: f64,
}

impl Default for ModelArgs {
    fn default() -> Self {
        declared_defaults()
    }
}

impl Default for ServeArgs {
    fn default() -> Self {
        declared_defaults()
    }
}

/// A setting that stops the start; clap's own message for a value that does not
/// parse has the same form.
#[derive(Debug, thiserror::Error)]
#[error("invalid value '{value}' for '{variable} (--{flag})': {reason}")]
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
    /// The model selection of these (parsed) flags and variables; the VAD model
    /// defaults to the artifact layout's.
    pub fn from_args(args: ModelArgs) -> Self {
        let vad_model = args.vad_model.unwrap_or_else(|| {
            VadModel::Default(crate::models::vad_model_path(&args.artifacts_dir))
        });
        Self {
            request: ModelRequest {
                model: args.model_size,
                quant: args.model_quant,
            },
            artifacts_dir: args.artifacts_dir,
            lib_dir: args.lib_dir,
            model_path: args.model_path,
            cpu_backend: args
                .cpu_backend
                .map(|b| b.trim().to_owned())
                .filter(|b| !b.is_empty()),
            flash_attn: args.flash_attn,
            vad_model,
        }
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
    /// The configuration of these (parsed) flags and variables: the defaults that
    /// depend on other settings, and the checks of settings against each other.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first invalid variable.
    pub fn from_args(args: ServeArgs) -> Result<Self, ConfigError> {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let host = args.host.trim();
        let listen = (host, args.port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| ConfigError {
                variable: "STT_HOST",
                flag: "host",
                value: host.to_owned(),
                reason: "not an address or a resolvable host name".into(),
            })?;
        let (workers, threads_per_worker) =
            pool_shape(cores, args.workers, args.threads_per_worker);
        if workers * threads_per_worker > cores {
            log::warn!(
                "{workers} workers × {threads_per_worker} threads exceed the {cores} cores: \
                 concurrent runs will compete for them"
            );
        }
        let threads_per_piece = args.threads_per_piece;
        if threads_per_piece > threads_per_worker {
            log::warn!(
                "{threads_per_piece} threads per piece exceed the {threads_per_worker} threads \
                 per worker: each worker decodes one piece at a time with its \
                 {threads_per_worker} thread(s)"
            );
        }
        let queue_limit = args
            .queue_limit
            .unwrap_or(DEFAULT_QUEUE_PER_WORKER * workers);
        let request_bytes = request_memory_bytes(args.max_upload_bytes, args.max_audio_seconds);
        let audio_memory_bytes = match args.audio_memory_bytes {
            None => request_bytes.saturating_mul((workers + queue_limit) as u64),
            Some(bytes) => at_least(
                bytes,
                request_bytes,
                "one request's worst case (max upload + 1 MiB + max audio seconds × 64000)",
                ("STT_AUDIO_MEMORY_BYTES", "audio-memory-bytes"),
            )?,
        };
        let request_timeout = args.request_timeout_seconds;
        let body_timeout = match args.body_timeout_seconds {
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
        let upload_bytes = args
            .max_upload_bytes
            .saturating_add(crate::server::form::FORM_OVERHEAD_BYTES);
        let uploads = crate::server::upload::UploadLimits {
            max_uploads: args.max_uploads,
            memory_bytes: match args.upload_memory_bytes {
                None => upload_bytes.saturating_mul(DEFAULT_UPLOADS_IN_MEMORY),
                Some(bytes) => at_least(
                    bytes,
                    upload_bytes,
                    "one largest upload (max upload + 1 MiB)",
                    ("STT_UPLOAD_MEMORY_BYTES", "upload-memory-bytes"),
                )?,
            },
            idle_timeout: Duration::from_secs_f64(args.body_idle_seconds),
            min_bytes_per_second: args.body_min_bytes_per_second,
            body_timeout: Duration::from_secs_f64(body_timeout),
        };
        Ok(Self {
            model: ModelConfig::from_args(args.model),
            listen,
            workers,
            threads_per_worker,
            threads_per_piece,
            queue_limit,
            max_upload_bytes: args.max_upload_bytes,
            max_audio_seconds: args.max_audio_seconds,
            request_timeout: Duration::from_secs_f64(request_timeout),
            shutdown_timeout: Duration::from_secs(args.shutdown_timeout_seconds as u64),
            api_keys: keys(args.api_keys, ("STT_API_KEYS", "api-keys"))?,
            admin_keys: keys(args.admin_keys, ("STT_ADMIN_KEYS", "admin-keys"))?,
            audio_context: args.audio_context,
            audio_memory_bytes,
            http_workers: args.http_workers.unwrap_or(cores),
            max_connections: args.max_connections,
            header_timeout: Duration::from_secs_f64(args.header_timeout_seconds),
            keep_alive: Duration::from_secs_f64(args.keep_alive_seconds),
            uploads,
            model_aliases: args
                .model_aliases
                .split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_owned)
                .collect(),
            live: crate::live::LiveLimits {
                max_sessions: args.live_max_sessions,
                idle_timeout: Duration::from_secs_f64(args.live_idle_seconds),
                max_buffer_seconds: args.live_max_buffer_seconds,
            },
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
    max_upload_bytes
        .saturating_add(crate::server::form::FORM_OVERHEAD_BYTES)
        .saturating_add(samples_bytes(max_audio_seconds))
}

/// Bytes of decoded samples of `seconds` of audio.
pub fn samples_bytes(seconds: f64) -> u64 {
    (seconds * SAMPLE_BYTES_PER_SECOND as f64).ceil() as u64
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

/// `bytes` when it holds at least `least`, `what` that is.
fn at_least(
    bytes: u64,
    least: u64,
    what: &str,
    (variable, flag): (&'static str, &'static str),
) -> Result<u64, ConfigError> {
    if bytes >= least {
        return Ok(bytes);
    }
    Err(ConfigError {
        variable,
        flag,
        value: bytes.to_string(),
        reason: format!("must be at least {what}, {least} bytes"),
    })
}

/// Comma-separated bearer keys, checked here rather than by clap, whose message
/// would show the key.
fn keys(
    value: Option<String>,
    (variable, flag): (&'static str, &'static str),
) -> Result<Vec<String>, ConfigError> {
    let keys: Vec<String> = value
        .iter()
        .flat_map(|keys| keys.split(','))
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
        .collect();
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

/// Parses `args` and the environment into `T` as [`clap::Parser::parse_from`] does,
/// except that a variable set to blanks counts as unset and an invalid value's
/// message names its variable too, as `VARIABLE (--flag)`. Exits on an error, and
/// after `--help` or `--version`.
pub fn parse_from<T: clap::Parser>(
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
) -> T {
    let mut command = unset_blank_variables(T::command(), &|name: &OsStr| std::env::var_os(name));
    match command.try_get_matches_from_mut(args) {
        Ok(matches) => {
            T::from_arg_matches(&matches).unwrap_or_else(|e| e.format(&mut command).exit())
        }
        Err(e) => name_the_variable(e, &command).exit(),
    }
}

/// `command` without the variables that `var` finds set to blanks.
fn unset_blank_variables(command: Command, var: &impl Fn(&OsStr) -> Option<OsString>) -> Command {
    command
        .mut_args(|arg| {
            let value = arg.get_env().and_then(var);
            match value {
                Some(v) if v.to_string_lossy().trim().is_empty() => arg.env(None::<&str>),
                _ => arg,
            }
        })
        .mut_subcommands(|sub| unset_blank_variables(sub, var))
}

/// `err`, an invalid value's, with the argument shown as `VARIABLE (--flag)` when
/// `command` (or a subcommand) declares a variable for the flag.
fn name_the_variable(mut err: clap::Error, command: &Command) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if !matches!(
        err.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    ) {
        return err;
    }
    // clap shows the argument as `--flag <VALUE>`.
    let Some(ContextValue::String(shown)) = err.get(ContextKind::InvalidArg) else {
        return err;
    };
    let Some(flag) = shown
        .strip_prefix("--")
        .and_then(|s| s.split([' ', '=']).next())
    else {
        return err;
    };
    if let Some(variable) = variable_of(command, flag) {
        let named = format!("{} (--{flag})", variable.to_string_lossy());
        err.insert(ContextKind::InvalidArg, ContextValue::String(named));
    }
    err
}

/// The variable declared for `--flag` in `command` or its subcommands.
fn variable_of(command: &Command, flag: &str) -> Option<OsString> {
    command
        .get_arguments()
        .filter(|arg| arg.get_long() == Some(flag))
        .find_map(|arg| arg.get_env().map(OsStr::to_owned))
        .or_else(|| {
            command
                .get_subcommands()
                .find_map(|sub| variable_of(sub, flag))
        })
}

/// `T` from `flags` alone (no variables), clap's declared defaults filled in.
fn from_flags<T: clap::Args + FromArgMatches>(flags: &[&str]) -> Result<T, clap::Error> {
    let command = T::augment_args(Command::new("flags")).mut_args(|a| a.env(None::<&str>));
    let matches =
        command.try_get_matches_from(std::iter::once("flags").chain(flags.iter().copied()))?;
    T::from_arg_matches(&matches)
}

/// `T` with its declared defaults.
fn declared_defaults<T: clap::Args + FromArgMatches>() -> T {
    from_flags(&[]).unwrap_or_else(|e| panic!("the declared defaults do not parse: {e}"))
}

/// A `T`, surrounding blanks ignored.
fn parsed<T: FromStr>(value: &str) -> Result<T, T::Err> {
    value.trim().parse()
}

/// A count in `MIN..=MAX`.
fn count<const MIN: usize, const MAX: usize>(value: &str) -> Result<usize, String> {
    match parsed::<usize>(value) {
        Ok(n) if (MIN..=MAX).contains(&n) => Ok(n),
        Ok(_) => Err(format!("must be in {MIN}..={MAX}")),
        Err(e) => Err(e.to_string()),
    }
}

/// Seconds: a positive number, at most 10⁷.
pub fn parse_seconds(value: &str) -> Result<f64, String> {
    match parsed::<f64>(value) {
        Ok(s) if s.is_finite() && s > 0.0 && s <= 1e7 => Ok(s),
        Ok(_) => Err("must be a positive number of seconds, at most 10000000".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Bytes: `25M` (×1024²), `25MB` (×1000²), `26214400`.
pub fn parse_bytes(value: &str) -> Result<u64, String> {
    let value = value.trim();
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (number, suffix) = value.split_at(split);
    let factor: Option<u64> = match suffix.trim().to_ascii_uppercase().as_str() {
        "" | "B" => Some(1),
        "K" | "KI" | "KIB" => Some(1 << 10),
        "M" | "MI" | "MIB" => Some(1 << 20),
        "G" | "GI" | "GIB" => Some(1 << 30),
        "KB" => Some(1_000),
        "MB" => Some(1_000_000),
        "GB" => Some(1_000_000_000),
        _ => None,
    };
    number
        .parse::<u64>()
        .ok()
        .zip(factor)
        .and_then(|(n, factor)| n.checked_mul(factor))
        .ok_or_else(|| "expected a byte count such as 26214400, 25M or 25MB".into())
}

/// Bytes, at least one.
fn positive_bytes(value: &str) -> Result<u64, String> {
    match parse_bytes(value)? {
        0 => Err("must be positive".into()),
        n => Ok(n),
    }
}

/// A size from the catalog.
fn model_size(value: &str) -> Result<&'static KnownModel, CatalogError> {
    catalog::lookup(value.trim())
}

/// `on` or `off`.
fn on_off(value: &str) -> Result<bool, &'static str> {
    match value.trim() {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err("expected `on` or `off`"),
    }
}

/// `trimmed` or `full`.
fn audio_context(value: &str) -> Result<AudioContext, &'static str> {
    match value.trim() {
        "trimmed" => Ok(AudioContext::Trimmed),
        "full" => Ok(AudioContext::Full),
        _ => Err("expected `trimmed` or `full`"),
    }
}

/// A VAD model file that exists, or `off`.
fn vad_model(value: &str) -> Result<VadModel, &'static str> {
    match value.trim() {
        off if off.eq_ignore_ascii_case("off") => Ok(VadModel::Off),
        path if Path::new(path).is_file() => Ok(VadModel::Explicit(path.into())),
        _ => Err("no such file (stt-server models pull silero-vad, or off)"),
    }
}

/// A file that exists.
fn existing_file(path: PathBuf) -> Result<PathBuf, &'static str> {
    if path.is_file() {
        Ok(path)
    } else {
        Err("no such file")
    }
}

/// A directory that exists.
fn existing_dir(path: PathBuf) -> Result<PathBuf, &'static str> {
    if path.is_dir() {
        Ok(path)
    } else {
        Err("no such directory")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Args;

    /// `serve`'s configuration from these flags, or the message that stops the start.
    fn serve(flags: &[&str]) -> Result<Config, String> {
        let declared = ServeArgs::augment_args(Command::new("serve"));
        let args = from_flags(flags).map_err(|e| name_the_variable(e, &declared).to_string())?;
        Config::from_args(args).map_err(|e| e.to_string())
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
        let config = Config::from_args(ServeArgs::default()).unwrap();
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
        assert_eq!(config.uploads.memory_bytes, 8 * 27_262_976);
        assert_eq!(config.uploads.min_bytes_per_second, 1024);
        assert_eq!(config.shutdown_timeout, Duration::from_secs(30));
        assert_eq!(config.model_aliases.len(), 5);
        let short = serve(&["--request-timeout-seconds", "60"]).unwrap();
        assert_eq!(short.uploads.body_timeout, Duration::from_secs(30));
        assert!(!config.model.context_options().flash_attn);
        let on = serve(&["--flash-attn", "on"]).unwrap();
        assert!(on.model.context_options().flash_attn);
    }

    #[test]
    fn invalid_values_name_the_variable_and_the_flag() {
        let cases = [
            ("--port=eighty", "STT_PORT"),
            ("--port=70000", "STT_PORT"),
            ("--workers=0", "STT_WORKERS"),
            ("--threads-per-worker=-1", "STT_THREADS_PER_WORKER"),
            ("--queue-limit=many", "STT_QUEUE_LIMIT"),
            ("--max-upload-bytes=25 parsecs", "STT_MAX_UPLOAD_BYTES"),
            ("--max-upload-bytes=0", "STT_MAX_UPLOAD_BYTES"),
            ("--max-audio-seconds=-3", "STT_MAX_AUDIO_SECONDS"),
            (
                "--request-timeout-seconds=NaN",
                "STT_REQUEST_TIMEOUT_SECONDS",
            ),
            ("--host=not a host!", "STT_HOST"),
            ("--model-size=huge", "WHISPER_MODEL_SIZE"),
            ("--model-quant=q3_k", "WHISPER_MODEL_QUANT"),
            ("--model-path=/nonexistent/model.bin", "WHISPER_MODEL_PATH"),
            ("--lib-dir=/nonexistent/lib", "WHISPER_LIB_DIR"),
            ("--vad-model=/nonexistent/vad.bin", "WHISPER_VAD_MODEL"),
            ("--api-keys=good,bad key", "STT_API_KEYS"),
            ("--admin-keys=bad\tkey", "STT_ADMIN_KEYS"),
            ("--audio-memory-bytes=100M", "STT_AUDIO_MEMORY_BYTES"),
            ("--upload-memory-bytes=1M", "STT_UPLOAD_MEMORY_BYTES"),
            ("--http-workers=0", "STT_HTTP_WORKERS"),
            ("--max-connections=none", "STT_MAX_CONNECTIONS"),
            ("--header-timeout-seconds=0", "STT_HEADER_TIMEOUT_SECONDS"),
            ("--keep-alive-seconds=-1", "STT_KEEP_ALIVE_SECONDS"),
            ("--body-timeout-seconds=600", "STT_BODY_TIMEOUT_SECONDS"),
            (
                "--body-min-bytes-per-second=slow",
                "STT_BODY_MIN_BYTES_PER_SECOND",
            ),
            ("--audio-context=half", "STT_AUDIO_CONTEXT"),
            ("--flash-attn=maybe", "WHISPER_FLASH_ATTN"),
            ("--live-idle-seconds=1e8", "STT_LIVE_IDLE_SECONDS"),
        ];
        for (flag, variable) in cases {
            let err = serve(&[flag]).expect_err(flag);
            let named = format!("{variable} ({})", flag.split('=').next().unwrap());
            assert!(err.contains(&named), "{flag}: {err}");
        }
        // A key is never shown.
        let err = serve(&["--api-keys=good,bad key"]).unwrap_err();
        assert!(!err.contains("bad key"), "{err}");
    }

    #[test]
    fn values_parse() {
        let config = serve(&[
            "--host=127.0.0.1",
            "--port=0",
            "--workers=2",
            "--threads-per-worker= 1 ",
            "--queue-limit=0",
            "--max-upload-bytes=1MB",
            "--api-keys= a , b,,",
            "--audio-context=full",
            "--model-size=tiny.en",
            "--model-quant=F16",
            "--vad-model=OFF",
        ])
        .unwrap();
        assert_eq!(config.listen, "127.0.0.1:0".parse().unwrap());
        assert_eq!((config.workers, config.threads_per_worker), (2, 1));
        assert_eq!(config.queue_limit, 0);
        assert_eq!(config.max_upload_bytes, 1_000_000);
        assert_eq!(config.api_keys, ["a", "b"]);
        assert_eq!(config.audio_context, AudioContext::Full);
        assert_eq!(config.model.request.to_string(), "tiny.en-f16");
        assert_eq!(config.model.vad_model, VadModel::Off);
        assert!(!config.summary().contains("a, b"));
    }

    #[test]
    fn blank_variables_count_as_unset() {
        let var = |name: &OsStr| match name.to_str()? {
            "STT_WORKERS" => Some(" \t".into()),
            "STT_PORT" => Some("8081".into()),
            _ => None,
        };
        let command = unset_blank_variables(ServeArgs::augment_args(Command::new("serve")), &var);
        let env = |flag| {
            let arg = command.get_arguments().find(|a| a.get_long() == Some(flag));
            arg.unwrap().get_env()
        };
        assert_eq!(env("workers"), None);
        assert_eq!(env("port"), Some(OsStr::new("STT_PORT")));
        assert_eq!(env("queue-limit"), Some(OsStr::new("STT_QUEUE_LIMIT")));
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_bytes("25M"), Ok(26_214_400));
        assert_eq!(parse_bytes("25MB"), Ok(25_000_000));
        assert_eq!(parse_bytes("1k"), Ok(1024));
        assert_eq!(parse_bytes("123"), Ok(123));
        assert!(parse_bytes("M").is_err());
        assert!(parse_bytes("99999999999999999999G").is_err());
    }

    /// Marks the start of the generated block in docs/configuration.md (the line goes on
    /// to say how to regenerate it).
    const GENERATED: &str = "<!-- generated from stt-server/src/config.rs";
    /// Marks its end.
    const END_GENERATED: &str = "<!-- end generated -->";

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
    fn stated_defaults_name_the_constants() {
        // Defaults computed at start state the constants they use.
        let command = ServeArgs::augment_args(Command::new("serve"));
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
                "upload-memory-bytes",
                format!("{DEFAULT_UPLOADS_IN_MEMORY} × (max upload + "),
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
        let model = ModelArgs::augment_args(Command::new("model"));
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
        for arg in ServeArgs::augment_args(Command::new("serve")).get_arguments() {
            let Some((low, high)) = stated_range(&help(arg)) else {
                continue;
            };
            let flag = format!("--{}", arg.get_long().unwrap());
            let check = |n: usize| serve(&[&flag, &n.to_string()]);
            for n in [low, high] {
                check(n).unwrap_or_else(|e| panic!("{flag} {n}: {e}"));
            }
            for n in low.checked_sub(1).into_iter().chain([high + 1]) {
                let Err(err) = check(n) else {
                    panic!("{flag} {n}: accepted outside the stated {low}–{high}");
                };
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
