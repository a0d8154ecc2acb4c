"""The HTTP server's routes under a real uvicorn on 127.0.0.1, driven by the official `openai` client
(and by hand-made requests for what that client would never send), with the bundled models."""

import difflib
import json
import logging
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import openai
import pytest
import srt
import webvtt

import config
from tests.support.conversations import conversation
from tests.support.http_server import RunningServer, get, http_server, multipart, post
from tests.support.media import b64, encode, speech
from tests.support.model_spy import ModelSpy
from utils.contract.job_input import JobInput
from utils.http import app
from utils.http.openai_params import TranscriptionForm
from utils.text import number_stream

WORDS = "seven three nine two zero five"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return encode(speech(WORDS), tmp_path_factory.mktemp("clip") / "clip.flac")


@pytest.fixture
def server(job_root: Path) -> Iterator[RunningServer]:
    with http_server() as running:
        yield running


def client(server: RunningServer, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0)


def transcribe(server: RunningServer, clip: Path, **kwargs: object) -> object:
    with clip.open("rb") as file:
        return client(server).audio.transcriptions.create(model="whisper-1", file=file, **kwargs)


def form_error(server: RunningServer, fields: list[tuple[str, str]], file: bytes | None) -> tuple[int, dict]:
    body, content_type = multipart(fields, file)
    status, _, answer = post(server.port, "/v1/audio/transcriptions", body, content_type)
    return status, json.loads(answer)["error"]


# --- Response formats ---


def test_json_gives_the_text_and_usage_by_duration(server: RunningServer, clip: Path) -> None:
    result = transcribe(server, clip)
    assert result.text == WORDS
    assert result.usage.type == "duration"
    assert result.usage.seconds == pytest.approx(speech(WORDS).size / config.SAMPLE_RATE, abs=0.05)


def test_text_comes_back_as_plain_text(server: RunningServer, clip: Path) -> None:
    with clip.open("rb") as file:
        raw = client(server).audio.transcriptions.with_raw_response.create(
            model="x", file=file, response_format="text"
        )
    assert raw.headers["content-type"].startswith("text/plain")
    assert raw.text == WORDS


@pytest.mark.parametrize(
    ("response_format", "media_type"), [("srt", "application/x-subrip"), ("vtt", "text/vtt")]
)
def test_subtitles_come_back_as_their_files(
    server: RunningServer, clip: Path, response_format: str, media_type: str
) -> None:
    with clip.open("rb") as file:
        raw = client(server).audio.transcriptions.with_raw_response.create(
            model="x", file=file, response_format=response_format
        )
    assert raw.headers["content-type"].startswith(media_type)
    if response_format == "srt":
        cues = [cue.content for cue in srt.parse(raw.text)]
    else:
        cues = [cue.text for cue in webvtt.from_string(raw.text)]
    assert " ".join(cues) == WORDS


def test_verbose_json_has_openai_shape_with_segments_by_default(server: RunningServer, clip: Path) -> None:
    result = transcribe(server, clip, response_format="verbose_json")
    assert result.task == "transcribe"
    assert result.language == "en"
    assert result.text == WORDS
    assert result.duration == pytest.approx(result.usage.seconds)
    assert [segment.id for segment in result.segments] == list(range(len(result.segments)))
    assert " ".join(segment.text for segment in result.segments) == WORDS
    assert all(0 <= segment.start < segment.end <= result.duration for segment in result.segments)
    assert result.words is None


def test_verbose_json_gives_the_granularities_asked(server: RunningServer, clip: Path) -> None:
    words_only = transcribe(server, clip, response_format="verbose_json", timestamp_granularities=["word"])
    assert [word.word for word in words_only.words] == WORDS.split()
    assert words_only.segments is None
    both = transcribe(
        server, clip, response_format="verbose_json", timestamp_granularities=["word", "segment"]
    )
    assert [word.word for word in both.words] == WORDS.split()
    assert " ".join(segment.text for segment in both.segments) == WORDS
    starts = [word.start for word in both.words]
    assert starts == sorted(starts)


