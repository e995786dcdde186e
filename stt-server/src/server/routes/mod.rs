//! Request handlers, by topic.

pub mod audio;
pub mod models;
pub mod probes;

use actix_web::web;

use super::error::ApiError;
use crate::engine::log_context;

/// Runs `f` on the blocking pool (never on the async threads), keeping the
/// request id for its log lines.
///
/// # Errors
/// 500 if the blocking task cannot run.
pub(crate) async fn blocking<R, F>(f: F) -> Result<R, ApiError>
where
    R: Send + 'static,
    F: FnOnce() -> R + Send + 'static,
{
    let id = log_context::current();
    let result = web::block(move || match id {
        Some(id) => log_context::with_thread(id, f),
        None => f(),
    })
    .await?;
    Ok(result)
}

/// The answer for paths no route matches.
///
/// # Errors
/// Always 404.
pub async fn not_found() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::not_found("no such endpoint"))
}

/// The answer for a known path with the wrong method.
///
/// # Errors
/// Always 405.
pub async fn method_not_allowed() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::from_status(
        actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
    ))
}
