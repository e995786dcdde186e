#!/usr/bin/env bash
# Fuzzes audio decoding, the model file readers and request parsing with
# cargo-fuzz (libFuzzer + AddressSanitizer), each target for a bounded time.
#
# usage: scripts/fuzz.sh [-t SECONDS] [TARGET...]
#   -t SECONDS  time per target (default: $FUZZ_SECONDS, else 60)
#   TARGET      audio_decode, model_file, ct2_reader, request_form (default: all)
#
# Installs cargo-fuzz from crates.io if it is missing. The stable toolchain is
# used with RUSTC_BOOTSTRAP=1 for the -Z flags cargo-fuzz passes. The corpus
# grows across runs under ${WHISPER_STT_CACHE:-~/.cache/whisper-stt}/fuzz-corpus/
# <target>; seeds (made by fuzz/seeds.py from shared/fixtures and ffmpeg) are
# rewritten on each run beside it, in seeds/<target>. A crash, a leak, a timeout
# (-timeout) or an excessive allocation (-malloc_limit_mb, -rss_limit_mb) stops
# that target, leaves its input in fuzz/artifacts/<target>/ and makes the script
# exit 1 after the other targets ran. Reproduce one with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz TARGET fuzz/artifacts/TARGET/crash-…
# (cargo fuzz tmin … minimizes it).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

seconds=${FUZZ_SECONDS:-60}
while getopts "t:h" opt; do
  case $opt in
    t) seconds=$OPTARG ;;
    h) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[[ $seconds =~ ^[1-9][0-9]*$ ]] || { echo "fuzz.sh: -t needs a positive number of seconds, got '$seconds'" >&2; exit 2; }

all_targets=(audio_decode model_file ct2_reader request_form)
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  [[ " ${all_targets[*]} " == *" $t "* ]] || { echo "fuzz.sh: unknown target '$t' (known: ${all_targets[*]})" >&2; exit 2; }
done

# libFuzzer options per target: inputs no larger than the seeds need, and
# allocations far below what a small input may cause. symphonia reserves
# zeroed buffers as large as a u32 length field says (FLAC comment and picture
# blocks) before reading them: untouched address space, not memory, so the
# audio target flags only allocations beyond 4 GiB and real growth (RSS).
options() {
  case $1 in
    audio_decode) echo "-max_len=65536 -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=4096" ;;
    model_file) echo "-max_len=65536 -timeout=5 -rss_limit_mb=1024 -malloc_limit_mb=256" ;;
    ct2_reader) echo "-max_len=4096 -timeout=5 -rss_limit_mb=1024 -malloc_limit_mb=256" ;;
    request_form) echo "-max_len=1024 -timeout=5 -rss_limit_mb=1024 -malloc_limit_mb=256 -dict=fuzz/request_form.dict" ;;
  esac
}

fixtures="$root/../shared/fixtures"
[[ -f $fixtures/jfk.wav ]] || { echo "fuzz.sh: fixtures not found at $fixtures (shared/ must sit beside the repository)" >&2; exit 1; }
command -v ffmpeg >/dev/null || { echo "fuzz.sh: ffmpeg is needed for the audio seeds: scripts/install-deps.sh installs it" >&2; exit 1; }

export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz from crates.io" >&2
  cargo install --locked cargo-fuzz
fi

cache=$stt_cache/fuzz-corpus
rm -rf "$cache/seeds"
python3 fuzz/seeds.py "$cache/seeds" "$fixtures"

target_dir=${CARGO_TARGET_DIR:-$root/fuzz/target}
bin_dir="$target_dir/$(rustc -vV | sed -n 's/^host: //p')/release"
# Scratch files of the ct2_reader target (in memory where /dev/shm exists).
WHISPER_STT_FUZZ_SCRATCH=$(mktemp -d "$( [[ -d /dev/shm ]] && echo /dev/shm || echo "${TMPDIR:-/tmp}")/whisper-stt-fuzz.XXXXXX")
export WHISPER_STT_FUZZ_SCRATCH
trap 'rm -rf "$WHISPER_STT_FUZZ_SCRATCH"' EXIT
failed=()
for t in "${targets[@]}"; do
  cargo fuzz build --fuzz-dir fuzz --target-dir "$target_dir" "$t"
  mkdir -p "$cache/$t" "fuzz/artifacts/$t"
  echo "=== $t: ${seconds} s (corpus $cache/$t)" >&2
  # shellcheck disable=SC2046 # options() is a list of flags
  if ! "$bin_dir/$t" "$cache/$t" "$cache/seeds/$t" -max_total_time="$seconds" \
    -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$t/" $(options "$t"); then
    failed+=("$t")
  fi
done
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz.sh: findings in: ${failed[*]} (inputs in fuzz/artifacts/<target>/)" >&2
  exit 1
fi
echo "fuzz.sh: no findings in ${targets[*]} (${seconds} s each)" >&2
