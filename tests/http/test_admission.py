"""The admission line: slots, a bounded wait in arrival order, and Retry-After from the expected wait."""

import asyncio
import contextlib
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest

import config
from tests.support.http_server import RunningServer, http_server, multipart, post
from tests.support.media import encode, speech
from tests.support.model_spy import ModelSpy
from utils.errors import JobCancelledError, WorkerBusyError
from utils.http.admission import Line


def run(coroutine: object) -> object:
    return asyncio.run(coroutine)  # type: ignore[arg-type]


def test_free_slots_are_taken_at_once() -> None:
    async def scenario() -> tuple[int, float]:
        line = Line(2, wait_seconds=1, queue_max=4, typical_hold_seconds=5)
        await line.enter()
        await line.enter()
        return line.held, line.expected_wait()

    assert run(scenario()) == (2, 5.0)  # full: a newcomer waits one hold


def test_waiters_get_slots_in_arrival_order() -> None:
    async def scenario() -> list[int]:
        line = Line(1, wait_seconds=5, queue_max=8, typical_hold_seconds=1)
        first = await line.enter()
        order: list[int] = []

        async def waiter(number: int) -> None:
            slot = await line.enter()
            order.append(number)
            await asyncio.sleep(0.01)
            slot.release()

        tasks = []
        for number in range(5):
            tasks.append(asyncio.create_task(waiter(number)))
            await asyncio.sleep(0.01)  # they arrive in this order
        assert line.waiting == 5
        first.release()
        await asyncio.gather(*tasks)
        assert (line.held, line.waiting) == (0, 0)
        return order

    assert run(scenario()) == [0, 1, 2, 3, 4]


def test_a_full_line_refuses_at_once_with_the_expected_wait() -> None:
    async def scenario() -> WorkerBusyError:
        line = Line(2, wait_seconds=30, queue_max=3, typical_hold_seconds=4)
        await line.enter()
        await line.enter()
        waiting = [asyncio.create_task(line.enter()) for _ in range(3)]
        await asyncio.sleep(0.01)
        with pytest.raises(WorkerBusyError) as refused:
            await line.enter()
        for task in waiting:
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)
        assert line.waiting == 0
        return refused.value

    error = run(scenario())
    assert error.retry_after == 8  # 3 ahead on 2 slots: two rounds of 4 s


def test_a_wait_that_runs_out_is_refused_and_leaves_the_line() -> None:
    async def scenario() -> tuple[WorkerBusyError, int]:
        line = Line(1, wait_seconds=0.2, queue_max=3, typical_hold_seconds=2)
        await line.enter()
        with pytest.raises(WorkerBusyError) as refused:
            await line.enter()
        return refused.value, line.waiting

    error, waiting = run(scenario())
    assert "ADMISSION_WAIT_SECONDS" in str(error)
    assert (error.retry_after, waiting) == (2, 0)


def test_waiters_refused_together_are_told_to_come_back_in_their_order() -> None:
    async def scenario() -> list[int]:
        line = Line(1, wait_seconds=0.2, queue_max=4, typical_hold_seconds=2)
        await line.enter()
        waiters = []
        for _ in range(4):
            waiters.append(asyncio.create_task(line.enter()))
            await asyncio.sleep(0.01)  # in this order
        refusals = await asyncio.gather(*waiters, return_exceptions=True)
        return [refusal.retry_after for refusal in refusals]  # type: ignore[union-attr]

    # The first waits one hold, the next two (not one each: those ahead come back first too).
    assert run(scenario()) == [2, 4, 6, 8]


def test_no_waiting_line_refuses_at_once() -> None:
    async def scenario() -> None:
        line = Line(1, wait_seconds=0, queue_max=0, typical_hold_seconds=3)
        await line.enter()
        with pytest.raises(WorkerBusyError):
            await line.enter()

    run(scenario())


def test_the_expected_wait_follows_how_long_slots_were_held() -> None:
    async def scenario() -> list[int]:
        line = Line(1, wait_seconds=5, queue_max=4, typical_hold_seconds=1)
        seen = []
        for _ in range(8):
            slot = await line.enter()
            seen.append(line.retry_after())
            await asyncio.sleep(0.4)
            slot.release()
        slot = await line.enter()
        seen.append(line.retry_after())
        return seen

    seen = run(scenario())
    assert seen[0] == 1
    # Jobs of 0.4 s: the estimate falls toward them (Retry-After is whole seconds, at least 1).
    assert seen[-1] == 1


