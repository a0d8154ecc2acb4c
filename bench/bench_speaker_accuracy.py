"""Word-speaker accuracy through the real handler: how many words get the right speaker.

    .venv/bin/python bench/bench_speaker_accuracy.py [--conversations 20] [--seed 7]

Conversations of two and of three speakers, drawn from the voice+variant pairs that both bundled
models' trainers hold out (so neither model heard them), each speaker with a pitch of its own, take
4 to 10 turns of 2 to 5 digit words. Each runs through `handler.handler` with `diarize: true` and the
bundled ASR model and diarizer (or those `PARAKEET_MODEL` / `DIARIZER_MODEL` name). It prints, for
each cast size, the mean share of words whose speaker is right under the best mapping of names to
speakers, the worst conversation, and how often the number of speakers found was right.
"""

import argparse
import itertools
import json
import os
import random
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
FIXTURES = ROOT / "tests" / "fixtures"
os.environ.setdefault("PARAKEET_MODEL", str(FIXTURES / "parakeet-tdt-digits.nemo"))
os.environ.setdefault("DIARIZER_MODEL", str(FIXTURES / "sortformer-digits.nemo"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import config
import handler
from tests.support.conversations import conversation, word_accuracy
from tests.support.media import b64, encode
from tools.synth import DIGIT_WORDS
from tools.train_test_diarizer import MIN_PITCH_GAP, PITCH_RANGE
from tools.train_test_model import voice_splits


def draw_voices(rng: random.Random, voices: list[str], count: int) -> tuple[tuple[str, int], ...]:
    """Draws `count` voices whose pitches differ by `MIN_PITCH_GAP`, as in the trainer's conversations."""
    while True:
        cast = tuple((voice, rng.randint(*PITCH_RANGE)) for voice in rng.sample(voices, count))
        if all(abs(a[1] - b[1]) >= MIN_PITCH_GAP for a, b in itertools.combinations(cast, 2)):
            return cast


def draw_turns(rng: random.Random, count: int) -> list[tuple[int, str]]:
    """4 to 10 turns; everyone speaks, nobody twice in a row."""
    order = list(range(count))
    while len(order) < rng.randint(4, 10):
        order.append(rng.choice([s for s in range(count) if s != order[-1]]))
    return [(s, " ".join(rng.choice(DIGIT_WORDS) for _ in range(rng.randint(2, 5)))) for s in order]


def diarize_one(rng: random.Random, voices: list[str], count: int, clip: Path) -> tuple[float, int]:
    """Speaks one conversation of `count` voices, runs it through the handler and scores its words.

    Args:
        rng: Source of the cast and the turns.
        voices: Voice+variant names to draw from.
        count: Speakers.
        clip: Where to write the encoded audio.

    Returns:
        The word-speaker accuracy and the number of speakers found.

    Raises:
        RuntimeError: The job failed.
    """
    cast = draw_voices(rng, voices, count)
    samples, turns = conversation(draw_turns(rng, count), pause=rng.uniform(0.3, 0.9), voices=cast)
    job = {"audio_base64": b64(encode(samples, clip)), "diarize": True, "timestamps": ["word"]}
    result = handler.handler({"id": clip.stem, "input": job})
    if not result.get("success"):
        raise RuntimeError(f"conversation {clip.stem} failed: {result}")
    return word_accuracy(result["timestamps"]["word"], turns), len(result["speakers"])


def main() -> int:
    """Runs the conversations through the handler and prints the figures.

    Returns:
        The exit status.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=20, help="per cast size")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    held_out = voice_splits(["en"], 1234)[0].held_out  # the trainers' own split and seed
    with tempfile.TemporaryDirectory(prefix="bench-speakers-") as work:
        config.TEMP_ROOT = Path(work) / "jobs"
        config.TEMP_ROOT.mkdir()
        for count in (2, 3):
            scores = [
                diarize_one(rng, held_out, count, Path(work) / f"{count}-{number}.flac")
                for number in range(args.conversations)
            ]
            accuracies = [accuracy for accuracy, _ in scores]
            right_count = sum(found == count for _, found in scores)
            figures = {
                "speakers": count,
                "conversations": args.conversations,
                "word_speaker_accuracy": round(float(np.mean(accuracies)), 3),
                "worst": round(min(accuracies), 3),
                "speaker_count_right": round(right_count / args.conversations, 3),
            }
            print(json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
