"""Live transcription end to end: the live door under a real uvicorn on 127.0.0.1 (and `server.py` for
SIGTERM), driven by the official `openai` client's realtime connection, with real espeak-ng speech through
the converter, the turn detector, the engine and the bundled model: turns, formats, every malformed event,
large appends, a file job beside a session, shutdown."""

import asyncio
import itertools
import json
import signal
import threading
import time
from asyncio import run
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import websockets
from websockets.asyncio.client import connect as ws_connect

import config
from tests.support.http_server import RunningServer, http_server, post
from tests.support.media import b64, encode, speech
from tests.support.model_spy import ModelSpy
from tests.support.realtime import (
    G711_CHUNK_BYTES,
    appends,
    assert_turns_well_formed,
    g711,
    live,
    pcm24,
    silence,
    spoken,
    transcripts,
    ws_url,
)
from tests.support.worker import http_server_process, ping

FIRST, SECOND, THIRD = "seven three nine", "two zero five one", "eight six four"
# Phrases the small test model still hears right at telephony's 8 kHz (it misses words of others there).
NARROWBAND = ("two zero five one", "nine eight seven six")
COMMIT = {"type": "input_audio_buffer.commit"}
COMPLETED = "conversation.item.input_audio_transcription.completed"


@pytest.fixture
def server(job_root: Path) -> Iterator[RunningServer]:
    with http_server() as running:
        yield running


# --- Turns ---------------------------------------------------------------------------------------


def test_server_vad_turns_from_speech_with_pauses(server: RunningServer) -> None:
    async def session() -> list[dict[str, Any]]:
        async with live(server.url) as connection:
            await connection.send(*appends(pcm24(spoken(FIRST, SECOND, THIRD))))
            return await connection.completions(3)

    events = run(session())
    assert transcripts(events) == [FIRST, SECOND, THIRD]
    assert_turns_well_formed(events, vad=True)
    starts = [event["audio_start_ms"] for event in events if event["type"].endswith("speech_started")]
    assert starts == sorted(starts)


def test_a_long_turn_streams_deltas_before_it_ends(server: RunningServer) -> None:
    words = "one two three four five six seven eight nine zero one two three four"

    async def session() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        # A patient turn detection: synthesized speech may pause for half a second between words.
        patient = {"type": "server_vad", "silence_duration_ms": 1500}
        async with live(server.url, turn_detection=patient) as connection:
            await connection.send(*appends(pcm24(speech(words))))  # no pause after it: the turn goes on
            before = await connection.until(lambda event: event["type"].endswith("transcription.delta"))
            await connection.send(*appends(pcm24(silence(2.0))))
            return before, await connection.completions(1)

    before, after = run(session())
    assert not [event for event in before if event["type"].endswith("speech_stopped")]
    events = before + after
    assert transcripts(events) == [words]
    assert len([event for event in events if event["type"].endswith("transcription.delta")]) >= 2
    assert_turns_well_formed(events, vad=True)


def test_manual_commits_make_one_turn_each(server: RunningServer) -> None:
    async def session() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        async with live(server.url, turn_detection=None) as connection:
            await connection.send({"type": "input_audio_buffer.commit", "event_id": "evt_empty"})
            empty = await connection.error()
            await connection.send(*appends(pcm24(speech(FIRST))), COMMIT)
            await connection.send(*appends(pcm24(speech(SECOND))), COMMIT)
            return empty, await connection.completions(2)

    empty, events = run(session())
    assert empty["code"] == "input_audio_buffer_commit_empty"
    assert empty["event_id"] == "evt_empty"
    assert "0 ms of audio" in empty["message"]
    assert transcripts(events) == [FIRST, SECOND]
    assert not [event for event in events if event["type"].startswith("input_audio_buffer.speech")]
    assert_turns_well_formed(events, vad=False)


def test_numbers_as_digits_come_as_digits_in_deltas_and_completed(server: RunningServer) -> None:
    long = "one two three four five six seven eight nine zero one two three four"

    async def session() -> list[dict[str, Any]]:
        async with live(server.url, turn_detection=None, transcription={"numbers": "digits"}) as connection:
            await connection.send(*appends(pcm24(speech(FIRST))), COMMIT)
            await connection.send(*appends(pcm24(speech(long))), COMMIT)
            return await connection.completions(2)

    events = run(session())
    assert transcripts(events) == ["7 3 9", "1 2 3 4 5 6 7 8 9 0 1 2 3 4"]
    assert_turns_well_formed(events, vad=False)  # the language is told from the words as spoken
    [_, second] = [event["item_id"] for event in events if event["type"] == "input_audio_buffer.committed"]
    done = next(event for event in events if event["type"] == COMPLETED and event["item_id"] == second)
    assert [word["word"] for word in done["words"]] == done["transcript"].split()
    assert done["words"][0]["start"] < done["words"][-1]["start"]


