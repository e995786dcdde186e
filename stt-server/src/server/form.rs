//! Streaming `multipart/form-data` reader with limits enforced while the body
//! arrives: a huge declared length is refused before reading, an oversized
//! file as soon as it passes the limit, a body that falls behind its pace
//! (see [`Upload`]) as soon as it does.

use actix_multipart::{Field, Multipart, MultipartError};
use actix_web::http::header::{self, HeaderMap};
use actix_web::web::{self, Bytes, BytesMut};
use futures_util::StreamExt;

use super::error::ApiError;
use super::upload::Upload;

/// Room for the text fields and multipart framing beyond the file itself.
pub const FORM_OVERHEAD_BYTES: u64 = 1024 * 1024;
/// Largest text field.
pub const MAX_FIELD_BYTES: usize = 64 * 1024;
/// Most parts in one form.
pub const MAX_PARTS: usize = 64;

/// The uploaded audio.
#[derive(Debug, Clone)]
pub struct UploadedFile {
    /// Its bytes.
    pub bytes: Bytes,
    /// The client's file name.
    pub file_name: Option<String>,
    /// The part's declared media type.
    pub content_type: Option<String>,
}

/// A parsed form: the `file` part and the text fields, in order.
#[derive(Debug, Clone, Default)]
pub struct Form {
    /// The `file` part.
    pub file: Option<UploadedFile>,
    /// Every other part, as text.
    pub fields: Vec<(String, String)>,
}

impl Form {
    /// The last value of field `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of field `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.fields
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Checks the headers before any byte of the body is read: the media type
/// must be `multipart/form-data` (415) and a declared length must fit (413).
///
/// # Errors
/// [`ApiError`] 415 or 413.
pub fn check_headers(headers: &HeaderMap, max_file_bytes: u64) -> Result<(), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence != "multipart/form-data" {
        return Err(ApiError::unsupported_media(format!(
            "expected a multipart/form-data body with a `file` part, got {}",
            if content_type.is_empty() {
                "no Content-Type".to_owned()
            } else {
                format!("Content-Type {content_type:?}")
            }
        )));
    }
    if let Some(length) = declared_length(headers) {
        if length > max_file_bytes.saturating_add(FORM_OVERHEAD_BYTES) {
            return Err(too_large(max_file_bytes));
        }
    }
    Ok(())
}

/// The body length the request declares (`Content-Length`), if any.
pub fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

fn too_large(max_file_bytes: u64) -> ApiError {
    ApiError::too_large(
        "file_too_large",
        format!("the upload exceeds the limit of {max_file_bytes} bytes"),
    )
}

/// Reads the whole form, keeping the `file` part (at most `max_file_bytes`)
/// and text fields (at most [`MAX_FIELD_BYTES`] each), at `upload`'s pace and
/// counting the bytes it holds.
///
/// # Errors
/// 413 past a limit; 400 for a malformed body, a non-UTF-8 field, or a second
/// file; 408 when the body falls behind; 503 when the upload memory is full.
pub async fn read(
    headers: &HeaderMap,
    payload: web::Payload,
    max_file_bytes: u64,
    upload: &mut Upload,
) -> Result<Form, ApiError> {
    let mut multipart = Multipart::new(headers, upload.observe(payload));
    let mut form = Form::default();
    let mut parts = 0;
    while let Some(field) = upload.paced(multipart.next()).await? {
        let mut field = field.map_err(malformed)?;
        parts += 1;
        if parts > MAX_PARTS {
            return Err(ApiError::bad_request(format!(
                "the form has more than {MAX_PARTS} parts"
            )));
        }
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            if form.file.is_some() {
                return Err(ApiError::bad_param(
                    "file",
                    "the form has more than one `file` part",
                ));
            }
            let file_name = field
                .content_disposition()
                .and_then(|d| d.get_filename())
                .map(str::to_owned);
            let content_type = field.content_type().map(|m| m.essence_str().to_owned());
            // One buffer of the declared size (within the limit), not a
            // doubling series of copies.
            let expected = declared_length(headers).unwrap_or(0).min(max_file_bytes);
            let bytes = collect(&mut field, upload, max_file_bytes, expected, || {
                too_large(max_file_bytes)
            })
            .await?;
            form.file = Some(UploadedFile {
                bytes,
                file_name,
                content_type,
            });
        } else {
            let limit = MAX_FIELD_BYTES as u64;
            let bytes = collect(&mut field, upload, limit, 0, || {
                ApiError::too_large(
                    "field_too_large",
                    format!("field {name:?} exceeds {MAX_FIELD_BYTES} bytes"),
                )
            })
            .await?;
            let value = String::from_utf8(bytes.to_vec()).map_err(|_| {
                ApiError::bad_param(&name, format!("field {name:?} is not UTF-8 text"))
            })?;
            form.fields.push((name, value));
        }
    }
    Ok(form)
}

/// Reads a part into a buffer of `expected` bytes at `upload`'s pace, failing
/// as soon as it passes `limit` bytes.
async fn collect(
    field: &mut Field,
    upload: &mut Upload,
    limit: u64,
    expected: u64,
    over: impl Fn() -> ApiError,
) -> Result<Bytes, ApiError> {
    let mut buffer = BytesMut::with_capacity(usize::try_from(expected).unwrap_or(0));
    while let Some(chunk) = upload.paced(field.next()).await? {
        let chunk = chunk.map_err(malformed)?;
        if (buffer.len() + chunk.len()) as u64 > limit {
            return Err(over());
        }
        upload.received(chunk.len())?;
        buffer.extend_from_slice(&chunk);
    }
    Ok(buffer.freeze())
}

fn malformed(error: MultipartError) -> ApiError {
    ApiError::bad_request(format!("malformed multipart body: {error}"))
}
