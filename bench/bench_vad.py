"""What `vad: true` costs and saves: processing time and word error rate with and without it.

    .venv/bin/python bench/bench_vad.py [--minutes 5] [--repeats 3] [--model NAME_OR_PATH]

Two files of `--minutes`, spoken digit phrases (espeak-ng, the bundled model's training voice), run
through the real handler in this process with the bundled model (or `--model`):
- sparse: 10 % speech, the rest near-silence (a faint noise floor);
- noisy gaps: phrases with pauses of white noise between them (as a television in the next room would
  be, to the model: sound that is not the speaker).
For each, the best of `--repeats` jobs' total processing seconds (`meta.processing_seconds.total`,
VAD included) and the word error rate against the spoken words, without and with `vad`.

Prints one JSON object.
"""

import argparse
import base64
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import config
import handler
from tests.support.media import encode, speech
from tests.support.scoring import word_error_rate
from tools import synth

RATE = config.SAMPLE_RATE


def build(minutes: float, speech_share: float, noise_level: float, seed: int) -> tuple[np.ndarray, list[str]]:
    """Phrases spread so that they fill `speech_share` of `minutes`, with gaps of noise at `noise_level`."""
    rng = np.random.default_rng(seed)
    total = int(minutes * 60 * RATE)
    parts, words, used = [], [], 0
    while used < total:
        phrase = " ".join(rng.choice(synth.DIGIT_WORDS, size=int(rng.integers(3, 7))))
        voice = speech(phrase)
        gap = int(voice.size * (1 - speech_share) / speech_share)
        parts += [voice, noise_level * rng.standard_normal(gap).astype(np.float32)]
        words += phrase.split()
        used += voice.size + gap
    samples = np.concatenate(parts)
    return (samples + 0.001 * rng.standard_normal(samples.size)).astype(np.float32), words


def measure(clip: str, words: list[str], use_vad: bool, repeats: int) -> dict[str, Any]:
    """Best processing time and the WER of one setting."""
    best, text = float("inf"), ""
    for index in range(repeats):
        result = handler.handler(
            {"id": f"vad-{use_vad}-{index}", "input": {"audio_base64": clip, "vad": use_vad}}
        )
        assert result["success"], result
        best, text = min(best, result["meta"]["processing_seconds"]["total"]), result["text"]
    figure = {"seconds": round(best, 3), "wer": round(word_error_rate(words, text.split()), 4)}
    if use_vad:
        figure["speech_seconds"] = result["meta"]["speech_seconds"]
    return figure


def main() -> None:
    """Prints the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default=str(config.BUNDLED_TEST_MODEL), help="hub name or .nemo path")
    args = parser.parse_args()
    config.PARAKEET_MODELS = (args.model,)
    cases = {"sparse_10_percent": (0.1, 0.0), "noisy_gaps": (0.5, 0.05)}
    figures: dict[str, Any] = {"minutes": args.minutes, "model": args.model}
    handler.handler({"id": "warm", "input": {"audio_base64": _b64(speech("one two"))}})
    with tempfile.TemporaryDirectory() as directory:
        for name, (share, noise) in cases.items():
            samples, words = build(args.minutes, share, noise, seed=len(name))
            path = encode(samples, Path(directory) / f"{name}.flac")
            clip = base64.b64encode(path.read_bytes()).decode()
            figures[name] = {
                "without_vad": measure(clip, words, False, args.repeats),
                "with_vad": measure(clip, words, True, args.repeats),
            }
    print(json.dumps(figures, indent=2))


def _b64(samples: np.ndarray) -> str:
    with tempfile.TemporaryDirectory() as directory:
        return base64.b64encode(encode(samples, Path(directory) / "warm.flac").read_bytes()).decode()


if __name__ == "__main__":
    main()
