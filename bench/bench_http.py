"""The HTTP server's throughput and the latency of its streams, against `python server.py` on 127.0.0.1.

    .venv/bin/python bench/bench_http.py [--requests 64] [--minutes 10]

1. Requests per second for a short clip (2.6 s, the bundled sample) through the official `openai`
   client: `--requests` sent one at a time, then the same number 16 at once (the server runs with
   MAX_CONCURRENCY=16, so that concurrent requests share model calls), in the same run.
2. A `--minutes` long file (spoken digits with pauses) with `stream=true`: seconds to the first
   `transcript.text.delta` event against seconds to `transcript.text.done`, and the same file without
   streaming (one full-attention call) for comparison.

3. Start-up: seconds from launching the server to its first /ping answer (204), and to 200.

The bundled test model on this machine's device; the figures compare the modes, not the real model.
"""

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import openai

import config
from tests.support.media import encode, speech
from tests.support.worker import http_server_process, ping

SAMPLE = config.REPO_ROOT / "tests" / "fixtures" / "sample-digits.ogg"
CONCURRENT = 16


def requests_per_second(api: openai.OpenAI, count: int, at_once: int) -> float:
    """Sends `count` transcriptions of the sample, `at_once` at a time; returns requests per second."""

    def one(_: int) -> str:
        with SAMPLE.open("rb") as file:
            return api.audio.transcriptions.create(model="x", file=file).text

    started = time.perf_counter()
    with ThreadPoolExecutor(at_once) as pool:
        texts = list(pool.map(one, range(count)))
    elapsed = time.perf_counter() - started
    assert len(set(texts)) == 1, set(texts)
    return count / elapsed


def long_file(directory: Path, minutes: float) -> Path:
    """Spoken digit phrases with pauses, `minutes` long, as FLAC."""
    phrases = ["one two three four", "five six seven", "eight nine zero", "two four six eight"]
    clips = [speech(phrase) for phrase in phrases]
    gap = np.zeros(config.SAMPLE_RATE, dtype=np.float32)
    parts, total, index = [], 0, 0
    while total < minutes * 60 * config.SAMPLE_RATE:
        parts += [clips[index % len(clips)], gap]
        total += clips[index % len(clips)].size + gap.size
        index += 1
    return encode(np.concatenate(parts), directory / "long.flac", "-c:a", "flac")


def stream_latency(api: openai.OpenAI, path: Path) -> tuple[float, float, int]:
    """Streams one file; returns seconds to the first delta, seconds to done, and the delta count."""
    started = time.perf_counter()
    first, deltas = None, 0
    with path.open("rb") as file:
        for event in api.audio.transcriptions.create(model="x", file=file, stream=True):
            if event.type == "transcript.text.delta":
                deltas += 1
                first = first if first is not None else time.perf_counter() - started
    return first or 0.0, time.perf_counter() - started, deltas


def main() -> None:
    """Prints the figures."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        path = long_file(Path(directory), args.minutes)
        log = Path(directory) / "server.log"
        environment = {"MAX_CONCURRENCY": str(CONCURRENT), "PARAKEET_TEMP_DIR": directory}
        launched = time.perf_counter()
        with http_server_process(log, **environment) as server:
            first_ping = time.perf_counter() - launched
            while ping(server.port) != 200:
                time.sleep(0.02)
            healthy = time.perf_counter() - launched
            api = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=3600)
            requests_per_second(api, 4, 1)  # warm-up
            one = requests_per_second(api, args.requests, 1)
            many = requests_per_second(api, args.requests, CONCURRENT)
            first, done, deltas = stream_latency(api, path)
            started = time.perf_counter()
            with path.open("rb") as file:
                api.audio.transcriptions.create(model="x", file=file)
            whole = time.perf_counter() - started
    figures = {
        "ping_first_answer_seconds": round(first_ping, 2),
        "ping_healthy_seconds": round(healthy, 2),
        "requests": args.requests,
        "requests_per_second_one_at_a_time": round(one, 2),
        f"requests_per_second_{CONCURRENT}_at_once": round(many, 2),
        "long_file_minutes": args.minutes,
        "stream_first_delta_seconds": round(first, 2),
        "stream_done_seconds": round(done, 2),
        "stream_deltas": deltas,
        "without_streaming_seconds": round(whole, 2),
    }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
