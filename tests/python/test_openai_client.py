"""The official OpenAI Python client against a real stt-server (real libraries,
tiny.en q5_1, real speech). Run by scripts/test.sh with pytest.

Environment (set by scripts/test.sh): STT_SERVER_BIN, WHISPER_STT_TEST_LINKED,
WHISPER_STT_TEST_MODEL.
Bound: word error rate <= 0.1 against the fixture's reference transcript.
"""

import os
import re
from pathlib import Path

import openai
import pytest
from openai import OpenAI
from stt_server import start_server, stop_server
from wer import wer

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures"
JFK = FIXTURES / "jfk.wav"
REFERENCE = (FIXTURES / "jfk.txt").read_text(encoding="utf-8").strip()


@pytest.fixture(scope="module")
def server():
    process, base = start_server(os.environ["WHISPER_STT_TEST_MODEL"])
    yield base
    stop_server(process)


@pytest.fixture(scope="module")
def client(server):
    return OpenAI(base_url=server + "/v1", api_key="not-needed", max_retries=0)


def test_json(client):
    with JFK.open("rb") as f:
        result = client.audio.transcriptions.create(model="whisper-1", file=f)
    assert wer(REFERENCE, result.text) <= 0.1, result.text


def test_verbose_json_with_word_timestamps(client):
    with JFK.open("rb") as f:
        result = client.audio.transcriptions.create(
            model="whisper-1",
            file=f,
            response_format="verbose_json",
            timestamp_granularities=["word", "segment"],
        )
    assert wer(REFERENCE, result.text) <= 0.1, result.text
    assert result.language in ("en", "english")
    assert 10.5 <= result.duration <= 11.5
    assert len(result.words) >= 18
    starts = [w.start for w in result.words]
    assert starts == sorted(starts)
    assert all(0 <= w.start <= w.end <= result.duration + 0.01 for w in result.words)
    assert result.segments and result.segments[0].avg_logprob <= 0


def test_srt(client):
    with JFK.open("rb") as f:
        srt = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="srt")
    assert re.search(r"^1\n00:00:00,000 --> 00:00:\d\d,\d{3}\n", srt), srt
    spoken = " ".join(line for line in srt.splitlines() if line and "-->" not in line and not line.isdigit())
    assert wer(REFERENCE, spoken) <= 0.1, srt


def test_stream(client):
    with JFK.open("rb") as f:
        stream = client.audio.transcriptions.create(model="whisper-1", file=f, stream=True)
        events = list(stream)
    kinds = [e.type for e in events]
    assert kinds[-1] == "transcript.text.done", kinds
    assert "transcript.text.delta" in kinds, kinds
    deltas = "".join(e.delta for e in events if e.type == "transcript.text.delta")
    assert wer(REFERENCE, deltas) <= 0.1, deltas
    assert wer(REFERENCE, events[-1].text) <= 0.1


def test_unknown_model_is_a_not_found_error(client):
    import openai

    with JFK.open("rb") as f, pytest.raises(openai.NotFoundError) as error:
        client.audio.transcriptions.create(model="no-such-model", file=f)
    assert error.value.body["code"] == "model_not_found"


# OpenAI's current request shape (gpt-transcribe): model aliases, include[]=logprobs,
# keywords[], languages[], chunking_strategy.

ALIASES = ["whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe", "gpt-transcribe", "gpt-live-transcribe"]


@pytest.mark.parametrize("model", ALIASES)
def test_openai_model_names_are_aliases(client, model):
    with JFK.open("rb") as f:
        result = client.audio.transcriptions.create(model=model, file=f)
    assert wer(REFERENCE, result.text) <= 0.1, (model, result.text)


def test_include_logprobs(client):
    with JFK.open("rb") as f:
        result = client.audio.transcriptions.create(model="gpt-transcribe", file=f, include=["logprobs"])
    assert wer(REFERENCE, result.text) <= 0.1
    assert result.logprobs and all(lp.logprob <= 0 and lp.bytes for lp in result.logprobs)
    assert wer(result.text, "".join(lp.token for lp in result.logprobs)) <= 0.05


def test_include_logprobs_needs_json(client):
    with JFK.open("rb") as f, pytest.raises(openai.BadRequestError) as error:
        client.audio.transcriptions.create(model="whisper-1", file=f, include=["logprobs"], response_format="text")
    assert error.value.body["param"] == "include[]"


@pytest.fixture(scope="module")
def base_client():
    """A multilingual model (base q8_0) with the VAD model, for languages[] and chunking_strategy."""
    process, base = start_server(
        os.environ["WHISPER_STT_TEST_MODEL_BASE_Q8_0"], WHISPER_VAD_MODEL=os.environ["WHISPER_STT_TEST_VAD_MODEL"])
    yield OpenAI(base_url=base + "/v1", api_key="not-needed", max_retries=0)
    stop_server(process)


FRENCH = FIXTURES / "fr_test_fr.wav"
FRENCH_TEXT = (FIXTURES / "fr_test_fr.txt").read_text(encoding="utf-8").strip()


def test_languages_restrict_detection(base_client):
    with FRENCH.open("rb") as f:
        free = base_client.audio.transcriptions.create(
            model="gpt-transcribe", file=f, languages=["en", "fr"], response_format="verbose_json")
    assert free.language in ("fr", "french"), free.language
    assert wer(FRENCH_TEXT, free.text) <= 0.3, free.text
    # French is not among the choices: detection must pick one of them.
    with FRENCH.open("rb") as f:
        narrowed = base_client.audio.transcriptions.create(
            model="gpt-transcribe", file=f, languages=["en", "de"], response_format="verbose_json")
    assert narrowed.language in ("en", "english", "de", "german"), narrowed.language
    with FRENCH.open("rb") as f, pytest.raises(openai.BadRequestError) as error:
        base_client.audio.transcriptions.create(model="gpt-transcribe", file=f, languages=["en", "klingon"])
    assert error.value.body["param"] == "languages"


def test_chunking_strategy(base_client):
    for strategy in ("auto", {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
                              "silence_duration_ms": 500}):
        with JFK.open("rb") as f:
            result = base_client.audio.transcriptions.create(
                model="gpt-transcribe", file=f, chunking_strategy=strategy, language="en")
        assert wer(REFERENCE, result.text) <= 0.15, (strategy, result.text)
    with JFK.open("rb") as f, pytest.raises(openai.BadRequestError) as error:
        base_client.audio.transcriptions.create(
            model="gpt-transcribe", file=f, chunking_strategy={"type": "server_vad", "threshold": 7})
    assert error.value.body["param"] == "chunking_strategy"


def test_keywords_reach_the_decoder(client):
    with JFK.open("rb") as f:
        result = client.audio.transcriptions.create(
            model="gpt-transcribe", file=f, keywords=["Kennedy", "inaugural address"])
    assert wer(REFERENCE, result.text) <= 0.1, result.text
