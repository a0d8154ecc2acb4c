"""Reads a `multipart/form-data` request as it arrives: short text fields kept in order, the one file
written straight to disk under `MAX_UPLOAD_BYTES` (never held whole in memory).

A stalled client is dropped after `UPLOAD_IDLE_TIMEOUT_SECONDS` without a byte, a slow one once it
falls behind `UPLOAD_MIN_BYTES_PER_SECOND` (see `timed`). Nothing after the form's closing boundary
is read.
"""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import (
    MAX_BOUNDARY_LENGTH,
    MultipartParser,
    MultipartState,
    parse_options_header,
)
from starlette.requests import ClientDisconnect

import config
from utils.contract.validation import UPLOAD_FIELD
from utils.errors import InvalidInputError, JobCancelledError, PayloadTooLargeError, UploadTimeoutError

# Room for the form's boundaries, part headers and text fields around the file.
_FORM_OVERHEAD_BYTES = config.MAX_FORM_FIELDS * (config.MAX_FORM_FIELD_BYTES + 512)


@dataclass
class Form:
    """A parsed form: text fields in the order sent (a name may repeat) and the uploaded file."""

    fields: list[tuple[str, str]] = field(default_factory=list)
    file: Path | None = None
    file_bytes: int = 0


def check_length(content_length: str | None) -> None:
    """Refuses a body whose declared length cannot fit, before any of it is read.

    Args:
        content_length: The request's Content-Length header, if any.

    Raises:
        PayloadTooLargeError: The body is larger than `MAX_UPLOAD_BYTES` and a form's fields.
    """
    declared = int(content_length) if content_length is not None and content_length.isdigit() else 0
    if declared > config.MAX_UPLOAD_BYTES + _FORM_OVERHEAD_BYTES:
        raise PayloadTooLargeError(
            f"the request body is {declared} bytes; the file may be at most "
            f"{config.MAX_UPLOAD_BYTES} bytes (MAX_UPLOAD_BYTES)"
        )


def boundary_of(content_type: str | None) -> bytes:
    """The multipart boundary of a request's Content-Type.

    Args:
        content_type: The Content-Type header.

    Returns:
        The boundary.

    Raises:
        InvalidInputError: The body is not `multipart/form-data`, or names no boundary or one longer
            than the parser takes.
    """
    kind, options = parse_options_header(content_type or "")
    if kind != b"multipart/form-data":
        shown = kind.decode("latin-1") or "none"
        raise InvalidInputError(
            f"the request must be multipart/form-data with a file, got Content-Type {shown}"
        )
    boundary = options.get(b"boundary")
    if not boundary:
        raise InvalidInputError("the multipart/form-data Content-Type names no boundary")
    if len(boundary) > MAX_BOUNDARY_LENGTH:
        raise InvalidInputError(
            f"the multipart/form-data boundary is {len(boundary)} characters long; "
            f"at most {MAX_BOUNDARY_LENGTH}"
        )
    return boundary


class _FormBuilder:
    """Collects the parser's callbacks into a `Form`, enforcing the limits as bytes arrive."""

    def __init__(self, directory: Path) -> None:
        self.form = Form()
        self._directory = directory
        self._header_field = b""
        self._header_value = b""
        self._disposition = b""
        self._name = ""
        self._text = bytearray()
        self._out: BinaryIO | None = None
        self._parts = 0

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field_data,
            "on_header_value": self._header_value_data,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _part_begin(self) -> None:
        self._disposition, self._text = b"", bytearray()

    def _header_field_data(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]  # the parser bounds a part's header lines

    def _header_end(self) -> None:
        if self._header_field.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_field, self._header_value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        name = options.get(b"name")
        if name is None:
            raise InvalidInputError("a form part has no name (Content-Disposition: form-data; name=...)")
        self._name = name.decode("utf-8", "replace")
        if b"filename" not in options and self._name != UPLOAD_FIELD:
            self._parts += 1  # a text field (a `file` part is the audio even without a file name)
            if self._parts > config.MAX_FORM_FIELDS:
                raise InvalidInputError(f"the form has more than {config.MAX_FORM_FIELDS} text fields")
            return
        if self._name != UPLOAD_FIELD:
            raise InvalidInputError(
                f"{self._name[:64]} cannot be a file; the audio goes in the field {UPLOAD_FIELD}"
            )
        if self.form.file is not None:
            raise InvalidInputError(f"{UPLOAD_FIELD} was sent twice; send one audio")
        self.form.file = self._directory / "upload"
        self._out = self.form.file.open("wb")

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._out is not None:
            self.form.file_bytes += end - start
            if self.form.file_bytes > config.MAX_UPLOAD_BYTES:
                raise PayloadTooLargeError(
                    f"{UPLOAD_FIELD} is larger than {config.MAX_UPLOAD_BYTES} bytes (MAX_UPLOAD_BYTES)"
                )
            self._out.write(data[start:end])
            return
        self._text += data[start:end]
        if len(self._text) > config.MAX_FORM_FIELD_BYTES:
            raise InvalidInputError(f"{self._name[:64]} is longer than {config.MAX_FORM_FIELD_BYTES} bytes")

    def _part_end(self) -> None:
        if self._out is not None:
            self.close()
            return
        try:
            self.form.fields.append((self._name, self._text.decode("utf-8")))
        except UnicodeDecodeError:
            raise InvalidInputError(f"{self._name[:64]} is not UTF-8 text") from None

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None


