#!/usr/bin/env bash
# Builds the project image from the unchanged Dockerfile with rootful podman and
# checks the running container: health, readiness, HEALTHCHECK, non-root PID 1,
# model choice by WHISPER_MODEL_SIZE, a transcription, a graceful SIGTERM stop,
# and a clear failure when no model can be obtained.
#
# usage: scripts/podman-test.sh            (as root: installs podman with apt)
#
# Environment:
#   WHISPER_STT_TEST_MODEL_Q8_0       tiny.en q8_0 model (stands in for small)   required
#   WHISPER_STT_TEST_MODEL_BASE_Q8_0  base q8_0 model (stands in for medium)      required
#   WHISPER_STT_IMAGE_VARIANTS   CPU_VARIANTS build arg: quick (default: x64 + haswell,
#                                built in minutes) | all (the 14 of the shipped image,
#                                scripts/build-image.sh)
#   WHISPER_STT_IMAGE            image tag (default localhost/whisper-stt:test)
#   WHISPER_STT_CACHE            cache root (default ~/.cache/whisper-stt)
#
# No registry can be reached here, so the base images the Dockerfile names are local
# stand-ins, built once and kept in a private podman store under
# $WHISPER_STT_CACHE/podman (configs there too, exported through CONTAINERS_CONF and
# CONTAINERS_STORAGE_CONF; /etc is not touched):
#   debian:bookworm-slim       debootstrap --variant=minbase bookworm, podman import
#   rust:<ver>-slim-bookworm   that + gcc + the host's rustup toolchain, and the
#                              host's extra CA certificates (crates.io over HTTPS
#                              from inside the build; only in this stand-in)
# Delete the stand-ins with `podman rmi` (same environment) to rebuild them.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/.." && pwd)
pdir=$stt_cache/podman
image=${WHISPER_STT_IMAGE:-localhost/whisper-stt:test}
variants=${WHISPER_STT_IMAGE_VARIANTS:-quick}
fixtures=$root/../shared/fixtures
step() { printf '\n=== %s\n' "$*" >&2; }
die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

[ "$(id -u)" -eq 0 ] || die "run as root (rootful podman; installs packages with apt)"
model_small=${WHISPER_STT_TEST_MODEL_Q8_0:-}
model_medium=${WHISPER_STT_TEST_MODEL_BASE_Q8_0:-}
[ -f "$model_small" ] || die "WHISPER_STT_TEST_MODEL_Q8_0 must name the tiny.en q8_0 model file (got '$model_small')"
[ -f "$model_medium" ] || die "WHISPER_STT_TEST_MODEL_BASE_Q8_0 must name the base q8_0 model file (got '$model_medium')"
[ -f "$fixtures/jfk.wav" ] || die "$fixtures/jfk.wav not found"

step "packages"
missing=()
for p in podman buildah debootstrap runc curl python3; do
  command -v "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

step "private podman configuration in $pdir"
mkdir -p "$pdir/tmp"
cat >"$pdir/containers.conf" <<EOF
# crun fails on these hybrid-cgroup machines; default ulimits cannot be raised here.
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
image_copy_tmp_dir = "$pdir/tmp"
EOF
cat >"$pdir/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$pdir/storage"
runroot = "$pdir/run"
EOF
export CONTAINERS_CONF=$pdir/containers.conf CONTAINERS_STORAGE_CONF=$pdir/storage.conf
# buildah keeps RUN --mount=type=cache directories under TMPDIR.
export TMPDIR=$pdir/tmp

# The base images, by the names the Dockerfile gives them.
arg_default() { sed -n "s/^ARG $1=//p" "$root/Dockerfile" | head -n 1; }
rust_image=docker.io/library/$(arg_default RUST_IMAGE)
debian_image=docker.io/library/$(arg_default RUNTIME_IMAGE)
if [ "$rust_image" = docker.io/library/ ] || [ "$debian_image" = docker.io/library/ ]; then
  die "Dockerfile has no ARG RUST_IMAGE=/RUNTIME_IMAGE= defaults"
fi

step "stand-in $debian_image"
if podman image exists "$debian_image"; then
  echo "exists" >&2
