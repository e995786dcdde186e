"""Live transcription latency, side by side: stt-server's Realtime sessions and
the streaming peers, on one recording of sentences with pauses streamed at a
fixed pace (scripts/bench.sh --realtime runs it).

For every sentence of the recording (its end time comes from the set's JSON):
- partial latency: from the sentence's end (audio time, as paced in wall time)
  to the first message whose text holds the sentence's last word;
- final latency: the same, to the first final (completed) text holding it.
"Holds" means the word is matched when the message's whole text is aligned
with the reference (word-level Levenshtein); the word is the sentence's last
one matched in the session's final text (a sentence with none is counted as
missed). Also: final WER against the reference, the file endpoint's WER on
the same audio, and the CPU the server used (cores busy while streaming).

Sessions stream the same recording from the same instant (or `--stagger` seconds
apart), each copy with its own ±1 LSB of noise: no two sessions send identical
samples, which would let stt-server reuse one encoder output for all of them
(whisper.cpp patch 0003) and flatter the figures.

usage: python realtime_bench.py --audio SET.wav --timings SET.json --reference SET.txt
         (--stt URL [--pid PID] [--file-wer] [--file-probe CLIP]
          | --peer whisperlive|whisperlivekit [--policy P] --peer-python VENV_PYTHON --ct2 DIR)
         [--sessions N] [--stagger 0] [--speed 1.0] [--chunk 0.1] [--label NAME] [--detail]
A peer is started here (tests/bench/realtime_peers.py), with --threads CPU
threads, and stopped after the run. Prints one JSON object on stdout.
"""

import argparse
import asyncio
import audioop
import base64
import json
import os
import random
import statistics
import sys
import time
import wave
from array import array
from pathlib import Path

from openai import AsyncOpenAI, OpenAI

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
from wer import wer, words  # noqa: E402  (tests/python/wer.py)


def matched(reference: list[str], hypothesis: list[str]) -> set[int]:
    """Reference word indices matched exactly when `hypothesis` (the text so
    far) is aligned with the shortest reference prefix that fits it best: the
    reference words after what has been spoken cost nothing (word-level
    Levenshtein with a free end on the reference side)."""
    rows, cols = len(reference), len(hypothesis)
    cost = [[0] * (cols + 1) for _ in range(rows + 1)]
    for j in range(cols + 1):
        cost[0][j] = j
    for i in range(1, rows + 1):
        row, above, r = cost[i], cost[i - 1], reference[i - 1]
        row[0] = i
        for j in range(1, cols + 1):
            row[j] = min(above[j - 1] + (r != hypothesis[j - 1]), above[j] + 1, row[j - 1] + 1)
    best = min(range(rows + 1), key=lambda i: (cost[i][cols], i))
    found, i, j = set(), best, cols
    while i > 0 and j > 0:
        if reference[i - 1] == hypothesis[j - 1] and cost[i][j] == cost[i - 1][j - 1]:
            found.add(i - 1)
            i, j = i - 1, j - 1
        elif cost[i][j] == cost[i - 1][j - 1] + 1:
            i, j = i - 1, j - 1
        elif cost[i][j] == cost[i - 1][j] + 1:
            i -= 1
        else:
            j -= 1
    return found


class Recorder:
    """Snapshots of one session: (wall time, partial text, final text), and
    when its first sample is due (`t0`)."""

    def __init__(self, t0: float) -> None:
        self.t0 = t0
        self.snapshots: list[tuple[float, str, str]] = []

    def __call__(self, wall: float, partial: str, final: str) -> None:
        if not self.snapshots or self.snapshots[-1][1:] != (partial, final):
            self.snapshots.append((wall, partial, final))


