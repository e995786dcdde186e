//! A worker thread: takes jobs from the queue and runs each on a decoder of the
//! job's model. Nothing a job does can end the thread.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

use whisper_safe::{RunOptions, Segment};

use super::job::{Outcome, RunError};
use super::log_context;
use super::queue::Job;
use super::Shared;

/// Runs jobs until the queue is closed and drained.
pub(crate) fn run(shared: Arc<Shared>) {
    while let Some(job) = shared.queue.pop() {
        let request_id = Arc::clone(&job.spec.request_id);
        let result = log_context::with_thread(request_id, || execute(&shared, &job));
        let outcome = match &result {
            Ok(_) => "ok",
            Err(RunError::Cancelled) => "cancelled",
            Err(RunError::InvalidAudio(_) | RunError::InvalidParam { .. }) => "rejected",
            Err(RunError::Failed(_)) => "failed",
        };
        shared.metrics.jobs.with_label_values(&[outcome]).inc();
        // Free the samples, the worker and the admission place before
        // answering, so a client that sees its answer also sees them free.
        let Job {
            reply,
            reservation,
            spec,
            ..
        } = job;
        drop(spec);
        shared.queue.finish();
        drop(reservation);
        let _ = reply.send(result);
    }
}

fn execute(shared: &Shared, job: &Job) -> Result<Outcome, RunError> {
    let queued = job.enqueued.elapsed();
    shared.metrics.queue_wait.observe(queued.as_secs_f64());
    if job.cancel.is_cancelled() {
        return Err(RunError::Cancelled);
    }
    let model = &job.model;
    let mut decoder = model.take_decoder().map_err(|e| {
        log::error!("cannot create a decoding state for {}: {e}", model.id());
        RunError::Failed(e.to_string())
    })?;
    let params = job.spec.options.params(
        job.spec.language.as_deref(),
        shared.config.threads_per_worker as u32,
        shared.config.audio_context,
    );
    let mut forward = |segment: &Segment| {
        if let Some(sink) = &job.spec.segments {
            // A closed sink means the client is gone; cancellation follows.
            let _ = sink.send(segment.clone());
        }
    };
    let options = RunOptions {
        cancel: Some(&job.cancel),
        on_progress: None,
        on_segment: job
            .spec
            .segments
            .is_some()
            .then_some(&mut forward as &mut dyn FnMut(&Segment)),
    };
    let started = Instant::now();
    let run = catch_unwind(AssertUnwindSafe(|| {
        decoder.run(&params, &job.spec.samples, options)
    }));
    let processing = started.elapsed();
    match run {
        Ok(Ok(transcript)) => {
            model.put_decoder(decoder);
            let audio = job.spec.samples.len() as f64 / f64::from(whisper_safe::SAMPLE_RATE);
            shared.record_run(audio, processing);
            log::info!(
                "transcribed {audio:.2} s of audio with {} in {:.2} s (queued {:.2} s)",
                model.id(),
                processing.as_secs_f64(),
                queued.as_secs_f64()
            );
            Ok(Outcome {
                transcript,
                model: Arc::clone(model),
            })
        }
        Ok(Err(error)) => {
            let poisoned = matches!(
                error,
                whisper_safe::Error::Poisoned | whisper_safe::Error::Transcription { code: -7, .. }
            );
            if poisoned {
                log::error!("decoding state of {} lost: {error}", model.id());
            } else {
                model.put_decoder(decoder);
            }
            let error = RunError::from(error);
            match &error {
                RunError::Failed(reason) => log::error!("transcription failed: {reason}"),
                RunError::Cancelled => log::info!(
                    "transcription cancelled after {:.2} s",
                    processing.as_secs_f64()
                ),
                other => log::info!("transcription refused: {other}"),
            }
            Err(error)
        }
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic".into());
            log::error!("transcription panicked: {message}; its decoding state is dropped");
            Err(RunError::Failed(format!("panic: {message}")))
        }
    }
}
