"""Voice-activity detection (`vad: true`) with the real Silero VAD and the bundled models: only speech
reaches the model, times stay on the file's timeline, and silence or noise gives no words."""

import base64
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import srt

import config
import handler
from tests.support.conversations import conversation
from tests.support.media import channels_file, encode, speech
from utils.asr import vad

RATE = config.SAMPLE_RATE


def sparse(phrases: list[str], gap_seconds: float, lead: float = 4.0) -> tuple[np.ndarray, list[float]]:
    """The phrases spoken with long silences around them; returns the samples and each phrase's onset."""
    rng = np.random.default_rng(0)
    parts, onsets, at = [np.zeros(int(lead * RATE), dtype=np.float32)], [], int(lead * RATE)
    for phrase in phrases:
        voice = speech(phrase)
        onsets.append(at / RATE)
        parts += [voice, np.zeros(int(gap_seconds * RATE), dtype=np.float32)]
        at += voice.size + int(gap_seconds * RATE)
    samples = np.concatenate(parts)
    return (samples + 0.002 * rng.standard_normal(samples.size)).astype(np.float32), onsets


def run(samples: np.ndarray, path: Path, **fields: Any) -> dict[str, Any]:
    clip = base64.b64encode(encode(samples, path.with_suffix(".flac")).read_bytes()).decode()
    return handler.handler({"id": path.stem, "input": {"audio_base64": clip, **fields}})


