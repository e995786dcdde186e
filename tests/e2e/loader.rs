//! The run-time loader against real, installed artifacts (LD_LIBRARY_PATH unset):
//! both layouts, the CPU backend swap, a pinned variant, and one specific error
//! per broken artifact directory — each in its own `stt-server info` process
//! (except where this process must look at its own mappings).

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use whisper_safe::LoaderConfig;
use whisper_stt_tests::{
    copy_dir, dynamic_artifacts, generic_artifacts, linked_artifacts, run_stt_server,
};

fn info(lib_dir: &Path, extra: &[(&str, &Path)]) -> Value {
    let mut env = vec![("WHISPER_LIB_DIR", lib_dir)];
    env.extend_from_slice(extra);
    let output = run_stt_server(&["info"], &env);
    assert!(
        output.status.success(),
        "stt-server info failed for {}: {}",
        lib_dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("info prints JSON")
}

/// Runs `stt-server info` expecting a clean failure (exit code 1, not a signal)
/// and returns stderr.
fn info_error(lib_dir: &Path, extra: &[(&str, &Path)]) -> String {
    let mut env = vec![("WHISPER_LIB_DIR", lib_dir)];
    env.extend_from_slice(extra);
    let output: Output = run_stt_server(&["info"], &env);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.code(),
        Some(1),
        "expected a clean error exit, got {:?}: {stderr}",
        output.status
    );
    assert!(output.stdout.is_empty(), "nothing on stdout on failure");
    stderr
}

fn file_names(value: &Value) -> Vec<String> {
    value
        .as_array()
        .expect("array")
        .iter()
        .map(|p| {
            Path::new(p.as_str().expect("path"))
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

fn features(info: &Value) -> String {
    info["system_info"]
        .as_str()
        .expect("system_info")
        .to_owned()
}

#[test]
fn linked_layout_loads_in_dependency_order() {
    let info = info(&linked_artifacts().join("lib"), &[]);
    assert_eq!(info["layout"], "linked");
    assert_eq!(
        file_names(&info["libraries"]),
        [
            "libggml-base.so.0",
            "libggml-cpu.so.0",
            "libggml.so.0",
            "libwhisper.so.1"
        ]
    );
    assert_eq!(info["whisper_version"], "1.8.3");
    assert_eq!(info["ggml_version"], "0.9.5");
    assert!(info["manifest"]
        .as_str()
        .unwrap()
        .ends_with("manifest.json"));
    assert_eq!(info["devices"][0]["kind"], "cpu");
}

#[test]
fn dynamic_layout_registers_the_best_variant() {
    let info = info(&dynamic_artifacts().join("lib"), &[]);
    assert_eq!(info["layout"], "dynamic");
    assert_eq!(
        file_names(&info["libraries"]),
        ["libggml-base.so.0", "libggml.so.0", "libwhisper.so.1"]
    );
    assert_eq!(
        file_names(&info["backend_modules"]),
        ["libggml-cpu-haswell.so", "libggml-cpu-x64.so"]
    );
    assert!(info["devices"].as_array().unwrap().len() == 1, "{info}");
    // This machine has AVX2 (the probe reads /proc/cpuinfo), so ggml picks haswell.
    let cpu_has_avx2 = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap()
        .contains(" avx2");
    assert_eq!(
        features(&info).contains("AVX2 = 1"),
        cpu_has_avx2,
        "{}",
        features(&info)
    );
}

#[test]
fn a_pinned_variant_is_the_only_one_registered() {
    let dir = dynamic_artifacts().join("lib");
    let x64 = PathBuf::from("x64");
    let info = info(&dir, &[("WHISPER_CPU_BACKEND", &x64)]);
    assert_eq!(file_names(&info["backend_modules"]), ["libggml-cpu-x64.so"]);
    assert!(
        !features(&info).contains("AVX"),
        "x64 variant has no AVX: {}",
        features(&info)
    );

    let missing = PathBuf::from("sapphirerapids");
    let stderr = info_error(&dir, &[("WHISPER_CPU_BACKEND", &missing)]);
    assert!(
        stderr.contains("libggml-cpu-sapphirerapids.so") && stderr.contains("does not exist"),
        "{stderr}"
    );
}

#[test]
fn swapping_only_libggml_cpu_changes_the_cpu_features() {
    let tmp = tempfile::tempdir().unwrap();
    let native = linked_artifacts();
    let generic = generic_artifacts();
    let swapped = tmp.path().join("swapped");
    copy_dir(&native.join("lib"), &swapped.join("lib"));
    std::fs::copy(
        generic.join("lib/libggml-cpu.so.0"),
        swapped.join("lib/libggml-cpu.so.0"),
    )
    .unwrap();

    let native_info = info(&native.join("lib"), &[]);
    let swapped_info = info(&swapped.join("lib"), &[]);
    assert_ne!(features(&native_info), features(&swapped_info));
    assert!(
        !features(&swapped_info).contains("AVX2"),
        "{}",
        features(&swapped_info)
    );

    // The same swap without copying files: WHISPER_CPU_BACKEND names another libggml-cpu.so.0.
    let generic_cpu = generic.join("lib/libggml-cpu.so.0");
    let pinned = info(
        &native.join("lib"),
        &[("WHISPER_CPU_BACKEND", &generic_cpu)],
    );
    assert_eq!(features(&pinned), features(&swapped_info));
    assert_eq!(
        Path::new(pinned["libraries"][1].as_str().unwrap()),
        generic_cpu
    );
}

#[test]
fn artifacts_dir_and_model_size_select_the_library_folder() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(
        &linked_artifacts().join("lib"),
        &tmp.path().join("whisper_medium_xeon/lib"),
    );
    copy_dir(&dynamic_artifacts().join("lib"), &tmp.path().join("lib"));
    let run = |size: &str| {
        let size = PathBuf::from(size);
        let output = run_stt_server(
            &["info"],
            &[
                ("WHISPER_ARTIFACTS_DIR", tmp.path()),
                ("WHISPER_MODEL_SIZE", &size),
            ],
        );
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice::<Value>(&output.stdout).unwrap()
    };
    assert_eq!(
        run("medium")["layout"],
        "linked",
        "whisper_medium_xeon/lib wins for medium"
    );
    assert_eq!(
        run("small")["layout"],
        "dynamic",
        "small falls back to <artifacts>/lib"
    );
}

#[test]
fn a_missing_directory_is_named() {
    let stderr = info_error(Path::new("/nonexistent/whisper/lib"), &[]);
    assert!(
        stderr.contains("/nonexistent/whisper/lib") && stderr.contains("WHISPER_LIB_DIR"),
        "{stderr}"
    );
}

#[test]
fn a_missing_library_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&linked_artifacts(), tmp.path());
    std::fs::remove_file(tmp.path().join("lib/libggml.so.0")).unwrap();
    let stderr = info_error(&tmp.path().join("lib"), &[]);
    assert!(
        stderr.contains("missing library") && stderr.contains("lib/libggml.so.0"),
        "{stderr}"
    );
}

