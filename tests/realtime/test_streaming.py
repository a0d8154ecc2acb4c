"""The buffered streaming step (`utils.realtime.streaming`) on the bundled model: chunk by chunk with
the decoder state carried it decodes what one whole frame does, the look-ahead is never committed, and
frames sharing a step decode as they do alone."""

import numpy as np
import pytest

import config
from tests.support.live_turns import WORDS
from tests.support.media import speech
from utils.realtime import streaming
from utils.realtime.streaming import Frame, LiveModel, Tokens


@pytest.fixture(scope="module")
def pieces() -> LiveModel:
    # Only the scheduler's thread calls models in the worker; these tests run no job beside them.
    return streaming.live_model(str(config.BUNDLED_TEST_MODEL))


def chunked(pieces: LiveModel, audio: np.ndarray, chunk: float, lookahead: float) -> list[Tokens]:
    """A turn decoded chunk by chunk, as the engine's steps take it (left context 9.6 s)."""
    size, ahead = round(chunk * config.SAMPLE_RATE), round(lookahead * config.SAMPLE_RATE)
    left_most = round(config.LIVE_LEFT_CONTEXT_SECONDS * config.SAMPLE_RATE)
    done, state, steps = 0, None, []
    while done + size + ahead <= audio.size:
        start = max(0, done - left_most)
        (tokens,) = pieces.step([Frame(audio[start : done + size + ahead], done - start, size, state)])
        steps.append(tokens)
        state, done = tokens.state, done + size
    start = max(0, done - left_most)
    steps += pieces.step([Frame(audio[start:], done - start, None, state)])
    return steps


@pytest.mark.parametrize("delay", ["minimal", "medium", "xhigh"])
def test_chunks_with_their_state_carried_decode_what_the_whole_frame_does(
    pieces: LiveModel, delay: str
) -> None:
    audio = speech(WORDS)
    (whole,) = pieces.step([Frame(audio, 0, None)])
    steps = chunked(pieces, audio, *config.LIVE_DELAYS[delay])
    assert len(steps) >= 2 or delay == "xhigh"
    assert [token for tokens in steps for token in tokens.ids] == whole.ids
    # Token frames are on the turn's timeline, whatever chunk found them.
    assert [frame for tokens in steps for frame in tokens.frames] == whole.frames
    assert pieces.tokenizer.ids_to_text(whole.ids) == WORDS


def test_the_look_ahead_is_never_committed(pieces: LiveModel) -> None:
    audio = speech(WORDS)
    chunk = 10 * pieces.frame_samples  # 0.8 s: "seven" (0.32-0.64 s) ends in it, "one" starts after
    (tokens,) = pieces.step([Frame(audio[: 3 * chunk], 0, chunk)])
    # The chunk ends as "one" begins: its first piece (a lone word start) is in, the rest is not.
    assert pieces.tokenizer.ids_to_text(tokens.ids) == "seven "
    assert max(tokens.frames) < 10


def test_frames_sharing_a_step_decode_as_they_do_alone(pieces: LiveModel) -> None:
    audios = [
        speech(WORDS),
        speech("three three eight zero one"),
        speech("nine five"),
        np.zeros(4000, np.float32),
    ]
    frames = [
        Frame(audios[0], 0, None),
        Frame(audios[1][: 3 * 12800], 0, 12800),  # a chunk with its look-ahead
        Frame(audios[2], 12800, None),  # a last frame with left context
        Frame(audios[3], 0, None),  # a quarter second of silence
    ]
    alone = [pieces.step([frame])[0] for frame in frames]
    together = pieces.step(frames)
    for one, shared in zip(alone, together, strict=True):
        assert shared.ids == one.ids
        assert shared.frames == one.frames
        # Without CUDA graphs NeMo's batched TDT decoding may keep a later frame's duration.
        assert all(abs(a - b) <= 1 for a, b in zip(shared.durations, one.durations, strict=True))
    assert together[3].ids == []
