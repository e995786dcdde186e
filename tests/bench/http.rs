//! A minimal HTTP/1.1 client for 127.0.0.1: one request per connection
//! (`Connection: close`), the response read while the body is still being sent,
//! so an early answer (413 before the body is read) is seen rather than lost in a
//! broken pipe.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// An exchange that produced no complete HTTP response.
#[derive(Debug, thiserror::Error)]
#[error("HTTP {method} {path} on {addr}: {reason}")]
pub struct HttpError {
    /// The method.
    pub method: String,
    /// The request path.
    pub path: String,
    /// The server.
    pub addr: SocketAddr,
    /// What went wrong.
    pub reason: String,
}

pub use whisper_stt_tests::server::Response;

/// `GET path`.
///
/// # Errors
/// [`HttpError`] when no complete response arrives within `timeout`.
pub fn get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<Response, HttpError> {
    exchange(addr, "GET", path, &[], &[], timeout)
}

/// `POST path` with a body of `content_type`.
///
/// # Errors
/// [`HttpError`] when no complete response arrives within `timeout`.
pub fn post(
    addr: SocketAddr,
    path: &str,
    content_type: &str,
    body: &[u8],
    timeout: Duration,
) -> Result<Response, HttpError> {
    exchange(
        addr,
        "POST",
        path,
        &[("Content-Type", content_type)],
        body,
        timeout,
    )
}

/// A `multipart/form-data` body under construction.
#[derive(Debug, Clone)]
pub struct Multipart {
    boundary: String,
    body: Vec<u8>,
}

impl Default for Multipart {
    fn default() -> Self {
        Self::new()
    }
}

impl Multipart {
    /// An empty form.
    pub fn new() -> Self {
        Self {
            boundary: "----whisper-stt-bench-7d1c3e9a5b".to_owned(),
            body: Vec::new(),
        }
    }

    /// Adds a text field.
    pub fn text(mut self, name: &str, value: &str) -> Self {
        self.part(&format!("name=\"{name}\""), None, value.as_bytes());
        self
    }

    /// Adds a file part.
    pub fn file(mut self, name: &str, file_name: &str, content_type: &str, bytes: &[u8]) -> Self {
        self.part(
            &format!("name=\"{name}\"; filename=\"{file_name}\""),
            Some(content_type),
            bytes,
        );
        self
    }

    fn part(&mut self, disposition: &str, content_type: Option<&str>, bytes: &[u8]) {
        let mut head = format!(
            "--{}\r\nContent-Disposition: form-data; {disposition}\r\n",
            self.boundary
        );
        if let Some(content_type) = content_type {
            head.push_str(&format!("Content-Type: {content_type}\r\n"));
        }
        head.push_str("\r\n");
        self.body.extend_from_slice(head.as_bytes());
        self.body.extend_from_slice(bytes);
        self.body.extend_from_slice(b"\r\n");
    }

    /// The `Content-Type` header value and the finished body.
    pub fn finish(mut self) -> (String, Vec<u8>) {
        self.body
            .extend_from_slice(format!("--{}--\r\n", self.boundary).as_bytes());
        (
            format!("multipart/form-data; boundary={}", self.boundary),
            self.body,
        )
    }
}

fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> Result<Response, HttpError> {
    let fail = |reason: String| HttpError {
        method: method.to_owned(),
        path: path.to_owned(),
        addr,
        reason,
    };
    let stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| fail(format!("connect: {e}")))?;
    let setup = stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .and_then(|()| stream.set_nodelay(true));
    let mut reader = stream
        .try_clone()
        .and_then(|s| setup.map(|()| s))
        .map_err(|e| fail(format!("socket setup: {e}")))?;
    let reading = std::thread::spawn(move || {
        let mut received = Vec::new();
        let error = reader.read_to_end(&mut received).err();
        (received, error)
    });
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut writer = &stream;
    // A server may answer and close before reading the whole body (413): the
    // write then fails, and the answer is what counts.
    let write_error = writer
        .write_all(head.as_bytes())
        .and_then(|()| writer.write_all(body))
        .err();
    let (received, read_error) = reading
        .join()
        .map_err(|_| fail("reader thread panicked".into()))?;
    parse(&received).map_err(|reason| {
        fail(format!(
            "{reason} (received {} bytes; write: {}; read: {})",
            received.len(),
            write_error.map_or_else(|| "ok".into(), |e| e.to_string()),
            read_error.map_or_else(|| "ok".into(), |e| e.to_string()),
        ))
    })
}

/// Parses a whole response read up to the connection's close.
fn parse(bytes: &[u8]) -> Result<Response, String> {
    let end = find(bytes, b"\r\n\r\n").ok_or("no complete response head")?;
    let head = std::str::from_utf8(&bytes[..end]).map_err(|_| "response head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &bytes[end + 4..];
    let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v);
    let body = if let Some(length) = header("content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| format!("bad Content-Length {length:?}"))?;
        rest.get(..length)
            .ok_or_else(|| format!("body truncated at {} of {length} bytes", rest.len()))?
            .to_vec()
    } else if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line_end = find(bytes, b"\r\n").ok_or("chunk size line truncated")?;
        let size_text = std::str::from_utf8(&bytes[..line_end]).map_err(|_| "bad chunk size")?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        bytes = &bytes[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        body.extend_from_slice(bytes.get(..size).ok_or("chunk truncated")?);
        bytes = bytes.get(size + 2..).ok_or("chunk terminator missing")?;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn parses_sized_and_chunked_bodies() {
        let sized = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\n\r\nhi").unwrap();
        assert_eq!((sized.status, sized.text()), (200, "hi".to_owned()));
        assert_eq!(sized.header("x-a"), Some("b"));
        let chunked =
            parse(b"HTTP/1.1 429 Too Many\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n1\r\nd\r\n0\r\n\r\n")
                .unwrap();
        assert_eq!((chunked.status, chunked.text()), (429, "abcd".to_owned()));
        assert!(parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhi").is_err());
        assert!(parse(b"HTTP/1.1 200 OK\r\n").is_err());
    }

    #[test]
    fn an_early_answer_to_a_large_body_is_read() {
        // A server that answers 413 after the head and closes without reading the body.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                socket.read_exact(&mut byte).unwrap();
                head.push(byte[0]);
            }
            socket
                .write_all(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 3\r\n\r\nbig")
                .unwrap();
        });
        let body = vec![0u8; 8 << 20];
        let response = post(
            addr,
            "/up",
            "application/octet-stream",
            &body,
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!((response.status, response.text()), (413, "big".to_owned()));
        server.join().unwrap();
    }

    #[test]
    fn multipart_body_has_each_part_and_the_closing_boundary() {
        let (content_type, body) = Multipart::new()
            .text("language", "fr")
            .file("file", "a.wav", "audio/wav", b"RIFF")
            .finish();
        let boundary = content_type.split("boundary=").nth(1).unwrap();
        let text = String::from_utf8(body).unwrap();
        assert!(text.contains("name=\"language\"\r\n\r\nfr\r\n"));
        assert!(text.contains("filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\nRIFF\r\n"));
        assert!(text.ends_with(&format!("--{boundary}--\r\n")));
    }
}
