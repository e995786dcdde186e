//! Tests of the model downloader against a mirror on 127.0.0.1 ([`test_kit::mirror`]).

use std::path::{Path, PathBuf};
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use sha2::Digest;
use stt_server::models::download::{
    download, file_checksum, Checksum, ChecksumKind, DownloadConfig, DownloadError, DownloadReport,
};
use test_kit::mirror::{Mirror, Mode};

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
    server: &Mirror,
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
    let server = Mirror::start(body.clone(), Mode::Normal);
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
    let server = Mirror::start(
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
    let server = Mirror::start(
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
    let server = Mirror::start(body.clone(), Mode::Normal);
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
    let server = Mirror::start(body.clone(), Mode::IgnoreRange);
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
    let server = Mirror::start(body.clone(), Mode::Normal);
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
    let server = Mirror::start(body.clone(), Mode::Normal);
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
    let server = Mirror::start(body.clone(), Mode::Normal);
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
    let server = Mirror::start(body.clone(), Mode::Normal);
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
    let server = Mirror::start(
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
    let server = Mirror::start(
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
    let server = Mirror::start(
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
    let server = Mirror::start(data(10), Mode::Stall);
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
    let server = Mirror::start(body.clone(), Mode::Slow);
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
    let server = Mirror::start(body.clone(), Mode::Normal);
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
