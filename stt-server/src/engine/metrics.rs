//! The engine's Prometheus metrics: queue, workers, audio, model loads.

use prometheus::{
    Counter, CounterVec, Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry,
};

/// Metric handles, registered once per [`Registry`].
#[derive(Clone)]
pub(crate) struct EngineMetrics {
    pub queue_depth: IntGauge,
    pub workers_busy: IntGauge,
    pub admitted: IntGauge,
    pub reserved_bytes: IntGauge,
    pub audio_seconds: Counter,
    pub processing_seconds: Counter,
    pub real_time_factor: Histogram,
    pub queue_wait: Histogram,
    pub jobs: IntCounterVec,
    pub rejected: IntCounter,
    pub model_load_seconds: Gauge,
    pub model_switches: IntCounterVec,
    pub model_loaded: IntGaugeVec,
    pub ready: IntGauge,
    pub windows: IntCounterVec,
    pub stage_seconds: CounterVec,
    pub decoding_states: Histogram,
}

impl EngineMetrics {
    /// Creates and registers the metrics; `workers` and `memory_budget` are
    /// exported as constant gauges.
    pub fn register(
        registry: &Registry,
        workers: usize,
        memory_budget: u64,
    ) -> prometheus::Result<Self> {
        let workers_total = IntGauge::new("stt_workers", "Decoding workers (states per model)")?;
        workers_total.set(workers as i64);
        let budget = IntGauge::new(
            "stt_audio_memory_budget_bytes",
            "Bytes the admitted requests' uploads and decoded audio may hold together",
        )?;
        budget.set(i64::try_from(memory_budget).unwrap_or(i64::MAX));
        let metrics = Self {
            queue_depth: IntGauge::new("stt_queue_depth", "Requests waiting for a worker")?,
            workers_busy: IntGauge::new("stt_workers_busy", "Workers running a transcription")?,
            admitted: IntGauge::new(
                "stt_admitted_requests",
                "Transcription requests admitted: decoding, waiting or running",
            )?,
            reserved_bytes: IntGauge::new(
                "stt_audio_memory_reserved_bytes",
                "Bytes of the audio memory budget held by admitted requests",
            )?,
            audio_seconds: Counter::new(
                "stt_audio_seconds_total",
                "Seconds of audio transcribed successfully",
            )?,
            processing_seconds: Counter::new(
                "stt_processing_seconds_total",
                "Seconds workers spent transcribing",
            )?,
            real_time_factor: Histogram::with_opts(
                HistogramOpts::new(
                    "stt_real_time_factor",
                    "Processing time divided by audio duration, per transcription",
                )
                .buckets(vec![
                    0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0,
                ]),
            )?,
            queue_wait: Histogram::with_opts(
                HistogramOpts::new(
                    "stt_queue_wait_seconds",
                    "Time requests waited for a worker",
                )
                .buckets(vec![
                    0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                ]),
            )?,
            jobs: IntCounterVec::new(
                Opts::new("stt_jobs_total", "Transcription jobs by outcome"),
                &["outcome"],
            )?,
            rejected: IntCounter::new(
                "stt_queue_rejections_total",
                "Requests refused because every place or the audio memory budget was taken",
            )?,
            model_load_seconds: Gauge::new(
                "stt_model_load_seconds",
                "Time the serving model took to load, create its states and warm up",
            )?,
            model_switches: IntCounterVec::new(
                Opts::new(
                    "stt_model_switches_total",
                    "Model loads at run time by result",
                ),
                &["result"],
            )?,
            model_loaded: IntGaugeVec::new(
                Opts::new("stt_model_loaded", "1 for the model being served"),
                &["model"],
            )?,
            ready: IntGauge::new("stt_ready", "1 when a model is loaded and serving")?,
            windows: IntCounterVec::new(
                Opts::new(
                    "stt_windows_total",
                    "Pieces of audio (at most 30 s) decoded, by what became of them: \
                     kept, silence, duplicate (of the piece before), fallback (re-decoded \
                     at a higher temperature)",
                ),
                &["result"],
            )?,
            stage_seconds: CounterVec::new(
                Opts::new(
                    "stt_stage_seconds_total",
                    "Seconds spent per stage: vad, encoder (with the prompt pass), decoder",
                ),
                &["stage"],
            )?,
            decoding_states: Histogram::with_opts(
                HistogramOpts::new(
                    "stt_decoding_states",
                    "Decoding states (lanes) each transcription's pieces ran on: \
                     its worker's, spare ones and idle workers' lent ones",
                )
                .buckets(vec![1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 16.0]),
            )?,
        };
        registry.register(Box::new(workers_total))?;
        registry.register(Box::new(budget))?;
        registry.register(Box::new(metrics.queue_depth.clone()))?;
        registry.register(Box::new(metrics.workers_busy.clone()))?;
        registry.register(Box::new(metrics.admitted.clone()))?;
        registry.register(Box::new(metrics.reserved_bytes.clone()))?;
        registry.register(Box::new(metrics.audio_seconds.clone()))?;
        registry.register(Box::new(metrics.processing_seconds.clone()))?;
        registry.register(Box::new(metrics.real_time_factor.clone()))?;
        registry.register(Box::new(metrics.queue_wait.clone()))?;
        registry.register(Box::new(metrics.jobs.clone()))?;
        registry.register(Box::new(metrics.rejected.clone()))?;
        registry.register(Box::new(metrics.model_load_seconds.clone()))?;
        registry.register(Box::new(metrics.model_switches.clone()))?;
        registry.register(Box::new(metrics.model_loaded.clone()))?;
        registry.register(Box::new(metrics.ready.clone()))?;
        registry.register(Box::new(metrics.windows.clone()))?;
        registry.register(Box::new(metrics.stage_seconds.clone()))?;
        registry.register(Box::new(metrics.decoding_states.clone()))?;
        Ok(metrics)
    }
}
