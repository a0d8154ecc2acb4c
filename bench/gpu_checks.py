"""The GPU checks in one script: at most 8 minutes on one GPU, nothing downloaded.

    python bench/gpu_checks.py            # on a GPU machine; JSON lines on stdout
    python bench/gpu_checks.py --memory   # step 2 alone (run by the script in a process of its own)

1. RTFx of Parakeet-TDT-0.6B-v3's architecture with random weights (`bench_gpu_rtfx.py`) at batch 1, 32
   and 128, bf16, with CUDA-graph decoding and without.
2. Peak GPU memory of that model for 24 minutes of audio with full attention and 3 hours with local
   attention (one call each, bf16, as the worker's plans run them).
3. Jobs/s for short clips through the RunPod SDK's worker loop at concurrency 1 and 16
   (`bench_worker_loop.py`, the bundled model on the GPU: the worker's own cost, not the model's).
4. CPU ms per short job outside the model, decoder helpers against a process per item
   (`bench_job_cpu.py`).

Each step runs in a process of its own, under a time limit, and reports its output or its failure;
a failed step does not stop the others. Without a CUDA device the script says so and exits 0.
"""

import argparse
import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BENCH = Path(__file__).resolve().parent
RTFX = ["--setups", "bf16-graphs", "bf16-no-graphs", "--batch-sizes", "1", "32", "128", "--repeats", "3"]
STEPS = [
    ("rtfx", [BENCH / "bench_gpu_rtfx.py", *RTFX, "--warmup", "1"], 150),
    ("memory", [BENCH / "gpu_checks.py", "--memory"], 120),
    ("worker_loop", [BENCH / "bench_worker_loop.py", "--jobs", "64", "--concurrency", "1", "16"], 100),
    ("job_cpu", [BENCH / "bench_job_cpu.py", "--jobs", "64"], 90),
]
FULL_ATTENTION_SECONDS = 24 * 60
LOCAL_ATTENTION_SECONDS = 3 * 3600


def cuda_device() -> str | None:
    """The GPU's name, or None without one."""
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else None


def peak_memory() -> list[dict[str, object]]:
    """Step 2: peak GPU memory for one long call in each attention mode.

    Returns:
        One figure per mode.
    """
    import torch

    from bench.bench_gpu_rtfx import build_model
    from utils.asr import attention
    from utils.asr.plans import FULL, LOCAL

    model = build_model("cuda").to(torch.bfloat16)
    default_chunking = model.encoder.pre_encode.subsampling_conv_chunking_factor
    figures = []
    for plan, seconds in ((FULL, FULL_ATTENTION_SECONDS), (LOCAL, LOCAL_ATTENTION_SECONDS)):
        attention.set_attention(model, plan, default_chunking)
        audio = np.random.default_rng(0).standard_normal(int(seconds * 16_000)).astype(np.float32) * 0.1
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        figure: dict[str, object] = {"figure": f"peak GPU memory, {plan} attention, {seconds / 60:g} min"}
        started = time.perf_counter()
        try:
            with torch.inference_mode():
                model.transcribe([audio], batch_size=1, timestamps=False, verbose=False)
            torch.cuda.synchronize()
            figure["rtfx"] = round(seconds / (time.perf_counter() - started), 1)
        except torch.cuda.OutOfMemoryError:
            figure["out_of_memory"] = True  # the worker's plans would have taken a fallback
        figure["peak_gpu_memory_mib"] = round(torch.cuda.max_memory_allocated() / 2**20)
        figure["total_gpu_memory_mib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**20)
        figures.append(figure)
        del audio
    attention.set_attention(model, FULL, default_chunking)
    return figures


def run_step(name: str, command: list[object], limit: int) -> dict[str, object]:
    """Runs one step's script; returns its JSON output (or the tail of its failure)."""
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, *map(str, command)], capture_output=True, text=True, timeout=limit, check=False
        )
    except subprocess.TimeoutExpired:
        return {"step": name, "ok": False, "error": f"ran past {limit} s"}
    output = done.stdout.strip()
    figures = []
    for line in output.splitlines():
        try:
            figures.append(json.loads(line))
        except ValueError:
            continue
    if not figures and output.startswith("{"):
        with contextlib.suppress(ValueError):
            figures = [json.loads(output)]
    result: dict[str, object] = {"step": name, "ok": done.returncode == 0, "figures": figures}
    result["seconds"] = round(time.perf_counter() - started)
    if done.returncode != 0:
        result["error"] = done.stderr.strip()[-1500:]
    return result


def main() -> int:
    """Runs the steps (or step 2 alone) and prints JSON lines."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--memory", action="store_true", help="step 2 alone")
    args = parser.parse_args()
    device = cuda_device()
    if device is None:
        print(json.dumps({"skipped": "no CUDA device: the GPU checks need one"}))
        return 0
    if args.memory:
        for figure in peak_memory():
            print(json.dumps(figure), flush=True)
        return 0
    print(json.dumps({"device": device}), flush=True)
    for name, command, limit in STEPS:
        print(json.dumps(run_step(name, command, limit)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
