//! The bounded job queue between callers and workers, admission to it, the
//! queued [`Job`] and the caller's [`Ticket`] on it (dropping a ticket before its
//! answer cancels the job).
//!
//! A caller takes a [`Reservation`] once its upload is complete; the
//! reservation is a place (at most `workers + limit` at once: decoding,
//! waiting or running) and a share of the memory budget (the file and the
//! worst case of its samples until its audio is decoded, then the size of the
//! samples). It moves into the job at [`JobQueue::push`] and is released when
//! the job is dropped: done, cancelled, removed from the queue, or never
//! submitted. Beyond either bound, [`JobQueue::reserve`] refuses at once.
//! Live sessions' steps ([`LiveStep`]) hold no reservation and wait ahead of
//! file work; urgent steps (an item's final text) ahead of partial ones. File
//! work that has waited [`FILE_PATIENCE`] goes before partial steps: sessions
//! cannot starve file requests, their partial steps thin out instead.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use prometheus::IntGauge;
use tokio::sync::oneshot;
use whisper_safe::CancelToken;

use super::job::{JobSpec, Outcome, RunError};
use super::model::LoadedModel;

/// How long file work waits behind live sessions' partial steps.
const FILE_PATIENCE: Duration = Duration::from_secs(1);

/// Why a reservation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Every place is taken.
    Full {
        /// Admitted requests not running (decoding or waiting).
        waiting: usize,
        /// Jobs running.
        running: usize,
    },
    /// The memory budget cannot hold another request's worst case.
    Memory {
        /// Admitted requests not running.
        waiting: usize,
        /// Jobs running.
        running: usize,
    },
    /// The engine is shutting down.
    Closed,
}

struct Inner {
    waiting: VecDeque<Job>,
    running: usize,
    /// Reservations alive.
    places: usize,
    /// Bytes the reservations hold.
    bytes: u64,
    closed: bool,
}

/// Admission and queue gauges.
pub(crate) struct QueueGauges {
    pub depth: IntGauge,
    pub busy: IntGauge,
    pub admitted: IntGauge,
    pub reserved_bytes: IntGauge,
}

pub(crate) struct JobQueue {
    inner: Mutex<Inner>,
    available: Condvar,
    workers: usize,
    places: usize,
    budget: u64,
    gauges: QueueGauges,
}

/// An admitted request's place and memory share; released when dropped.
pub struct Reservation {
    queue: Arc<JobQueue>,
    bytes: u64,
}

impl Reservation {
    /// Lowers the memory held to `bytes` (once the decoded size is known).
    pub fn shrink_to(&mut self, bytes: u64) {
        if bytes < self.bytes {
            let mut inner = self.queue.lock();
            inner.bytes -= self.bytes - bytes;
            self.bytes = bytes;
            self.queue.update_admission(&inner);
        }
    }
}

impl std::fmt::Debug for Reservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Reservation({} bytes)", self.bytes)
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut inner = self.queue.lock();
        inner.places -= 1;
        inner.bytes -= self.bytes;
        self.queue.update_admission(&inner);
    }
}

