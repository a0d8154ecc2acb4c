"""client.py against the RunPod SDK's real local API (`handler.py --rp_serve_api`) and small scripted
HTTP servers, all on 127.0.0.1.

The local API is the real worker with the bundled test model: batches come back with the spoken words.
Where RunPod's platform behaves in ways the local API never does (IN_QUEUE, 503, 429, a dropped
connection, a job that never ends), a scripted server on 127.0.0.1 plays that part, either alone or as
a proxy in front of the local API.
"""

import base64
import http.client
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple

import pytest

import client
import config
from tests.support import worker
from tests.support.serving import serving
from tools import synth

REPO_ROOT = config.REPO_ROOT
SAMPLE = REPO_ROOT / "tests" / "fixtures" / "sample-digits.ogg"
SAMPLE_WORDS = "seven three nine two zero five"
_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture(scope="module")
def local_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Runs `python handler.py --rp_serve_api` on 127.0.0.1 with the bundled model; yields its base URL."""
    assert config.BUNDLED_TEST_MODEL.is_file(), (
        f"the bundled test model is missing: {config.BUNDLED_TEST_MODEL}"
    )
    with worker.local_api(tmp_path_factory.mktemp("local-api") / "server.log") as api:
        yield api.url


@pytest.fixture(autouse=True)
def quick_client(monkeypatch: pytest.MonkeyPatch, loopback_only: None) -> None:
    """Makes the client poll and back off in milliseconds, without proxies or a real API key."""
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(client, "POLL_INTERVAL_SECONDS", 0.05)
    monkeypatch.setattr(client, "RETRY_BACKOFF_SECONDS", 0.01)
    monkeypatch.setattr(client, "RETRY_BACKOFF_MAX_SECONDS", 0.05)
    monkeypatch.setattr(client, "API_KEY", "test-key")
    monkeypatch.setattr(client, "ENDPOINT_ID", None)


def _speak(path: Path, text: str) -> Path:
    """Writes `text` spoken by espeak-ng as a WAV file and returns its path."""
    synth.write_wav(path, synth.synthesize(text))
    return path


def _summary_lines(output: str) -> dict[str, str]:
    """Maps each input named in the client's per-input summary lines to its line."""
    lines = {}
    for line in output.splitlines():
        if line.startswith(("ok ", "FAILED ")):
            source = line.split(maxsplit=1)[1].split(": ", 1)[0]
            lines[source] = line
    return lines


# --- Against the SDK's local API --------------------------------------------------------------------


