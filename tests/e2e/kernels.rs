//! The numbers of patch 0009 (vendor/patches): ggml's CPU product of an f16 matrix by
//! an f32 one (the attention scores), through the suite's built libraries, against a
//! double-precision reference. `kernels/mul_mat_check.c` does the work (compiled here
//! with `cc` against the pinned ggml headers and the artifact's libggml); these tests
//! run it on each kernel the builds carry:
//!
//! - the linked native build: the AVX-512 kernel (tiles of 6 queries x 32 keys) on a CPU
//!   with AVX-512F, else the AVX2 one (or none, on a CPU without AVX2 and FMA);
//! - the dynamic layout's haswell variant: the AVX2+FMA kernel (6 x 16);
//! - its x64 variant (no SIMD): no kernel, every product takes the usual path.
//!
//! 14 shapes (2-D, 3-D with broadcast keys, whisper's permuted encoder layout and its
//! decoder's view of the KV cache; rows that are not multiples of the tiles; k = 1, 40,
//! 64, 128 and 129; 31 keys and 15 queries, below the kernel's minimum) at 1, 2 and 3
//! threads. Bounds, relative to the sum of the absolute terms of each output: the
//! kernel (queries in f32) (k + 2) * 2^-24, a worst-case bound for f32 sums (3.9e-6 at
//! k = 64; measured 3.2e-7); the usual path (queries rounded to f16) 2^-11 + the same
//! (measured 1.6e-4 on the x64 variant, 3.9e-4 at k = 1). Products expected on the
//! usual path must also exceed the kernel bound, so each product is known to have
//! taken the path its shape calls for. Before 0009 the usual path computed them all:
//! against a stock build, the 27 of the 42 products meant for the kernel fail its bound
//! (largest errors 8.7e-5 to 3.9e-4 per product).
//!
//! A wrong product fails: the program checks its own comparison first (a value at
//! twice the bound, a NaN, the f16-query product must be rejected), and
//! `a_perturbed_product_fails` runs it with one output changed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use whisper_stt_tests::{dynamic_artifacts, linked_artifacts};

/// The pinned ggml headers: `$WHISPER_CPP_SRC/ggml/include`, else the checkout's
/// `vendor/whisper.cpp` (both fetched by scripts/fetch-whisper-cpp.sh).
fn ggml_include() -> PathBuf {
    let src = std::env::var_os("WHISPER_CPP_SRC").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../vendor/whisper.cpp"),
        PathBuf::from,
    );
    let include = src.join("ggml/include");
    assert!(
        include.join("ggml-backend.h").is_file(),
        "the pinned ggml headers are not at {}: run scripts/fetch-whisper-cpp.sh (or set WHISPER_CPP_SRC)",
        include.display()
    );
    include
}

/// Compiles mul_mat_check.c against the libggml of `lib_dir` into `out_dir`.
fn build_check(lib_dir: &Path, out_dir: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("kernels/mul_mat_check.c");
    let exe = out_dir.join("mul_mat_check");
    let cc = std::env::var_os("CC").unwrap_or_else(|| "cc".into());
    let mut rpath = std::ffi::OsString::from("-Wl,-rpath,");
    rpath.push(lib_dir);
    let output = Command::new(&cc)
        .args(["-std=c11", "-O2", "-Wall", "-Wextra", "-I"])
        .arg(ggml_include())
        .arg(&source)
        .arg(lib_dir.join("libggml.so.0"))
        .arg(lib_dir.join("libggml-base.so.0"))
        // DT_RPATH (not RUNPATH): also searched for libggml's own dependencies.
        .arg("-Wl,--disable-new-dtags")
        .arg(rpath)
        .args(["-lm", "-o"])
        .arg(&exe)
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C compiler {cc:?}: {e}"));
    assert!(
        output.status.success(),
        "compiling {} failed:\n{}",
        source.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    exe
}

fn run_check(exe: &Path, args: &[&str]) -> Output {
    Command::new(exe)
        .args(args)
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()))
}

/// Runs the check and expects every product to match; prints its report.
fn check_matches(lib_dir: &Path, args: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let exe = build_check(lib_dir, tmp.path());
    let output = run_check(&exe, args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "mul_mat_check {args:?} against {} failed ({}):\n{stderr}\n{stdout}",
        lib_dir.display(),
        output.status
    );
    assert!(
        stdout.contains(", 0 failed;"),
        "no summary line in:\n{stdout}"
    );
}

fn cpu_flags() -> Vec<String> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").expect("read /proc/cpuinfo");
    cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("flags"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, flags)| flags.split_whitespace().map(str::to_owned).collect())
        .expect("a flags line in /proc/cpuinfo")
}

fn has(flags: &[String], flag: &str) -> bool {
    flags.iter().any(|f| f == flag)
}

/// The kernel of the linked native build (GGML_NATIVE: what the compiler could use on
/// this CPU).
fn native_kernel() -> &'static str {
    let flags = cpu_flags();
    if has(&flags, "avx512f") {
        "avx512"
    } else if has(&flags, "avx2") && has(&flags, "fma") {
        "avx2"
    } else {
        "none"
    }
}

#[test]
fn linked_native_build_matches_the_reference() {
    let expect = native_kernel();
    eprintln!("this CPU: the linked native build is expected with the {expect} kernel");
    check_matches(&linked_artifacts().join("lib"), &["--expect", expect]);
}

#[test]
fn dynamic_haswell_variant_matches_the_reference() {
    let flags = cpu_flags();
    assert!(
        has(&flags, "avx2") && has(&flags, "fma") && has(&flags, "f16c"),
        "this CPU lacks AVX2, FMA or F16C: the haswell variant (the AVX2 kernel) cannot run here"
    );
    let lib = dynamic_artifacts().join("lib");
    let module = lib.join("libggml-cpu-haswell.so");
    check_matches(
        &lib,
        &["--expect", "avx2", "--backend", module.to_str().unwrap()],
    );
}

#[test]
fn dynamic_x64_variant_takes_the_usual_path_and_matches() {
    let lib = dynamic_artifacts().join("lib");
    let module = lib.join("libggml-cpu-x64.so");
    check_matches(
        &lib,
        &["--expect", "none", "--backend", module.to_str().unwrap()],
    );
}

#[test]
fn a_perturbed_product_fails() {
    let lib = linked_artifacts().join("lib");
    let tmp = tempfile::tempdir().unwrap();
    let exe = build_check(&lib, tmp.path());
    let output = run_check(&exe, &["--expect", native_kernel(), "--perturb"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert_eq!(
        output.status.code(),
        Some(1),
        "a perturbed product must fail the run:\n{stderr}\n{stdout}"
    );
    assert!(stdout.contains("perturbed: output"), "{stdout}");
    // Exactly the changed output of the first product, nothing else.
    assert!(
        stderr.contains("1 of 512 outputs off") && stderr.contains("MISMATCH: 1 of 42 products"),
        "{stderr}"
    );
}
