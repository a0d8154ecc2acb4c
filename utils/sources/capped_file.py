"""Writes a fetched audio source (https body or S3 object) into the job directory, under the byte cap.

Both sources stream through `save_stream`; each supplies its own chunk iterator, which also enforces
its own deadline (a socket timeout per read for https, a check between chunks for S3).
"""

import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

import config
from utils.errors import FIELD, DownloadTooLargeError, EmptyAudioError

# Only a short alphanumeric extension of the name is kept, as a hint for ffmpeg's probing.
_EXTENSION_HINT = re.compile(r"\.[a-z0-9]{1,5}")


def extension_hint(name: str) -> str:
    """Returns a short, safe extension from a URL path or object key ("" when there is none).

    Args:
        name: The path or key (already percent-decoded where that applies).

    Returns:
        E.g. ".mp3", lower case; "" for none or anything unusual.
    """
    suffix = PurePosixPath(name).suffix.lower()
    return suffix if _EXTENSION_HINT.fullmatch(suffix) else ""


def save_stream(
    chunks: Iterable[bytes], job_dir: Path, suffix: str, declared_bytes: int | None, empty_message: str
) -> Path:
    """Streams `chunks` into a new file in `job_dir`; a failure removes the partial file.

    Args:
        chunks: The body, chunk by chunk (the iterator raises on its own deadline).
        job_dir: The job's temporary directory.
        suffix: The file's extension hint.
        declared_bytes: The size the server announced, if any; over the cap it is refused unread.
        empty_message: The error message when the body is empty.

    Returns:
        The path of the written file.

    Raises:
        DownloadTooLargeError: The body is, or says it is, larger than `config.MAX_DOWNLOAD_BYTES`.
        EmptyAudioError: The body is empty.
    """
    cap = config.MAX_DOWNLOAD_BYTES
    if declared_bytes is not None and declared_bytes > cap:
        raise DownloadTooLargeError(f"{FIELD} is {declared_bytes} bytes; the limit is {cap} bytes")
    fd, name = tempfile.mkstemp(dir=job_dir, prefix="source-", suffix=suffix)
    path = Path(name)
    total = 0
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                total += len(chunk)
                # Counted as read: a size that lies (or its absence) does not lift the cap.
                if total > cap:
                    raise DownloadTooLargeError(f"{FIELD} is larger than the limit of {cap} bytes")
                out.write(chunk)
        if total == 0:
            raise EmptyAudioError(empty_message)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path