def test_diarized_json_labels_segments_with_speakers(server: RunningServer, tmp_path: Path) -> None:
    samples, _ = conversation([(0, "one two three four"), (1, "five six seven eight"), (0, "nine zero one")])
    path = encode(samples, tmp_path / "talk.flac")
    result = transcribe(server, path, response_format="diarized_json").model_dump()
    assert result["segments"], result
    for segment in result["segments"]:
        assert segment["type"] == "transcript.text.segment"
        assert segment["speaker"].startswith("S")
        assert segment["id"].startswith("seg_")
    assert {speaker["speaker"] for speaker in result["speakers"]} >= {"S1", "S2"}
    assert result["usage"]["type"] == "duration"


# --- Our options through extra_body ---


def test_language_is_compared_with_the_detected_one(server: RunningServer, clip: Path) -> None:
    result = transcribe(server, clip, response_format="verbose_json", language="de").model_dump()
    assert (result["language"], result["language_mismatch"]) == ("en", True)
    with pytest.raises(openai.BadRequestError) as raised:
        transcribe(server, clip, language="ja")
    assert raised.value.body["message"].startswith("language 'ja' is not one the model transcribes")


def test_options_come_through_extra_body(server: RunningServer, clip: Path) -> None:
    result = transcribe(
        server,
        clip,
        response_format="verbose_json",
        timestamp_granularities=["word"],
        extra_body={"confidence": True, "hotwords": ["seven", "nine"], "hotword_weight": 2.0},
    ).model_dump()
    assert result["text"] == WORDS
    assert all(0 <= word["confidence"] <= 1 for word in result["words"])
    assert 0 <= result["confidence"] <= 1


def test_object_options_come_as_bracketed_fields_or_json(server: RunningServer, clip: Path) -> None:
    for options in (
        {"max_line_chars": 12, "max_lines": 1},
        json.dumps({"max_line_chars": 12, "max_lines": 1}),
    ):
        text = transcribe(server, clip, response_format="srt", extra_body={"subtitle_options": options})
        assert all(len(cue.content) <= 12 for cue in srt.parse(text)), text


def test_a_bad_option_value_gets_the_queue_message(server: RunningServer, clip: Path) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        transcribe(server, clip, extra_body={"hotwords": ["x" * (config.MAX_HOTWORD_CHARS + 1)]})
    assert raised.value.body["code"] == "invalid_input"
    assert raised.value.body["message"].startswith("hotwords[0]")


# --- Streaming ---


def test_a_stream_sends_deltas_then_the_whole_text(server: RunningServer, clip: Path) -> None:
    with clip.open("rb") as file:
        events = list(client(server).audio.transcriptions.create(model="x", file=file, stream=True))
    assert [event.type for event in events][-1] == "transcript.text.done"
    deltas = "".join(event.delta for event in events if event.type == "transcript.text.delta")
    assert deltas == events[-1].text == WORDS


def test_long_audio_streams_window_by_window(
    server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "STREAM_WINDOW_SECONDS", 10.0)
    phrases = ["one two three", "four five six", "seven eight nine", "zero one two", "three four five"]
    gap = np.zeros(2 * config.SAMPLE_RATE, dtype=np.float32)
    samples = np.concatenate([part for phrase in phrases for part in (speech(phrase), gap)])
    assert samples.size / config.SAMPLE_RATE > 18  # two windows at least
    path = encode(samples, tmp_path / "long.flac")
    with path.open("rb") as file:
        events = list(client(server).audio.transcriptions.create(model="x", file=file, stream=True))
    deltas = [event.delta for event in events if event.type == "transcript.text.delta"]
    assert len(deltas) >= 2, events  # text came before the end
    assert events[-1].type == "transcript.text.done"
    assert "".join(deltas) == events[-1].text
    # Windows of 10 s may cut a word at a seam: the text is the phrases, give or take a word.
    matcher = difflib.SequenceMatcher(None, events[-1].text.split(), " ".join(phrases).split())
    assert matcher.ratio() > 0.85, events[-1].text


def test_numbers_come_as_digits_in_the_text_and_words(server: RunningServer, clip: Path) -> None:
    result = transcribe(
        server,
        clip,
        response_format="verbose_json",
        timestamp_granularities=["word"],
        extra_body={"numbers": "digits"},
    )
    assert result.text == "7 3 9 2 0 5"
    assert [word.word for word in result.words] == result.text.split()
    assert all(word.start <= word.end <= result.duration for word in result.words)


