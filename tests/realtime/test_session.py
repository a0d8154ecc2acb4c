"""One session's state machine driven directly (its events collected as the connection would send them),
with the real converter, turn detector, engine and bundled model: the timeline, clear and close freeing
engine turns at once, settings changed mid-session."""

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import pytest

import config
from tests.support.media import speech
from tests.support.realtime import g711, pcm24, silence
from utils.job import pipeline as job_pipeline
from utils.realtime import engine as live_engine
from utils.realtime.session import Session

FIRST, SECOND = "seven three nine", "two zero five one"
COMPLETED = "conversation.item.input_audio_transcription.completed"


@pytest.fixture(scope="module", autouse=True)
def loaded() -> None:
    job_pipeline.load_models()


class Recorded:
    """A session and the events it sent."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()

        async def send(event: dict[str, Any]) -> None:
            self.events.append(json.loads(json.dumps(event)))  # as the wire would carry it
            self.arrived.set()

        self.session = Session(send)

    async def send(self, event: dict[str, Any]) -> None:
        await self.session.handle(json.dumps(event))

    async def append(self, raw: bytes, chunk: int = 4800) -> None:
        for at in range(0, len(raw), chunk):
            audio = base64.b64encode(raw[at : at + chunk]).decode()
            await self.send({"type": "input_audio_buffer.append", "audio": audio})

    async def wait_for(self, done: Callable[[list[dict[str, Any]]], bool], timeout: float = 60) -> None:
        async def waiting() -> None:
            while not done(self.events):
                self.arrived.clear()
                await self.arrived.wait()

        await asyncio.wait_for(waiting(), timeout)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event["type"].endswith(kind)]


def completed(count: int) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda events: sum(event["type"] == COMPLETED for event in events) >= count


def update(audio_input: dict[str, Any]) -> dict[str, Any]:
    return {"type": "session.update", "session": {"type": "transcription", "audio": {"input": audio_input}}}


def scenario(steps: Callable[[Recorded], Awaitable[None]]) -> Recorded:
    async def run() -> Recorded:
        recorded = Recorded()
        try:
            await recorded.session.start()
            await steps(recorded)
        finally:
            recorded.session.close()
        return recorded

    return asyncio.run(run())


def test_turn_times_are_on_the_session_timeline_with_prefix_padding() -> None:
    lead = 2.0  # seconds of silence before the speech
    spoken = speech(FIRST)  # 0.3 s of silence lead it, then the words
    onset = lead + 0.3

    async def steps(recorded: Recorded) -> None:
        await recorded.append(pcm24(np.concatenate([silence(lead), spoken, silence(1.0)])))
        await recorded.wait_for(completed(1))

    recorded = scenario(steps)
    [started] = recorded.of("speech_started")
    prefix = config.REALTIME_PREFIX_PADDING_MS_BOUNDS  # the default padding is 300 ms, within them
    assert prefix[0] <= 300 <= prefix[1]
    assert started["audio_start_ms"] / 1000 == pytest.approx(onset - 0.3, abs=0.1)
    [done] = recorded.of("transcription.completed")
    assert done["transcript"] == FIRST
    assert done["words"][0]["start"] == pytest.approx(onset, abs=0.25)
    assert done["words"][0]["start"] >= started["audio_start_ms"] / 1000


def test_clear_and_close_free_engine_turns_at_once() -> None:
    async def steps(recorded: Recorded) -> None:
        await recorded.send(update({"turn_detection": None}))
        before = live_engine.engine.open_turns()
        await recorded.append(pcm24(speech(FIRST)))
        assert live_engine.engine.open_turns() == before + 1
        assert recorded.session.active_turns == 1
        await recorded.send({"type": "input_audio_buffer.clear"})
        assert live_engine.engine.open_turns() == before
        assert recorded.session.active_turns == 0
        await recorded.append(pcm24(speech(SECOND)))
        assert live_engine.engine.open_turns() == before + 1
        recorded.session.close()
        assert live_engine.engine.open_turns() == before
        await asyncio.sleep(0.5)

    recorded = scenario(steps)
    assert recorded.of("buffer.cleared")
    assert not recorded.of("transcription.completed")
    assert not recorded.of("buffer.committed")


def test_format_and_turn_detection_can_change_mid_session() -> None:
    async def steps(recorded: Recorded) -> None:
        await recorded.send(update({"turn_detection": None}))
        await recorded.append(pcm24(speech(SECOND)))
        # Turn detection changes with a turn open: the turn is committed under the rules it began with.
        await recorded.send(
            update({"format": {"type": "audio/pcmu"}, "turn_detection": {"type": "server_vad"}})
        )
        await recorded.append(
            g711(np.concatenate([speech("nine eight seven six"), silence(1.0)]), "mulaw"), 800
        )
        await recorded.wait_for(completed(2))

    recorded = scenario(steps)
    assert [event["transcript"] for event in recorded.of("transcription.completed")] == [
        SECOND,
        "nine eight seven six",
    ]
    assert len(recorded.of("speech_started")) == 1
    [_, second] = recorded.of("buffer.committed")
    [started] = recorded.of("speech_started")
    assert started["item_id"] == second["item_id"]


def test_a_keyword_the_model_cannot_write_is_refused_by_name() -> None:
    async def steps(recorded: Recorded) -> None:
        await recorded.send(update({"transcription": {"keywords": ["seven", "Жук"]}}))

    recorded = scenario(steps)
    [error] = recorded.of("error")
    assert error["error"]["param"] == "session.audio.input.transcription.keywords[1]"
    assert "cannot write" in error["error"]["message"]


def test_an_unexpected_failure_is_an_error_event_and_the_session_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(self: live_engine.LiveEngine, *args: Any) -> None:
        # Injected: a bug in the engine cannot be caused from outside.
        raise RuntimeError("injected")

    async def steps(recorded: Recorded) -> None:
        await recorded.send(update({"turn_detection": None}))
        with monkeypatch.context() as patch:
            patch.setattr(live_engine.LiveEngine, "open_turn", broken)
            await recorded.append(pcm24(speech(FIRST)))
        await recorded.append(pcm24(speech(FIRST)))
        await recorded.send({"type": "input_audio_buffer.commit"})
        await recorded.wait_for(completed(1))

    recorded = scenario(steps)
    errors = recorded.of("error")
    assert errors[0]["error"]["type"] == "server_error"
    assert errors[0]["error"]["code"] == "internal"
    assert "injected" not in errors[0]["error"]["message"]
    assert recorded.of("transcription.completed")[0]["transcript"] == FIRST


def test_a_language_the_detector_does_not_know_gives_no_language() -> None:
    async def steps(recorded: Recorded) -> None:
        await recorded.send(update({"turn_detection": None, "transcription": {"language": "mt"}}))
        await recorded.append(pcm24(speech(FIRST)))
        await recorded.send({"type": "input_audio_buffer.commit"})
        await recorded.wait_for(completed(1))

    [done] = scenario(steps).of("transcription.completed")
    assert done["transcript"] == FIRST
    assert done["languages"] == []  # Maltese cannot be told from text here; "en" would be a guess


def test_a_failed_turn_is_reported_and_the_next_one_transcribed(monkeypatch: pytest.MonkeyPatch) -> None:
    from utils.realtime import streaming

    real_step = streaming.LiveModel.step

    def failing(self: streaming.LiveModel, frames: list[streaming.Frame]) -> list[streaming.Tokens]:
        # Injected: a model step that fails (out of memory, a library bug) cannot be caused on purpose.
        raise RuntimeError("injected step failure")

    async def steps(recorded: Recorded) -> None:
        await recorded.send(update({"turn_detection": None}))
        monkeypatch.setattr(streaming.LiveModel, "step", failing)
        await recorded.append(pcm24(speech(FIRST)))
        await recorded.send({"type": "input_audio_buffer.commit"})
        await recorded.wait_for(lambda events: any(e["type"].endswith(".failed") for e in events))
        monkeypatch.setattr(streaming.LiveModel, "step", real_step)
        await recorded.append(pcm24(speech(SECOND)))
        await recorded.send({"type": "input_audio_buffer.commit"})
        await recorded.wait_for(completed(1))

    recorded = scenario(steps)
    [failed] = recorded.of("transcription.failed")
    assert failed["error"]["code"] == "internal"
    assert "injected" not in failed["error"]["message"]
    [first, second] = recorded.of("buffer.committed")
    assert failed["item_id"] == first["item_id"]
    [done] = recorded.of("transcription.completed")
    assert (done["item_id"], done["transcript"]) == (second["item_id"], SECOND)


def test_a_client_faster_than_the_model_waits_so_the_audio_held_stays_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(config, "REALTIME_MAX_TURN_SECONDS", 3.0)
    turn = pcm24(speech(FIRST))  # about 2.3 s
    waiting: list[float] = []

    async def steps(recorded: Recorded) -> None:
        await recorded.send(update({"turn_detection": None}))
        for _ in range(20):  # as fast as the session takes them: far faster than real time
            await recorded.append(turn, chunk=len(turn))
            await recorded.send({"type": "input_audio_buffer.commit"})
            waiting.append(sum(each.live.waiting_seconds for each in recorded.session._turns))
        await recorded.wait_for(completed(20), timeout=120)

    recorded = scenario(steps)
    # At most the bound, and the one append that came while the audio waiting was under it.
    assert max(waiting) <= 3.0 + len(turn) / 2 / 24000
    assert [event["transcript"] for event in recorded.of("completed")] == [FIRST] * 20
