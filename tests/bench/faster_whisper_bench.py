"""Times faster-whisper on clips, the peer of `bench inproc`.

Prints one JSON object: the load time and, per clip, the wall time of each run
(transcribe + consuming every segment; audio decoded beforehand) and the text.
Greedy (beam_size=1), no VAD, CPU, the given compute type and threads.

usage: python faster_whisper_bench.py --model CT2_DIR --clip PATH@LANG ...
       [--threads 2] [--compute-type int8] [--runs 5] [--warmup 1]
"""

import argparse
import json
import statistics
import sys
import time

import faster_whisper
from faster_whisper import WhisperModel
from faster_whisper.audio import decode_audio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="CTranslate2 model directory")
    parser.add_argument("--clip", action="append", required=True, help="PATH[@LANG]")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compute-type", default="int8")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    args = parser.parse_args()

    started = time.perf_counter()
    model = WhisperModel(
        args.model,
        device="cpu",
        compute_type=args.compute_type,
        cpu_threads=args.threads,
        num_workers=1,
    )
    load_seconds = time.perf_counter() - started

    clips = []
    for spec in args.clip:
        path, _, language = spec.rpartition("@")
        if not path or "/" in language:
            path, language = spec, "en"
        audio = decode_audio(path, sampling_rate=16000)
        runs, text = [], ""
        for i in range(args.warmup + args.runs):
            started = time.perf_counter()
            segments, _info = model.transcribe(
                audio,
                language=language,
                beam_size=1,
                vad_filter=False,
            )
            text = "".join(segment.text for segment in segments).strip()
            elapsed = time.perf_counter() - started
            if i >= args.warmup:
                runs.append(elapsed)
        name = path.rsplit("/", 1)[-1]
        print(f"  faster-whisper {name}: {statistics.median(runs):.3f} s", file=sys.stderr)
        clips.append(
            {
                "clip": name,
                "audio_seconds": len(audio) / 16000.0,
                "runs": runs,
                "median": statistics.median(runs),
                "text": text,
            }
        )
    json.dump(
        {
            "faster_whisper": faster_whisper.__version__,
            "compute_type": args.compute_type,
            "load_seconds": load_seconds,
            "clips": clips,
        },
        sys.stdout,
        ensure_ascii=False,
    )
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