def test_loading_the_detector_leaves_torchs_thread_count_alone() -> None:
    # silero_vad sets one torch thread for the whole process when imported: every model call would then
    # run on one core. A fresh interpreter, since this one may have imported it already.
    script = (
        "import torch; torch.set_num_threads(2); from utils.asr import vad; vad.silero_model(); "
        "print(torch.get_num_threads())"
    )
    found = subprocess.run(
        [sys.executable, "-c", script], cwd=config.REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert found.stdout.split()[-1] == "2"


def test_speech_regions_are_found_padded_and_merged(monkeypatch: pytest.MonkeyPatch) -> None:
    samples, onsets = sparse(["one two three", "four five"], gap_seconds=8.0)
    regions = vad.speech_regions(samples)
    assert len(regions) == 2
    for (start, end), onset in zip(regions, onsets, strict=True):
        assert onset - 0.5 <= start / RATE <= onset + 0.5
        assert end > start
    close, _ = sparse(["one two", "three four"], gap_seconds=0.2)
    assert len(vad.speech_regions(close)) == 2
    monkeypatch.setattr(config, "VAD_MIN_SILENCE_SECONDS", 1.5)  # now the pause is shorter than that
    assert len(vad.speech_regions(close)) == 1


def test_near_silence_is_left_out_before_the_detector_runs() -> None:
    assert vad.sounding_spans(np.zeros(10 * RATE, dtype=np.float32)) == []
    samples = np.zeros(20 * RATE, dtype=np.float32)
    samples[8 * RATE : 9 * RATE] = 0.1  # one loud second
    [(start, end)] = vad.sounding_spans(samples)
    assert 6.95 * RATE <= start <= 7.05 * RATE  # about a second of margin
    assert 10.0 * RATE <= end <= 10.1 * RATE


def test_times_of_the_joined_row_map_back_to_the_original() -> None:
    rows = np.zeros(10 * RATE, dtype=np.float32)
    found = vad.SpeechMap(
        ((2 * RATE, 3 * RATE), (7 * RATE, 9 * RATE)), rows[: int(3.3 * RATE)], (0, int(1.3 * RATE))
    )
    assert found.to_original(0.5) == pytest.approx(2.5)
    assert found.to_original(1.1) == pytest.approx(3.0)  # in the gap: the first region's end
    assert found.to_original(1.8) == pytest.approx(7.5)
    assert found.speech_seconds == pytest.approx(3.0)


def test_only_speech_is_transcribed_and_times_stay_on_the_files_timeline(
    tmp_path: Path, job_root: Path
) -> None:
    phrases = ["one two three", "four five six"]
    samples, onsets = sparse(phrases, gap_seconds=12.0)
    result = run(samples, tmp_path / "sparse", vad=True, timestamps=["word"], output_format=["json", "srt"])
    assert result["success"] is True, result
    assert result["text"] == " ".join(phrases)
    words = result["timestamps"]["word"]
    assert onsets[0] <= words[0]["start"] <= onsets[0] + 0.6
    assert onsets[1] <= words[3]["start"] <= onsets[1] + 0.6
    assert result["meta"]["speech_seconds"] < samples.size / RATE / 4
    cues = list(srt.parse(result["srt"]))
    assert cues[-1].start.total_seconds() >= onsets[1]


@pytest.mark.parametrize("kind", ["silence", "noise"])
def test_audio_without_speech_gives_no_words(tmp_path: Path, job_root: Path, kind: str) -> None:
    rng = np.random.default_rng(3)
    samples = (
        np.zeros(20 * RATE, dtype=np.float32) if kind == "silence" else 0.05 * rng.standard_normal(20 * RATE)
    )
    result = run(samples.astype(np.float32), tmp_path / kind, vad=True, timestamps=True)
    assert result["success"] is True, result
    assert result["text"] == ""
    assert result["timestamps"] == {"segment": [], "word": []}
    assert result["meta"]["speech_seconds"] == 0.0
    assert result["meta"]["attention"] == "none"
    assert result["language"] is None


def test_vad_works_with_batches_channels_and_speakers(tmp_path: Path, job_root: Path) -> None:
    left, _ = sparse(["one two three"], gap_seconds=6.0, lead=1.0)
    right, _ = sparse(["seven eight nine"], gap_seconds=1.0, lead=6.0)
    size = max(left.size, right.size)
    stereo = channels_file(
        [np.pad(left, (0, size - left.size)), np.pad(right, (0, size - right.size))], tmp_path / "call.wav"
    )
    clip = base64.b64encode(stereo.read_bytes()).decode()
    silence = base64.b64encode(
        encode(np.zeros(5 * RATE, dtype=np.float32), tmp_path / "quiet.flac").read_bytes()
    ).decode()
    job = {
        "audios": [{"audio_base64": clip}, {"audio_base64": silence}],
        "vad": True,
        "channels": "separate",
        "timestamps": True,
    }
    result = handler.handler({"id": "batch", "input": job})
    assert result["success"] is True, result
    call, quiet = result["results"]
    assert call["text"] == "one two three seven eight nine"
    assert [word["channel"] for word in call["timestamps"]["word"]] == [0, 0, 0, 1, 1, 1]
    assert call["timestamps"]["word"][3]["start"] >= 6.0
    assert quiet["text"] == ""
    talk, _ = conversation([(0, "one two three four"), (1, "five six seven eight")])
    heard = run(talk, tmp_path / "talk", vad=True, diarize=True, timestamps=["word"])
    whole = run(talk, tmp_path / "whole", diarize=True, timestamps=["word"])
    assert heard["success"] is True, heard
    # The diarizer heard the whole audio either way: the same speakers on the same words.
    assert [w["speaker"] for w in heard["timestamps"]["word"]] == [
        w["speaker"] for w in whole["timestamps"]["word"]
    ]
    assert heard["speakers"] == whole["speakers"]


def test_vad_must_be_a_boolean(job_root: Path) -> None:
    result = handler.handler({"id": "bad", "input": {"audio_base64": "UklGRg==", "vad": "yes"}})
    assert (result["error_type"], result["error"]) == (
        "invalid_input",
        "vad must be true or false, got string",
    )


# --- no_speech_prob for OpenAI's verbose_json ---


def test_segments_over_silence_or_noise_score_high_and_speech_low() -> None:
    samples, onsets = sparse(["one two three", "four five"], gap_seconds=6.0)
    rng = np.random.default_rng(1)
    noise_at = int((onsets[1] - 4.0) * RATE)
    samples[noise_at : noise_at + 2 * RATE] += 0.05 * rng.standard_normal(2 * RATE).astype(np.float32)
    spans = [
        (onsets[0], onsets[0] + 1.0),  # speech
        (onsets[0] - 3.0, onsets[0] - 1.0),  # faint hiss only
        (noise_at / RATE, noise_at / RATE + 2.0),  # hiss, loud enough to be heard
        (onsets[1], onsets[1] + 0.6),  # speech
    ]
    speech_a, silence, hiss, speech_b = vad.no_speech_probabilities(samples, spans)
    assert speech_a < 0.2
    assert speech_b < 0.2
    assert silence > 0.8
    assert hiss > 0.5
    # Digital silence: the detector does not even run.
    assert vad.no_speech_probabilities(np.zeros(4 * RATE, dtype=np.float32), [(1.0, 3.0)]) == [1.0]
    long_span = [(0.0, samples.size / RATE)]  # over many pieces: the most speech-like frame decides
    assert vad.no_speech_probabilities(samples, long_span)[0] == pytest.approx(
        min(speech_a, speech_b), abs=0.05
    )


def test_with_no_speech_scores_each_segment_and_leaves_the_rest() -> None:
    from utils.asr.records import Segment, Timestamps, Transcript

    samples, onsets = sparse(["one two three"], gap_seconds=3.0)
    segments = [Segment("one two three", onsets[0], onsets[0] + 1.2), Segment("ghost", 0.5, 2.0)]
    transcript = Transcript("one two three ghost", "full", Timestamps(segment=segments))
    scored = vad.with_no_speech(transcript, samples).timestamps.segment
    assert [segment.text for segment in scored] == ["one two three", "ghost"]
    assert scored[0].no_speech_prob < 0.2
    assert scored[1].no_speech_prob > 0.8
    empty = Transcript("", "full", Timestamps(segment=[]))
    assert vad.with_no_speech(empty, samples) is empty
