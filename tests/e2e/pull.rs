//! `stt-server models pull` as a process, when things go wrong in the middle of a
//! download: killed and started again, or the disk fills up. The partial file is
//! never taken for a model, a later pull resumes it, and the whole file is checked
//! before it could appear under the model's name.
//!
//! The mirror ([`test_kit::mirror`]) serves our tiny.en f16 file on 127.0.0.1; for
//! the kill its first answer stops after a few megabytes and keeps the connection
//! open, as a stalled network would. Our file is imported
//! from the CTranslate2 checkpoint, so its SHA-1 is not the one upstream publishes:
//! a resumed download must complete and then be refused, never installed.
//! (Resuming into an installed file is covered by `stt-server/tests/download.rs`.)
//!
//! The full disk is a small tmpfs mounted in a private mount namespace
//! (`unshare -m`, as root), so the host's mounts are untouched.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use test_kit::mirror::{Mirror, Mode};
use whisper_stt_tests::{fixture, linked_artifacts, stt_server_bin, tiny_en_f16_model};

/// Bytes the mirror sends before it stalls its first answer.
const CUT: usize = 4 << 20;
/// The file the pull asks the mirror for.
const FILE: &str = "ggml-tiny.en.bin";

/// `stt-server models pull tiny.en --quant f16`, without the artifact directory.
const PULL_ARGS: [&str; 6] = [
    "models",
    "pull",
    "tiny.en",
    "--quant",
    "f16",
    "--no-fallback",
];

/// Makes `command` fetch from `mirror` only: no offline mode, no other source.
fn from_mirror_only<'a>(command: &'a mut Command, mirror: &Mirror) -> &'a mut Command {
    command
        .env("WHISPER_MODEL_BASE_URL", mirror.base_url())
        .env_remove("WHISPER_MODEL_OFFLINE")
        .env_remove("WHISPER_MODEL_CT2_SOURCE")
        .env_remove("WHISPER_ARTIFACTS_DIR")
        .stdin(Stdio::null())
}

/// The pull into `artifacts`, from the mirror only.
fn pull_command(mirror: &Mirror, artifacts: &Path) -> Command {
    let mut command = Command::new(stt_server_bin());
    command
        .args(PULL_ARGS)
        .arg("--artifacts-dir")
        .arg(artifacts);
    from_mirror_only(&mut command, mirror);
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
    let mirror = Mirror::start(
        body,
        Mode::CutFirst {
            after: CUT,
            stall: true,
        },
    );
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

/// Runs in a private mount namespace: mounts a tmpfs of 16 MiB on `$1`, pulls into
/// it (`$3…` is the pull command), records what it left, frees space by growing
/// the tmpfs, and pulls again. Results go to files in `$2`.
const DISK_FULL_SCRIPT: &str = r#"
set -u
dir=$1 out=$2
shift 2
mount -t tmpfs -o size=16m whisper-stt-full "$dir" || exit 90
"$@" --artifacts-dir "$dir" >"$out/first.out" 2>&1
echo $? >"$out/first.status"
find "$dir" -type f -printf '%P %s\n' | sort >"$out/first.files"
"$1" models list --artifacts-dir "$dir" >"$out/list.out" 2>&1
echo $? >"$out/list.status"
mount -o remount,size=256m "$dir" || exit 91
"$@" --artifacts-dir "$dir" >"$out/second.out" 2>&1
echo $? >"$out/second.status"
find "$dir" -type f -printf '%P %s\n' | sort >"$out/second.files"
"#;

#[test]
fn a_pull_that_fills_the_disk_fails_naming_the_file_and_resumes_when_space_is_freed() {
    let body = std::fs::read(tiny_en_f16_model()).expect("read the tiny.en f16 test model");
    assert!(
        body.len() > 32 << 20,
        "the test model outgrows the 16 MiB disk"
    );
    let mirror = Mirror::start(body, Mode::Normal);
    let mount_point = tempfile::tempdir().expect("temp dir");
    let results = tempfile::tempdir().expect("temp dir");
    let mut command = Command::new("unshare");
    command
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(DISK_FULL_SCRIPT)
        .arg("sh")
        .arg(mount_point.path())
        .arg(results.path())
        .arg(stt_server_bin())
        .args(PULL_ARGS);
    from_mirror_only(&mut command, &mirror);
    let script = command.output().expect("run unshare (util-linux)");
    assert!(
        script.status.success(),
        "the tmpfs could not be set up (needs root and unshare):\n{}",
        text(&script)
    );
    let read = |name: &str| {
        std::fs::read_to_string(results.path().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let part = format!("whisper_tiny.en_xeon/{FILE}.part");

    // 1. The pull fails on the full disk, saying which file and why.
    let first = read("first.out");
    assert_ne!(read("first.status").trim(), "0", "{first}");
    assert!(
        first.contains(&part) && first.contains("No space left on device"),
        "the error names the partial file and the cause:\n{first}"
    );
    // 2. What was received stays for a resume, under the partial name only, and
    //    nothing lists it as a model.
    let files = read("first.files");
    let part_len: u64 = files
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{part} ")))
        .unwrap_or_else(|| panic!("no {part} after the full disk:\n{files}"))
        .parse()
        .expect("size");
    assert!(part_len > 8 << 20, "{part} holds {part_len} bytes");
    assert!(
        !files
            .lines()
            .any(|l| l.starts_with(&format!("whisper_tiny.en_xeon/{FILE} "))),
        "a model file appeared on the full disk:\n{files}"
    );
    let listed = read("list.out");
    assert_eq!(read("list.status").trim(), "0", "{listed}");
    assert!(
        !listed.contains("tiny.en"),
        "models list shows the partial download:\n{listed}"
    );

    // 3. With space again the next pull resumes where the disk filled up, and the
    //    completed file, which is not upstream's, is refused and removed.
    let second = read("second.out");
    assert_ne!(read("second.status").trim(), "0", "{second}");
    assert!(
        second.contains("checksum mismatch"),
        "the resumed file is checked as a whole:\n{second}"
    );
    assert_eq!(
        mirror.ranges(),
        [None, Some(format!("bytes={part_len}-"))],
        "one request until the disk filled, then one resumed from the partial file"
    );
    let files = read("second.files");
    assert!(
        !files.contains(FILE),
        "neither a model nor a partial file is left:\n{files}"
    );
}