#[test]
fn an_empty_directory_has_no_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let stderr = info_error(tmp.path(), &[]);
    assert!(stderr.contains("no CPU backend"), "{stderr}");
}

#[test]
fn random_bytes_named_libwhisper_give_the_dlopen_message() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&linked_artifacts(), tmp.path());
    std::fs::remove_file(tmp.path().join("manifest.json")).unwrap();
    let bytes: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(tmp.path().join("lib/libwhisper.so.1"), bytes).unwrap();
    let stderr = info_error(&tmp.path().join("lib"), &[]);
    assert!(
        stderr.contains("cannot load") && stderr.contains("libwhisper.so.1"),
        "{stderr}"
    );
    // the dynamic linker's own reason is kept, not just "dlopen failed"
    assert!(
        stderr.contains("ELF") || stderr.contains("file too short"),
        "{stderr}"
    );
}

#[test]
fn a_checksum_mismatch_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&linked_artifacts(), tmp.path());
    let lib = tmp.path().join("lib/libwhisper.so.1");
    let mut bytes = std::fs::read(&lib).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&lib, bytes).unwrap();
    let stderr = info_error(&tmp.path().join("lib"), &[]);
    assert!(
        stderr.contains("libwhisper.so.1")
            && stderr.contains("sha256")
            && stderr.contains("manifest.json"),
        "{stderr}"
    );
}

