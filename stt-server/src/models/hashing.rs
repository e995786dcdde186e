//! A writer that hashes the bytes it passes on, for files whose checksum is
//! recorded as they are written.

use std::io::{self, Write};

use sha2::digest::Update;

/// Writes to `inner` and feeds the same bytes to `hasher` (SHA-1, SHA-256, …).
pub(crate) struct HashingWriter<W, H> {
    pub(crate) inner: W,
    pub(crate) hasher: H,
}

impl<W: Write, H: Update> Write for HashingWriter<W, H> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
