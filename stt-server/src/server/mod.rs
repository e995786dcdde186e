//! The HTTP service: OpenAI-compatible audio endpoints, whisper.cpp's
//! `/inference`, model listing and switching, probes and metrics.
//!
//! [`serve`] binds the port first (so `/health` and `/ready` answer during the
//! model load), loads the model in the background, and on SIGTERM/SIGINT stops
//! accepting, lets requests in flight finish within the grace period, and returns.

mod auth;
pub mod error;
pub mod form;
pub mod formats;
mod logging;
mod metrics;
mod pool;
pub mod request;
pub mod request_id;
mod routes;
mod stream;
pub mod upload;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::{from_fn, ErrorHandlers};
use actix_web::{web, App, HttpServer};
use prometheus::Registry;

pub use auth::ApiKeys;
pub use error::ApiError;
pub use logging::init_logging;
pub use metrics::HttpMetrics;
pub use pool::DecodePool;

use crate::config::Config;
use crate::engine::{Engine, EngineConfig, ModelLoader, WhisperLoader};

/// Request limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Largest upload in bytes.
    pub max_upload_bytes: u64,
    /// Longest audio in seconds.
    pub max_audio_seconds: f64,
    /// Longest a request may take.
    pub request_timeout: Duration,
}

/// What every handler shares.
pub struct AppState {
    /// The transcription engine.
    pub engine: Engine,
    /// Request limits.
    pub limits: Limits,
    /// Uploads being received.
    pub uploads: Arc<upload::UploadGate>,
    /// Where catalog models are looked up.
    pub artifacts_dir: PathBuf,
    /// Accepted bearer keys.
    pub api_keys: ApiKeys,
    /// Every metric of the process.
    pub registry: Registry,
    /// HTTP metric handles.
    pub http_metrics: HttpMetrics,
    /// Where uploads are decoded.
    pub decoders: DecodePool,
    /// Model names answered as the serving model.
    pub aliases: Vec<String>,
    /// Live sessions.
    pub live: crate::live::LiveState,
}

impl AppState {
    /// State for `engine` (whose metrics are in `registry`) under `config`.
    ///
    /// # Errors
    /// When the HTTP metrics are already registered in `registry`, or a
    /// decoding thread cannot start.
    pub fn new(config: &Config, engine: Engine, registry: Registry) -> Result<Self, ServeError> {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Ok(Self {
            engine,
            limits: Limits {
                max_upload_bytes: config.max_upload_bytes,
                max_audio_seconds: config.max_audio_seconds,
                request_timeout: config.request_timeout,
            },
            uploads: upload::UploadGate::new(config.uploads, &registry)?,
            artifacts_dir: config.model.artifacts_dir.clone(),
            api_keys: ApiKeys::new(&config.api_keys, &config.admin_keys),
            http_metrics: HttpMetrics::register(&registry)?,
            live: crate::live::LiveState::new(config.live, &registry)?,
            aliases: config.model_aliases.clone(),
            registry,
            decoders: DecodePool::new(cores).map_err(ServeError::Threads)?,
        })
    }
}

/// The engine configuration `config` asks for.
pub fn engine_config(config: &Config) -> EngineConfig {
    EngineConfig {
        workers: config.workers,
        threads_per_worker: config.threads_per_worker,
        threads_per_piece: config.threads_per_piece,
        queue_limit: config.queue_limit,
        audio_context: config.audio_context,
        memory_budget: config.audio_memory_bytes,
    }
}

/// 503 while no model serves, saying what is loading or why the load failed.
pub(crate) fn not_ready(engine: &Engine) -> ApiError {
    let status = engine.status();
    let message = match (&status.loading, &status.last_error) {
        (Some(loading), _) => format!("model {loading} is loading"),
        (None, Some(error)) => format!("no model is loaded: {error}"),
        (None, None) => "no model is loaded".to_owned(),
    };
    ApiError::unavailable("model_not_ready", message)
}

/// The application: routes and middleware over `state`.
pub fn app(
    state: web::Data<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    use crate::live::{connection, page};
    use routes::{audio, models, probes};
    App::new()
        .app_data(state)
        .wrap(ErrorHandlers::new().default_handler(error::envelope_framework_errors))
        .wrap(from_fn(auth::require_key))
        .wrap(from_fn(metrics::observe))
        .wrap(from_fn(request_id::assign))
        .service(endpoint("/health", web::get().to(probes::health)))
        .service(endpoint("/ready", web::get().to(probes::ready)))
        .service(endpoint("/metrics", web::get().to(metrics::export)))
        .service(endpoint("/v1/models", web::get().to(models::list)))
        .service(endpoint("/v1/models/{id}", web::get().to(models::get)))
        .service(endpoint(
            "/v1/models/{id}/load",
            web::post().to(models::load),
        ))
        .service(endpoint(
            "/v1/audio/transcriptions",
            web::post().to(audio::transcriptions),
        ))
        .service(endpoint(
            "/v1/audio/translations",
            web::post().to(audio::translations),
        ))
        .service(endpoint("/inference", web::post().to(audio::inference)))
        .service(endpoint(
            "/v1/realtime",
            web::get().to(connection::realtime),
        ))
        .service(endpoint(
            "/v1/realtime/client_secrets",
            web::post().to(connection::client_secrets),
        ))
        .service(endpoint("/", web::get().to(page::index)))
        .default_service(web::to(routes::not_found))
}

