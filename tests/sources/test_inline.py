"""audio_base64 (`utils.sources.inline`): decoded into a new file in the job directory, or refused with
what to send instead."""

import base64
from pathlib import Path

import pytest

from tests.support.origins import AUDIO, files_in
from utils import sources
from utils.errors import (
    EmptyAudioError,
    InvalidInputError,
)

pytestmark = pytest.mark.usefixtures("loopback_only", "fake_dns")


# --- base64 ----------------------------------------------------------------------------------------


def test_base64_is_decoded_into_a_new_file_in_the_job_dir(job_dir: Path) -> None:
    first = sources.fetch("audio_base64", base64.b64encode(AUDIO).decode(), job_dir)
    second = sources.fetch("audio_base64", base64.b64encode(b"other").decode(), job_dir)
    assert first.parent == job_dir
    assert second.parent == job_dir
    assert first != second
    assert first.read_bytes() == AUDIO
    assert second.read_bytes() == b"other"


def test_base64_wrapped_in_lines_and_spaces_is_accepted(job_dir: Path) -> None:
    encoded = base64.encodebytes(AUDIO).decode()  # MIME style: 76 columns, "\n" line ends
    assert "\n" in encoded
    messy = " " + encoded.replace("\n", "\r\n\t") + " "
    assert sources.fetch("audio_base64", messy, job_dir).read_bytes() == AUDIO


def test_url_safe_base64_is_refused_with_what_to_send_instead(job_dir: Path) -> None:
    encoded = base64.urlsafe_b64encode(bytes([0xFB, 0xFF, 0xBF]) * 4).decode()
    assert "-" in encoded or "_" in encoded
    with pytest.raises(InvalidInputError) as caught:
        sources.fetch("audio_base64", encoded, job_dir)
    assert str(caught.value).startswith("audio_base64 is URL-safe base64 ('-' and '_'); send standard base64")
    assert files_in(job_dir) == []


@pytest.mark.parametrize(
    "encoded",
    ["UklGRg$=", "UklGR", "UklGRg=", "UklG-+==", "ÄÖÜß", "UklGRg==UklGRg=="],
)
def test_invalid_base64_is_refused(job_dir: Path, encoded: str) -> None:
    with pytest.raises(InvalidInputError, match="^audio_base64 is not valid base64: ") as caught:
        sources.fetch("audio_base64", encoded, job_dir)
    assert "\n" not in str(caught.value)
    assert files_in(job_dir) == []


@pytest.mark.parametrize("encoded", ["", " \r\n"])
def test_base64_of_nothing_is_empty_audio(job_dir: Path, encoded: str) -> None:
    with pytest.raises(EmptyAudioError):
        sources.fetch("audio_base64", encoded, job_dir)
    assert files_in(job_dir) == []
