//! Request ids: a sane client-provided `X-Request-Id` is kept, otherwise a
//! UUID is made; the id is echoed in the response, scoped for every log line
//! of the request, and ends the request with one access-log line.

use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::HttpMessage;

use crate::engine::log_context;

/// The header carrying the id.
pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Paths whose successful requests are logged at debug level only.
const QUIET_PATHS: [&str; 3] = ["/health", "/ready", "/metrics"];

/// Longest client id kept.
const MAX_LEN: usize = 128;

/// The request id, in the request's extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub Arc<str>);

/// The client's id if it is 1–128 characters of `[A-Za-z0-9._:-]`.
pub fn sanitize(value: &[u8]) -> Option<&str> {
    let sane = !value.is_empty()
        && value.len() <= MAX_LEN
        && value
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    sane.then(|| std::str::from_utf8(value).expect("ASCII"))
}

/// Middleware: assigns the id, scopes it for the request's log lines, sets
/// the response header and logs the request.
///
/// # Errors
/// Only the inner service's errors.
pub async fn assign(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id: Arc<str> = request
        .headers()
        .get(&HEADER)
        .and_then(|v| sanitize(v.as_bytes()))
        .map_or_else(|| uuid::Uuid::new_v4().to_string().into(), Into::into);
    request.extensions_mut().insert(RequestId(Arc::clone(&id)));
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.path().to_owned();
    let result = log_context::scope(Arc::clone(&id), next.call(request)).await;
    log_context::with_thread(Arc::clone(&id), || match &result {
        Ok(response) => {
            // Probes and scrapes arrive every few seconds: only their failures are news.
            let routine = QUIET_PATHS.contains(&path.as_str()) && response.status().is_success();
            log::log!(
                if routine {
                    log::Level::Debug
                } else {
                    log::Level::Info
                },
                "{method} {path} {} {:.1} ms",
                response.status().as_u16(),
                started.elapsed().as_secs_f64() * 1000.0
            );
        }
        Err(error) => log::warn!("{method} {path} failed: {error}"),
    });
    let mut response = result?;
    let value = HeaderValue::from_str(&id).expect("ids are visible ASCII");
    response.headers_mut().insert(HEADER, value);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sane_ids_are_kept() {
        assert_eq!(sanitize(b"abc-123_x.y:z"), Some("abc-123_x.y:z"));
        assert_eq!(sanitize(b""), None);
        assert_eq!(sanitize(b"has space"), None);
        assert_eq!(sanitize(b"new\nline"), None);
        assert_eq!(sanitize("é".as_bytes()), None);
        assert_eq!(sanitize(&[b'a'; 129]), None);
        assert!(sanitize(&[b'a'; 128]).is_some());
    }
}
