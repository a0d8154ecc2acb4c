"""Multipart forms read as they arrive: fields in order, the file on disk, limits as bytes come."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from starlette.requests import Request

import config
from tests.support.http_server import multipart
from utils.errors import InvalidInputError, JobCancelledError, PayloadTooLargeError, UploadTimeoutError
from utils.http import form


async def _chunks(body: bytes, size: int, stall_after: int | None = None) -> AsyncIterator[bytes]:
    for index, start in enumerate(range(0, len(body), size)):
        if index == stall_after:
            await asyncio.sleep(3600)
        yield body[start : start + size]


def read(body: bytes, content_type: str, directory: Path, size: int = 7, **kwargs: int) -> form.Form:
    return asyncio.run(form.read_form(_chunks(body, size, **kwargs), content_type, directory))


def test_fields_keep_their_order_and_the_file_goes_to_disk(tmp_path: Path) -> None:
    audio = bytes(range(256)) * 50
    body, content_type = multipart([("a[]", "1"), ("b", "zwölf"), ("a[]", "2")], audio)
    received = read(body, content_type, tmp_path)
    assert received.fields == [("a[]", "1"), ("b", "zwölf"), ("a[]", "2")]
    assert received.file == tmp_path / "upload"
    assert received.file.read_bytes() == audio
    assert received.file_bytes == len(audio)


def test_a_form_without_a_file_says_so(tmp_path: Path) -> None:
    body, content_type = multipart([("model", "x")])
    assert read(body, content_type, tmp_path).file is None


def test_a_file_over_the_cap_stops_the_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "MAX_UPLOAD_BYTES", 100)
    body, content_type = multipart([], b"x" * 101)
    with pytest.raises(PayloadTooLargeError, match=r"^file is larger than 100 bytes \(MAX_UPLOAD_BYTES\)$"):
        read(body, content_type, tmp_path)


def test_a_declared_length_past_the_cap_is_refused_before_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "MAX_UPLOAD_BYTES", 100)
    form.check_length("5000")
    with pytest.raises(PayloadTooLargeError, match="may be at most 100 bytes"):
        form.check_length(str(10**9))


@pytest.mark.parametrize(
    ("content_type", "message"),
    [
        ("application/json", "must be multipart/form-data with a file, got Content-Type application/json"),
        (None, "got Content-Type none"),
        ("multipart/form-data", "names no boundary"),
        ("multipart/form-data; boundary=" + "b" * 2000, "boundary is 2000 characters long; at most 256"),
    ],
)
def test_a_body_that_is_not_a_form_is_refused(tmp_path: Path, content_type: str | None, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        read(b"{}", content_type, tmp_path)


def test_a_body_cut_short_is_refused(tmp_path: Path) -> None:
    body, content_type = multipart([("model", "x")], b"abc")
    with pytest.raises(InvalidInputError, match="ended before its closing boundary"):
        read(body[:-10], content_type, tmp_path)


def test_garbage_after_a_boundary_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="malformed"):
        read(b"--b\r\nno headers here\x00\r\n", "multipart/form-data; boundary=b", tmp_path)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ([("x", "y")] * (config.MAX_FORM_FIELDS + 1), f"more than {config.MAX_FORM_FIELDS} text fields"),
        ([("long", "y" * (config.MAX_FORM_FIELD_BYTES + 1))], "long is longer than"),
    ],
)
def test_form_limits(tmp_path: Path, fields: list[tuple[str, str]], message: str) -> None:
    body, content_type = multipart(fields)
    with pytest.raises(InvalidInputError, match=message):
        read(body, content_type, tmp_path, size=4096)


def test_a_file_in_another_field_or_twice_is_refused(tmp_path: Path) -> None:
    body, content_type = multipart([], b"abc")
    renamed = body.replace(b'name="file"', b'name="audio"')
    with pytest.raises(InvalidInputError, match="audio cannot be a file; the audio goes in the field file"):
        read(renamed, content_type, tmp_path)
    boundary = content_type.split("boundary=")[1].encode()
    part = body[: body.rindex(b"--" + boundary + b"--")]
    twice = part + part + b"--" + boundary + b"--\r\n"
    with pytest.raises(InvalidInputError, match="file was sent twice"):
        read(twice, content_type, tmp_path)


def test_text_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    body, content_type = multipart([("model", "MARK")])
    with pytest.raises(InvalidInputError, match="model is not UTF-8 text"):
        read(body.replace(b"MARK", b"\xff\xfe"), content_type, tmp_path)


def test_a_stalled_body_times_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "UPLOAD_IDLE_TIMEOUT_SECONDS", 0.2)
    body, content_type = multipart([], b"x" * 100)
    with pytest.raises(UploadTimeoutError, match=r"sent nothing for 0.2 s"):
        read(body, content_type, tmp_path, stall_after=2)


def test_a_small_body_is_read_whole_under_its_limit() -> None:
    assert asyncio.run(form.read_body(_chunks(b"x" * 50, 7), 50)) == b"x" * 50
    with pytest.raises(PayloadTooLargeError, match="larger than 49 bytes"):
        asyncio.run(form.read_body(_chunks(b"x" * 50, 7), 49))


def test_a_file_part_without_a_file_name_is_still_the_file(tmp_path: Path) -> None:
    body, content_type = multipart([], b"abc")
    nameless = body.replace(b'; filename="a.flac"', b"")
    received = read(nameless, content_type, tmp_path)
    assert received.fields == []
    assert received.file.read_bytes() == b"abc"


def test_the_field_limit_counts_text_fields_only(tmp_path: Path) -> None:
    body, content_type = multipart([("x", "y")] * config.MAX_FORM_FIELDS, b"audio")
    received = read(body, content_type, tmp_path, size=4096)
    assert len(received.fields) == config.MAX_FORM_FIELDS
    assert received.file_bytes == len(b"audio")


def test_nothing_after_the_closing_boundary_is_read(tmp_path: Path) -> None:
    body, content_type = multipart([("a", "b")], b"audio")
    taken: list[bytes] = []

    async def chunks() -> AsyncIterator[bytes]:
        for chunk in (body, b"after the end" * 1000, b"and more"):
            taken.append(chunk)
            yield chunk

    received = asyncio.run(form.read_form(chunks(), content_type, tmp_path))
    assert received.fields == [("a", "b")]
    assert taken == [body]


def test_a_part_header_without_end_is_refused(tmp_path: Path) -> None:
    body = b'--b\r\nContent-Disposition: form-data; name="' + b"n" * (config.MAX_FORM_FIELD_BYTES + 1)
    with pytest.raises(InvalidInputError, match="malformed"):  # the parser's bound on a part's header line
        read(body, "multipart/form-data; boundary=b", tmp_path, size=4096)


def test_a_client_that_goes_away_mid_body_cancels_the_read(tmp_path: Path) -> None:
    messages = iter(
        [{"type": "http.request", "body": b"--b\r\n", "more_body": True}, {"type": "http.disconnect"}]
    )

    async def receive() -> dict:
        return next(messages)

    request = Request({"type": "http", "method": "POST", "headers": []}, receive)  # starlette's real stream
    with pytest.raises(JobCancelledError, match="went away"):
        asyncio.run(form.read_form(request.stream(), "multipart/form-data; boundary=b", tmp_path))
