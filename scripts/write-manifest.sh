#!/usr/bin/env bash
# Write DIR/manifest.json for an artifact directory: layout, versions, cmake flags,
# the patch series (its identity string and each patch's name and sha256; none for
# a stock build) and every file under DIR/lib with its size and sha256. The loader
# refuses a library whose sha256 differs from its manifest entry; rerun this after
# swapping a library by hand.
#
# usage: scripts/write-manifest.sh DIR [LAYOUT] [TAG] [CMAKE_FLAGS] [SERIES PATCH...]
#   LAYOUT defaults to what DIR/lib holds (libggml-cpu.so.0 → linked, else dynamic).
#   SERIES is what whisper_stt_patch_series() returns ("" for stock libraries).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=/dev/null
. "$root/vendor/whisper-cpp.pin"
dir=$1
[ -d "$dir/lib" ] || { echo "error: $dir/lib is not a directory" >&2; exit 1; }
layout=${2:-$([ -e "$dir/lib/libggml-cpu.so.0" ] && echo linked || echo dynamic)}
tag=${3:-custom}
flags=${4:-}
series=${5:-}
shift $(( $# < 5 ? $# : 5 ))

json_str() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"; }
{
  printf '{\n'
  printf '  "layout": %s,\n' "$(json_str "$layout")"
  printf '  "build": %s,\n' "$(json_str "$tag")"
  printf '  "whisper_version": %s,\n' "$(json_str "$UPSTREAM_VERSION")"
  printf '  "ggml_version": %s,\n' "$(json_str "$GGML_VERSION")"
  printf '  "source": {"crate": %s, "version": %s, "sha256": %s},\n' \
    "$(json_str "$CRATE")" "$(json_str "$CRATE_VERSION")" "$(json_str "$CRATE_SHA256")"
  printf '  "cmake_flags": ['
  sep=""
  for f in $flags; do printf '%s%s' "$sep" "$(json_str "$f")"; sep=", "; done
  printf '],\n'
  if [ -n "$series" ]; then printf '  "patch_series": %s,\n' "$(json_str "$series")"
  else printf '  "patch_series": null,\n'; fi
  printf '  "patches": ['
  sep=""
  for p in "$@"; do
    printf '%s\n    {"name": %s, "sha256": %s}' "$sep" "$(json_str "$(basename "$p")")" \
      "$(json_str "$(sha256sum "$p" | cut -d' ' -f1)")"
    sep=","
  done
  [ $# -eq 0 ] || printf '\n  '
  printf '],\n  "files": [\n'
  sep=""
  while IFS= read -r f; do
    rel=${f#"$dir"/}
    printf '%s    {"path": %s, "bytes": %s, "sha256": %s}' "$sep" "$(json_str "$rel")" \
      "$(stat -c %s "$f")" "$(json_str "$(sha256sum "$f" | cut -d' ' -f1)")"
    sep=$',\n'
  done < <(find "$dir/lib" -type f | LC_ALL=C sort)
  printf '\n  ]\n}\n'
} >"$dir/manifest.json.tmp"
mv "$dir/manifest.json.tmp" "$dir/manifest.json"
echo "$dir/manifest.json"
