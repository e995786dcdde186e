//! `Context::new` on malformed model files: an error naming the file, never an
//! abort inside whisper.cpp. Measured on whisper.cpp 1.8.3 before the whole
//! structural check moved into the library: a vocabulary larger than whisper
//! knows and a negative tensor name length end the process (SIGABRT, an
//! uncaught C++ exception); an oversized mel bank "loads" as a model without
//! weights.
//!
//! Needs the libraries (`WHISPER_STT_TEST_LINKED`, else `WHISPER_LIB_DIR`) and
//! tiny.en q5_1 (`WHISPER_STT_TEST_MODEL`); see docs/testing.md.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use whisper_safe::ggml_file::{self, FormatError, Header, Tracked};
use whisper_safe::{Context, ContextOptions, Error, LoaderConfig};

/// Offset of `n_vocab` in the header (after the magic).
const N_VOCAB_AT: usize = 4;
/// Offset of `n_audio_ctx`.
const N_AUDIO_CTX_AT: usize = 8;
/// Offset of `n_text_ctx`.
const N_TEXT_CTX_AT: usize = 24;
/// Offset of the mel bank's row count (after magic, 10 hyper-parameters and ftype).
const N_MEL_AT: usize = 48;

fn init() {
    let result = match std::env::var_os("WHISPER_STT_TEST_LINKED") {
        Some(dir) => whisper_safe::init_with(&LoaderConfig::new(PathBuf::from(dir).join("lib"))),
        None => whisper_safe::init(),
    };
    result.expect("set WHISPER_STT_TEST_LINKED (or WHISPER_LIB_DIR) to the whisper.cpp libraries");
}

fn tiny_en() -> Vec<u8> {
    let path = std::env::var_os("WHISPER_STT_TEST_MODEL")
        .expect("set WHISPER_STT_TEST_MODEL to the tiny.en q5_1 model");
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {path:?}: {e}"))
}

/// Offset of the first tensor record.
fn first_tensor(model: &[u8]) -> usize {
    let mut r = Tracked::new(model, model.len() as u64);
    Header::read(&mut r).expect("tiny.en has a sound header");
    r.pos() as usize
}

fn patched(model: &[u8], at: usize, value: i32) -> Vec<u8> {
    let mut out = model.to_vec();
    out[at..at + 4].copy_from_slice(&value.to_le_bytes());
    out
}

/// Asserts that loading `path` is an [`Error::Model`] for that path whose
/// reason contains `expected`.
fn assert_model_error(path: &Path, expected: &str) {
    match Context::new(path, &ContextOptions::default()) {
        Err(Error::Model { path: p, reason }) => {
            assert_eq!(p, path, "{reason}");
            assert!(
                reason.contains(expected),
                "{}: {reason:?} does not say {expected:?}",
                path.display()
            );
        }
        other => panic!("{}: expected a model error, got {other:?}", path.display()),
    }
}

