"""Live transcription at real time: sessions through the official `openai` client against `server.py`.

    .venv/bin/python bench/bench_realtime.py [--sessions 16] [--seconds 40] [--levels 8,16,24,32]
        [--delays minimal,low,medium,high,xhigh] [--file-minutes 10]

Every session connects with `client.realtime.connect(extra_query={"intent": "transcription"})` to a
`python server.py` on 127.0.0.1 (the bundled model), sets server VAD (threshold 0.5, 300 ms prefix,
500 ms silence) and streams synthesized digit phrases with pauses of 1 to 2 s as 24 kHz PCM, 40 ms an
append, paced by the clock (real time). It prints, as JSON:

1. `sessions` at once (default 16), the default delay: seconds from a phrase's last audible sample
   being sent to its turn's `.completed` (p50, p95); how far deltas trail the audio (seconds of audio
   sent when a delta arrives, past the end of the last word it settles, from `.completed`'s word times;
   p50, p95); the server's CPU seconds per second of live audio; the WER of the live turns and of the
   same sessions' audio sent as files through the HTTP door.
2. `levels`: the same at each count of sessions, up to the first that is not held at real time (a
   turn missing, or p95 turn end → `.completed` beyond the silence plus 0.5 s); the most held.
3. `beside_file_job`: item 1 again while a `--file-minutes` file is transcribed through the HTTP door,
   the job started before the sessions connect, then after they began.
4. `delays`: 4 sessions at each `transcription.delay`, with longer phrases (12 to 20 words, 5 to 8 s):
   the lag of the deltas that arrive while the speaker still talks (before `speech_stopped`), the share of
   words sent by then, turn end → `.completed`, WER.

The bench's own client shares the machine with the server; figures from a shared machine are
pessimistic. Loopback only. Bounded: every session ends after its audio and at most 60 s more.
"""

import argparse
import asyncio
import base64
import functools
import json
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import openai

import config
from tests.support.media import encode
from tests.support.scoring import word_error_rate
from tests.support.worker import http_server_process, ping
from tools import synth
from utils.realtime import turns
from utils.realtime.audio_in import InputAudio
from utils.realtime.turns import TurnDetector, TurnSettings

RATE = config.SAMPLE_RATE
WIRE_RATE = 24_000
APPEND_SECONDS = 0.04
SILENCE_MS = 500
PREFIX_MS = 300
LONG_PHRASES = (12, 20)  # words per phrase in the delay round: turns of 5 to 8 s, long enough to stream
HELD_SLACK_SECONDS = 0.5  # the target: p95 turn end → .completed within the silence plus this
DRAIN_SECONDS = 60.0
PROCESS_TICKS = 100  # os.sysconf("SC_CLK_TCK") on Linux


@dataclass(frozen=True)
class Phrase:
    """One spoken phrase of a session's script: its words and its audible span, in samples at 16 kHz."""

    words: tuple[str, ...]
    start: int
    end: int


@dataclass(frozen=True)
class Script:
    """A session's audio: 16 kHz for the file door, 24 kHz PCM16 for the live door, and its phrases."""

    samples: np.ndarray
    wire: bytes
    phrases: tuple[Phrase, ...]


@dataclass
class Outcome:
    """What one session saw."""

    phrase_sent: dict[int, float] = field(default_factory=dict)  # phrase index → when its end was sent
    started_at: float = 0.0  # the clock at the stream's first sample
    items: dict[str, dict] = field(default_factory=dict)  # item id → start_ms, deltas, completed, words
    order: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    late_seconds: float = 0.0  # how far the sender fell behind the clock, at worst


@functools.cache
def clip(phrase: str) -> np.ndarray:
    """A phrase spoken by espeak-ng, trimmed to its audible part."""
    samples = synth.synthesize(phrase)
    loud = np.flatnonzero(np.abs(samples) > 0.02)
    return samples[loud[0] : loud[-1] + 1].copy()


def build_script(seed: int, seconds: float, lengths: tuple[int, int] = (4, 10)) -> Script:
    """Phrases of `lengths` digit words (bounds included), pauses of 1-2 s, `seconds` long, then quiet."""
    rng = np.random.default_rng(seed)
    parts = [np.zeros(int(rng.uniform(0.3, 1.0) * RATE), np.float32)]
    phrases, used = [], parts[0].size
    while used < (seconds - 1.5) * RATE:
        size = int(rng.integers(lengths[0], lengths[1] + 1))
        words = tuple(str(word) for word in rng.choice(synth.DIGIT_WORDS, size=size))
        voice = clip(" ".join(words))
        phrases.append(Phrase(words, used, used + voice.size))
        pause = np.zeros(int(rng.uniform(1.0, 2.0) * RATE), np.float32)
        parts += [voice, pause]
        used += voice.size + pause.size
    parts.append(np.zeros(int(1.5 * RATE), np.float32))
    samples = np.concatenate(parts)
    wire = resample_poly(samples, 3, 2)
    pcm = (np.clip(wire, -1, 1) * 32767).astype("<i2").tobytes()
    return Script(samples, pcm, tuple(phrases))


