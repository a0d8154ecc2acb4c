"""Every response format and stream event of the HTTP door, fetched through the official `openai` client
from a real uvicorn on 127.0.0.1 with the bundled model, validates strictly against the `openai`
package's types, and the Whisper fields hold what they say (tokens that spell the text, log-probabilities,
the compression ratio, the speech detector's doubt)."""

import json
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openai
import pytest
from openai.types.audio import Transcription, TranscriptionDiarized, TranscriptionVerbose

import config
from tests.support.conversations import conversation
from tests.support.http_server import RunningServer, http_server
from tests.support.media import encode, speech
from tests.support.openai_types import STREAM_EVENTS, strictly
from utils.asr import model as asr_model

WORDS = "seven three nine two zero five"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pause = np.zeros(config.SAMPLE_RATE, dtype=np.float32)
    samples = np.concatenate([pause, speech("seven three nine"), pause, speech("two zero five"), pause])
    return encode(samples, tmp_path_factory.mktemp("clip") / "clip.flac")


@pytest.fixture(scope="module")
def talk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    samples, _ = conversation([(0, "one two three four"), (1, "five six seven eight")])
    return encode(samples, tmp_path_factory.mktemp("talk") / "talk.flac")


@pytest.fixture
def server(job_root: Path) -> Iterator[RunningServer]:
    with http_server() as running:
        yield running


def raw(server: RunningServer, path: Path, **kwargs: object) -> openai._legacy_response.LegacyAPIResponse:
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    with path.open("rb") as file:
        return client.audio.transcriptions.with_raw_response.create(model="whisper-1", file=file, **kwargs)


def verbose(server: RunningServer, path: Path, **kwargs: object) -> dict:
    body = json.loads(raw(server, path, response_format="verbose_json", **kwargs).text)
    strictly(TranscriptionVerbose, body)
    return body


def test_json_is_openais(server: RunningServer, clip: Path) -> None:
    body = json.loads(raw(server, clip).text)
    assert strictly(Transcription, body).text == WORDS


@pytest.mark.parametrize("response_format", ["text", "srt", "vtt"])
def test_text_formats_are_plain_text(server: RunningServer, clip: Path, response_format: str) -> None:
    answer = raw(server, clip, response_format=response_format)
    assert answer.headers["content-type"].startswith(("text/", "application/x-subrip"))
    assert "seven" in answer.text


@pytest.mark.parametrize("granularities", [None, ["segment"], ["word"], ["word", "segment"]])
def test_verbose_json_is_openais_at_every_granularity(
    server: RunningServer, clip: Path, granularities: list[str] | None
) -> None:
    extra = {} if granularities is None else {"timestamp_granularities": granularities}
    body = verbose(server, clip, **extra)
    assert body["text"] == WORDS
    assert ("segments" in body) == (granularities is None or "segment" in granularities)
    assert ("words" in body) == (granularities is not None and "word" in granularities)


@pytest.mark.parametrize("extra", [{}, {"vad": True}, {"hotwords": ["seven three"]}])
def test_segment_fields_are_honest(server: RunningServer, clip: Path, extra: dict) -> None:
    body = verbose(server, clip, extra_body=extra)
    tokenizer = asr_model.loaded().model.tokenizer  # the server runs in this process: its model
    assert body["segments"]
    for segment in body["segments"]:
        assert segment["tokens"], segment
        assert tokenizer.ids_to_text(segment["tokens"]) == segment["text"]
        encoded = segment["text"].encode()
        assert segment["compression_ratio"] == pytest.approx(len(encoded) / len(zlib.compress(encoded)))
        assert -1.0 < segment["avg_logprob"] <= 0.0  # clean synthetic speech the model knows well
        assert 0.0 <= segment["no_speech_prob"] < 0.5  # it is speech
        assert segment["temperature"] == 0.0
        assert segment["seek"] == round(segment["start"] * 100)
    assert sum(len(segment["tokens"]) for segment in body["segments"]) >= len(WORDS.split())


def test_word_confidence_beside_log_probabilities_changes_neither(server: RunningServer, clip: Path) -> None:
    alone = verbose(server, clip)["segments"]
    both = verbose(server, clip, extra_body={"confidence": True})["segments"]
    assert [s["tokens"] for s in both] == [s["tokens"] for s in alone]
    assert [s["avg_logprob"] for s in both] == pytest.approx([s["avg_logprob"] for s in alone], abs=1e-5)
    assert all(0.0 <= s["confidence"] <= 1.0 for s in both)


def test_segments_split_by_speaker_keep_their_tokens(server: RunningServer, talk: Path) -> None:
    body = verbose(server, talk, extra_body={"diarize": True})
    tokenizer = asr_model.loaded().model.tokenizer
    assert len(body["segments"]) >= 2
    for segment in body["segments"]:
        assert tokenizer.ids_to_text(segment["tokens"]) == segment["text"]
        assert segment["speaker"].startswith("S")


def test_diarized_json_is_openais(server: RunningServer, talk: Path) -> None:
    body = json.loads(raw(server, talk, response_format="diarized_json").text)
    assert strictly(TranscriptionDiarized, body).segments


@pytest.mark.parametrize(("response_format", "path"), [("json", "clip"), ("diarized_json", "talk")])
def test_stream_events_are_openais(
    server: RunningServer, request: pytest.FixtureRequest, response_format: str, path: str
) -> None:
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    with request.getfixturevalue(path).open("rb") as file:
        stream = client.audio.transcriptions.create(
            model="x", file=file, stream=True, response_format=response_format
        )
        events = [event.to_dict() for event in stream]
    kinds = [event["type"] for event in events]
    assert kinds[-1] == "transcript.text.done"
    assert ("transcript.text.segment" in kinds) == (response_format == "diarized_json")
    for event in events:
        strictly(STREAM_EVENTS[event["type"]], event)
    assert events[-1]["duration"] > 0  # the audio's seconds, beside OpenAI's fields


def test_numbers_as_digits_keep_the_models_tokens(server: RunningServer, clip: Path) -> None:
    body = verbose(server, clip, extra_body={"numbers": "digits"})
    tokenizer = asr_model.loaded().model.tokenizer
    spoken = " ".join(tokenizer.ids_to_text(segment["tokens"]) for segment in body["segments"])
    assert spoken == WORDS  # what the model emitted
    assert body["text"] != WORDS  # rewritten as digits after it
    assert all(segment["avg_logprob"] <= 0.0 for segment in body["segments"])
