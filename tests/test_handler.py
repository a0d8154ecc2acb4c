"""The handler end to end on real parts: the bundled model, ffmpeg, the local S3 server.

Speech is synthesized with espeak-ng (tools/synth.py) and encoded with the real ffmpeg, so a wrong
sample rate, a dropped channel or truncated audio changes the words and fails the test.
"""

import base64
import itertools
import json
import subprocess
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import srt
import torch
import webvtt

import config
import handler
from tests.support.media import RATE, VOICE, b64, encode, speech
from tests.support.s3_server import LocalS3
from tools import synth
from utils.asr import attention
from utils.asr import model as asr_model


@pytest.fixture(autouse=True)
def job_temp_root(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Gives every test its own TEMP_ROOT and fails it if a job leaves anything there."""
    root = tmp_path_factory.mktemp("job-temp")
    monkeypatch.setattr(config, "TEMP_ROOT", root)
    yield root
    assert list(root.iterdir()) == [], "a job left temporary files behind"


def run(job_input: Any) -> dict[str, Any]:
    """Runs the handler on one job and checks the result is plain JSON."""
    result = handler.handler({"id": "test-job", "input": job_input})
    assert json.loads(json.dumps(result)) == result
    return result


def test_bundled_sample_gives_its_words_and_meta() -> None:
    sample = config.REPO_ROOT / "tests" / "fixtures" / "sample-digits.ogg"
    result = run({"audio_base64": b64(sample)})
    assert result["success"] is True
    assert result["text"] == "seven three nine two zero five"
    assert result["duration"] == pytest.approx(2.608, abs=0.01)
    assert "timestamps" not in result
    meta = result["meta"]
    assert meta["attention"] == "full"
    assert meta["device"] == "cpu"
    assert meta["model"] == Path(config.PARAKEET_MODEL).stem  # a .nemo by its id, never a path
    assert set(meta["processing_seconds"]) == {"fetch", "convert", "load", "transcribe", "diarize", "total"}
    assert meta["audio_seconds"] == result["duration"]


ENCODINGS = {
    "mp3": ("clip.mp3", ("-ar", "44100", "-c:a", "libmp3lame", "-b:a", "64k")),
    "opus": ("clip.opus", ("-ar", "48000", "-c:a", "libopus", "-b:a", "32k")),
    "m4a": ("clip.m4a", ("-ar", "44100", "-c:a", "aac", "-b:a", "64k")),
    "flac": ("clip.flac", ()),
    "wav-48k": ("clip.wav", ("-ar", "48000")),
    "wav-22k-stereo": ("clip.wav", ("-ar", "22050", "-ac", "2")),
    "ogg-vorbis": ("clip.ogg", ("-c:a", "libvorbis")),
    "webm-opus": ("clip.webm", ("-c:a", "libopus")),
}


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_every_encoding_transcribes_to_the_spoken_words(tmp_path: Path, encoding: str) -> None:
    name, args = ENCODINGS[encoding]
    path = encode(speech("four one eight six"), tmp_path / name, *args)
    result = run({"audio_base64": b64(path)})
    assert result["success"] is True, result
    assert result["text"] == "four one eight six"


def test_stereo_with_speech_on_one_channel_only_is_heard(tmp_path: Path) -> None:
    # A call recording often has each speaker on one channel: a dropped channel would lose words.
    left = speech("nine nine two")
    wav = tmp_path / "left.wav"
    synth.write_wav(wav, left)
    path = tmp_path / "stereo.wav"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-y", "-loglevel", "error", "-i", str(wav),
         "-af", "pan=stereo|c0=c0|c1=0*c0", str(path)],
        check=True,
    )  # fmt: skip
    assert run({"audio_base64": b64(path)})["text"] == "nine nine two"


def test_video_with_an_audio_track(tmp_path: Path) -> None:
    wav = tmp_path / "speech.wav"
    synth.write_wav(wav, speech("three five seven"))
    path = tmp_path / "clip.mp4"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-y", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=64x64:rate=10",
         "-i", str(wav), "-map", "0:v", "-map", "1:a", "-shortest", "-c:v", "libx264", "-pix_fmt", "yuv420p",
         "-c:a", "aac", str(path)],
        check=True,
    )  # fmt: skip
    assert run({"audio_base64": b64(path)})["text"] == "three five seven"


def test_silence_is_a_success_with_empty_text(tmp_path: Path) -> None:
    path = tmp_path / "silence.wav"
    synth.write_wav(path, np.zeros(2 * RATE, dtype=np.float32))
    result = run({"audio_base64": b64(path), "timestamps": True})
    assert result["success"] is True
    assert result["text"] == ""
    assert result["timestamps"] == {"segment": [], "word": []}
    assert (result["language"], result["language_confidence"]) == (None, None)


def test_every_item_reports_its_language_and_a_mismatch_when_one_was_expected(tmp_path: Path) -> None:
    clip = b64(encode(speech("four two seven one"), tmp_path / "clip.flac"))
    plain = run({"audio_base64": clip})
    assert plain["language"] == "en"
    assert 0.5 < plain["language_confidence"] <= 1
    assert "language_mismatch" not in plain
    assert run({"audio_base64": clip, "language": "en-GB"})["language_mismatch"] is False
    assert run({"audio_base64": clip, "language": "de"})["language_mismatch"] is True
    batch = run({"audios": [{"audio_base64": clip}, {"audio_base64": "!!"}], "language": "en"})
    assert (batch["results"][0]["language"], batch["results"][0]["language_mismatch"]) == ("en", False)
    assert "language" not in batch["results"][1]  # a failed item has no transcript


def test_word_and_char_timestamps_are_ordered_and_inside_the_audio(tmp_path: Path) -> None:
    path = encode(speech("two zero one six"), tmp_path / "clip.flac")
    result = run({"audio_base64": b64(path), "timestamps": ["word", "char", "segment"]})
    words = result["timestamps"]["word"]
    assert [w["word"] for w in words] == ["two", "zero", "one", "six"]
    assert all(0 <= w["start"] <= w["end"] <= result["duration"] for w in words)
    assert all(a["end"] <= b["start"] for a, b in itertools.pairwise(words))
    assert "".join(c["char"] for c in result["timestamps"]["char"]).replace(" ", "") == "twozeroonesix"
    assert result["timestamps"]["segment"][0]["text"] == "two zero one six"


def test_presigned_https_style_url_and_s3_uri(tmp_path: Path, local_s3: LocalS3) -> None:
    path = encode(speech("eight three"), tmp_path / "clip.mp3", "-c:a", "libmp3lame")
    uri = local_s3.put("calls/clip.mp3", path.read_bytes())
    assert run({"audio_url": local_s3.presigned_get("calls/clip.mp3")})["text"] == "eight three"
    assert run({"audio_url": uri})["text"] == "eight three"


def test_batch_keeps_order_ids_and_isolates_a_corrupt_item(tmp_path: Path, local_s3: LocalS3) -> None:
    first = encode(speech("one two"), tmp_path / "a.opus", "-c:a", "libopus")
    third = encode(speech("six six five"), tmp_path / "c.m4a", "-c:a", "aac")
    uri = local_s3.put("batch/c.m4a", third.read_bytes())
    result = run(
        {
            "audios": [
                {"id": "first", "audio_base64": b64(first)},
                {"id": "broken", "audio_base64": base64.b64encode(b"not audio at all" * 50).decode()},
                {"audio_url": uri},
                {"id": "missing", "audio_url": f"s3://{local_s3.bucket}/batch/nope.mp3"},
            ],
            "timestamps": ["word"],
        }
    )
    assert result["success"] is True
    assert result["failed"] == 2
    items = result["results"]
    assert [item.get("id") for item in items] == ["first", "broken", None, "missing"]
    assert items[0]["text"] == "one two"
    assert items[0]["success"] is True
    assert [w["word"] for w in items[0]["timestamps"]["word"]] == ["one", "two"]
    assert items[1] == {
        "success": False,
        "error": "the file could not be decoded as audio (corrupt, truncated or unsupported format)",
        "error_type": "invalid_audio",
        "id": "broken",
    }
    assert items[2]["text"] == "six six five"
    assert items[3]["error_type"] == "not_found"
    assert result["meta"]["audio_seconds"] == pytest.approx(
        items[0]["duration"] + items[2]["duration"], abs=0.01
    )


def test_srt_and_vtt_outputs_parse_and_carry_the_words(tmp_path: Path) -> None:
    path = encode(speech("five four three two one zero"), tmp_path / "clip.flac")
    result = run({"audio_base64": b64(path), "output_format": ["json", "srt", "vtt"]})
    assert result["text"] == "five four three two one zero"
    assert "timestamps" not in result
    cues = list(srt.parse(result["srt"]))
    assert " ".join(c.content.replace("\n", " ") for c in cues) == result["text"]
    assert cues[0].start.total_seconds() >= 0
    assert cues[-1].end.total_seconds() <= result["duration"]
    assert result["vtt"].startswith("WEBVTT")
    vtt = webvtt.from_string(result["vtt"])
    assert " ".join(c.text.replace("\n", " ") for c in vtt) == result["text"]


def test_text_format_alone(tmp_path: Path) -> None:
    path = encode(speech("seven"), tmp_path / "clip.flac")
    result = run({"audio_base64": b64(path), "output_format": "text"})
    assert result["text"] == "seven"
    assert not {"srt", "vtt", "timestamps"} & set(result)


class AttentionSpy:
    """Wraps the real model's transcribe to record the encoder's attention state at each call."""

    def __init__(self, model: Any, monkeypatch: pytest.MonkeyPatch, fail_in: tuple[str, ...] = ()) -> None:
        self.model = model
        self.calls: list[tuple[str, tuple[int, int], int]] = []
        self.real = model.transcribe
        self.fail_in = fail_in
        monkeypatch.setattr(model, "transcribe", self)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        state = attention.current_attention(self.model)
        self.calls.append(state)
        # Injected: there is no GPU here, so running out of its memory can only be simulated.
        if state[0] in self.fail_in:
            raise torch.OutOfMemoryError("CUDA out of memory (injected by the test)")
        return self.real(*args, **kwargs)


def test_attention_follows_duration_long_short_long(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "FULL_ATTENTION_MAX_SECONDS", 3.0)
    spy = AttentionSpy(asr_model.get_model(), monkeypatch)
    long_clip = encode(speech("one two three four five six seven eight"), tmp_path / "long.flac")
    short_clip = encode(speech("nine"), tmp_path / "short.flac")
    local = (
        config.LOCAL_ATTENTION_MODEL,
        tuple(config.LOCAL_ATTENTION_CONTEXT),
        config.LOCAL_SUBSAMPLING_CHUNKING_FACTOR,
    )
    for clip, words, expected in [
        (long_clip, "one two three four five six seven eight", "local"),
        (short_clip, "nine", "full"),
        (long_clip, "one two three four five six seven eight", "local"),
    ]:
        result = run({"audio_base64": b64(clip)})
        assert result["text"] == words
        assert result["meta"]["attention"] == expected
        # After every job the model is back in full attention with unlimited context.
        assert attention.current_attention(spy.model)[:2] == ("rel_pos", (-1, -1))
    assert [call[:2] for call in spy.calls] == [local[:2], ("rel_pos", (-1, -1)), local[:2]]
    assert spy.calls[0][2] == spy.calls[2][2] == local[2]


def test_out_of_memory_falls_back_to_local_then_windows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = encode(speech("two four six eight"), tmp_path / "clip.flac")
    spy = AttentionSpy(asr_model.get_model(), monkeypatch, fail_in=("rel_pos",))
    result = run({"audio_base64": b64(clip)})
    assert result["text"] == "two four six eight"
    assert result["meta"]["attention"] == "local"
    assert result["meta"]["fallbacks"] == ["full: out of GPU memory"]
    assert [call[0] for call in spy.calls] == ["rel_pos", "rel_pos_local_attn"]

    spy.fail_in = ("rel_pos", "rel_pos_local_attn")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(config, "FALLBACK_WINDOW_SECONDS", 1.0)
        result = run({"audio_base64": b64(clip)})
    assert result == {
        "success": False,
        "error": "the audio did not fit the GPU memory even in windows; try a larger GPU",
        "error_type": "out_of_memory",
    }
    assert attention.current_attention(spy.model)[:2] == ("rel_pos", (-1, -1))


def test_unrecoverable_gpu_error_asks_for_a_new_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = encode(speech("one"), tmp_path / "clip.flac")
    model = asr_model.get_model()

    def broken(*args: Any, **kwargs: Any) -> Any:
        # Injected: a real CUDA fault cannot happen on this CPU-only machine.
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setattr(model, "transcribe", broken)
    result = run({"audio_base64": b64(clip)})
    assert result["error_type"] == "gpu_failure"
    assert result["refresh_worker"] is True
    assert "illegal memory" not in result["error"]


def digit_recording(utterances: list[str], gap_seconds: float) -> np.ndarray:
    """Utterances spoken one after another with a pause between them."""
    gap = np.zeros(int(gap_seconds * RATE), dtype=np.float32)
    parts = [np.concatenate([synth.synthesize(u, voice=VOICE), gap]) for u in utterances]
    return np.concatenate([gap, *parts])


def test_audio_longer_than_local_attention_is_windowed_without_losing_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(7)
    utterances = [" ".join(rng.choice(synth.DIGIT_WORDS, size=3)) for _ in range(12)]
    recording = digit_recording(utterances, gap_seconds=0.7)
    duration = recording.size / RATE
    monkeypatch.setattr(config, "FULL_ATTENTION_MAX_SECONDS", 4.0)
    monkeypatch.setattr(config, "LOCAL_ATTENTION_MAX_SECONDS", 8.0)
    monkeypatch.setattr(config, "WINDOW_SECONDS", 8.0)
    monkeypatch.setattr(config, "WINDOW_OVERLAP_SECONDS", 3.0)
    path = tmp_path / "long.wav"
    synth.write_wav(path, recording)
    result = run({"audio_base64": b64(path), "timestamps": True, "output_format": ["json", "srt"]})
    assert result["meta"]["attention"] == "windowed"
    assert result["meta"]["windows"] >= duration // 8
    truth = " ".join(utterances).split()
    assert result["text"].split() == truth
    assert [w["word"] for w in result["timestamps"]["word"]] == truth
    starts = [w["start"] for w in result["timestamps"]["word"]]
    assert starts == sorted(starts)
    assert starts[-1] < duration
    assert " ".join(c.content.replace("\n", " ") for c in srt.parse(result["srt"])) == " ".join(truth)


def test_oversize_result_without_output_url_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "MAX_RESULT_BYTES", 200)
    path = encode(speech("one two three"), tmp_path / "clip.flac")
    result = run({"audio_base64": b64(path), "timestamps": True})
    assert result["error_type"] == "result_too_large"
    assert "output_url" in result["error"]


def test_model_that_cannot_load_fails_the_job_and_the_next_job_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = encode(speech("zero"), tmp_path / "clip.flac")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(config, "PARAKEET_MODEL", str(tmp_path / "missing.nemo"))
        result = run({"audio_base64": b64(clip)})
    assert result["error_type"] == "model_load_failed"
    assert result["error"] == "the file of the model 'missing' does not exist on this worker"
    assert run({"audio_base64": b64(clip)})["text"] == "zero"


def test_a_model_that_cannot_load_is_named_by_its_id_not_the_default_or_a_path(
    tmp_path: Path, two_models: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = encode(speech("zero"), tmp_path / "clip.flac")
    broken = tmp_path / "models" / "parakeet-broken.nemo"
    broken.parent.mkdir()
    broken.write_bytes(b"not a nemo archive")
    missing = tmp_path / "models" / "parakeet-missing.nemo"
    monkeypatch.setattr(config, "PARAKEET_MODELS", (*two_models, str(broken), str(missing)))
    for model, message in [
        ("parakeet-broken", "could not load the model 'parakeet-broken' ("),
        ("parakeet-missing", "the file of the model 'parakeet-missing' does not exist on this worker"),
    ]:
        result = run({"audio_base64": b64(clip), "model": model})
        assert result["error_type"] == "model_load_failed"
        assert result["error"].startswith(message), result["error"]
        assert "PARAKEET_MODEL" not in result["error"]
        assert str(tmp_path) not in result["error"]
    assert run({"audio_base64": b64(clip)})["text"] == "zero"  # the default model still serves


def test_a_first_jobs_model_load_shows_as_load_and_the_next_job_pays_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sample = config.REPO_ROOT / "tests" / "fixtures" / "sample-digits.ogg"
    monkeypatch.setattr(asr_model, "_models", OrderedDict())  # this process's models, given back after
    first = run({"audio_base64": b64(sample)})["meta"]["processing_seconds"]
    second = run({"audio_base64": b64(sample)})["meta"]["processing_seconds"]
    # Restoring even the bundled model takes a tenth of a second or more; finding it loaded, far less.
    assert first["load"] > 0.05
    assert second["load"] < first["load"] / 5
    for stages in (first, second):
        parts = (
            stages["fetch"] + stages["convert"] + stages["load"] + stages["transcribe"] + stages["diarize"]
        )
        assert parts <= stages["total"] + 0.003