impl JobQueue {
    /// A queue admitting `workers + limit` requests holding at most `budget` bytes.
    pub fn new(workers: usize, limit: usize, budget: u64, gauges: QueueGauges) -> Self {
        Self {
            inner: Mutex::new(Inner {
                waiting: VecDeque::new(),
                running: 0,
                places: 0,
                bytes: 0,
                closed: false,
            }),
            available: Condvar::new(),
            workers,
            places: workers + limit,
            budget,
            gauges,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update_admission(&self, inner: &Inner) {
        self.gauges.admitted.set(inner.places as i64);
        self.gauges
            .reserved_bytes
            .set(i64::try_from(inner.bytes).unwrap_or(i64::MAX));
    }

    /// Admits a request that may hold up to `bytes`, or says why not.
    pub fn reserve(self: &Arc<Self>, bytes: u64) -> Result<Reservation, Refused> {
        let mut inner = self.lock();
        let waiting = inner.places.saturating_sub(inner.running);
        let running = inner.running;
        if inner.closed {
            return Err(Refused::Closed);
        }
        if inner.places >= self.places {
            return Err(Refused::Full { waiting, running });
        }
        if inner.bytes.saturating_add(bytes) > self.budget {
            return Err(Refused::Memory { waiting, running });
        }
        inner.places += 1;
        inner.bytes += bytes;
        self.update_admission(&inner);
        Ok(Reservation {
            queue: Arc::clone(self),
            bytes,
        })
    }

    /// Queues `job` (which holds its reservation), or drops it when closed.
    pub fn push(&self, job: Job) -> Result<(), Refused> {
        let mut inner = self.lock();
        if inner.closed {
            drop(inner);
            drop(job);
            return Err(Refused::Closed);
        }
        if let Some(step) = job.live {
            // Live steps go before file work, urgent ones before partial
            // ones, each kind in its own order.
            let at = inner
                .waiting
                .iter()
                .position(|queued| step.goes_before(queued.live))
                .unwrap_or(inner.waiting.len());
            inner.waiting.insert(at, job);
        } else {
            inner.waiting.push_back(job);
        }
        self.gauges.depth.set(inner.waiting.len() as i64);
        drop(inner);
        self.available.notify_one();
        Ok(())
    }

    /// The next job, counted as running, once a worker's turn is free (not
    /// lent, see [`lend_idle`](Self::lend_idle)); `None` once closed and drained.
    pub fn pop(&self) -> Option<Job> {
        let mut inner = self.lock();
        loop {
            if inner.running < self.workers {
                let at = next_job(
                    inner.waiting.iter().map(|job| (job.live, job.enqueued)),
                    Instant::now(),
                );
                if let Some(job) = inner.waiting.remove(at) {
                    inner.running += 1;
                    self.gauges.depth.set(inner.waiting.len() as i64);
                    self.gauges.busy.set(inner.running as i64);
                    return Some(job);
                }
            }
            if inner.closed && inner.waiting.is_empty() {
                return None;
            }
            inner = self
                .available
                .wait(inner)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Marks a job taken by [`pop`](Self::pop), or a turn taken by
    /// [`lend_idle`](Self::lend_idle), as done.
    pub fn finish(&self) {
        let mut inner = self.lock();
        inner.running = inner.running.saturating_sub(1);
        self.gauges.busy.set(inner.running as i64);
        drop(inner);
        self.available.notify_one();
    }

    /// Takes an idle worker's turn for a running job's extra decoding state,
    /// if a worker is idle and no job waits; counted as running until
    /// [`finish`](Self::finish).
    pub fn lend_idle(&self) -> bool {
        let mut inner = self.lock();
        if inner.closed || !inner.waiting.is_empty() || inner.running >= self.workers {
            return false;
        }
        inner.running += 1;
        self.gauges.busy.set(inner.running as i64);
        true
    }

    /// Whether a job waits for a worker.
    pub fn has_waiting(&self) -> bool {
        !self.lock().waiting.is_empty()
    }

    /// Removes a waiting job; whether it was still waiting.
    pub fn remove(&self, id: u64) -> bool {
        let mut inner = self.lock();
        let Some(position) = inner.waiting.iter().position(|job| job.id == id) else {
            return false;
        };
        let job = inner.waiting.remove(position);
        self.gauges.depth.set(inner.waiting.len() as i64);
        drop(inner);
        drop(job);
        true
    }

    /// (waiting, running) jobs.
    pub fn load(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.waiting.len(), inner.running)
    }

    /// (places, bytes) held by reservations.
    pub fn admitted(&self) -> (usize, u64) {
        let inner = self.lock();
        (inner.places, inner.bytes)
    }

    /// Refuses new jobs; workers drain what is waiting, then stop.
    pub fn close(&self) {
        self.lock().closed = true;
        self.available.notify_all();
    }
}

/// Which of the waiting jobs (each with its live step and when it was
/// queued, in queue order: urgent steps, partial steps, file work) runs next:
/// the first, unless it is a partial step and file work has waited
/// [`FILE_PATIENCE`].
fn next_job(waiting: impl Iterator<Item = (Option<LiveStep>, Instant)>, now: Instant) -> usize {
    for (at, (live, enqueued)) in waiting.enumerate() {
        match live {
            Some(step) if step.urgent => return at,
            Some(_) => {}
            None if now.saturating_duration_since(enqueued) >= FILE_PATIENCE => return at,
            None => return 0,
        }
    }
    0
}

/// A queued or running job, owned by the queue and then by a worker.
pub(crate) struct Job {
    pub id: u64,
    pub spec: JobSpec,
    pub model: Arc<LoadedModel>,
    pub cancel: CancelToken,
    pub reply: oneshot::Sender<Result<Outcome, RunError>>,
    pub enqueued: Instant,
    /// The admission place and memory share, released with the job (live
    /// steps have none: their sessions are admitted instead).
    pub reservation: Option<Reservation>,
    /// A step of a live session: queued before file work.
    pub live: Option<LiveStep>,
}

/// How a live session's step is scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveStep {
    /// A partial step not started by then is skipped (its result would be
    /// stale); `None` for a turn's final decode, which is never skipped.
    pub deadline: Option<Instant>,
    /// Whether its result may be an item's final text: it waits ahead of
    /// partial steps.
    pub urgent: bool,
}

impl LiveStep {
    /// Whether this step waits ahead of a queued job with `queued` (`None`
    /// for file work).
    fn goes_before(self, queued: Option<LiveStep>) -> bool {
        queued.is_none_or(|queued| self.urgent && !queued.urgent)
    }
}

/// The caller's handle on a submitted job.
///
/// Dropping it before the answer arrives cancels the job: a queued job leaves
/// the queue at once, a running one is aborted at the next graph computation.
pub struct Ticket {
    id: u64,
    cancel: CancelToken,
    queue: Arc<JobQueue>,
    answer: Option<oneshot::Receiver<Result<Outcome, RunError>>>,
}

impl Ticket {
    pub(crate) fn new(
        id: u64,
        cancel: CancelToken,
        queue: Arc<JobQueue>,
        answer: oneshot::Receiver<Result<Outcome, RunError>>,
    ) -> Self {
        Self {
            id,
            cancel,
            queue,
            answer: Some(answer),
        }
    }

    /// Waits for the answer.
    ///
    /// # Errors
    /// [`RunError`]; [`RunError::Failed`] if the engine stopped without answering.
    pub async fn outcome(mut self) -> Result<Outcome, RunError> {
        let answer = self.answer.as_mut().expect("answer taken once");
        let result = answer.await;
        self.answer = None;
        result.unwrap_or_else(|_| Err(RunError::Failed("the engine stopped".into())))
    }

    /// Waits for the answer, blocking this thread (not for async code).
    ///
    /// # Errors
    /// As [`Ticket::outcome`].
    pub fn wait(mut self) -> Result<Outcome, RunError> {
        let answer = self.answer.take().expect("answer taken once");
        answer
            .blocking_recv()
            .unwrap_or_else(|_| Err(RunError::Failed("the engine stopped".into())))
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.answer.is_some() {
            self.cancel.cancel();
            if self.queue.remove(self.id) {
                log::info!("job {} left the queue: its client is gone", self.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urgent_steps_wait_ahead_of_partial_steps_and_live_ahead_of_files() {
        let partial = LiveStep {
            deadline: Some(Instant::now()),
            urgent: false,
        };
        let urgent = LiveStep {
            deadline: None,
            urgent: true,
        };
        assert!(partial.goes_before(None) && urgent.goes_before(None));
        assert!(urgent.goes_before(Some(partial)));
        assert!(
            !urgent.goes_before(Some(urgent)),
            "urgent steps keep their order"
        );
        assert!(
            !partial.goes_before(Some(partial)),
            "partial steps keep their order"
        );
        assert!(!partial.goes_before(Some(urgent)));
    }

    #[test]
    fn file_work_that_waited_its_patience_goes_before_partial_steps_only() {
        let now = Instant::now();
        let partial = Some(LiveStep {
            deadline: None,
            urgent: false,
        });
        let urgent = Some(LiveStep {
            deadline: None,
            urgent: true,
        });
        let fresh = now;
        let patient = now - FILE_PATIENCE;
        let next = |waiting: &[(Option<LiveStep>, Instant)]| next_job(waiting.iter().copied(), now);
        assert_eq!(next(&[(partial, now), (partial, now), (None, fresh)]), 0);
        assert_eq!(next(&[(partial, now), (partial, now), (None, patient)]), 2);
        assert_eq!(next(&[(urgent, now), (partial, now), (None, patient)]), 0);
        assert_eq!(next(&[(None, patient), (None, fresh)]), 0);
        assert_eq!(next(&[]), 0);
    }
}
