//! `POST /v1/audio/transcriptions`, `POST /v1/audio/translations` and the
//! whisper.cpp-compatible `POST /inference`: one pipeline.
//!
//! headers checked → 503 at once when no model serves → the upload admitted
//! by count and bytes (503 at once beyond; no worker place yet) → form
//! streamed in at a pace (limits enforced; 408 for a body that stalls, crawls
//! or passes the body timeout) → fields parsed → model and options checked →
//! work admitted now that the audio is here: a place among workers and queue
//! and the decoded audio's worst case from the audio memory (429 at once when
//! the workers are busy) → audio decoded (decoding pool; the reservation
//! shrinks to the samples) → job queued under the reservation → answer
//! awaited (or streamed) → response rendered (blocking pool). The whole
//! request runs under the request timeout; dropping it (client gone,
//! timeout) cancels the job, and upload share and reservation are released
//! whichever way the request ends.

use std::sync::Arc;

use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use tokio::time::Instant;

use super::blocking;
use crate::config::samples_bytes;
use crate::engine::{self, JobSpec};
use crate::server::error::ApiError;
use crate::server::formats::{self, RenderOptions};
use crate::server::request::{self, Endpoint};
use crate::server::request_id::RequestId;
use crate::server::{form, not_ready, stream, AppState};

/// `POST /v1/audio/transcriptions`.
///
/// # Errors
/// See the module documentation and `docs/api.md`.
pub async fn transcriptions(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    handle(Endpoint::Transcriptions, request, payload, state).await
}

/// `POST /v1/audio/translations`.
///
/// # Errors
/// As [`transcriptions`].
pub async fn translations(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    handle(Endpoint::Translations, request, payload, state).await
}

/// `POST /inference` (whisper.cpp server fields).
///
/// # Errors
/// As [`transcriptions`].
pub async fn inference(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    handle(Endpoint::Inference, request, payload, state).await
}

async fn handle(
    endpoint: Endpoint,
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let limit = state.limits.request_timeout;
    let deadline = Instant::now() + limit;
    tokio::time::timeout_at(deadline, run(endpoint, request, payload, state, deadline))
        .await
        .unwrap_or_else(|_| Err(ApiError::timeout(limit)))
}

async fn run(
    endpoint: Endpoint,
    http: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    deadline: Instant,
) -> Result<HttpResponse, ApiError> {
    let limits = state.limits;
    form::check_headers(http.headers(), limits.max_upload_bytes)?;
    if state.engine.current().is_none() {
        return Err(not_ready(&state.engine));
    }
    // The body is admitted before it is read; it holds bytes, not a place.
    let mut upload = state.uploads.admit(form::declared_length(http.headers()))?;
    let form = form::read(
        http.headers(),
        payload,
        limits.max_upload_bytes,
        &mut upload,
    )
    .await?;
    let request = request::parse(endpoint, &form)?;
    let file = form
        .file
        .ok_or_else(|| ApiError::bad_param("file", "the form has no `file` part"))?;
    let model = state
        .engine
        .current()
        .ok_or_else(|| not_ready(&state.engine))?;
    if let Some(asked) = request.model.as_deref() {
        if !state.aliases.iter().any(|a| a == asked) && !model.answers_to(asked) {
            return Err(ApiError::model_not_found(format!(
                "model {asked:?} is not loaded; this server serves {} (also called {})",
                model.id(),
                state.aliases.join(", ")
            )));
        }
    }
    let language = model.check(&request.options)?;
    // The audio is here: its work is admitted now, or refused at once when the
    // workers are busy. The upload's bytes move into the reservation.
    let mut reservation = state
        .engine
        .reserve(file.bytes.len() as u64 + samples_bytes(limits.max_audio_seconds))?;
    drop(upload);
    // The reservation travels with the decode: a request dropped meanwhile
    // releases it only when the decode, and its memory, is gone.
    let (audio, reservation) = state
        .decoders
        .run(move || {
            let audio = engine::audio::decode(
                file.bytes,
                file.file_name.as_deref(),
                file.content_type.as_deref(),
                limits.max_audio_seconds,
            );
            if let Ok(audio) = &audio {
                reservation.shrink_to(std::mem::size_of_val(audio.samples.as_slice()) as u64);
            }
            (audio, reservation)
        })
        .await?;
    let audio = audio?;
    let audio_seconds = audio.samples.len() as f64 / f64::from(whisper_safe::SAMPLE_RATE);
    if request.options.offset.as_secs_f64() >= audio_seconds && !request.options.offset.is_zero() {
        return Err(ApiError::bad_param(
            "offset_t",
            format!(
                "the offset ({:.3} s) is not inside the audio ({audio_seconds:.3} s long)",
                request.options.offset.as_secs_f64()
            ),
        ));
    }
    let request_id = http
        .extensions()
        .get::<RequestId>()
        .map_or_else(|| Arc::from("-"), |id| Arc::clone(&id.0));
    let (sink, segments) = if request.stream {
        let (sink, segments) = tokio::sync::mpsc::unbounded_channel();
        (Some(sink), Some(segments))
    } else {
        (None, None)
    };
    let ticket = state.engine.submit(
        reservation,
        model,
        JobSpec {
            request_id: Arc::clone(&request_id),
            samples: audio.samples,
            options: request.options.clone(),
            language,
            segments: sink,
            progress: None,
        },
    )?;
    if let Some(segments) = segments {
        return Ok(stream::response(
            ticket,
            segments,
            deadline,
            limits.request_timeout,
            request_id,
        ));
    }
    let outcome = ticket.outcome().await?;
    let format = request.format;
    let body = blocking(move || {
        let language_name = outcome
            .transcript
            .language
            .as_deref()
            .and_then(|code| outcome.model.language_name(code));
        formats::render(
            &outcome.transcript,
            &RenderOptions {
                format,
                granularities: request.granularities,
                task: request.task(),
                language_name,
                logprobs: request.logprobs,
            },
        )
    })
    .await?;
    Ok(HttpResponse::Ok()
        .content_type(format.content_type())
        .body(body))
}
