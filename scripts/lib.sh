# Shared by the project's scripts; source it: . "$(dirname "$0")/lib.sh"
# (bash, sourced after `set -euo pipefail`).

# The cache root of every expensive artifact (whisper.cpp builds, test models,
# virtual environments, podman store): $WHISPER_STT_CACHE, else
# $XDG_CACHE_HOME/whisper-stt, else ~/.cache/whisper-stt.
stt_cache=${WHISPER_STT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/whisper-stt}

# --- for the test scripts

passed=0 failed=0
# expect DESCRIPTION COMMAND...: counts COMMAND's success as a pass; on a failure
# calls `on_failure` when the script defines it (to show what went wrong).
expect() {
  local what=$1
  shift
  if "$@"; then
    passed=$((passed + 1))
    printf 'ok   %s\n' "$what"
  else
    failed=$((failed + 1))
    printf 'FAIL %s\n' "$what"
    if declare -F on_failure >/dev/null; then on_failure; fi
  fi
}

# summary: prints the counts; fails when a check failed.
summary() {
  printf '%s passed, %s failed\n' "$passed" "$failed"
  [ "$failed" -eq 0 ]
}

# free_port: a TCP port of 127.0.0.1 that is free now.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# wait_ready PORT SECONDS ALIVE-COMMAND...: 0 once http://127.0.0.1:PORT/ready answers
# 200; 1 when ALIVE-COMMAND fails (the server is gone) or SECONDS pass.
wait_ready() {
  local port=$1 seconds=$2
  shift 2
  local tries=$((seconds * 10))
  for _ in $(seq 1 "$tries"); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/ready")" = 200 ] && return 0
    "$@" || return 1
    sleep 0.1
  done
  return 1
}
