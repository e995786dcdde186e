//! A model mirror on 127.0.0.1: one body at every path, `Range: bytes=N-`
//! honoured, and the faults a download must survive on demand.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// How the mirror answers.
#[derive(Clone, Copy)]
pub enum Mode {
    /// Serves the body, honouring `Range: bytes=N-` (206, or 416 past the end).
    Normal,
    /// Like `Normal`, but the body goes out in small chunks with pauses (~0.3 s).
    Slow,
    /// The first request announces the full body, sends `after` bytes, then closes
    /// the connection (or, with `stall`, keeps it open for 30 s without sending more).
    CutFirst {
        /// Bytes sent before the cut.
        after: usize,
        /// Whether the connection stays open after the cut.
        stall: bool,
    },
    /// Always answers 200 with the whole body, whatever the range.
    IgnoreRange,
    /// The first `count` requests get `status`, later ones are `Normal`.
    FailFirst {
        /// The status of the failed answers.
        status: u16,
        /// How many requests fail.
        count: usize,
    },
    /// Reads the request and never answers.
    Stall,
}

/// What the mirror has seen.
#[derive(Default)]
struct Seen {
    /// The `Range` header of every request, in order.
    ranges: Vec<Option<String>>,
    /// Responses with status 200 (whole-file transfers).
    full_gets: usize,
    /// Body bytes written to clients.
    body_bytes: usize,
}

/// A mirror serving one body on a free port, until the process ends.
pub struct Mirror {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
}

impl Mirror {
    /// Starts a mirror answering with `body` as `mode` says.
    pub fn start(body: Vec<u8>, mode: Mode) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local addr");
        let seen = Arc::new(Mutex::new(Seen::default()));
        let body = Arc::new(body);
        let server_seen = Arc::clone(&seen);
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (body, seen) = (Arc::clone(&body), Arc::clone(&server_seen));
                thread::spawn(move || answer(stream, &body, mode, &seen));
            }
        });
        Self { addr, seen }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The URL of the file `name`.
    pub fn url(&self, name: &str) -> String {
        format!("{}/{name}", self.base_url())
    }

    /// The `Range` header of every request so far, in order.
    pub fn ranges(&self) -> Vec<Option<String>> {
        self.seen.lock().unwrap().ranges.clone()
    }

    /// Answers with the whole file (200) so far.
    pub fn full_gets(&self) -> usize {
        self.seen.lock().unwrap().full_gets
    }

    /// Body bytes written to clients so far.
    pub fn body_bytes(&self) -> usize {
        self.seen.lock().unwrap().body_bytes
    }
}

fn answer(mut stream: TcpStream, body: &[u8], mode: Mode, seen: &Mutex<Seen>) {
    let mut range = None;
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("range") {
                range = Some(value.trim().to_string());
            }
        }
    }
    let index = {
        let mut s = seen.lock().unwrap();
        s.ranges.push(range.clone());
        s.ranges.len() - 1
    };
    let start = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .map(|n| n.parse::<usize>().expect("range start"));

    let (status, from, chunk_pause, cut) = match mode {
        Mode::Stall => {
            thread::sleep(Duration::from_secs(30));
            return;
        }
        Mode::FailFirst { status, count } if index < count => {
            let _ = stream.write_all(
                format!(
                    "HTTP/1.1 {status} Failing\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )
                .as_bytes(),
            );
            return;
        }
        Mode::IgnoreRange => (200, 0, None, None),
        Mode::CutFirst { after, stall } if index == 0 => (200, 0, None, Some((after, stall))),
        Mode::Slow => (200, 0, Some(Duration::from_millis(15)), None),
        _ => match start {
            Some(n) if n >= body.len() => {
                let _ = stream.write_all(
                    format!(
                        "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{}\r\n\
                         Content-Length: 0\r\nConnection: close\r\n\r\n",
                        body.len()
                    )
                    .as_bytes(),
                );
                return;
            }
            Some(n) => (206, n, None, None),
            None => (200, 0, None, None),
        },
    };
    let mut head = format!(
        "HTTP/1.1 {status} OK\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len() - from
    );
    if status == 206 {
        head += &format!(
            "Content-Range: bytes {from}-{}/{}\r\n",
            body.len() - 1,
            body.len()
        );
    } else {
        seen.lock().unwrap().full_gets += 1;
    }
    head += "\r\n";
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    let to_send = match cut {
        Some((after, _)) => &body[..after],
        None => &body[from..],
    };
    let chunk_len = if chunk_pause.is_some() {
        to_send.len() / 20 + 1
    } else {
        to_send.len().max(1)
    };
    for chunk in to_send.chunks(chunk_len) {
        if stream.write_all(chunk).is_err() {
            return;
        }
        seen.lock().unwrap().body_bytes += chunk.len();
        if let Some(pause) = chunk_pause {
            thread::sleep(pause);
        }
    }
    let _ = stream.flush();
    if let Some((_, true)) = cut {
        thread::sleep(Duration::from_secs(30));
    }
    let _ = stream.shutdown(Shutdown::Write);
}
