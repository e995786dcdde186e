"""Audio for the live tests and the live benchmark: fixtures and synthesized
speech as 16-bit PCM at the rates the Realtime protocol takes, G.711 encoders,
and a real-time pacer. Standard library only (audioop is in Python 3.11).
"""

import audioop
import subprocess
import tempfile
import wave
from pathlib import Path


def read_wav(path: Path) -> tuple[bytes, int]:
    """Mono 16-bit PCM frames and their rate."""
    with wave.open(str(path)) as w:
        assert w.getsampwidth() == 2, path
        frames = w.readframes(w.getnframes())
        if w.getnchannels() == 2:
            frames = audioop.tomono(frames, 2, 0.5, 0.5)
        return frames, w.getframerate()


def write_wav(path: Path, pcm: bytes, rate: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)


def resample(pcm: bytes, rate: int, to: int) -> bytes:
    if rate == to:
        return pcm
    return audioop.ratecv(pcm, 2, 1, rate, to, None)[0]


def silence(seconds: float, rate: int) -> bytes:
    return b"\0\0" * int(seconds * rate)


def encode(pcm: bytes, kind: str) -> bytes:
    """16-bit PCM at 8 kHz to G.711: kind `pcmu` (μ-law) or `pcma` (A-law)."""
    return audioop.lin2ulaw(pcm, 2) if kind == "pcmu" else audioop.lin2alaw(pcm, 2)


def synthesize(sentences: list[str], pause: float, rate: int) -> bytes:
    """The sentences spoken by espeak-ng (US English), `pause` seconds apart,
    as 16-bit PCM at `rate`, ending with the pause."""
    parts = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, sentence in enumerate(sentences):
            wav = Path(tmp) / f"s{n}.wav"
            subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), sentence], check=True)
            pcm, source_rate = read_wav(wav)
            parts.append(resample(pcm, source_rate, rate) + silence(pause, rate))
    return b"".join(parts)


SENTENCES = [
    "The harbour was quiet in the early morning, and the fishing boats were still tied along the wooden pier.",
    "A small group of students walked across the bridge, talking about the exam they had finished the day before.",
    "Please remember to bring the blue folder and the signed contract to the meeting on Thursday afternoon.",
    "The weather forecast promised sunshine for the weekend, so the whole family decided to go camping by the lake.",
]