def test_a_slot_released_from_another_thread_passes_to_the_next_waiter() -> None:
    async def scenario() -> int:
        line = Line(1, wait_seconds=5, queue_max=4, typical_hold_seconds=10)
        slot = await line.enter()
        waiter = asyncio.create_task(line.enter())
        await asyncio.sleep(0.01)
        threading.Timer(0.1, slot.release).start()
        await waiter
        slot.release()  # a second release does nothing
        return line.held

    assert run(scenario()) == 1


def test_a_waiter_that_goes_away_passes_its_slot_on() -> None:
    async def scenario() -> tuple[int, int]:
        line = Line(1, wait_seconds=5, queue_max=4, typical_hold_seconds=1)
        slot = await line.enter()
        leaving = asyncio.create_task(line.enter())
        staying = asyncio.create_task(line.enter())
        await asyncio.sleep(0.01)
        leaving.cancel()
        await asyncio.sleep(0.01)
        slot.release()
        await staying
        return line.held, line.waiting

    assert run(scenario()) == (1, 0)


def test_a_waiter_whose_request_is_abandoned_leaves_the_line_at_once() -> None:
    async def scenario() -> tuple[str, int]:
        line = Line(1, wait_seconds=10, queue_max=1, typical_hold_seconds=5)
        await line.enter()
        gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiter = asyncio.create_task(line.enter(gone))
        await asyncio.sleep(0.01)
        gone.set_result(None)
        try:
            await asyncio.wait_for(waiter, 1)
        except JobCancelledError as error:
            return error.error_type, line.waiting
        return "admitted", line.waiting

    assert run(scenario()) == ("cancelled", 0)


# --- The line in front of the HTTP routes (real uvicorn on 127.0.0.1, the bundled model) ---

WORDS = "five four three"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return encode(speech(WORDS), tmp_path_factory.mktemp("clip") / "clip.flac")


def transcribe(server: RunningServer, clip: Path) -> str:
    api = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    with clip.open("rb") as file:
        return api.audio.transcriptions.create(model="x", file=file).text


def test_a_burst_on_a_full_worker_waits_in_line_and_is_served(
    clip: Path, monkeypatch: pytest.MonkeyPatch, job_root: Path
) -> None:
    monkeypatch.setattr(config, "MAX_CONCURRENCY", 1)
    spy = ModelSpy(monkeypatch)
    spy.delay = 0.3
    with http_server() as running, ThreadPoolExecutor(6) as pool:
        texts = list(pool.map(lambda _: transcribe(running, clip), range(6)))  # no retries
    assert texts == [WORDS] * 6


def test_past_the_lines_bound_a_request_gets_503_with_the_expected_wait(
    clip: Path, monkeypatch: pytest.MonkeyPatch, job_root: Path
) -> None:
    monkeypatch.setattr(config, "MAX_CONCURRENCY", 1)
    monkeypatch.setattr(config, "ADMISSION_QUEUE_MAX", 2)
    spy = ModelSpy(monkeypatch)
    spy.delay = 1.5
    body, content_type = multipart([], clip.read_bytes())
    with http_server() as running, ThreadPoolExecutor(3) as pool:
        first = pool.submit(transcribe, running, clip)
        while not spy.calls:
            time.sleep(0.01)
        waiting = [pool.submit(transcribe, running, clip) for _ in range(2)]
        while running_line(running).waiting < 2:
            time.sleep(0.01)
        status, headers, answer = post(running.port, "/v1/audio/transcriptions", body, content_type)
        assert [future.result() for future in (first, *waiting)] == [WORDS] * 3
    assert (status, json.loads(answer)["error"]["code"]) == (503, "busy")
    # Two ahead of it and one running, on one slot: three holds of the typical time.
    assert headers["retry-after"] == str(3 * config.BUSY_RETRY_AFTER_SECONDS)


def test_a_request_whose_wait_runs_out_gets_503(
    clip: Path, monkeypatch: pytest.MonkeyPatch, job_root: Path
) -> None:
    monkeypatch.setattr(config, "MAX_CONCURRENCY", 1)
    monkeypatch.setattr(config, "ADMISSION_WAIT_SECONDS", 0.3)
    spy = ModelSpy(monkeypatch)
    spy.delay = 2.0
    body, content_type = multipart([], clip.read_bytes())
    with http_server() as running, ThreadPoolExecutor(1) as pool:
        first = pool.submit(transcribe, running, clip)
        while not spy.calls:
            time.sleep(0.01)
        status, headers, answer = post(running.port, "/v1/audio/transcriptions", body, content_type)
        assert first.result() == WORDS
    assert (status, json.loads(answer)["error"]["code"]) == (503, "busy")
    assert "ADMISSION_WAIT_SECONDS" in json.loads(answer)["error"]["message"]
    assert int(headers["retry-after"]) >= 1