#[test]
fn malformed_model_files_are_errors_not_aborts() {
    init();
    let model = tiny_en();
    let tensors = first_tensor(&model);
    let len = model.len();
    let mut trailing = model.clone();
    trailing.extend_from_slice(&[0; 16]);
    let mut renamed = model.clone();
    // The first tensor's name starts after n_dims, name length, type and its dims.
    let n_dims = i32::from_le_bytes(model[tensors..tensors + 4].try_into().unwrap());
    renamed[tensors + 12 + 4 * n_dims as usize] ^= 0x20;
    let huge_contexts = patched(
        &patched(&model, N_AUDIO_CTX_AT, 1 << 20),
        N_TEXT_CTX_AT,
        1 << 20,
    );

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", Vec::new(), "truncated in magic"),
        (
            "truncated-header",
            model[..100].to_vec(),
            "truncated in mel",
        ),
        ("truncated-half", model[..len / 2].to_vec(), "truncated"),
        (
            "truncated-last-byte",
            model[..len - 1].to_vec(),
            "truncated",
        ),
        ("trailing-bytes", trailing, "trailing data"),
        ("bad-magic", patched(&model, 0, 0x4655_4747), "bad magic"),
        (
            "vocabulary-larger-than-whisper-knows",
            patched(&model, N_VOCAB_AT, 51_870),
            "implausible hyper-parameters",
        ),
        (
            "vocabulary-smaller-than-its-special-tokens",
            patched(&model, N_VOCAB_AT, 50_000),
            "implausible hyper-parameters",
        ),
        (
            "mel-bank-of-2^30-rows",
            patched(&model, N_MEL_AT, 1 << 30),
            "mel filters",
        ),
        ("huge-contexts", huge_contexts, "has dims"),
        (
            "negative-tensor-name-length",
            patched(&model, tensors + 4, -1),
            "invalid tensor header",
        ),
        (
            "five-dimensional-tensor",
            patched(&model, tensors, 5),
            "invalid tensor header",
        ),
        (
            "unknown-tensor-type",
            patched(&model, tensors + 8, 4),
            "unknown ggml type",
        ),
        ("renamed-tensor", renamed, "unknown tensor"),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes, expected) in cases {
        let path = dir.path().join(format!("{name}.bin"));
        std::fs::write(&path, bytes).unwrap();
        assert_model_error(&path, expected);
    }

    // Header-only files claiming huge dimensions: refused, or truncated where
    // the data would have to be, without allocating for it.
    let header = |state: i32, ctx: i32| {
        let mut out = ggml_file::MAGIC.to_le_bytes().to_vec();
        for v in [51_864, ctx, state, 1, 1, ctx, state, 1, 1, 80, 1] {
            out.extend_from_slice(&i32::to_le_bytes(v));
        }
        out.extend_from_slice(&80i32.to_le_bytes());
        out.extend_from_slice(&(ggml_file::N_FFT_BINS as i32).to_le_bytes());
        out.extend_from_slice(&vec![0; 80 * ggml_file::N_FFT_BINS * 4]);
        out.extend_from_slice(&0i32.to_le_bytes());
        out
    };
    for (name, bytes, expected) in [
        ("state-2^20", header(1 << 20, 1500), "tensor(s) missing"),
        (
            "state-2^30",
            header(1 << 30, 1500),
            "implausible hyper-parameters",
        ),
        (
            "context-2^31-1",
            header(384, i32::MAX),
            "implausible hyper-parameters",
        ),
    ] {
        let path = dir.path().join(format!("{name}.bin"));
        std::fs::write(&path, bytes).unwrap();
        assert_model_error(&path, expected);
    }

    assert_model_error(&dir.path().join("missing.bin"), "No such file");
    assert_model_error(dir.path(), "not a regular file");

    // Opening a FIFO for reading waits for a writer: refused without opening.
    let fifo = dir.path().join("fifo.bin");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo (coreutils)");
    assert!(status.success());
    let started = Instant::now();
    assert_model_error(&fifo, "not a regular file");
    assert!(started.elapsed() < Duration::from_secs(5));

    // The intact file still loads.
    let intact = dir.path().join("intact.bin");
    std::fs::write(&intact, &model).unwrap();
    let context = Context::new(&intact, &ContextOptions::default()).expect("load tiny.en");
    assert_eq!(context.info().n_vocab, 51_864);
}

/// Found by the `model_file` fuzz target: an 864-byte header claiming 2^20
/// layers made `verify_reader` build the expected-tensor list first, gigabytes
/// of names. Layer counts above 1024 are refused with the header; 1024 is still
/// read through (the file is then missing its tensors).
#[test]
fn ggml_header_claiming_huge_layer_counts_is_refused() {
    let header = |layers: i32| {
        let mut out = ggml_file::MAGIC.to_le_bytes().to_vec();
        for v in [51_864, 1, 1, 1, layers, 1, 1, 1, layers, 1, 1, 1] {
            out.extend_from_slice(&i32::to_le_bytes(v));
        }
        out.extend_from_slice(&(ggml_file::N_FFT_BINS as i32).to_le_bytes());
        out.extend_from_slice(&[0; ggml_file::N_FFT_BINS * 4]);
        out.extend_from_slice(&0i32.to_le_bytes());
        out
    };
    let verify = |bytes: Vec<u8>| {
        let len = bytes.len() as u64;
        ggml_file::verify_reader(std::io::Cursor::new(bytes), len).unwrap_err()
    };
    let err = verify(header(1 << 20));
    assert!(matches!(err, FormatError::BadHParams(_)), "{err}");
    match verify(header(1024)) {
        FormatError::MissingTensors { missing, seen: 0 } => {
            // 7 encoder and 4 decoder tensors outside the layers; 15 and 24 per layer.
            assert_eq!(missing.len(), 11 + (15 + 24) * 1024)
        }
        other => panic!("expected MissingTensors, got {other}"),
    }
}
