//! Tests of the model downloader against a small HTTP server on 127.0.0.1.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use sha2::Digest;
use stt_server::models::download::{
    download, file_checksum, Checksum, ChecksumKind, DownloadConfig, DownloadError, DownloadReport,
};

/// How the test server answers.
#[derive(Clone, Copy)]
enum Mode {
    /// Serves the body, honouring `Range: bytes=N-` (206, or 416 past the end).
    Normal,
    /// Like `Normal`, but the body goes out in small chunks with pauses (~0.3 s).
    Slow,
    /// The first request announces the full body, sends `after` bytes, then closes
    /// the connection (or, with `stall`, keeps it open without sending more).
    CutFirst { after: usize, stall: bool },
    /// Always answers 200 with the whole body, whatever the range.
    IgnoreRange,
    /// The first `count` requests get `status`, later ones are `Normal`.
    FailFirst { status: u16, count: usize },
    /// Reads the request and never answers.
    Stall,
}

#[derive(Default)]
struct Seen {
    /// The `Range` header of every request, in order.
    ranges: Vec<Option<String>>,
    /// Responses with status 200 (whole-file transfers).
    full_gets: usize,
    /// Body bytes written to clients.
    body_bytes: usize,
}

struct Server {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
}

impl Server {
    fn start(body: Vec<u8>, mode: Mode) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local addr");
        let seen = Arc::new(Mutex::new(Seen::default()));
        let body = Arc::new(body);
        let server_seen = Arc::clone(&seen);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (body, seen) = (Arc::clone(&body), Arc::clone(&server_seen));
                thread::spawn(move || handle(stream, &body, mode, &seen));
            }
        });
        Self { addr, seen }
    }

    fn url(&self, name: &str) -> String {
        format!("http://{}/{name}", self.addr)
    }

    fn ranges(&self) -> Vec<Option<String>> {
        self.seen.lock().unwrap().ranges.clone()
    }

    fn full_gets(&self) -> usize {
        self.seen.lock().unwrap().full_gets
    }

    fn body_bytes(&self) -> usize {
        self.seen.lock().unwrap().body_bytes
    }
}

