"""What OpenAI's full `verbose_json` segments cost: tokens, log-probabilities and `no_speech_prob`.

    .venv/bin/python bench/bench_openai_shapes.py [--minutes 2] [--repeats 5] [--model NAME_OR_PATH]

A file of `--minutes` of spoken digit phrases (espeak-ng, with short pauses) goes through the job
pipeline in this process, as the HTTP door runs it, in four settings: `json` (the default path, which
computes none of it), `verbose_json` segments without the Whisper fields (what the door gave before),
`verbose_json` with them (`segment_details`), and the same with `confidence` (a second, scoring
decode). The settings take turns, `--repeats` rounds, so that a busy machine slows them alike; for each,
the best and the median seconds of the model stage and of the whole job. Then the two parts alone: one
model call with and without log-probabilities, Silero's pass over the segments, and how far the
log-probabilities are from the log-softmax of float32 logits a separate decoder keeps (on a GPU, the
worker decodes in bfloat16). `--only json`
runs the default path alone (it also runs on a checkout from before these fields, to compare).

Prints one JSON object.
"""

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import config
from tests.support.media import encode, speech
from tools import synth
from utils.asr import transcribe, vad
from utils.http import formats
from utils.job import pipeline
from utils.job.deadline import Deadline

RATE = config.SAMPLE_RATE
SETTINGS = {
    "json": ({"output_format": "json"}, False),
    "verbose_json_before": ({"output_format": "json", "timestamps": ["segment"]}, False),
    "verbose_json_full": ({"output_format": "json", "timestamps": ["segment"]}, True),
    "verbose_json_full_with_confidence": (
        {"output_format": "json", "timestamps": ["segment"], "confidence": True},
        True,
    ),
}


def build(minutes: float, seed: int = 7) -> np.ndarray:
    """Digit phrases with 0.4 s pauses, `minutes` long."""
    rng = np.random.default_rng(seed)
    parts, used = [], 0
    pause = np.zeros(int(0.4 * RATE), dtype=np.float32)
    while used < minutes * 60 * RATE:
        voice = speech(" ".join(rng.choice(synth.DIGIT_WORDS, size=int(rng.integers(3, 7)))))
        parts += [voice, pause]
        used += voice.size + pause.size
    return np.concatenate(parts)


def run(path: Path, job_input: dict[str, Any], details: bool, directory: Path) -> dict[str, Any]:
    """One job through the pipeline, on a copy of the upload (a job removes its upload)."""
    upload = directory / f"upload{path.suffix}"
    shutil.copy(path, upload)
    extra = {"segment_details": True} if details else {}  # unknown to a checkout from before the fields
    options = pipeline.JobOptions(upload=upload, **extra)
    result = pipeline.answer(
        {"id": "bench", "input": job_input}, lambda message: None, Deadline(600), options
    )
    assert result["success"], result
    return result


def median_seconds(action: Any, repeats: int) -> float:
    """The median wall seconds of `action()`."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return round(statistics.median(times), 4)


def main() -> None:
    """Prints the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model", default=str(config.BUNDLED_TEST_MODEL), help="hub name or .nemo path")
    parser.add_argument("--only", choices=sorted(SETTINGS), help="run this setting alone, nothing else")
    args = parser.parse_args()
    config.PARAKEET_MODELS = (args.model,)
    samples = build(args.minutes)
    figures: dict[str, Any] = {"minutes": round(samples.size / RATE / 60, 2), "model": args.model}
    settings = {args.only: SETTINGS[args.only]} if args.only else SETTINGS
    seconds: dict[str, dict[str, list[float]]] = {name: {"model": [], "total": []} for name in settings}
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        path = encode(samples, directory / "clip.flac")
        for job_input, details in settings.values():  # warm every decoder set-up once
            run(path, job_input, details, directory)
        for _ in range(args.repeats):
            for setting, (job_input, details) in settings.items():
                result = run(path, job_input, details, directory)
                seconds[setting]["model"].append(result["meta"]["processing_seconds"]["transcribe"])
                seconds[setting]["total"].append(result["meta"]["processing_seconds"]["total"])
        for setting, found in seconds.items():
            figures[setting] = {
                f"{part}_{kind}": round(pick(found[part]), 4)
                for part in ("model", "total")
                for kind, pick in (("best", min), ("median", statistics.median))
            }
        if args.only:
            print(json.dumps(figures, indent=2))
            return
        segments = result["timestamps"]["segment"]
        figures["segments"] = len(segments)
        figures["render_verbose_json_seconds"] = median_seconds(
            lambda: formats.verbose_json(result, frozenset({"segment"})), args.repeats
        )

    from utils.asr.records import LOGPROBS  # not in a checkout from before the fields (--only json)

    minute = samples[: 60 * RATE]
    plain, scored = frozenset({"word", "segment"}), frozenset({"word", "segment", LOGPROBS})
    figures["one_call_60s"] = {
        "words_seconds": median_seconds(lambda: transcribe.run_call([minute], "full", plain), args.repeats),
        "words_and_logprobs_seconds": median_seconds(
            lambda: transcribe.run_call([minute], "full", scored), args.repeats
        ),
    }
    from tests.support.logprobs import reference_logprobs
    from utils.asr import decoding

    (hypothesis,) = transcribe.run_call([minute], "full", scored)
    tokens, expected = reference_logprobs(minute)
    same = [int(token) for token in hypothesis.y_sequence] == tokens
    found = decoding.token_logprobs(hypothesis) or []
    figures["logprobs_against_float32_logits"] = {
        "same_tokens": same,
        "max_abs_error": float(np.max(np.abs(np.subtract(found, expected)))) if same and tokens else None,
    }
    spans = [(segment["start"], segment["end"]) for segment in segments]
    figures["silero_over_segments_seconds"] = median_seconds(
        lambda: vad.no_speech_probabilities(samples, spans), args.repeats
    )
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