/// A resource with one route; other methods get 405.
fn endpoint(path: &str, route: actix_web::Route) -> actix_web::Resource {
    web::resource(path)
        .route(route)
        .default_service(web::to(routes::method_not_allowed))
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The library directory cannot be resolved.
    #[error(transparent)]
    Libraries(#[from] whisper_safe::LoadError),
    /// The engine could not start.
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    /// The configured VAD model cannot be loaded.
    #[error(transparent)]
    Vad(#[from] crate::config::ConfigError),
    /// The metrics could not be registered.
    #[error("cannot register metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// A decoding thread could not start.
    #[error("cannot start a decoding thread: {0}")]
    Threads(std::io::Error),
    /// The port could not be bound, or the HTTP server failed.
    #[error("HTTP server on {address}: {source}")]
    Http {
        /// The address.
        address: std::net::SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// Runs the service until SIGTERM or SIGINT, then drains and returns.
///
/// Order: port bound → (background) libraries, log bridge, model, states one
/// at a time, warm-up → ready. The process environment the libraries read
/// ([`whisper_safe::set_process_environment`]) is `main`'s first step.
///
/// # Errors
/// [`ServeError`] for what stops the start; a failed model load does not stop
/// it (`/ready` says why, and a model can be loaded at run time).
pub fn serve(config: Config) -> Result<(), ServeError> {
    log::info!("configuration: {}", config.summary());
    let loader: Arc<dyn ModelLoader> = Arc::new(WhisperLoader::new(
        config.model.loader_config()?,
        config.model.context_options(),
    ));
    serve_with(config, loader)
}

/// [`serve`] with another model loader (tests use a fake one).
///
/// # Errors
/// As [`serve`].
pub fn serve_with(config: Config, loader: Arc<dyn ModelLoader>) -> Result<(), ServeError> {
    let registry = Registry::new();
    let engine = Engine::start(engine_config(&config), loader, &registry)?;
    config.model.load_vad(&engine)?;
    let state = web::Data::new(AppState::new(&config, engine.clone(), registry)?);
    let live_state = state.clone();
    let address = config.listen;
    let http_error = |source| ServeError::Http { address, source };
    let system = actix_web::rt::System::new();
    let server = system.block_on(async {
        HttpServer::new(move || app(state.clone()))
            .workers(config.http_workers)
            // actix counts connections per worker.
            .max_connections(config.max_connections.div_ceil(config.http_workers))
            .client_request_timeout(config.header_timeout)
            .keep_alive(config.keep_alive)
            .h1_allow_half_closed(false)
            .shutdown_timeout(config.shutdown_timeout.as_secs())
            .shutdown_signal(async move {
                termination().await;
                // Live sessions get a close frame instead of waiting out the grace period.
                live_state.live.shut_down();
            })
            .bind(address)
            .map(HttpServer::run)
    });
    let server = server.map_err(http_error)?;
    log::info!("listening on {address}");

    let source = config.model.initial_source();
    let loading = engine.clone();
    let initial_load = std::thread::Builder::new()
        .name("stt-model-load".into())
        .spawn(move || {
            // Errors are logged by the engine and shown by /ready.
            let _ = loading.load(&source);
        })
        .map_err(http_error)?;

    system.block_on(server).map_err(http_error)?;
    // whisper.cpp cannot be interrupted while it loads; exiting meanwhile would
    // tear its globals down under the loading thread.
    if !initial_load.is_finished() {
        log::info!("HTTP server stopped; waiting for the model load in progress to finish");
    }
    if initial_load.join().is_err() {
        log::error!("the model load thread panicked");
    }
    log::info!("HTTP server stopped; stopping the workers");
    engine.shutdown();
    log::info!("stopped");
    Ok(())
}

/// Resolves at SIGTERM or SIGINT (both start a graceful shutdown).
async fn termination() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut terminate), Ok(mut interrupt)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        log::error!("cannot install signal handlers; stop the server with SIGKILL");
        return std::future::pending().await;
    };
    let name = tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    };
    log::info!("{name} received: no new connections; finishing requests in flight");
}
