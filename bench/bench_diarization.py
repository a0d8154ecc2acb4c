"""Diarization speed and memory: seconds of diarizer time per hour of audio, offline and streaming.

    .venv/bin/python bench/bench_diarization.py [--minutes 2,10,30] [--model PATH.nemo]

For each length, a conversation of three synthesized voices (espeak-ng, repeated turns) runs through
the worker's own diarizer code (`utils.speakers.diarizer.speaker_activity`, streaming above
`DIARIZER_STREAMING_ABOVE_SECONDS`) in a fresh process, on the device `PARAKEET_DEVICE` picks. It
prints the wall-clock seconds, the seconds per audio hour, and the process's peak resident memory
(and, on CUDA, the peak GPU memory). The model load is timed apart. With `--model` naming a full-size
Sortformer `.nemo`, the same figures hold for the real architecture.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.conversations import RATE, conversation

CHILD = """
import json, os, resource, sys, time
import numpy as np
sys.path.insert(0, sys.argv[1])
os.environ["DIARIZER_MODEL"] = sys.argv[3]
import config
from utils.speakers import diarizer

samples = np.load(sys.argv[2])
started = time.perf_counter()
loaded = diarizer.loaded()
load_seconds = time.perf_counter() - started
import torch
if loaded.model.device.type == "cuda":
    torch.cuda.reset_peak_memory_stats()
started = time.perf_counter()
activity = diarizer.speaker_activity(loaded, samples)
seconds = time.perf_counter() - started
audio = samples.size / config.SAMPLE_RATE
print(json.dumps({
    "audio_minutes": round(audio / 60, 1),
    "streaming": bool(loaded.streams or audio > config.DIARIZER_STREAMING_ABOVE_SECONDS),
    "device": str(loaded.model.device),
    "load_seconds": round(load_seconds, 2),
    "diarize_seconds": round(seconds, 2),
    "seconds_per_audio_hour": round(seconds / audio * 3600, 1),
    "frames": int(activity.probabilities.shape[0]),
    "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    "peak_gpu_mb": round(torch.cuda.max_memory_allocated() / 2**20) if torch.cuda.is_available() else None,
}))
"""


def main() -> int:
    """Builds each conversation, diarizes it in a fresh process and prints the figures.

    Returns:
        The exit status.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", default="2,10,30", help="conversation lengths, comma-separated")
    parser.add_argument("--model", default=str(ROOT / "tests" / "fixtures" / "sortformer-digits.nemo"))
    args = parser.parse_args()
    words = ("seven four two", "eight nine five", "three one six", "two zero four")
    base, _ = conversation([(turn % 3, words[turn % 4]) for turn in range(12)])
    with tempfile.TemporaryDirectory(prefix="bench-diarization-") as work:
        for minutes in (float(m) for m in args.minutes.split(",")):
            repeats = int(np.ceil(minutes * 60 * RATE / base.size))
            path = Path(work) / "audio.npy"
            np.save(path, np.tile(base, repeats)[: int(minutes * 60 * RATE)])
            run = subprocess.run(
                [sys.executable, "-c", CHILD, str(ROOT), str(path), args.model],
                capture_output=True,
                text=True,
                check=False,
            )
            lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
            if run.returncode != 0 or not lines:
                print(f"{minutes:g} min: failed\n{run.stderr[-2000:]}")
                return 1
            print(json.dumps(json.loads(lines[-1])), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
