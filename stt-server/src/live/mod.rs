//! Live transcription: OpenAI's Realtime transcription sessions over a
//! WebSocket at `GET /v1/realtime?intent=transcription`.
//!
//! - [`protocol`]: the events and the session configuration (serde);
//! - [`input`]: appended audio to 16 kHz samples;
//! - [`session`]: one session's logic without I/O (buffer, turns, partial and
//!   final decodes, agreement of partial results);
//! - [`connection`]: the WebSocket loop that feeds a session, runs its
//!   decodes on the engine as live steps and sends its events;
//! - [`secrets`]: short-lived client secrets for browsers.
//!
//! Admission: at most `STT_LIVE_MAX_SESSIONS` sessions; more get 429 at the
//! upgrade. A session holds no place in the file queue; its decodes wait
//! ahead of file work, a partial step that waited too long is skipped.

pub mod connection;
pub mod input;
mod metrics;
pub mod page;
pub mod protocol;
pub mod secrets;
pub mod session;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

pub use metrics::LiveMetrics;
use secrets::ClientSecrets;

/// Live-session settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LiveLimits {
    /// Sessions at once.
    pub max_sessions: usize,
    /// A session that sends nothing for this long is closed.
    pub idle_timeout: Duration,
    /// Most audio a session's input buffer holds before a commit.
    pub max_buffer_seconds: f64,
}

/// What live sessions share.
pub struct LiveState {
    /// Settings.
    pub limits: LiveLimits,
    /// Metric handles.
    pub metrics: LiveMetrics,
    /// Minted client secrets.
    pub secrets: ClientSecrets,
    open: Arc<AtomicUsize>,
    shutdown: watch::Sender<bool>,
}

impl std::fmt::Debug for LiveState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LiveState({} open)", self.open.load(Ordering::Relaxed))
    }
}

/// A session's admission; frees its place when dropped.
pub struct SessionSlot {
    open: Arc<AtomicUsize>,
    gauge: prometheus::IntGauge,
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
        self.gauge.dec();
    }
}

impl LiveState {
    /// Live state under `limits`, with metrics in `registry`.
    ///
    /// # Errors
    /// When the metrics are already registered.
    pub fn new(
        limits: LiveLimits,
        registry: &prometheus::Registry,
    ) -> Result<Self, prometheus::Error> {
        Ok(Self {
            limits,
            metrics: LiveMetrics::register(registry)?,
            secrets: ClientSecrets::default(),
            open: Arc::new(AtomicUsize::new(0)),
            shutdown: watch::channel(false).0,
        })
    }

    /// Takes a session place, or `None` when all are taken.
    pub fn admit(&self) -> Option<SessionSlot> {
        let taken = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < self.limits.max_sessions).then_some(open + 1)
            });
        match taken {
            Ok(_) => {
                self.metrics.sessions.inc();
                Some(SessionSlot {
                    open: Arc::clone(&self.open),
                    gauge: self.metrics.sessions.clone(),
                })
            }
            Err(_) => {
                self.metrics.refused.with_label_values(&["full"]).inc();
                None
            }
        }
    }

    /// Tells every session to close (server shutdown).
    pub fn shut_down(&self) {
        self.shutdown.send_replace(true);
    }

    /// Resolves when the server shuts down.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }
}
