//! A fixed set of threads for audio decoding, sized to the cores: at most that
//! many decodes run at once, and none of them occupies actix's blocking pool.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::error::ApiError;
use crate::engine::log_context;

type Task = Box<dyn FnOnce() + Send>;

/// The decoding threads; they stop when the pool is dropped.
pub struct DecodePool {
    tasks: Mutex<mpsc::Sender<Task>>,
}

impl DecodePool {
    /// Starts `threads` threads (at least one).
    ///
    /// # Errors
    /// When a thread cannot start.
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let threads = threads.max(1);
        let (sender, receiver) = mpsc::channel::<Task>();
        let receiver = Arc::new(Mutex::new(receiver));
        for n in 0..threads {
            let receiver = Arc::clone(&receiver);
            std::thread::Builder::new()
                .name(format!("stt-decode-{n}"))
                .spawn(move || loop {
                    let task = receiver.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    let Ok(task) = task else { return };
                    // A panic drops the task's answer channel: the caller gets a 500.
                    if catch_unwind(AssertUnwindSafe(task)).is_err() {
                        log::error!("a decoding task panicked");
                    }
                })?;
        }
        Ok(Self {
            tasks: Mutex::new(sender),
        })
    }

    /// Runs `f` on the pool with the current request id for its log lines.
    /// A task whose caller is gone before it starts is dropped unrun.
    ///
    /// # Errors
    /// 500 when the task panicked or the pool stopped.
    pub async fn run<R, F>(&self, f: F) -> Result<R, ApiError>
    where
        R: Send + 'static,
        F: FnOnce() -> R + Send + 'static,
    {
        let (answer, result) = oneshot::channel();
        let id = log_context::current();
        let task: Task = Box::new(move || {
            if answer.is_closed() {
                return;
            }
            let value = match id {
                Some(id) => log_context::with_thread(id, f),
                None => f(),
            };
            let _ = answer.send(value);
        });
        self.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(task)
            .map_err(|_| ApiError::internal("the decoding pool has stopped"))?;
        result
            .await
            .map_err(|_| ApiError::internal("a decoding task failed without an answer"))
    }
}
