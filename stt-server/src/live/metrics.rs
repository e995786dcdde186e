//! The metrics of live sessions.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// Live-session metric handles (cheap to clone).
#[derive(Clone)]
pub struct LiveMetrics {
    /// Open sessions.
    pub sessions: IntGauge,
    /// Upgrades refused, by reason.
    pub refused: IntCounterVec,
    /// Seconds from the audio time of a word to the delta that first holds it.
    pub partial_latency: Histogram,
    /// Seconds from the end of a turn's speech to its `completed` event.
    pub final_latency: Histogram,
    /// Seconds of audio received.
    pub audio_seconds: prometheus::Counter,
    /// Turns cut because they grew too long.
    pub forced_cuts: IntCounter,
    /// Partial events a slow reader did not get.
    pub dropped_deltas: IntCounter,
}

impl LiveMetrics {
    /// Registers the live metrics in `registry`.
    ///
    /// # Errors
    /// When they are already registered.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let buckets = vec![0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0];
        let histogram = |name: &str, help: &str| {
            Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.clone()))
        };
        let metrics = Self {
            sessions: IntGauge::new("stt_live_sessions", "Open live transcription sessions")?,
            refused: IntCounterVec::new(
                Opts::new(
                    "stt_live_sessions_refused_total",
                    "Live session upgrades refused, by reason",
                ),
                &["reason"],
            )?,
            partial_latency: histogram(
                "stt_live_partial_latency_seconds",
                "From the end of a word's segment (audio time) to the delta that first holds it",
            )?,
            final_latency: histogram(
                "stt_live_final_latency_seconds",
                "From the end of a turn's speech (audio time) to its completed event",
            )?,
            audio_seconds: prometheus::Counter::new(
                "stt_live_audio_seconds_total",
                "Seconds of audio streamed into live sessions",
            )?,
            forced_cuts: IntCounter::new(
                "stt_live_forced_cuts_total",
                "Turns cut into two items because they grew past 25-30 s",
            )?,
            dropped_deltas: IntCounter::new(
                "stt_live_dropped_deltas_total",
                "Delta events not sent because the client read too slowly",
            )?,
        };
        registry.register(Box::new(metrics.sessions.clone()))?;
        registry.register(Box::new(metrics.refused.clone()))?;
        registry.register(Box::new(metrics.partial_latency.clone()))?;
        registry.register(Box::new(metrics.final_latency.clone()))?;
        registry.register(Box::new(metrics.audio_seconds.clone()))?;
        registry.register(Box::new(metrics.forced_cuts.clone()))?;
        registry.register(Box::new(metrics.dropped_deltas.clone()))?;
        Ok(metrics)
    }
}
