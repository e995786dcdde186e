#!/usr/bin/env bash
# Build whisper.cpp's shared libraries from the pinned source, with the patches in
# vendor/patches/ applied in order, and install them as an artifact directory the
# loader (whisper-sys) can open.
#
# usage: scripts/build-artifacts.sh [--layout linked|dynamic] [--cpu FLAVOUR]
#                                   [--variants all|quick] [--openmp on|off]
#                                   [--llamafile on|off] [--patches series|none]
#                                   [--out DIR] [--jobs N]
#
#   --layout linked   libggml-base, libggml-cpu, libggml, libwhisper (default)
#   --layout dynamic  libggml-base, libggml, libwhisper + libggml-cpu-<variant>.so
#                     modules registered at run time (GGML_BACKEND_DL)
#   --cpu (linked)    native (default) | generic (no AVX/AVX2/FMA/F16C) |
#                     x64 sse42 sandybridge haswell skylakex icelake alderlake ...
#   --variants (dynamic) all (default: the 14 x86-64 variants) |
#                     quick (x64 + haswell only, two small builds; for CI)
#   --openmp off      build ggml without OpenMP (-DGGML_OPENMP=OFF): ggml's own
#                     thread pool, no libgomp.so.1; tag suffix -noomp (default on)
#   --llamafile off   build without ggml's tinyBLAS matrix kernels
#                     (-DGGML_LLAMAFILE=OFF, ggml's own default); tag suffix
#                     -nollamafile (default on)
#   --patches none    build stock whisper.cpp, without vendor/patches/ (the server
#                     detects it and falls back; for tests); tag suffix -stock
#                     (default series: every patch, in order)
#   --out DIR         where to put lib/ and manifest.json
#                     (default: the cache entry itself, printed on stdout)
#
# Results are cached under ${WHISPER_STT_CACHE:-~/.cache/whisper-stt}/artifacts,
# keyed by the pin, the patches, the cmake flags and this script; a second run copies
# the cache. A patch that does not apply stops the build.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=/dev/null
. "$root/vendor/whisper-cpp.pin"

layout=linked cpu=native variants=all openmp=on llamafile=on patch_set=series out="" jobs=$(nproc)
while [ $# -gt 0 ]; do
  case "$1" in
    --layout) layout=$2; shift 2 ;;
    --cpu) cpu=$2; shift 2 ;;
    --variants) variants=$2; shift 2 ;;
    --openmp) openmp=$2; shift 2 ;;
    --llamafile) llamafile=$2; shift 2 ;;
    --patches) patch_set=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    -h|--help) sed -n '2,31p' "$0"; exit 0 ;;
    *) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

# Feature sets of the named x86-64 flavours, as in ggml's CPU variant list.
features_of() {
  case "$1" in
    x64) echo "" ;;
    sse42) echo "SSE42" ;;
    sandybridge) echo "SSE42 AVX" ;;
    ivybridge) echo "SSE42 AVX F16C" ;;
    piledriver) echo "SSE42 AVX F16C FMA" ;;
    haswell) echo "SSE42 AVX F16C FMA AVX2 BMI2" ;;
    skylakex) echo "SSE42 AVX F16C FMA AVX2 BMI2 AVX512" ;;
    cannonlake) echo "SSE42 AVX F16C FMA AVX2 BMI2 AVX512 AVX512_VBMI" ;;
    cascadelake) echo "SSE42 AVX F16C FMA AVX2 BMI2 AVX512 AVX512_VNNI" ;;
    icelake) echo "SSE42 AVX F16C FMA AVX2 BMI2 AVX512 AVX512_VBMI AVX512_VNNI" ;;
    cooperlake) echo "SSE42 AVX F16C FMA AVX2 BMI2 AVX512 AVX512_VNNI AVX512_BF16" ;;
    zen4) echo "SSE42 AVX F16C FMA AVX2 BMI2 AVX512 AVX512_VBMI AVX512_VNNI AVX512_BF16" ;;
    alderlake) echo "SSE42 AVX F16C FMA AVX2 BMI2 AVX_VNNI" ;;
    sapphirerapids) echo "SSE42 AVX F16C FMA AVX2 BMI2 AVX512 AVX512_VBMI AVX512_VNNI AVX512_BF16 AMX_TILE AMX_INT8" ;;
    *) return 1 ;;
  esac
}
# Every x86 feature switch ggml has; a flavour turns all off, then its own on.
all_features="SSE42 AVX AVX2 BMI2 AVX_VNNI FMA F16C AVX512 AVX512_VBMI AVX512_VNNI AVX512_BF16 AMX_TILE AMX_INT8"
flavour_flags() {
  local on f flags=""
  on=$(features_of "$1") || { echo "error: unknown CPU flavour '$1'" >&2; exit 2; }
  for f in $all_features; do
    if [[ " $on " == *" $f "* ]]; then flags+=" -DGGML_$f=ON"; else flags+=" -DGGML_$f=OFF"; fi
  done
  echo "-DGGML_NATIVE=OFF$flags"
}

