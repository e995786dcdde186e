"""Live transcription (OpenAI Realtime, transcription sessions) against a real
stt-server: real libraries, base q8_0, the Silero VAD model, real and
synthesized speech. The official client (`openai[realtime]`) drives the
sessions; raw WebSocket frames (the `websockets` package it brings) cover what
the client cannot send.

Environment (set by scripts/test.sh): STT_SERVER_BIN, WHISPER_STT_TEST_LINKED,
WHISPER_STT_TEST_MODEL_BASE_Q8_0, WHISPER_STT_TEST_VAD_MODEL.

Bounds: completed transcripts joined against the reference, word error rate
<= 0.15 (jfk.wav, G.711 <= 0.2: telephone audio) and <= 0.1 for espeak-ng
sentences (base q8_0 reads them almost perfectly from a file).
"""

import asyncio
import base64
import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

import openai
import pytest
import websockets
from live_audio import SENTENCES, encode, read_wav, resample, silence, synthesize
from openai import AsyncOpenAI
from stt_server import start_server, stop_server
from wer import wer

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures"
JFK = FIXTURES / "jfk.wav"
JFK_TEXT = (FIXTURES / "jfk.txt").read_text(encoding="utf-8").strip()
USER_KEY = "live-user-key"
ADMIN_KEY = "live-admin-key"
MAX_SESSIONS = 3
IDLE_SECONDS = 4

COMPLETED = "conversation.item.input_audio_transcription.completed"
DELTA = "conversation.item.input_audio_transcription.delta"


def start_live_server(**extra: str):
    """base q8_0 with the VAD model, keys and small live limits."""
    return start_server(
        os.environ["WHISPER_STT_TEST_MODEL_BASE_Q8_0"],
        WHISPER_VAD_MODEL=os.environ["WHISPER_STT_TEST_VAD_MODEL"],
        STT_API_KEYS=USER_KEY,
        STT_ADMIN_KEYS=ADMIN_KEY,
        STT_LIVE_MAX_SESSIONS=str(MAX_SESSIONS),
        STT_LIVE_IDLE_SECONDS=str(IDLE_SECONDS),
        STT_MAX_CONNECTIONS="4096",
        **extra,
    )


@pytest.fixture(scope="module")
def server():
    process, base = start_live_server()
    yield base
    stop_server(process)


def client(base: str, key: str = USER_KEY) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=base + "/v1", api_key=key, max_retries=0)


def ws_url(base: str) -> str:
    return base.replace("http://", "ws://") + "/v1/realtime?intent=transcription"


def session_update(rate: int = 24000, kind: str = "audio/pcm", vad: bool = True, **transcription) -> dict:
    fmt = {"type": kind, "rate": rate} if kind == "audio/pcm" else {"type": kind}
    return {
        "type": "transcription",
        "audio": {"input": {
            "format": fmt,
            "transcription": {"model": "whisper-1", "language": "en", **transcription},
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 500} if vad else None,
        }},
    }


async def stream(conn, audio: bytes, bytes_per_second: int, speed: float, chunk_seconds: float = 0.1) -> None:
    """Appends `audio` in chunks, paced at `speed` × real time."""
    chunk = int(bytes_per_second * chunk_seconds) & ~1
    start = time.monotonic()
    for offset in range(0, len(audio), chunk):
        await conn.input_audio_buffer.append(audio=base64.b64encode(audio[offset:offset + chunk]).decode())
        due = start + (offset + chunk) / bytes_per_second / speed
        await asyncio.sleep(max(0.0, due - time.monotonic()))


async def collect(conn, until_completed: int, timeout: float) -> list:
    """Events (SDK models) until `until_completed` completed events arrived."""
    events, done = [], 0
    async with asyncio.timeout(timeout):
        async for event in conn:
            events.append(event)
            if event.type == "error":
                raise AssertionError(f"error event: {event.error}")
            done += event.type == COMPLETED
            if done >= until_completed:
                return events
    return events


async def run_vad_session(base: str, pcm24: bytes, speed: float, timeout: float) -> list:
    """Streams 24 kHz PCM with server VAD; returns every event until the send
    is over and each started turn has completed."""
    async with client(base).realtime.connect(extra_query={"intent": "transcription"}) as conn:
        await conn.session.update(session=session_update())
        events: list = []

        async def receive():
            async for event in conn:
                events.append(event)
                assert event.type != "error", event

        receiver = asyncio.create_task(receive())
        await stream(conn, pcm24, 48000, speed)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            started = sum(e.type == "input_audio_buffer.speech_started" for e in events)
            completed = sum(e.type == COMPLETED for e in events)
            if started and completed >= started:
                break
            await asyncio.sleep(0.1)
        receiver.cancel()
        return events