def session_config(delay: str) -> dict:
    """The session.update body: transcription, 24 kHz PCM, server VAD."""
    return {
        "type": "transcription",
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": WIRE_RATE},
                "transcription": {"delay": delay},
                "turn_detection": {
                    "type": "server_vad",
                    "threshold": 0.5,
                    "prefix_padding_ms": PREFIX_MS,
                    "silence_duration_ms": SILENCE_MS,
                },
            }
        },
    }


async def run_session(client: openai.AsyncOpenAI, script: Script, delay: str, lead: float) -> Outcome:
    """Streams one script at real time and records every event that matters, with its arrival time."""
    outcome = Outcome()
    await asyncio.sleep(lead)
    async with client.realtime.connect(extra_query={"intent": "transcription"}) as connection:
        await connection.send({"type": "session.update", "session": session_config(delay)})

        async def receive() -> None:
            async for message in connection:
                now = time.perf_counter()
                payload = message.to_dict()
                kind = payload.get("type", "")
                record = outcome.items.setdefault(payload.get("item_id", ""), {"deltas": []})
                if kind == "input_audio_buffer.speech_started":
                    record["start_ms"] = payload["audio_start_ms"]
                    outcome.order.append(payload["item_id"])
                elif kind == "input_audio_buffer.speech_stopped":
                    record["stopped"] = now
                elif kind == "conversation.item.input_audio_transcription.delta":
                    record["deltas"].append((now, payload["delta"]))
                elif kind == "conversation.item.input_audio_transcription.completed":
                    record.update(completed=now, text=payload["transcript"], words=payload.get("words", []))
                elif kind in ("error", "conversation.item.input_audio_transcription.failed"):
                    outcome.errors.append(json.dumps(payload)[:300])

        receiver = asyncio.create_task(receive())
        step = int(APPEND_SECONDS * WIRE_RATE) * 2
        ends = {int(phrase.end * WIRE_RATE / RATE) * 2: index for index, phrase in enumerate(script.phrases)}
        outcome.started_at = time.perf_counter()
        for offset in range(0, len(script.wire), step):
            due = outcome.started_at + offset / 2 / WIRE_RATE
            pause = due - time.perf_counter()
            if pause > 0:
                await asyncio.sleep(pause)
            outcome.late_seconds = max(outcome.late_seconds, -pause)
            chunk = script.wire[offset : offset + step]
            await connection.input_audio_buffer.append(audio=base64.b64encode(chunk).decode("ascii"))
            sent = time.perf_counter()
            for end, index in ends.items():
                if offset < end <= offset + step:
                    outcome.phrase_sent[index] = sent
        deadline = time.perf_counter() + DRAIN_SECONDS
        while not all("completed" in outcome.items[key] for key in outcome.order) and not receiver.done():
            if time.perf_counter() > deadline:
                outcome.errors.append("turns still open after the drain")
                break
            await asyncio.sleep(0.05)
        receiver.cancel()
    return outcome


def percentile(values: list[float], share: float) -> float | None:
    """A percentile, rounded; None without values."""
    return round(float(np.percentile(values, share)), 3) if values else None


def words_of(text: str) -> list[str]:
    """Lower-case words without punctuation."""
    return [word.strip(".,?!").lower() for word in text.split() if word.strip(".,?!")]


