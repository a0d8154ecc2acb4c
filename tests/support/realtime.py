"""Live sessions for tests and benchmarks: audio in the Realtime API's formats, and a session driven by
the official `openai` client's async realtime connection, its events read with a timeout."""

import asyncio
import base64
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import openai
import pytest
from scipy.signal import resample_poly

import config
from tests.support.media import speech

EVENT_TIMEOUT_SECONDS = 60.0
# 100 ms of each format, as clients commonly send it.
PCM_CHUNK_BYTES = 4800
G711_CHUNK_BYTES = 800


def pcm24(samples: np.ndarray) -> bytes:
    """16 kHz float32 samples as the Realtime API's `audio/pcm`: 16-bit little-endian at 24 kHz."""
    resampled = resample_poly(samples.astype(np.float64), 3, 2)
    return (np.clip(resampled, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def g711(samples: np.ndarray, law: str) -> bytes:
    """16 kHz float32 samples as G.711 at 8 kHz (`mulaw` or `alaw`), encoded by the real ffmpeg."""
    command = ["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "f32le", "-ar", str(config.SAMPLE_RATE)]
    command += ["-ac", "1", "-i", "pipe:0", "-ar", "8000", "-f", law, "pipe:1"]
    done = subprocess.run(command, input=samples.astype("<f4").tobytes(), capture_output=True, check=True)
    return done.stdout


def silence(seconds: float) -> np.ndarray:
    """Digital silence at 16 kHz."""
    return np.zeros(int(seconds * config.SAMPLE_RATE), dtype=np.float32)


def appends(raw: bytes, chunk_bytes: int = PCM_CHUNK_BYTES) -> list[dict[str, Any]]:
    """`input_audio_buffer.append` events carrying `raw` in pieces."""
    return [
        {"type": "input_audio_buffer.append", "audio": base64.b64encode(raw[at : at + chunk_bytes]).decode()}
        for at in range(0, len(raw), chunk_bytes)
    ]


def client(url: str, key: str = "unused") -> openai.AsyncOpenAI:
    """The official async client for a server at `url` (http://127.0.0.1:port)."""
    return openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)


class Live:
    """One connection: sends events, and reads the server's as plain dicts (as sent)."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.received: list[dict[str, Any]] = []

    async def send(self, *events: dict[str, Any]) -> None:
        """Sends events in order."""
        for event in events:
            await self.connection.send(event)

    async def next(self, timeout: float = EVENT_TIMEOUT_SECONDS) -> dict[str, Any]:
        """The next server event (parsed by the client, then as the server sent it)."""
        event = await asyncio.wait_for(self.connection.recv(), timeout)
        shown = event.model_dump(exclude_unset=True)
        self.received.append(shown)
        return shown

    async def until(
        self, done: Callable[[dict[str, Any]], bool], timeout: float = EVENT_TIMEOUT_SECONDS
    ) -> list[dict[str, Any]]:
        """Reads events up to and including the first for which `done` holds.

        Returns:
            The events read, in order.
        """
        read = []
        while True:
            event = await self.next(timeout)
            read.append(event)
            if done(event):
                return read

    async def completions(self, count: int, timeout: float = EVENT_TIMEOUT_SECONDS) -> list[dict[str, Any]]:
        """Reads events until `count` turns have completed (or failed).

        Returns:
            The events read, in order.
        """
        read: list[dict[str, Any]] = []
        ends = (
            "conversation.item.input_audio_transcription.completed",
            "conversation.item.input_audio_transcription.failed",
        )
        while sum(event["type"] in ends for event in read) < count:
            read.append(await self.next(timeout))
        return read

    async def error(self, timeout: float = EVENT_TIMEOUT_SECONDS) -> dict[str, Any]:
        """Reads events up to the next `error`, and returns its `error` object."""
        read = await self.until(lambda event: event["type"] == "error", timeout)
        return read[-1]["error"]


@asynccontextmanager
async def live(url: str, key: str = "unused", **session: Any) -> AsyncIterator[Live]:
    """A transcription session on the server at `url`; `session.created` already read, and the
    session's `audio.input` updated with `session` (its `session.updated` read) when given.

    Yields:
        The connection.
    """
    async with client(url, key).realtime.connect(extra_query={"intent": "transcription"}) as connection:
        opened = Live(connection)
        created = await opened.next()
        assert created["type"] == "session.created", created
        if session:
            update = {"type": "transcription", "audio": {"input": session}}
            await opened.send({"type": "session.update", "session": update})
            updated = await opened.next()
            assert updated["type"] == "session.updated", updated
        yield opened


def of_item(events: list[dict[str, Any]], item_id: str, kind: str) -> list[dict[str, Any]]:
    """The events of one type about one item, in order."""
    return [event for event in events if event.get("item_id") == item_id and event["type"].endswith(kind)]


def transcripts(events: list[dict[str, Any]]) -> list[str]:
    """The completed transcripts, in the order the turns were committed."""
    order = [event["item_id"] for event in events if event["type"] == "input_audio_buffer.committed"]
    done = {
        event["item_id"]: event["transcript"]
        for event in events
        if event["type"] == "conversation.item.input_audio_transcription.completed"
    }
    return [done[item] for item in order if item in done]


def spoken(*phrases: str, pause: float = 1.0) -> np.ndarray:
    """Phrases with `pause` seconds of silence after each (and the synthesizer's own 0.3 s around)."""
    return np.concatenate([part for phrase in phrases for part in (speech(phrase), silence(pause))])


def ws_url(port: int, query: str = "intent=transcription") -> str:
    """The live route on 127.0.0.1:`port`."""
    return f"ws://127.0.0.1:{port}/v1/realtime?{query}"


def assert_turns_well_formed(events: list[dict[str, Any]], vad: bool) -> None:
    """Every committed turn: its events in order, deltas joining to its transcript, times consistent."""
    committed = [event for event in events if event["type"] == "input_audio_buffer.committed"]
    previous = None
    for commit in committed:
        item = commit["item_id"]
        assert commit.get("previous_item_id") == previous
        previous = item
        [added] = [e for e in events if e["type"] == "conversation.item.added" and e["item"]["id"] == item]
        assert added["item"]["role"] == "user"
        assert added["item"]["content"][0]["type"] == "input_audio"
        [done] = of_item(events, item, "transcription.completed")
        deltas = of_item(events, item, "transcription.delta")
        assert "".join(delta["delta"] for delta in deltas) == done["transcript"]
        assert all(delta["content_index"] == 0 for delta in deltas)
        assert events.index(commit) < events.index(added) < events.index(done)
        assert done["usage"]["type"] == "duration"
        assert done["languages"] == [{"code": "en"}]
        assert [word["word"] for word in done["words"]] == done["transcript"].split()
        starts = [word["start"] for word in done["words"]]
        assert starts == sorted(starts)
        if vad:
            [started] = of_item(events, item, "speech_started")
            [stopped] = of_item(events, item, "speech_stopped")
            assert events.index(started) < events.index(stopped) < events.index(commit)
            begin, end = started["audio_start_ms"] / 1000, stopped["audio_end_ms"] / 1000
            assert done["usage"]["seconds"] == pytest.approx(end - begin, abs=0.002)
            assert all(begin <= word["start"] <= word["end"] <= end + 0.1 for word in done["words"])
