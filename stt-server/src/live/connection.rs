//! The Realtime endpoints: `GET /v1/realtime` (the WebSocket upgrade and the
//! session loop) and `POST /v1/realtime/client_secrets`.
//!
//! The loop feeds client events to a [`Session`], runs the decodes it asks
//! for on the engine as live steps (one at a time per session, so the step
//! grows with load), and sends its events through a bounded queue: a client
//! that reads too slowly misses deltas, never a `completed`; one that reads
//! nothing for 10 s is closed. Dropping the loop (client gone)
//! cancels the decode in flight.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason};
use futures_util::StreamExt as _;
use tokio::sync::mpsc;
use whisper_safe::live::{SpeechProbabilities, StreamingVad};
use whisper_safe::vad::{Vad, VadOptions};

use super::protocol::{
    parse_client_event, AudioFormat, ClientEvent, ProtocolError, ServerEvent, ServerVad,
    SessionConfig,
};
use super::secrets::{DEFAULT_TTL, TTL_SECONDS};
use super::session::{DecodeKind, DecodeRequest, Decoded, Session, SessionLimits};
use super::SessionSlot;
use crate::engine::{
    JobSpec, LiveStep, LoadedModel, Outcome, RunError, TranscribeOptions, OPENAI_ALIAS,
};
use crate::server::error::ApiError;
use crate::server::{not_ready, AppState};

/// Largest text frame read: a 15 MiB append in base64 with its JSON around it.
const MAX_FRAME_BYTES: usize = 21 * 1024 * 1024;
/// How long a `completed` or `error` event may wait for a client that does not read.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Events queued for the client.
const SEND_QUEUE: usize = 64;
/// A partial step not started within this time is skipped.
const PARTIAL_DEADLINE: Duration = Duration::from_millis(1500);
/// The subprotocol that carries an API key from a browser.
const KEY_PROTOCOL: &str = "openai-insecure-api-key.";

type Decoding = Pin<Box<dyn Future<Output = Result<Outcome, RunError>>>>;

/// The default configuration of a new session.
fn default_config(vad_available: bool) -> SessionConfig {
    SessionConfig {
        format: AudioFormat::Pcm16 { rate: 24_000 },
        model: OPENAI_ALIAS.into(),
        language: None,
        prompt: String::new(),
        keywords: Vec::new(),
        turn_detection: vad_available.then(ServerVad::default),
        noise_reduction: serde_json::Value::Null,
        logprobs: false,
    }
}

/// The subprotocols a client offered.
fn offered_protocols(request: &HttpRequest) -> Vec<String> {
    request
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Checks the credential of an upgrade: an API key or a client secret, in
/// `Authorization: Bearer` or in the `openai-insecure-api-key.<key>`
/// subprotocol. Returns the configuration a client secret carries.
fn authenticate(
    request: &HttpRequest,
    state: &AppState,
    protocols: &[String],
) -> Result<Option<SessionConfig>, ApiError> {
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|v| v.trim().to_owned());
    let from_protocol = protocols
        .iter()
        .find_map(|p| p.strip_prefix(KEY_PROTOCOL))
        .map(str::to_owned);
    let token = bearer.or(from_protocol);
    if let Some(config) = token
        .as_deref()
        .filter(|t| t.starts_with("ek_"))
        .and_then(|t| state.live.secrets.session_of(t))
    {
        return Ok(Some(config));
    }
    let header = token.map(|t| format!("Bearer {t}"));
    state
        .api_keys
        .check(header.as_deref().map(str::as_bytes))
        .map(|_| None)
}

