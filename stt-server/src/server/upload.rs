//! Uploads while their bodies arrive.
//!
//! The [`UploadGate`] admits a body by count and by bytes before any of it is
//! read, and takes no worker place: work is admitted only once the body is
//! complete. The [`Upload`] it hands out holds the body's memory share (its
//! declared length; a chunked body's share grows as bytes arrive) and keeps the
//! body to a pace: some bytes at least every idle timeout, an average of at
//! least the floor once the first idle timeout has passed, the whole within
//! the body timeout. The pace counts bytes as they come off the connection
//! ([`Upload::observe`]), not as the form parser yields them. A body that
//! falls behind gets 408, and its share is free the moment the request ends.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix_web::web::Bytes;
use futures_util::{Stream, StreamExt};

use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use tokio::time::Instant;

use super::error::ApiError;

/// How uploads are admitted and how fast they must arrive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UploadLimits {
    /// Uploads being received at once.
    pub max_uploads: usize,
    /// Bytes they may hold together.
    pub memory_bytes: u64,
    /// Longest a body may send nothing.
    pub idle_timeout: Duration,
    /// Slowest average once the first idle timeout has passed (0: no floor).
    pub min_bytes_per_second: u64,
    /// Longest a whole body may take.
    pub body_timeout: Duration,
}

/// Why a body was ended before it was complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shed {
    /// Nothing arrived for the idle timeout.
    Stalled,
    /// The average fell below the floor.
    TooSlow,
    /// The body timeout passed.
    Timeout,
}

impl Shed {
    fn label(self) -> &'static str {
        match self {
            Self::Stalled => "stalled",
            Self::TooSlow => "too_slow",
            Self::Timeout => "timeout",
        }
    }
}

#[derive(Default)]
struct Held {
    uploads: usize,
    reserved: u64,
    received: u64,
}

struct UploadMetrics {
    in_flight: IntGauge,
    reserved: IntGauge,
    received: IntGauge,
    refused: IntCounterVec,
    shed: IntCounterVec,
}

impl UploadMetrics {
    fn register(registry: &Registry, budget: u64) -> prometheus::Result<Self> {
        let gauge = |name: &str, help: &str| -> prometheus::Result<IntGauge> {
            let gauge = IntGauge::new(name, help)?;
            registry.register(Box::new(gauge.clone()))?;
            Ok(gauge)
        };
        let counter = |name: &str, help: &str| -> prometheus::Result<IntCounterVec> {
            let counter = IntCounterVec::new(Opts::new(name, help), &["reason"])?;
            registry.register(Box::new(counter.clone()))?;
            Ok(counter)
        };
        gauge(
            "stt_upload_memory_budget_bytes",
            "Bytes the uploads being received may hold together",
        )?
        .set(i64::try_from(budget).unwrap_or(i64::MAX));
        Ok(Self {
            in_flight: gauge("stt_uploads_in_flight", "Uploads being received")?,
            reserved: gauge(
                "stt_upload_memory_reserved_bytes",
                "Bytes reserved by the uploads being received (their declared lengths)",
            )?,
            received: gauge(
                "stt_upload_bytes_held",
                "Bytes the uploads being received have sent so far",
            )?,
            refused: counter(
                "stt_uploads_refused_total",
                "Uploads refused before their bodies were read, by bound (count, memory)",
            )?,
            shed: counter(
                "stt_uploads_shed_total",
                "Bodies ended with 408 before they were complete (stalled, too_slow, timeout)",
            )?,
        })
    }

    fn update(&self, held: &Held) {
        let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.in_flight.set(held.uploads as i64);
        self.reserved.set(clamp(held.reserved));
        self.received.set(clamp(held.received));
    }
}

/// Admission of uploads by count and bytes.
pub struct UploadGate {
    held: Mutex<Held>,
    limits: UploadLimits,
    metrics: UploadMetrics,
}

impl UploadGate {
    /// A gate under `limits`, its metrics registered in `registry`.
    ///
    /// # Errors
    /// When the metrics are already registered.
    pub fn new(limits: UploadLimits, registry: &Registry) -> prometheus::Result<Arc<Self>> {
        Ok(Arc::new(Self {
            held: Mutex::new(Held::default()),
            metrics: UploadMetrics::register(registry, limits.memory_bytes)?,
            limits,
        }))
    }

    fn lock(&self) -> MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Uploads being received now.
    pub fn in_flight(&self) -> usize {
        self.lock().uploads
    }

    /// Admits a body of `declared` bytes (`None`: chunked, its share grows as it
    /// arrives), before any of it is read.
    ///
    /// # Errors
    /// 503 `too_many_uploads` or `upload_memory_full`.
    pub fn admit(self: &Arc<Self>, declared: Option<u64>) -> Result<Upload, ApiError> {
        let share = declared.unwrap_or(0);
        let mut held = self.lock();
        if held.uploads >= self.limits.max_uploads {
            self.metrics.refused.with_label_values(&["count"]).inc();
            return Err(refused(
                "too_many_uploads",
                format!(
                    "{} uploads are being received, the most this server takes at once",
                    held.uploads
                ),
            ));
        }
        if held.reserved.saturating_add(share) > self.limits.memory_bytes {
            self.metrics.refused.with_label_values(&["memory"]).inc();
            return Err(self.memory_full(&held));
        }
        held.uploads += 1;
        held.reserved += share;
        self.metrics.update(&held);
        Ok(Upload {
            gate: Arc::clone(self),
            reserved: share,
            received: 0,
            started: Instant::now(),
            arrivals: Arc::default(),
        })
    }

