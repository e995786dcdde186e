#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what it needs, builds the
# whisper.cpp artifacts and the test models (cached under ~/.cache/whisper-stt),
# then runs formatting, lints, the bindings check and every test.
#
# usage: scripts/test.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
step() { printf '\n=== %s\n' "$*" >&2; }

step "system packages"
"$root/scripts/install-deps.sh"

step "whisper.cpp artifacts (cached by pin and flags)"
export WHISPER_STT_TEST_LINKED WHISPER_STT_TEST_GENERIC WHISPER_STT_TEST_DYNAMIC
WHISPER_STT_TEST_LINKED=$(scripts/build-artifacts.sh --layout linked --cpu native)
WHISPER_STT_TEST_GENERIC=$(scripts/build-artifacts.sh --layout linked --cpu generic)
WHISPER_STT_TEST_DYNAMIC=$(scripts/build-artifacts.sh --layout dynamic --variants quick)
unset LD_LIBRARY_PATH WHISPER_LIB_DIR WHISPER_ARTIFACTS_DIR WHISPER_CPU_BACKEND

step "format, lints, bindings"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
scripts/fetch-whisper-cpp.sh >/dev/null
cargo test --locked -p whisper-sys --features regenerate

step "build"
cargo build --locked --workspace --all-targets

step "tests"
cargo test --locked --workspace
