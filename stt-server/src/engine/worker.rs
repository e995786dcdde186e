//! A worker thread: takes jobs from the queue and runs each on a decoder of the
//! job's model, lending its turn to a running job's pieces while idle. Nothing
//! a job does can end the thread.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

use whisper_safe::pieces::{Span, MAX_PIECE_SAMPLES};
use whisper_safe::Segment;

use super::job::{Outcome, RunError};
use super::log_context;
use super::longform::{self, Borrowed, Lender, LongForm, LongFormStats};
use super::model::LoadedModel;
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

/// Idle workers' turns and their models' decoding states, for one job.
struct IdleWorkers<'a> {
    shared: &'a Shared,
    model: &'a LoadedModel,
}

impl Lender for IdleWorkers<'_> {
    fn borrow(&self) -> Option<Borrowed<'_>> {
        if !self.shared.queue.lend_idle() {
            return None;
        }
        match self.model.take_decoder() {
            Ok(decoder) => Some(Borrowed::new(decoder, move |decoder| {
                if let Some(decoder) = decoder {
                    self.model.put_decoder(decoder);
                }
                self.shared.queue.finish();
            })),
            Err(error) => {
                log::warn!("no decoding state to lend: {error}");
                self.shared.queue.finish();
                None
            }
        }
    }

    fn spare(&self) -> Option<Borrowed<'_>> {
        match self.model.take_decoder() {
            Ok(decoder) => Some(Borrowed::new(decoder, move |decoder| {
                if let Some(decoder) = decoder {
                    self.model.put_decoder(decoder);
                }
            })),
            Err(error) => {
                log::warn!("no spare decoding state: {error}");
                None
            }
        }
    }

    fn wanted_back(&self) -> bool {
        self.shared.queue.has_waiting()
    }
}

