"""Worker throughput through the RunPod SDK's real worker loop: jobs/s and latency by MAX_CONCURRENCY.

    .venv/bin/python bench/bench_worker_loop.py [--jobs 32] [--concurrency 1 4 16] [--broken-every 8]
                                                [--model PATH_OR_NAME] [--batch-wait-ms MS]

For each concurrency it starts `python -u handler.py` as RunPod does (environment from
tests/support/worker.py, which keeps the SDK's start-up checks off the network), against a job queue on
127.0.0.1 that serves the SDK's single and batch takes and its stop channel. The queue holds `--jobs`
short voice-note clips (1-2 s of spoken digits, Opus), every `--broken-every`-th one broken (not audio).
The clock runs from the first take to the last answer; the model is loaded before the first take.

Prints one JSON line per concurrency: jobs/s, p50/p95 latency (take → answer), the mean items per model
call (from each result's `meta.batch`), and whether every job was answered exactly once and correctly.
"""

import argparse
import base64
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import config
from tests.support.worker import job_queue, start_worker_loop, stop_worker
from tools import synth


def make_jobs(count: int, broken_every: int, directory: Path) -> tuple[list[dict], dict[str, str]]:
    """Short spoken-digit clips as Opus jobs; returns the jobs and what each must answer."""
    jobs, expected = [], {}
    for index in range(count):
        job_id = f"job-{index}"
        if broken_every and index % broken_every == broken_every - 1:
            jobs.append({"id": job_id, "input": {"audio_base64": base64.b64encode(b"not audio").decode()}})
            expected[job_id] = "invalid_audio"
            continue
        words = " ".join(synth.DIGIT_WORDS[(index * 7 + k) % 10] for k in range(2 + index % 3))
        wav, clip = directory / f"{index}.wav", directory / f"{index}.opus"
        synth.write_wav(wav, synth.synthesize(words))
        subprocess.run(
            ["ffmpeg", "-nostdin", "-y", "-loglevel", "error", "-i", str(wav), "-c:a", "libopus", str(clip)],
            check=True,
        )
        jobs.append({"id": job_id, "input": {"audio_base64": base64.b64encode(clip.read_bytes()).decode()}})
        expected[job_id] = words
    return jobs, expected


def run(jobs: list[dict], expected: dict[str, str], concurrency: int, args: argparse.Namespace) -> dict:
    """One worker at one concurrency over all jobs; returns its figures."""
    with tempfile.TemporaryDirectory(prefix="bench-loop-") as temp, job_queue(jobs) as queue:
        env = {"MAX_CONCURRENCY": str(concurrency), "PARAKEET_MODEL": args.model}
        if args.batch_wait_ms is not None:
            env["BATCH_WAIT_MS"] = str(args.batch_wait_ms)
        worker = start_worker_loop(queue, Path(temp), **env)
        try:
            answered = queue.done.wait(timeout=args.timeout)
        finally:
            output = stop_worker(worker)
        if not answered:
            sys.exit(f"concurrency {concurrency}: not every job was answered\n{output[-3000:]}")
        finals = queue.finished()
    answers: dict[str, list[dict]] = {}
    for post in finals:
        answers.setdefault(post["id"], []).append(post["output"])
    correct = all(
        len(answers.get(job_id, [])) == 1
        and (
            answers[job_id][0].get("text")
            if answers[job_id][0].get("success")
            else answers[job_id][0].get("error_type")
        )
        == want
        for job_id, want in expected.items()
    )
    latencies = sorted(queue.answered_at[i] - queue.taken_at[i] for i in expected)
    elapsed = max(queue.answered_at.values()) - min(queue.taken_at.values())
    batches = [out["meta"].get("batch", 1) for outs in answers.values() for out in outs if out.get("success")]
    calls = sum(1 / size for size in batches)
    return {
        "concurrency": concurrency,
        "jobs": len(jobs),
        "jobs_per_s": round(len(jobs) / elapsed, 2),
        "p50_latency_s": round(statistics.median(latencies), 3),
        "p95_latency_s": round(latencies[int(0.95 * (len(latencies) - 1))], 3),
        "mean_items_per_model_call": round(len(batches) / calls, 2) if calls else None,
        "all_answered_once_and_correct": correct,
    }


def main() -> None:
    """Runs the benchmark and prints one JSON line per concurrency."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=32)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--broken-every", type=int, default=8)
    parser.add_argument("--model", default=str(config.BUNDLED_TEST_MODEL))
    parser.add_argument("--batch-wait-ms", type=float, default=None, help="default: the worker's")
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-clips-") as directory:
        jobs, expected = make_jobs(args.jobs, args.broken_every, Path(directory))
    for concurrency in args.concurrency:
        print(json.dumps(run(jobs, expected, concurrency, args)), flush=True)


if __name__ == "__main__":
    main()