def turns(events: list) -> list[dict]:
    """Per item: its start and stop (audio ms), deltas before speech_stopped, and text."""
    items: dict[str, dict] = {}
    for e in events:
        item_id = getattr(e, "item_id", None)
        if item_id is None:
            continue
        item = items.setdefault(item_id, {"deltas": [], "stopped": False, "early_deltas": 0})
        if e.type == "input_audio_buffer.speech_started":
            item["start_ms"] = e.audio_start_ms
        elif e.type == "input_audio_buffer.speech_stopped":
            item["end_ms"] = e.audio_end_ms
            item["stopped"] = True
        elif e.type == DELTA:
            item["deltas"].append(e.delta)
            item["early_deltas"] += not item["stopped"]
        elif e.type == COMPLETED:
            item["transcript"] = e.transcript
    return list(items.values())


def test_vad_session_streams_deltas_and_finals_at_real_time(server):
    pcm, rate = read_wav(JFK)
    audio = resample(pcm, rate, 24000) + silence(1.5, 24000)
    events = asyncio.run(run_vad_session(server, audio, speed=1.0, timeout=30))
    kinds = [e.type for e in events]
    assert kinds[0] == "session.created" and kinds[1] == "session.updated", kinds[:3]
    items = turns(events)
    assert len(items) >= 2, items
    text = " ".join(i.get("transcript", "") for i in items)
    assert wer(JFK_TEXT, text) <= 0.15, text
    # Every committed item follows the one before it.
    committed = [e for e in events if e.type == "input_audio_buffer.committed"]
    assert committed[0].previous_item_id is None
    assert all(b.previous_item_id == a.item_id for a, b in zip(committed, committed[1:]))
    # Deltas concatenate to (nearly) the completed text: never taken back.
    for item in items:
        if item["deltas"]:
            assert wer(item["transcript"], "".join(item["deltas"])) <= 0.5, item


def test_synthesized_sentences_give_deltas_before_each_long_turn_ends(server):
    audio = silence(0.5, 24000) + synthesize(SENTENCES, pause=1.2, rate=24000)
    events = asyncio.run(run_vad_session(server, audio, speed=1.5, timeout=60))
    items = turns(events)
    long_turns = [i for i in items if i.get("end_ms", 0) - i.get("start_ms", 0) > 3000]
    assert len(long_turns) >= 3, items
    for item in long_turns:
        assert item["early_deltas"] >= 1, f"no delta before speech_stopped: {item}"
    text = " ".join(i.get("transcript", "") for i in items)
    assert wer(" ".join(SENTENCES), text) <= 0.1, text


async def manual_session(base: str, update: dict, audio: bytes, bytes_per_second: int) -> list:
    async with client(base).realtime.connect(extra_query={"intent": "transcription"}) as conn:
        await conn.session.update(session=update)
        await stream(conn, audio, bytes_per_second, speed=8.0)
        await conn.input_audio_buffer.commit()
        return await collect(conn, until_completed=1, timeout=60)


def test_manual_commit_at_16_khz_with_logprobs(server):
    pcm, rate = read_wav(JFK)
    update = session_update(rate=16000, vad=False)
    update["include"] = ["item.input_audio_transcription.logprobs"]
    events = asyncio.run(manual_session(server, update, resample(pcm, rate, 16000), 32000))
    assert events[1].session.audio.input.turn_detection is None
    assert not any(e.type == "input_audio_buffer.speech_started" for e in events)
    committed = [e for e in events if e.type == "input_audio_buffer.committed"]
    completed = events[-1]
    assert completed.type == COMPLETED and committed[0].item_id == completed.item_id
    assert wer(JFK_TEXT, completed.transcript) <= 0.15, completed.transcript
    assert completed.usage.type == "duration" and 10.5 <= completed.usage.seconds <= 11.5
    assert completed.logprobs and all(lp.logprob <= 0 for lp in completed.logprobs)
    assert "".join(lp.token for lp in completed.logprobs).strip()
    deltas = [e for e in events if e.type == DELTA]
    assert all(d.logprobs for d in deltas), "deltas carry logprobs when asked"


@pytest.mark.parametrize("kind", ["audio/pcmu", "audio/pcma"])
def test_g711_at_8_khz(server, kind):
    pcm, rate = read_wav(JFK)
    audio = encode(resample(pcm, rate, 8000), kind.split("/")[1])
    events = asyncio.run(manual_session(server, session_update(kind=kind, vad=False), audio, 8000))
    assert events[1].session.audio.input.format.type == kind
    assert wer(JFK_TEXT, events[-1].transcript) <= 0.2, events[-1].transcript