    fn memory_full(&self, held: &Held) -> ApiError {
        refused(
            "upload_memory_full",
            format!(
                "the {} uploads being received hold the upload memory ({} bytes)",
                held.uploads, self.limits.memory_bytes
            ),
        )
    }
}

/// 503 with a short retry: uploads end (or are shed) within seconds.
fn refused(code: &'static str, message: String) -> ApiError {
    ApiError {
        retry_after: Some(Duration::from_secs(1)),
        ..ApiError::unavailable(code, message)
    }
}

/// Bytes off the connection so far, and when the last came (since the start).
#[derive(Default)]
struct Arrivals {
    bytes: AtomicU64,
    last_nanos: AtomicU64,
}

/// An admitted body while it arrives; its share is released when dropped.
pub struct Upload {
    gate: Arc<UploadGate>,
    reserved: u64,
    received: u64,
    started: Instant,
    arrivals: Arc<Arrivals>,
}

impl Upload {
    /// `body`, its bytes counted toward the pace as they arrive.
    pub fn observe<E>(
        &self,
        body: impl Stream<Item = Result<Bytes, E>>,
    ) -> impl Stream<Item = Result<Bytes, E>> {
        let arrivals = Arc::clone(&self.arrivals);
        let started = self.started;
        body.inspect(move |chunk| {
            if let Ok(chunk) = chunk {
                let since = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
                arrivals
                    .bytes
                    .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                arrivals.last_nanos.store(since, Ordering::Relaxed);
            }
        })
    }

    /// Awaits `step` (the next part or chunk of the body) while the body keeps
    /// its pace.
    ///
    /// # Errors
    /// 408 `body_stalled`, `body_too_slow` or `body_timeout` once it falls behind.
    pub async fn paced<T>(&self, step: impl Future<Output = T>) -> Result<T, ApiError> {
        let mut step = std::pin::pin!(step);
        loop {
            let (deadline, why) = self.deadline();
            if deadline <= Instant::now() {
                return Err(self.shed(why));
            }
            // Bytes that arrive meanwhile move the deadline: look again then.
            if let Ok(value) = tokio::time::timeout_at(deadline, step.as_mut()).await {
                return Ok(value);
            }
        }
    }

    /// Counts `bytes` more of the body as held.
    ///
    /// # Errors
    /// 503 `upload_memory_full` when a chunked body outgrows the upload memory.
    pub fn received(&mut self, bytes: usize) -> Result<(), ApiError> {
        let bytes = bytes as u64;
        let gate = Arc::clone(&self.gate);
        let mut held = gate.lock();
        let grow = (self.received + bytes).saturating_sub(self.reserved);
        if grow > 0 {
            if held.reserved.saturating_add(grow) > gate.limits.memory_bytes {
                gate.metrics.refused.with_label_values(&["memory"]).inc();
                return Err(gate.memory_full(&held));
            }
            held.reserved += grow;
            self.reserved += grow;
        }
        held.received += bytes;
        self.received += bytes;
        gate.metrics.update(&held);
        Ok(())
    }

    /// The earliest moment the body falls behind, and which rule it breaks then.
    fn deadline(&self) -> (Instant, Shed) {
        let limits = &self.gate.limits;
        let arrived = self.arrivals.bytes.load(Ordering::Relaxed);
        let last =
            self.started + Duration::from_nanos(self.arrivals.last_nanos.load(Ordering::Relaxed));
        let mut deadline = (self.started + limits.body_timeout, Shed::Timeout);
        let mut consider = |at: Instant, why| {
            if at < deadline.0 {
                deadline = (at, why);
            }
        };
        consider(last + limits.idle_timeout, Shed::Stalled);
        if limits.min_bytes_per_second > 0 {
            // From the grace on, `arrived ≥ floor × (elapsed − grace)`.
            let allowed = arrived as f64 / limits.min_bytes_per_second as f64;
            consider(
                self.started + limits.idle_timeout + Duration::from_secs_f64(allowed.min(1e9)),
                Shed::TooSlow,
            );
        }
        deadline
    }

