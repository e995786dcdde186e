//! The raw HTTP/1.1 exchange of the end-to-end tests, over a plain `TcpStream` (so a
//! test can also lie about lengths or stop mid-body).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Sends `head` and `body` to 127.0.0.1:`port` (the body from another thread, so an
/// answer given before the body is read still arrives) and reads the answer to EOF.
///
/// # Errors
/// Connecting or reading fails before a whole response head arrived.
pub fn exchange(port: u16, head: &[u8], body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(300)))?;
    stream.write_all(head)?;
    let mut writer = stream.try_clone()?;
    let mut raw = Vec::new();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            // The server may refuse the body and close: that is its answer.
            let _ = writer.write_all(body);
        });
        let mut buffer = [0u8; 64 * 1024];
        loop {
            match stream.read(&mut buffer) {
                Ok(0) => return Ok(()),
                Ok(n) => raw.extend_from_slice(&buffer[..n]),
                Err(_) if has_head(&raw) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    })?;
    Ok(raw)
}

/// Whether `raw` holds a whole response head.
pub fn has_head(raw: &[u8]) -> bool {
    raw.windows(4).any(|w| w == b"\r\n\r\n")
}
