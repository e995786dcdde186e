//! The transcription engine: one loaded model (replaceable at run time), a
//! fixed pool of worker threads, and a bounded queue between them.
//!
//! - Each worker runs one job at a time on a decoding state of the job's model;
//!   a model holds one state per worker, so `workers × threads_per_worker`
//!   bounds the CPU in use.
//! - A job is bound to the model that was serving when it was admitted: after
//!   a switch, jobs in flight finish on the old model, which is freed with its
//!   last job.
//! - Admission never waits: [`Engine::reserve`] takes a place and a share of
//!   the memory budget once the caller has the upload, or refuses at once
//!   with a retry estimate; [`Engine::submit`] queues the job under that
//!   reservation. Dropping the [`Ticket`] cancels the job.

pub mod audio;
mod job;
pub mod log_context;
mod longform;
mod metrics;
mod model;
mod options;
mod queue;
mod source;
mod whisper;
mod worker;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use whisper_safe::{AudioContext, CancelToken};

pub use job::{JobSpec, Outcome, RunError};
pub use model::{Decoder, LoadedModel, Model, ModelLoader, SpeechDetector};
pub use options::{InvalidOption, TranscribeOptions, VadTuning};
pub use queue::{LiveStep, Reservation, Ticket};
pub use source::{models_on_disk, spec_of_file_name, ModelSource, OPENAI_ALIAS};
pub use whisper::WhisperLoader;

use metrics::EngineMetrics;
use queue::{Job, JobQueue, QueueGauges, Refused};

/// The shape of the worker pool.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EngineConfig {
    /// Worker threads (and decoding states per model).
    pub workers: usize,
    /// Compute threads per run.
    pub threads_per_worker: usize,
    /// Compute threads per piece of a long recording (a worker decodes
    /// `threads_per_worker / threads_per_piece` pieces at once).
    pub threads_per_piece: usize,
    /// Jobs that may wait for a worker.
    pub queue_limit: usize,
    /// Encoder context policy.
    pub audio_context: AudioContext,
    /// Bytes the admitted requests' uploads and samples may hold together.
    pub memory_budget: u64,
}

/// Why a job was not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// Every worker is busy and the queue is full.
    #[error("all {workers} workers are busy and {waiting} requests are waiting; retry in {} s", retry_after.as_secs())]
    Busy {
        /// Workers.
        workers: usize,
        /// Admitted requests not running yet.
        waiting: usize,
        /// When a retry is likely to be admitted.
        retry_after: Duration,
    },
    /// The audio memory budget is held by requests in progress.
    #[error("the memory for audio is held by {waiting} requests in progress; retry in {} s", retry_after.as_secs())]
    MemoryFull {
        /// Admitted requests not running yet.
        waiting: usize,
        /// When a retry is likely to be admitted.
        retry_after: Duration,
    },
    /// The engine is shutting down.
    #[error("the server is shutting down")]
    ShuttingDown,
}

/// Why a model load failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelLoadError {
    /// Another load is running.
    #[error("model {loading} is being loaded; try again when it is done")]
    InProgress {
        /// The model being loaded.
        loading: String,
    },
    /// The load failed; the previous model (if any) keeps serving.
    #[error("loading model {id} failed: {reason}")]
    Failed {
        /// The model asked for.
        id: String,
        /// Why.
        reason: String,
    },
}

/// What the engine is doing, for `/ready` and `/v1/models`.
#[derive(Debug, Clone)]
pub struct Status {
    /// The model serving requests, if any.
    pub model: Option<Arc<LoadedModel>>,
    /// A model being loaded.
    pub loading: Option<String>,
    /// Which load failed last (cleared by a successful one); the cause is
    /// only logged, since it names files and library internals.
    pub last_error: Option<String>,
}

struct Phase {
    loading: Option<String>,
    last_error: Option<String>,
}

pub(crate) struct Shared {
    config: EngineConfig,
    loader: Arc<dyn ModelLoader>,
    queue: Arc<JobQueue>,
    current: RwLock<Option<Arc<LoadedModel>>>,
    phase: Mutex<Phase>,
    next_job: AtomicU64,
    /// Smoothed seconds per job, for Retry-After.
    job_seconds: Mutex<f64>,
    metrics: EngineMetrics,
    /// The voice-activity detector, once loaded (one run at a time).
    speech: Mutex<Option<Box<dyn SpeechDetector>>>,
    /// Its model file, for detectors of their own (live sessions).
    speech_path: Mutex<Option<std::path::PathBuf>>,
}

impl Shared {
    fn record_run(&self, audio_seconds: f64, processing: Duration) {
        let seconds = processing.as_secs_f64();
        self.metrics.audio_seconds.inc_by(audio_seconds);
        self.metrics.processing_seconds.inc_by(seconds);
        if audio_seconds > 0.0 {
            self.metrics
                .real_time_factor
                .observe(seconds / audio_seconds);
        }
        let mut average = self.job_seconds.lock().unwrap_or_else(|e| e.into_inner());
        *average = 0.8 * *average + 0.2 * seconds;
    }
}