def test_a_stream_in_digits_holds_a_number_back_until_it_is_whole(
    server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "STREAM_WINDOW_SECONDS", 10.0)
    monkeypatch.setattr(number_stream, "MAX_HELD_WORDS", 2)
    phrases = ["one two three", "four five six", "seven eight nine", "zero one two", "three four five"]
    gap = np.zeros(2 * config.SAMPLE_RATE, dtype=np.float32)
    samples = np.concatenate([part for phrase in phrases for part in (speech(phrase), gap)])
    path = encode(samples, tmp_path / "long.flac")
    with path.open("rb") as file:
        events = list(
            client(server).audio.transcriptions.create(
                model="x", file=file, stream=True, extra_body={"numbers": "digits"}
            )
        )
    deltas = [event.delta for event in events if event.type == "transcript.text.delta"]
    assert len(deltas) >= 2, events  # text came before the end
    assert "".join(deltas) == events[-1].text
    assert all(token.isdigit() for token in events[-1].text.split()), events[-1].text


def test_a_stream_of_a_diarized_job_sends_segments(server: RunningServer, tmp_path: Path) -> None:
    samples, _ = conversation([(0, "one two three"), (1, "four five six")])
    path = encode(samples, tmp_path / "talk.flac")
    with path.open("rb") as file:
        events = list(
            client(server).audio.transcriptions.create(
                model="x", file=file, stream=True, response_format="diarized_json"
            )
        )
    segments = [event for event in events if event.type == "transcript.text.segment"]
    assert segments
    assert all(event.speaker.startswith("S") for event in segments)


