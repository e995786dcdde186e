//! [`ApiError`]: every error response, in OpenAI's envelope
//! `{"error":{"message","type","param","code"}}`.

use std::time::Duration;

use actix_web::dev::ServiceResponse;
use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::engine::audio::InputError;
use crate::engine::{log_context, InvalidOption, ModelLoadError, RunError, SubmitError};

/// An error answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Human-readable message (never internal details for 5xx faults).
    pub message: String,
    /// The request parameter at fault.
    pub param: Option<String>,
    /// Machine-readable code.
    pub code: &'static str,
    /// Seconds to wait before retrying (429, 503).
    pub retry_after: Option<Duration>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Body<'a>,
}

#[derive(Serialize)]
struct Body<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    param: Option<&'a str>,
    code: &'static str,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            param: None,
            code,
            retry_after: None,
        }
    }

    fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    /// 400: a parameter is missing or wrong.
    pub fn bad_param(param: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_parameter", message).with_param(param)
    }

    /// 400: the request body is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// 401: no key, or a wrong one.
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    /// 403: a valid key without the permission the endpoint needs.
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    /// 408: the request body fell behind (stalled, too slow, or past the body
    /// timeout); the connection is closed.
    pub fn slow_body(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::REQUEST_TIMEOUT, code, message)
    }

    /// 404: the model is not loaded or not known.
    pub fn model_not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "model_not_found", message).with_param("model")
    }

    /// 404: no such endpoint.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 409: the operation conflicts with one in progress.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 413: the upload or the audio is too large.
    pub fn too_large(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, code, message)
    }

    /// 415: not a supported media type.
    pub fn unsupported_media(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            message,
        )
    }

    /// 422: the audio cannot be decoded, or is empty.
    pub fn invalid_audio(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_audio", message).with_param("file")
    }

    /// 429: busy; retry later.
    pub fn busy(message: impl Into<String>, retry_after: Duration) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "queue_full", message)
        }
    }

    /// 429 with its own code: a limit other than the queue's.
    pub fn too_many(code: &'static str, message: impl Into<String>, retry_after: Duration) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, code, message)
        }
    }

    /// 503: no model is serving yet, or the server is stopping.
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            retry_after: Some(Duration::from_secs(5)),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
        }
    }

    /// 504: the request took longer than the configured timeout.
    pub fn timeout(limit: Duration) -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "request_timeout",
            format!(
                "the request took longer than the limit of {} s",
                limit.as_secs_f64()
            ),
        )
    }

    /// 500: a real fault. The details go to the log, not to the client.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        log::error!("internal error: {detail}");
        Self::fault("internal_error", "the server failed to process the request")
    }

    /// A 500 saying `what` failed and which request id the log files the
    /// details under (logged by the caller): never paths or library messages.
    fn fault(code: &'static str, what: &str) -> Self {
        let id = log_context::current();
        let id = id.as_deref().unwrap_or("-");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            code,
            format!("{what}; the server log has the details under request id {id}"),
        )
    }

    /// A generic error for a bare status (responses made by the framework).
    pub fn from_status(status: StatusCode) -> Self {
        let reason = status.canonical_reason().unwrap_or("error");
        match status {
            StatusCode::NOT_FOUND => Self::not_found("no such endpoint"),
            StatusCode::METHOD_NOT_ALLOWED => Self::new(
                status,
                "method_not_allowed",
                "method not allowed on this endpoint",
            ),
            s if s.is_server_error() => Self::new(s, "server_error", reason.to_lowercase()),
            s => Self::new(s, "invalid_request", reason.to_lowercase()),
        }
    }

    /// The envelope's `type`.
    fn kind(&self) -> &'static str {
        match self.status {
            StatusCode::UNAUTHORIZED => "authentication_error",
            StatusCode::FORBIDDEN => "permission_error",
            StatusCode::TOO_MANY_REQUESTS => "rate_limit_error",
            s if s.is_server_error() => "server_error",
            _ => "invalid_request_error",
        }
    }

    /// The envelope as a JSON value.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(Envelope {
            error: Body {
                message: &self.message,
                kind: self.kind(),
                param: self.param.as_deref(),
                code: self.code,
            },
        })
        .expect("the envelope serializes")
    }

    /// The JSON body.
    pub fn body(&self) -> String {
        self.to_value().to_string()
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        response.content_type("application/json");
        if let Some(after) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, after.as_secs().max(1).to_string()));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        if matches!(
            self.status,
            StatusCode::PAYLOAD_TOO_LARGE | StatusCode::REQUEST_TIMEOUT
        ) {
            // Do not read the rest of an oversized or stalled body.
            response.force_close();
        }
        response.body(self.body())
    }
}

