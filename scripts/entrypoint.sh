#!/usr/bin/env bash
# Container entrypoint of whisper-stt: makes sure the libraries, the model and the
# VAD model are there, then replaces itself with the server (exec), so that SIGTERM
# reaches it.
#
# usage: entrypoint.sh [serve] [SERVE-FLAGS...]   check, then exec `stt-server serve`
#        entrypoint.sh info|models|transcribe ...  exec `stt-server ...` directly
#        entrypoint.sh COMMAND ...                 exec any other command (e.g. bash)
#
# Environment (as read by stt-server itself):
#   WHISPER_LIB_DIR         the libraries; else $WHISPER_ARTIFACTS_DIR/whisper_<size>_xeon/lib
#                           when it exists, else $WHISPER_ARTIFACTS_DIR/lib
#   WHISPER_ARTIFACTS_DIR   root of the model folders (default: artifacts)
#   WHISPER_MODEL_SIZE      small (default), medium, base, tiny.en, ...
#   WHISPER_MODEL_QUANT     f16, q8_0, q5_1, q5_0, q4_0; unset: a file of the size already
#                           present (q8_0, then q5_1, f16, q5_0, q4_0), else q8_0 is pulled
#   WHISPER_MODEL_PATH      an explicit model file: verified, never pulled
# and its own:
#   WHISPER_BAKED_DIR       folders of models baked into the image, used when the
#                           artifact directory has no such model
#   WHISPER_MODEL_AUTO_PULL 1 (default): pull a missing or broken model with
#                           `stt-server models pull`; 0: stop instead (for the VAD
#                           model <artifacts>/silero-vad/ggml-silero-v6.bin: warn)
#   STT_SERVER_BIN          the binary (default: stt-server on PATH)
# A model file that fails `stt-server models verify` is renamed to <file>.corrupt
# (replacing an older one) and pulled again.
set -euo pipefail

stt=${STT_SERVER_BIN:-stt-server}
say() { printf 'entrypoint: %s\n' "$*" >&2; }
fail() {
  printf 'entrypoint: error: %s\n' "$*" >&2
  exit 1
}
# last_line TEXT: the last non-empty line (the one-line reason of a failed command)
last_line() { printf '%s\n' "$1" | sed '/^[[:space:]]*$/d' | tail -n 1 | sed 's/^error: //'; }

case "${1:-serve}" in
  serve) [ $# -eq 0 ] || shift ;;
  -h | --help | -V | --version | info | models | transcribe | help) exec "$stt" "$@" ;;
  -*) ;; # flags of serve
  *)
    if command -v "$1" >/dev/null 2>&1; then exec "$@"; fi
    exec "$stt" "$@"
    ;;
esac

command -v "$stt" >/dev/null 2>&1 || fail "$stt not found (set STT_SERVER_BIN or put stt-server on PATH)"
# serve's flags win over the environment, as in stt-server: check what it will load
# (exported, for `stt-server info` and `models pull` below).
flag() { # flag NAME VALUE
  case "$1" in
    --model-size) export WHISPER_MODEL_SIZE=$2 ;;
    --model-quant) export WHISPER_MODEL_QUANT=$2 ;;
    --artifacts-dir) export WHISPER_ARTIFACTS_DIR=$2 ;;
    --lib-dir) export WHISPER_LIB_DIR=$2 ;;
    --model-path) export WHISPER_MODEL_PATH=$2 ;;
  esac
}
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    --*=*) flag "${args[i]%%=*}" "${args[i]#*=}" ;;
    --model-size | --model-quant | --artifacts-dir | --lib-dir | --model-path)
      flag "${args[i]}" "${args[i + 1]:-}"
      i=$((i + 1))
      ;;
  esac
done
artifacts=${WHISPER_ARTIFACTS_DIR:-artifacts}
size=${WHISPER_MODEL_SIZE:-small}
quant=${WHISPER_MODEL_QUANT:-}
say "model size $size, weight type ${quant:-not set (a file present, else q8_0)}, artifacts in $artifacts"

# 1. Libraries: the directory the loader picks, the three core libraries and a CPU
#    backend, then a real load through `stt-server info` (versions, checksums, dlopen).
if [ -n "${WHISPER_LIB_DIR:-}" ]; then
  lib_dir=$WHISPER_LIB_DIR
  [ -d "$lib_dir" ] || fail "WHISPER_LIB_DIR=$lib_dir is not a directory"
elif [ -d "$artifacts/whisper_${size}_xeon/lib" ]; then
  lib_dir=$artifacts/whisper_${size}_xeon/lib
else
  lib_dir=$artifacts/lib
fi
hint="check \$WHISPER_LIB_DIR or \$WHISPER_ARTIFACTS_DIR/lib"
for lib in libggml-base.so.0 libggml.so.0 libwhisper.so.1; do
  [ -f "$lib_dir/$lib" ] || fail "missing library $lib_dir/$lib ($hint)"
done
shopt -s nullglob
variants=("$lib_dir"/libggml-cpu-*.so)
shopt -u nullglob
if [ -f "$lib_dir/libggml-cpu.so.0" ]; then
  backends="linked CPU backend"