/// Builds a stand-in `libwhisper.so.1` with gcc: `whisper_version` returns
/// `version`; with `all_symbols`, every other symbol the bindings need exists too.
fn stub_whisper(dir: &Path, version: &str, all_symbols: bool) {
    let mut source = format!("const char *whisper_version(void) {{ return \"{version}\"; }}\n");
    if all_symbols {
        let bindings = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../whisper-sys/src/bindings.rs"),
        )
        .unwrap();
        for symbol in bindings
            .split(".get(b\"")
            .skip(1)
            .filter_map(|rest| rest.split("\\0").next())
        {
            if symbol != "whisper_version" {
                source.push_str(&format!("void {symbol}(void) {{}}\n"));
            }
        }
    }
    let c_file = dir.join("stub.c");
    std::fs::write(&c_file, source).unwrap();
    let status = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(dir.join("lib/libwhisper.so.1"))
        .arg(&c_file)
        .status()
        .expect("cc (gcc) is needed to build the stub library");
    assert!(status.success());
}

#[test]
fn another_whisper_version_is_refused_before_use() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&linked_artifacts(), tmp.path());
    std::fs::remove_file(tmp.path().join("manifest.json")).unwrap();
    stub_whisper(tmp.path(), "1.7.6", true);
    let stderr = info_error(&tmp.path().join("lib"), &[]);
    assert!(
        stderr.contains("libwhisper.so.1 is whisper 1.7.6") && stderr.contains("1.8.3"),
        "{stderr}"
    );
}

#[test]
fn a_library_lacking_a_symbol_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&linked_artifacts(), tmp.path());
    std::fs::remove_file(tmp.path().join("manifest.json")).unwrap();
    stub_whisper(tmp.path(), "1.8.3", false);
    let stderr = info_error(&tmp.path().join("lib"), &[]);
    assert!(
        stderr.contains("lacks a required symbol") && stderr.contains("undefined symbol"),
        "{stderr}"
    );
}

/// Whether `path` is mapped into this process.
fn mapped(path: &Path) -> bool {
    let path = path.canonicalize().unwrap();
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines()
        .any(|line| line.ends_with(path.to_str().unwrap()))
}

/// A library refused by the version or the symbol check stays mapped, like
/// every library opened before it: ggml installs process-wide hooks when it is
/// loaded, so the loader never unloads anything. Loads in this process, the
/// only one whose mappings the test can see.
#[test]
fn a_refused_library_is_never_unloaded() {
    for (version, all_symbols, expected) in [
        ("1.7.6", true, "is whisper 1.7.6"),
        ("1.8.3", false, "lacks a required symbol"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        copy_dir(&linked_artifacts(), tmp.path());
        std::fs::remove_file(tmp.path().join("manifest.json")).unwrap();
        stub_whisper(tmp.path(), version, all_symbols);
        let lib_dir = tmp.path().join("lib");
        let error = whisper_safe::init_with(&LoaderConfig::new(&lib_dir)).unwrap_err();
        assert!(error.to_string().contains(expected), "{error}");
        for name in [
            "libggml-base.so.0",
            "libggml-cpu.so.0",
            "libggml.so.0",
            "libwhisper.so.1",
        ] {
            assert!(
                mapped(&lib_dir.join(name)),
                "{name} unloaded after: {error}"
            );
        }
    }
}

#[test]
fn a_dynamic_directory_without_a_usable_backend_stops_before_any_model_load() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&dynamic_artifacts(), tmp.path());
    std::fs::remove_file(tmp.path().join("manifest.json")).unwrap();
    for variant in ["x64", "haswell"] {
        std::fs::remove_file(tmp.path().join(format!("lib/libggml-cpu-{variant}.so"))).unwrap();
    }
    std::fs::write(
        tmp.path().join("lib/libggml-cpu-bogus.so"),
        b"not a library",
    )
    .unwrap();
    let stderr = info_error(&tmp.path().join("lib"), &[]);
    assert!(stderr.contains("no ggml compute device"), "{stderr}");

    let not_a_backend = tmp.path().join("lib/libggml-base.so.0");
    let stderr = info_error(
        &tmp.path().join("lib"),
        &[("WHISPER_CPU_BACKEND", &not_a_backend)],
    );
    assert!(
        stderr.contains("could not register the backend"),
        "{stderr}"
    );
}

#[test]
fn an_unlisted_backend_module_is_refused_when_a_manifest_exists() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&dynamic_artifacts(), tmp.path());
    std::fs::copy(
        tmp.path().join("lib/libggml-cpu-x64.so"),
        tmp.path().join("lib/libggml-cpu-extra.so"),
    )
    .unwrap();
    let stderr = info_error(&tmp.path().join("lib"), &[]);
    assert!(
        stderr.contains("libggml-cpu-extra.so is not listed"),
        "{stderr}"
    );
}