def latencies(snapshots, sentences, reference_words, spans, t0, speed, which: int) -> list[float | None]:
    """Per sentence, seconds from its end to the first snapshot holding its
    last word (`which`: 1 partial text, 2 final text); None when missed."""
    if not snapshots:
        return [None] * len(sentences)
    final_matches = matched(reference_words, words(snapshots[-1][which]))
    targets = []
    for (first, last) in spans:
        hit = [i for i in range(first, last) if i in final_matches]
        targets.append(hit[-1] if hit else None)
    result: list[float | None] = [None] * len(sentences)
    pending = {n for n, t in enumerate(targets) if t is not None}
    previous_text = None
    for wall, *texts in snapshots:
        text = texts[which - 1]
        if not pending:
            break
        if text == previous_text:
            continue
        previous_text = text
        found = matched(reference_words, words(text))
        for n in sorted(pending):
            if targets[n] in found:
                result[n] = wall - (t0 + sentences[n]["end"] / speed)
                pending.discard(n)
    return result


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of a process and its children so far."""
    if pid is None:
        return None
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
        except (OSError, IndexError, ValueError):
            pass
    return total


async def stream_stt(base: str, pcm16k: bytes, t0: float, speed: float, chunk_seconds: float, on_snapshot) -> None:
    """One stt-server session with the official client: 24 kHz PCM, server VAD
    with 500 ms of silence, English."""
    pcm24 = audioop.ratecv(pcm16k, 2, 1, 16000, 24000, None)[0]
    client = AsyncOpenAI(base_url=base + "/v1", api_key=os.environ.get("STT_BENCH_KEY", "unused"), max_retries=0)
    async with client.realtime.connect(extra_query={"intent": "transcription"}) as conn:
        await conn.session.update(session={"type": "transcription", "audio": {"input": {
            "format": {"type": "audio/pcm", "rate": 24000},
            "transcription": {"model": "whisper-1", "language": "en"},
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 500}}}})
        order: list[str] = []
        deltas: dict[str, str] = {}
        finals: dict[str, str] = {}
        state = {"started": 0, "completed": 0, "sent": False, "last": time.monotonic()}

        def snapshot() -> None:
            partial = " ".join(finals.get(i, deltas.get(i, "")) for i in order)
            final = " ".join(finals[i] for i in order if i in finals)
            on_snapshot(time.monotonic(), partial, final)

        async def receive() -> None:
            async for event in conn:
                state["last"] = time.monotonic()
                item = getattr(event, "item_id", None)
                if item and item not in order and event.type != "error":
                    order.append(item)
                if event.type == "input_audio_buffer.speech_started":
                    state["started"] += 1
                elif event.type == "conversation.item.input_audio_transcription.delta":
                    deltas[item] = deltas.get(item, "") + event.delta
                    snapshot()
                elif event.type == "conversation.item.input_audio_transcription.completed":
                    finals[item] = event.transcript
                    state["completed"] += 1
                    snapshot()
                elif event.type == "error":
                    print(f"error event: {event.error}", file=sys.stderr)

        receiver = asyncio.create_task(receive())
        chunk = int(16000 * chunk_seconds) * 3  # 24 kHz bytes per chunk (2 bytes × 1.5)
        for offset in range(0, len(pcm24), chunk):
            due = t0 + (offset + chunk) / 48000 / speed
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            await conn.input_audio_buffer.append(audio=base64.b64encode(pcm24[offset:offset + chunk]).decode())
        limit = time.monotonic() + 60
        while time.monotonic() < limit and not (state["started"] and state["completed"] >= state["started"]):
            await asyncio.sleep(0.05)
        receiver.cancel()


def file_request_seconds(base: str, clip: Path) -> float:
    """Wall time of one transcription of `clip` through /v1/audio/transcriptions."""
    client = OpenAI(base_url=base + "/v1", api_key=os.environ.get("STT_BENCH_KEY", "unused"), max_retries=0)
    started = time.monotonic()
    with clip.open("rb") as f:
        client.audio.transcriptions.create(model="whisper-1", file=f, language="en")
    return time.monotonic() - started


async def probe_files(base: str, clip: Path, every: float, stop: asyncio.Event, times: list[float]) -> None:
    """Sends `clip` to the file endpoint every `every` seconds until `stop`."""
    while not stop.is_set():
        times.append(await asyncio.to_thread(file_request_seconds, base, clip))
        try:
            await asyncio.wait_for(stop.wait(), every)
        except asyncio.TimeoutError:
            pass


def dithered(pcm16k: bytes, seed: int) -> bytes:
    """`pcm16k` with noise of -1, 0 or +1 in each sample, its own for each
    `seed` (seed 0: unchanged)."""
    if seed == 0:
        return pcm16k
    rng = random.Random(seed)
    samples = array("h", pcm16k)
    for i, noise in enumerate(rng.choices((-1, 0, 1), k=len(samples))):
        samples[i] = max(-32768, min(32767, samples[i] + noise))
    return samples.tobytes()


async def run_sessions(args, copies: list[bytes], t0: float, file_times: list[float]) -> list[Recorder]:
    recorders = [Recorder(t0 + k * args.stagger) for k in range(args.sessions)]
    if args.peer is None:
        runs = [stream_stt(args.stt, pcm, r.t0, args.speed, args.chunk, r) for pcm, r in zip(copies, recorders)]
    else:
        import realtime_peers

        stream = (realtime_peers.stream_whisperlive if args.peer == "whisperlive"
                  else realtime_peers.stream_whisperlivekit)
        runs = [stream(args.port, pcm, r.t0, args.speed, args.chunk, r) for pcm, r in zip(copies, recorders)]
    stop = asyncio.Event()
    probe = None
    if args.file_probe and args.stt:
        probe = asyncio.create_task(probe_files(args.stt, args.file_probe, 5.0, stop, file_times))
    await asyncio.gather(*runs)
    stop.set()
    if probe:
        await probe
    return recorders


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audio", required=True, type=Path)
    parser.add_argument("--timings", required=True, type=Path)
    parser.add_argument("--reference", required=True, type=Path)
    parser.add_argument("--stt", help="stt-server base URL")
    parser.add_argument("--peer", choices=["whisperlive", "whisperlivekit"])
    parser.add_argument("--label", help="name of the run in the output")
    parser.add_argument("--port", type=int, default=18190, help="the peer's port")
    parser.add_argument("--policy", default="localagreement", help="WhisperLiveKit's policy")
    parser.add_argument("--peer-python", help="the peer's venv python")
    parser.add_argument("--ct2", help="the CTranslate2 model directory the peer runs")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pid", type=int, help="server process, for its CPU time")
    parser.add_argument("--sessions", type=int, default=1)
    parser.add_argument("--stagger", type=float, default=0.0, help="seconds between the sessions' starts")
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--chunk", type=float, default=0.1)
    parser.add_argument("--file-probe", type=Path,
                        help="a clip sent to /v1/audio/transcriptions every 5 s during the run (and 5 times before)")
    parser.add_argument("--detail", action="store_true", help="per-sentence latencies on stderr")
    parser.add_argument("--file-wer", action="store_true", help="also transcribe the file through /v1/audio/transcriptions")
    args = parser.parse_args()

    with wave.open(str(args.audio)) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        pcm16k = w.readframes(w.getnframes())
    sentences = json.loads(args.timings.read_text())["sentences"]
    reference_text = args.reference.read_text().strip()
    reference_words, spans = [], []
    for s in sentences:
        first = len(reference_words)
        reference_words += words(s["text"])
        spans.append((first, len(reference_words)))

    peer = None
    if args.peer:
        import realtime_peers

        if args.peer == "whisperlive":
            peer = realtime_peers.start_whisperlive(args.peer_python, args.ct2, args.port, args.threads)
        else:
            peer = realtime_peers.start_whisperlivekit(
                args.peer_python, args.ct2, args.port, args.threads, args.policy)
        asyncio.run(realtime_peers.wait_ready(args.peer, args.port, 600))
        args.pid = peer.pid
    try:
        return measure(args, reference_text, sentences, reference_words, spans, pcm16k)
    finally:
        if peer is not None:
            realtime_peers.stop_peer(peer)


def measure(args, reference_text, sentences, reference_words, spans, pcm16k) -> int:
    """Runs the sessions and prints the result line."""
    cpu_before, wall_before = cpu_seconds(args.pid), time.monotonic()
    alone = []
    if args.file_probe and args.stt:
        alone = [file_request_seconds(args.stt, args.file_probe) for _ in range(5)]
        cpu_before, wall_before = cpu_seconds(args.pid), time.monotonic()
    file_times: list[float] = []
    copies = [dithered(pcm16k, k) for k in range(args.sessions)]
    t0 = time.monotonic() + 1.0  # when the first sample is due
    recorders = asyncio.run(run_sessions(args, copies, t0, file_times))
    wall = time.monotonic() - wall_before
    cpu_after = cpu_seconds(args.pid)
    audio_seconds = len(pcm16k) / 32000
    partial_all, final_all, wers, missed, tails = [], [], [], 0, []
    for r in recorders:
        p = latencies(r.snapshots, sentences, reference_words, spans, r.t0, args.speed, 1)
        f = latencies(r.snapshots, sentences, reference_words, spans, r.t0, args.speed, 2)
        if args.detail:
            for n, sentence in enumerate(sentences):
                fmt = lambda x: "  -  " if x is None else f"{x:5.2f}"  # noqa: E731
                print(f"{sentence['end']:7.2f}  partial {fmt(p[n])}  final {fmt(f[n])}  {sentence['text'][:60]}",
                      file=sys.stderr)
            print("final text:", r.snapshots[-1][2] if r.snapshots else "", file=sys.stderr)
        partial_all += [x for x in p if x is not None]
        final_all += [x for x in f if x is not None]
        missed += sum(x is None for x in f)
        final_text = r.snapshots[-1][2] if r.snapshots else ""
        wers.append(wer(reference_text, final_text))
        if r.snapshots:
            tails.append(r.snapshots[-1][0] - (r.t0 + audio_seconds / args.speed))
    result = {
        "run": args.label or (args.peer or "stt-server"),
        "sessions": args.sessions,
        "stagger_s": args.stagger,
        "speed": args.speed,
        "audio_seconds": round(audio_seconds, 1),
        "sentences": len(sentences) * args.sessions,
        "missed_sentences": missed,
        "final_wer": round(statistics.mean(wers), 4) if wers else None,
        "partial_p50": percentile(partial_all, 0.5),
        "partial_p90": percentile(partial_all, 0.9),
        "final_p50": percentile(final_all, 0.5),
        "final_p90": percentile(final_all, 0.9),
        "last_final_after_audio_s": round(max(tails), 2) if tails else None,
        "cores_busy": round((cpu_after - cpu_before) / wall, 2) if cpu_before is not None else None,
    }
    for key in ("partial_p50", "partial_p90", "final_p50", "final_p90"):
        if result[key] is not None:
            result[key] = round(result[key], 3)
    if alone:
        result["file_request_alone_p50_s"] = round(statistics.median(alone), 3)
        result["file_request_during_p50_s"] = round(statistics.median(file_times), 3) if file_times else None
        result["file_requests_during"] = len(file_times)
    if args.file_wer and args.stt:
        client = OpenAI(base_url=args.stt + "/v1", api_key=os.environ.get("STT_BENCH_KEY", "unused"), max_retries=0)
        with args.audio.open("rb") as f:
            text = client.audio.transcriptions.create(model="whisper-1", file=f, language="en").text
        result["file_wer"] = round(wer(reference_text, text), 4)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
