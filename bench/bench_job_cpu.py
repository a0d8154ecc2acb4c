"""CPU cost of a short job outside the model, per job, with and without the decoder helpers.

    .venv/bin/python bench/bench_job_cpu.py [--jobs 64] [--concurrency 8] [--seconds 2] [--model NAME_OR_PATH]

For 2-second clips (spoken digits) as MP3, Opus, M4A and WAV, `--jobs` jobs run through the real
handler, `--concurrency` at a time, in this process (the worker). CPU time is counted for every process
of the worker: this one, the ffmpeg and ffprobe processes it waited for, and the long-lived decoder
helpers (their CPU time is read before and after). The model's own share (its calls, measured on the
scheduler's thread with torch on one thread) is subtracted. Each format runs twice: with
`DECODER_HELPERS` (the default) and with 0 (an ffprobe and an ffmpeg process per item, as before).
The floor is decoding the same clip in-process with PyAV alone.

Prints one JSON object: CPU ms per job outside the model, per format and mode, and the floor.
"""

import argparse
import asyncio
import base64
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import av
import torch

import config
import handler
from tests.support.media import encode, speech
from utils.asr import model as asr_model
from utils.audio import helper_pool

FORMATS = {
    "mp3": ("-c:a", "libmp3lame", "-b:a", "64k"),
    "opus": ("-c:a", "libopus", "-b:a", "32k"),
    "m4a": ("-c:a", "aac", "-b:a", "64k"),
    "wav": (),
}


class ModelClock:
    """Wraps the model's `transcribe` to sum the CPU time of its calls (torch runs on one thread)."""

    def __init__(self) -> None:
        self.model = asr_model.get_model()
        self.real = self.model.transcribe
        self.seconds = 0.0
        self.model.transcribe = self

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        started = time.thread_time()
        try:
            return self.real(*args, **kwargs)
        finally:
            self.seconds += time.thread_time() - started


def helper_cpu() -> float:
    """CPU seconds of the live decoder helpers."""
    total = 0.0
    for child in psutil.Process().children():
        try:
            if "utils.audio.helper" in " ".join(child.cmdline()):
                times = child.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def worker_cpu() -> float:
    """CPU seconds of this process, the children it waited for, and the live helpers."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    waited = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + waited.ru_utime + waited.ru_stime + helper_cpu()


def run_jobs(clip: str, jobs: int, concurrency: int) -> None:
    """Runs `jobs` jobs of one clip, `concurrency` at a time, as the SDK's worker loop would."""

    async def main() -> None:
        gate = asyncio.Semaphore(concurrency)

        async def one(index: int) -> None:
            async with gate:
                result = await handler.async_handler({"id": f"job-{index}", "input": {"audio_base64": clip}})
                assert result["success"], result

        await asyncio.gather(*(one(index) for index in range(jobs)))

    asyncio.run(main())


def outside_model_ms(clip: str, jobs: int, concurrency: int, clock: ModelClock) -> float:
    """CPU ms per job outside the model."""
    run_jobs(clip, concurrency, concurrency)  # warm: helpers started, decoders built
    before, model_before = worker_cpu(), clock.seconds
    run_jobs(clip, jobs, concurrency)
    total = worker_cpu() - before
    return (total - (clock.seconds - model_before)) / jobs * 1000


def floor_ms(path: Path, repeats: int = 50) -> float:
    """CPU ms to decode the clip to 16 kHz mono in-process with PyAV."""
    started = time.process_time()
    for _ in range(repeats):
        with av.open(str(path)) as container:
            resampler = av.AudioResampler(format="flt", layout="mono", rate=config.SAMPLE_RATE)
            for frame in container.decode(audio=0):
                resampler.resample(frame)
            resampler.resample(None)
    return (time.process_time() - started) / repeats * 1000


def main() -> None:
    """Prints the figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--model", default=str(config.BUNDLED_TEST_MODEL), help="hub name or .nemo path")
    args = parser.parse_args()
    config.PARAKEET_MODELS = (args.model,)
    torch.set_num_threads(1)
    config.MAX_CONCURRENCY = max(config.MAX_CONCURRENCY, args.concurrency)
    clock = ModelClock()
    words = "three one four one five nine two six"
    samples = speech(words)[: int(args.seconds * config.SAMPLE_RATE)]
    figures: dict[str, Any] = {
        "jobs": args.jobs,
        "concurrency": args.concurrency,
        "clip_seconds": args.seconds,
    }
    with tempfile.TemporaryDirectory() as directory:
        for name, codec in FORMATS.items():
            path = encode(samples, Path(directory) / f"clip.{name}", *codec)
            clip = base64.b64encode(path.read_bytes()).decode()
            helpers = config.DECODER_HELPERS
            row = {"helpers": round(outside_model_ms(clip, args.jobs, args.concurrency, clock), 1)}
            config.DECODER_HELPERS = 0
            row["process_per_item"] = round(outside_model_ms(clip, args.jobs, args.concurrency, clock), 1)
            config.DECODER_HELPERS = helpers
            row["floor_in_process_decode"] = round(floor_ms(path), 1)
            figures[name] = row
    figures["model_ms_per_job"] = round(
        clock.seconds / (len(FORMATS) * 2 * (args.jobs + args.concurrency)) * 1000, 1
    )
    helper_pool.pool.close()
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