impl From<InvalidOption> for ApiError {
    fn from(error: InvalidOption) -> Self {
        Self::bad_param(error.param, error.message)
    }
}

impl From<InputError> for ApiError {
    fn from(error: InputError) -> Self {
        match error {
            InputError::Unsupported(m) => Self::unsupported_media(m).with_param("file"),
            InputError::Undecodable(m) => Self::invalid_audio(m),
            InputError::TooLong { max_seconds } => Self::too_large(
                "audio_too_long",
                format!("the audio is longer than the maximum of {max_seconds} s"),
            )
            .with_param("file"),
            InputError::Internal(detail) => Self::internal(detail),
        }
    }
}

impl From<SubmitError> for ApiError {
    fn from(error: SubmitError) -> Self {
        match &error {
            SubmitError::Busy { retry_after, .. } | SubmitError::MemoryFull { retry_after, .. } => {
                Self::busy(error.to_string(), *retry_after)
            }
            SubmitError::ShuttingDown => Self::unavailable("shutting_down", error.to_string()),
        }
    }
}

impl From<RunError> for ApiError {
    fn from(error: RunError) -> Self {
        match error {
            RunError::InvalidAudio(m) => Self::invalid_audio(m),
            RunError::InvalidParam { param, message } => Self::bad_param(param, message),
            RunError::Cancelled => {
                Self::unavailable("cancelled", "the transcription was cancelled")
            }
            RunError::Failed(detail) => Self::internal(detail),
        }
    }
}

impl From<ModelLoadError> for ApiError {
    fn from(error: ModelLoadError) -> Self {
        match &error {
            ModelLoadError::InProgress { .. } => {
                Self::conflict("load_in_progress", error.to_string())
            }
            // The engine logged the cause.
            ModelLoadError::Failed { id, .. } => Self::fault(
                "model_load_failed",
                &format!("loading model {id} failed; the previous model keeps serving"),
            ),
        }
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(error: actix_web::error::BlockingError) -> Self {
        Self::internal(format!("blocking task failed: {error}"))
    }
}

/// Rewrites error responses the framework made (404 without route, 405, …)
/// into the envelope; responses that already carry JSON pass unchanged.
///
/// # Errors
/// Never; the signature is the one `ErrorHandlers` expects.
pub fn envelope_framework_errors<B>(
    response: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(
            response.map_into_left_body(),
        ));
    }
    let (request, old) = response.into_parts();
    let mut new = ApiError::from_status(old.status()).error_response();
    if let Some(allow) = old.headers().get(header::ALLOW) {
        new.headers_mut().insert(header::ALLOW, allow.clone());
    }
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(request, new).map_into_right_body::<B>(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_shape() {
        let body: serde_json::Value =
            serde_json::from_str(&ApiError::bad_param("language", "unknown language").body())
                .unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": {"message": "unknown language", "type": "invalid_request_error",
                "param": "language", "code": "invalid_parameter"}})
        );
        let internal: serde_json::Value =
            serde_json::from_str(&ApiError::internal("secret /path detail").body()).unwrap();
        assert!(!internal.to_string().contains("secret"));
        assert_eq!(internal["error"]["type"], "server_error");
        assert_eq!(internal["error"]["param"], serde_json::Value::Null);
    }

    #[test]
    fn busy_carries_retry_after() {
        let response = ApiError::busy("full", Duration::from_secs(3)).error_response();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers().get("retry-after").unwrap(), "3");
    }
}