def test_the_official_sync_client_transcribes_too(server: RunningServer) -> None:
    sync = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    with sync.realtime.connect(extra_query={"intent": "transcription"}) as connection:
        assert connection.recv().type == "session.created"
        manual = {"type": "transcription", "audio": {"input": {"turn_detection": None}}}
        connection.session.update(session=manual)
        assert connection.recv().type == "session.updated"
        for event in appends(pcm24(speech(FIRST))):
            connection.send(event)
        connection.input_audio_buffer.commit()
        events = []
        while not events or events[-1]["type"] != COMPLETED:
            events.append(connection.recv().model_dump(exclude_unset=True))
    assert transcripts(events) == [FIRST]
    assert_turns_well_formed(events, vad=False)


@pytest.mark.parametrize(("format_type", "law"), [("audio/pcmu", "mulaw"), ("audio/pcma", "alaw")])
def test_g711_input_at_8_khz(server: RunningServer, format_type: str, law: str) -> None:
    async def session() -> list[dict[str, Any]]:
        async with live(server.url, format={"type": format_type}) as connection:
            await connection.send(*appends(g711(spoken(*NARROWBAND), law), G711_CHUNK_BYTES))
            return await connection.completions(2)

    events = run(session())
    assert transcripts(events) == list(NARROWBAND)
    assert_turns_well_formed(events, vad=True)


def test_clear_drops_the_turn_in_progress(server: RunningServer) -> None:
    async def session() -> list[dict[str, Any]]:
        async with live(server.url, turn_detection=None) as connection:
            await connection.send(*appends(pcm24(speech(FIRST))), {"type": "input_audio_buffer.clear"})
            await connection.until(lambda event: event["type"] == "input_audio_buffer.cleared")
            await connection.send(*appends(pcm24(speech(SECOND))), COMMIT)
            return await connection.completions(1)

    assert transcripts(run(session())) == [SECOND]


def test_semantic_vad_is_server_vad_whose_silence_follows_eagerness(server: RunningServer) -> None:
    async def session() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        turn_detection = {"type": "semantic_vad", "eagerness": "high"}
        async with live(server.url) as connection:
            update = {"type": "transcription", "audio": {"input": {"turn_detection": turn_detection}}}
            await connection.send({"type": "session.update", "session": update})
            updated = await connection.next()
            await connection.send(*appends(pcm24(spoken(FIRST, SECOND))))
            return updated, await connection.completions(2)

    updated, events = run(session())
    shown = updated["session"]["audio"]["input"]["turn_detection"]
    assert shown["type"] == "semantic_vad"
    assert shown["silence_duration_ms"] == config.REALTIME_EAGERNESS_SILENCE_MS["high"]
    assert transcripts(events) == [FIRST, SECOND]


def test_the_older_transcription_session_update_is_answered_in_its_shape(server: RunningServer) -> None:
    async def session() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        async with live(server.url) as connection:
            update = {"input_audio_format": "g711_ulaw", "turn_detection": None}
            await connection.connection.send_raw(
                json.dumps({"type": "transcription_session.update", "session": update})
            )
            updated = await connection.next()
            await connection.send(*appends(g711(speech(NARROWBAND[0]), "mulaw"), G711_CHUNK_BYTES), COMMIT)
            return updated, await connection.completions(1)

    updated, events = run(session())
    assert updated["type"] == "transcription_session.updated"
    assert updated["session"]["input_audio_format"] == "g711_ulaw"
    assert updated["session"]["turn_detection"] is None
    assert transcripts(events) == [NARROWBAND[0]]


def test_a_turn_longer_than_the_limit_is_committed_where_it_stands(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "REALTIME_MAX_TURN_SECONDS", 2.0)
    words = "one two three four five six seven eight nine zero"

    async def session() -> list[dict[str, Any]]:
        async with live(server.url) as connection:
            await connection.send(*appends(pcm24(spoken(words))))
            return await connection.until(lambda event: event["type"].endswith("speech_stopped"))

    events = run(session())
    starts = [event["audio_start_ms"] for event in events if event["type"].endswith("speech_started")]
    assert len(starts) >= 2
    assert all(later - earlier == 2000 for earlier, later in itertools.pairwise(starts))


