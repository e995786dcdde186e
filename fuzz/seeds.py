#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz targets (see scripts/fuzz.sh).

Usage: seeds.py SEED_DIR FIXTURES_DIR

SEED_DIR/<target>/ receives small, valid inputs, so the fuzzer starts from
files that parse all the way through:
- audio_decode: short clips of the speech fixtures in every container and codec
  the decoder knows (made with ffmpeg), odd WAV headers, cut fixtures;
- model_file: tiny but complete ggml Whisper models (f32, f16, q8_0);
- ct2_reader: tiny CTranslate2 model.bin files (input byte 0 picks the parts);
- request_form: form fields as `name=value` lines (byte 0 picks the endpoint).
"""

import io
import math
import os
import struct
import subprocess
import sys
import tempfile
import wave

# --- audio ---------------------------------------------------------------------

# (file name, ffmpeg output options): 0.2 s of jfk.wav, from 0.5 s in (speech).
FFMPEG_VARIANTS = [
    ("s16-16k-mono.wav", ["-ar", "16000", "-c:a", "pcm_s16le"]),
    ("u8-8k-mono.wav", ["-ar", "8000", "-c:a", "pcm_u8"]),
    ("s24-44k-stereo.wav", ["-ar", "44100", "-ac", "2", "-c:a", "pcm_s24le"]),
    ("s32-22k-mono.wav", ["-ar", "22050", "-c:a", "pcm_s32le"]),
    ("f32-48k-mono.wav", ["-ar", "48000", "-c:a", "pcm_f32le"]),
    ("f64-16k-mono.wav", ["-c:a", "pcm_f64le"]),
    ("alaw.wav", ["-c:a", "pcm_alaw"]),
    ("mulaw.wav", ["-c:a", "pcm_mulaw"]),
    ("adpcm-ima.wav", ["-c:a", "adpcm_ima_wav"]),
    ("adpcm-ms.wav", ["-c:a", "adpcm_ms"]),
    ("6ch.wav", ["-ac", "6", "-c:a", "pcm_s16le"]),
    ("s16.aiff", ["-c:a", "pcm_s16be"]),
    ("flac.flac", ["-c:a", "flac"]),
    ("vorbis.ogg", ["-c:a", "libvorbis", "-q:a", "0"]),
    ("flac-in.ogg", ["-c:a", "flac"]),
    ("mp3.mp3", ["-c:a", "libmp3lame", "-b:a", "32k"]),
    ("aac.m4a", ["-c:a", "aac", "-b:a", "24k"]),
    ("aac.aac", ["-c:a", "aac", "-b:a", "24k", "-f", "adts"]),
    ("alac.m4a", ["-c:a", "alac"]),
    ("vorbis.webm", ["-c:a", "libvorbis", "-q:a", "0"]),
    ("flac.mkv", ["-c:a", "flac"]),
    ("pcm.caf", ["-c:a", "pcm_s16le"]),
    ("opus.ogg", ["-c:a", "libopus", "-b:a", "16k"]),
    ("opus-stereo.webm", ["-ac", "2", "-c:a", "libopus", "-b:a", "24k"]),
    ("rf64.wav", ["-rf64", "always", "-c:a", "pcm_s16le"]),
]


def wav(rate, channels, bits, frames):
    """A PCM WAV file (written by Python's wave module) holding a quiet ramp."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(bits // 8)
        w.setframerate(rate)
        w.writeframes(bytes((i * 7) & 0x3F for i in range(frames * channels * bits // 8)))
    return out.getvalue()


def audio_seeds(out, fixtures):
    seeds = {
        "hand-16k-mono.wav": wav(16000, 1, 16, 800),
        "hand-4k-3ch-8bit.wav": wav(4000, 3, 8, 400),
        "hand-384k-mono.wav": wav(384000, 1, 16, 2000),
        "hand-no-data.wav": wav(16000, 1, 16, 0),
        "hand-placeholder-length.wav": wav(16000, 2, 16, 500)[:4]
        + b"\xff\xff\xff\xff"
        + wav(16000, 2, 16, 500)[8:],
    }
    for name in ("jfk.wav", "fr_test_fr.wav", "zh_BAC009S0724W0121.wav"):
        with open(os.path.join(fixtures, name), "rb") as f:
            seeds["cut-" + name] = f.read(6000)
    with open(os.path.join(fixtures, "jfk.mp3"), "rb") as f:
        seeds["cut-jfk.mp3"] = f.read(6000)
    source = os.path.join(fixtures, "jfk.wav")
    with tempfile.TemporaryDirectory() as tmp:
        for name, options in FFMPEG_VARIANTS:
            path = os.path.join(tmp, name)
            command = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y"]
            command += ["-ss", "0.5", "-t", "0.2", "-i", source] + options + [path]
            subprocess.run(command, check=True)
            with open(path, "rb") as f:
                seeds["ffmpeg-" + name] = f.read()
    write_all(out, seeds)


# --- ggml model ------------------------------------------------------------------

F32, F16, Q8_0 = 0, 1, 8
BLOCK = {F32: (1, 4), F16: (1, 2), Q8_0: (32, 34)}


def ggml_tensors(hp, wtype):
    """The tensors whisper.cpp loads, in file order: (name, ne, type)."""
    vtype = F32 if wtype == F32 else F16
    st, ts = hp["n_audio_state"], hp["n_text_state"]
    out = []

    def attn(p, n):
        out.extend(
            [
                (p + ".query.weight", [n, n], wtype),
                (p + ".query.bias", [n], F32),
                (p + ".key.weight", [n, n], wtype),
                (p + ".value.weight", [n, n], wtype),
                (p + ".value.bias", [n], F32),
                (p + ".out.weight", [n, n], wtype),
                (p + ".out.bias", [n], F32),
                (p + "_ln.weight", [n], F32),
                (p + "_ln.bias", [n], F32),
            ]
        )

    def mlp(p, n):
        out.extend(
            [
                (p + ".mlp.0.weight", [n, 4 * n], wtype),
                (p + ".mlp.0.bias", [4 * n], F32),
                (p + ".mlp.2.weight", [4 * n, n], wtype),
                (p + ".mlp.2.bias", [n], F32),
                (p + ".mlp_ln.weight", [n], F32),
                (p + ".mlp_ln.bias", [n], F32),
            ]
        )

    out.append(("encoder.positional_embedding", [st, hp["n_audio_ctx"]], F32))
    out.append(("encoder.conv1.weight", [3, hp["n_mels"], st], vtype))
    out.append(("encoder.conv1.bias", [1, st], F32))
    out.append(("encoder.conv2.weight", [3, st, st], vtype))
    out.append(("encoder.conv2.bias", [1, st], F32))
    for i in range(hp["n_audio_layer"]):
        attn(f"encoder.blocks.{i}.attn", st)
        mlp(f"encoder.blocks.{i}", st)
    out.append(("encoder.ln_post.weight", [st], F32))
    out.append(("encoder.ln_post.bias", [st], F32))
    out.append(("decoder.positional_embedding", [ts, hp["n_text_ctx"]], F32))
    out.append(("decoder.token_embedding.weight", [ts, hp["n_vocab"]], wtype))
    for i in range(hp["n_text_layer"]):
        attn(f"decoder.blocks.{i}.attn", ts)
        attn(f"decoder.blocks.{i}.cross_attn", ts)
        mlp(f"decoder.blocks.{i}", ts)
    out.append(("decoder.ln.weight", [ts], F32))
    out.append(("decoder.ln.bias", [ts], F32))
    return out


def ggml_model(state, wtype, ftype):
    hp = {
        "n_vocab": 6,
        "n_audio_ctx": 2,
        "n_audio_state": state,
        "n_audio_head": 1,
        "n_audio_layer": 1,
        "n_text_ctx": 2,
        "n_text_state": state,
        "n_text_head": 1,
        "n_text_layer": 1,
        "n_mels": 2,
    }
    out = bytearray(struct.pack("<I", 0x67676D6C))
    out += struct.pack("<10i", *hp.values())
    out += struct.pack("<i", ftype)
    out += struct.pack("<ii", hp["n_mels"], 201)
    out += struct.pack(f"<{hp['n_mels'] * 201}f", *[0.01] * (hp["n_mels"] * 201))
    tokens = [b"!", b"a", b"b", b"<|endoftext|>"]
    out += struct.pack("<i", len(tokens))
    for token in tokens:
        out += struct.pack("<I", len(token)) + token
    for name, ne, ttype in ggml_tensors(hp, wtype):
        out += struct.pack("<iii", len(ne), len(name), ttype)
        out += struct.pack(f"<{len(ne)}i", *ne) + name.encode()
        per_block, block_bytes = BLOCK[ttype]
        out += bytes(math.prod(ne) // per_block * block_bytes)
    return bytes(out)


def model_file_seeds(out):
    write_all(
        out,
        {
            "tiny-f32.bin": ggml_model(4, F32, 0),
            "tiny-f16.bin": ggml_model(4, F16, 1),
            "tiny-q8_0.bin": ggml_model(32, Q8_0, 2007),
        },
    )


# --- CTranslate2 model -------------------------------------------------------------


def ct2_string(s):
    b = s.encode() + b"\0"
    return struct.pack("<H", len(b)) + b


def ct2_model(version, variables, aliases):
    """`variables`: (name, shape, dtype id, element size); data is zeros but for
    integer scalars, which hold 4."""
    out = bytearray(struct.pack("<I", version))
    out += ct2_string("WhisperSpec") + struct.pack("<I", 3)
    out += struct.pack("<I", len(variables))
    for name, shape, dtype, size in variables:
        out += ct2_string(name) + struct.pack("<B", len(shape))
        out += struct.pack(f"<{len(shape)}I", *shape) + struct.pack("<B", dtype)
        nbytes = math.prod(shape) * size
        out += struct.pack("<I", nbytes)
        out += (4).to_bytes(size, "little") if nbytes == size else bytes(nbytes)
    out += struct.pack("<I", len(aliases))
    for alias, target in aliases:
        out += ct2_string(alias) + ct2_string(target)
    return bytes(out)


def ct2_seeds(out):
    variables = [
        ("encoder/num_heads", [], 3, 4),
        ("decoder/num_heads", [], 2, 2),
        ("decoder/scale", [], 1, 1),
        ("encoder/conv1/weight", [4, 2, 3], 4, 2),
        ("encoder/layer_0/ffn/linear_0/weight", [2, 4], 0, 4),
        ("decoder/embeddings/weight", [3, 4], 5, 2),
    ]
    aliases = [("decoder/projection/weight", "decoder/embeddings/weight")]
    model = ct2_model(6, variables, aliases)
    write_all(
        out,
        {
            "one-part.bin": b"\0" + model,
            "two-parts.bin": b"\1" + model,
            "three-parts.bin": b"\2" + model,
            "v4-no-alias.bin": b"\0" + ct2_model(4, variables[:3], []),
        },
    )


# --- request form ------------------------------------------------------------------


def request_seeds(out):
    forms = {
        "openai-full": (
            0,
            "model=whisper-1\nlanguage=fr\nprompt=Bonjour.\ntemperature=0.2\n"
            "response_format=verbose_json\ntimestamp_granularities[]=word\n"
            "timestamp_granularities[]=segment",
        ),
        "openai-stream": (0, "response_format=text\nstream=true\nlanguage=auto"),
        "translation": (1, "response_format=srt\ntemperature=1\nmodel=tiny.en"),
        "granularity-list": (
            0,
            "response_format=verbose_json\ntimestamp_granularities=segment,word",
        ),
        "inference": (
            2,
            "translate=true\ntemperature_inc=0.2\nbeam_size=5\nbest_of=3\n"
            "offset_t=1500\nduration=2000\nno_context=1\nresponse_format=vtt\n"
            "language=de",
        ),
        "empty": (0, ""),
    }
    write_all(out, {name: bytes([e]) + t.encode() for name, (e, t) in forms.items()})


def write_all(directory, files):
    os.makedirs(directory, exist_ok=True)
    for name, data in files.items():
        with open(os.path.join(directory, "seed-" + name), "wb") as f:
            f.write(data)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    out, fixtures = sys.argv[1], sys.argv[2]
    audio_seeds(os.path.join(out, "audio_decode"), fixtures)
    model_file_seeds(os.path.join(out, "model_file"))
    ct2_seeds(os.path.join(out, "ct2_reader"))
    request_seeds(os.path.join(out, "request_form"))


if __name__ == "__main__":
    main()