/// `GET /v1/realtime?intent=transcription`: upgrades to a transcription session.
///
/// # Errors
/// 400 for another intent or a request that is not a WebSocket upgrade, 401
/// without a valid credential, 503 while no model serves, 429 when
/// `STT_LIVE_MAX_SESSIONS` sessions are open.
pub async fn realtime(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query =
        web::Query::<std::collections::HashMap<String, String>>::from_query(request.query_string())
            .map_err(|e| ApiError::bad_request(format!("invalid query: {e}")))?;
    if let Some(intent) = query.get("intent").filter(|i| *i != "transcription") {
        return Err(ApiError::bad_param(
            "intent",
            format!("{intent:?} is not supported: this server runs transcription sessions (intent=transcription)"),
        ));
    }
    let protocols = offered_protocols(&request);
    let secret_config = authenticate(&request, &state, &protocols).inspect_err(|e| {
        state
            .live
            .metrics
            .refused
            .with_label_values(&["auth"])
            .inc();
        log::info!("live session refused: {e}");
    })?;
    let model = state
        .engine
        .current()
        .ok_or_else(|| not_ready(&state.engine))?;
    let slot = state.live.admit().ok_or_else(|| {
        ApiError::too_many(
            "live_sessions_full",
            format!(
                "all {} live sessions are in use; retry later",
                state.live.limits.max_sessions
            ),
            Duration::from_secs(5),
        )
    })?;
    let (mut response, ws, stream) = actix_ws::handle(&request, payload)
        .map_err(|e| ApiError::bad_request(format!("not a WebSocket upgrade: {e}")))?;
    let echo = protocols
        .iter()
        .find(|p| !p.starts_with(KEY_PROTOCOL))
        .or(protocols.first());
    if let Some(value) = echo.and_then(|p| HeaderValue::from_str(p).ok()) {
        response
            .headers_mut()
            .insert(header::SEC_WEBSOCKET_PROTOCOL, value);
    }
    let stream = stream
        .max_frame_size(MAX_FRAME_BYTES)
        .aggregate_continuations()
        .max_continuation_size(MAX_FRAME_BYTES);
    let config =
        secret_config.unwrap_or_else(|| default_config(state.engine.speech_model_path().is_some()));
    actix_web::rt::spawn(run(state.into_inner(), ws, stream, slot, config, model));
    Ok(response)
}

/// An event for the writer, or the close frame that ends the connection.
enum Outgoing {
    Text(String),
    Pong(bytes::Bytes),
    Close(CloseReason),
}

/// Sends events through the bounded queue.
struct Sender {
    queue: mpsc::Sender<Outgoing>,
    next_event: u64,
    session_id: String,
}

impl Sender {
    /// Sends `event`; a delta is dropped when the queue is full.
    ///
    /// # Errors
    /// `Err(())` when the client is gone or has not read for [`SEND_TIMEOUT`].
    async fn send(&mut self, event: &ServerEvent, state: &AppState) -> Result<(), ()> {
        self.next_event += 1;
        let text = event.to_text(&format!("event_{}_{}", self.session_id, self.next_event));
        if event.droppable() {
            match self.queue.try_send(Outgoing::Text(text)) {
                Ok(()) => Ok(()),
                Err(mpsc::error::TrySendError::Full(_)) => {
                    state.live.metrics.dropped_deltas.inc();
                    Ok(())
                }
                Err(mpsc::error::TrySendError::Closed(_)) => Err(()),
            }
        } else {
            match tokio::time::timeout(SEND_TIMEOUT, self.queue.send(Outgoing::Text(text))).await {
                Ok(Ok(())) => Ok(()),
                _ => Err(()),
            }
        }
    }

    async fn close(&self, code: CloseCode, description: &str) {
        let reason = CloseReason {
            code,
            description: Some(description.to_owned()),
        };
        let _ = tokio::time::timeout(SEND_TIMEOUT, self.queue.send(Outgoing::Close(reason))).await;
    }
}

/// Writes queued events to the WebSocket until the queue closes or a close frame is sent.
async fn write(mut ws: actix_ws::Session, mut queue: mpsc::Receiver<Outgoing>) {
    while let Some(outgoing) = queue.recv().await {
        match outgoing {
            Outgoing::Text(text) => {
                if ws.text(text).await.is_err() {
                    return;
                }
            }
            Outgoing::Pong(payload) => {
                if ws.pong(&payload).await.is_err() {
                    return;
                }
            }
            Outgoing::Close(reason) => {
                let _ = ws.close(Some(reason)).await;
                return;
            }
        }
    }
    let _ = ws.close(None).await;
}

/// Why the loop ends.
enum End {
    /// The client closed or went away.
    Gone,
    /// Close with this code and reason.
    Close(CloseCode, String),
}

/// A running session: its state, the decode in flight and the model it runs on.
struct Live {
    state: Arc<AppState>,
    session: Session,
    sender: Sender,
    model: Arc<LoadedModel>,
    /// The item the model was chosen for.
    model_item: Option<String>,
    decoding: Option<(DecodeKind, Decoding)>,
    request_id: Arc<str>,
    /// When audio last arrived (or the session opened): the idle clock.
    audio_at: Instant,
}

