"""The live route under a real uvicorn on 127.0.0.1 (the official `openai` client, and a bare WebSocket
client for what that client would not send): the whole configuration at start, many sessions at once,
conversation sessions refused, the key at the handshake, admission, readiness, idle and session-length
closes."""

import asyncio
import json
import time
from asyncio import run
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import connect as ws_connect

import config
from tests.support.http_server import RunningServer, http_server
from tests.support.media import speech
from tests.support.realtime import (
    appends,
    client,
    live,
    pcm24,
    spoken,
    transcripts,
    ws_url,
)
from utils.asr.scheduler import scheduler
from utils.realtime import engine as live_engine

FIRST, SECOND, THIRD = "seven three nine", "two zero five one", "eight six four"


@pytest.fixture
def server(job_root: Path) -> Iterator[RunningServer]:
    with http_server() as running:
        yield running


# --- Sessions, keys and limits ----------------------------------------------------------------------


def test_session_created_carries_the_whole_configuration(server: RunningServer) -> None:
    async def session() -> dict[str, Any]:
        async with client(server.url).realtime.connect(extra_query={"intent": "transcription"}) as connection:
            return (await connection.recv()).model_dump(exclude_unset=True)

    created = run(session())["session"]
    assert created["type"] == "transcription"
    assert created["id"].startswith("sess_")
    audio_input = created["audio"]["input"]
    assert audio_input["format"] == {"type": "audio/pcm", "rate": 24000}
    assert audio_input["transcription"]["model"] == "parakeet-tdt-digits"
    assert audio_input["transcription"]["delay"] == config.LIVE_DEFAULT_DELAY
    assert audio_input["turn_detection"] == {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 500,
        "idle_timeout_ms": None,
        "create_response": True,
        "interrupt_response": True,
    }
    assert audio_input["noise_reduction"] is None


def test_eight_sessions_at_once_share_model_steps(server: RunningServer) -> None:
    phrases = [FIRST, SECOND, THIRD, "nine nine one", "four four two", "six five", "zero eight", "three one"]
    before = live_engine.engine.stats()

    async def one(phrase: str) -> list[str]:
        async with live(server.url) as connection:
            await connection.send(*appends(pcm24(spoken(phrase))))
            return transcripts(await connection.completions(1))

    async def sessions() -> list[list[str]]:
        return await asyncio.gather(*(one(phrase) for phrase in phrases))

    assert run(sessions()) == [[phrase] for phrase in phrases]
    after = live_engine.engine.stats()
    assert after.steps - before.steps < after.chunks - before.chunks


def test_a_conversation_session_is_refused(server: RunningServer) -> None:
    async def session(**connect: Any) -> tuple[dict[str, Any], int | None]:
        async with client(server.url).realtime.connect(**connect) as connection:
            error = (await connection.recv()).model_dump(exclude_unset=True)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await connection.recv()
            return error, closed.value.rcvd.code if closed.value.rcvd else None

    for connect in ({"model": "gpt-realtime"}, {}):
        error, code = run(session(**connect))
        assert error["type"] == "error"
        assert error["error"]["code"] == "conversation_not_served"
        assert "only transcription sessions are served" in error["error"]["message"]
        assert code == 1008


def denied(server: RunningServer, key: str = "unused", **connect: Any) -> tuple[int, dict[str, Any]]:
    async def attempt() -> None:
        extra = {"extra_query": {"intent": "transcription"}, **connect}
        async with client(server.url, key).realtime.connect(**extra) as connection:
            await connection.recv()

    with pytest.raises(websockets.InvalidStatus) as refused:
        run(attempt())
    response = refused.value.response
    return response.status_code, json.loads(response.body)["error"]


def test_the_api_key_is_checked_at_the_handshake(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "API_KEY", "s3cret")
    status, error = denied(server, key="wrong")
    assert (status, error["code"]) == (401, "unauthorized")

    async def bare(subprotocols: list[str], headers: dict[str, str]) -> tuple[str | None, str]:
        async with ws_connect(
            ws_url(server.port), subprotocols=subprotocols or None, additional_headers=headers
        ) as socket:
            return socket.subprotocol, json.loads(await socket.recv())["type"]

    with pytest.raises(websockets.InvalidStatus) as missing:
        run(bare([], {}))
    assert missing.value.response.status_code == 401
    assert missing.value.response.headers["WWW-Authenticate"] == "Bearer"
    with pytest.raises(websockets.InvalidStatus):
        run(bare(["realtime", "openai-insecure-api-key.wrong"], {}))

    async def right() -> str:
        async with live(server.url, key="s3cret") as connection:
            await connection.send(*appends(pcm24(spoken(FIRST))))
            return transcripts(await connection.completions(1))[0]

    assert run(right()) == FIRST
    browser = ["realtime", "openai-insecure-api-key.s3cret", "openai-beta.realtime-v1"]
    assert run(bare(browser, {})) == ("realtime", "session.created")
    assert run(bare([], {"Authorization": "Bearer s3cret"})) == (None, "session.created")


def test_a_full_worker_refuses_at_once_and_a_disconnect_frees_the_session(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "REALTIME_MAX_SESSIONS", 1)

    async def scenario() -> tuple[int, dict[str, Any], list[str]]:
        async with live(server.url) as first:
            await first.send(*appends(pcm24(speech("one two three four five six seven eight")[:-8000])))
            await first.until(lambda event: event["type"].endswith("speech_started"))
            assert live_engine.engine.open_turns() == 1
            started = time.monotonic()
            with pytest.raises(websockets.InvalidStatus) as refused:
                async with client(server.url).realtime.connect(
                    extra_query={"intent": "transcription"}
                ) as extra:
                    await extra.recv()
            assert time.monotonic() - started < 5
            status = refused.value.response.status_code
            body = json.loads(refused.value.response.body)["error"]
        # The first session left mid-turn: its turn is freed and its place taken at once.
        deadline = time.monotonic() + 10
        while live_engine.engine.open_turns() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert live_engine.engine.open_turns() == 0
        # The session's hold on the scheduler (file calls kept short) went with it.
        while scheduler._live_holds and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert scheduler._live_holds == 0
        async with live(server.url) as second:
            await second.send(*appends(pcm24(spoken(FIRST))))
            return status, body, transcripts(await second.completions(1))

    status, error, texts = run(scenario())
    assert (status, error["code"]) == (503, "busy")
    assert "REALTIME_MAX_SESSIONS" in error["message"]
    assert texts == [FIRST]


def test_sessions_wait_for_the_model(job_root: Path) -> None:
    with http_server(load=False) as starting:
        status, error = denied(starting)
    assert (status, error["code"]) == (503, "busy")
    assert "still loading" in error["message"]


def test_an_idle_session_is_closed_with_an_error(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "REALTIME_IDLE_TIMEOUT_SECONDS", 1.0)

    async def session() -> dict[str, Any]:
        async with live(server.url) as connection:
            return await connection.error(timeout=10)

    error = run(session())
    assert error["code"] == "idle_timeout"


def test_at_its_longest_a_session_answers_its_turn_then_closes(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "REALTIME_MAX_SESSION_SECONDS", 3.0)

    async def session() -> list[dict[str, Any]]:
        async with live(server.url, turn_detection=None) as connection:
            await connection.send(*appends(pcm24(speech(FIRST))))
            return await connection.until(lambda event: event["type"] == "error", timeout=20)

    events = run(session())
    assert transcripts(events) == [FIRST]
    assert events[-1]["error"]["code"] == "session_expired"
