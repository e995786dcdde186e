#!/usr/bin/env bash
# Fetch the pinned whisper.cpp source from the crates.io package named in
# vendor/whisper-cpp.pin, verify it, and unpack it.
#
# usage: scripts/fetch-whisper-cpp.sh [DEST]
#   DEST defaults to $WHISPER_CPP_SRC, else vendor/whisper.cpp (git-ignored).
# Prints the source directory on stdout. A second run with an intact DEST is a no-op.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=/dev/null
. "$root/vendor/whisper-cpp.pin"
dest=${1:-${WHISPER_CPP_SRC:-$root/vendor/whisper.cpp}}
stamp="$dest/.whisper-stt-pin"
want="$CRATE-$CRATE_VERSION $CRATE_SHA256"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "$dest"
  exit 0
fi

cache=$stt_cache/pin-$CRATE-$CRATE_VERSION
mkdir -p "$cache/src"
cat >"$cache/Cargo.toml" <<TOML
[package]
name = "whisper-stt-pin-fetch"
version = "0.0.0"
edition = "2021"
publish = false
[dependencies]
$CRATE = "=$CRATE_VERSION"
[workspace]
TOML
: >"$cache/src/lib.rs"
echo "fetching $CRATE $CRATE_VERSION from the registry" >&2
(cd "$cache" && cargo fetch --quiet >&2)

cargo_home=${CARGO_HOME:-$HOME/.cargo}
crate_file=$(find "$cargo_home/registry/cache" -name "$CRATE-$CRATE_VERSION.crate" | head -n 1)
if [ -z "$crate_file" ]; then
  echo "error: $CRATE-$CRATE_VERSION.crate not found under $cargo_home/registry/cache after cargo fetch" >&2
  exit 1
fi
got=$(sha256sum "$crate_file" | cut -d' ' -f1)
if [ "$got" != "$CRATE_SHA256" ]; then
  echo "error: $crate_file has sha256 $got, the pin says $CRATE_SHA256" >&2
  exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar -xzf "$crate_file" -C "$tmp"
src="$tmp/$CRATE-$CRATE_VERSION/$CRATE_SUBDIR"
if ! grep -q "project(\"whisper.cpp\" VERSION $UPSTREAM_VERSION)" "$src/CMakeLists.txt"; then
  echo "error: $src/CMakeLists.txt does not declare whisper.cpp $UPSTREAM_VERSION" >&2
  exit 1
fi
rm -rf "$dest"
mkdir -p "$(dirname "$dest")"
mv "$src" "$dest"
echo "$want" >"$stamp"
echo "unpacked whisper.cpp $UPSTREAM_VERSION to $dest" >&2
echo "$dest"
