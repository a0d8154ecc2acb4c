"""Handler overhead per job: a 10 s clip through `handler.handler` vs the model's `transcribe` alone.

    .venv/bin/python bench/bench_handler.py [--seconds 10] [--jobs 20] [--model PATH_OR_NAME]

Both sides use the same loaded model (the bundled test model by default, on this machine's CPU).
The handler side pays for everything a job costs beyond the model: validation, base64 decoding, the
temporary directory, ffmpeg, batching, timestamps off, result building. Median of `--jobs` runs after
one warm-up each; overhead = handler - transcribe, ratio = transcribe / handler.
"""

import argparse
import base64
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import config
import handler
from tools import synth
from utils.asr import model as asr_model
from utils.audio import decoding


def make_clip(seconds: float, directory: Path) -> Path:
    """About `seconds` of spoken digits, encoded as Opus (a typical voice-note format)."""
    words = " ".join(synth.DIGIT_WORDS[i % 10] for i in range(int(seconds * 2.2)))
    wav = directory / "clip.wav"
    synth.write_wav(wav, synth.synthesize(words))
    clip = directory / "clip.opus"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-y", "-loglevel", "error", "-i", str(wav), "-c:a", "libopus", str(clip)],
        check=True,
    )
    return clip


def median_seconds(run: callable, count: int) -> float:
    """Median wall time of `count` calls after one warm-up call."""
    run()
    times = []
    for _ in range(count):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    """Measures both sides and prints one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--model", default=str(config.BUNDLED_TEST_MODEL))
    args = parser.parse_args()
    config.PARAKEET_MODELS = (args.model,)
    with tempfile.TemporaryDirectory(prefix="bench-handler-") as tmp:
        clip = make_clip(args.seconds, Path(tmp))
        samples = decoding.decode(clip)
        job = {"id": "bench", "input": {"audio_base64": base64.b64encode(clip.read_bytes()).decode()}}
    model = asr_model.get_model()

    def direct() -> None:
        model.transcribe([samples], batch_size=1, timestamps=False, verbose=False)

    def through_handler() -> None:
        assert handler.handler(job)["success"]

    direct_s = median_seconds(direct, args.jobs)
    handler_s = median_seconds(through_handler, args.jobs)
    print(json.dumps({
        "figure": f"handler overhead, {samples.size / config.SAMPLE_RATE:.1f} s clip",
        "model": args.model, "device": str(model.device),
        "transcribe_ms": round(direct_s * 1000, 1), "handler_ms": round(handler_s * 1000, 1),
        "overhead_ms": round((handler_s - direct_s) * 1000, 1),
        "ratio_transcribe_over_handler": round(direct_s / handler_s, 3),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
