//! `stt-server models pull` as a process, killed in the middle of a download and
//! started again: the partial file is never taken for a model, the restart resumes
//! it, and the whole file is checked before it could appear under the model's name.
//!
//! The mirror is a small HTTP server on 127.0.0.1 serving our tiny.en f16 file
//! under upstream's name; its first answer stops after a few megabytes and keeps
//! the connection open, as a stalled network would. Our file is imported from the
//! CTranslate2 checkpoint, so its SHA-1 is not the one upstream publishes: the
//! resumed download must complete and then be refused, never installed.
//! (Resuming into an installed file is covered by `stt-server/tests/download.rs`.)

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use whisper_stt_tests::{fixture, linked_artifacts, stt_server_bin, tiny_en_f16_model};

/// Bytes the mirror sends before it stalls its first answer.
const CUT: usize = 4 << 20;
/// The file the pull asks the mirror for.
const FILE: &str = "ggml-tiny.en.bin";

/// A mirror serving one file: the first request gets [`CUT`] bytes and then
/// nothing; later requests are answered in full, honouring `Range: bytes=N-`.
struct Mirror {
    addr: SocketAddr,
    ranges: Arc<Mutex<Vec<Option<String>>>>,
}

impl Mirror {
    fn start(body: Vec<u8>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local address");
        let ranges = Arc::new(Mutex::new(Vec::new()));
        let (body, seen) = (Arc::new(body), Arc::clone(&ranges));
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (body, seen) = (Arc::clone(&body), Arc::clone(&seen));
                thread::spawn(move || answer(stream, &body, &seen));
            }
        });
        Self { addr, ranges }
    }

    fn ranges(&self) -> Vec<Option<String>> {
        self.ranges.lock().unwrap().clone()
    }
}

fn answer(mut stream: TcpStream, body: &[u8], seen: &Mutex<Vec<Option<String>>>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let (mut path, mut range) = (String::new(), None);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(target) = line.strip_prefix("GET ") {
            path = target.split(' ').next().unwrap_or("").to_owned();
        } else if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("range") {
                range = Some(value.trim().to_owned());
            }
        }
    }
    if path != format!("/{FILE}") {
        let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        return;
    }
    let first = {
        let mut seen = seen.lock().unwrap();
        seen.push(range.clone());
        seen.len() == 1
    };
    let from = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0)
        .min(body.len());
    let head = if from > 0 {
        format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {from}-{}/{}\r\nConnection: close\r\n\r\n",
            body.len() - from,
            body.len() - 1,
            body.len()
        )
    } else {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
    };
    let end = if first { CUT } else { body.len() };
    if stream.write_all(head.as_bytes()).is_err() || stream.write_all(&body[from..end]).is_err() {
        return;
    }
    if first {
        // Stalled: nothing more until the client goes away.
        thread::sleep(Duration::from_secs(120));
    }
}

/// `stt-server models pull tiny.en --quant f16` from the mirror only.
fn pull_command(mirror: &Mirror, artifacts: &Path) -> Command {
    let mut command = Command::new(stt_server_bin());
    command
        .args([
            "models",
            "pull",
            "tiny.en",
            "--quant",
            "f16",
            "--no-fallback",
        ])
        .arg("--artifacts-dir")
        .arg(artifacts)
        .env("WHISPER_MODEL_BASE_URL", format!("http://{}", mirror.addr))
        .env_remove("WHISPER_MODEL_OFFLINE")
        .env_remove("WHISPER_MODEL_CT2_SOURCE")
        .env_remove("WHISPER_ARTIFACTS_DIR")
        .stdin(Stdio::null());
    command
}

fn part_of(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}.part", path.display()))
}

fn text(output: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn a_pull_killed_mid_download_is_resumed_and_its_part_never_used() {
    let body = std::fs::read(tiny_en_f16_model()).expect("read the tiny.en f16 test model");
    assert!(
        body.len() > 2 * CUT,
        "the test model is larger than the cut"
    );
    let mirror = Mirror::start(body.clone());
    let artifacts = tempfile::tempdir().expect("temp dir");
    let model = artifacts.path().join("whisper_tiny.en_xeon").join(FILE);
    let part = part_of(&model);

    // 1. The first pull receives CUT bytes, then the mirror stalls; kill it.
    let mut first = pull_command(&mirror, artifacts.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn models pull");
    let started = Instant::now();
    while std::fs::metadata(&part).map_or(0, |m| m.len()) < CUT as u64 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{} never reached {CUT} bytes",
            part.display()
        );
        assert!(first.try_wait().unwrap().is_none(), "the pull ended early");
        thread::sleep(Duration::from_millis(10));
    }
    first.kill().expect("SIGKILL the pull");
    first.wait().expect("reap the pull");

    // 2. Only the partial file exists; nothing takes it for the model.
    assert!(!model.exists(), "a killed pull left {}", model.display());
    assert_eq!(std::fs::metadata(&part).unwrap().len(), CUT as u64);
    let listed = Command::new(stt_server_bin())
        .args(["models", "list", "--artifacts-dir"])
        .arg(artifacts.path())
        .output()
        .expect("models list");
    assert!(listed.status.success(), "{}", text(&listed));
    assert!(
        !String::from_utf8_lossy(&listed.stdout).contains("tiny.en"),
        "models list shows the partial download:\n{}",
        text(&listed)
    );
    let transcribe = Command::new(stt_server_bin())
        .args([
            "transcribe",
            "--model-size",
            "tiny.en",
            "--model-quant",
            "f16",
        ])
        .arg("--artifacts-dir")
        .arg(artifacts.path())
        .arg("--lib-dir")
        .arg(linked_artifacts().join("lib"))
        .arg(fixture("jfk.wav"))
        .env_remove("WHISPER_MODEL_PATH")
        .output()
        .expect("stt-server transcribe");
    assert!(!transcribe.status.success(), "{}", text(&transcribe));
    assert!(
        String::from_utf8_lossy(&transcribe.stderr).contains(FILE),
        "the error names the missing model file:\n{}",
        text(&transcribe)
    );

    // 3. The restart resumes from the partial file (its lock died with the
    //    process), completes it, checks the whole file against upstream's SHA-1
    //    and refuses it: nothing is installed and the partial data is gone.
    let second = pull_command(&mirror, artifacts.path())
        .output()
        .expect("run models pull");
    assert!(!second.status.success(), "{}", text(&second));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("checksum mismatch") && stderr.contains("expected sha1:"),
        "the error says the checksum does not match:\n{}",
        text(&second)
    );
    assert_eq!(
        mirror.ranges(),
        [None, Some(format!("bytes={CUT}-"))],
        "one cut request, then one resumed from the partial file"
    );
    assert!(!model.exists(), "a mismatching file was installed");
    assert!(!part.exists(), "{} is left behind", part.display());
}
