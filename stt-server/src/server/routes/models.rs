//! `GET /v1/models`, `GET /v1/models/{id}` and `POST /v1/models/{id}/load`.
//!
//! The list holds the serving model and every catalog model present in the
//! artifact directory. A load names a catalog id, never a path.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::{web, HttpResponse};
use serde::Serialize;

use super::blocking;
use crate::engine::{models_on_disk, LoadedModel, ModelSource};
use crate::models::catalog::{Choice, ModelRequest};
use crate::server::error::ApiError;
use crate::server::AppState;

/// One model, in OpenAI's shape plus `loaded`.
#[derive(Debug, Serialize)]
struct ModelObject {
    id: String,
    object: &'static str,
    created: u64,
    owned_by: &'static str,
    /// Whether it serves requests now.
    loaded: bool,
}

fn unix(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn loaded_object(model: &LoadedModel) -> ModelObject {
    ModelObject {
        id: model.id().to_owned(),
        object: "model",
        created: unix(model.loaded_at()),
        owned_by: "whisper-stt",
        loaded: true,
    }
}

fn disk_object(source: &ModelSource) -> ModelObject {
    ModelObject {
        id: source.id.clone(),
        object: "model",
        created: std::fs::metadata(&source.path)
            .and_then(|m| m.modified())
            .map_or(0, unix),
        owned_by: "whisper-stt",
        loaded: false,
    }
}

/// The serving model first, then the catalog models on disk.
async fn all_models(state: &AppState) -> Result<Vec<ModelObject>, ApiError> {
    let current = state.engine.current();
    let artifacts = state.artifacts_dir.clone();
    let on_disk = blocking(move || {
        models_on_disk(&artifacts)
            .iter()
            .map(disk_object)
            .collect::<Vec<_>>()
    })
    .await?;
    let mut list: Vec<ModelObject> = current.as_deref().map(loaded_object).into_iter().collect();
    list.extend(
        on_disk
            .into_iter()
            .filter(|m| current.as_ref().is_none_or(|c| c.id() != m.id)),
    );
    Ok(list)
}

/// `GET /v1/models`.
///
/// # Errors
/// 500 if the artifact directory cannot be listed.
pub async fn list(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let data = all_models(&state).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"object": "list", "data": data})))
}

/// `GET /v1/models/{id}`: `whisper-1` and the serving model's ids name the
/// serving model.
///
/// # Errors
/// 404 `model_not_found`.
pub async fn get(
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if let Some(model) = state.engine.current().filter(|m| m.answers_to(&id)) {
        return Ok(HttpResponse::Ok().json(loaded_object(&model)));
    }
    all_models(&state)
        .await?
        .into_iter()
        .find(|m| m.id == *id)
        .map(|m| HttpResponse::Ok().json(m))
        .ok_or_else(|| ApiError::model_not_found(format!("no model {:?} on this server", *id)))
}

/// `POST /v1/models/{id}/load`: loads a catalog model from the artifact
/// directory beside the serving one, then switches to it. Answers when done. A
/// bare size means the serving model when it is of that size, else the file of
/// that size the catalog's order picks among those present.
///
/// # Errors
/// 404 for ids outside the catalog or files not on disk; 409 while another
/// load runs; 500 `model_load_failed` (the previous model keeps serving).
pub async fn load(
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let request: ModelRequest = id
        .parse()
        .map_err(|e| ApiError::model_not_found(format!("cannot load {:?}: {e}", *id)))?;
    if let Some(model) = state.engine.current().filter(|m| m.answers_to(&id)) {
        return Ok(HttpResponse::Ok().json(loaded_object(&model)));
    }
    let artifacts_dir = state.artifacts_dir.clone();
    let resolved = blocking(move || request.resolve(&artifacts_dir)).await?;
    let source = ModelSource::from_catalog(resolved.spec, &state.artifacts_dir);
    if !file_exists(&source.path).await? {
        log::info!("model {} not found at {}", source.id, source.path.display());
        return Err(ApiError::model_not_found(match resolved.choice {
            Choice::Default => format!(
                "no model of size {} is present in the server's artifact directory",
                request.model.id
            ),
            _ => format!(
                "model {} is not present in the server's artifact directory",
                source.id
            ),
        }));
    }
    log::info!("loading model {resolved}");
    let engine = state.engine.clone();
    let model = blocking(move || engine.load(&source)).await??;
    Ok(HttpResponse::Ok().json(loaded_object(&model)))
}

async fn file_exists(path: &Path) -> Result<bool, ApiError> {
    let path = path.to_owned();
    blocking(move || path.is_file()).await
}