async fn run(
    state: Arc<AppState>,
    ws: actix_ws::Session,
    mut stream: actix_ws::AggregatedMessageStream,
    slot: SessionSlot,
    config: SessionConfig,
    model: Arc<LoadedModel>,
) {
    let _slot = slot;
    let session_id = format!("sess_{}", &uuid::Uuid::new_v4().simple().to_string()[..20]);
    let (queue, outgoing) = mpsc::channel(SEND_QUEUE);
    actix_web::rt::spawn(write(ws, outgoing));
    let sender = Sender {
        queue,
        next_event: 0,
        session_id: session_id.clone(),
    };
    let open_vad = vad_factory(&state);
    let limits = SessionLimits {
        max_buffer_samples: (state.live.limits.max_buffer_seconds
            * f64::from(whisper_safe::SAMPLE_RATE)) as usize,
    };
    let session = match Session::new(
        config.clone(),
        limits,
        state.live.metrics.clone(),
        &open_vad,
    )
    .or_else(|_| {
        // A secret's configuration asked for what this server lacks: defaults.
        Session::new(
            default_config(false),
            limits,
            state.live.metrics.clone(),
            &open_vad,
        )
    }) {
        Ok(session) => session,
        Err(error) => {
            log::error!("live session {session_id} cannot start: {error}");
            sender
                .close(CloseCode::Error, "the session cannot start")
                .await;
            return;
        }
    };
    log::info!("live session {session_id} opened on {}", model.id());
    let created = ServerEvent::SessionCreated {
        session: session.config().to_json(&session_id, None),
    };
    let mut live = Live {
        request_id: Arc::from(session_id.as_str()),
        state: Arc::clone(&state),
        session,
        sender,
        model,
        model_item: None,
        decoding: None,
        audio_at: Instant::now(),
    };
    if live.sender.send(&created, &state).await.is_err() {
        return;
    }
    // Idle means no audio: pings and other events do not keep a session.
    let idle = state.live.limits.idle_timeout;
    let mut shutdown = state.live.shutdown_signal();
    let started = Instant::now();
    let end = loop {
        if let Err(end) = live.start_decode().await {
            break end;
        }
        let decoding = async {
            match &mut live.decoding {
                Some((_, future)) => future.await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = tokio::time::sleep_until((live.audio_at + idle).into()) => {
                break End::Close(CloseCode::Policy, format!("no audio for {} s", idle.as_secs()));
            }
            message = stream.next() => {
                let step = match message {
                    None | Some(Ok(AggregatedMessage::Close(_))) => Err(End::Gone),
                    Some(Ok(message)) => live.on_message(message).await,
                    Some(Err(error)) => Err(protocol_close(&error)),
                };
                if let Err(end) = step {
                    break end;
                }
            }
            result = decoding => {
                if let Err(end) = live.on_decoded(result).await {
                    break end;
                }
            }
            _ = shutdown.wait_for(|down| *down) => {
                break End::Close(CloseCode::Away, "the server is shutting down".into());
            }
        }
    };
    if let End::Close(code, reason) = &end {
        log::info!(
            "live session {session_id} closed after {:.1} s: {reason}",
            started.elapsed().as_secs_f64()
        );
        live.sender.close(*code, reason).await;
    } else {
        log::info!(
            "live session {session_id} ended by the client after {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
}

/// The close a WebSocket protocol error calls for.
fn protocol_close(error: &actix_ws::ProtocolError) -> End {
    let code = match error {
        actix_ws::ProtocolError::Overflow => CloseCode::Size,
        _ => CloseCode::Protocol,
    };
    End::Close(code, error.to_string())
}

/// Opens a VAD per session on the server's Silero model.
fn vad_factory(state: &AppState) -> impl Fn() -> Option<Box<dyn SpeechProbabilities>> {
    let path = state.engine.speech_model_path();
    move || {
        let path = path.as_ref()?;
        match Vad::new(path, &VadOptions::default()) {
            Ok(vad) => Some(Box::new(StreamingVad::new(vad))),
            Err(error) => {
                log::error!("cannot open the VAD model for a live session: {error}");
                None
            }
        }
    }
}

impl Live {
    async fn send(&mut self, event: &ServerEvent) -> Result<(), End> {
        self.sender.send(event, &self.state).await.map_err(|()| {
            End::Close(
                CloseCode::Policy,
                "the client does not read its events".into(),
            )
        })
    }

    async fn send_all(&mut self, events: Vec<ServerEvent>) -> Result<(), End> {
        for event in &events {
            self.send(event).await?;
        }
        Ok(())
    }

    async fn error(&mut self, error: &ProtocolError, event_id: Option<&str>) -> Result<(), End> {
        self.send(&ServerEvent::error(error, event_id)).await
    }

    async fn on_message(&mut self, message: AggregatedMessage) -> Result<(), End> {
        match message {
            AggregatedMessage::Text(text) => match parse_client_event(&text) {
                Ok((event, event_id)) => self.on_event(event, event_id.as_deref()).await,
                Err((error, event_id)) => self.error(&error, event_id.as_deref()).await,
            },
            AggregatedMessage::Binary(_) => {
                let error = ProtocolError::new(
                    "binary_not_supported",
                    "send events as JSON text frames; audio goes base64 in input_audio_buffer.append",
                );
                self.error(&error, None).await
            }
            AggregatedMessage::Ping(payload) => {
                // Keep-alive: answered unless the queue is full (then the
                // client is not reading and its ping may go unanswered).
                let _ = self.sender.queue.try_send(Outgoing::Pong(payload));
                Ok(())
            }
            AggregatedMessage::Pong(_) | AggregatedMessage::Close(_) => Ok(()),
        }
    }

    async fn on_event(&mut self, event: ClientEvent, event_id: Option<&str>) -> Result<(), End> {
        let result = match event {
            ClientEvent::SessionUpdate { session, beta } => self.update(&session, beta),
            ClientEvent::Append { audio } => {
                let appended = self.session.append(&audio, Instant::now());
                if appended.is_ok() && !audio.is_empty() {
                    self.audio_at = Instant::now();
                }
                appended
            }
            ClientEvent::Commit => self.session.commit(),
            ClientEvent::Clear => Ok(self.session.clear()),
        };
        match result {
            Ok(events) => self.send_all(events).await,
            Err(error) => self.error(&error, event_id).await,
        }
    }

    fn update(
        &mut self,
        session: &serde_json::Value,
        beta: bool,
    ) -> Result<Vec<ServerEvent>, ProtocolError> {
        let next = self.session.config().update(session, beta)?;
        let model = self
            .state
            .engine
            .current()
            .unwrap_or_else(|| Arc::clone(&self.model));
        if !self.state.aliases.iter().any(|a| a == &next.model) && !model.answers_to(&next.model) {
            return Err(ProtocolError {
                code: "model_not_found",
                message: format!(
                    "model {:?} is not served here; this server serves {} (also called {})",
                    next.model,
                    model.id(),
                    self.state.aliases.join(", ")
                ),
                param: Some("session.audio.input.transcription.model".into()),
            });
        }
        let options = TranscribeOptions {
            language: next.language.clone(),
            ..Default::default()
        };
        model.check(&options).map_err(|e| ProtocolError {
            code: "invalid_value",
            message: e.message,
            param: Some("session.audio.input.transcription.language".into()),
        })?;
        let open_vad = vad_factory(&self.state);
        self.session.configure(next, &open_vad)?;
        let shown = self.session.config().to_json(&self.request_id, None);
        Ok(vec![if beta {
            ServerEvent::BetaSessionUpdated { session: shown }
        } else {
            ServerEvent::SessionUpdated { session: shown }
        }])
    }

    /// Starts the session's next decode when one is due and none runs.
    async fn start_decode(&mut self) -> Result<(), End> {
        if self.decoding.is_some() {
            return Ok(());
        }
        let Some(request) = self.session.next_decode() else {
            return Ok(());
        };
        if self.model_item.as_deref() != Some(request.item_id.as_str()) {
            // A new item: it runs, to its end, on the model serving now.
            if let Some(current) = self.state.engine.current() {
                self.model = current;
            }
            self.model_item = Some(request.item_id.clone());
        }
        match self.submit(&request) {
            Ok(future) => {
                self.decoding = Some((request.kind, future));
                Ok(())
            }
            Err(reason) => {
                let events = self.session.decoded(Err(Some(reason)), Instant::now());
                self.send_all(events).await
            }
        }
    }

    fn submit(&self, request: &DecodeRequest) -> Result<Decoding, String> {
        let partial = request.kind == DecodeKind::Partial;
        let options = TranscribeOptions {
            language: self.session.config().language.clone(),
            prompt: request.prompt.clone(),
            // A partial step is one window, decoded once (no retries at
            // higher temperatures); a long manual buffer is cut at speech.
            vad_filter: partial.then_some(false),
            temperature_fallback: partial.then_some(false),
            // Speech runs at 2-4 tokens a second: room for fast speech, none for loops.
            max_tokens: partial
                .then(|| 16 + 8 * request.samples.len() as u32 / whisper_safe::SAMPLE_RATE),
            ..Default::default()
        };
        let language = self.model.check(&options).map_err(|e| e.to_string())?;
        let spec = JobSpec {
            request_id: Arc::clone(&self.request_id),
            samples: request.samples.clone(),
            options,
            language,
            segments: None,
            progress: None,
        };
        let step = LiveStep {
            deadline: (!request.urgent).then(|| Instant::now() + PARTIAL_DEADLINE),
            urgent: request.urgent,
        };
        let ticket = self
            .state
            .engine
            .submit_live(step, Arc::clone(&self.model), spec)
            .map_err(|e| e.to_string())?;
        Ok(Box::pin(ticket.outcome()))
    }

    async fn on_decoded(&mut self, result: Result<Outcome, RunError>) -> Result<(), End> {
        let kind = self.decoding.take().map(|(kind, _)| kind);
        let result = match result {
            Ok(outcome) => Ok(Decoded::of(&outcome.transcript)),
            Err(RunError::Cancelled) if kind == Some(DecodeKind::Partial) => Err(None),
            Err(error) => {
                log::warn!("live decode failed: {error}");
                Err(Some(error.to_string()))
            }
        };
        let events = self.session.decoded(result, Instant::now());
        self.send_all(events).await
    }
}

/// The body of `POST /v1/realtime/client_secrets`.
#[derive(serde::Deserialize)]
struct SecretRequest {
    expires_after: Option<ExpiresAfter>,
    session: Option<serde_json::Value>,
}

#[derive(serde::Deserialize)]
struct ExpiresAfter {
    anchor: Option<String>,
    seconds: Option<u64>,
}

/// `POST /v1/realtime/client_secrets`: mints a short-lived secret for a
/// browser's live sessions, with the session configuration it starts with.
///
/// # Errors
/// 400 for a body that is not JSON or a configuration this server cannot run,
/// 429 when too many secrets are alive.
pub async fn client_secrets(
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let request: SecretRequest = if body.is_empty() {
        SecretRequest {
            expires_after: None,
            session: None,
        }
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?
    };
    let ttl = match request.expires_after {
        None => DEFAULT_TTL,
        Some(after) => {
            if after.anchor.as_deref().is_some_and(|a| a != "created_at") {
                return Err(ApiError::bad_param(
                    "expires_after.anchor",
                    "only created_at is supported",
                ));
            }
            let seconds = after.seconds.unwrap_or(DEFAULT_TTL.as_secs());
            if !TTL_SECONDS.contains(&seconds) {
                return Err(ApiError::bad_param(
                    "expires_after.seconds",
                    format!(
                        "{seconds} is not between {} and {}",
                        TTL_SECONDS.start(),
                        TTL_SECONDS.end()
                    ),
                ));
            }
            Duration::from_secs(seconds)
        }
    };
    let mut config = default_config(state.engine.speech_model_path().is_some());
    if let Some(session) = &request.session {
        config = config
            .update(session, false)
            .map_err(|e| ApiError::bad_param(e.param.as_deref().unwrap_or("session"), e.message))?;
    }
    let minted = state
        .live
        .secrets
        .mint(ttl, config.clone())
        .ok_or_else(|| {
            ApiError::too_many(
                "too_many_client_secrets",
                "too many client secrets are alive; retry later",
                Duration::from_secs(60),
            )
        })?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "value": minted.value,
        "expires_at": minted.expires_at,
        "session": config.to_json("sess_pending", Some(minted.expires_at)),
    })))
}
