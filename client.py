"""Sends audio files and URLs to a Parakeet endpoint on RunPod and writes the transcripts beside them.

    export RUNPOD_API_KEY=... RUNPOD_ENDPOINT_ID=...
    python client.py talk.mp3 notes/*.ogg https://example.com/call.m4a s3://bucket/meeting.wav

Each input is submitted with `/run` (local files as `audio_base64`, URLs as `audio_url`) and polled with
`/status/{id}` until the job ends, several at a time. For each input that succeeds the client writes
`<name>.txt` (the transcript) and `<name>.json` (the worker's whole output), plus `<name>.srt` /
`<name>.vtt` when the output holds an `srt` / `vtt` field: the client never builds subtitles itself,
it saves what the worker sent.
Files go next to a local input, or into --out-dir; a URL's go into --out-dir or the current directory.

Connection errors, 408, 429 and 5xx answers are retried with exponential backoff. One summary line is
printed per input; the exit status is 1 when any input failed, 2 for a usage error.

Only the standard library is needed: copy this one file anywhere.
"""

import argparse
import base64
import contextlib
import http.client
import json
import os
import random
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENDPOINT_ID = os.environ.get("RUNPOD_ENDPOINT_ID")
API_KEY = os.environ.get("RUNPOD_API_KEY")
BASE_URL_TEMPLATE = "https://api.runpod.ai/v2/{endpoint_id}"
USER_AGENT = "parakeet-worker-client/0.1"
CONCURRENCY = 4
# Per item, from submission to a terminal state; an item still queued or running then is cancelled.
TIMEOUT_SECONDS = 3600.0
POLL_INTERVAL_SECONDS = 2.0
# One HTTP request. The SDK's local API runs the job inside the /status request, so this is generous.
REQUEST_TIMEOUT_SECONDS = 120.0
CANCEL_TIMEOUT_SECONDS = 10.0
# Error messages are cut to this length so each input's summary stays one line.
MAX_MESSAGE_CHARS = 300
# Transient failures (connection errors and these statuses) are retried with exponential backoff.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
MAX_RETRIES = 5
RETRY_BACKOFF_SECONDS = 1.0
RETRY_BACKOFF_MAX_SECONDS = 30.0
# RunPod refuses /run bodies over 10 MB; a larger file must be uploaded and sent as a URL.
MAX_RUN_BODY_BYTES = 10 * 1024 * 1024
# Inputs starting with these are sent as audio_url (the worker decides which schemes it accepts).
URL_PREFIXES = ("https://", "http://", "s3://")
# The input fields that carry the audio: the client fills them from its inputs.
SOURCE_FIELDS = frozenset({"audio_base64", "audio_url", "audios"})
# Job states after which /status will not change any more.
TERMINAL_STATES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"})
# Output fields saved as files of their own (<name>.srt, <name>.vtt) when the worker returns them.
SUBTITLE_FIELDS = ("srt", "vtt")

# Failures below HTTP: refused or reset connections, timeouts (all OSError, URLError included) and a
# server hanging up mid-answer (HTTPException).
TRANSIENT_NETWORK_ERRORS = (OSError, http.client.HTTPException)


class ClientError(Exception):
    """An input or a request failed for good: not retryable, or out of retries."""


class HttpStatusError(ClientError):
    """The endpoint answered with an HTTP error status that is not worth retrying."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class DeadlineError(ClientError):
    """The item's overall timeout ran out while a request was still failing or waiting."""


