#!/usr/bin/env bash
# Regenerate whisper-sys/src/bindings.rs from the pinned headers (needs libclang).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/fetch-whisper-cpp.sh" >/dev/null
cd "$root"
WHISPER_SYS_WRITE_BINDINGS=1 cargo build -p whisper-stt-tests --features regenerate-bindings --lib
echo "wrote whisper-sys/src/bindings.rs"
