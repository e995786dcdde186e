//! Optional bearer keys. Keys are kept as SHA-256 digests and compared in
//! constant time, so neither the content nor the length of a key leaks
//! through timing. `/health` and `/ready` stay open; loading a model needs an
//! admin key (`STT_ADMIN_KEYS`) whenever any key is configured.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, ResponseError};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::AppState;

/// Paths that never need a key: the probes, and the live page (which asks
/// for a key itself).
const OPEN_PATHS: [&str; 3] = ["/health", "/ready", "/"];

/// Paths that check their own credentials: the live upgrade also takes a key
/// in a WebSocket subprotocol, or a client secret.
const OWN_AUTH_PATHS: [&str; 1] = ["/v1/realtime"];

/// Route patterns that need an admin key.
const ADMIN_ROUTES: [&str; 1] = ["/v1/models/{id}/load"];

/// What a request's key allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Every endpoint but the admin ones.
    Transcribe,
    /// Every endpoint.
    Admin,
}

/// The accepted keys.
#[derive(Clone, Default)]
pub struct ApiKeys {
    digests: Vec<([u8; 32], Access)>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeys({} keys)", self.digests.len())
    }
}

fn digest(key: &[u8]) -> [u8; 32] {
    Sha256::digest(key).into()
}

impl ApiKeys {
    /// Accepts any of `keys` and `admin_keys`; none means no authentication.
    pub fn new(keys: &[String], admin_keys: &[String]) -> Self {
        let with = |keys: &[String], access| {
            keys.iter()
                .map(move |k| (digest(k.as_bytes()), access))
                .collect::<Vec<_>>()
        };
        let mut digests = with(keys, Access::Transcribe);
        digests.extend(with(admin_keys, Access::Admin));
        Self { digests }
    }

    /// Whether keys are required.
    pub fn enabled(&self) -> bool {
        !self.digests.is_empty()
    }

    /// Checks an `Authorization` header value; every key is compared, so the
    /// time taken does not depend on which one matches.
    ///
    /// # Errors
    /// 401 `missing_api_key` or `invalid_api_key`.
    pub fn check(&self, authorization: Option<&[u8]>) -> Result<Access, ApiError> {
        if !self.enabled() {
            return Ok(Access::Admin);
        }
        let Some(value) = authorization else {
            return Err(ApiError::unauthorized(
                "missing_api_key",
                "this server needs an API key: send `Authorization: Bearer <key>`",
            ));
        };
        let token = value
            .strip_prefix(b"Bearer ")
            .or_else(|| value.strip_prefix(b"bearer "))
            .map(<[u8]>::trim_ascii)
            .unwrap_or_default();
        let offered = digest(token);
        let (user, admin) = self.digests.iter().fold(
            (subtle::Choice::from(0), subtle::Choice::from(0)),
            |(user, admin), (key, access)| {
                let hit = key.ct_eq(&offered);
                match access {
                    Access::Transcribe => (user | hit, admin),
                    Access::Admin => (user, admin | hit),
                }
            },
        );
        match (bool::from(admin), bool::from(user)) {
            _ if token.is_empty() => Err(invalid_key()),
            (true, _) => Ok(Access::Admin),
            (false, true) => Ok(Access::Transcribe),
            (false, false) => Err(invalid_key()),
        }
    }

    /// Checks a request for `route` (its pattern).
    ///
    /// # Errors
    /// As [`ApiKeys::check`]; 403 `admin_key_required` for an admin route
    /// with a transcription key.
    pub fn authorize(&self, route: &str, authorization: Option<&[u8]>) -> Result<(), ApiError> {
        let access = self.check(authorization)?;
        if ADMIN_ROUTES.contains(&route) && access != Access::Admin {
            return Err(ApiError::forbidden(
                "admin_key_required",
                "this endpoint needs an admin key (STT_ADMIN_KEYS)",
            ));
        }
        Ok(())
    }
}

fn invalid_key() -> ApiError {
    ApiError::unauthorized("invalid_api_key", "the API key is not valid")
}

/// Middleware: refuses requests without a valid key when keys are configured,
/// and counts the refusals by their code (never by anything the client sent).
///
/// # Errors
/// Only the inner service's errors.
pub async fn require_key(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let state = request.app_data::<web::Data<AppState>>().cloned();
    let checked = match &state {
        Some(state)
            if !OPEN_PATHS.contains(&request.path())
                && !OWN_AUTH_PATHS.contains(&request.path()) =>
        {
            let route = request.match_pattern().unwrap_or_default();
            state.api_keys.authorize(
                &route,
                request
                    .headers()
                    .get(header::AUTHORIZATION)
                    .map(|v| v.as_bytes()),
            )
        }
        _ => Ok(()),
    };
    match checked {
        Ok(()) => Ok(next.call(request).await?.map_into_left_body()),
        Err(error) => {
            log::info!("refused: {error}");
            if let Some(state) = state {
                state.http_metrics.refused(error.code);
            }
            Ok(request
                .into_response(error.error_response())
                .map_into_right_body())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked() {
        let keys = ApiKeys::new(&["alpha".into(), "beta".into()], &["root".into()]);
        assert_eq!(keys.check(Some(b"Bearer alpha")), Ok(Access::Transcribe));
        assert_eq!(keys.check(Some(b"Bearer beta")), Ok(Access::Transcribe));
        assert_eq!(keys.check(Some(b"Bearer root")), Ok(Access::Admin));
        assert_eq!(
            keys.check(Some(b"Bearer gamma")).unwrap_err().code,
            "invalid_api_key"
        );
        assert_eq!(
            keys.check(Some(b"alpha")).unwrap_err().code,
            "invalid_api_key"
        );
        assert_eq!(keys.check(None).unwrap_err().code, "missing_api_key");
        assert_eq!(ApiKeys::new(&[], &[]).check(None), Ok(Access::Admin));
        assert!(!format!("{keys:?}").contains("alpha"));
        let load = ADMIN_ROUTES[0];
        assert_eq!(
            keys.authorize(load, Some(b"Bearer alpha"))
                .unwrap_err()
                .code,
            "admin_key_required"
        );
        assert!(keys.authorize(load, Some(b"Bearer root")).is_ok());
        assert!(keys.authorize("/v1/models", Some(b"Bearer alpha")).is_ok());
        let users_only = ApiKeys::new(&["alpha".into()], &[]);
        assert_eq!(
            users_only
                .authorize(load, Some(b"Bearer alpha"))
                .unwrap_err()
                .status,
            403
        );
    }
}
