"""Conversion speed and memory of utils/audio/decoding.py, each as a ratio measured in one run.

    .venv/bin/python bench/bench_audio.py [--minutes 60] [--memory-hours 3] [--repeats 3]

1. Speed: one hour of stereo MP3, Opus and M4A and of mono MP3 (noise-modulated tones encoded here by
   ffmpeg) decoded by the worker's `decoding.decode` vs the bare `ffmpeg -i F -ac 1 -ar 16000 -f s16le -`
   whose output is read and thrown away. Best of `--repeats`; ratio = bare seconds / worker seconds
   (target >= 0.95 for mono; stereo pays for resampling both channels and mixing them here).
2. Memory: peak resident memory of a fresh process that decodes `--memory-hours` of audio, minus its
   resident memory before decoding, vs the size of the float32 array it returns (ideal: 1.0).
Temporary files live in a directory removed at the end.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import config
from utils.audio import decoding

ENCODERS = {
    "mono.mp3": ("-ac", "1", "-c:a", "libmp3lame", "-b:a", "64k"),
    "mp3": ("-c:a", "libmp3lame", "-b:a", "64k"),
    "opus": ("-c:a", "libopus", "-b:a", "32k"),
    "m4a": ("-c:a", "aac", "-b:a", "64k"),
}
# Busy enough for the codecs to work: gliding, pulsing tones plus noise, different per channel, 44.1 kHz.
SOURCE = (
    "aevalsrc=exprs='0.3*sin(2*PI*(200+50*sin(PI*t))*t)*(0.6+0.4*sin(8*PI*t))+0.05*(random(0)-0.5)"
    "|0.3*sin(2*PI*310*t)*(0.6+0.4*sin(6*PI*t))+0.05*(random(1)-0.5)':s=44100"
)

MEMORY_CHILD = """
import resource, sys
sys.path.insert(0, sys.argv[2])
from pathlib import Path
from utils.audio import decoding
def rss_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
before = rss_kb()
samples = decoding.decode(Path(sys.argv[1]))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(before, peak, samples.nbytes)
"""


def make_audio(path: Path, seconds: float, codec: tuple[str, ...]) -> Path:
    """Encodes `seconds` of test audio with ffmpeg."""
    subprocess.run(
        ["ffmpeg", "-nostdin", "-y", "-loglevel", "error", "-f", "lavfi", "-i", SOURCE,
         "-t", str(seconds), *codec, str(path)],
        check=True,
    )  # fmt: skip
    return path


def bare_ffmpeg_seconds(path: Path) -> float:
    """Seconds for the bare ffmpeg conversion, its PCM read from a pipe and discarded."""
    started = time.perf_counter()
    with subprocess.Popen(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(path), "-ac", "1", "-ar", "16000",
         "-f", "s16le", "-"],
        stdout=subprocess.PIPE,
    ) as process:  # fmt: skip
        while process.stdout.read(1 << 20):
            pass
    return time.perf_counter() - started


def worker_seconds(path: Path) -> float:
    """Seconds for `decoding.decode`, float32 array included."""
    started = time.perf_counter()
    decoding.decode(path)
    return time.perf_counter() - started


def main() -> None:
    """Runs both measurements and prints a JSON line per figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--memory-hours", type=float, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    config.MAX_AUDIO_SECONDS = max(config.MAX_AUDIO_SECONDS, args.memory_hours * 3600 + 60)
    with tempfile.TemporaryDirectory(prefix="bench-audio-") as tmp:
        for name, codec in ENCODERS.items():
            path = make_audio(Path(tmp) / f"hour.{name}", args.minutes * 60, codec)
            bare = min(bare_ffmpeg_seconds(path) for _ in range(args.repeats))
            worker = min(worker_seconds(path) for _ in range(args.repeats))
            print(json.dumps({
                "figure": f"convert {args.minutes:g} min {name}",
                "bare_ffmpeg_s": round(bare, 2), "worker_s": round(worker, 2),
                "ratio_bare_over_worker": round(bare / worker, 3),
                "x_real_time": round(args.minutes * 60 / worker),
            }), flush=True)  # fmt: skip
            path.unlink()
        long_path = make_audio(Path(tmp) / "long.opus", args.memory_hours * 3600, ENCODERS["opus"])
        child = subprocess.run(
            [sys.executable, "-c", MEMORY_CHILD, str(long_path), str(config.REPO_ROOT)],
            check=True, capture_output=True, text=True,
            env={"MAX_AUDIO_SECONDS": str(config.MAX_AUDIO_SECONDS), "PATH": "/usr/bin:/bin"},
        )  # fmt: skip
        before_kb, peak_kb, array_bytes = (int(v) for v in child.stdout.split())
        print(json.dumps({
            "figure": f"peak memory decoding {args.memory_hours:g} h",
            "array_mb": round(array_bytes / 2**20),
            "peak_minus_baseline_mb": round((peak_kb - before_kb) / 1024),
            "ratio_peak_over_array": round((peak_kb - before_kb) * 1024 / array_bytes, 3),
        }))  # fmt: skip


if __name__ == "__main__":
    main()