def test_without_turn_detection_an_append_past_the_limit_is_refused(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "REALTIME_MAX_TURN_SECONDS", 1.0)

    async def session() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        async with live(server.url, turn_detection=None) as connection:
            for seconds in (0.9, 0.2):  # one append each
                await connection.send(*appends(pcm24(silence(seconds)), 1 << 20))
            full = await connection.error()
            await connection.send(COMMIT)
            return full, await connection.completions(1)

    full, events = run(session())
    assert full["code"] == "input_audio_buffer_full"
    assert full["param"] == "audio"
    done = [event for event in events if event["type"] == COMPLETED]
    assert done[0]["usage"]["seconds"] == pytest.approx(0.9, abs=0.01)


# --- Bad events ------------------------------------------------------------------------------------

UPDATE = "session.update"


def update(audio_input: dict[str, Any], **session: Any) -> str:
    return json.dumps(
        {"type": UPDATE, "session": {"type": "transcription", "audio": {"input": audio_input}, **session}}
    )


BAD_EVENTS = [
    ("this is not json", "invalid_json", None, "not JSON"),
    ("[1, 2]", "invalid_event", None, "must be a JSON object"),
    ('{"event_id": "evt_1"}', "missing_required_parameter", "type", "type is required"),
    ('{"type": "response.create"}', "unknown_event", "type", "only transcription sessions are"),
    ('{"type": "input_audio_buffer.append"}', "missing_required_parameter", "audio", "audio is required"),
    ('{"type": "input_audio_buffer.append", "audio": "@@@"}', "invalid_value", "audio", "base64"),
    ('{"type": "input_audio_buffer.append", "audio": 5}', "invalid_value", "audio", "valid string"),
    ('{"type": "input_audio_buffer.commit", "extra": 1}', "unknown_parameter", "extra", "not a known field"),
    (json.dumps({"type": UPDATE, "session": {"type": "realtime"}}), "invalid_value", "session.type", "only"),
    (update({"format": {"type": "audio/wav"}}), "invalid_value", "session.audio.input.format.type", "one of"),
    (
        update({"format": {"type": "audio/pcm", "rate": 16000}}),
        "invalid_value",
        "session.audio.input.format.rate",
        "should be 24000",
    ),
    (
        update({"turn_detection": {"type": "server_vad", "threshold": 1.5}}),
        "invalid_value",
        "session.audio.input.turn_detection.threshold",
        "less than or equal to 1",
    ),
    (
        update({"turn_detection": {"type": "server_vad", "silence_duration_ms": 5}}),
        "invalid_value",
        "session.audio.input.turn_detection.silence_duration_ms",
        "greater than or equal to 100",
    ),
    (
        update({"turn_detection": {"type": "semantic_vad", "eagerness": "eager"}}),
        "invalid_value",
        "session.audio.input.turn_detection.eagerness",
        "'low'",
    ),
    (
        update({"transcription": {"delay": "instant"}}),
        "invalid_value",
        "session.audio.input.transcription.delay",
        "'minimal'",
    ),
    (
        update({"transcription": {"prompt": "expect digits"}}),
        "invalid_value",
        "session.audio.input.transcription.prompt",
        "not supported",
    ),
    (
        update({"transcription": {"language": "xx"}}),
        "invalid_value",
        "session.audio.input.transcription.language",
        "not one the model transcribes",
    ),
    (
        update({"transcription": {"keywords": ["x" * 200]}}),
        "invalid_value",
        "session.audio.input.transcription.keywords[0]",
        "characters",
    ),
    (
        update({}, include=["item.input_audio_transcription.logprobs"]),
        "invalid_value",
        "session.include[0]",
        "logprobs",
    ),
    (update({"colour": "blue"}), "unknown_parameter", "session.audio.input.colour", "not a known field"),
    (
        json.dumps({"type": UPDATE, "session": {"type": "transcription", "audio": {"output": {}}}}),
        "unknown_parameter",
        "session.audio.output",
        "not a known field",
    ),
    ('{"type": "input_audio_buffer.commit"}', "input_audio_buffer_commit_empty", None, "no speech"),
]


def test_every_malformed_event_gets_an_error_naming_the_field_and_the_session_goes_on(
    server: RunningServer,
) -> None:
    async def session() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        async with live(server.url) as connection:
            errors = []
            for index, (text, _, _, _) in enumerate(BAD_EVENTS):
                data = json.loads(text) if text.startswith("{") else None
                if data is not None:
                    text = json.dumps({**data, "event_id": f"evt_{index}"})
                await connection.connection.send_raw(text)
                errors.append(await connection.error())
            await connection.send(*appends(pcm24(spoken(FIRST))))
            return errors, await connection.completions(1)

    errors, events = run(session())
    for index, (error, (_, code, param, fragment)) in enumerate(zip(errors, BAD_EVENTS, strict=True)):
        assert (error["code"], error.get("param")) == (code, param), error
        assert fragment in error["message"], error
        assert error["type"] == "invalid_request_error"
        if BAD_EVENTS[index][0].startswith("{"):
            assert error["event_id"] == f"evt_{index}"
    assert transcripts(events) == [FIRST]


