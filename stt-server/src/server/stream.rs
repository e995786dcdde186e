//! Streaming answers: server-sent events, one `transcript.text.delta` per
//! decoded segment, then `transcript.text.done` with the whole text (or an
//! `error` event). The stream owns the job's ticket: a client that goes away
//! drops it and cancels the run.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use actix_web::web::Bytes;
use actix_web::HttpResponse;
use serde_json::json;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;
use whisper_safe::Segment;

use super::error::ApiError;
use crate::engine::{log_context, Ticket};

struct Events {
    ticket: Option<Ticket>,
    segments: UnboundedReceiver<Segment>,
    started: bool,
    finished: bool,
    deadline: Instant,
    limit: Duration,
    request_id: Arc<str>,
}

fn event(value: &serde_json::Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

fn error_event(error: &ApiError) -> Bytes {
    let mut value = error.to_value();
    value["type"] = json!("error");
    event(&value)
}

impl Events {
    async fn next(&mut self) -> Bytes {
        if let Some(segment) = self.segments.recv().await {
            let delta = if self.started {
                segment.text.as_str()
            } else {
                segment.text.trim_start()
            };
            self.started |= !delta.is_empty();
            return event(&json!({"type": "transcript.text.delta", "delta": delta}));
        }
        self.finished = true;
        let ticket = self.ticket.take().expect("the ticket is taken once");
        match ticket.outcome().await {
            Ok(outcome) => event(&json!({
                "type": "transcript.text.done",
                "text": outcome.transcript.text(),
            })),
            Err(error) => {
                let error = ApiError::from(error);
                log_context::with_thread(Arc::clone(&self.request_id), || {
                    log::warn!("stream ended with an error: {error}");
                });
                error_event(&error)
            }
        }
    }
}

/// The SSE response for a submitted job whose segments arrive on `segments`.
pub fn response(
    ticket: Ticket,
    segments: UnboundedReceiver<Segment>,
    deadline: Instant,
    limit: Duration,
    request_id: Arc<str>,
) -> HttpResponse {
    let events = Events {
        ticket: Some(ticket),
        segments,
        started: false,
        finished: false,
        deadline,
        limit,
        request_id,
    };
    let body = futures_util::stream::unfold(events, |mut events| async move {
        if events.finished {
            return None;
        }
        let bytes = match tokio::time::timeout_at(events.deadline, events.next()).await {
            Ok(bytes) => bytes,
            Err(_) => {
                events.finished = true;
                events.ticket = None;
                error_event(&ApiError::timeout(events.limit))
            }
        };
        Some((Ok::<_, Infallible>(bytes), events))
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .streaming(body)
}
