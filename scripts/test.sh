#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what it needs, builds the
# whisper.cpp artifacts and the test models (cached under ~/.cache/whisper-stt),
# then runs formatting, lints, the bindings check and every test.
#
# usage: scripts/test.sh
set -euo pipefail
. "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# Each heading carries the minutes:seconds since the start, so a slow step shows in CI logs.
step() { printf '\n=== [%d:%02d] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*" >&2; }

step "system packages"
"$root/scripts/install-deps.sh" --test

step "whisper.cpp artifacts (cached by pin and flags)"
export WHISPER_STT_TEST_LINKED WHISPER_STT_TEST_GENERIC WHISPER_STT_TEST_DYNAMIC WHISPER_STT_TEST_STOCK
WHISPER_STT_TEST_LINKED=$(scripts/build-artifacts.sh --layout linked --cpu native)
# Stock whisper.cpp, without vendor/patches: the server must still serve correctly.
WHISPER_STT_TEST_STOCK=$(scripts/build-artifacts.sh --layout linked --cpu native --patches none)
WHISPER_STT_TEST_GENERIC=$(scripts/build-artifacts.sh --layout linked --cpu generic)
WHISPER_STT_TEST_DYNAMIC=$(scripts/build-artifacts.sh --layout dynamic --variants quick)
unset LD_LIBRARY_PATH WHISPER_LIB_DIR WHISPER_ARTIFACTS_DIR WHISPER_CPU_BACKEND

step "build (release: the tests run real inference and model conversion)"
cargo build --locked --release --workspace --all-targets
export STT_SERVER_BIN="$root/target/release/stt-server"

step "test models: tiny.en and base from the registry's CTranslate2 wheels, quantized; Silero VAD (cached)"
models=$stt_cache/test-artifacts
pull() { WHISPER_LIB_DIR="$WHISPER_STT_TEST_LINKED/lib" WHISPER_MODEL_OFFLINE=1 \
  "$STT_SERVER_BIN" models pull "$@" --artifacts-dir "$models" --keep-f16 >&2; }
pull tiny.en --quant q5_1
pull base --quant q5_1
pull tiny.en --quant q8_0
pull base --quant q8_0
export WHISPER_STT_TEST_MODEL="$models/whisper_tiny.en_xeon/ggml-tiny.en-q5_1.bin"
export WHISPER_STT_TEST_MODEL_F16="$models/whisper_tiny.en_xeon/ggml-tiny.en.bin"
export WHISPER_STT_TEST_MODEL_BASE="$models/whisper_base_xeon/ggml-base-q5_1.bin"
# The default weight type, for the entrypoint and image tests (tiny.en stands in for small).
export WHISPER_STT_TEST_MODEL_Q8_0="$models/whisper_tiny.en_xeon/ggml-tiny.en-q8_0.bin"
export WHISPER_STT_TEST_MODEL_BASE_Q8_0="$models/whisper_base_xeon/ggml-base-q8_0.bin"
export WHISPER_STT_TEST_MODEL_BASE_F16="$models/whisper_base_xeon/ggml-base.bin"
# Silero VAD from the faster-whisper wheel (pip fetches it once into $stt_cache/wheels).
WHISPER_STT_CACHE=$stt_cache "$STT_SERVER_BIN" models pull silero-vad --artifacts-dir "$models" >&2
export WHISPER_STT_TEST_VAD_MODEL="$models/silero-vad/ggml-silero-v6.bin"
export WHISPER_STT_TEST_VAD_WHEEL="$stt_cache/wheels/faster_whisper-1.2.1-py3-none-any.whl"

step "format, lints, bindings"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
scripts/check-deps.sh
scripts/fetch-whisper-cpp.sh >/dev/null
cargo test --locked --release -p whisper-stt-tests --features regenerate-bindings --test bindings
# The library crates as they would be published: self-contained, docs without warnings
# (the server's crate docs too: they are its maintainers' map).
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps -p whisper-sys -p whisper-safe -p stt-server
# cargo verifies whisper-safe against the whisper-sys just packaged, as a registry
# crate, and takes a registry crate of the same version as unchanged: its extracted
# copy (under $CARGO_HOME/registry/src/-<hash>/) and its build in target/debug. Drop
# both, or an earlier whisper-sys is what whisper-safe is verified against.
rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/-*/whisper-s{ys,afe}-*
cargo clean --profile dev -p whisper-sys -p whisper-safe
cargo package --locked --allow-dirty -p whisper-sys -p whisper-safe

step "Python test tools (venv, cached by tests/python/requirements.txt)"
venv=$stt_cache/venv-tests-$(sha256sum tests/python/requirements.txt | cut -c1-16)
[ -x "$venv/bin/pytest" ] || { rm -rf "$venv" && python3 -m venv "$venv" \
  && "$venv/bin/pip" install -q -r tests/python/requirements.txt; }

step "tests"
# Library tests that load whisper.cpp (quantization) find it through WHISPER_LIB_DIR.
WHISPER_LIB_DIR="$WHISPER_STT_TEST_LINKED/lib" cargo test --locked --release --workspace

step "the server's transcription, long-audio and silence suites on stock whisper.cpp (no patches)"
WHISPER_STT_TEST_LINKED=$WHISPER_STT_TEST_STOCK cargo test --locked --release \
  -p whisper-stt-tests --test server --test longform

step "the official OpenAI client against the real server: files, live sessions, the live page in Chromium"
"$venv/bin/pytest" -q tests/python

step "bounded load test: 1000 requests from 16 clients, valid, bad and oversized (tiny.en, 2 workers)"
# Exits non-zero when any answer is not the documented one, a transcript does not
# match its clip, /metrics disagrees with the client, or memory grows.
"$root/target/release/bench" loadtest --server-bin "$STT_SERVER_BIN" \
  --lib-dir "$WHISPER_STT_TEST_LINKED/lib" --model "$WHISPER_STT_TEST_MODEL" \
  --workers 2 --threads 1 --concurrency 16 --requests 1000 \
  --clip "$root/../shared/fixtures/jfk.wav@en" --clip "$root/../shared/fixtures/jfk.mp3@en"

step "deployment manifests against the Kubernetes schemas (offline)"
scripts/validate-k8s.sh

step "entrypoint on the host"
scripts/entrypoint-test.sh

step "container image: build from the Dockerfile with podman, run and check"
scripts/podman-test.sh

step "done"
