//! `GET /`: a page to try live transcription in a browser (plain HTML and
//! JavaScript, no build step): it streams the microphone through an
//! AudioWorklet as 24 kHz PCM16 to `/v1/realtime` and shows deltas as they
//! come and each completed turn.

use actix_web::http::header::{self, HeaderValue};
use actix_web::HttpResponse;

/// The page.
const PAGE: &str = include_str!("page.html");

/// `GET /`.
pub async fn index() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        ))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-cache")))
        .body(PAGE)
}