def test_an_append_over_15_mib_is_refused(server: RunningServer) -> None:
    async def session() -> dict[str, Any]:
        async with live(server.url) as connection:
            await connection.send(*appends(bytes(config.REALTIME_MAX_APPEND_BYTES + 2), 1 << 30))
            return await connection.error()

    error = run(session())
    assert (error["code"], error["param"]) == ("invalid_value", "audio")
    assert "15 MiB" in error["message"]


def test_a_large_append_is_taken_whole(server: RunningServer) -> None:
    phrases = [FIRST, SECOND, THIRD] * 4
    audio = pcm24(spoken(*phrases))  # over 1 MiB: read off the event loop, its turns found in one go
    assert len(audio) > 1024 * 1024

    async def session() -> list[dict[str, Any]]:
        async with live(server.url) as connection:
            await connection.send(*appends(audio, len(audio)))
            return await connection.completions(len(phrases))

    events = run(session())
    assert transcripts(events) == phrases
    assert_turns_well_formed(events, vad=True)


def test_a_failed_update_changes_nothing(server: RunningServer) -> None:
    async def session() -> tuple[dict[str, Any], dict[str, Any]]:
        async with live(server.url) as connection:
            bad = {"format": {"type": "audio/pcmu"}, "transcription": {"prompt": "hello"}}
            await connection.connection.send_raw(update(bad))
            await connection.error()
            await connection.connection.send_raw(update({}))
            return (await connection.next())["session"], connection.received[0]

    after, _ = run(session())
    assert after["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}


# --- In company ------------------------------------------------------------------------------------


def test_a_live_session_while_a_file_job_runs(
    server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A batch job of many items, one model call each: live steps go before its waiting calls.
    monkeypatch.setattr(config, "BATCH_SIZE", 1)
    spy = ModelSpy(monkeypatch)  # sees the file job's model calls (live steps do not call transcribe)
    clip = encode(speech(f"{FIRST} {SECOND} {THIRD}"), tmp_path / "clip.flac")
    items = 40
    job_input = {"audios": [{"audio_base64": b64(clip)} for _ in range(items)]}
    job: dict[str, Any] = {}

    def file_job() -> None:
        _, _, body = post(server.port, "/v1/jobs", json.dumps(job_input).encode(), "application/json")
        job["result"] = json.loads(body)
        job["done"] = time.monotonic()

    worker = threading.Thread(target=file_job)
    worker.start()
    deadline = time.monotonic() + 60
    while not spy.calls:  # the live session starts once the file job is being transcribed
        assert time.monotonic() < deadline, "the file job did not start"
        time.sleep(0.01)

    async def session() -> tuple[list[str], float]:
        async with live(server.url) as connection:
            await connection.send(*appends(pcm24(spoken(FIRST, SECOND))))
            events = await connection.completions(2)
            return transcripts(events), time.monotonic()

    texts, live_done = run(session())
    worker.join(timeout=300)
    assert texts == [FIRST, SECOND]
    assert [item["text"] for item in job["result"]["results"]] == [f"{FIRST} {SECOND} {THIRD}"] * items
    assert live_done < job["done"]


def test_sigterm_answers_the_turn_in_flight_then_closes_the_session(tmp_path: Path) -> None:
    with http_server_process(tmp_path / "server.log") as running:
        deadline = time.monotonic() + 300
        while ping(running.health_port) != 200:
            assert time.monotonic() < deadline, "the server did not load its model"
            time.sleep(0.2)
        assert denied_status(running.health_port) == 403  # the health port serves /ping alone

        async def session() -> list[dict[str, Any]]:
            async with live(running.url, turn_detection=None) as connection:
                await connection.send(*appends(pcm24(speech(FIRST))))
                await asyncio.sleep(0.5)
                running.process.send_signal(signal.SIGTERM)
                return await connection.until(lambda event: event["type"] == "error", timeout=60)

        events = run(session())
        assert running.process.wait(timeout=60) == 0  # a graceful stop is a normal exit
    assert transcripts(events) == [FIRST]
    assert events[-1]["error"]["code"] == "server_shutting_down"


def denied_status(port: int) -> int:
    """The HTTP status of a refused handshake."""

    async def attempt() -> None:
        async with ws_connect(ws_url(port)) as socket:
            await socket.recv()

    with pytest.raises(websockets.InvalidStatus) as refused:
        run(attempt())
    return refused.value.response.status_code
