"""Audio that came with the request: the base64 text of `audio_base64`, decoded into a file of the job
directory, or a file the HTTP server received, moved into it."""

import base64
import binascii
import os
import tempfile
from pathlib import Path

from utils.errors import FIELD, EmptyAudioError, InvalidInputError

_ASCII_WHITESPACE = str.maketrans("", "", " \t\r\n\v\f")


def save_base64(encoded: str, job_dir: Path) -> Path:
    """Decodes inline audio and writes it to a new file in `job_dir`.

    ASCII whitespace (spaces, tabs, line breaks) is removed before decoding, so base64 wrapped at 76
    columns (the MIME and `base64` CLI default) is accepted; anything else outside the standard
    alphabet, or wrong padding, is refused. The `data:` prefix was already removed by validation.

    Args:
        encoded: The base64 text of the audio file.
        job_dir: The job's temporary directory.

    Returns:
        The path of the written file.

    Raises:
        InvalidInputError: `encoded` is not valid standard base64.
        EmptyAudioError: It decodes to zero bytes.
    """
    compact = encoded.translate(_ASCII_WHITESPACE)
    if ("-" in compact or "_" in compact) and not ("+" in compact or "/" in compact):
        raise InvalidInputError(
            f"{FIELD} is URL-safe base64 ('-' and '_'); send standard base64 ('+' and '/'), "
            "e.g. Python's base64.b64encode"
        )
    try:
        data = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInputError(f"{FIELD} is not valid base64: {exc}") from None
    if not data:
        raise EmptyAudioError(f"{FIELD} decodes to zero bytes")
    fd, name = tempfile.mkstemp(dir=job_dir, prefix="source-")
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    return Path(name)


def take_upload(upload: Path, job_dir: Path) -> Path:
    """Moves a file the HTTP server received into `job_dir`, as a fetched file would be.

    Args:
        upload: The received file (on the same file system: the server writes it in a job directory).
        job_dir: The item's directory.

    Returns:
        The file's new path.

    Raises:
        EmptyAudioError: The file holds zero bytes.
    """
    if upload.stat().st_size == 0:
        raise EmptyAudioError(f"{FIELD} is empty (zero bytes)")
    return upload.rename(job_dir / f"source-{upload.name}")
