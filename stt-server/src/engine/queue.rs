//! The bounded job queue between callers and workers.
//!
//! At most `workers + limit` jobs are admitted at once (running plus waiting);
//! beyond that [`JobQueue::push`] refuses at once. Waiting jobs whose caller went
//! away are removed by [`JobQueue::remove`].

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};

use prometheus::IntGauge;

use super::job::Job;

/// Why a job was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Every worker is busy and the queue is full.
    Full {
        /// Jobs waiting.
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
    closed: bool,
}

pub(crate) struct JobQueue {
    inner: Mutex<Inner>,
    available: Condvar,
    workers: usize,
    limit: usize,
    depth: IntGauge,
    busy: IntGauge,
}

impl JobQueue {
    pub fn new(workers: usize, limit: usize, depth: IntGauge, busy: IntGauge) -> Self {
        Self {
            inner: Mutex::new(Inner {
                waiting: VecDeque::new(),
                running: 0,
                closed: false,
            }),
            available: Condvar::new(),
            workers,
            limit,
            depth,
            busy,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn refusal(&self, inner: &Inner) -> Result<(), Refused> {
        if inner.closed {
            return Err(Refused::Closed);
        }
        if inner.waiting.len() + inner.running >= self.workers + self.limit {
            return Err(Refused::Full {
                waiting: inner.waiting.len(),
                running: inner.running,
            });
        }
        Ok(())
    }

    /// Whether a job would be admitted now.
    pub fn admissible(&self) -> Result<(), Refused> {
        self.refusal(&self.lock())
    }

    /// Admits `job`, or drops it and says why.
    pub fn push(&self, job: Job) -> Result<(), Refused> {
        let mut inner = self.lock();
        self.refusal(&inner)?;
        inner.waiting.push_back(job);
        self.depth.set(inner.waiting.len() as i64);
        drop(inner);
        self.available.notify_one();
        Ok(())
    }

    /// The next job, counted as running; `None` once closed and drained.
    pub fn pop(&self) -> Option<Job> {
        let mut inner = self.lock();
        loop {
            if let Some(job) = inner.waiting.pop_front() {
                inner.running += 1;
                self.depth.set(inner.waiting.len() as i64);
                self.busy.set(inner.running as i64);
                return Some(job);
            }
            if inner.closed {
                return None;
            }
            inner = self
                .available
                .wait(inner)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Marks a job taken by [`pop`](Self::pop) as done.
    pub fn finish(&self) {
        let mut inner = self.lock();
        inner.running = inner.running.saturating_sub(1);
        self.busy.set(inner.running as i64);
    }

    /// Removes a waiting job; whether it was still waiting.
    pub fn remove(&self, id: u64) -> bool {
        let mut inner = self.lock();
        let Some(position) = inner.waiting.iter().position(|job| job.id == id) else {
            return false;
        };
        let job = inner.waiting.remove(position);
        self.depth.set(inner.waiting.len() as i64);
        drop(inner);
        drop(job);
        true
    }

    /// (waiting, running) jobs.
    pub fn load(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.waiting.len(), inner.running)
    }

    /// Refuses new jobs; workers drain what is waiting, then stop.
    pub fn close(&self) {
        self.lock().closed = true;
        self.available.notify_all();
    }
}
