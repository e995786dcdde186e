//! `GET /health` (the process serves) and `GET /ready` (a model serves).

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::server::error::ApiError;
use crate::server::AppState;

/// `GET /health`: 200 while the process serves HTTP.
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// `GET /ready`: 200 with the serving model, 503 while none serves.
///
/// # Errors
/// 503 `model_not_ready`, saying what is loading or why the load failed.
pub async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let status = state.engine.status();
    match &status.model {
        Some(model) => Ok(HttpResponse::Ok().json(json!({
            "status": "ready",
            "model": model.id(),
            "vad": state.engine.has_speech_detector(),
            "loading": status.loading,
            "last_error": status.last_error,
        }))),
        None => Err(super::super::not_ready(&state.engine)),
    }
}
