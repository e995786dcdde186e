"""Times faster-whisper on clips, the peer of `bench inproc`.

Prints one JSON object: the load time and, per clip, the wall time of each run
(transcribe + consuming every segment; audio decoded beforehand), the text and the
segments (start, end, text; words too with --word-timestamps) of the last run.
Greedy (beam_size=1), CPU, the given compute type and threads, in one of three
modes: `sequential` (WhisperModel.transcribe, no VAD: its default), `vad` (the same
with vad_filter=True) or `batched` (BatchedInferencePipeline with its defaults:
Silero VAD, batch_size windows decoded together).

usage: python faster_whisper_bench.py --model CT2_DIR --clip PATH@LANG ...
       [--threads 2] [--compute-type int8] [--runs 5] [--warmup 1]
       [--mode sequential|vad|batched] [--batch-size 8] [--word-timestamps]
"""

import argparse
import json
import statistics
import sys
import time

import faster_whisper
from faster_whisper import BatchedInferencePipeline, WhisperModel
from faster_whisper.audio import decode_audio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="CTranslate2 model directory")
    parser.add_argument("--clip", action="append", required=True, help="PATH[@LANG]")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compute-type", default="int8")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--mode", choices=["sequential", "vad", "batched"], default="sequential")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--word-timestamps", action="store_true")
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
    if args.mode == "batched":
        pipeline = BatchedInferencePipeline(model)

        def transcribe(audio, language):
            return pipeline.transcribe(
                audio,
                language=language,
                beam_size=1,
                batch_size=args.batch_size,
                word_timestamps=args.word_timestamps,
            )

    else:

        def transcribe(audio, language):
            return model.transcribe(
                audio,
                language=language,
                beam_size=1,
                vad_filter=args.mode == "vad",
                word_timestamps=args.word_timestamps,
            )

    clips = []
    for spec in args.clip:
        path, _, language = spec.rpartition("@")
        if not path or "/" in language:
            path, language = spec, "en"
        audio = decode_audio(path, sampling_rate=16000)
        runs, segments = [], []
        for i in range(args.warmup + args.runs):
            started = time.perf_counter()
            generator, _info = transcribe(audio, language)
            segments = list(generator)
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
                "text": "".join(segment.text for segment in segments).strip(),
                "segments": [
                    {"start": s.start, "end": s.end, "text": s.text.strip()} for s in segments
                ],
                "words": [
                    {"word": w.word.strip(), "start": w.start, "end": w.end}
                    for s in segments
                    for w in (s.words or [])
                ],
            }
        )
    json.dump(
        {
            "faster_whisper": faster_whisper.__version__,
            "compute_type": args.compute_type,
            "mode": args.mode,
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
