//! Shared helpers of the end-to-end tests: where the artifacts, models, fixtures
//! and binaries are, word error rate, and the leak check of the memory tests.
//!
//! `scripts/test.sh` builds the artifacts and the test models and exports their
//! paths; running the tests without it fails with a message saying so.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use whisper_safe::guard::edit_distance;
use whisper_safe::LoaderConfig;

pub mod http;
pub mod leak_check;
pub mod patch_checks;
pub mod server;
pub mod speech;

/// A path from an environment variable that `scripts/test.sh` sets.
///
/// # Panics
/// When the variable is unset or the path does not exist.
pub fn required_path(variable: &str) -> PathBuf {
    let value = std::env::var_os(variable).unwrap_or_else(|| {
        panic!("{variable} is not set: run the tests through scripts/test.sh, which builds the artifacts and models")
    });
    let path = PathBuf::from(value);
    assert!(
        path.exists(),
        "{variable}={} does not exist",
        path.display()
    );
    path
}

/// Artifact directory (with `lib/` and `manifest.json`) of the linked layout, native CPU.
pub fn linked_artifacts() -> PathBuf {
    required_path("WHISPER_STT_TEST_LINKED")
}

/// Artifact directory of the linked layout built for a generic x86-64 CPU.
pub fn generic_artifacts() -> PathBuf {
    required_path("WHISPER_STT_TEST_GENERIC")
}

/// Artifact directory of the dynamic layout (x64 and haswell variants).
pub fn dynamic_artifacts() -> PathBuf {
    required_path("WHISPER_STT_TEST_DYNAMIC")
}

/// Loads the linked artifacts' libraries into this process, once.
///
/// # Panics
/// When they do not load.
pub fn init_linked() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        whisper_safe::init_with(&LoaderConfig::new(linked_artifacts().join("lib")))
            .expect("load the linked libraries");
    });
}

/// tiny.en imported from the registry package and quantized to q5_1.
pub fn tiny_en_model() -> PathBuf {
    required_path("WHISPER_STT_TEST_MODEL")
}

/// tiny.en imported from the registry package and quantized to q8_0 (the default type).
pub fn tiny_en_q8_0_model() -> PathBuf {
    required_path("WHISPER_STT_TEST_MODEL_Q8_0")
}

/// tiny.en imported from the registry package, f16.
pub fn tiny_en_f16_model() -> PathBuf {
    required_path("WHISPER_STT_TEST_MODEL_F16")
}

/// base (multilingual) imported from the registry packages and quantized to q5_1.
pub fn base_model() -> PathBuf {
    required_path("WHISPER_STT_TEST_MODEL_BASE")
}

/// base imported from the registry packages and quantized to q8_0 (the default type).
pub fn base_q8_0_model() -> PathBuf {
    required_path("WHISPER_STT_TEST_MODEL_BASE_Q8_0")
}

/// base imported from the registry packages, f16.
pub fn base_f16_model() -> PathBuf {
    required_path("WHISPER_STT_TEST_MODEL_BASE_F16")
}

/// `../shared/fixtures` of the checkout.
pub fn fixtures() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures");
    assert!(
        dir.is_dir(),
        "speech fixtures not found at {}",
        dir.display()
    );
    dir
}

/// A fixture file.
pub fn fixture(name: &str) -> PathBuf {
    fixtures().join(name)
}

/// The reference transcript of a fixture (`jfk.wav` → `jfk.txt`).
pub fn reference(name: &str) -> String {
    let txt = fixture(name).with_extension("txt");
    std::fs::read_to_string(&txt)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", txt.display()))
        .trim()
        .to_owned()
}

/// The `stt-server` binary of this build (target/<profile>/stt-server).
///
/// # Panics
/// When it has not been built (`cargo build -p stt-server` first).
pub fn stt_server_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("STT_SERVER_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binaries live in target/<profile>/deps");
    let bin = profile_dir.join("stt-server");
    assert!(
        bin.is_file(),
        "{} not built: run `cargo build -p stt-server` first (scripts/test.sh does)",
        bin.display()
    );
    bin
}

/// Runs `stt-server` with a clean loader environment plus `env`.
pub fn run_stt_server(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut command = Command::new(stt_server_bin());
    command.args(args);
    for variable in [
        "LD_LIBRARY_PATH",
        "WHISPER_LIB_DIR",
        "WHISPER_ARTIFACTS_DIR",
        "WHISPER_MODEL_SIZE",
        "WHISPER_CPU_BACKEND",
        "WHISPER_MODEL_PATH",
    ] {
        command.env_remove(variable);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("run stt-server")
}

/// Lower-case, punctuation removed (apostrophes kept inside words), spaces collapsed.
pub fn normalize(text: &str) -> Vec<String> {
    text.to_lowercase()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '\'' {
                c
            } else {
                ' '
            }
        })
        .collect::<String>()
        .split_whitespace()
        .map(|w| w.trim_matches('\'').to_owned())
        .filter(|w| !w.is_empty())
        .collect()
}

/// Word error rate of `hypothesis` against `reference`, after [`normalize`].
pub fn word_error_rate(reference: &str, hypothesis: &str) -> f64 {
    let reference = normalize(reference);
    let hypothesis = normalize(hypothesis);
    edit_distance(&reference, &hypothesis) as f64 / reference.len().max(1) as f64
}

/// Character error rate (for languages without spaces), ignoring whitespace and punctuation.
pub fn char_error_rate(reference: &str, hypothesis: &str) -> f64 {
    let (reference, hypothesis) = (scored_chars(reference), scored_chars(hypothesis));
    edit_distance(&reference, &hypothesis) as f64 / reference.len().max(1) as f64
}

/// The units [`word_error_rate`] (words) or [`char_error_rate`] (characters) divide
/// by: weights for pooling the rates of several clips.
pub fn scored_units(text: &str, by_chars: bool) -> usize {
    if by_chars {
        scored_chars(text).len()
    } else {
        normalize(text).len()
    }
}

fn scored_chars(text: &str) -> Vec<char> {
    text.chars().filter(|c| c.is_alphanumeric()).collect()
}

/// Copies the regular files of `from` into a new directory `to` (not recursive).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let path = entry.expect("dir entry").path();
        if path.is_file() {
            std::fs::copy(&path, to.join(path.file_name().expect("file name"))).expect("copy");
        } else if path.is_dir() {
            copy_dir(&path, &to.join(path.file_name().expect("dir name")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_error_rate_ignores_case_and_punctuation() {
        assert_eq!(
            word_error_rate("And so, my fellow Americans:", "and so my fellow americans"),
            0.0
        );
        assert_eq!(word_error_rate("a b c d", "a x c"), 0.5);
        assert_eq!(char_error_rate("广州市房地产", "广州市房产"), 1.0 / 6.0);
    }
}
