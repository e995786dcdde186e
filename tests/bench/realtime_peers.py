"""The streaming peers of the realtime benchmark: WhisperLive 0.10.0 and
WhisperLiveKit 0.2.26 (PyPI `whisper-live==0.10.0`, `whisperlivekit==0.2.26`),
each run as its own server and fed over its own WebSocket protocol.

Both run the same CTranslate2 (faster-whisper format) Whisper model directory,
int8 on the CPU with a fixed number of threads, English, offline: the model is
loaded from the directory given, never from the Hugging Face hub
(HF_HUB_OFFLINE=1), and nothing is downloaded at start (WhisperLiveKit's
warm-up clip is a local file). Each server is a subprocess of the peer's own
Python (its venv), bound to 127.0.0.1, logging to /tmp/realtime-peer-*.log.
The peer's WhisperModel is wrapped before the server starts so that every
model it builds is device="cpu", compute_type="int8", cpu_threads=THREADS;
neither server has options for these (WhisperLive passes no thread count and
picks int8 only because no GPU is seen, WhisperLiveKit passes
compute_type="auto").

WhisperLive 0.10.0 (whisper_live/server.py, backend/base.py,
backend/faster_whisper_backend.py):
- server: TranscriptionServer().run(host, port, backend="faster_whisper",
  faster_whisper_custom_model_path=DIR, single_model=True); the model loads
  when the first client connects (wait_ready does that connection).
- client -> server: first a JSON text frame of options {uid, language, task,
  model, use_vad, send_last_n_segments, no_speech_thresh, clip_audio,
  same_output_threshold, ...} (the official client's defaults are used:
  use_vad=True, 10, 0.45, False, 10); then binary frames of 16 kHz mono
  float32 samples (audio_format "float32", the default); b"END_OF_AUDIO" ends
  the stream.
- server -> client: {"uid", "message": "SERVER_READY", "backend"} once the
  model is there; then {"uid", "segments": [{start, end, text, completed}]}:
  the last `send_last_n_segments` completed segments followed by at most one
  segment with completed=false, the current hypothesis of the audio not yet
  committed. Completed segments are final; the client keeps them (appending a
  segment whose start is at or after the last kept one's end, as the official
  client does). {"status": "WAIT"|"ERROR"|"WARNING", "message"} for trouble,
  {"message": "DISCONNECT"} at the connection time limit.
- end of stream: END_OF_AUDIO makes the server stop at once (its transcription
  thread exits and the socket closes, dropping whatever it had not done), so,
  like the official client (wait_before_disconnect), the adapter first waits
  for the server to settle: it commits a trailing hypothesis once it has come
  out unchanged more than `same_output_threshold` times in a row. See
  stream_whisperlive.

WhisperLiveKit 0.2.26 (whisperlivekit/basic_server.py, audio_processor.py,
timed_objects.py, parse_args.py):
- server: `whisperlivekit-server` (whisperlivekit.basic_server:main, uvicorn)
  with --backend faster-whisper --backend-policy localagreement|simulstreaming
  --lan en --pcm-input --warmup-file WAV. LocalAgreement: --model_dir DIR.
  SimulStreaming: the CT2 directory is only its encoder (--encoder-model-path
  DIR); its AlignAtt decoder needs PyTorch Whisper weights (cross-attention of
  the alignment heads), which the CT2 directory does not have and which cannot
  be downloaded here, so the decoder of the same model.bin is written out as a
  PyTorch checkpoint (float16 values; PyTorch runs them as float32) and given
  with --decoder-model-path and --custom-alignment-heads (from config.json).
- client -> server: WebSocket /asr?language=en; with --pcm-input the binary
  frames are raw s16le 16 kHz mono PCM (no container, FFmpeg bypassed); an
  empty binary frame ends the stream.
- server -> client: {"type": "config", "useAudioWorklet": true (PCM input),
  "mode": "full"} first; then FrontData objects {status, lines: [{speaker,
  text, start, end}], buffer_transcription, ...}: `lines` hold the committed
  (final) text of the whole session, `buffer_transcription` the hypothesis not
  yet committed after it (LocalAgreement's unconfirmed words; SimulStreaming
  commits what it emits, so its buffer stays empty). Lines of silence have
  speaker -2 and no text. {"type": "ready_to_stop"} when everything sent has
  been processed and committed, then the client closes.

Decoding is each peer's own default, untouched: WhisperLive re-transcribes
its uncommitted audio with beam 5 (faster-whisper's defaults, Silero VAD
filter); LocalAgreement also beam 5, with word timestamps, committing words
two passes agree on; SimulStreaming greedy (AlignAtt). Under load both
WhisperLive (it drops the oldest 30 s once 45 s of audio are buffered) and
LocalAgreement (it resets its buffer after 15 s without a commit) lose audio
rather than fall further behind; that shows up as missed sentences.

Installing (what worked, Python 3.11, PyPI only; PyPI's torch is the CUDA
build and does not import without the nvidia-* wheels it pulls, so each venv
is 6-8 GB):
    apt-get install portaudio19-dev   # whisper-live needs PyAudio, built from source
    python3 -m venv ~/.cache/whisper-stt/venv-peer-whisperlive-0.10.0
    ~/.cache/whisper-stt/venv-peer-whisperlive-0.10.0/bin/pip install whisper-live==0.10.0
    python3 -m venv ~/.cache/whisper-stt/venv-peer-whisperlivekit-0.2.26
    ~/.cache/whisper-stt/venv-peer-whisperlivekit-0.2.26/bin/pip install whisperlivekit==0.2.26

`on_snapshot(wall_time, partial_text, final_text)` is called after every
message received: partial_text is the whole session's text as a screen would
show it (final text, then the hypothesis), final_text only the final part.

The client part (wait_ready, stream_*) needs the standard library and
`websockets` (>= 15) only; the start functions run the peer's own Python.
"""