async def raw_session(base: str, subprotocols=None, headers=None):
    return await websockets.connect(
        ws_url(base),
        subprotocols=subprotocols,
        additional_headers=headers if headers is not None else {"Authorization": f"Bearer {USER_KEY}"},
        max_size=None,
    )


async def next_event(ws, kind: str | None = None, timeout: float = 30) -> dict:
    async with asyncio.timeout(timeout):
        while True:
            event = json.loads(await ws.recv())
            if kind is None or event["type"] == kind:
                return event


def test_beta_session_update_is_an_alias(server):
    async def run():
        async with await raw_session(server) as ws:
            await next_event(ws, "session.created")
            await ws.send(json.dumps({"type": "transcription_session.update", "session": {
                "input_audio_format": "pcm16",
                "input_audio_transcription": {"model": "gpt-4o-transcribe", "language": "en"},
                "turn_detection": None}}))
            return await next_event(ws)

    updated = asyncio.run(run())
    assert updated["type"] == "transcription_session.updated", updated
    assert updated["session"]["audio"]["input"]["turn_detection"] is None


def test_authentication_by_header_subprotocol_and_client_secret(server):
    async def run():
        # No key, a wrong key: refused at the upgrade.
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            with pytest.raises(websockets.InvalidStatus) as refused:
                await raw_session(server, headers=headers)
            assert refused.value.response.status_code == 401
        # A browser's way: the key in a subprotocol; the server answers "realtime".
        async with await raw_session(
            server, subprotocols=["realtime", f"openai-insecure-api-key.{USER_KEY}"], headers={}
        ) as ws:
            assert ws.subprotocol == "realtime"
            assert (await next_event(ws))["type"] == "session.created"
        # A client secret minted with the official client, carrying its session.
        secret = await client(server).realtime.client_secrets.create(
            expires_after={"anchor": "created_at", "seconds": 60},
            session=session_update(rate=16000, vad=False),
        )
        assert secret.value.startswith("ek_") and secret.expires_at > time.time()
        async with client(server, key=secret.value).realtime.connect(
            extra_query={"intent": "transcription"}
        ) as conn:
            created = await conn.recv()
            assert created.type == "session.created"
            assert created.session.audio.input.turn_detection is None
            assert created.session.audio.input.format.rate == 16000
        # The secret opens live sessions only.
        with pytest.raises(openai.AuthenticationError):
            await client(server, key=secret.value).models.list()

    asyncio.run(run())


def test_bad_input_gets_error_events_and_the_session_goes_on(server):
    b64 = lambda data: base64.b64encode(data).decode()  # noqa: E731

    async def run():
        async with await raw_session(server) as ws:
            await next_event(ws, "session.created")
            cases = [
                ("not json", None, "invalid_json"),
                (json.dumps({"type": "response.create", "event_id": "e1"}), "e1", "unknown_event"),
                (json.dumps({"type": "input_audio_buffer.append", "event_id": "e2", "audio": "%%%"}), "e2",
                 "invalid_base64"),
                (json.dumps({"type": "input_audio_buffer.append", "event_id": "e3", "audio": b64(b"\1\2\3")}), "e3",
                 "invalid_audio"),
                (json.dumps({"type": "session.update", "event_id": "e4", "session": {
                    "type": "transcription", "audio": {"input": {"format": {"type": "audio/pcm", "rate": 44100}}}}}),
                 "e4", "invalid_value"),
                (json.dumps({"type": "session.update", "event_id": "e5", "session": {
                    "type": "transcription", "audio": {"input": {"transcription": {"model": "gpt-9"}}}}}),
                 "e5", "model_not_found"),
                (json.dumps({"type": "session.update", "event_id": "e6", "session": {
                    "type": "transcription", "audio": {"input": {"transcription": {"language": "xx"}}}}}),
                 "e6", "invalid_value"),
                (json.dumps({"type": "input_audio_buffer.append", "event_id": "e7",
                             "audio": b64(bytes(15 * 1024 * 1024 + 2))}), "e7", "audio_too_large"),
                (json.dumps({"type": "input_audio_buffer.commit", "event_id": "e8"}), "e8",
                 "input_audio_buffer_commit_empty"),
            ]
            for text, event_id, code in cases:
                await ws.send(text)
                error = await next_event(ws, "error")
                assert error["error"]["code"] == code, (text[:80], error)
                assert error["error"]["event_id"] == event_id
            await ws.send(b"\0\1binary")
            assert (await next_event(ws, "error"))["error"]["code"] == "binary_not_supported"
            # The session still works: a manual turn.
            await ws.send(json.dumps({"type": "session.update", "session": session_update(rate=16000, vad=False)}))
            await next_event(ws, "session.updated")
            pcm, rate = read_wav(JFK)
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": b64(resample(pcm, rate, 16000))}))
            await ws.send(json.dumps({"type": "input_audio_buffer.clear"}))
            await next_event(ws, "input_audio_buffer.cleared")
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": b64(resample(pcm, rate, 16000))}))
            await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
            return await next_event(ws, COMPLETED, timeout=60)

    completed = asyncio.run(run())
    assert wer(JFK_TEXT, completed["transcript"]) <= 0.15