def test_a_failure_mid_stream_ends_it_with_an_error_event(server: RunningServer, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.flac"
    garbage.write_bytes(b"fLaC" + bytes(range(256)) * 40)  # passes the form, fails to decode
    with garbage.open("rb") as file, pytest.raises(openai.APIError) as raised:
        list(client(server).audio.transcriptions.create(model="x", file=file, stream=True))
    assert raised.value.body["code"] == "invalid_audio"


# --- Models, routes and keys ---


def test_models_lists_the_served_model(server: RunningServer) -> None:
    models = client(server).models.list()
    assert [model.id for model in models.data] == ["parakeet-tdt-digits"]
    assert client(server).models.retrieve("parakeet-tdt-digits").id == "parakeet-tdt-digits"


def test_several_served_models_are_listed_and_picked_by_id(
    server: RunningServer, clip: Path, tmp_path: Path, two_models: tuple[str, str]
) -> None:
    multilingual = config.BUNDLED_MULTILINGUAL_TEST_MODEL
    listed = [model.id for model in client(server).models.list().data]
    assert listed == ["parakeet-tdt-digits", multilingual.stem]
    german = encode(speech("sechs acht drei null vier", voice="de"), tmp_path / "german.flac")
    with german.open("rb") as file:
        result = client(server).audio.transcriptions.create(
            model=multilingual.stem, file=file, response_format="verbose_json", language="de"
        )
    assert (result.text, result.language) == ("sechs acht drei null vier", "de")
    assert result.model_dump()["language_mismatch"] is False
    with pytest.raises(openai.BadRequestError) as raised:
        transcribe(server, clip)  # "whisper-1" names no served model once there are several
    assert raised.value.body["message"].startswith("model 'whisper-1' is not served here")
    body = json.dumps({"audio_base64": b64(clip), "model": multilingual.stem}).encode()
    status, _, answer = post(server.port, "/v1/jobs", body, "application/json")
    assert (status, json.loads(answer)["meta"]["model"]) == (200, multilingual.stem)


def test_translations_say_the_model_does_not_translate(server: RunningServer, clip: Path) -> None:
    with clip.open("rb") as file, pytest.raises(openai.NotFoundError) as raised:
        client(server).audio.translations.create(model="x", file=file)
    assert "does not translate" in raised.value.body["message"]


def test_an_unknown_route_gets_404_in_openai_shape(server: RunningServer) -> None:
    status, _, body = post(server.port, "/v1/chat/completions", b"{}", "application/json")
    assert status == 404
    assert json.loads(body)["error"]["code"] == "unknown_route"


def test_a_wrong_method_gets_405_in_openai_shape(server: RunningServer) -> None:
    status, body = get(server.port, "/v1/audio/transcriptions")
    assert status == 405
    assert set(json.loads(body)["error"]) == {"message", "type", "param", "code"}


def test_an_api_key_is_demanded_when_set(
    server: RunningServer, clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "API_KEY", "s3cret")
    with clip.open("rb") as file, pytest.raises(openai.AuthenticationError) as raised:
        client(server, key="wrong").audio.transcriptions.create(model="x", file=file)
    assert raised.value.body["code"] == "unauthorized"
    with pytest.raises(openai.AuthenticationError):
        client(server, key="wrong").models.list()
    with clip.open("rb") as file:
        assert client(server, key="s3cret").audio.transcriptions.create(model="x", file=file).text == WORDS
    assert get(server.port, "/ping")[0] == 200  # no key for /ping


def test_ping_says_starting_until_the_model_is_ready(job_root: Path) -> None:
    with http_server(load=False) as running:
        assert get(running.port, "/ping") == (204, b"")


# --- Bad input, by hand ---

BAD_FORMS = [
    ([("model", "x")], None, 400, "file is required"),
    ([("model", "x")], b"", 400, "file is empty"),
    ([], b"this is not audio at all" * 10, 415, "file could not be decoded"),
    ([("colour", "blue")], b"x", 400, "unknown form field(s): colour"),
    ([("response_format", "docx")], b"x", 400, "response_format must be one of"),
    ([("timestamp_granularities[]", "word")], b"x", 400, "needs response_format verbose_json"),
    ([("max_speakers", "3")], b"x", 400, "max_speakers needs diarize"),
    ([("language", "xx")], b"x", 400, "language 'xx' is not one the model transcribes"),
    ([("prompt", "Hello")], b"x", 400, "prompt is not supported"),
    ([("include[]", "logprobs")], b"x", 400, "include is not supported"),
    ([("hotwords", "[" * 5000 + "]" * 5000)], b"x", 400, "hotwords is nested too deeply: at most 32 levels"),
    # A lone surrogate is valid JSON in a key; the queue's validation names it as an unknown field.
    (
        [("response_format", "srt"), ("subtitle_options", '{"\\ud800": 1}')],
        b"x",
        400,
        "unknown field(s) '\\ud800'",
    ),
]


@pytest.mark.parametrize(("fields", "file", "status", "message"), BAD_FORMS)
def test_bad_forms_get_a_clear_error(
    server: RunningServer, fields: list[tuple[str, str]], file: bytes | None, status: int, message: str
) -> None:
    got_status, error = form_error(server, fields, file)
    assert got_status == status, error
    assert message in error["message"], error
    assert error["type"] == "invalid_request_error"


def test_a_file_over_the_upload_cap_is_refused(
    server: RunningServer, clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "MAX_UPLOAD_BYTES", 1000)
    status, error = form_error(server, [], clip.read_bytes())
    assert (status, error["code"]) == (413, "payload_too_large")


def test_a_body_that_is_not_a_form_is_refused(server: RunningServer) -> None:
    status, _, body = post(server.port, "/v1/audio/transcriptions", b"{}", "application/json")
    assert status == 400
    assert "multipart/form-data" in json.loads(body)["error"]["message"]


def test_a_stalled_upload_times_out(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch, job_root: Path
) -> None:
    monkeypatch.setattr(config, "UPLOAD_IDLE_TIMEOUT_SECONDS", 1.0)
    body, content_type = multipart([], b"x" * 1000)
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        head = (
            f"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        sock.sendall(head.encode() + body[:300])  # and then nothing
        answer = sock.recv(65536).decode()
    assert answer.startswith("HTTP/1.1 408"), answer
    assert "upload_timeout" in answer


# --- Load: sharing, busy, disconnects ---


def test_sixteen_requests_at_once_share_model_calls(
    clip: Path, monkeypatch: pytest.MonkeyPatch, job_root: Path
) -> None:
    monkeypatch.setattr(config, "MAX_CONCURRENCY", 16)
    monkeypatch.setattr(config, "BATCH_WAIT_MS", 200.0)
    spy = ModelSpy(monkeypatch)
    with http_server() as running, ThreadPoolExecutor(16) as pool:
        texts = list(pool.map(lambda _: transcribe(running, clip).text, range(16)))
    assert texts == [WORDS] * 16
    assert len(spy.calls) < 16, spy.calls


def test_a_client_that_disconnects_leaves_the_model_queue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, job_root: Path
) -> None:
    monkeypatch.setattr(config, "BATCH_WAIT_MS", 0.0)
    spy = ModelSpy(monkeypatch)
    spy.delay = 3.0  # the first request holds the model while the second waits in its queue
    first_clip = encode(speech("one two three"), tmp_path / "first.flac")
    second_clip = encode(speech("four five six seven eight"), tmp_path / "second.flac")
    body, content_type = multipart([], second_clip.read_bytes())
    with http_server() as running, ThreadPoolExecutor(1) as pool:
        first = pool.submit(transcribe, running, first_clip)
        while not spy.calls:
            time.sleep(0.01)
        with socket.create_connection(("127.0.0.1", running.port)) as sock:
            head = (
                f"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            )
            sock.sendall(head.encode() + body)
            time.sleep(1.0)  # read, decoded and queued by now
        assert first.result().text == "one two three"
        time.sleep(0.5)
    assert len(spy.calls) == 1, spy.calls


def test_a_client_that_leaves_mid_upload_is_no_server_failure(
    server: RunningServer, clip: Path, job_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    body, content_type = multipart([], clip.read_bytes())
    for route, part in (("/v1/audio/transcriptions", body[:1000]), ("/v1/jobs", b'{"audio_base64": "')):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            head = (
                f"POST {route} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            )
            sock.sendall(head.encode() + part)
            time.sleep(0.3)  # the route is reading the body when the client leaves
    time.sleep(0.5)
    assert client(server).models.list().data  # still serving
    assert list(job_root.iterdir()) == []
    failures = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert failures == [], [record.getMessage() for record in failures]  # no "internal", no traceback


# --- The JSON route and the OpenAPI document ---


def test_the_json_route_takes_the_queue_input_and_answers_the_contract(
    server: RunningServer, clip: Path
) -> None:
    job_input = {"audios": [{"audio_base64": b64(clip), "id": "a"}, {"audio_base64": "!!", "id": "b"}]}
    status, _, body = post(server.port, "/v1/jobs", json.dumps(job_input).encode(), "application/json")
    result = json.loads(body)
    assert status == 200
    assert result["success"] is True
    assert [item["id"] for item in result["results"]] == ["a", "b"]
    assert result["results"][0]["text"] == WORDS
    assert result["results"][1]["error_type"] == "invalid_input"


def test_the_json_route_answers_failures_in_the_contract(server: RunningServer) -> None:
    status, _, body = post(server.port, "/v1/jobs", b'{"audio_base64": 5}', "application/json")
    assert status == 400
    assert json.loads(body) == {
        "success": False,
        "error": "audio_base64 must be a string, got number",
        "error_type": "invalid_input",
    }
    status, _, body = post(server.port, "/v1/jobs", b"not json", "application/json")
    assert (status, json.loads(body)["error_type"]) == (400, "invalid_input")


def test_the_openapi_document_holds_the_job_input_schema(server: RunningServer) -> None:
    _, body = get(server.port, "/openapi.json")
    document = json.loads(body)
    schema = document["components"]["schemas"]["JobInput"]
    assert set(schema["properties"]) == set(JobInput.model_fields)
    body = document["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/JobInput"}
    form = document["paths"]["/v1/audio/transcriptions"]["post"]["requestBody"]["content"]
    assert form["multipart/form-data"]["schema"]["properties"]["language"]["enum"] == list(
        config.MODEL_LANGUAGES
    )
    # The form's fields are its declaration's, as OpenAI's SDKs send them, and the file.
    fields = set(form["multipart/form-data"]["schema"]["properties"])
    declared = {
        f"{name}[]" if name == "timestamp_granularities" else name for name in TranscriptionForm.model_fields
    }
    assert fields == {"file", *declared}


def test_the_documented_languages_are_those_of_the_served_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        config, "PARAKEET_MODELS", ("nvidia/parakeet-tdt-0.6b-v2", "nvidia/parakeet-tdt-1.1b")
    )
    assert app.served_languages() == ["en"]
    monkeypatch.setattr(config, "PARAKEET_MODELS", ("nvidia/parakeet-tdt-0.6b-v2", "/models/tuned.nemo"))
    assert app.served_languages() == list(config.MODEL_LANGUAGES)
