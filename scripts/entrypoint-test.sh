#!/usr/bin/env bash
# Host-side tests of scripts/entrypoint.sh: in a temporary artifact directory with
# the built libraries and the test models, checks that WHISPER_MODEL_SIZE picks the
# folder and file, that a missing model is pulled (offline CTranslate2 import and a
# 127.0.0.1 mirror), that a corrupt model is detected and re-pulled or refused, that
# a missing library stops with the file's name, that the VAD model is pulled, copied
# from the baked one or its absence warned about, and that the server replaces the
# script (exec) and ends with exit 0 on SIGTERM.
#
# usage: scripts/entrypoint-test.sh
#
# Environment:
#   WHISPER_STT_TEST_DYNAMIC (else WHISPER_STT_TEST_LINKED)  artifact dir (lib/, manifest.json)
#   WHISPER_STT_TEST_MODEL_Q8_0       tiny.en q8_0 model (stands in for small)
#   WHISPER_STT_TEST_MODEL            tiny.en q5_1 model (the old service's weight type)
#   WHISPER_STT_TEST_MODEL_BASE_Q8_0  base q8_0 model (stands in for medium)
#   WHISPER_STT_TEST_VAD_MODEL        the Silero VAD model (`models pull silero-vad`)
#   STT_SERVER_BIN               the binary (default target/debug/stt-server)
#   WHISPER_STT_CACHE            cache root; its wheels/ serve the offline import
# Most cases run the entrypoint with a stand-in for `stt-server serve` that records
# what it was started with; `info`, `models pull` and `models verify` are the real
# binary's. One case runs the real server.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/.." && pwd)
entrypoint=$root/scripts/entrypoint.sh
die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}
artifacts_src=${WHISPER_STT_TEST_DYNAMIC:-${WHISPER_STT_TEST_LINKED:-}}
real=${STT_SERVER_BIN:-$root/target/debug/stt-server}
tiny=${WHISPER_STT_TEST_MODEL_Q8_0:-}
tiny_q5_1=${WHISPER_STT_TEST_MODEL:-}
base=${WHISPER_STT_TEST_MODEL_BASE_Q8_0:-}
[ -f "$artifacts_src/manifest.json" ] || die "WHISPER_STT_TEST_DYNAMIC or WHISPER_STT_TEST_LINKED must name an artifact directory (got '$artifacts_src')"
[ -x "$real" ] || die "$real is not an executable (cargo build -p stt-server, or set STT_SERVER_BIN)"
[ -f "$tiny" ] || die "WHISPER_STT_TEST_MODEL_Q8_0 must name the tiny.en q8_0 model (got '$tiny')"
[ -f "$tiny_q5_1" ] || die "WHISPER_STT_TEST_MODEL must name the tiny.en q5_1 model (got '$tiny_q5_1')"
[ -f "$base" ] || die "WHISPER_STT_TEST_MODEL_BASE_Q8_0 must name the base q8_0 model (got '$base')"
vad_src=${WHISPER_STT_TEST_VAD_MODEL:-}
[ -f "$vad_src" ] || die "WHISPER_STT_TEST_VAD_MODEL must name the Silero VAD model (got '$vad_src')"

t=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$t"
}
trap cleanup EXIT

# on_failure: the tail of the failed command's stderr (expect calls it).
on_failure() { [ ! -s "$t/err" ] || sed 's/^/     | /' "$t/err" | tail -n 12; }
has() { grep -qF -- "$2" "$1"; } # has FILE TEXT

# The stand-in for `stt-server serve`: records its arguments and environment.
mkdir -p "$t/bin"
cat >"$t/bin/stt-server" <<EOF
#!/usr/bin/env bash
if [ "\${1:-}" = serve ]; then
  { echo "argv: \$*"; env | grep -E '^(WHISPER|STT)_' | sort; } >"$t/served"
  exit 0
fi
exec "$real" "\$@"
EOF
chmod +x "$t/bin/stt-server"

