"""Peak memory of a job's audio preparation for tiny files that declare hours of audio.

    .venv/bin/python bench/bench_job_memory.py [--hours 12] [--counts 1,4,64] [--default-floors]

Each item is a 43 kB WAV whose header declares a 1 Hz sample rate, so it decodes to `--hours` of
16 kHz audio. For each count, a fresh process runs the job's preparation as the handler does
(validation, fetch, ffprobe, the reservation under the in-flight cap, decoding) with the default
limits but for the header floors, lowered (`MIN_SAMPLE_RATE=1`, `MIN_AUDIO_BYTES_PER_SECOND=0`: by
default such a file is refused as `invalid_audio` before it is decoded; `--default-floors` shows
that), and prints its outcome, the audio it held, its own peak resident memory and its children's
(ffmpeg, ffprobe) largest peak. Transcription is not part of it: the figures are what the audio costs
before the model sees it. Temporary files live in a directory removed at the end.
"""

import argparse
import base64
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.media import one_hertz_wav

CHILD = """
import json, resource, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from utils.job import inflight
from utils.job import dirs
from utils.job import preparation
from utils.contract import validation
from utils.job.deadline import Deadline
from utils.errors import WorkerError

payload = json.loads(Path(sys.argv[2]).read_text())
outcome, held = "decoded", 0.0
deadline = Deadline(3600)
try:
    request = validation.parse_input(payload)
    with inflight.Reservation(inflight.budget, deadline) as reservation:
        with dirs.job_directory() as job_dir:
            items = preparation.fetch_items(request, Path(job_dir), deadline)
            preparation.decode_items(request, items, deadline, reservation)
            held = sum(item.seconds for item in items if item.samples is not None)
except WorkerError as error:
    outcome = f"{error.error_type}: {error}"
print(json.dumps({
    "outcome": outcome,
    "held_hours": held / 3600,
    "budget_peak_hours": inflight.budget.peak / 3600,
    "self_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "child_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
}))
"""


def main() -> None:
    """Prints one row per item count."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=12.0)
    parser.add_argument("--counts", default="1,4,64")
    parser.add_argument("--default-floors", action="store_true", help="keep the header floors")
    args = parser.parse_args()
    floors = {} if args.default_floors else {"MIN_SAMPLE_RATE": "1", "MIN_AUDIO_BYTES_PER_SECOND": "0"}
    with tempfile.TemporaryDirectory(prefix="bench-job-memory-") as scratch:
        clip = one_hertz_wav(Path(scratch) / "one-hertz.wav", args.hours)
        text = base64.b64encode(clip.read_bytes()).decode("ascii")
        print(f"item: {clip.stat().st_size / 1000:.0f} kB WAV declaring {args.hours:g} h at 1 Hz")
        print(f"{'items':>5}  {'request':>8}  {'held h':>6}  {'worker MB':>9}  {'ffmpeg MB':>9}  outcome")
        for count in (int(part) for part in args.counts.split(",")):
            payload = {"audio_base64": text} if count == 1 else {"audios": [{"audio_base64": text}] * count}
            job = Path(scratch) / f"job-{count}.json"
            job.write_text(json.dumps(payload))
            found = subprocess.run(
                [sys.executable, "-c", CHILD, str(ROOT), str(job)],
                capture_output=True,
                text=True,
                check=True,
                env={"PARAKEET_TEMP_DIR": scratch, "PATH": "/usr/bin:/bin", **floors},
            )
            row = json.loads(found.stdout.strip().splitlines()[-1])
            print(
                f"{count:>5}  {job.stat().st_size / 1e6:>6.1f}MB  {row['held_hours']:>6.1f}  "
                f"{row['self_peak_mb']:>9.0f}  {row['child_peak_mb']:>9.0f}  {row['outcome'][:90]}"
            )


if __name__ == "__main__":
    main()
