"""A live turn's settled words (`utils.realtime.streaming_turn`) through the engine and the bundled
model: deltas are whole words that never change and join to the final text, the word before a pause
comes without waiting for the next one, a large append is decoded in bounded frames, and silence ends
with empty text."""

import asyncio

import numpy as np
import pytest

import config
from tests.support.live_turns import WORDS, collect, file_transcript, push_all, settings
from tests.support.media import speech
from utils.realtime.engine import LiveUpdate, engine


@pytest.fixture(scope="module")
def utterance() -> np.ndarray:
    return speech(WORDS)


@pytest.fixture(scope="module")
def long_utterance() -> np.ndarray:
    return np.concatenate([speech(WORDS), speech("three three eight zero one"), speech(WORDS)])


def test_a_long_turn_streams_settled_words_before_it_ends(long_utterance: np.ndarray) -> None:
    async def run() -> tuple[list[LiveUpdate], list[LiveUpdate]]:
        turn = engine.open_turn(settings("low"), 0.0)
        first_half = long_utterance[: long_utterance.size // 2]
        await push_all(turn, first_half)
        # Half the audio settles words while the speaker is still talking: no finish yet.
        reader = turn.updates()
        early = [await asyncio.wait_for(reader.__anext__(), 60)]
        await push_all(turn, long_utterance[first_half.size :])
        await turn.finish()
        rest = [update async for update in reader]
        return early, rest

    early, rest = asyncio.run(run())
    assert not early[0].final
    assert early[0].delta
    assert not early[0].text
    updates = early + rest
    assert updates[-1].final
    # Each delta is whole words: the first starts the text, the others start with their space.
    assert not updates[0].delta.startswith(" ")
    assert all(u.delta.startswith(" ") for u in updates[1:] if u.delta)
    assert "".join(u.delta for u in updates) == updates[-1].text == file_transcript(long_utterance).text
    starts = [w.start for u in updates for w in u.words]
    assert starts == sorted(starts)


def test_the_word_before_a_pause_is_sent_without_waiting_for_the_next_word() -> None:
    before, after = speech("seven one four"), speech("two nine")
    pause = np.zeros(config.SAMPLE_RATE * 2, dtype=np.float32)

    async def run() -> tuple[list[LiveUpdate], list[LiveUpdate]]:
        turn = engine.open_turn(settings("low"), 0.0)
        reader = turn.updates()
        await push_all(turn, np.concatenate([before, pause]))
        early = []
        while not early or not early[-1].delta.endswith("four"):
            early.append(await asyncio.wait_for(reader.__anext__(), 60))
        await push_all(turn, after)
        await turn.finish()
        return early, [update async for update in reader]

    early, rest = asyncio.run(run())
    assert "".join(u.delta for u in early) == "seven one four"
    assert "".join(u.delta for u in early + rest) == rest[-1].text == "seven one four two nine"


def test_one_large_append_is_decoded_in_bounded_frames(utterance: np.ndarray) -> None:
    silence = np.zeros(config.SAMPLE_RATE * 24, dtype=np.float32)

    async def run() -> list[LiveUpdate]:
        turn = engine.open_turn(settings(), 0.0)
        await turn.push(np.concatenate([utterance, silence]))  # 28 s at once, then the end of the turn
        await turn.finish()
        return await collect(turn)

    before = engine.stats()
    updates = asyncio.run(run())
    frames = engine.stats().frames - before.frames
    chunk, lookahead = config.LIVE_DELAYS["medium"]
    most = config.LIVE_MAX_CHUNKS_PER_STEP * chunk
    assert frames >= (utterance.size / config.SAMPLE_RATE + 24 - lookahead) // most
    assert updates[-1].text == "".join(u.delta for u in updates) == WORDS


def test_a_turn_with_no_speech_ends_with_empty_text() -> None:
    async def run() -> list[LiveUpdate]:
        turn = engine.open_turn(settings("minimal"), 3.0)
        await push_all(turn, np.zeros(config.SAMPLE_RATE * 2, dtype=np.float32))
        await turn.finish()
        return await collect(turn)

    assert asyncio.run(run()) == [LiveUpdate("", (), True, "")]