def test_batch_of_files_is_transcribed_beside_each_file(
    local_api: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = tmp_path / SAMPLE.name
    sample.write_bytes(SAMPLE.read_bytes())
    first = _speak(tmp_path / "first.wav", "one two three")
    second = _speak(tmp_path / "second.wav", "eight four six")
    expected = {sample: SAMPLE_WORDS, first: "one two three", second: "eight four six"}

    code = client.main(
        [
            *map(str, expected),
            "--base-url",
            local_api,
            "--concurrency",
            "2",
            "--timestamps",
            "--timeout",
            "120",
        ]
    )

    lines = _summary_lines(capsys.readouterr().out)
    assert code == 0, lines
    for audio, words in expected.items():
        assert lines[str(audio)].startswith("ok "), lines[str(audio)]
        assert audio.with_suffix(".txt").read_text() == f"{words}\n"
        result = json.loads(audio.with_suffix(".json").read_text())
        assert result["success"] is True
        assert result["text"] == words
        assert [item["word"] for item in result["timestamps"]["word"]] == words.split()
        # No subtitles were asked for, so the client writes none of its own.
        assert not audio.with_suffix(".srt").exists()
        assert not audio.with_suffix(".vtt").exists()


def test_subtitles_are_asked_for_and_written(
    local_api: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    audio = _speak(tmp_path / "clip.wav", "five zero two")
    code = client.main([str(audio), "--base-url", local_api, "--subtitles", "srt", "--subtitles", "vtt"])
    assert code == 0, capsys.readouterr().out
    srt_text = audio.with_suffix(".srt").read_text()
    assert srt_text.startswith("1\n00:00:")
    assert "five zero two" in srt_text
    assert audio.with_suffix(".vtt").read_text().startswith("WEBVTT")
    assert audio.with_suffix(".txt").read_text() == "five zero two\n"


def test_bad_file_fails_alone_and_sets_exit_status(
    local_api: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Imported here: the handler pulls in the SDK, which only these tests need in-process.
    import handler

    bad = tmp_path / "notes.wav"
    bad.write_bytes(b"these are text bytes, not audio\n" * 20)
    good = _speak(tmp_path / "good.wav", "five five nine")
    missing = tmp_path / "missing.ogg"
    out_dir = tmp_path / "out"
    # What the worker says about these bytes, asked directly; the client must pass it on intact.
    direct = handler.handler(
        {"id": "direct", "input": {"audio_base64": base64.b64encode(bad.read_bytes()).decode()}}
    )

    code = client.main(
        [str(bad), str(good), str(missing), "--base-url", local_api, "--out-dir", str(out_dir)]
    )

    lines = _summary_lines(capsys.readouterr().out)
    assert code == 1
    assert direct["success"] is False
    # The SDK's local API sends only the top-level error of a failed job (no output, so no error_type).
    assert lines[str(bad)].startswith(f"FAILED  {bad}: FAILED: {direct['error']} (job test-"), lines[str(bad)]
    assert lines[str(missing)] == f"FAILED  {missing}: cannot read the file: No such file or directory"
    assert lines[str(good)].startswith("ok "), lines[str(good)]
    assert (out_dir / "good.txt").read_text() == "five five nine\n"
    assert sorted(path.name for path in out_dir.iterdir()) == ["good.json", "good.txt"]


# --- Scripted servers ---------------------------------------------------------------------------------


class Reply(NamedTuple):
    """A scripted answer: status, JSON body and extra headers."""

    status: int
    body: Any
    headers: tuple[tuple[str, str], ...] = ()


# A responder gets (method, path, body, headers) and returns a Reply, or None to hang up unanswered.
Responder = Callable[[str, str, bytes, Any], Reply | None]


@dataclass
class Recorded:
    """One request a scripted server received and what became of it."""

    method: str
    path: str
    body: bytes
    authorization: str | None
    outcome: int | str


@dataclass
class ScriptedServer:
    """A scripted HTTP server's address and the requests it received, in order."""

    base_url: str
    requests: list[Recorded] = field(default_factory=list)

    def calls(self) -> list[tuple[str, str, int | str]]:
        """Returns (method, path, outcome) for every request received."""
        return [(item.method, item.path, item.outcome) for item in self.requests]


@contextmanager
def scripted_server(respond: Responder) -> Iterator[ScriptedServer]:
    """Runs an HTTP server on 127.0.0.1 that answers every request with `respond`.

    Args:
        respond: Called for each request; its Reply is sent, or the connection is closed unanswered.

    Yields:
        The server's base URL and its request log.
    """
    server_log = ScriptedServer("")

    class Handler(BaseHTTPRequestHandler):
        """Answers GET and POST alike through `respond`."""

        def answer(self) -> None:
            """Reads the request, records it and sends the scripted reply (or hangs up)."""
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            reply = respond(self.command, self.path, body, self.headers)
            outcome: int | str = "dropped" if reply is None else reply.status
            server_log.requests.append(
                Recorded(self.command, self.path, body, self.headers.get("Authorization"), outcome)
            )
            if reply is None:
                self.close_connection = True
                return
            payload = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in reply.headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = answer

        def log_message(self, format: str, *args: Any) -> None:
            """Keeps the test output clean."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server_log.base_url = f"http://127.0.0.1:{server.server_port}"
    with serving(server):
        yield server_log


def _forward(base_url: str, method: str, path: str, body: bytes, headers: Any) -> Reply:
    """Passes one request on to `base_url` and returns its answer as a Reply."""
    host, port = base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=120)
    try:
        forwarded = {name: headers[name] for name in ("Content-Type", "Authorization") if headers.get(name)}
        connection.request(method, path, body=body or None, headers=forwarded)
        answer = connection.getresponse()
        return Reply(answer.status, answer.read())
    finally:
        connection.close()


def test_transient_errors_are_retried_through_to_the_real_api(local_api: str, tmp_path: Path) -> None:
    audio = tmp_path / "sample.ogg"
    audio.write_bytes(SAMPLE.read_bytes())
    # Per path prefix, the faults to answer with first, in order (None: hang up without an answer).
    faults: dict[str, list[Reply | None]] = {
        "/run": [Reply(503, {"error": "no workers"}, (("Retry-After", "0"),))],
        "/status/": [None, Reply(429, {"error": "slow down"})],
    }

    def flaky(method: str, path: str, body: bytes, headers: Any) -> Reply | None:
        for prefix, pending in faults.items():
            if path.startswith(prefix) and pending:
                return pending.pop(0)
        return _forward(local_api, method, path, body, headers)

    with scripted_server(flaky) as proxy:
        code = client.main([str(audio), "--base-url", proxy.base_url, "--timeout", "120"])

    assert code == 0
    assert audio.with_suffix(".txt").read_text() == f"{SAMPLE_WORDS}\n"
    job_path = proxy.calls()[2][1]
    assert proxy.calls() == [
        ("POST", "/run", 503),
        ("POST", "/run", 200),
        ("GET", job_path, "dropped"),
        ("GET", job_path, 429),
        # The SDK's local API routes /status for POST only; the client switches on its 405.
        ("GET", job_path, 405),
        ("POST", job_path, 200),
    ]
    assert all(item.authorization == "Bearer test-key" for item in proxy.requests)


@pytest.mark.parametrize(
    ("status", "attempts", "message"),
    [
        (503, 3, "POST /run failed 3 times; last: HTTP 503"),
        (400, 1, "POST /run failed with HTTP 400"),
        (401, 1, "(check RUNPOD_API_KEY)"),
    ],
)
def test_retries_are_bounded_and_only_for_transient_statuses(
    status: int,
    attempts: int,
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(client, "MAX_RETRIES", 2)
    audio = tmp_path / "a.ogg"
    audio.write_bytes(SAMPLE.read_bytes())

    with scripted_server(lambda *_: Reply(status, {"error": "refused"})) as server:
        code = client.main([str(audio), "--base-url", server.base_url])

    line = _summary_lines(capsys.readouterr().out)[str(audio)]
    assert code == 1
    assert line.startswith("FAILED "), line
    assert message in line, line
    assert server.calls() == [("POST", "/run", status)] * attempts
    assert not audio.with_suffix(".txt").exists()


def test_poll_timeout_cancels_the_job(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    audio = tmp_path / "a.ogg"
    audio.write_bytes(SAMPLE.read_bytes())

    def stuck(method: str, path: str, body: bytes, headers: Any) -> Reply:
        if path == "/run":
            return Reply(200, {"id": "job-1", "status": "IN_QUEUE"})
        if path == "/status/job-1":
            return Reply(200, {"id": "job-1", "status": "IN_QUEUE"})
        return Reply(200, {"id": "job-1", "status": "CANCELLED"})

    started = time.monotonic()
    with scripted_server(stuck) as server:
        code = client.main([str(audio), "--base-url", server.base_url, "--timeout", "0.5"])
    elapsed = time.monotonic() - started

    line = _summary_lines(capsys.readouterr().out)[str(audio)]
    assert code == 1
    assert line == f"FAILED  {audio}: no result within 0.5 s (last status IN_QUEUE); cancelled (job job-1)"
    assert elapsed < 5
    assert server.calls()[-1] == ("POST", "/cancel/job-1", 200)
    assert ("GET", "/status/job-1", 200) in server.calls()


def test_concurrency_is_bounded_and_platform_shapes_are_read(tmp_path: Path) -> None:
    lock = threading.Lock()
    polls: dict[str, int] = {}
    active: set[str] = set()
    most_active = 0

    def platform(method: str, path: str, body: bytes, headers: Any) -> Reply:
        nonlocal most_active
        with lock:
            if path == "/run":
                job_id = f"job-{len(polls)}"
                polls[job_id] = 0
                active.add(job_id)
                most_active = max(most_active, len(active))
                source = json.loads(body)["input"]["audio_url"]
                return Reply(200, {"id": job_id, "status": "IN_QUEUE", "source": source})
            job_id = path.rsplit("/", 1)[1]
            polls[job_id] += 1
            if polls[job_id] < 3:
                return Reply(200, {"id": job_id, "status": "IN_PROGRESS", "delayTime": 10})
            active.discard(job_id)
        # RunPod's platform keeps the output beside the top-level error of a failed job.
        if job_id == "job-0":
            output = {"success": False, "error_type": "not_found"}
            return Reply(
                200, {"id": job_id, "status": "FAILED", "error": "audio_url: HTTP 404", "output": output}
            )
        srt = "1\n00:00:00,000 --> 00:00:01,500\nx\n"
        output = {"success": True, "text": job_id, "duration": 1.5, "srt": srt, "vtt": f"WEBVTT\n\n{srt}"}
        return Reply(200, {"id": job_id, "status": "COMPLETED", "executionTime": 900, "output": output})

    urls = [f"https://example.com/calls/talk%20{n}.mp3?X-Amz-Signature=abc" for n in range(5)]
    out_dir = tmp_path / "out"
    with scripted_server(platform) as server:
        code = client.main(
            [*urls, "--base-url", server.base_url, "--concurrency", "2", "--out-dir", str(out_dir)]
        )

    assert code == 1
    assert most_active == 2
    # RunPod's API answers GET /status, so the client never needs the local API's POST form.
    assert {method for method, path, _ in server.calls() if path.startswith("/status/")} == {"GET"}
    assert (
        sorted(json.loads(item.body)["input"]["audio_url"] for item in server.requests if item.body) == urls
    )
    written = sorted(path.name for path in out_dir.iterdir())
    assert len(written) == 16  # four successes: .txt, .json and the worker's .srt and .vtt each
    assert all(
        name.startswith("talk ") and name.endswith((".txt", ".json", ".srt", ".vtt")) for name in written
    )
    assert all(path.read_text().startswith("WEBVTT\n") for path in out_dir.glob("*.vtt"))


def test_failure_detail_names_the_error_type_when_the_platform_keeps_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def platform(method: str, path: str, body: bytes, headers: Any) -> Reply:
        output = {"success": False, "error_type": "invalid_audio"}
        return Reply(200, {"id": "j", "status": "FAILED", "error": "ffmpeg cannot read it", "output": output})

    with scripted_server(platform) as server:
        code = client.main(["s3://bucket/in/meeting.m4a", "--base-url", server.base_url])

    assert code == 1
    line = _summary_lines(capsys.readouterr().out)["s3://bucket/in/meeting.m4a"]
    assert line == "FAILED  s3://bucket/in/meeting.m4a: FAILED invalid_audio: ffmpeg cannot read it (job j)"


# --- Usage errors (no request is sent) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["a.wav"], "no endpoint"),
        (["a.wav", "--endpoint-id", "abc"], "RUNPOD_API_KEY is not set"),
        (["a.wav", "--base-url", "ftp://127.0.0.1"], "--base-url must start with http:// or https://"),
        (["x/a.wav", "y/a.mp3", "--out-dir", "o", "--base-url", "http://127.0.0.1:9"], "would both write"),
        (["a.wav", "--concurrency", "0", "--base-url", "http://127.0.0.1:9"], "must be at least 1"),
    ],
)
def test_usage_errors_exit_2(
    args: list[str], message: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(client, "API_KEY", None)
    with pytest.raises(SystemExit) as exit_info:
        client.main(args)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_file_too_large_for_run_is_refused_before_sending(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client, "MAX_RUN_BODY_BYTES", 1000)
    audio = tmp_path / "long.ogg"
    audio.write_bytes(bytes(750))
    assert "audio_base64" in client.build_input(str(audio), {})
    audio.write_bytes(bytes(751))
    with pytest.raises(client.ClientError, match="upload the file and pass its URL"):
        client.build_input(str(audio), {})


def test_failure_detail_keeps_only_the_message_of_an_sdk_exception_blob() -> None:
    # When a handler raises, the SDK's error is a JSON blob with the traceback and the hostname.
    blob = {
        "error_type": "<class 'RuntimeError'>",
        "error_message": "boom",
        "error_traceback": "Traceback (most recent call last): ...",
        "hostname": "worker-7",
    }
    assert client.failure_detail({"status": "FAILED", "error": json.dumps(blob)}) == "FAILED: boom"


def test_every_input_field_can_be_sent_through_options_or_input_json(
    local_api: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    audio = _speak(tmp_path / "clip.wav", "four one seven")
    extra = {"output_format": ["json", "srt"], "subtitle_options": {"max_lines": 1, "max_line_chars": 10}}
    code = client.main(
        [str(audio), "--base-url", local_api, "--confidence", "--hotword", "four one", "--timestamps"]
        + ["--input-json", json.dumps(extra)]
    )
    assert code == 0, capsys.readouterr().out
    result = json.loads(audio.with_suffix(".json").read_text())
    assert result["text"] == "four one seven"
    assert 0.0 <= result["confidence"] <= 1.0
    assert all("confidence" in word for word in result["timestamps"]["word"])
    # One line of at most 10 characters per cue, as subtitle_options asked.
    cues = audio.with_suffix(".srt").read_text().strip().split("\n\n")
    assert [len(cue.splitlines()) for cue in cues] == [3] * len(cues)


@pytest.mark.parametrize(
    ("arguments", "fields"),
    [
        ([], {}),
        (
            ["--diarize", "--max-speakers", "2", "--channels", "separate"],
            {"diarize": True, "max_speakers": 2, "channels": "separate"},
        ),
        (
            ["--hotword", "Okafor", "--hotword", "Parakeet", "--hotword-weight", "3"],
            {"hotwords": ["Okafor", "Parakeet"], "hotword_weight": 3.0},
        ),
        (["--output-url", "s3://results-bucket/out.json"], {"output_url": "s3://results-bucket/out.json"}),
        (["--numbers", "digits"], {"numbers": "digits"}),
        (["--input-json", '{"timestamps": ["char"]}'], {"timestamps": ["char"]}),
    ],
)
def test_options_become_the_workers_fields(arguments: list[str], fields: dict[str, object]) -> None:
    args = client.build_parser().parse_args(["clip.wav", *arguments])
    assert client.job_options(args) == fields


@pytest.mark.parametrize(
    ("input_json", "message"),
    [
        ("[1, 2]", "--input-json must be a JSON object, got list"),
        ("{nope", "--input-json is not valid JSON"),
        ('{"audio_url": "s3://results-bucket/a.mp3"}', "--input-json must not name audio_url"),
        ('{"confidence": false}', "--input-json repeats confidence, already set by an option"),
    ],
)
def test_a_bad_input_json_is_a_usage_error(input_json: str, message: str) -> None:
    args = client.build_parser().parse_args(["clip.wav", "--confidence", "--input-json", input_json])
    with pytest.raises(client.ClientError, match=message):
        client.job_options(args)


def test_an_output_url_takes_one_input(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        client.main(
            ["a.wav", "b.wav", "--base-url", "http://127.0.0.1:9", "--output-url", "s3://bucket-x/o.json"]
        )
    assert exited.value.code == 2
    assert "an output_url names one object" in capsys.readouterr().err