/// The engine; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
    workers: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Engine {
    /// Starts the worker threads (no model yet: [`Engine::load`] one) and
    /// registers the metrics in `registry`.
    ///
    /// # Errors
    /// When the metrics are already registered, or a thread cannot start.
    pub fn start(
        config: EngineConfig,
        loader: Arc<dyn ModelLoader>,
        registry: &prometheus::Registry,
    ) -> Result<Self, EngineError> {
        let metrics = EngineMetrics::register(registry, config.workers, config.memory_budget)?;
        let queue = Arc::new(JobQueue::new(
            config.workers,
            config.queue_limit,
            config.memory_budget,
            QueueGauges {
                depth: metrics.queue_depth.clone(),
                busy: metrics.workers_busy.clone(),
                admitted: metrics.admitted.clone(),
                reserved_bytes: metrics.reserved_bytes.clone(),
            },
        ));
        let shared = Arc::new(Shared {
            config,
            loader,
            queue,
            current: RwLock::new(None),
            phase: Mutex::new(Phase {
                loading: None,
                last_error: None,
            }),
            next_job: AtomicU64::new(1),
            job_seconds: Mutex::new(1.0),
            metrics,
            speech: Mutex::new(None),
            speech_path: Mutex::new(None),
        });
        let mut handles = Vec::with_capacity(config.workers);
        for n in 0..config.workers {
            let shared = Arc::clone(&shared);
            let handle = std::thread::Builder::new()
                .name(format!("stt-worker-{n}"))
                .spawn(move || worker::run(shared))
                .map_err(EngineError::Thread)?;
            handles.push(handle);
        }
        Ok(Self {
            shared,
            workers: Arc::new(Mutex::new(handles)),
        })
    }

    /// The model serving requests now.
    pub fn current(&self) -> Option<Arc<LoadedModel>> {
        self.shared
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The serving model, the load in progress and the last load error.
    pub fn status(&self) -> Status {
        let phase = self.shared.phase.lock().unwrap_or_else(|e| e.into_inner());
        Status {
            model: self.current(),
            loading: phase.loading.clone(),
            last_error: phase.last_error.clone(),
        }
    }

    /// (waiting, running) jobs.
    pub fn load_now(&self) -> (usize, usize) {
        self.shared.queue.load()
    }

    /// (admitted requests, bytes they hold): decoding, waiting or running.
    pub fn admitted(&self) -> (usize, u64) {
        self.shared.queue.admitted()
    }

    /// Admits a request whose file and samples may take up to `bytes`, once
    /// its upload is complete. Never waits. The reservation is released
    /// when dropped, or with the job it is submitted with.
    ///
    /// # Errors
    /// [`SubmitError::Busy`] or [`SubmitError::MemoryFull`] with a retry
    /// estimate; [`SubmitError::ShuttingDown`].
    pub fn reserve(&self, bytes: u64) -> Result<Reservation, SubmitError> {
        let shared = &self.shared;
        shared.queue.reserve(bytes).map_err(|refused| {
            let (waiting, running) = match refused {
                Refused::Closed => return SubmitError::ShuttingDown,
                Refused::Full { waiting, running } | Refused::Memory { waiting, running } => {
                    (waiting, running)
                }
            };
            shared.metrics.rejected.inc();
            let per_job = *shared.job_seconds.lock().unwrap_or_else(|e| e.into_inner());
            let workers = shared.config.workers.max(1);
            let estimate = per_job * (waiting + running) as f64 / workers as f64;
            let retry_after = Duration::from_secs(estimate.ceil().clamp(1.0, 60.0) as u64);
            match refused {
                Refused::Memory { .. } => SubmitError::MemoryFull {
                    waiting,
                    retry_after,
                },
                _ => SubmitError::Busy {
                    workers,
                    waiting,
                    retry_after,
                },
            }
        })
    }

    /// Loads the voice-activity detector model at `path`; long audio is then
    /// cut at speech by default (see [`TranscribeOptions::vad_filter`]).
    ///
    /// # Errors
    /// The loader's error, naming the file.
    pub fn load_speech_detector(&self, path: &std::path::Path) -> whisper_safe::Result<()> {
        let detector = self.shared.loader.load_speech_detector(path)?;
        *self.shared.speech.lock().unwrap_or_else(|e| e.into_inner()) = Some(detector);
        *self
            .shared
            .speech_path
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(path.to_owned());
        log::info!("voice-activity detection with {}", path.display());
        Ok(())
    }

    /// The voice-activity detector's model file, once loaded: live sessions
    /// open a detector of their own on it.
    pub fn speech_model_path(&self) -> Option<std::path::PathBuf> {
        self.shared
            .speech_path
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether a voice-activity detector is loaded.
    pub fn has_speech_detector(&self) -> bool {
        self.shared
            .speech
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Loads `source` beside the serving model (libraries, model, one state per
    /// worker, warm-up), then makes it the serving model. Blocks until done.
    /// On failure the serving model stays.
    ///
    /// # Errors
    /// [`ModelLoadError::InProgress`] when another load runs; [`ModelLoadError::Failed`].
    pub fn load(&self, source: &ModelSource) -> Result<Arc<LoadedModel>, ModelLoadError> {
        let shared = &self.shared;
        {
            let mut phase = shared.phase.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(loading) = &phase.loading {
                return Err(ModelLoadError::InProgress {
                    loading: loading.clone(),
                });
            }
            phase.loading = Some(source.id.clone());
        }
        let is_switch = self.current().is_some();
        log::info!("loading model {} from {}", source.id, source.path.display());
        let loaded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            LoadedModel::load(
                shared.loader.as_ref(),
                source,
                shared.config.workers,
                shared.config.threads_per_worker as u32,
            )
            .map_err(|e| e.to_string())
        }))
        .unwrap_or_else(|_| Err("the model loader panicked".into()));
        let mut phase = shared.phase.lock().unwrap_or_else(|e| e.into_inner());
        phase.loading = None;
        let result_label = if loaded.is_ok() { "ok" } else { "failed" };
        if is_switch {
            shared
                .metrics
                .model_switches
                .with_label_values(&[result_label])
                .inc();
        }
        match loaded {
            Ok(model) => {
                let model = Arc::new(model);
                let previous = shared
                    .current
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .replace(Arc::clone(&model));
                phase.last_error = None;
                drop(phase);
                if let Some(previous) = previous {
                    let _ = shared
                        .metrics
                        .model_loaded
                        .remove_label_values(&[previous.id()]);
                    log::info!(
                        "model {} replaced {}; requests in flight finish on the old one",
                        model.id(),
                        previous.id()
                    );
                }
                shared
                    .metrics
                    .model_loaded
                    .with_label_values(&[model.id()])
                    .set(1);
                shared
                    .metrics
                    .model_load_seconds
                    .set(model.load_time().as_secs_f64());
                shared.metrics.ready.set(1);
                log::info!(
                    "serving model {} (loaded in {:.2} s)",
                    model.id(),
                    model.load_time().as_secs_f64()
                );
                Ok(model)
            }
            Err(reason) => {
                log::error!("loading model {} failed: {reason}", source.id);
                phase.last_error = Some(format!(
                    "loading model {} failed; the cause is in the server log",
                    source.id
                ));
                Err(ModelLoadError::Failed {
                    id: source.id.clone(),
                    reason,
                })
            }
        }
    }

    /// Queues a job on `model` (normally [`Engine::current`], checked by the
    /// caller) under `reservation`. Never waits.
    ///
    /// # Errors
    /// [`SubmitError::ShuttingDown`].
    pub fn submit(
        &self,
        reservation: Reservation,
        model: Arc<LoadedModel>,
        spec: JobSpec,
    ) -> Result<Ticket, SubmitError> {
        self.queue_job(Some(reservation), None, model, spec)
    }

    /// Queues a live session's step on `model`, ahead of file work and
    /// without a reservation (the session was admitted). Never waits.
    ///
    /// # Errors
    /// [`SubmitError::ShuttingDown`].
    pub fn submit_live(
        &self,
        step: LiveStep,
        model: Arc<LoadedModel>,
        spec: JobSpec,
    ) -> Result<Ticket, SubmitError> {
        self.queue_job(None, Some(step), model, spec)
    }

    fn queue_job(
        &self,
        reservation: Option<Reservation>,
        live: Option<LiveStep>,
        model: Arc<LoadedModel>,
        spec: JobSpec,
    ) -> Result<Ticket, SubmitError> {
        let shared = &self.shared;
        let id = shared.next_job.fetch_add(1, Ordering::Relaxed);
        let cancel = CancelToken::new();
        let (reply, answer) = oneshot::channel();
        let job = Job {
            id,
            spec,
            model,
            cancel: cancel.clone(),
            reply,
            enqueued: Instant::now(),
            reservation,
            live,
        };
        shared
            .queue
            .push(job)
            .map_err(|_| SubmitError::ShuttingDown)?;
        Ok(Ticket::new(id, cancel, Arc::clone(&shared.queue), answer))
    }

    /// Refuses new jobs, lets the workers finish what is queued, and joins them.
    pub fn shutdown(&self) {
        self.shared.queue.close();
        let handles: Vec<_> = self
            .workers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        for handle in handles {
            if handle.join().is_err() {
                log::error!("a worker thread panicked");
            }
        }
        self.shared.metrics.ready.set(0);
    }
}

/// The engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The metrics could not be registered.
    #[error("cannot register the engine metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// A worker thread could not start.
    #[error("cannot start a worker thread: {0}")]
    Thread(std::io::Error),
}