def analyse(scripts: list[Script], outcomes: list[Outcome]) -> dict:
    """Turn-end latency, delta lag, WER and completeness over all sessions."""
    latencies, lags, talking, errors, missing, wrong = [], [], [], [], 0, []
    early_words = all_words = 0
    reference, heard = [], []
    for script, outcome in zip(scripts, outcomes, strict=True):
        errors += outcome.errors
        items = [outcome.items[key] for key in outcome.order if "completed" in outcome.items[key]]
        missing += sum(1 for key in outcome.order if "completed" not in outcome.items[key])
        reference += [word for phrase in script.phrases for word in phrase.words]
        heard += [word for item in items for word in words_of(item["text"])]
        for index, phrase in enumerate(script.phrases):
            end_ms = phrase.end * 1000 / RATE
            # The turn that holds the phrase's end: the last one started before it.
            covering = [item for item in items if item.get("start_ms", 0) <= end_ms]
            if covering and index in outcome.phrase_sent:
                latencies.append(covering[-1]["completed"] - outcome.phrase_sent[index])
                if words_of(covering[-1]["text"]) != list(phrase.words):
                    wrong.append(f"{' '.join(phrase.words)} -> {covering[-1]['text']}")
            else:
                missing += 1
        for item in items:
            joined = ""
            for arrived, text in item["deltas"]:
                joined += text
                settled = len(joined.split())
                if settled and settled <= len(item["words"]):
                    audio_sent = arrived - outcome.started_at
                    lags.append(audio_sent - item["words"][settled - 1]["end"])
                    if arrived < item.get("stopped", float("inf")):  # while the speaker still talks
                        talking.append(lags[-1])
            before = "".join(text for arrived, text in item["deltas"] if arrived < item.get("stopped", 0))
            early_words += len(before.split())
            all_words += len(item["words"])
    return {
        "turns_completed": len(latencies),
        "phrases": sum(len(script.phrases) for script in scripts),
        "turn_end_to_completed_p50_s": percentile(latencies, 50),
        "turn_end_to_completed_p95_s": percentile(latencies, 95),
        "delta_lag_p50_s": percentile(lags, 50),
        "delta_lag_p95_s": percentile(lags, 95),
        "deltas": len(lags),
        "delta_lag_while_talking_p50_s": percentile(talking, 50),
        "delta_lag_while_talking_p95_s": percentile(talking, 95),
        "words_sent_before_turn_end_percent": round(100 * early_words / max(1, all_words), 1),
        "live_wer_percent": round(100 * word_error_rate(reference, heard), 2),
        "missing": missing,
        "errors": errors[:3],
        "turns_heard_otherwise": wrong[:4],
        "sender_late_max_s": round(max(outcome.late_seconds for outcome in outcomes), 3),
    }


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / PROCESS_TICKS


def live_round(
    url: str, pid: int, count: int, seconds: float, delay: str, seed: int, lengths: tuple[int, int] = (4, 10)
) -> tuple[dict, list]:
    """`count` sessions at once; the analysis, the server's CPU per live second, and the scripts."""
    scripts = [build_script(seed + index, seconds, lengths) for index in range(count)]
    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)

    async def all_sessions() -> list[Outcome]:
        leads = np.random.default_rng(seed).uniform(0, 1.0, count)
        return list(
            await asyncio.gather(
                *(run_session(client, s, delay, lead) for s, lead in zip(scripts, leads, strict=True))
            )
        )

    cpu = process_cpu_seconds(pid)
    outcomes = asyncio.run(all_sessions())
    cpu = process_cpu_seconds(pid) - cpu
    figures = {"sessions": count, "delay": delay, **analyse(scripts, outcomes)}
    audio_seconds = sum(script.samples.size for script in scripts) / RATE
    figures["server_cpu_seconds_per_live_second"] = round(cpu / audio_seconds, 4)
    limit = SILENCE_MS / 1000 + HELD_SLACK_SECONDS
    p95 = figures["turn_end_to_completed_p95_s"]
    figures["held_at_real_time"] = bool(
        not figures["missing"] and not figures["errors"] and p95 is not None and p95 <= limit
    )
    return figures, scripts


def file_wer(url: str, scripts: list[Script], directory: Path) -> float:
    """WER of the same sessions' audio sent as files through the HTTP door."""
    api = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=600)
    reference, heard = [], []
    for index, script in enumerate(scripts):
        path = encode(script.samples, directory / f"session-{index}.flac", "-c:a", "flac")
        with path.open("rb") as file:
            heard += words_of(api.audio.transcriptions.create(model="x", file=file).text)
        reference += [word for phrase in script.phrases for word in phrase.words]
    return round(100 * word_error_rate(reference, heard), 2)


def long_file(directory: Path, minutes: float) -> Path:
    """Spoken digit phrases with 1 s pauses, `minutes` long, as FLAC."""
    script = build_script(999, minutes * 60)
    return encode(script.samples, directory / "long.flac", "-c:a", "flac")


