"""The GPU checks in one script: at most 8 minutes on one GPU, nothing downloaded.

    python bench/gpu_checks.py            # on a GPU machine; JSON lines on stdout
    python bench/gpu_checks.py --memory   # step 2 alone (run by the script in a process of its own)
    python bench/gpu_checks.py --live     # step 5 alone (likewise)

1. RTFx of Parakeet-TDT-0.6B-v3's architecture with random weights (`bench_gpu_rtfx.py`) at batch 1, 32
   and 128, bf16, with CUDA-graph decoding and without.
2. Peak GPU memory of that model for 24 minutes of audio with full attention and 3 hours with local
   attention (one call each, bf16, as the worker's plans run them).
3. Jobs/s for short clips through the RunPod SDK's worker loop at concurrency 1 and 16
   (`bench_worker_loop.py`, the bundled model on the GPU: the worker's own cost, not the model's).
4. CPU ms per short job outside the model, decoder helpers against a process per item
   (`bench_job_cpu.py`).
5. Live sessions held at real time on that architecture (`utils.realtime.engine`, delay "medium"): first
   one batched step's time for 1 to 64 frames of 12 s (9.6 s left context, 0.8 s chunk, 1.6 s look-ahead),
   then 16, 64 and 128 sessions streaming noise in 20 ms pieces at real time for `LIVE_SECONDS`: model
   steps against session-chunks, how far the settled words trail the audio (p50/p95 over the last half),
   finish to final update, and the process's CPU per second of live audio. The random model emits a
   token every 2 frames (see `bench_gpu_rtfx.py`), so its words are pseudo-words but the decoder works.

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
    ("live", [BENCH / "gpu_checks.py", "--live"], 150),
]
FULL_ATTENTION_SECONDS = 24 * 60
LOCAL_ATTENTION_SECONDS = 3 * 3600
LIVE_SESSIONS = (16, 64, 128)
LIVE_SECONDS = 16.0
LIVE_STEP_BATCHES = (1, 16, 64)
LIVE_PIECE_SECONDS = 0.02


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


def serve_full_size_model(device: str) -> str:
    """Makes the worker serve the 0.6B architecture with random weights (nothing downloaded).

    Args:
        device: "cuda" (or "cpu" for a smoke run).

    Returns:
        The served model's id.
    """
    import config
    from bench.bench_gpu_rtfx import build_model
    from utils.asr import model as asr_model

    built = build_model(device)
    name = "parakeet-full-size-random.nemo"
    config.PARAKEET_MODELS = (name,)
    # The worker loads its model by name; this one is built, so loading hands it over.
    asr_model.load_model = lambda _: built
    asr_model.loaded(name)
    return asr_model.model_id(name)


def live_step_times(model_id: str, batches: tuple[int, ...]) -> list[dict[str, object]]:
    """The time of one batched live step over `batch` full frames (12 s each), median of 3.

    Args:
        model_id: The served model.
        batches: Frames per step.

    Returns:
        One figure per batch size.
    """
    import statistics

    import torch

    import config
    from utils.realtime import streaming

    pieces = streaming.live_model(model_id)
    chunk, lookahead = (round(s * 16_000) for s in config.LIVE_DELAYS["medium"])
    left = round(config.LIVE_LEFT_CONTEXT_SECONDS * 16_000)
    rng = np.random.default_rng(0)
    figures = []
    for batch in batches:
        frames = [
            streaming.Frame(
                (rng.standard_normal(left + chunk + lookahead) * 0.1).astype(np.float32), left, chunk
            )
            for _ in range(batch)
        ]
        times = []
        for _ in range(4):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            started = time.perf_counter()
            pieces.step(frames)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            times.append(time.perf_counter() - started)
        step = statistics.median(times[1:])
        figures.append(
            {
                "figure": f"live step, {batch} frames of 12 s, delay medium",
                "step_ms": round(step * 1000, 1),
                # Sessions one step's time keeps at real time: a frame per session per 0.8 s chunk.
                "sessions_per_gpu_estimate": int(batch * config.LIVE_DELAYS["medium"][0] / step),
            }
        )
    return figures


def live_sessions(model_id: str, sessions: int, seconds: float) -> dict[str, object]:
    """`sessions` turns streaming noise at real time through the live engine.

    Args:
        model_id: The served model.
        sessions: Turns at once.
        seconds: Audio per turn.

    Returns:
        The figure.
    """
    import asyncio

    from utils.realtime.engine import LiveSettings, engine

    piece = round(LIVE_PIECE_SECONDS * 16_000)
    trail: list[float] = []
    endings: list[float] = []

    async def one(index: int, audio: np.ndarray) -> None:
        turn = engine.open_turn(LiveSettings(model_id, "medium"), 0.0)

        async def read() -> None:
            async for update in turn.updates():
                now = time.monotonic() - started
                if update.final:
                    endings.append(now - finished[0])
                elif update.words and now > seconds / 2:
                    trail.append(now - update.words[-1].end)

        finished = [0.0]
        reader = asyncio.create_task(read())
        await asyncio.sleep(index * LIVE_PIECE_SECONDS / sessions)  # sessions out of step, as clients are
        for start in range(0, audio.size, piece):
            await turn.push(audio[start : start + piece])
            await asyncio.sleep(max(0.0, started + (start + piece) / 16_000 - time.monotonic()))
        finished[0] = time.monotonic() - started
        await turn.finish()
        await reader

    async def run() -> None:
        rng = np.random.default_rng(sessions)
        audios = [
            (rng.standard_normal(int(seconds * 16_000)) * 0.1).astype(np.float32) for _ in range(sessions)
        ]
        await asyncio.gather(*(one(i, audio) for i, audio in enumerate(audios)))

    before = engine.stats()
    cpu = time.process_time()
    started = time.monotonic()
    asyncio.run(run())
    wall = time.monotonic() - started
    cpu = time.process_time() - cpu
    after = engine.stats()
    trail.sort()
    return {
        "figure": f"live sessions at real time, {sessions} x {seconds:g} s, delay medium",
        "steps": after.steps - before.steps,
        "frames": after.frames - before.frames,
        "session_chunks": after.chunks - before.chunks,
        "words_trail_audio_p50_s": round(trail[len(trail) // 2], 2) if trail else None,
        "words_trail_audio_p95_s": round(trail[int(len(trail) * 0.95)], 2) if trail else None,
        "finish_to_final_max_s": round(max(endings), 3) if endings else None,
        "wall_over_audio": round(wall / seconds, 2),
        "cpu_ms_per_live_second": round(cpu * 1000 / (sessions * seconds), 1),
    }


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
    parser.add_argument("--live", action="store_true", help="step 5 alone")
    args = parser.parse_args()
    device = cuda_device()
    if device is None:
        print(json.dumps({"skipped": "no CUDA device: the GPU checks need one"}))
        return 0
    if args.memory:
        for figure in peak_memory():
            print(json.dumps(figure), flush=True)
        return 0
    if args.live:
        model_id = serve_full_size_model("cuda")
        for figure in live_step_times(model_id, LIVE_STEP_BATCHES):
            print(json.dumps(figure), flush=True)
        for sessions in LIVE_SESSIONS:
            print(json.dumps(live_sessions(model_id, sessions, LIVE_SECONDS)), flush=True)
        return 0
    print(json.dumps({"device": device}), flush=True)
    for name, command, limit in STEPS:
        print(json.dumps(run_step(name, command, limit)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
