"""One product behind two doors: the queue (the SDK's local API running handler.py) and the HTTP server
(server.py) give the same answers for the same audio and the same options."""

import base64
import json
import urllib.error
import urllib.request
from pathlib import Path

import openai
import pytest

import config
import handler
from tests.support.conversations import conversation
from tests.support.media import encode
from tests.support.worker import http_server_process, local_api, ping

SAMPLE = config.REPO_ROOT / "tests" / "fixtures" / "sample-digits.ogg"


def runsync(url: str, job_input: dict) -> dict:
    request = urllib.request.Request(
        f"{url}/runsync", json.dumps({"input": job_input}).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())["output"]


def test_the_same_audio_gives_the_same_answer_through_both_doors(tmp_path: Path) -> None:
    samples, _ = conversation([(0, "one two three four"), (1, "five six seven eight")])
    talk = encode(samples, tmp_path / "talk.flac")
    with (
        local_api(tmp_path / "queue.log") as queue,
        http_server_process(tmp_path / "server.log") as server,
    ):
        while ping(server.port) != 200:
            assert server.process.poll() is None
        api = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
        for path in (SAMPLE, talk):
            audio = base64.b64encode(path.read_bytes()).decode()
            queued = runsync(queue.url, {"audio_base64": audio, "timestamps": ["word"], "diarize": True})
            with path.open("rb") as file:
                verbose = api.audio.transcriptions.create(
                    model="x",
                    file=file,
                    response_format="verbose_json",
                    timestamp_granularities=["word"],
                    extra_body={"diarize": True},
                ).model_dump()
            assert verbose["text"] == queued["text"]
            assert verbose["duration"] == queued["duration"]
            words = [{k: v for k, v in word.items() if v is not None} for word in verbose["words"]]
            assert words == queued["timestamps"]["word"]
            assert verbose["speakers"] == queued["speakers"]
            # The JSON route answers exactly what the queue answers, meta aside (timings differ).
            request = urllib.request.Request(
                f"{server.url}/v1/jobs",
                json.dumps({"audio_base64": audio, "timestamps": ["word"], "diarize": True}).encode(),
                {"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=120) as response:
                direct = json.loads(response.read())
            assert {**direct, "meta": None} == {**queued, "meta": None}


@pytest.mark.parametrize("bad", [{"audio_base64": "!!"}, {"audio_url": "ftp://x/a.mp3"}, {"timestamps": 1}])
def test_both_doors_refuse_bad_input_with_the_same_error(tmp_path: Path, bad: dict) -> None:
    queued = handler.handler({"id": "bad", "input": bad})  # what RunPod's worker loop sends back
    with http_server_process(tmp_path / "server.log") as server:
        request = urllib.request.Request(
            f"{server.url}/v1/jobs", json.dumps(bad).encode(), {"Content-Type": "application/json"}
        )
        with pytest.raises(urllib.error.HTTPError) as raised:
            urllib.request.urlopen(request, timeout=120)
    assert raised.value.code == 400
    assert json.loads(raised.value.read()) == queued
    assert queued["success"] is False