async def timed(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """A request body's chunks, refused when the client stalls or sends too slowly.

    Once reading began, the body has `UPLOAD_IDLE_TIMEOUT_SECONDS` plus its bytes so far at
    `UPLOAD_MIN_BYTES_PER_SECOND`: an upload of N bytes is done within that grace and N at that rate,
    however its bytes are spread.

    Args:
        chunks: The request body (`request.stream()`).

    Yields:
        Its chunks.

    Raises:
        UploadTimeoutError: No chunk came for `UPLOAD_IDLE_TIMEOUT_SECONDS`, or the body fell behind
            the minimum rate.
        JobCancelledError: The client went away before the body's end.
    """
    iterator = aiter(chunks)
    loop = asyncio.get_running_loop()
    started = loop.time()
    received = 0
    while True:
        grace = config.UPLOAD_IDLE_TIMEOUT_SECONDS
        until_rate = started + grace + received / config.UPLOAD_MIN_BYTES_PER_SECOND
        wait = min(config.UPLOAD_IDLE_TIMEOUT_SECONDS, until_rate - loop.time())
        try:
            chunk = await asyncio.wait_for(anext(iterator), max(wait, 0.0))
        except StopAsyncIteration:
            return
        except ClientDisconnect:
            # Nobody is left to answer: an error of the contract, not a failure of the server.
            raise JobCancelledError("the client went away during the upload") from None
        except TimeoutError:
            if wait < config.UPLOAD_IDLE_TIMEOUT_SECONDS:
                raise UploadTimeoutError(
                    f"the upload came slower than {config.UPLOAD_MIN_BYTES_PER_SECOND} bytes a second "
                    "(UPLOAD_MIN_BYTES_PER_SECOND)"
                ) from None
            raise UploadTimeoutError(
                f"the upload sent nothing for {config.UPLOAD_IDLE_TIMEOUT_SECONDS:g} s "
                "(UPLOAD_IDLE_TIMEOUT_SECONDS)"
            ) from None
        received += len(chunk)
        yield chunk


async def read_body(chunks: AsyncIterator[bytes], limit: int) -> bytes:
    """A whole (small) request body, refused past `limit` bytes.

    Args:
        chunks: The request body (`request.stream()`).
        limit: Most bytes taken.

    Returns:
        The body.

    Raises:
        PayloadTooLargeError: The body is longer than `limit`.
        UploadTimeoutError: The client stalled.
        JobCancelledError: The client went away.
    """
    body = bytearray()
    async for chunk in timed(chunks):
        body += chunk
        if len(body) > limit:
            raise PayloadTooLargeError(f"the request body is larger than {limit} bytes")
    return bytes(body)


async def read_form(chunks: AsyncIterator[bytes], content_type: str | None, directory: Path) -> Form:
    """Parses a multipart body as it arrives.

    Args:
        chunks: The request body (`request.stream()`).
        content_type: The request's Content-Type header.
        directory: Where the file is written (the request's own directory, removed by the caller).

    Returns:
        The form; its `file` is None when no file part was sent.

    Raises:
        InvalidInputError: Not a well-formed form, or over the field limits.
        PayloadTooLargeError: The file is larger than `MAX_UPLOAD_BYTES`.
        UploadTimeoutError: The client sent nothing for `UPLOAD_IDLE_TIMEOUT_SECONDS`.
        JobCancelledError: The client went away.
    """
    builder = _FormBuilder(directory)
    parser = MultipartParser(boundary_of(content_type), builder.callbacks())
    body = timed(chunks)
    try:
        async for chunk in body:
            _write(parser, chunk)
            if parser.state == MultipartState.END:
                break  # nothing after the closing boundary is read (the connection closes instead)
        _finish(parser)
    finally:
        builder.close()
        await body.aclose()
    return builder.form


def _write(parser: MultipartParser, chunk: bytes) -> None:
    """Feeds a chunk; a malformed body becomes an input error (our own errors pass through)."""
    try:
        parser.write(chunk)
    except MultipartParseError:
        raise InvalidInputError("the multipart body is malformed") from None


def _finish(parser: MultipartParser) -> None:
    """Ends the parse; a body cut short (no closing boundary) is an input error."""
    if parser.state != MultipartState.END:
        raise InvalidInputError("the multipart body ended before its closing boundary")
    parser.finalize()
