#!/usr/bin/env python3
"""Cut short clips at sentence ends out of the long-form set, for word checks.

usage: sentence_clips.py LONGFORM_DIR OUT_DIR [--count N] [--seed S] [--lengths MIN MAX]

LONGFORM_DIR holds scripts/longform-set.sh's recordings (longform_*.wav with their
.json sentence times). Each clip joins consecutive sentences (pauses under 3 s) up to
a random length between MIN and MAX seconds (default 4-26; clips shorter than MIN - 2
s or longer than 29.9 s are skipped; `--lengths 29.5 30` gives clips of 27.5-29.9 s,
which a trimmed context encodes with the full 1500 frames), from 0.2 s before the
first sentence to 0.3 s after the last, and
is written as OUT_DIR/cNN.wav with its reference text in cNN.txt (the `bench inproc
--clip PATH@en` layout). The same seed gives the same clips.
"""
import argparse
import json
import random
import wave
from pathlib import Path

RATE = 16000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("longform_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--count", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--lengths", type=float, nargs=2, default=[4.0, 26.0])
    args = parser.parse_args()
    rng = random.Random(args.seed)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    n = 0
    for name in ("lecture", "meeting", "audiobook"):
        stem = args.longform_dir / f"longform_{name}"
        sentences = json.loads(stem.with_suffix(".json").read_text())["sentences"]
        audio = wave.open(str(stem.with_suffix(".wav")))
        i = 0
        while i < len(sentences) and n < args.count:
            target = rng.uniform(*args.lengths)
            j = i
            while (
                j + 1 < len(sentences)
                and sentences[j + 1]["end"] - sentences[i]["start"] < target
                and sentences[j + 1]["start"] - sentences[j]["end"] < 3
            ):
                j += 1
            start = max(0.0, sentences[i]["start"] - 0.2)
            end = sentences[j]["end"] + 0.3
            if max(2.0, args.lengths[0] - 2) <= end - start <= 29.9:
                audio.setpos(int(start * RATE))
                frames = audio.readframes(int((end - start) * RATE))
                with wave.open(str(args.out_dir / f"c{n:02d}.wav"), "wb") as out:
                    out.setnchannels(1)
                    out.setsampwidth(2)
                    out.setframerate(RATE)
                    out.writeframes(frames)
                text = " ".join(s["text"] for s in sentences[i : j + 1])
                (args.out_dir / f"c{n:02d}.txt").write_text(text + "\n")
                n += 1
            i = j + 1 + rng.randint(0, 3)
    print(f"{n} clips in {args.out_dir}")


if __name__ == "__main__":
    main()
