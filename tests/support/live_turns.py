"""Helpers for tests of live turns (`utils.realtime.engine`) with the bundled English model."""

import asyncio

import numpy as np

import config
from utils.asr.records import Transcript
from utils.asr.scheduler import scheduler
from utils.job.deadline import Deadline
from utils.realtime.engine import LiveSettings, LiveTurn, LiveUpdate

MODEL = config.BUNDLED_TEST_MODEL.stem
WORDS = "seven one four two nine eight three five zero six"
PIECE = 320  # 20 ms, as clients send


def settings(delay: str = "medium", hotwords: tuple[str, ...] = ()) -> LiveSettings:
    """A turn's settings on the bundled English model."""
    return LiveSettings(MODEL, delay, hotwords)


async def push_all(turn: LiveTurn, samples: np.ndarray) -> None:
    """Pushes audio into a turn in 20 ms pieces."""
    for start in range(0, samples.size, PIECE):
        await turn.push(samples[start : start + PIECE])


async def collect(turn: LiveTurn, timeout: float = 60) -> list[LiveUpdate]:
    """Every update of a turn, up to its final one (or its end when closed)."""

    async def read() -> list[LiveUpdate]:
        return [update async for update in turn.updates()]

    return await asyncio.wait_for(read(), timeout)


def file_transcript(samples: np.ndarray) -> Transcript:
    """The file door's transcript of the same audio (the scheduler's whole-item call)."""
    return scheduler.submit(samples, frozenset({"word"}), Deadline(120), lambda _: None).result(timeout=120)