common="-DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON -DWHISPER_BUILD_TESTS=OFF -DWHISPER_BUILD_EXAMPLES=OFF -DWHISPER_BUILD_SERVER=OFF -DGGML_BUILD_TESTS=OFF -DGGML_BUILD_EXAMPLES=OFF -DWHISPER_SDL2=OFF -DWHISPER_CURL=OFF -DCMAKE_INSTALL_LIBDIR=lib"
quick_variants=""
case "$layout" in
  linked)
    case "$cpu" in
      native) flags="$common -DGGML_NATIVE=ON" ;;
      generic) flags="$common -DGGML_NATIVE=OFF -DGGML_AVX=OFF -DGGML_AVX2=OFF -DGGML_FMA=OFF -DGGML_F16C=OFF -DGGML_BMI2=OFF -DGGML_AVX512=OFF" ;;
      *) flags="$common $(flavour_flags "$cpu")" ;;
    esac
    tag="linked-$cpu" ;;
  dynamic)
    case "$variants" in
      all) flags="$common -DGGML_BACKEND_DL=ON -DGGML_NATIVE=OFF -DGGML_CPU_ALL_VARIANTS=ON" ;;
      # quick: two variants only (x64 and haswell), each a separate build of the
      # backend module installed under its variant name; for CI and tests
      quick) quick_variants="x64 haswell"
             flags="$common -DGGML_BACKEND_DL=ON" ;;
      *) echo "error: --variants must be all or quick" >&2; exit 2 ;;
    esac
    tag="dynamic-$variants" ;;
  *) echo "error: --layout must be linked or dynamic" >&2; exit 2 ;;
esac
case "$openmp" in
  on) ;;
  off) flags="$flags -DGGML_OPENMP=OFF"; tag="$tag-noomp" ;;
  *) echo "error: --openmp must be on or off" >&2; exit 2 ;;
esac
case "$llamafile" in
  on) flags="$flags -DGGML_LLAMAFILE=ON" ;;
  off) flags="$flags -DGGML_LLAMAFILE=OFF"; tag="$tag-nollamafile" ;;
  *) echo "error: --llamafile must be on or off" >&2; exit 2 ;;
