"""subtitle_options through the real handler: cues read back with `srt` and `webvtt-py` obey them."""

import io
from pathlib import Path
from typing import Any

import pytest
import srt
import webvtt

import handler
from tests.support.media import b64, encode, speech

WORDS = "one two three four five six seven eight nine zero one two three four five six"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return encode(speech(WORDS), tmp_path_factory.mktemp("subtitles") / "digits.opus", "-c:a", "libopus")


def subtitles(clip: Path, **fields: Any) -> dict[str, Any]:
    job = {"id": "subs", "input": {"audio_base64": b64(clip), "output_format": ["srt", "vtt"], **fields}}
    return handler.handler(job)


def cue_shapes(result: dict[str, Any]) -> list[tuple[list[str], float]]:
    """(lines, seconds) of every cue, read by both parsers, which must agree."""
    from_srt = [(s.content.splitlines(), (s.end - s.start).total_seconds()) for s in srt.parse(result["srt"])]
    from_vtt = [
        (c.lines, c.end_in_seconds - c.start_in_seconds)
        for c in webvtt.from_buffer(io.StringIO(result["vtt"]))
    ]
    assert [lines for lines, _ in from_srt] == [lines for lines, _ in from_vtt]
    return from_srt


def test_cues_obey_the_options_a_job_asks_for(clip: Path, job_root: Path) -> None:
    default = cue_shapes(subtitles(clip))
    narrow = cue_shapes(
        subtitles(clip, subtitle_options={"max_line_chars": 12, "max_lines": 1, "max_cue_seconds": 1.5})
    )
    assert len(narrow) > len(default)
    for lines, seconds in narrow:
        assert len(lines) == 1
        assert all(len(line) <= 12 for line in lines)
        assert seconds <= 1.5
    spoken = " ".join(line for lines, _ in narrow for line in lines)
    assert spoken == WORDS


def test_absent_keys_keep_the_defaults(clip: Path, job_root: Path) -> None:
    assert cue_shapes(subtitles(clip, subtitle_options={})) == cue_shapes(subtitles(clip))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ([], "subtitle_options must be an object, got array"),
        ({"max_lines": 0}, "subtitle_options.max_lines must be a whole number from 1 to 5, got 0"),
        ({"max_lines": 2.5}, "subtitle_options.max_lines must be a whole number from 1 to 5, got number"),
        (
            {"max_line_chars": True},
            "subtitle_options.max_line_chars must be a whole number from 10 to 200, got boolean",
        ),
        (
            {"max_line_chars": 500},
            "subtitle_options.max_line_chars must be a whole number from 10 to 200, got 500",
        ),
        (
            {"max_cue_seconds": "7"},
            "subtitle_options.max_cue_seconds must be a number from 0.5 to 60, got string",
        ),
        (
            {"max_cue_seconds": 0.1},
            "subtitle_options.max_cue_seconds must be a number from 0.5 to 60, got 0.1",
        ),
        ({"max_chars": 30}, "subtitle_options has unknown field(s) 'max_chars'"),
    ],
)
def test_bad_options_are_refused_by_name(options: Any, message: str, clip: Path, job_root: Path) -> None:
    result = subtitles(clip, subtitle_options=options)
    assert result["success"] is False
    assert result["error_type"] == "invalid_input"
    assert result["error"].startswith(message), result["error"]


def test_options_without_subtitles_are_refused(clip: Path, job_root: Path) -> None:
    job = {"id": "x", "input": {"audio_base64": b64(clip), "subtitle_options": {"max_lines": 1}}}
    result = handler.handler(job)
    assert result["error_type"] == "invalid_input"
    assert result["error"] == 'subtitle_options shape "srt" and "vtt" output; add one to output_format'