import asyncio
import contextlib
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
import wave
from array import array

RATE = 16000
WHISPERLIVE_VERSION = "0.10.0"
WHISPERLIVEKIT_VERSION = "0.2.26"
# Where the peers' venvs are installed (see the module's docstring).
VENV_WHISPERLIVE = os.path.expanduser(f"~/.cache/whisper-stt/venv-peer-whisperlive-{WHISPERLIVE_VERSION}")
VENV_WHISPERLIVEKIT = os.path.expanduser(f"~/.cache/whisper-stt/venv-peer-whisperlivekit-{WHISPERLIVEKIT_VERSION}")
WORK_DIR = os.path.join(tempfile.gettempdir(), "whisper-stt-peers")


class PeerError(RuntimeError):
    """The peer refused the session or reported an error."""


# --- starting the servers ---------------------------------------------------

def _peer_env(threads: int) -> dict:
    env = dict(os.environ)
    env.update({
        "HF_HUB_OFFLINE": "1",          # load from the directory, never the hub
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "CUDA_VISIBLE_DEVICES": "",     # CPU even if torch finds a GPU
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "PYTHONUNBUFFERED": "1",
    })
    return env


def _spawn(name: str, argv: list, threads: int) -> subprocess.Popen:
    """Starts a server process (no shell: the pid is the server's) with its
    output in /tmp/realtime-peer-NAME.log, its path as `.log_path` of the result."""
    log_path = os.path.join(tempfile.gettempdir(), f"realtime-peer-{name}.log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env=_peer_env(threads), cwd=tempfile.gettempdir(), start_new_session=True)
    proc.log_path = log_path
    return proc


def stop_peer(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """Ends a server started here: SIGTERM, then SIGKILL after `timeout`."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# Runs in the WhisperLive venv: argv = MODEL_DIR PORT THREADS.
_WHISPERLIVE_SERVER = r"""
import sys
model_dir, port, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
import torch
torch.set_num_threads(threads)
import whisper_live.backend.faster_whisper_backend as backend

class PinnedWhisperModel(backend.WhisperModel):
    # ServeClientFasterWhisper.create_model builds WhisperModel(path, device=...,
    # compute_type=..., local_files_only=False) without cpu_threads.
    def __init__(self, model_size_or_path, *args, **kwargs):
        kwargs.update(device="cpu", compute_type="int8", cpu_threads=threads, local_files_only=True)
        print(f"[realtime_peers] WhisperModel({model_size_or_path!r}, {kwargs})", flush=True)
        super().__init__(model_size_or_path, *args, **kwargs)

backend.WhisperModel = PinnedWhisperModel
from whisper_live.server import TranscriptionServer
TranscriptionServer().run(
    "127.0.0.1", port=port, backend="faster_whisper",
    faster_whisper_custom_model_path=model_dir, single_model=True,
    max_clients=4, max_connection_time=24 * 3600,
)
"""


def start_whisperlive(python: str, model_dir: str, port: int, threads: int) -> subprocess.Popen:
    """WhisperLive's WebSocket server on 127.0.0.1:PORT, faster_whisper
    backend, one shared model (single_model) loaded from MODEL_DIR, int8,
    THREADS CPU threads. The model loads on the first connection: call
    wait_ready("whisperlive", ...) before timing anything."""
    argv = [python, "-c", _WHISPERLIVE_SERVER, os.path.abspath(model_dir), str(port), str(threads)]
    return _spawn(f"whisperlive-{port}", argv, threads)


# Runs in the WhisperLiveKit venv: argv = THREADS then the server's own options.
_WHISPERLIVEKIT_SERVER = r"""
import sys
threads = int(sys.argv[1])
import torch
torch.set_num_threads(threads)
import faster_whisper

class PinnedWhisperModel(faster_whisper.WhisperModel):
    # LocalAgreement (FasterWhisperASR) and SimulStreaming's encoder build
    # WhisperModel(path, device="auto", compute_type="auto", ...).
    def __init__(self, model_size_or_path, *args, **kwargs):
        kwargs.update(device="cpu", compute_type="int8", cpu_threads=threads)
        print(f"[realtime_peers] WhisperModel({model_size_or_path!r}, {kwargs})", flush=True)
        super().__init__(model_size_or_path, *args, **kwargs)

faster_whisper.WhisperModel = PinnedWhisperModel   # before whisperlivekit imports it
sys.argv = ["whisperlivekit-server"] + sys.argv[2:]
from whisperlivekit.basic_server import main
main()
"""

# Runs in the WhisperLiveKit venv: argv = MODEL_DIR OUT.pt OUT.heads. Writes the
# decoder of MODEL_DIR/model.bin (CTranslate2 WhisperSpec) as an openai-whisper
# checkpoint {"dims", "model_state_dict"} and the alignment heads of
# config.json in openai-whisper's base85(gzip(bool mask)) form.
_CT2_DECODER_TO_TORCH = r"""
import base64, gzip, json, os, re, struct, sys
import numpy as np, torch
model_dir, out_pt, out_heads = sys.argv[1:4]
data = open(os.path.join(model_dir, "model.bin"), "rb").read()
pos = 0
def take(fmt):
    global pos
    value = struct.unpack_from(fmt, data, pos)[0]
    pos += struct.calcsize(fmt)
    return value
def string():
    global pos
    n = take("H")
    value = data[pos:pos + n - 1].decode()
    pos += n
    return value
DTYPES = ["float32", "int8", "int16", "int32", "float16", "bfloat16"]
version, spec, revision, count = take("I"), string(), take("I"), take("I")
assert spec == "WhisperSpec", spec
var = {}
for _ in range(count):
    name = string()
    shape = [take("I") for _ in range(take("B"))]
    dtype = DTYPES[take("B")]
    nbytes = take("I")
    assert dtype in ("float32", "float16", "int8", "int16", "int32"), (name, dtype)
    var[name] = np.frombuffer(data, dtype=dtype, count=nbytes // np.dtype(dtype).itemsize, offset=pos).reshape(shape)
    pos += nbytes
layers = lambda side: len({k.split("/")[1] for k in var if re.match(side + r"/layer_\d+/", k)})
emb, dec_pos = var["decoder/embeddings/weight"], var["decoder/position_encodings/encodings"]
dims = dict(
    n_mels=int(var["encoder/conv1/weight"].shape[1]), n_audio_ctx=int(var["encoder/position_encodings/encodings"].shape[0]),
    n_audio_state=int(var["encoder/conv1/weight"].shape[0]), n_audio_head=int(var["encoder/num_heads"]),
    n_audio_layer=layers("encoder"), n_vocab=int(emb.shape[0]), n_text_ctx=int(dec_pos.shape[0]),
    n_text_state=int(emb.shape[1]), n_text_head=int(var["decoder/num_heads"]), n_text_layer=layers("decoder"),
)
n = dims["n_text_state"]
sd = {"decoder.token_embedding.weight": emb, "decoder.positional_embedding": dec_pos,
      "decoder.ln.weight": var["decoder/layer_norm/gamma"], "decoder.ln.bias": var["decoder/layer_norm/beta"]}
def linear(dst, src, rows=slice(None), bias=True):
    sd[dst + ".weight"] = var[src + "/weight"][rows]
    if bias:
        sd[dst + ".bias"] = var[src + "/bias"][rows]
def norm(dst, src):
    sd[dst + ".weight"], sd[dst + ".bias"] = var[src + "/gamma"], var[src + "/beta"]
q, k, v = slice(0, n), slice(n, 2 * n), slice(2 * n, 3 * n)
for i in range(dims["n_text_layer"]):
    s, d = f"decoder/layer_{i}/", f"decoder.blocks.{i}."
    # self attention: fused [q; k; v]; whisper's key has no bias (a bias on the
    # keys adds a constant per query, which softmax ignores)
    linear(d + "attn.query", s + "self_attention/linear_0", q)
    linear(d + "attn.key", s + "self_attention/linear_0", k, bias=False)
    linear(d + "attn.value", s + "self_attention/linear_0", v)
    linear(d + "attn.out", s + "self_attention/linear_1")
    norm(d + "attn_ln", s + "self_attention/layer_norm")
    # cross attention: query, fused [k; v], out
    linear(d + "cross_attn.query", s + "attention/linear_0")
    linear(d + "cross_attn.key", s + "attention/linear_1", slice(0, n), bias=False)
    linear(d + "cross_attn.value", s + "attention/linear_1", slice(n, 2 * n))
    linear(d + "cross_attn.out", s + "attention/linear_2")
    norm(d + "cross_attn_ln", s + "attention/layer_norm")
    linear(d + "mlp.0", s + "ffn/linear_0")
    linear(d + "mlp.2", s + "ffn/linear_1")
    norm(d + "mlp_ln", s + "ffn/layer_norm")
state = {k: torch.from_numpy(np.ascontiguousarray(a)) for k, a in sd.items()}
tmp = out_pt + ".tmp"
torch.save({"dims": dims, "model_state_dict": state}, tmp)
os.replace(tmp, out_pt)
config = json.load(open(os.path.join(model_dir, "config.json")))
mask = np.zeros((dims["n_text_layer"], dims["n_text_head"]), dtype=bool)
for layer, head in config["alignment_heads"]:
    mask[layer, head] = True
open(out_heads, "w").write(base64.b85encode(gzip.compress(mask.tobytes(), mtime=0)).decode())
print(json.dumps(dims))
"""


def _simulstreaming_decoder(python: str, model_dir: str) -> tuple:
    """(checkpoint path, alignment heads) of MODEL_DIR's decoder for
    SimulStreaming, converted once and kept in WORK_DIR (keyed by model.bin)."""
    model_bin = os.path.join(model_dir, "model.bin")
    st = os.stat(model_bin)
    key = hashlib.sha256(f"{os.path.abspath(model_bin)}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:16]
    os.makedirs(WORK_DIR, exist_ok=True)
    # The file name (less .pt) is the model name WhisperLiveKit sees: not ".en",
    # so its tokenizer is the multilingual one, as for "base".
    out_pt = os.path.join(WORK_DIR, f"decoder-{key}.pt")
    out_heads = os.path.join(WORK_DIR, f"decoder-{key}.heads")
    if not (os.path.exists(out_pt) and os.path.exists(out_heads)):
        done = subprocess.run([python, "-c", _CT2_DECODER_TO_TORCH, model_dir, out_pt, out_heads],
                              env=_peer_env(1), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            raise PeerError(f"converting the decoder of {model_bin} failed:\n{done.stderr[-2000:]}")
    with open(out_heads) as f:
        return out_pt, f.read().strip()


def _warmup_wav() -> str:
    """A local 1.5 s clip of faint noise for WhisperLiveKit's start-up warm-up
    (its default downloads jfk.wav from GitHub)."""
    path = os.path.join(WORK_DIR, "warmup.wav")
    if not os.path.exists(path):
        os.makedirs(WORK_DIR, exist_ok=True)
        rng = random.Random(0)
        samples = array("h", (int(rng.gauss(0, 60)) for _ in range(int(RATE * 1.5))))
        if sys.byteorder == "big":
            samples.byteswap()
        with wave.open(path + ".tmp", "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(RATE)
            w.writeframes(samples.tobytes())
        os.replace(path + ".tmp", path)
    return path


def start_whisperlivekit(python: str, model_dir: str, port: int, threads: int, policy: str,
                         warmup_wav: str | None = None) -> subprocess.Popen:
    """WhisperLiveKit's server on 127.0.0.1:PORT with the faster-whisper
    backend, `policy` "localagreement" or "simulstreaming", English, raw PCM
    input, int8 and THREADS CPU threads; it loads and warms the model (on
    WARMUP_WAV, default a local clip of faint noise) before it listens. For
    SimulStreaming the decoder is converted from MODEL_DIR first (see the
    module's docstring; a few seconds, once)."""
    model_dir = os.path.abspath(model_dir)
    argv = [python, "-c", _WHISPERLIVEKIT_SERVER, str(threads),
            "--host", "127.0.0.1", "--port", str(port),
            "--backend", "faster-whisper", "--backend-policy", policy,
            "--lan", "en", "--pcm-input", "--warmup-file", warmup_wav or _warmup_wav(),
            "--log-level", "INFO"]
    if policy == "localagreement":
        argv += ["--model_dir", model_dir]
    elif policy == "simulstreaming":
        decoder, heads = _simulstreaming_decoder(python, model_dir)
        argv += ["--encoder-model-path", model_dir, "--decoder-model-path", decoder,
                 "--custom-alignment-heads", heads]
    else:
        raise ValueError(f"policy must be localagreement or simulstreaming, not {policy!r}")
    return _spawn(f"whisperlivekit-{policy}-{port}", argv, threads)


# --- the client side --------------------------------------------------------

def _connect(uri: str):
    from websockets.asyncio.client import connect
    # No proxy (the peers are on loopback), no size limit, no client pings (a
    # busy server must not be dropped for a late pong).
    return connect(uri, proxy=None, max_size=None, ping_interval=None, open_timeout=30, close_timeout=5)


@contextlib.asynccontextmanager
async def _receiving(receive):
    """Runs the coroutine `receive` as a task for the body of the `async with`,
    then cancels it and waits for it to end."""
    task = asyncio.create_task(receive)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


async def wait_ready(kind: str, port: int, timeout: float) -> None:
    """Returns once the peer on PORT serves sessions with its model loaded.
    whisperlive: a session is opened until it answers SERVER_READY (the first
    one loads the shared model), then ended with END_OF_AUDIO.
    whisperlivekit: GET /health until {"ready": true} (the model is loaded and
    warmed before uvicorn listens). Raises TimeoutError after `timeout` s."""
    if kind not in ("whisperlive", "whisperlivekit"):
        raise ValueError(f"unknown peer kind {kind!r}")
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            if kind == "whisperlive":
                async with _connect(f"ws://127.0.0.1:{port}") as ws:
                    await ws.send(json.dumps(_whisperlive_options(str(uuid.uuid4()))))
                    await asyncio.wait_for(_whisperlive_ready(ws), max(1.0, deadline - time.monotonic()))
                    await ws.send(b"END_OF_AUDIO")
                return
            if await _http_health(port):
                return
            last_error = "/health: not ready"
        except PeerError:
            raise
        except Exception as e:  # refused, reset, handshake or close errors while it starts
            last_error = e
        await asyncio.sleep(0.5)
    raise TimeoutError(f"{kind} on port {port} not ready after {timeout} s: {last_error}")


async def _http_health(port: int) -> bool:
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
    try:
        writer.write(f"GET /health HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        await writer.drain()
        response = await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    return head.split(b" ", 2)[1:2] == [b"200"] and json.loads(body or b"{}").get("ready") is True


async def _send_paced(ws, pcm16k: bytes, t0: float, speed: float, chunk_seconds: float, convert) -> None:
    """Sends `pcm16k` in chunks of `chunk_seconds`, the chunk ending at audio
    time t at wall time t0 + t / speed (time.monotonic())."""
    pcm16k = pcm16k[: len(pcm16k) // 2 * 2]
    step = max(1, int(round(chunk_seconds * RATE))) * 2
    for offset in range(0, len(pcm16k), step):
        chunk = pcm16k[offset:offset + step]
        due = t0 + (offset + len(chunk)) / (2 * RATE) / speed
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await ws.send(convert(chunk))


def _s16le_to_f32le(chunk: bytes) -> bytes:
    """16-bit PCM to float32 samples in [-1, 1), as WhisperLive's client does."""
    samples = array("h")
    samples.frombytes(chunk)
    if sys.byteorder == "big":
        samples.byteswap()
    floats = array("f", (s / 32768.0 for s in samples))
    if sys.byteorder == "big":
        floats.byteswap()
    return floats.tobytes()


def _tail_cap(duration: float, speed: float) -> float:
    """How long after the audio a session may go on: 120 s, or as long as the
    audio took to send if longer (a peer that lags is still measured)."""
    return max(120.0, duration / speed)


def _joined(texts) -> str:
    return " ".join(" ".join(t.split()) for t in texts if t and t.strip())


# --- WhisperLive --------------------------------------------------------------

def _whisperlive_options(uid: str) -> dict:
    # The official client's (whisper_live/client.py) defaults, English.
    return {
        "uid": uid, "language": "en", "task": "transcribe", "model": "base",
        "use_vad": True, "send_last_n_segments": 10, "no_speech_thresh": 0.45,
        "clip_audio": False, "same_output_threshold": 10, "audio_format": "float32",
    }


async def _whisperlive_ready(ws) -> None:
    while True:
        msg = json.loads(await ws.recv())
        if msg.get("message") == "SERVER_READY":
            return
        if msg.get("status") in ("ERROR", "WAIT"):
            raise PeerError(f"WhisperLive: {msg}")


class _WhisperLiveTranscript:
    """Completed segments kept as the official client keeps them, plus the
    trailing uncompleted segment of the latest message."""

    def __init__(self) -> None:
        self.completed: list[dict] = []
        self.pending = ""

    def update(self, segments: list) -> None:
        self.pending = ""
        for i, seg in enumerate(segments):
            if seg.get("completed"):
                if not self.completed or float(seg["start"]) >= float(self.completed[-1]["end"]):
                    self.completed.append(seg)
            elif i == len(segments) - 1:
                self.pending = seg.get("text", "")

    @property
    def completed_end(self) -> float:
        return float(self.completed[-1]["end"]) if self.completed else 0.0

    def final_text(self) -> str:
        return _joined(seg["text"] for seg in self.completed)

    def partial_text(self) -> str:
        return _joined([self.final_text(), self.pending])


async def stream_whisperlive(port: int, pcm16k: bytes, t0: float, speed: float, chunk_seconds: float,
                             on_snapshot, *, idle_timeout: float = 30.0, tail_cap: float | None = None,
                             settle: float = 10.0) -> None:
    """One WhisperLive session: options, wait for SERVER_READY (chunks already
    due then go out at once), paced float32 audio, then END_OF_AUDIO once the
    server has finalized the stream.

    WhisperLive has no "flush" message: END_OF_AUDIO stops the server's work at
    once. So after the audio the adapter waits until no uncompleted segment is
    pending and either the completed segments reach the last second of audio
    (the server leaves less than 1 s untranscribed) or nothing has come for
    `settle` s (trailing non-speech, on which the server sends nothing); or
    until nothing has come for `idle_timeout` s, or `tail_cap` s after the
    audio (default _tail_cap()), whichever is first. Then END_OF_AUDIO, and
    the close is awaited."""
    duration = len(pcm16k) / (2 * RATE)
    tail_cap = _tail_cap(duration, speed) if tail_cap is None else tail_cap
    transcript = _WhisperLiveTranscript()
    last_message = time.monotonic()

    async with _connect(f"ws://127.0.0.1:{port}") as ws:
        await ws.send(json.dumps(_whisperlive_options(str(uuid.uuid4()))))
        await asyncio.wait_for(_whisperlive_ready(ws), 120)

        async def receive() -> None:
            nonlocal last_message
            async for raw in ws:
                now = time.monotonic()
                last_message = now
                msg = json.loads(raw)
                if "segments" in msg:
                    transcript.update(msg["segments"])
                elif msg.get("status") == "ERROR":
                    print(f"WhisperLive error: {msg}", file=sys.stderr)
                on_snapshot(now, transcript.partial_text(), transcript.final_text())

        async with _receiving(receive()) as receiver:
            await _send_paced(ws, pcm16k, t0, speed, chunk_seconds, _s16le_to_f32le)
            audio_end = time.monotonic()
            while not receiver.done():
                now = time.monotonic()
                quiet = now - max(last_message, audio_end)
                if not transcript.pending and (transcript.completed_end >= duration - 1.0 or quiet >= settle):
                    break
                if quiet >= idle_timeout or now - audio_end >= tail_cap:
                    break
                await asyncio.sleep(0.05)
            if not receiver.done():
                await ws.send(b"END_OF_AUDIO")
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(receiver), 10)


# --- WhisperLiveKit -------------------------------------------------------------

async def stream_whisperlivekit(port: int, pcm16k: bytes, t0: float, speed: float, chunk_seconds: float,
                                on_snapshot, *, idle_timeout: float = 30.0, tail_cap: float | None = None) -> None:
    """One WhisperLiveKit session on /asr?language=en (mode "full"): paced raw
    s16le PCM, an empty frame at the end, then messages until "ready_to_stop"
    (all committed), `idle_timeout` s without a message, or `tail_cap` s after
    the audio (default _tail_cap())."""
    tail_cap = _tail_cap(len(pcm16k) / (2 * RATE), speed) if tail_cap is None else tail_cap
    lines_text = ""
    buffer_text = ""
    last_message = time.monotonic()
    stopped = asyncio.Event()
    config: dict = {}

    async with _connect(f"ws://127.0.0.1:{port}/asr?language=en") as ws:

        async def receive() -> None:
            nonlocal lines_text, buffer_text, last_message
            async for raw in ws:
                now = time.monotonic()
                last_message = now
                msg = json.loads(raw)
                kind = msg.get("type")
                if kind == "config":
                    config.update(msg)
                elif kind == "ready_to_stop":
                    stopped.set()
                elif kind == "error" or msg.get("status") == "error":
                    print(f"WhisperLiveKit error: {msg}", file=sys.stderr)
                elif "lines" in msg:
                    lines_text = _joined(line.get("text") for line in msg["lines"])
                    buffer_text = msg.get("buffer_transcription", "")
                on_snapshot(now, _joined([lines_text, buffer_text]), lines_text)
                if stopped.is_set():
                    return

        async with _receiving(receive()) as receiver:
            # The first message says which input the server expects.
            waited = time.monotonic() + 30
            while not config and not receiver.done() and time.monotonic() < waited:
                await asyncio.sleep(0.01)
            if not config.get("useAudioWorklet"):
                raise PeerError(f"WhisperLiveKit is not in --pcm-input mode: {config}")
            await _send_paced(ws, pcm16k, t0, speed, chunk_seconds, bytes)
            await ws.send(b"")  # end of audio
            audio_end = time.monotonic()
            while not receiver.done():
                now = time.monotonic()
                if now - max(last_message, audio_end) >= idle_timeout or now - audio_end >= tail_cap:
                    break
                await asyncio.sleep(0.05)
