"""Starts the real stt-server for the Python tests: the binary, libraries and
model the suite built (scripts/test.sh sets STT_SERVER_BIN,
WHISPER_STT_TEST_LINKED and the model variables), on a free port of 127.0.0.1.
"""

import os
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, **env: str) -> tuple[subprocess.Popen, str]:
    """stt-server serving `model` (a path), 1 worker × 2 threads, with `env` on
    top; returns the process and its base URL once /ready answers 200. The
    port is free when chosen, but a client connection can take it before the
    server binds: the server then exits naming the address, and starts again
    on another port."""
    for _ in range(5):
        started = _start_on(free_port(), model, env)
        if started is not None:
            return started
    raise AssertionError("stt-server found its port taken 5 times")


def _start_on(port: int, model: str, env: dict) -> tuple[subprocess.Popen, str] | None:
    full = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    full.update(
        STT_HOST="127.0.0.1",
        STT_PORT=str(port),
        WHISPER_LIB_DIR=str(Path(os.environ["WHISPER_STT_TEST_LINKED"]) / "lib"),
        WHISPER_MODEL_PATH=model,
        STT_WORKERS="1",
        STT_THREADS_PER_WORKER="2",
    )
    full.update(env)
    log = tempfile.TemporaryFile()
    process = subprocess.Popen([os.environ["STT_SERVER_BIN"], "serve"], env=full, stderr=log)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            log.seek(0)
            text = log.read().decode(errors="replace")
            assert "Address already in use" in text, f"stt-server exited during start-up:\n{text}"
            return None
        try:
            with urllib.request.urlopen(base + "/ready", timeout=2) as response:
                if response.status == 200:
                    return process, base
        except OSError:
            pass
        assert time.monotonic() < deadline, "stt-server did not become ready in 120 s"
        time.sleep(0.2)


def stop_server(process: subprocess.Popen) -> None:
    """SIGTERM, and a graceful exit within 30 s."""
    process.terminate()
    assert process.wait(timeout=30) == 0, "graceful exit on SIGTERM"