esac
patches=("$root"/vendor/patches/*.patch)
[ -e "${patches[0]}" ] || patches=()
case "$patch_set" in
  series) ;;
  none) patches=(); tag="$tag-stock" ;;
  *) echo "error: --patches must be series or none" >&2; exit 2 ;;
esac
# What whisper_stt_patch_series() (patch 0010) returns: the series' sha256 and numbers.
series=""
if [ ${#patches[@]} -gt 0 ]; then
  series="whisper-stt-patches $(cat "${patches[@]}" | sha256sum | cut -c1-16) $(
    for p in "${patches[@]}"; do basename "$p" | cut -d- -f1; done | paste -sd, -)"
fi

key=$( { cat "$root/vendor/whisper-cpp.pin" "${patches[@]}"; echo "$flags"; cat "$0"; } | sha256sum | cut -c1-16)
entry="$stt_cache/artifacts/$tag-$key"

if [ ! -f "$entry/manifest.json" ]; then
  command -v cmake >/dev/null || { echo "error: cmake not found (apt-get install cmake)" >&2; exit 1; }
  command -v patch >/dev/null || { echo "error: patch not found (apt-get install patch)" >&2; exit 1; }
  pristine=$("$root/scripts/fetch-whisper-cpp.sh")
  work=$(mktemp -d "${TMPDIR:-/tmp}/whisper-build.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  # Patch a copy: the fetched tree stays pristine for the next build and for bindgen.
  src=$work/src
  cp -a "$pristine" "$src"
  for p in "${patches[@]}"; do
    patch -p1 -d "$src" --forward --batch --no-backup-if-mismatch --reject-file=- \
      <"$p" >"$work/patch.log" 2>&1 || {
      cat "$work/patch.log" >&2
      echo "error: vendor/patches/$(basename "$p") does not apply to whisper.cpp $UPSTREAM_VERSION" >&2
      exit 1
    }
    echo "applied vendor/patches/$(basename "$p")" >&2
  done
  [ -z "$series" ] || printf '#define WHISPER_STT_PATCH_SERIES "%s"\n' "$series" >"$src/src/whisper-stt-series.h"
  # build_install NAME FLAGS: configure, build and install into $work/NAME/install
  build_install() {
    local name=$1 b=$work/$1
    echo "building whisper.cpp $UPSTREAM_VERSION ($tag${quick_variants:+, $name}) with: $2" >&2
    # shellcheck disable=SC2086
    cmake -S "$src" -B "$b/build" -DCMAKE_INSTALL_PREFIX="$b/install" $2 >"$b.configure.log" 2>&1 \
      || { tail -n 30 "$b.configure.log" >&2; exit 1; }
    cmake --build "$b/build" -j "$jobs" >"$b.build.log" 2>&1 || { tail -n 40 "$b.build.log" >&2; exit 1; }
    cmake --install "$b/build" >"$b.install.log" 2>&1 || { tail -n 20 "$b.install.log" >&2; exit 1; }
  }
  staged="$work/artifact"
  mkdir -p "$staged/lib"
  if [ -n "$quick_variants" ]; then
    for v in $quick_variants; do
      build_install "$v" "$flags $(flavour_flags "$v")"
      cp -L "$(find "$work/$v/install" -name 'libggml-cpu.so' | head -n 1)" "$staged/lib/libggml-cpu-$v.so"
    done
    installed="$work/$(echo "$quick_variants" | cut -d' ' -f1)/install"
  else
    build_install main "$flags"
    installed="$work/main/install"
  fi

  # Keep each library once, under the name the loader opens (its SONAME for the
  # linked libraries), as a regular file.
  for so in libggml-base.so.0 libggml.so.0 libwhisper.so.1; do
    cp -L "$installed/lib/$so" "$staged/lib/$so"
  done
  if [ "$layout" = linked ]; then
    cp -L "$installed/lib/libggml-cpu.so.0" "$staged/lib/"
  elif [ -z "$quick_variants" ]; then
    find "$installed" -name 'libggml-cpu-*.so' -exec cp -L {} "$staged/lib/" \;
  fi
  "$root/scripts/write-manifest.sh" "$staged" "$layout" "$tag" "$flags" "$series" "${patches[@]}" >/dev/null
  mkdir -p "$(dirname "$entry")"
  rm -rf "$entry.tmp" && mv "$staged" "$entry.tmp" && rm -rf "$entry" && mv "$entry.tmp" "$entry"
  echo "cached $tag in $entry" >&2
fi

if [ -n "$out" ] && [ "$(cd "$out" 2>/dev/null && pwd)" != "$entry" ]; then
  rm -rf "$out/lib" "$out/manifest.json"
  mkdir -p "$out"
  cp -a "$entry/lib" "$entry/manifest.json" "$out/"
  echo "$out"
else
  echo "$entry"
fi