def test_a_waiting_request_is_not_read_until_admitted(
    clip: Path, monkeypatch: pytest.MonkeyPatch, job_root: Path
) -> None:
    monkeypatch.setattr(config, "MAX_CONCURRENCY", 1)
    spy = ModelSpy(monkeypatch)
    spy.delay = 2.0
    body, content_type = multipart([], clip.read_bytes() + b"\0" * 32_000_000)
    with http_server() as running, ThreadPoolExecutor(1) as pool:
        first = pool.submit(transcribe, running, clip)
        while not spy.calls:
            time.sleep(0.01)
        with socket.create_connection(("127.0.0.1", running.port), timeout=30) as sock:
            head = (
                f"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            )
            sock.settimeout(0.5)
            sent = 0
            try:
                sock.sendall(head.encode())
                for offset in range(0, len(body), 65536):
                    sock.sendall(body[offset : offset + 65536])
                    sent = offset + 65536
            except TimeoutError:
                pass  # the server stopped reading: the socket's buffers are full
            waiting_dirs = len(list(job_root.iterdir()))
            assert first.result() == WORDS
            sock.settimeout(30)
            with contextlib.suppress(OSError):  # it may be refused once read: its answer comes below
                sock.sendall(body[sent:])
            answer = sock.recv(65536)
    assert sent < len(body)  # most of the 32 MB waited in the client, not on the server's disk
    assert waiting_dirs == 1  # only the running job's upload: nothing of the waiting one's
    assert answer.startswith(b"HTTP/1.1 "), answer[:100]


def test_a_client_that_leaves_while_waiting_keeps_no_place_in_line(
    clip: Path, monkeypatch: pytest.MonkeyPatch, job_root: Path
) -> None:
    monkeypatch.setattr(config, "MAX_CONCURRENCY", 1)
    monkeypatch.setattr(config, "ADMISSION_QUEUE_MAX", 2)
    spy = ModelSpy(monkeypatch)
    spy.delay = 4.0  # the first request holds the one slot all along
    body, content_type = multipart([], clip.read_bytes())
    head = (
        f"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with http_server() as running, ThreadPoolExecutor(1) as pool:
        first = pool.submit(transcribe, running, clip)
        while not spy.calls:
            time.sleep(0.01)
        leavers = [socket.create_connection(("127.0.0.1", running.port), timeout=10) for _ in range(2)]
        for sock in leavers:
            sock.sendall(head)
        while running_line(running).waiting < 2:
            time.sleep(0.01)  # the line is full
        for sock in leavers:
            sock.close()  # and both leave before their turn
        left = time.monotonic()
        while running_line(running).waiting and time.monotonic() - left < 1:
            time.sleep(0.01)
        waiting_after = running_line(running).waiting
        status, _, answer = post(running.port, "/v1/audio/transcriptions", body, content_type)
        assert first.result() == WORDS
    assert waiting_after == 0
    assert (status, json.loads(answer)["text"]) == (200, WORDS)  # it waited in line, not refused


def running_line(server: RunningServer) -> Line:
    return server.app.state.admission


def test_a_stream_waits_in_the_same_line(clip: Path, monkeypatch: pytest.MonkeyPatch, job_root: Path) -> None:
    monkeypatch.setattr(config, "MAX_CONCURRENCY", 1)
    spy = ModelSpy(monkeypatch)
    spy.delay = 1.0
    api_calls = []

    def stream(server: RunningServer) -> str:
        api = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
        with clip.open("rb") as file:
            events = list(api.audio.transcriptions.create(model="x", file=file, stream=True))
        api_calls.append(len(spy.calls))
        return events[-1].text

    with http_server() as running, ThreadPoolExecutor(2) as pool:
        first = pool.submit(transcribe, running, clip)
        while not spy.calls:
            time.sleep(0.01)
        streamed = pool.submit(stream, running)
        while running_line(running).waiting < 1:
            time.sleep(0.01)  # it waits for the slot the first request holds
        assert (first.result(), streamed.result()) == (WORDS, WORDS)
    assert api_calls == [2]
