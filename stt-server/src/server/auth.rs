//! Optional bearer keys. Keys are kept as SHA-256 digests and compared in
//! constant time, so neither the content nor the length of a key leaks
//! through timing. `/health` and `/ready` stay open.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, ResponseError};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::AppState;

/// Paths that never need a key.
const OPEN_PATHS: [&str; 2] = ["/health", "/ready"];

/// The accepted keys.
#[derive(Clone, Default)]
pub struct ApiKeys {
    digests: Vec<[u8; 32]>,
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
    /// Accepts any of `keys`; none means no authentication.
    pub fn new(keys: &[String]) -> Self {
        Self {
            digests: keys.iter().map(|k| digest(k.as_bytes())).collect(),
        }
    }

    /// Whether keys are required.
    pub fn enabled(&self) -> bool {
        !self.digests.is_empty()
    }

    /// Checks an `Authorization` header value.
    ///
    /// # Errors
    /// 401 `missing_api_key` or `invalid_api_key`.
    pub fn check(&self, authorization: Option<&[u8]>) -> Result<(), ApiError> {
        if !self.enabled() {
            return Ok(());
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
        let matched = self
            .digests
            .iter()
            .fold(subtle::Choice::from(0), |any, key| {
                any | key.ct_eq(&offered)
            });
        if bool::from(matched) && !token.is_empty() {
            Ok(())
        } else {
            Err(ApiError::unauthorized(
                "invalid_api_key",
                "the API key is not valid",
            ))
        }
    }
}

/// Middleware: refuses requests without a valid key when keys are configured.
///
/// # Errors
/// Only the inner service's errors.
pub async fn require_key(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let checked = if OPEN_PATHS.contains(&request.path()) {
        Ok(())
    } else {
        match request.app_data::<web::Data<AppState>>() {
            Some(state) => state.api_keys.check(
                request
                    .headers()
                    .get(header::AUTHORIZATION)
                    .map(|v| v.as_bytes()),
            ),
            None => Ok(()),
        }
    };
    match checked {
        Ok(()) => Ok(next.call(request).await?.map_into_left_body()),
        Err(error) => {
            log::info!("refused: {error}");
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
        let keys = ApiKeys::new(&["alpha".into(), "beta".into()]);
        assert!(keys.check(Some(b"Bearer alpha")).is_ok());
        assert!(keys.check(Some(b"Bearer beta")).is_ok());
        assert_eq!(
            keys.check(Some(b"Bearer gamma")).unwrap_err().code,
            "invalid_api_key"
        );
        assert_eq!(
            keys.check(Some(b"alpha")).unwrap_err().code,
            "invalid_api_key"
        );
        assert_eq!(keys.check(None).unwrap_err().code, "missing_api_key");
        assert!(ApiKeys::new(&[]).check(None).is_ok());
        assert!(!format!("{keys:?}").contains("alpha"));
    }
}