    fn shed(&self, why: Shed) -> ApiError {
        let limits = &self.gate.limits;
        self.gate
            .metrics
            .shed
            .with_label_values(&[why.label()])
            .inc();
        let (code, message) = match why {
            Shed::Stalled => (
                "body_stalled",
                format!(
                    "the request body sent nothing for {} s",
                    limits.idle_timeout.as_secs_f64()
                ),
            ),
            Shed::TooSlow => (
                "body_too_slow",
                format!(
                    "the request body arrived at under {} bytes per second ({} bytes in {:.1} s)",
                    limits.min_bytes_per_second,
                    self.arrivals.bytes.load(Ordering::Relaxed),
                    self.started.elapsed().as_secs_f64()
                ),
            ),
            Shed::Timeout => (
                "body_timeout",
                format!(
                    "the request body did not arrive within {} s",
                    limits.body_timeout.as_secs_f64()
                ),
            ),
        };
        ApiError::slow_body(code, message)
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        let mut held = self.gate.lock();
        held.uploads -= 1;
        held.reserved -= self.reserved;
        held.received -= self.received;
        self.gate.metrics.update(&held);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(limits: UploadLimits) -> Arc<UploadGate> {
        UploadGate::new(limits, &Registry::new()).expect("metrics")
    }

    fn limits() -> UploadLimits {
        UploadLimits {
            max_uploads: 2,
            memory_bytes: 1000,
            idle_timeout: Duration::from_secs(2),
            min_bytes_per_second: 100,
            body_timeout: Duration::from_secs(60),
        }
    }

    #[test]
    fn the_count_and_the_declared_bytes_bound_admission_and_come_back_on_drop() {
        let gate = gate(limits());
        let first = gate.admit(Some(600)).expect("first");
        let refused = gate.admit(Some(500)).err().expect("over the memory");
        assert_eq!(
            (refused.status.as_u16(), refused.code),
            (503, "upload_memory_full")
        );
        let second = gate.admit(Some(400)).expect("second fits");
        let refused = gate.admit(None).err().expect("over the count");
        assert_eq!(refused.code, "too_many_uploads");
        assert_eq!(refused.retry_after, Some(Duration::from_secs(1)));
        drop(first);
        drop(second);
        assert_eq!(gate.lock().reserved, 0);
        gate.admit(Some(1000)).expect("all free again");
    }

    #[test]
    fn a_chunked_body_grows_its_share_until_the_memory_is_full() {
        let gate = gate(limits());
        let _declared = gate.admit(Some(700)).expect("declared");
        let mut chunked = gate.admit(None).expect("chunked");
        chunked.received(200).expect("fits");
        assert_eq!(gate.lock().reserved, 900);
        let error = chunked.received(200).expect_err("over");
        assert_eq!(error.code, "upload_memory_full");
        let held = gate.lock();
        assert_eq!((held.reserved, held.received), (900, 200));
    }

    /// A body of `chunks` bytes, one every `every`, observed by `upload`.
    fn trickle(
        upload: &Upload,
        chunks: usize,
        every: Duration,
    ) -> impl Stream<Item = Result<Bytes, ()>> + Unpin {
        let body = futures_util::stream::unfold(0, move |sent| async move {
            (sent < chunks).then_some(())?;
            tokio::time::sleep(every).await;
            Some((Ok(Bytes::from_static(b"x")), sent + 1))
        });
        Box::pin(upload.observe(body))
    }

    /// Reads `body` to its end at `upload`'s pace.
    async fn drain(
        upload: &Upload,
        mut body: impl Stream<Item = Result<Bytes, ()>> + Unpin,
    ) -> Result<(), ApiError> {
        while upload.paced(body.next()).await?.is_some() {}
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_sends_nothing_is_shed_after_the_idle_timeout() {
        let gate = gate(limits());
        let upload = gate.admit(Some(10)).expect("admitted");
        let started = Instant::now();
        let error = upload
            .paced(std::future::pending::<()>())
            .await
            .expect_err("stalled");
        assert_eq!((error.status.as_u16(), error.code), (408, "body_stalled"));
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn bytes_count_as_they_arrive_even_when_no_part_is_complete() {
        // The parser yields nothing until the body ends; a byte every second
        // keeps the body from the idle timeout until the floor stops it.
        let gate = gate(UploadLimits {
            min_bytes_per_second: 0,
            ..limits()
        });
        let upload = gate.admit(None).expect("admitted");
        let body = trickle(&upload, 5, Duration::from_secs(1));
        let whole = body.fold(0, |n, _| async move { n + 1 });
        assert_eq!(upload.paced(whole).await.expect("steady"), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickle_passes_the_grace_and_is_shed_below_the_floor() {
        let gate = gate(limits());
        let upload = gate.admit(None).expect("admitted");
        let started = Instant::now();
        // One byte a second: never idle for 2 s, but far under 100 bytes/s.
        let body = trickle(&upload, 100, Duration::from_secs(1));
        let error = drain(&upload, body).await.expect_err("too slow");
        assert_eq!(error.code, "body_too_slow");
        // 2 s of grace, then 2 bytes allow 20 ms more.
        assert_eq!(started.elapsed(), Duration::from_millis(2020));
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_body_is_held_to_the_body_timeout() {
        let gate = gate(UploadLimits {
            body_timeout: Duration::from_secs(5),
            min_bytes_per_second: 1,
            ..limits()
        });
        let upload = gate.admit(None).expect("admitted");
        let body = trickle(&upload, 100, Duration::from_millis(500));
        let error = drain(&upload, body)
            .await
            .expect_err("past the body timeout");
        assert_eq!(error.code, "body_timeout");
    }
}