# fresh: a new artifact directory $t/a with the libraries, small and medium
fresh() {
  rm -rf "$t/a" "$t/served"
  mkdir -p "$t/a/whisper_small_xeon" "$t/a/whisper_medium_xeon"
  cp -a "$artifacts_src/lib" "$artifacts_src/manifest.json" "$t/a/"
  cp "$tiny" "$t/a/whisper_small_xeon/ggml-small-q8_0.bin"
  cp "$base" "$t/a/whisper_medium_xeon/ggml-medium-q8_0.bin"
}
# run_ep [VAR=VALUE...] [-- ARGS...]: the entrypoint in a clean environment with the
# stand-in server; stderr in $t/err, exit status returned
run_ep() {
  rm -f "$t/served"
  local vars=() args=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do vars+=("$1"); shift; done
  [ $# -eq 0 ] || { shift; args=("$@"); }
  env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$HOME" WHISPER_STT_CACHE="$stt_cache" \
    STT_SERVER_BIN="$t/bin/stt-server" WHISPER_ARTIFACTS_DIR="$t/a" "${vars[@]}" \
    bash "$entrypoint" "${args[@]}" >"$t/out" 2>"$t/err"
}
served_ok() { [ -f "$t/served" ] && has "$t/served" "argv: serve"; }
picked() { has "$t/err" "entrypoint: model: $t/a/$1 ("; } # picked RELATIVE-PATH
fails_with() { ! run_ep "${@:2}" && has "$t/err" "$1" && [ ! -f "$t/served" ]; }

echo "== model choice"
fresh
small_picked() { run_ep WHISPER_MODEL_SIZE=small && picked whisper_small_xeon/ggml-small-q8_0.bin && served_ok; }
expect "small: picks whisper_small_xeon/ggml-small-q8_0.bin and execs serve" small_picked
medium_picked() { run_ep WHISPER_MODEL_SIZE=medium && picked whisper_medium_xeon/ggml-medium-q8_0.bin && served_ok; }
expect "medium: picks whisper_medium_xeon/ggml-medium-q8_0.bin" medium_picked
default_small() { run_ep && picked whisper_small_xeon/ggml-small-q8_0.bin; }
expect "no WHISPER_MODEL_SIZE: the default is small" default_small
serve_flags() { run_ep WHISPER_MODEL_SIZE=small -- serve --port 9 && has "$t/served" "argv: serve --port 9"; }
expect "serve flags pass through to stt-server serve" serve_flags
size_flag() {
  run_ep WHISPER_MODEL_SIZE=small -- serve --port 9 --model-size medium \
    && picked whisper_medium_xeon/ggml-medium-q8_0.bin && has "$t/served" "argv: serve --port 9 --model-size medium"
}
expect "serve --model-size medium wins over WHISPER_MODEL_SIZE=small" size_flag
expect "--model-quant=q5_1 looks for ggml-small-q5_1.bin (missing here: stops)" \
  fails_with "model $t/a/whisper_small_xeon/ggml-small-q5_1.bin is missing" WHISPER_MODEL_SIZE=small WHISPER_MODEL_AUTO_PULL=0 -- --model-quant=q5_1
env_unchanged() {
  run_ep WHISPER_MODEL_SIZE=medium STT_WORKERS=3 && has "$t/served" WHISPER_MODEL_SIZE=medium \
    && has "$t/served" STT_WORKERS=3 && ! grep -q LD_LIBRARY_PATH "$t/served"
}
expect "the environment reaches the server unchanged (no LD_LIBRARY_PATH)" env_unchanged
cp "$tiny" "$t/explicit.bin"
explicit_path() {
  run_ep WHISPER_MODEL_SIZE=medium WHISPER_MODEL_PATH="$t/explicit.bin" \
    && has "$t/err" "model: $t/explicit.bin (" && served_ok
}
expect "WHISPER_MODEL_PATH is verified and used" explicit_path
expect "a missing WHISPER_MODEL_PATH stops with its name" \
  fails_with "WHISPER_MODEL_PATH=$t/nowhere.bin does not exist" WHISPER_MODEL_PATH="$t/nowhere.bin"

echo "== existing deployments: a file of the size already present is served"
# q5_1 ADIR SIZE: the old service's file whisper_<size>_xeon/ggml-<size>-q5_1.bin
q5_1() { mkdir -p "$t/a/whisper_$1_xeon" && cp "$tiny_q5_1" "$t/a/whisper_$1_xeon/ggml-$1-q5_1.bin"; }
present_reason() { has "$t/err" "the first file of size $1 present, in the order q8_0, q5_1, f16, q5_0, q4_0"; }
fresh
rm "$t/a/whisper_small_xeon/ggml-small-q8_0.bin"
q5_1 small
only_q5_1() {
  run_ep WHISPER_MODEL_SIZE=small WHISPER_MODEL_OFFLINE=1 && picked whisper_small_xeon/ggml-small-q5_1.bin \
    && present_reason small && served_ok && ! grep -q WHISPER_MODEL_QUANT "$t/served" \
    && [ "$(ls "$t/a/whisper_small_xeon")" = ggml-small-q5_1.bin ]
}
expect "only ggml-small-q5_1.bin, no WHISPER_MODEL_QUANT: served as it is, nothing fetched" only_q5_1
fresh
only_q8_0() { run_ep WHISPER_MODEL_SIZE=small && picked whisper_small_xeon/ggml-small-q8_0.bin && present_reason small; }
expect "only ggml-small-q8_0.bin: served, with the reason" only_q8_0
q5_1 small
both() { run_ep WHISPER_MODEL_SIZE=small && picked whisper_small_xeon/ggml-small-q8_0.bin && present_reason small; }
expect "q8_0 and q5_1 both present: the default type first" both
listed() {
  "$real" models list --artifacts-dir "$t/a" >"$t/out" 2>"$t/err" \
    && grep -E '^small +q8_0 .* \* +/' "$t/out" >/dev/null && ! grep -E '^small +q5_1 .* \* +/' "$t/out" >/dev/null
}
expect "models list marks ggml-small-q8_0.bin as the file a bare size picks" listed
named() {
  run_ep WHISPER_MODEL_SIZE=small WHISPER_MODEL_QUANT=q5_1 && picked whisper_small_xeon/ggml-small-q5_1.bin \
    && has "$t/err" "small-q5_1 (weight type named)"
}
expect "WHISPER_MODEL_QUANT=q5_1 with both present: obeyed" named
fresh
rm "$t/a/whisper_medium_xeon/ggml-medium-q8_0.bin"
q5_1 medium
expect "WHISPER_MODEL_QUANT=q8_0 absent, q5_1 present, nothing to pull: the error names both files" \
  fails_with "cannot obtain $t/a/whisper_medium_xeon/ggml-medium-q8_0.bin (WHISPER_MODEL_QUANT=q8_0" \
  WHISPER_MODEL_SIZE=medium WHISPER_MODEL_QUANT=q8_0 WHISPER_MODEL_OFFLINE=1
expect "… and says that unsetting WHISPER_MODEL_QUANT serves $t/a/whisper_medium_xeon/ggml-medium-q5_1.bin" \
  has "$t/err" "will not serve $t/a/whisper_medium_xeon/ggml-medium-q5_1.bin instead: unset WHISPER_MODEL_QUANT"

echo "== libraries"
fresh
rm "$t/a/lib/libwhisper.so.1"
expect "missing libwhisper.so.1: stops and names the file" \
  fails_with "missing library $t/a/lib/libwhisper.so.1" WHISPER_MODEL_SIZE=small
info_names_file() {
  ! env -i PATH=/usr/bin:/bin WHISPER_LIB_DIR="$t/a/lib" "$real" info >/dev/null 2>"$t/err" \
    && has "$t/err" libwhisper.so.1
}
expect "stt-server info also fails naming libwhisper.so.1" info_names_file
fresh
rm -f "$t/a/lib"/libggml-cpu*
expect "no CPU backend: stops and says so" fails_with "missing CPU backend in $t/a/lib" WHISPER_MODEL_SIZE=small
fresh
expect "WHISPER_LIB_DIR that is not a directory stops with its name" \
  fails_with "WHISPER_LIB_DIR=$t/nolib is not a directory" WHISPER_LIB_DIR="$t/nolib"
mkdir -p "$t/a/whisper_medium_xeon/lib"
expect "whisper_<size>_xeon/lib is preferred when it exists (here: empty, so it fails)" \
  fails_with "missing library $t/a/whisper_medium_xeon/lib/libggml-base.so.0" WHISPER_MODEL_SIZE=medium
fresh
printf 'garbage' >"$t/a/lib/libggml.so.0"
expect "a library that does not load: stops with the loader's reason" \
  fails_with "entrypoint: error: the libraries in $t/a/lib do not load" WHISPER_MODEL_SIZE=small

echo "== missing and corrupt models"
fresh
tiny_dst=$t/a/whisper_tiny.en_xeon/ggml-tiny.en-q8_0.bin
verifies() { "$real" models verify "$1" >/dev/null 2>&1; }
offline_pull() {
  run_ep WHISPER_MODEL_SIZE=tiny.en WHISPER_MODEL_OFFLINE=1 && verifies "$tiny_dst" \
    && picked whisper_tiny.en_xeon/ggml-tiny.en-q8_0.bin && served_ok \
    && has "$t/err" "no weight type named and no file of size tiny.en present: the default type"
}
expect "no file of tiny.en, offline: q8_0 pulled by the CTranslate2 import, verified, served" offline_pull
corrupt_repulled() {
  head -c 1000000 "$tiny" >"$tiny_dst"
  run_ep WHISPER_MODEL_SIZE=tiny.en WHISPER_MODEL_OFFLINE=1 && has "$t/err" "is not a usable model" \
    && [ -f "$tiny_dst.corrupt" ] && verifies "$tiny_dst" && served_ok
}
expect "truncated tiny.en: detected, moved to .corrupt, pulled again" corrupt_repulled
fresh
corrupt_refused() {
  head -c 1000000 "$tiny" >"$t/a/whisper_small_xeon/ggml-small-q8_0.bin"
  fails_with "cannot obtain model small at $t/a/whisper_small_xeon/ggml-small-q8_0.bin" WHISPER_MODEL_SIZE=small WHISPER_MODEL_OFFLINE=1 \
    && has "$t/err" "ggml-small-q8_0.bin is not a usable model"
}
expect "truncated small, nothing to pull offline: refused with the reason" corrupt_refused
fresh
expect "missing model with WHISPER_MODEL_AUTO_PULL=0: stops naming the file" \
  fails_with "model $t/a/whisper_base_xeon/ggml-base-q8_0.bin is missing" WHISPER_MODEL_SIZE=base WHISPER_MODEL_AUTO_PULL=0

# A mirror on 127.0.0.1 serving the quantized file under its upstream name.
mkdir -p "$t/mirror"
cp "$base" "$t/mirror/ggml-base-q8_0.bin"
port=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$t/mirror" "$port" >"$t/mirror.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
fresh
mirror_pull() {
  run_ep WHISPER_MODEL_SIZE=base WHISPER_MODEL_BASE_URL="http://127.0.0.1:$port" \
    && cmp -s "$base" "$t/a/whisper_base_xeon/ggml-base-q8_0.bin" && served_ok
}
expect "missing base: pulled from the mirror WHISPER_MODEL_BASE_URL" mirror_pull
fresh
q5_1 base
named_fetched() {
  run_ep WHISPER_MODEL_SIZE=base WHISPER_MODEL_QUANT=q8_0 WHISPER_MODEL_BASE_URL="http://127.0.0.1:$port" \
    && cmp -s "$base" "$t/a/whisper_base_xeon/ggml-base-q8_0.bin" && picked whisper_base_xeon/ggml-base-q8_0.bin
}
expect "WHISPER_MODEL_QUANT=q8_0 absent, q5_1 present: the named type is fetched and served" named_fetched

echo "== VAD model"
vad_dst=$t/a/silero-vad/ggml-silero-v6.bin
vad_pulled() {
  run_ep WHISPER_MODEL_SIZE=small WHISPER_MODEL_OFFLINE=1 && cmp -s "$vad_src" "$vad_dst" \
    && has "$t/err" "VAD model: $vad_dst (pulled, verified)" && served_ok
}
fresh
expect "missing VAD model: converted from the cached wheel, verified" vad_pulled
vad_repulled() {
  head -c 1000 "$vad_src" >"$vad_dst"
  vad_pulled && [ -f "$vad_dst.corrupt" ]
}
expect "truncated VAD model: moved to .corrupt, converted again" vad_repulled
vad_baked() {
  mkdir -p "$t/baked/silero-vad" && cp "$vad_src" "$t/baked/silero-vad/"
  run_ep WHISPER_MODEL_SIZE=small WHISPER_BAKED_DIR="$t/baked" WHISPER_MODEL_AUTO_PULL=0 \
    && cmp -s "$vad_src" "$vad_dst" && has "$t/err" "copied the one baked into the image" && served_ok
}
fresh
expect "no VAD model, one baked: copied into the artifact directory" vad_baked
vad_unobtainable() {
  # Offline from the hub, nothing cached, and no package index answering.
  run_ep WHISPER_MODEL_SIZE=small WHISPER_MODEL_OFFLINE=1 WHISPER_STT_CACHE="$t/empty-cache" \
    PIP_INDEX_URL=http://127.0.0.1:9/simple/ PIP_CONFIG_FILE=/dev/null PIP_RETRIES=0 \
    && has "$t/err" "warning: no VAD model:" && has "$t/err" "faster-whisper==1.2.1" \
    && [ ! -e "$vad_dst" ] && served_ok
}
fresh
expect "no VAD model and none obtainable: a warning naming the cause, served anyway" vad_unobtainable

echo "== other commands"
fresh
info_passes() { run_ep WHISPER_LIB_DIR="$t/a/lib" -- info && has "$t/out" '"layout"' && [ ! -f "$t/served" ]; }
expect "info passes through to stt-server info" info_passes
verify_passes() { run_ep -- models verify "$t/a/whisper_small_xeon/ggml-small-q8_0.bin" && [ ! -f "$t/served" ]; }
expect "models verify passes through" verify_passes
other_command() { run_ep -- echo hello && has "$t/out" hello; }
expect "another command is run as such" other_command

echo "== the real server"
fresh
port=$(free_port)
env -i PATH=/usr/bin:/bin HOME="$HOME" STT_SERVER_BIN="$real" WHISPER_ARTIFACTS_DIR="$t/a" \
  WHISPER_MODEL_SIZE=small STT_HOST=127.0.0.1 STT_PORT="$port" STT_WORKERS=1 STT_THREADS_PER_WORKER=1 \
  bash "$entrypoint" >"$t/serve.out" 2>"$t/err" &
pid=$!
pids+=("$pid")
ready=no
wait_ready "$port" 60 kill -0 "$pid" && ready=yes
expect "the server answers /ready 200" [ "$ready" = yes ]
exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
expect "the entrypoint's process is now the server, not a shell ($exe)" [ "$exe" = "$(readlink -f "$real")" ]
t0=$(date +%s%N)
kill -TERM "$pid" 2>/dev/null || true
code=0
wait "$pid" || code=$?
ms=$((($(date +%s%N) - t0) / 1000000))
# Both only mean something for a server that was serving.
expect "SIGTERM while serving: exit status $code, 0 expected" [ "$ready/$code" = yes/0 ]
in_time() { [ "$ready" = yes ] && [ "$ms" -lt 10000 ]; }
expect "SIGTERM while serving: ended after $ms ms, < 10 s" in_time

summary