def component_cpu(seconds: float = 60.0) -> dict:
    """CPU milliseconds per second of audio of the input converter and the turn detector, in this process.

    One session's audio in 40 ms appends (20 ms for G.711, as telephony sends it), after a warm-up.
    """
    script = build_script(5, seconds)
    samples = script.samples
    # The converter's cost does not depend on what the bytes say.
    telephone = np.random.default_rng(0).integers(0, 256, int(seconds * 8000), dtype=np.uint8).tobytes()
    figures = {}
    for name, converter, raw, step in (
        (
            "input_audio_pcm_24k",
            InputAudio("audio/pcm", WIRE_RATE),
            script.wire,
            int(APPEND_SECONDS * WIRE_RATE) * 2,
        ),
        ("input_audio_pcmu_8k", InputAudio("audio/pcmu", 8000), telephone, 160),
    ):
        started = time.process_time()
        for offset in range(0, len(raw), step):
            converter.feed(raw[offset : offset + step])
        figures[f"{name}_cpu_ms_per_audio_second"] = round(
            (time.process_time() - started) / seconds * 1000, 2
        )
    turns.load()
    detector = TurnDetector(TurnSettings())
    detector.feed(samples[: RATE * 2])
    step = int(APPEND_SECONDS * RATE)
    started = time.process_time()
    for offset in range(0, samples.size, step):
        detector.feed(samples[offset : offset + step])
    figures["turn_detector_cpu_ms_per_audio_second"] = round(
        (time.process_time() - started) / seconds * 1000, 2
    )
    return figures


def main() -> None:
    """Prints the figures."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--sessions", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=40.0, help="audio per session")
    parser.add_argument("--levels", default="8,16,24,32", help="session counts to try; empty: skip")
    parser.add_argument("--delays", default=",".join(config.LIVE_DELAYS), help="empty: skip")
    parser.add_argument("--file-minutes", type=float, default=10.0, help="0: skip")
    parser.add_argument("--delay", default=config.LIVE_DEFAULT_DELAY)
    parser.add_argument("--skip-main", action="store_true", help="no main round (and no file WER)")
    args = parser.parse_args()
    results: dict = {"machine": "shared 2-core CPU box, bundled test model; pessimistic"}
    results["components"] = component_cpu()
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        environment = {"REALTIME_MAX_SESSIONS": "64", "MAX_CONCURRENCY": "4", "PARAKEET_TEMP_DIR": folder}
        with http_server_process(directory / "server.log", **environment) as server:
            while ping(server.port) != 200:
                time.sleep(0.1)
            pid = server.process.pid
            live_round(server.url, pid, 2, 8, args.delay, 7)  # warm-up: model, VAD, decoders
            if not args.skip_main:
                main_round, scripts = live_round(
                    server.url, pid, args.sessions, args.seconds, args.delay, 100
                )
                main_round["file_wer_percent"] = file_wer(server.url, scripts, directory)
                results["main"] = main_round
                print(json.dumps(results, indent=2), flush=True)
            held, levels = 0, []
            for count in [int(value) for value in args.levels.split(",") if value]:
                figures, _ = live_round(server.url, pid, count, min(args.seconds, 30), args.delay, 200)
                levels.append(figures)
                if not figures["held_at_real_time"]:
                    break
                held = count
            results["levels"], results["most_sessions_held"] = levels, held
            if args.file_minutes:
                results["beside_file_job"] = [
                    beside_file_job(server.url, pid, args, directory, job_first)
                    for job_first in (True, False)
                ]
            delays = []
            for delay in [value for value in args.delays.split(",") if value]:
                figures, scripts = live_round(
                    server.url, pid, 4, min(args.seconds, 30), delay, 300, LONG_PHRASES
                )
                figures["file_wer_percent"] = file_wer(server.url, scripts, directory)
                delays.append(figures)
            results["delays"] = delays
    print(json.dumps(results, indent=2))


def beside_file_job(url: str, pid: int, args: argparse.Namespace, directory: Path, job_first: bool) -> dict:
    """The main round again while a long file is transcribed through the HTTP door.

    `job_first`: the file job starts 3 s before the sessions connect; else 5 s after they begin.
    """
    path = long_file(directory, args.file_minutes)
    api = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=3600)
    timing: dict = {}

    def transcribe() -> None:
        time.sleep(0.0 if job_first else 5.0)
        timing["started"] = started = time.perf_counter()
        with path.open("rb") as file:
            api.audio.transcriptions.create(model="x", file=file)
        timing["ended"] = time.perf_counter()
        timing["file_job_seconds"] = round(timing["ended"] - started, 2)

    job = threading.Thread(target=transcribe, daemon=True)
    job.start()
    if job_first:
        time.sleep(3.0)  # the upload is in and the job is running
    live_started = time.perf_counter()
    figures, _ = live_round(url, pid, args.sessions, args.seconds, args.delay, 100)
    live_ended = time.perf_counter()
    job.join(timeout=3600)
    overlap = min(timing.pop("ended", live_ended), live_ended) - max(timing.pop("started", 0.0), live_started)
    figures.update(timing)
    figures["file_job_minutes"] = args.file_minutes
    figures["file_job_started"] = "before the sessions" if job_first else "after the sessions"
    figures["share_of_live_round_beside_the_job"] = round(max(0.0, overlap) / (live_ended - live_started), 2)
    return figures


if __name__ == "__main__":
    main()