elif [ ${#variants[@]} -gt 0 ]; then
  backends="${#variants[@]} CPU variant(s)"
else
  fail "missing CPU backend in $lib_dir: neither libggml-cpu.so.0 nor libggml-cpu-<variant>.so ($hint)"
fi
if ! out=$("$stt" info 2>&1); then
  fail "the libraries in $lib_dir do not load: $(last_line "$out")"
fi
say "libraries: $lib_dir ($backends) load"

# 2. Model: explicit path, else the file of the size that stt-server picks in the
#    artifact directory (a present one unless WHISPER_MODEL_QUANT names a type), else
#    a baked copy, else pull.
model_verify() { # model_verify FILE → 0, or 1 with the reason in $reason
  local out
  if out=$("$stt" models verify "$1" 2>&1); then return 0; fi
  reason=$(last_line "$out")
  return 1
}
which_model() { # which_model DIR → the file in $model, why it in $why
  local err
  err=$(mktemp)
  if ! model=$("$stt" models which "$size" --artifacts-dir "$1" 2>"$err"); then
    why=$(last_line "$(cat "$err")")
    rm -f "$err"
    fail "cannot choose a model of size $size: $why"
  fi
  why=$(last_line "$(cat "$err")")
  rm -f "$err"
}

if [ -n "${WHISPER_MODEL_PATH:-}" ]; then
  model=$WHISPER_MODEL_PATH
  [ -e "$model" ] || fail "WHISPER_MODEL_PATH=$model does not exist"
  model_verify "$model" || fail "WHISPER_MODEL_PATH=$model is not a usable model: $reason"
else
  which_model "$artifacts"
  baked=
  if [ ! -e "$model" ] && [ -n "${WHISPER_BAKED_DIR:-}" ]; then
    wanted=$model wanted_why=$why
    which_model "$WHISPER_BAKED_DIR"
    if [ -f "$model" ]; then
      baked=$model
    else
      model=$wanted why=$wanted_why
    fi
  fi
  if [ -n "$baked" ]; then
    say "no model of size $size in $artifacts; using the model baked into the image: $why"
    model_verify "$model" || fail "baked model $model is not usable: $reason"
    export WHISPER_MODEL_PATH=$model
  else
    # A broken file is moved aside; the choice is made again (another present file,
    # or the one to pull). Each pass removes a file, so this ends.
    while [ -e "$model" ] && ! model_verify "$model"; do
      say "$model is not a usable model: $reason"
      mv -f "$model" "$model.corrupt" || fail "cannot move $model aside"
      say "moved it to $model.corrupt"
      which_model "$artifacts"
    done
    if [ ! -e "$model" ]; then
      case "${WHISPER_MODEL_AUTO_PULL:-1}" in
        0 | false | no) fail "model $model is missing and WHISPER_MODEL_AUTO_PULL=${WHISPER_MODEL_AUTO_PULL}" ;;
      esac
      say "model $model is missing ($why): stt-server models pull $size"
      if ! "$stt" models pull "$size" --artifacts-dir "$artifacts"; then
        present=$(env -u WHISPER_MODEL_QUANT "$stt" models which "$size" --artifacts-dir "$artifacts" 2>/dev/null || true)
        if [ -n "$quant" ] && [ -f "$present" ]; then
          fail "cannot obtain $model (WHISPER_MODEL_QUANT=$quant; see the messages above), and will not serve $present instead: unset WHISPER_MODEL_QUANT to serve it"
        fi
        fail "cannot obtain model $size at $model (see the messages above)"
      fi
      [ -e "$model" ] || fail "stt-server models pull succeeded but $model does not exist"
      model_verify "$model" || fail "pulled model $model is not usable: $reason"
    fi
    say "serving $why"
  fi
fi
say "model: $model ($(stat -c %s "$model") bytes, verified)"

# 3. VAD model (Silero, for long audio): present, else the baked copy, else pulled
#    (`models pull silero-vad` moves a broken file aside itself). Without it the
#    server still serves; the reason is said here.
vad=$("$stt" models which silero-vad --artifacts-dir "$artifacts" 2>/dev/null) \
  || fail "stt-server models which silero-vad failed"
baked_vad=
if [ -n "${WHISPER_BAKED_DIR:-}" ]; then
  baked_vad=$("$stt" models which silero-vad --artifacts-dir "$WHISPER_BAKED_DIR" 2>/dev/null || true)
fi
if [ ! -e "$vad" ] && [ -n "$baked_vad" ] && [ -f "$baked_vad" ]; then
  mkdir -p "$(dirname "$vad")" && cp "$baked_vad" "$vad.partial" && mv -f "$vad.partial" "$vad" \
    && say "VAD model: copied the one baked into the image"
fi
if [ -e "$vad" ] && model_verify "$vad"; then
  say "VAD model: $vad (verified)"
else
  case "${WHISPER_MODEL_AUTO_PULL:-1}" in
    0 | false | no) say "warning: VAD model $vad is missing or broken and WHISPER_MODEL_AUTO_PULL=${WHISPER_MODEL_AUTO_PULL}" ;;
    *)
      say "VAD model $vad is missing or broken: stt-server models pull silero-vad"
      if out=$("$stt" models pull silero-vad --artifacts-dir "$artifacts" 2>&1); then
        say "VAD model: $vad (pulled, verified)"
      else
        say "warning: no VAD model: $(last_line "$out")"
      fi
      ;;
  esac
fi

say "exec $stt serve $*"
exec "$stt" serve "$@"