fn execute(shared: &Shared, job: &Job) -> Result<Outcome, RunError> {
    let queued = job.enqueued.elapsed();
    shared.metrics.queue_wait.observe(queued.as_secs_f64());
    if job.cancel.is_cancelled() {
        return Err(RunError::Cancelled);
    }
    if let Some(deadline) = job.live.and_then(|step| step.deadline) {
        if Instant::now() > deadline {
            log::debug!("live step skipped: it waited {:.2} s", queued.as_secs_f64());
            return Err(RunError::Cancelled);
        }
    }
    let started = Instant::now();
    let model = &job.model;
    let samples = &job.spec.samples;
    let options = &job.spec.options;
    let region = region(samples.len(), options);
    let speech = detect_speech(shared, samples, region, options)?;
    let pieces = longform::plan(samples, region, speech.as_deref());
    let mut decoder = model.take_decoder().map_err(|e| {
        log::error!("cannot create a decoding state for {}: {e}", model.id());
        RunError::Failed(e.to_string())
    })?;
    let language = match &job.spec.language {
        Some(language) => Some(language.clone()),
        None if options.languages.len() > 1 => {
            let first = &samples[region.start..region.end.min(region.start + MAX_PIECE_SAMPLES)];
            let threads = shared.config.threads_per_worker as u32;
            match choose_language(decoder.as_mut(), model, first, &options.languages, threads) {
                Ok(code) => Some(code),
                Err(error) => {
                    model.put_decoder(decoder);
                    return Err(error);
                }
            }
        }
        None => None,
    };
    let params = options
        .params(
            language.as_deref(),
            shared.config.threads_per_worker as u32,
            shared.config.audio_context,
        )
        .offset(std::time::Duration::ZERO)
        .duration(None);
    let forward = |segment: &Segment| {
        if let Some(sink) = &job.spec.segments {
            // A closed sink means the client is gone; cancellation follows.
            let _ = sink.send(segment.clone());
        }
    };
    let progress = job.spec.progress.as_deref();
    let work = LongForm {
        audio: samples,
        pieces,
        params,
        guard: options.guard(),
        condition_on_previous_text: options.conditions_pieces(speech.is_some()),
        threads_per_piece: shared.config.threads_per_piece as u32,
        speech_only: speech.is_some(),
        cancel: &job.cancel,
        on_segment: job
            .spec
            .segments
            .is_some()
            .then_some(&forward as &(dyn Fn(&Segment) + Sync)),
        on_progress: progress.map(|p| p as &(dyn Fn(f32) + Sync)),
    };
    let lender = IdleWorkers { shared, model };
    let run = catch_unwind(AssertUnwindSafe(|| work.run(decoder.as_mut(), &lender)));
    let processing = started.elapsed();
    match run {
        Ok(Ok((mut transcript, stats))) => {
            model.put_decoder(decoder);
            if transcript.language.is_none() {
                transcript.language = language;
            }
            let audio = samples.len() as f64 / f64::from(whisper_safe::SAMPLE_RATE);
            shared.record_run(audio, processing);
            record_stats(shared, &stats);
            log::info!(
                "transcribed {audio:.2} s of audio with {} in {:.2} s (queued {:.2} s): {}",
                model.id(),
                processing.as_secs_f64(),
                queued.as_secs_f64(),
                describe(&stats, speech.is_some())
            );
            Ok(Outcome {
                transcript,
                model: Arc::clone(model),
            })
        }
        Ok(Err(error)) => {
            if longform::poisons(&error) {
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

/// The most probable of `candidates` (codes or names the model knows) in
/// `samples`, by whisper's language detection.
fn choose_language(
    decoder: &mut dyn super::Decoder,
    model: &LoadedModel,
    samples: &[f32],
    candidates: &[String],
    threads: u32,
) -> Result<String, RunError> {
    let allowed: Vec<&str> = candidates
        .iter()
        .filter_map(|c| model.language(c).map(|l| l.code.as_str()))
        .collect();
    let probabilities = decoder.detect_language(samples, threads)?;
    let best = probabilities
        .iter()
        .filter(|(language, _)| allowed.contains(&language.code.as_str()))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(language, p)| (language.code.clone(), *p));
    let (code, probability) = best.ok_or_else(|| RunError::InvalidParam {
        param: "languages",
        message: "none of the languages is known to this model".into(),
    })?;
    log::info!(
        "language {code} (p = {probability:.2}) chosen among {}",
        allowed.join(", ")
    );
    Ok(code)
}

/// The samples the options' offset and duration select.
fn region(n_samples: usize, options: &super::TranscribeOptions) -> Span {
    let start = options.offset.as_secs_f64();
    let end = options
        .duration
        .map_or(f64::INFINITY, |d| start + d.as_secs_f64());
    Span::from_seconds(start, end, n_samples)
}

/// The speech spans in `region` (relative to it), when the request wants
/// VAD: asked for, or by default for audio longer than one window.
fn detect_speech(
    shared: &Shared,
    samples: &[f32],
    region: Span,
    options: &super::TranscribeOptions,
) -> Result<Option<Vec<Span>>, RunError> {
    let mut detector = shared.speech.lock().unwrap_or_else(|e| e.into_inner());
    let long = region.len() > whisper_safe::pieces::MAX_PIECE_SAMPLES;
    let wanted = match options.vad_filter {
        Some(wanted) => wanted,
        None => {
            if long && detector.is_none() {
                log::warn!(
                    "{:.0} s of audio served without voice-activity detection: no VAD model is \
                     loaded, so silence is decoded (stt-server models pull silero-vad)",
                    region.len() as f64 / f64::from(whisper_safe::SAMPLE_RATE)
                );
            }
            detector.is_some() && long
        }
    };
    if !wanted {
        return Ok(None);
    }
    let Some(detector) = detector.as_mut() else {
        return Err(RunError::InvalidParam {
            param: "vad_filter",
            message: "no voice-activity model is loaded on this server \
                      (stt-server models pull silero-vad)"
                .into(),
        });
    };
    let started = Instant::now();
    let spans = detector
        .speech(&samples[region.start..region.end], &options.vad_tuning)
        .map_err(|e| {
            log::error!("voice-activity detection failed: {e}");
            RunError::Failed(e.to_string())
        })?;
    shared
        .metrics
        .stage_seconds
        .with_label_values(&["vad"])
        .inc_by(started.elapsed().as_secs_f64());
    Ok(Some(spans))
}

fn record_stats(shared: &Shared, stats: &LongFormStats) {
    let windows = &shared.metrics.windows;
    let kept = stats.pieces - stats.silent - stats.duplicates;
    windows.with_label_values(&["kept"]).inc_by(kept as u64);
    windows
        .with_label_values(&["silence"])
        .inc_by(stats.silent as u64);
    windows
        .with_label_values(&["duplicate"])
        .inc_by(stats.duplicates as u64);
    windows
        .with_label_values(&["fallback"])
        .inc_by(u64::from(stats.fallbacks));
    windows
        .with_label_values(&["remainder"])
        .inc_by(u64::from(stats.remainders));
    shared.metrics.decoding_states.observe(stats.states as f64);
    let stages = &shared.metrics.stage_seconds;
    stages
        .with_label_values(&["encoder"])
        .inc_by(stats.timings.encoder_seconds);
    stages
        .with_label_values(&["decoder"])
        .inc_by(stats.timings.decoder_seconds);
}

/// The request log line's account of the decoding.
fn describe(stats: &LongFormStats, vad: bool) -> String {
    format!(
        "{} piece(s) of {:.1} s{} on {} state(s), {} window(s), {} fallback(s), {} rest(s) decoded \
         again, {} silent, {} duplicate(s), {} looped segment(s) dropped; encoder {:.2} s, decoder {:.2} s",
        stats.pieces,
        stats.decoded_seconds,
        if vad { " of speech" } else { "" },
        stats.states,
        stats.timings.windows,
        stats.fallbacks,
        stats.remainders,
        stats.silent,
        stats.duplicates,
        stats.looped_segments,
        stats.timings.encoder_seconds,
        stats.timings.decoder_seconds
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_region_follows_offset_and_duration() {
        let options = super::super::TranscribeOptions {
            offset: std::time::Duration::from_secs(2),
            duration: Some(std::time::Duration::from_secs(3)),
            ..Default::default()
        };
        assert_eq!(
            region(160_000, &options),
            Span {
                start: 32_000,
                end: 80_000
            }
        );
        let whole = super::super::TranscribeOptions::default();
        assert_eq!(
            region(1_000, &whole),
            Span {
                start: 0,
                end: 1_000
            }
        );
    }
}