def metric(base: str, name: str) -> float:
    request = urllib.request.Request(base + "/metrics", headers={"Authorization": f"Bearer {USER_KEY}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def test_session_limit_idle_close_and_a_thousand_upgrades(server):
    async def run():
        held = [await raw_session(server) for _ in range(MAX_SESSIONS)]
        for ws in held:
            await next_event(ws, "session.created")
        assert metric(server, "stt_live_sessions") == MAX_SESSIONS
        with pytest.raises(websockets.InvalidStatus) as full:
            await raw_session(server)
        assert full.value.response.status_code == 429

        # A thousand upgrades at once: each gets 101 or 429, nothing else.
        async def attempt():
            try:
                ws = await raw_session(server)
                await ws.close()
                return 101
            except websockets.InvalidStatus as refused:
                return refused.response.status_code

        results = await asyncio.gather(*(attempt() for _ in range(1000)))
        assert set(results) == {429}, {r: results.count(r) for r in set(results)}

        # Idle sessions are closed with 1008 after STT_LIVE_IDLE_SECONDS without
        # audio; events without audio (here a clear every half second) do not
        # keep one open.
        async def chatter(ws):
            try:
                while True:
                    await ws.send(json.dumps({"type": "input_audio_buffer.clear"}))
                    await asyncio.sleep(0.5)
            except websockets.ConnectionClosed:
                pass

        chatting = asyncio.create_task(chatter(held[0]))
        for ws in held:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await next_event(ws, "never", timeout=IDLE_SECONDS + 10)
            assert closed.value.rcvd.code == 1008, closed.value
        await chatting
        await asyncio.sleep(0.5)
        assert metric(server, "stt_live_sessions") == 0

    asyncio.run(run())
    # The file endpoint still serves.
    files = openai.OpenAI(base_url=server + "/v1", api_key=USER_KEY, max_retries=0)
    with JFK.open("rb") as f:
        assert wer(JFK_TEXT, files.audio.transcriptions.create(model="whisper-1", file=f).text) <= 0.1


def test_a_client_gone_mid_turn_frees_its_session(server):
    pcm, rate = read_wav(JFK)

    async def run():
        ws = await raw_session(server)
        await next_event(ws, "session.created")
        audio = resample(pcm, rate, 24000)
        for offset in range(0, len(audio) // 2, 9600):
            await ws.send(json.dumps({"type": "input_audio_buffer.append",
                                      "audio": base64.b64encode(audio[offset:offset + 9600]).decode()}))
        await next_event(ws, "input_audio_buffer.speech_started")
        ws.transport.abort()  # no close frame
        await asyncio.wait_for(ws.wait_closed(), 5)
        await asyncio.sleep(1.0)

    asyncio.run(run())
    assert metric(server, "stt_live_sessions") == 0


def test_live_metrics_count_latency_audio_and_sessions(server):
    # Earlier tests streamed turns through this server.
    assert metric(server, "stt_live_partial_latency_seconds_count") > 0
    assert metric(server, "stt_live_final_latency_seconds_count") > 0
    assert metric(server, "stt_live_audio_seconds_total") > 30
    assert metric(server, 'stt_live_sessions_refused_total{reason="full"}') >= 1000
    assert metric(server, 'stt_live_sessions_refused_total{reason="auth"}') >= 2


def test_shutdown_sends_sessions_a_close_frame():
    process, base = start_live_server()
    try:
        async def run():
            ws = await raw_session(base)
            await next_event(ws, "session.created")
            process.terminate()
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await next_event(ws, "never", timeout=20)
            return closed.value.rcvd

        close = asyncio.run(run())
        assert close is not None and close.code == 1001, close
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
