"""The HTTP server's throughput and the latency of its streams, against `python server.py` on 127.0.0.1.

    .venv/bin/python bench/bench_http.py [--requests 64] [--minutes 10] [--burst 32]
        [--burst-concurrency 2] [--only burst]

1. Requests per second for a short clip (2.6 s, the bundled sample) through the official `openai`
   client: `--requests` sent one at a time, then the same number 16 at once (the server runs with
   MAX_CONCURRENCY=16, so that concurrent requests share model calls), in the same run.
2. A `--minutes` long file (spoken digits with pauses) with `stream=true`: seconds to the first
   `transcript.text.delta` event against seconds to `transcript.text.done`, and the same file without
   streaming (one full-attention call) for comparison.

3. Start-up: seconds from launching the server to its first /ping answer (204), and to 200.
4. A burst: `--burst` requests at once through the `openai` client with its default retries, against a
   server of `--burst-concurrency` job slots (its admission line takes the rest): how many were
   answered, the statuses the client saw (503s it retried included), and the burst's seconds against
   the same number of requests one at a time. `--only burst` runs this part alone.
5. /ping under hostile load: the slowest of its answers while four clients send 20 MB bodies of `[],`
   to /v1/jobs (parsed off the event loop, refused by their shape).

The bundled test model on this machine's device; the figures compare the modes, not the real model.
"""

import argparse
import http.client
import json
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
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


def burst(url: str, count: int) -> dict[str, object]:
    """`count` transcriptions at once through the `openai` client with its default retries, then the
    same number one at a time; returns the answers, the statuses seen and both times."""
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def seen(response: httpx.Response) -> None:
        with lock:
            statuses[response.status_code] += 1

    api = openai.OpenAI(
        base_url=f"{url}/v1", api_key="unused", http_client=httpx.Client(event_hooks={"response": [seen]})
    )

    def one(_: int) -> str | None:
        try:
            with SAMPLE.open("rb") as file:
                return api.audio.transcriptions.create(model="x", file=file).text
        except openai.APIError:
            return None

    one(0)  # warm-up
    statuses.clear()
    started = time.perf_counter()
    with ThreadPoolExecutor(count) as pool:
        texts = list(pool.map(one, range(count)))
    at_once = time.perf_counter() - started
    burst_statuses = dict(sorted(statuses.items()))
    started = time.perf_counter()
    for index in range(count):
        one(index)
    one_by_one = time.perf_counter() - started
    return {
        "burst_requests": count,
        "burst_answered": sum(text is not None for text in texts),
        "burst_statuses_seen": burst_statuses,
        "burst_seconds": round(at_once, 2),
        "one_at_a_time_seconds": round(one_by_one, 2),
    }


def ping_under_hostile_bodies(port: int, clients: int = 4, megabytes: int = 20) -> dict[str, float]:
    """The slowest /ping answer while `clients` send `megabytes` of `[],` each to /v1/jobs."""
    body = b"[" + b"[]," * (megabytes * 1024 * 1024 // 3) + b"[]]"
    done = threading.Event()

    def hostile() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            connection.request("POST", "/v1/jobs", body, {"Content-Type": "application/json"})
            connection.getresponse().read()
        finally:
            connection.close()

    latencies: list[float] = []

    def pinger() -> None:
        while not done.is_set():
            started = time.perf_counter()
            ping(port)
            latencies.append(time.perf_counter() - started)
            time.sleep(0.05)

    watcher = threading.Thread(target=pinger)
    watcher.start()
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(lambda _: hostile(), range(clients)))
    refused_after = time.perf_counter() - started
    done.set()
    watcher.join()
    return {
        "hostile_bodies": clients,
        "hostile_body_megabytes": megabytes,
        "hostile_bodies_refused_seconds": round(refused_after, 2),
        "ping_slowest_ms_meanwhile": round(max(latencies) * 1000, 1),
        "ping_median_ms_meanwhile": round(sorted(latencies)[len(latencies) // 2] * 1000, 1),
    }


def burst_figures(count: int, slots: int) -> dict[str, object]:
    """Parts 4 and 5, against a server of `slots` job slots."""
    with tempfile.TemporaryDirectory() as directory:
        environment = {"MAX_CONCURRENCY": str(slots), "PARAKEET_TEMP_DIR": directory}
        with http_server_process(Path(directory) / "server.log", **environment) as server:
            while ping(server.port) != 200:
                time.sleep(0.02)
            figures: dict[str, object] = {"burst_job_slots": slots, **burst(server.url, count)}
            figures.update(ping_under_hostile_bodies(server.port))
    return figures


def main() -> None:
    """Prints the figures."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--burst", type=int, default=32)
    parser.add_argument("--burst-concurrency", type=int, default=2)
    parser.add_argument("--only", choices=["burst"])
    args = parser.parse_args()
    if args.only == "burst":
        print(json.dumps(burst_figures(args.burst, args.burst_concurrency), indent=2))
        return
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
        **burst_figures(args.burst, args.burst_concurrency),
    }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