fn handle(mut stream: TcpStream, body: &[u8], mode: Mode, seen: &Mutex<Seen>) {
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

/// Deterministic pseudo-random test data.
fn data(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn sha256_of(bytes: &[u8]) -> Checksum {
    Checksum::Sha256(hex::encode(sha2::Sha256::digest(bytes)))
}

fn sha1_of(bytes: &[u8]) -> Checksum {
    Checksum::Sha1(hex::encode(sha1::Sha1::digest(bytes)))
}

fn config(max_attempts: u32) -> DownloadConfig {
    DownloadConfig {
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_secs(2),
        max_attempts,
        initial_backoff: Duration::from_millis(5),
        show_progress_bar: false,
    }
}

/// Downloads the server's file to `dest` with the default test configuration.
fn pull(
    server: &Server,
    dest: &Path,
    checksum: &Checksum,
    max_attempts: u32,
) -> Result<DownloadReport, DownloadError> {
    download(
        &server.url("m.bin"),
        dest,
        Some(checksum),
        &config(max_attempts),
    )
}

fn part_of(dest: &Path) -> PathBuf {
    PathBuf::from(format!("{}.part", dest.display()))
}

/// The destination holds exactly `body`, and no `.part` or `.lock` is left beside it.
fn assert_installed(dest: &Path, body: &[u8]) {
    let got = std::fs::read(dest).expect("destination readable");
    assert!(got == body, "destination content differs from served body");
    let leftovers: Vec<_> = std::fs::read_dir(dest.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != dest.file_name().unwrap())
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

const LEN: usize = 300_000;

#[test]
fn file_checksum_matches_known_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("abc");
    std::fs::write(&path, b"abc").unwrap();
    assert_eq!(
        file_checksum(&path, ChecksumKind::Sha1).unwrap(),
        "a9993e364706816aba3e25717850c26c9cd0d89d"
    );
    assert_eq!(
        file_checksum(&path, ChecksumKind::Sha256).unwrap(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let upper = Checksum::Sha1("A9993E364706816ABA3E25717850C26C9CD0D89D".into());
    assert!(upper.matches("a9993e364706816aba3e25717850c26c9cd0d89d"));
    assert!(!upper.matches("a9993e364706816aba3e25717850c26c9cd0d89e"));
}

#[test]
fn downloads_and_verifies() {
    let body = data(LEN);
    let server = Server::start(body.clone(), Mode::Normal);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("sub").join("ggml-test.bin");
    let report = download(
        &server.url("ggml-test.bin"),
        &dest,
        Some(&sha256_of(&body)),
        &config(3),
    )
    .expect("download");
    assert_eq!(report.bytes, LEN as u64);
    assert_eq!(report.resumed_from, 0);
    assert_eq!(report.attempts, 1);
    assert!(!report.already_present);
    assert_eq!(server.ranges(), vec![None]);
    assert_installed(&dest, &body);
}

#[test]
fn resumes_after_connection_drop() {
    const CUT: usize = 100_000;
    let body = data(LEN);
    let server = Server::start(
        body.clone(),
        Mode::CutFirst {
            after: CUT,
            stall: false,
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("m.bin");
    let report = pull(&server, &dest, &sha1_of(&body), 3).expect("download with resume");
    assert_eq!(server.ranges(), vec![None, Some(format!("bytes={CUT}-"))]);
    assert_eq!(report.resumed_from, CUT as u64);
    assert_eq!(report.attempts, 2);
    assert_eq!(
        server.body_bytes(),
        LEN,
        "resumed data must not be sent twice"
    );
    assert!(server.body_bytes() < 2 * LEN);
    assert_installed(&dest, &body);
}

#[test]
fn resumes_after_stall_mid_body() {
    const CUT: usize = 50_000;
    let body = data(LEN);
    let server = Server::start(
        body.clone(),
        Mode::CutFirst {
            after: CUT,
            stall: true,
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("m.bin");
    let cfg = DownloadConfig {
        read_timeout: Duration::from_secs(1),
        ..config(2)
    };
    let started = Instant::now();
    let report =
        download(&server.url("m.bin"), &dest, Some(&sha256_of(&body)), &cfg).expect("download");
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(900), "took {elapsed:?}");
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    assert_eq!(server.ranges(), vec![None, Some(format!("bytes={CUT}-"))]);
    assert_eq!(report.resumed_from, CUT as u64);
    assert_installed(&dest, &body);
}

#[test]
fn continues_part_from_an_earlier_run() {
    const HAVE: usize = 123_456;
    let body = data(LEN);
    let server = Server::start(body.clone(), Mode::Normal);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("m.bin");
    std::fs::write(part_of(&dest), &body[..HAVE]).unwrap();
    let report = pull(&server, &dest, &sha1_of(&body), 1).expect("download");
    assert_eq!(server.ranges(), vec![Some(format!("bytes={HAVE}-"))]);
    assert_eq!(report.resumed_from, HAVE as u64);
    assert_eq!(server.body_bytes(), LEN - HAVE);
    assert_installed(&dest, &body);
}

#[test]
fn server_ignoring_range_restarts_from_zero() {
    let body = data(LEN);
    let server = Server::start(body.clone(), Mode::IgnoreRange);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("m.bin");
    // Stale garbage, longer than the file: the 200 body must replace all of it.
    std::fs::write(part_of(&dest), vec![0xAB; LEN + 777]).unwrap();
    let report = pull(&server, &dest, &sha256_of(&body), 1).expect("download");
    assert_eq!(server.ranges(), vec![Some(format!("bytes={}-", LEN + 777))]);
    assert_eq!(report.resumed_from, 0);
    assert_eq!(report.bytes, LEN as u64);
    assert_installed(&dest, &body);
}

#[test]
fn complete_part_is_finished_after_416() {
    let body = data(LEN);
    let server = Server::start(body.clone(), Mode::Normal);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("m.bin");
    std::fs::write(part_of(&dest), &body).unwrap();
    let report = pull(&server, &dest, &sha1_of(&body), 1).expect("download");
    assert_eq!(server.ranges(), vec![Some(format!("bytes={LEN}-"))]);
    assert_eq!(server.body_bytes(), 0);
    assert_eq!(report.resumed_from, LEN as u64);
    assert_installed(&dest, &body);
}

#[test]
fn oversized_part_is_discarded_after_416() {
    let body = data(LEN);
    let server = Server::start(body.clone(), Mode::Normal);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("m.bin");
    std::fs::write(part_of(&dest), vec![1u8; LEN + 10]).unwrap();
    let report = pull(&server, &dest, &sha1_of(&body), 2).expect("download");
    assert_eq!(
        server.ranges(),
        vec![Some(format!("bytes={}-", LEN + 10)), None]
    );
    assert_eq!(report.attempts, 2);
    assert_installed(&dest, &body);
}

#[test]
fn checksum_mismatch_leaves_nothing() {
    let body = data(LEN);
    let server = Server::start(body.clone(), Mode::Normal);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("m.bin");
    let wrong = sha256_of(b"something else");
    let err = pull(&server, &dest, &wrong, 3).unwrap_err();
    match &err {
        DownloadError::ChecksumMismatch {
            expected, actual, ..
        } => {
            assert_eq!(*expected, wrong.to_string());
            assert_eq!(Checksum::Sha256(actual.clone()), sha256_of(&body));
        }
        other => panic!("expected ChecksumMismatch, got {other:?}"),
    }
    assert_eq!(server.ranges().len(), 1, "a mismatch is not retried");
    assert!(!dest.exists());
    assert!(!part_of(&dest).exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn corrupt_destination_is_replaced() {
    let body = data(LEN);
    let server = Server::start(body.clone(), Mode::Normal);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("m.bin");
    std::fs::write(&dest, b"not the model").unwrap();
    let report = pull(&server, &dest, &sha1_of(&body), 1).expect("download");
    assert!(!report.already_present);
    assert_eq!(server.full_gets(), 1);
    assert_installed(&dest, &body);
}

#[test]
fn not_found_is_not_retried() {
    let server = Server::start(
        Vec::new(),
        Mode::FailFirst {
            status: 404,
            count: usize::MAX,
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("missing.bin");
    let url = server.url("missing.bin");
    let err = download(&url, &dest, None, &config(5)).unwrap_err();
    assert!(
        matches!(&err, DownloadError::Http { status: 404, url: u } if *u == url),
        "got {err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("404") && msg.contains(&url) && !msg.contains('\n'));
    assert_eq!(server.ranges().len(), 1);
    assert!(!dest.exists());
}

#[test]
fn server_error_is_retried() {
    let body = data(LEN);
    let server = Server::start(
        body.clone(),
        Mode::FailFirst {
            status: 503,
            count: 2,
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("m.bin");
    let report = pull(&server, &dest, &sha1_of(&body), 3).expect("download");
    assert_eq!(report.attempts, 3);
    assert_eq!(server.ranges().len(), 3);
    assert_installed(&dest, &body);
}

#[test]
fn retries_are_bounded() {
    let server = Server::start(
        Vec::new(),
        Mode::FailFirst {
            status: 500,
            count: usize::MAX,
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("m.bin");
    let err = download(&server.url("m.bin"), &dest, None, &config(3)).unwrap_err();
    match &err {
        DownloadError::RetriesExhausted { attempts: 3, last } => {
            assert!(matches!(**last, DownloadError::Http { status: 500, .. }));
        }
        other => panic!("expected RetriesExhausted after 3, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("3 attempt") && msg.contains("500") && !msg.contains('\n'));
    assert_eq!(server.ranges().len(), 3);
    assert!(!dest.exists());
}

#[test]
fn stalled_server_times_out() {
    let server = Server::start(data(10), Mode::Stall);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("m.bin");
    let cfg = DownloadConfig {
        read_timeout: Duration::from_secs(1),
        ..config(1)
    };
    let started = Instant::now();
    let err = download(&server.url("m.bin"), &dest, None, &cfg).unwrap_err();
    let elapsed = started.elapsed();
    match &err {
        DownloadError::RetriesExhausted { attempts: 1, last } => {
            assert!(
                matches!(**last, DownloadError::Timeout { .. }),
                "got {last:?}"
            );
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    // The read timeout fired: not before its second, and long before the server's
    // 30 s stall would have ended (a bound that holds on a loaded machine too).
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(20),
        "timed out after {elapsed:?}, configured 1 s"
    );
    assert!(!dest.exists());
}

#[test]
fn concurrent_pulls_fetch_once() {
    let body = data(LEN);
    let server = Server::start(body.clone(), Mode::Slow);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("m.bin");
    let checksum = sha256_of(&body);
    let url = server.url("m.bin");
    let barrier = Barrier::new(2);
    let reports: Vec<_> = thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    download(&url, &dest, Some(&checksum), &config(1))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().expect("download"))
            .collect()
    });
    assert_eq!(server.full_gets(), 1, "the file must be fetched once");
    assert_eq!(server.ranges().len(), 1);
    let present = reports.iter().filter(|r| r.already_present).count();
    assert_eq!(present, 1, "reports: {reports:?}");
    assert!(reports.iter().all(|r| r.bytes == LEN as u64));
    assert_installed(&dest, &body);
}

#[cfg(target_os = "linux")]
#[test]
fn disk_full_is_an_io_error_naming_the_file() {
    let body = data(LEN);
    let server = Server::start(body.clone(), Mode::Normal);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("m.bin");
    // Every write to /dev/full fails with ENOSPC.
    std::os::unix::fs::symlink("/dev/full", part_of(&dest)).unwrap();
    let err = pull(&server, &dest, &sha1_of(&body), 3).unwrap_err();
    match &err {
        DownloadError::Io { path, source } => {
            assert_eq!(*path, part_of(&dest));
            assert_eq!(source.kind(), std::io::ErrorKind::StorageFull);
        }
        other => panic!("expected Io, got {other:?}"),
    }
    assert!(err.to_string().contains("m.bin.part"));
    assert_eq!(server.ranges().len(), 1, "a full disk is not retried");
    assert!(!dest.exists());
}
