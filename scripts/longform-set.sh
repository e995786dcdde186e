#!/usr/bin/env bash
# Builds the long-form test set (tests/bench/longform_set.py) into the cache and
# prints its directory on stdout.
#
# usage: scripts/longform-set.sh [--short]
#
#   (default) longform_lecture, longform_meeting, longform_audiobook (10-11 min each)
#             and longform_short (2-3 min), in $stt_cache/longform-<key>
#   --short   only longform_short, in $stt_cache/longform-short-<key> (seconds to build)
#
# Each NAME.wav has NAME.txt (reference transcript) and NAME.json (per-sentence
# start/end times and the inserted silence and noise stretches). The key hashes the
# inputs and the scripts, so a change to either builds a new set. Real speech comes
# from the pocketsphinx 5.1.1 source package (PyPI, its test data) and the shared
# fixtures; synthesized speech from espeak-ng and flite (scripts/install-deps.sh).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/.." && pwd)

variant=all
case "${1:-}" in
  "") ;;
  --short) variant=short ;;
  -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
  *) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
esac
die() { echo "error: $*" >&2; exit 1; }

fixtures=$(cd "$root/../shared/fixtures" 2>/dev/null && pwd) \
  || die "speech fixtures not found at $root/../shared/fixtures"
for tool in espeak-ng flite sox python3; do
  command -v "$tool" >/dev/null || die "$tool not found (scripts/install-deps.sh installs it)"
done

sphinx_version=5.1.1
sphinx_sha256=675778b309a22dfc9b7d37f7621976bba491d2a5f8c59696bd77fd6d07271355
wheels="$stt_cache/wheels"
sdist="$wheels/pocketsphinx-$sphinx_version.tar.gz"
if [ ! -f "$sdist" ]; then
  mkdir -p "$wheels"
  python3 -m pip download -q --no-deps --no-binary pocketsphinx \
    "pocketsphinx==$sphinx_version" -d "$wheels" >&2
fi
[ "$(sha256sum "$sdist" | cut -c1-64)" = "$sphinx_sha256" ] \
  || die "$sdist does not have the expected sha256"

assembler="$root/tests/bench/longform_set.py"
key=$( { echo "$variant"; cat "$assembler" "$0"; echo "$sphinx_sha256"; \
  sha256sum "$fixtures/jfk.wav" "$fixtures/jfk.txt" | cut -c1-64; \
  espeak-ng --version; flite --version 2>&1 | head -n 2; sox --version; } | sha256sum | cut -c1-16)
if [ "$variant" = short ]; then
  set_dir="$stt_cache/longform-short-$key"
else
  set_dir="$stt_cache/longform-$key"
fi
if [ ! -f "$set_dir/.complete" ]; then
  rm -rf "$set_dir" "$set_dir.tmp"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  tar -xzf "$sdist" -C "$tmp" "pocketsphinx-$sphinx_version/test/data/librivox" \
    "pocketsphinx-$sphinx_version/test/data/goforward.raw"
  flag=()
  [ "$variant" = short ] && flag=(--short)
  echo "building the long-form set into $set_dir" >&2
  python3 "$assembler" --sphinx-data "$tmp/pocketsphinx-$sphinx_version/test/data" \
    --fixtures "$fixtures" --out "$set_dir.tmp" "${flag[@]}"
  rm -rf "$set_dir" && mv "$set_dir.tmp" "$set_dir"
  touch "$set_dir/.complete"
fi
echo "$set_dir"