def one_line(text: Any) -> str:
    """Squeezes any message onto one line of bounded length for the per-input summary.

    Args:
        text: A message, a response body (bytes) or any value.

    Returns:
        The text with whitespace runs collapsed, cut to `MAX_MESSAGE_CHARS`.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    squeezed = " ".join(str(text).split())
    limit = MAX_MESSAGE_CHARS
    return squeezed if len(squeezed) <= limit else f"{squeezed[: limit - 1]}…"


def backoff_delay(attempt: int, retry_after: float | None) -> float:
    """Seconds to wait before retry number `attempt + 1`.

    Args:
        attempt: How many retries were made already (0 before the first).
        retry_after: The server's Retry-After in seconds, when it sent one.

    Returns:
        Exponential backoff with jitter, at least the server's Retry-After, never over the cap.
    """
    cap = RETRY_BACKOFF_MAX_SECONDS
    delay = min(cap, RETRY_BACKOFF_SECONDS * 2**attempt)
    # Jitter keeps threads hit by the same outage from retrying in lockstep.
    delay *= random.uniform(0.5, 1.0)
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return delay


def _retry_after(headers: Any) -> float | None:
    """Reads a Retry-After header given in seconds (the HTTP-date form is ignored)."""
    try:
        return max(0.0, float(headers.get("Retry-After")))
    except (TypeError, ValueError):
        return None


@dataclass
class Endpoint:
    """One RunPod endpoint (or the SDK's local API) and how to talk to it."""

    base_url: str
    api_key: str | None = None
    # RunPod's API documents GET /status; the SDK's local API routes only POST. Switched on a 405.
    status_method: str = "GET"

    def _send(self, method: str, path: str, payload: dict[str, Any] | None, timeout: float) -> dict[str, Any]:
        """Sends one request and parses its JSON answer; network and HTTP errors propagate."""
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        data = None
        if payload is not None:
            data = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(f"{self.base_url}{path}", data=data, headers=headers, method=method)
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        try:
            answer = json.loads(body)
        except ValueError as error:
            raise ClientError(
                f"{method} {path} answered with something other than JSON: {one_line(body)}"
            ) from error
        if not isinstance(answer, dict):
            raise ClientError(f"{method} {path} answered with JSON that is not an object: {one_line(body)}")
        return answer

    def request(
        self, method: str, path: str, payload: dict[str, Any] | None, deadline: float
    ) -> dict[str, Any]:
        """Sends a request, retrying transient failures with exponential backoff.

        A retried `/run` whose first attempt timed out after reaching RunPod can queue the job twice;
        that costs a duplicate transcription, never a wrong result, so it is accepted.

        Args:
            method: The HTTP method.
            path: The path under the base URL, starting with "/".
            payload: A JSON body, or None for none.
            deadline: The `time.monotonic()` instant after which no request is started or retried.

        Returns:
            The answer's JSON object.

        Raises:
            HttpStatusError: The endpoint answered with a status that is not retried (400, 401, 404…).
            DeadlineError: The deadline came before a successful answer.
            ClientError: Retries ran out, or the answer was not a JSON object.
        """
        attempt = 0
        while True:
            timeout = min(REQUEST_TIMEOUT_SECONDS, deadline - time.monotonic())
            if timeout <= 0:
                raise DeadlineError(f"{method} {path} was not answered before the timeout")
            retry_after = None
            try:
                return self._send(method, path, payload, timeout)
            except urllib.error.HTTPError as error:
                body = error.read()
                problem = f"HTTP {error.code}: {one_line(body)}" if body else f"HTTP {error.code}"
                if error.code not in RETRY_STATUSES:
                    if error.code == 401:
                        problem += " (check RUNPOD_API_KEY)"
                    raise HttpStatusError(f"{method} {path} failed with {problem}", error.code) from error
                retry_after = _retry_after(error.headers)
            except TRANSIENT_NETWORK_ERRORS as error:
                problem = one_line(getattr(error, "reason", error)) or type(error).__name__
            if attempt >= MAX_RETRIES:
                raise ClientError(f"{method} {path} failed {attempt + 1} times; last: {problem}")
            delay = backoff_delay(attempt, retry_after)
            if time.monotonic() + delay >= deadline:
                raise DeadlineError(
                    f"{method} {path} failed ({problem}) and the timeout leaves no time to retry"
                )
            time.sleep(delay)
            attempt += 1

    def submit(self, job_input: dict[str, Any], deadline: float) -> dict[str, Any]:
        """Queues a job with `/run`.

        Args:
            job_input: The job's `input` object.
            deadline: The item's deadline (`time.monotonic()`).

        Returns:
            The answer: `{"id", "status"}`.

        Raises:
            ClientError: The job could not be queued, or the answer carries no job id.
        """
        answer = self.request("POST", "/run", {"input": job_input}, deadline)
        if not isinstance(answer.get("id"), str) or not answer["id"]:
            raise ClientError(f"POST /run answered without a job id: {one_line(json.dumps(answer))}")
        return answer

    def status(self, job_id: str, deadline: float) -> dict[str, Any]:
        """Reads a job's state with `/status/{id}`.

        Args:
            job_id: The id `/run` returned.
            deadline: The item's deadline (`time.monotonic()`).

        Returns:
            The answer: `{"id", "status", "output"?, "error"?, ...}`.

        Raises:
            ClientError: The state could not be read.
        """
        path = f"/status/{urllib.parse.quote(job_id, safe='')}"
        # Read once: another thread may switch the method while this request is out.
        method = self.status_method
        try:
            return self.request(method, path, None, deadline)
        except HttpStatusError as error:
            if error.status != 405 or method == "POST":
                raise
        self.status_method = "POST"
        return self.request("POST", path, None, deadline)

    def cancel(self, job_id: str) -> str:
        """Asks the endpoint to cancel a job, once, so an abandoned job stops costing GPU time.

        Args:
            job_id: The id `/run` returned.

        Returns:
            "cancelled" or why cancelling failed (the SDK's local API has no /cancel, for one).
        """
        path = f"/cancel/{urllib.parse.quote(job_id, safe='')}"
        try:
            self._send("POST", path, None, CANCEL_TIMEOUT_SECONDS)
        except urllib.error.HTTPError as error:
            return f"cancelling it failed with HTTP {error.code}"
        except (ClientError, *TRANSIENT_NETWORK_ERRORS) as error:
            return f"cancelling it failed: {one_line(error)}"
        return "cancelled"


@dataclass
class ItemResult:
    """What happened to one input."""

    source: str
    ok: bool
    detail: str
    job_id: str | None = None

    def summary(self) -> str:
        """Returns the one-line report printed for this input."""
        job = f" (job {self.job_id})" if self.job_id else ""
        if self.ok:
            return f"ok      {self.source}: {self.detail}{job}"
        return f"FAILED  {self.source}: {self.detail}{job}"


def is_url(source: str) -> bool:
    """Tells whether an input is a URL for the worker to fetch rather than a local file."""
    return source.lower().startswith(URL_PREFIXES)


def build_input(source: str, options: dict[str, Any]) -> dict[str, Any]:
    """Builds a job's `input` object for one file or URL.

    Args:
        source: A local path, or a URL starting with one of `URL_PREFIXES`.
        options: Further input fields for every job (`timestamps`, `output_format`).

    Returns:
        `{"audio_base64": ...}` or `{"audio_url": ...}`, with the options.

    Raises:
        ClientError: The file cannot be read, or is too large to send inline through `/run`.
    """
    if is_url(source):
        job_input: dict[str, Any] = {"audio_url": source}
    else:
        path = Path(source)
        try:
            size = path.stat().st_size
            encoded_size = 4 * ((size + 2) // 3)
            if encoded_size > MAX_RUN_BODY_BYTES:
                raise ClientError(
                    f"{size / 1e6:.1f} MB is over the {MAX_RUN_BODY_BYTES / 1e6:.1f} MB "
                    "RunPod's /run accepts once base64-encoded; upload the file and pass its URL"
                )
            data = path.read_bytes()
        except OSError as error:
            raise ClientError(f"cannot read the file: {error.strerror or error}") from error
        job_input = {"audio_base64": base64.b64encode(data).decode("ascii")}
    return job_input | options


def job_options(args: argparse.Namespace) -> dict[str, Any]:
    """The input fields every job gets, from the options and `--input-json`.

    Args:
        args: The parsed command line.

    Returns:
        The fields, in the worker's names; the worker checks their values.

    Raises:
        ClientError: `--input-json` is not a JSON object, names a source field, or repeats an option.
    """
    options: dict[str, Any] = {}
    if args.timestamps:
        options["timestamps"] = True
    if args.subtitles:
        options["output_format"] = ["json", *sorted(set(args.subtitles))]
    flags = {
        "confidence": args.confidence or None,
        "diarize": args.diarize or None,
        "max_speakers": args.max_speakers,
        "channels": args.channels,
        "numbers": args.numbers,
        "hotwords": args.hotword or None,
        "hotword_weight": args.hotword_weight,
        "output_url": args.output_url,
    }
    options |= {field: value for field, value in flags.items() if value is not None}
    if args.input_json is None:
        return options
    try:
        extra = json.loads(args.input_json)
    except ValueError as error:
        raise ClientError(f"--input-json is not valid JSON: {error}") from None
    if not isinstance(extra, dict):
        raise ClientError(f"--input-json must be a JSON object, got {type(extra).__name__}")
    sources = sorted(set(extra) & SOURCE_FIELDS)
    if sources:
        raise ClientError(f"--input-json must not name {', '.join(sources)}: the inputs are the sources")
    repeated = sorted(set(extra) & set(options))
    if repeated:
        raise ClientError(f"--input-json repeats {', '.join(repeated)}, already set by an option")
    return options | extra


def output_stem(source: str, out_dir: Path | None) -> Path:
    """Where an input's results go, without the suffix: `talk.mp3` → `talk` (+ .txt, .json, ...).

    Args:
        source: A local path or a URL.
        out_dir: The directory asked for with --out-dir, or None.

    Returns:
        The path stem: in `out_dir`, else beside a local file, else (a URL) in the current directory.
    """
    if is_url(source):
        name = Path(urllib.parse.unquote(urllib.parse.urlsplit(source).path)).name
        directory = out_dir or Path()
    else:
        name = Path(source).name
        directory = out_dir or Path(source).parent
    stem = Path(name).stem if name not in {"", ".", ".."} else ""
    return directory / (stem or "audio")


def write_outputs(stem: Path, output: dict[str, Any]) -> list[Path]:
    """Writes a successful job's `.txt`, `.json` and the subtitle files the worker sent (`.srt`, `.vtt`).

    Args:
        stem: The path without suffix (see `output_stem`).
        output: The job's output (the worker's success contract).

    Returns:
        The files written.
    """
    stem.parent.mkdir(parents=True, exist_ok=True)
    contents = {
        ".txt": f"{output.get('text', '')}\n",
        ".json": json.dumps(output, indent=2, ensure_ascii=False) + "\n",
    }
    for name in SUBTITLE_FIELDS:
        if isinstance(output.get(name), str):
            contents[f".{name}"] = output[name]
    written = []
    for suffix, text in contents.items():
        path = stem.with_name(stem.name + suffix)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def failure_detail(state: dict[str, Any]) -> str:
    """Explains a job that ended without a transcript, from whatever shape the API returned.

    RunPod moves the handler's `error` to the job's top level; the platform keeps the rest of the
    output (with `error_type`) beside it, while the SDK's local API drops it and sends only `error`.
    When the handler itself raised, `error` is the SDK's JSON blob; its `error_message` is kept.

    Args:
        state: The final `/status` answer.

    Returns:
        One line: the state, the worker's `error_type` when known, and its message.
    """
    output = state.get("output")
    output = output if isinstance(output, dict) else {}
    error = state.get("error") or output.get("error")
    if isinstance(error, str) and error.startswith("{"):
        with contextlib.suppress(ValueError, AttributeError):
            error = json.loads(error).get("error_message", error)
    error = error or "the job ended without a transcript"
    error_type = output.get("error_type")
    prefix = f"{state.get('status')} {error_type}" if error_type else f"{state.get('status')}"
    return one_line(f"{prefix}: {error}")


def transcribe_item(
    endpoint: Endpoint, source: str, stem: Path, options: dict[str, Any], timeout: float
) -> ItemResult:
    """Runs one input through the endpoint and writes its results.

    Args:
        endpoint: The endpoint to use.
        source: A local path or a URL.
        stem: Where its results go, without the suffix.
        options: Further input fields (`timestamps`, `output_format`).
        timeout: Seconds from submission to a terminal state; a job still unfinished is cancelled.

    Returns:
        The result; never raises for a failure of this input.
    """
    started = time.monotonic()
    deadline = started + timeout
    job_id = None
    state: dict[str, Any] = {}
    try:
        state = endpoint.submit(build_input(source, options), deadline)
        job_id = state["id"]
        while state.get("status") not in TERMINAL_STATES:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeadlineError("no result")
            time.sleep(min(POLL_INTERVAL_SECONDS, remaining))
            state = endpoint.status(job_id, deadline)
    except DeadlineError as error:
        if job_id is None:
            return ItemResult(source, False, f"timed out after {timeout:g} s: {error}")
        cancel = endpoint.cancel(job_id)
        detail = f"no result within {timeout:g} s (last status {state.get('status')}); {cancel}"
        return ItemResult(source, False, detail, job_id)
    except ClientError as error:
        return ItemResult(source, False, str(error), job_id)
    output = state.get("output")
    if (
        state.get("status") != "COMPLETED"
        or not isinstance(output, dict)
        or output.get("success") is not True
    ):
        return ItemResult(source, False, failure_detail(state), job_id)
    try:
        written = write_outputs(stem, output)
    except OSError as error:
        return ItemResult(source, False, f"transcribed, but writing the results failed: {error}", job_id)
    names = ", ".join(path.name for path in written)
    detail = f"{output.get('duration')} s of audio in {time.monotonic() - started:.1f} s -> {names}"
    return ItemResult(source, True, detail, job_id)


def _positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    """argparse type: a number of seconds above 0."""
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {value:g}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Returns the command-line parser; defaults are the constants at the top of this file."""
    parser = argparse.ArgumentParser(
        description="Transcribe audio files and URLs with a Parakeet endpoint on RunPod. Writes "
        "<name>.txt and <name>.json per input, and <name>.srt / <name>.vtt when the worker returns them.",
    )
    parser.add_argument(
        "inputs", nargs="+", metavar="FILE_OR_URL", help="local files, https:// or s3:// URLs"
    )
    parser.add_argument(
        "--endpoint-id",
        default=ENDPOINT_ID,
        help="RunPod endpoint id (default: $RUNPOD_ENDPOINT_ID)",
    )
    parser.add_argument(
        "--base-url",
        help=f"API base URL, e.g. http://127.0.0.1:8000 for `handler.py --rp_serve_api` "
        f"(default: {BASE_URL_TEMPLATE})",
    )
    parser.add_argument("--timestamps", action="store_true", help="ask for word and segment timestamps")
    parser.add_argument(
        "--subtitles",
        action="append",
        choices=("srt", "vtt"),
        default=[],
        help="also ask for subtitles in this format and write <name>.srt / <name>.vtt (repeatable)",
    )
    parser.add_argument("--confidence", action="store_true", help="ask for word confidence scores")
    parser.add_argument("--diarize", action="store_true", help="label words and segments with speakers")
    parser.add_argument(
        "--max-speakers", type=_positive_int, help="with --diarize: at most this many speakers"
    )
    parser.add_argument(
        "--channels", choices=("mix", "separate"), help="separate: transcribe each channel on its own"
    )
    parser.add_argument(
        "--numbers",
        choices=("spoken", "digits"),
        help="digits: write number words as digits (25, not twenty five)",
    )
    parser.add_argument(
        "--hotword", action="append", default=[], metavar="PHRASE", help="a phrase to favour (repeatable)"
    )
    parser.add_argument("--hotword-weight", type=_positive_float, help="how strongly hotwords are favoured")
    parser.add_argument(
        "--output-url",
        help="where the worker stores a result too large to return (one input only): https:// or s3://",
    )
    parser.add_argument(
        "--input-json",
        metavar="JSON",
        help='any further input fields, as a JSON object, e.g. \'{"subtitle_options": {"max_lines": 1}}\'',
    )
    parser.add_argument(
        "--concurrency",
        type=_positive_int,
        default=CONCURRENCY,
        help=f"jobs in flight at once (default: {CONCURRENCY})",
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        help="write results here instead of beside each file (URLs: the current directory)",
    )
    parser.add_argument(
        "--timeout",
        type=_positive_float,
        default=TIMEOUT_SECONDS,
        help=f"seconds per input from submission to result; then the job is cancelled "
        f"(default: {TIMEOUT_SECONDS:g})",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs the command line.

    Args:
        argv: The arguments (default: `sys.argv[1:]`).

    Returns:
        0 when every input was transcribed, 1 when any failed (argparse exits with 2 on usage errors).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.base_url:
        base_url = args.base_url.rstrip("/")
    elif args.endpoint_id:
        base_url = BASE_URL_TEMPLATE.format(endpoint_id=urllib.parse.quote(args.endpoint_id, safe=""))
    else:
        parser.error(
            "no endpoint: pass --endpoint-id or set RUNPOD_ENDPOINT_ID (or --base-url for a local API)"
        )
    if urllib.parse.urlsplit(base_url).scheme not in {"http", "https"}:
        parser.error(f"--base-url must start with http:// or https://, got {base_url!r}")
    if not args.base_url and not API_KEY:
        parser.error("RUNPOD_API_KEY is not set; RunPod's API refuses requests without it")

    stems: dict[Path, str] = {}
    for source in args.inputs:
        stem = output_stem(source, args.out_dir)
        if stem in stems:
            parser.error(f"{stems[stem]} and {source} would both write {stem}.txt; run them separately")
        stems[stem] = source

    try:
        options = job_options(args)
    except ClientError as error:
        parser.error(str(error))
    if "output_url" in options and len(stems) > 1:
        parser.error("an output_url names one object: pass one input with it")
    endpoint = Endpoint(base_url, API_KEY)
    results = []
    with ThreadPoolExecutor(max_workers=min(args.concurrency, len(stems))) as pool:
        futures = [
            pool.submit(transcribe_item, endpoint, source, stem, options, args.timeout)
            for stem, source in stems.items()
        ]
        for future in as_completed(futures):
            result = future.result()
            results.append(result)
            print(result.summary(), flush=True)
    failed = sum(not result.ok for result in results)
    print(f"{len(results) - failed} of {len(results)} transcribed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
