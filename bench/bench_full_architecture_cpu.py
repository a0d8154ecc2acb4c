"""The full-size Parakeet-TDT-0.6B-v3 architecture (random weights) through the real handler, on the CPU.

    .venv/bin/python bench/bench_full_architecture_cpu.py [--long-minutes 25]

The model is built as `bench/bench_gpu_rtfx.py` builds it (24 x 1024 FastConformer, 8,192-piece
tokenizer, random weights with speech-like emission) and saved as a `.nemo` in a temporary directory,
which `PARAKEET_MODEL` then names, so the worker loads it with its own loading code. Two jobs go through
`handler.handler` on `PARAKEET_DEVICE=cpu`:

1. a 20 s clip with `timestamps`, `confidence`, `hotwords` and subtitles;
2. a `--long-minutes` clip (default 25: past full attention's 24 minutes), which takes the
   local-attention plan.

Each prints whether it succeeded, its plan, wall time, and the process's peak resident memory so far.
The text is meaningless (random weights); what matters is that every path runs and what it costs.
Slow on 2 cores: a benchmark, not a test.
"""

import argparse
import base64
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def noise_clip(path: Path, seconds: float) -> Path:
    """Writes `seconds` of quiet noise as 32 kbit/s Opus (random weights make any input 'speech')."""
    from tests.support.media import encode

    rng = np.random.default_rng(0)
    noise = (0.05 * rng.standard_normal(int(seconds * 16_000))).astype(np.float32)
    return encode(noise, path.with_suffix(".opus"), "-c:a", "libopus", "-b:a", "32k")


def peak_mb() -> float:
    """This process's peak resident memory so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    """Builds the model, runs both jobs, prints one JSON line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long-minutes", type=float, default=25.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-full-cpu-") as scratch:
        import bench_gpu_rtfx

        started = time.perf_counter()
        model = bench_gpu_rtfx.build_model("cpu", Path(scratch))
        nemo_file = Path(scratch) / "parakeet-tdt-0.6b-v3-random.nemo"
        model.save_to(str(nemo_file))
        del model
        print(json.dumps({"figure": "build and save", "seconds": round(time.perf_counter() - started, 1),
                          "nemo_mb": round(nemo_file.stat().st_size / 2**20)}), flush=True)  # fmt: skip
        os.environ.update(
            {"PARAKEET_MODEL": str(nemo_file), "PARAKEET_DEVICE": "cpu", "PARAKEET_TEMP_DIR": scratch}
        )
        import handler

        jobs = {
            "20 s, timestamps + confidence + hotwords + srt": (
                20.0,
                {
                    "timestamps": True,
                    "confidence": True,
                    "hotwords": ["hello world"],
                    "output_format": ["json", "srt"],
                },
            ),
            f"{args.long_minutes:g} min": (args.long_minutes * 60, {}),
        }
        for name, (seconds, fields) in jobs.items():
            clip = noise_clip(Path(scratch) / "clip", seconds)
            payload = {"audio_base64": base64.b64encode(clip.read_bytes()).decode("ascii"), **fields}
            clip.unlink()
            started = time.perf_counter()
            result = handler.handler({"id": "bench", "input": payload})
            elapsed = time.perf_counter() - started
            meta = result.get("meta", {})
            print(json.dumps({
                "figure": name, "success": result["success"], "error": result.get("error"),
                "attention": meta.get("attention"), "model_source": meta.get("model_source"),
                "seconds": round(elapsed, 1), "x_real_time": round(seconds / elapsed, 1),
                "words": len(result.get("timestamps", {}).get("word", [])),
                "confidence": result.get("confidence"), "peak_rss_mb": round(peak_mb()),
            }), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
