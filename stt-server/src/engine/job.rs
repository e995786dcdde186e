//! Jobs and their tickets: what a caller submits, what it waits on, and what it
//! gets back. Dropping a [`Ticket`] before its answer cancels the job.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};
use whisper_safe::{CancelToken, Segment, Transcript};

use super::model::LoadedModel;
use super::options::TranscribeOptions;
use super::queue::{JobQueue, Reservation};

/// What a caller asks for.
pub struct JobSpec {
    /// The request id, for log lines.
    pub request_id: Arc<str>,
    /// 16 kHz mono samples.
    pub samples: Vec<f32>,
    /// Decoding choices.
    pub options: TranscribeOptions,
    /// The language code checked by [`LoadedModel::check`] (`None`: detect).
    pub language: Option<String>,
    /// Receives each segment as soon as it is decoded (streaming responses).
    pub segments: Option<mpsc::UnboundedSender<Segment>>,
}

/// A successful transcription.
#[derive(Debug)]
pub struct Outcome {
    /// The transcript.
    pub transcript: Transcript,
    /// The model that produced it.
    pub model: Arc<LoadedModel>,
}

/// Why a submitted job produced no transcript.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RunError {
    /// Cancelled (the client went away, or the request timed out).
    #[error("transcription cancelled")]
    Cancelled,
    /// whisper refused the audio.
    #[error("invalid audio: {0}")]
    InvalidAudio(String),
    /// whisper refused a parameter.
    #[error("invalid {param}: {message}")]
    InvalidParam {
        /// The request parameter.
        param: &'static str,
        /// Why.
        message: String,
    },
    /// A fault in the engine or in whisper.cpp (details are logged).
    #[error("transcription failed: {0}")]
    Failed(String),
}

impl From<whisper_safe::Error> for RunError {
    fn from(error: whisper_safe::Error) -> Self {
        use whisper_safe::Error as E;
        match error {
            E::Aborted => Self::Cancelled,
            E::InvalidAudio(message) => Self::InvalidAudio(message),
            E::InvalidParam { name, reason } => Self::InvalidParam {
                param: name,
                message: reason,
            },
            E::UnsupportedLanguage { code, reason } => Self::InvalidParam {
                param: "language",
                message: format!("{code:?}: {reason}"),
            },
            other => Self::Failed(other.to_string()),
        }
    }
}

/// A queued or running job, owned by the queue and then by a worker.
pub(crate) struct Job {
    pub id: u64,
    pub spec: JobSpec,
    pub model: Arc<LoadedModel>,
    pub cancel: CancelToken,
    pub reply: oneshot::Sender<Result<Outcome, RunError>>,
    pub enqueued: Instant,
    /// The admission place and memory share, released with the job.
    pub reservation: Reservation,
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
