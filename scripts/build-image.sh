#!/usr/bin/env bash
# Builds the shipped image (all 14 x86-64 CPU variants of libggml-cpu) from the
# Dockerfile with podman and runs the same checks as the test suite's image, which
# has only the quick variants (x64 + haswell) so that it builds in minutes. A cold
# build of the 14 variants takes 6–26 min on 2 cores (docs/testing.md).
#
# usage: scripts/build-image.sh   (as root; the environment of scripts/podman-test.sh)
set -euo pipefail
export WHISPER_STT_IMAGE_VARIANTS=all
exec "$(dirname "$0")/podman-test.sh" "$@"