else
  mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)
  mirror=${mirror:-http://deb.debian.org/debian}
  rootfs=$(mktemp -d "$pdir/tmp/rootfs.XXXXXX")
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$pdir/debootstrap.log" 2>&1 \
    || { tail -n 20 "$pdir/debootstrap.log" >&2; die "debootstrap failed"; }
  rm -f "$rootfs/etc/apt/sources.list"
  cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: ${mirror}
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*
  tar -C "$rootfs" --numeric-owner -cf - . \
    | podman import --change 'CMD ["bash"]' \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      - "$debian_image" >/dev/null
  rm -rf "$rootfs"
fi

step "stand-in $rust_image"
if podman image exists "$rust_image"; then
  echo "exists" >&2
else
  want=${rust_image#*rust:}
  want=${want%%-*}
  toolchain=$(rustc --print sysroot)
  have=$("$toolchain/bin/rustc" --version | cut -d' ' -f2)
  case "$have" in
    "$want" | "$want".*) ;;
    *) die "the host's rustc is $have; $rust_image needs $want (rustup toolchain install $want)" ;;
  esac
  ctx=$(mktemp -d "$pdir/tmp/rust-context.XXXXXX")
  mkdir -p "$ctx/toolchain" "$ctx/ca"
  for d in bin lib libexec etc; do cp -al "$toolchain/$d" "$ctx/toolchain/" 2>/dev/null || cp -a "$toolchain/$d" "$ctx/toolchain/"; done
  cp /usr/local/share/ca-certificates/*.crt "$ctx/ca/" 2>/dev/null || true
  cat >"$ctx/Containerfile" <<EOF
FROM $debian_image
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev \\
 && rm -rf /var/lib/apt/lists/*
COPY ca/ /usr/local/share/ca-certificates/
RUN update-ca-certificates
COPY toolchain/ /usr/local/
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo \\
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN mkdir -p /usr/local/cargo/bin && cargo --version && rustc --version
EOF
  podman build --pull=never --format docker -t "$rust_image" "$ctx" >"$pdir/rust-image.log" 2>&1 \
    || { tail -n 20 "$pdir/rust-image.log" >&2; die "building $rust_image failed"; }
  rm -rf "$ctx"
fi

step "image $image (CPU_VARIANTS=$variants)"
t0=$(date +%s)
built=yes
podman build --pull=never --format docker --build-arg "CPU_VARIANTS=$variants" \
  -t "$image" "$root" >"$pdir/image-build.log" 2>&1 || built=no
expect "image builds from the Dockerfile in $(($(date +%s) - t0)) s (log $pdir/image-build.log)" [ $built = yes ]
if [ $built = no ]; then
  tail -n 40 "$pdir/image-build.log" >&2
  summary
  exit 1
fi
# Stage images of builds older than a day only take space (the cache mounts stay).
podman image prune -f --filter until=24h >/dev/null

# The models volume: one folder per size. tiny.en and base stand in for small and
# medium, which cannot be obtained offline; the point is that WHISPER_MODEL_SIZE picks
# the folder and the file, whatever the weights are.
work=$(mktemp -d "$pdir/tmp/run.XXXXXX")
containers=()
cleanup() {
  for c in "${containers[@]}"; do podman rm -f -t 0 "$c" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT
models=$work/models
mkdir -p "$models/whisper_small_xeon" "$models/whisper_medium_xeon" "$work/empty"
cp "$model_small" "$models/whisper_small_xeon/ggml-small-q8_0.bin"
cp "$model_medium" "$models/whisper_medium_xeon/ggml-medium-q8_0.bin"
chown -R 10001:10001 "$models" "$work/empty"
chmod 755 "$work"

# wer REFERENCE_FILE HYPOTHESIS_FILE: word error rate after lowercasing and dropping punctuation
wer() { python3 "$root/tests/python/wer.py" "$1" "$2"; }
# running NAME: the container is running
running() { [ "$(podman inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" = true ]; }

step "stt-server info inside the image"
image_info() {
  local out
  out=$(podman run --rm --no-healthcheck --network host "$image" info 2>&1) && grep -q '"dynamic"' <<<"$out" && return 0
  printf '%s\n' "$out" | tail -n 10
  return 1
}
expect "stt-server info loads the image's libraries (dynamic layout)" image_info

# serve SIZE EXPECTED_FILE: run the server with WHISPER_MODEL_SIZE=SIZE and check it
serve() {
  local size=$1 file=$2 name port code uid comm loaded rate t_stop elapsed
  name=whisper-stt-test-$$-$size
  port=$(free_port)
  containers+=("$name")
  step "serve $size on port $port"
  # (podman logs that it cannot create a systemd timer for the healthcheck; it runs
  # only when called with `podman healthcheck run`, as below)
  podman run -d --name "$name" --network host -e STT_PORT="$port" -e WHISPER_MODEL_SIZE="$size" \
    -v "$models:/opt/whisper-stt/models" "$image" >/dev/null 2>"$work/run-$size.log" \
    || { cat "$work/run-$size.log"; expect "$size: podman run starts the container" false; return; }
  if ! wait_ready "$port" 240 running "$name"; then
    podman logs "$name" 2>&1 | tail -n 30
    expect "$size: /ready answers 200" false
    return
  fi
  expect "$size: /ready answers 200" true
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health")
  expect "$size: /health answers 200 (got $code)" [ "$code" = 200 ]
  expect "$size: podman healthcheck run passes" podman healthcheck run "$name"
  comm=$(podman exec "$name" cat /proc/1/comm 2>&1 || true)
  uid=$(podman exec "$name" awk '/^Uid:/ {print $2}' /proc/1/status 2>&1 || true)
  expect "$size: PID 1 is stt-server, the entrypoint exec'd (got '$comm')" [ "$comm" = stt-server ]
  expect "$size: PID 1 runs as a non-root uid (got '$uid')" grep -qx '[1-9][0-9]*' <<<"$uid"
  podman logs "$name" >"$work/logs-$size.txt" 2>&1
  expect "$size: the entrypoint picked $file" grep -q "model: /opt/whisper-stt/models/$file " "$work/logs-$size.txt"
  curl -s "http://127.0.0.1:$port/v1/models" >"$work/models-$size.json" || true
  loaded=$(python3 -c 'import json, sys; print(" ".join(m["id"] for m in json.load(open(sys.argv[1]))["data"] if m.get("loaded")))' \
    "$work/models-$size.json" 2>&1 || true)
  expect "$size: /v1/models shows $size-q8_0 loaded (got '$loaded')" [ "$loaded" = "$size-q8_0" ]
  code=$(curl -s -o "$work/jfk-$size.txt" -w '%{http_code}' "http://127.0.0.1:$port/v1/audio/transcriptions" \
    -F file=@"$fixtures/jfk.wav" -F model=whisper-1 -F response_format=text)
  rate=$(wer "$fixtures/jfk.txt" "$work/jfk-$size.txt")
  expect "$size: jfk.wav transcribed (HTTP $code), WER $rate <= 0.1: $(head -c 200 "$work/jfk-$size.txt")" \
    python3 -c "import sys; sys.exit(0 if '$code' == '200' and float('$rate') <= 0.1 else 1)"
  t_stop=$(date +%s%N)
  podman stop -t 30 "$name" >/dev/null 2>>"$work/run-$size.log"
  elapsed=$((($(date +%s%N) - t_stop) / 1000000))
  code=$(podman inspect -f '{{.State.ExitCode}}' "$name")
  expect "$size: podman stop -t 30 took $elapsed ms (< 10 s: SIGTERM, not the kill timeout)" [ "$elapsed" -lt 10000 ]
  expect "$size: exit code $code after SIGTERM (0: graceful; 137 killed, 143 died of the signal)" [ "$code" = 0 ]
}
serve small whisper_small_xeon/ggml-small-q8_0.bin
serve medium whisper_medium_xeon/ggml-medium-q8_0.bin

step "no model obtainable"
no_model() {
  local out code=0
  out=$(podman run --rm --no-healthcheck --network none -e WHISPER_MODEL_SIZE=large-v3 \
    -v "$work/empty:/opt/whisper-stt/models" "$image" 2>&1) || code=$?
  [ "$code" -ne 0 ] && grep -q "entrypoint: error: cannot obtain model large-v3" <<<"$out" && return 0
  printf 'exit %s\n%s\n' "$code" "$out" | tail -n 10
  return 1
}
expect "without network and model the container stops non-zero and says why" no_model

summary
