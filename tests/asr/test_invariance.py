"""An item's words and times are the same alone and in any company: clips of varied lengths, each run
alone and then in mixed calls, with the bundled model through the real scheduler."""

import numpy as np
import pytest

from tests.support.media import speech
from utils.asr.records import CONFIDENCE
from utils.asr.scheduler import scheduler
from utils.job.deadline import Deadline

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
KINDS = frozenset({"word", "segment"})


@pytest.fixture(scope="module")
def clips() -> list[np.ndarray]:
    """Twelve clips of 1 to 11 digit words at varied speeds, with a little noise."""
    rng = np.random.default_rng(1)
    made = []
    for _ in range(12):
        words = " ".join(rng.choice(DIGITS, size=int(rng.integers(1, 12))))
        voice = speech(words, speed=int(rng.integers(120, 200)))
        made.append((voice + 0.02 * rng.standard_normal(voice.size)).astype(np.float32))
    return made


def transcribe_together(clips: list[np.ndarray], kinds: frozenset[str]) -> tuple[list[list[tuple]], int]:
    """Each clip's words and segments, and the largest number of items that shared a call."""
    futures = [scheduler.submit(clip, kinds, Deadline(120), lambda message: None) for clip in clips]
    results, largest = [], 1
    for future in futures:
        transcript = future.result()
        largest = max(largest, transcript.batch)
        results.append(
            [(w.word, w.start, w.end, w.confidence) for w in transcript.timestamps.word]
            + [(s.text, s.start, s.end) for s in transcript.timestamps.segment]
        )
    return results, largest


@pytest.mark.parametrize("kinds", [KINDS, KINDS | {CONFIDENCE}], ids=["times", "times+confidence"])
def test_words_and_times_do_not_depend_on_the_company(clips: list[np.ndarray], kinds: frozenset[str]) -> None:
    alone = [transcribe_together([clip], kinds)[0][0] for clip in clips]
    rng = np.random.default_rng(2)
    for _ in range(3):
        order = rng.permutation(len(clips))
        together, largest = transcribe_together([clips[i] for i in order], kinds)
        assert largest > 1  # the clips did share calls
        for position, index in enumerate(order):
            assert together[position] == alone[index], f"clip {index} changed in company"
