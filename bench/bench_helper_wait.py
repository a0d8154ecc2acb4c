"""How long a small file waits for a decoder helper when every helper is busy, against what the ffmpeg
program takes for it.

    .venv/bin/python bench/bench_helper_wait.py [--jobs 6] [--busy-minutes 10]

1. The ffmpeg program: `decode_small` of a 0.1 s WAV with no helpers (an ffprobe and an ffmpeg
   process), median and max of `--jobs` runs.
2. Starved: the `DECODER_HELPERS` helpers all busy on `--busy-minutes` FLAC files each (another job's
   slow items), then `--jobs` small files one after another: how long each waited for a helper before
   it went to the ffmpeg program, and its whole decode. Once with `DECODER_HELPER_WAIT_SECONDS` as
   configured, once with waiting up to the decode timeout (the helpers' old rule).
The rule holds when the longest wait is below the ffmpeg program's median time. Temporary files live
in a directory removed at the end.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import config
from utils.audio import decoding, helper_pool


def make(path: Path, seconds: float, *codec: str) -> Path:
    """Encodes `seconds` of a tone with noise with ffmpeg."""
    subprocess.run(
        ["ffmpeg", "-nostdin", "-y", "-loglevel", "error", "-f", "lavfi"]
        + ["-i", "aevalsrc='0.3*sin(2*PI*300*t)+0.05*(random(0)-0.5)':s=44100", "-t", str(seconds)]
        + [*codec, str(path)],
        check=True,
    )
    return path


def timed_waits(pool: helper_pool.DecoderPool) -> list[tuple[float, bool]]:
    """Records how long each item waited for a helper, and whether it got one."""
    waits: list[tuple[float, bool]] = []
    real = pool._take

    def take(until: float) -> object:
        started = time.perf_counter()
        helper = real(until)
        waits.append((time.perf_counter() - started, helper is not None))
        return helper

    pool._take = take  # type: ignore[method-assign]
    return waits


def starved(
    small: Path, slow: list[Path], jobs: int, wait: float
) -> tuple[list[tuple[float, bool]], list[float]]:
    """Small files decoded while every helper is busy on a slow file: their waits and decode times."""
    pool = helper_pool.DecoderPool()
    helper_pool.pool = pool
    config.DECODER_HELPER_WAIT_SECONDS = wait
    waits = timed_waits(pool)
    decoding.decode_small(small, 10.0)  # start a helper's interpreter first (not counted)
    busy = threading.Event()
    with ThreadPoolExecutor(len(slow)) as threads:
        futures = [threads.submit(lambda p=p: (busy.set(), pool.decode(p, 3600.0))) for p in slow]
        busy.wait()
        time.sleep(1.0)  # every helper has taken its slow file
        del waits[:]
        totals = []
        for _ in range(jobs):
            started = time.perf_counter()
            decoding.decode_small(small, 10.0)
            totals.append(time.perf_counter() - started)
        still_busy = sum(not future.done() for future in futures)
    pool.close()
    print(f"  helpers still busy at the end: {still_busy} of {len(slow)}")
    return waits, totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=6)
    parser.add_argument("--busy-minutes", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        small = make(Path(folder) / "small.wav", 0.1, "-ar", "16000")
        helpers = config.DECODER_HELPERS
        slow = [make(Path(folder) / f"slow-{i}.flac", args.busy_minutes * 60) for i in range(helpers)]
        config.DECODER_HELPERS = 0
        ffmpeg = []
        for _ in range(args.jobs):
            started = time.perf_counter()
            decoding.decode_small(small, 10.0)
            ffmpeg.append(time.perf_counter() - started)
        config.DECODER_HELPERS = helpers
        print(f"ffmpeg program, 0.1 s WAV: median {statistics.median(ffmpeg):.3f} s, max {max(ffmpeg):.3f} s")
        configured = config.DECODER_HELPER_WAIT_SECONDS
        for label, wait in [
            (f"DECODER_HELPER_WAIT_SECONDS={configured:g}", configured),
            ("waiting up to the decode timeout (old rule)", config.FFMPEG_TIMEOUT_SECONDS),
        ]:
            print(f"{helpers} helpers busy on {args.busy_minutes:g} min FLAC each, {label}:")
            waits, totals = starved(small, slow, args.jobs, wait)
            longest = max(seconds for seconds, _ in waits)
            to_ffmpeg = sum(not got for _, got in waits)
            print(
                f"  waited for a helper: max {longest:.3f} s ({to_ffmpeg} of {args.jobs} jobs then went to "
                f"ffmpeg); whole decode median {statistics.median(totals):.3f} s, max {max(totals):.3f} s"
            )
            verdict = "below" if longest < statistics.median(ffmpeg) else "NOT below"
            print(f"  longest wait {verdict} the ffmpeg program's median")


if __name__ == "__main__":
    main()
