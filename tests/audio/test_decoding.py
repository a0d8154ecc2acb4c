"""Decoding to 16 kHz mono with the real ffmpeg (`utils.audio.decoding`): encodings, rates, channels, video,
empty and hostile files, limits; and odd audio through the handler: downmix, polarity, short clips,
late starts."""

import os
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

import config
import handler
from tests.support.media import b64, channels_file, one_hertz_wav, speech
from utils.audio import decoding
from utils.errors import (
    AudioDecodeError,
    AudioTimeoutError,
    AudioTooLongError,
    EmptyAudioError,
    NoAudioStreamError,
)


def ffmpeg(*args: str) -> None:
    """Runs ffmpeg quietly, failing the test on error."""
    subprocess.run(["ffmpeg", "-nostdin", "-y", "-loglevel", "error", *args], check=True)


def tone(path: Path, frequency: float, seconds: float, rate: int = 44_100, *codec: str) -> Path:
    """Encodes a sine tone with ffmpeg's own generator."""
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency={frequency}:sample_rate={rate}:duration={seconds}",
        *codec,
        str(path),
    )
    return path


def dominant_frequencies(samples: np.ndarray, count: int = 1) -> list[float]:
    """The strongest frequencies (Hz) of a 16 kHz signal, strongest first."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    bins = np.fft.rfftfreq(samples.size, 1 / config.SAMPLE_RATE)
    peaks: list[float] = []
    for index in np.argsort(spectrum)[::-1]:
        if all(abs(bins[index] - p) > 20 for p in peaks):
            peaks.append(float(bins[index]))
        if len(peaks) == count:
            break
    return peaks


@pytest.mark.parametrize(
    ("name", "codec"),
    [
        ("tone.mp3", ("-c:a", "libmp3lame")),
        ("tone.opus", ("-c:a", "libopus")),
        ("tone.m4a", ("-c:a", "aac")),
        ("tone.flac", ()),
        ("tone.wav", ()),
        ("tone.ogg", ("-c:a", "libvorbis")),
    ],
)
def test_encodings_decode_to_16k_mono_with_right_pitch_and_length(
    tmp_path: Path, name: str, codec: tuple
) -> None:
    path = tone(tmp_path / name, 440, 2.0, 44_100, *codec)
    samples = decoding.decode(path)
    assert samples.dtype == np.float32
    assert samples.ndim == 1
    # Lossy encoders pad a few ms; a wrong sample rate would be off by 2.75x.
    assert abs(samples.size / config.SAMPLE_RATE - 2.0) < 0.08
    assert abs(dominant_frequencies(samples)[0] - 440) < 5
    assert 0.1 < np.abs(samples).max() <= 1.0


@pytest.mark.parametrize("rate", [8_000, 22_050, 48_000])
def test_other_sample_rates_are_resampled(tmp_path: Path, rate: int) -> None:
    samples = decoding.decode(tone(tmp_path / "tone.wav", 1000, 1.5, rate))
    assert abs(samples.size - 1.5 * config.SAMPLE_RATE) <= 2
    assert abs(dominant_frequencies(samples)[0] - 1000) < 5


def test_stereo_is_mixed_so_both_channels_are_heard(tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    ffmpeg(
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=1",
        "-f", "lavfi", "-i", "sine=frequency=1320:sample_rate=44100:duration=1",
        "-filter_complex", "[0:a][1:a]join=inputs=2:channel_layout=stereo", str(path),
    )  # fmt: skip
    samples = decoding.decode(path)
    assert sorted(round(f / 10) * 10 for f in dominant_frequencies(samples, 2)) == [440, 1320]


def test_video_with_audio_track_uses_the_first_audio_stream(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc=duration=2:size=64x64:rate=10",
        "-f", "lavfi", "-i", "sine=frequency=600:sample_rate=48000:duration=2",
        "-f", "lavfi", "-i", "sine=frequency=2000:sample_rate=48000:duration=2",
        "-map", "0:v", "-map", "1:a", "-map", "2:a",
        "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path),
    )  # fmt: skip
    samples = decoding.decode(path)
    assert abs(samples.size / config.SAMPLE_RATE - 2.0) < 0.1
    assert abs(dominant_frequencies(samples)[0] - 600) < 5
    spectrum = np.abs(np.fft.rfft(samples))
    bins = np.fft.rfftfreq(samples.size, 1 / config.SAMPLE_RATE)
    assert spectrum[np.abs(bins - 2000) < 10].max() < 0.01 * spectrum.max(), "second audio stream leaked in"


def test_video_without_audio_is_no_audio_stream(tmp_path: Path) -> None:
    path = tmp_path / "silent-video.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc=duration=1:size=64x64:rate=10",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        str(path),
    )
    with pytest.raises(NoAudioStreamError):
        decoding.decode(path)


def test_silence_decodes_to_quiet_samples(tmp_path: Path) -> None:
    path = tmp_path / "silence.wav"
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "1", str(path))
    samples = decoding.decode(path)
    assert samples.size == config.SAMPLE_RATE
    assert np.abs(samples).max() == 0


def test_empty_file_is_empty_audio(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp3"
    path.write_bytes(b"")
    with pytest.raises(EmptyAudioError):
        decoding.decode(path)


def test_header_only_wav_is_empty_audio(tmp_path: Path) -> None:
    path = tmp_path / "no-frames.wav"
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(16_000)
    with pytest.raises(EmptyAudioError):
        decoding.decode(path)


@pytest.mark.parametrize(
    "content",
    [b"this is plain text, not audio\n" * 20, bytes(range(256)) * 40, b"%PDF-1.4\n" + b"\x00" * 2000],
)
def test_non_audio_bytes_are_invalid_audio(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "input.bin"
    path.write_bytes(content)
    with pytest.raises(AudioDecodeError) as raised:
        decoding.decode(path)
    assert raised.value.error_type == "invalid_audio"
    # ffmpeg's complaint is logged, but never the job's temporary path.
    assert "ffmpeg exited" in caplog.text
    assert str(tmp_path) not in caplog.text


@pytest.mark.parametrize(
    "playlist",
    [
        "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n",
        "#EXTM3U\n#EXTINF:10,\nhttp://127.0.0.1:9/secret.mp3\n",
        "ffconcat version 1.0\nfile '/etc/passwd'\n",
        "v=0\no=- 0 0 IN IP4 127.0.0.1\ns=x\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 9 RTP/AVP 0\n",
    ],
    ids=["hls-file", "hls-http", "ffconcat", "sdp"],
)
def test_playlists_are_refused_without_being_followed(tmp_path: Path, playlist: str) -> None:
    path = tmp_path / "input.m3u8"
    path.write_text(playlist)
    with pytest.raises(AudioDecodeError) as raised:
        decoding.decode(path)
    assert raised.value.error_type == "invalid_audio"


def test_audio_longer_than_the_limit_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "MAX_AUDIO_SECONDS", 2.0)
    with pytest.raises(AudioTooLongError):
        decoding.decode(tone(tmp_path / "long.flac", 440, 5.0, 16_000))
    # Exactly at the limit is accepted.
    assert decoding.decode(tone(tmp_path / "ok.flac", 440, 2.0, 16_000)).size == 2 * config.SAMPLE_RATE


def test_a_hung_ffmpeg_is_killed_at_the_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A stand-in binary that never finishes: a real ffmpeg cannot be made to hang on purpose quickly.
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\nexec sleep 30\n")
    fake.chmod(0o755)
    monkeypatch.setattr(config, "FFMPEG_BINARY", str(fake))
    monkeypatch.setattr(config, "FFMPEG_TIMEOUT_SECONDS", 0.5)
    path = tone(tmp_path / "tone.wav", 440, 1.0, 16_000)
    with pytest.raises(AudioTimeoutError):
        decoding.decode(path)


def test_truncated_mp3_decodes_what_is_there(tmp_path: Path) -> None:
    path = tone(tmp_path / "tone.mp3", 440, 4.0, 44_100)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    samples = decoding.decode(path)
    assert 1.5 < samples.size / config.SAMPLE_RATE < 2.5


WORDS = "four one seven"


def transcribe(path: Path, **fields: object) -> dict:
    """The handler's answer for one file."""
    return handler.handler({"id": path.stem, "input": {"audio_base64": b64(path), **fields}})


@pytest.mark.parametrize(
    ("name", "count", "speaking", "layout"),
    [
        ("stereo-right.wav", 2, 1, ()),
        ("3ch-last.wav", 3, 2, ()),
        ("5.1-lfe.wav", 6, 3, ("-channel_layout", "5.1")),
        ("7.1-lfe.flac", 8, 3, ("-channel_layout", "7.1")),
        ("8ch-no-layout-4th.wav", 8, 3, ()),
        ("8ch-no-layout-last.wav", 8, 7, ()),
    ],
)
def test_speech_on_any_one_channel_survives_the_downmix(
    name: str, count: int, speaking: int, layout: tuple[str, ...], tmp_path: Path, job_root: Path
) -> None:
    voice = speech(WORDS)
    tracks = [voice if channel == speaking else np.zeros_like(voice) for channel in range(count)]
    clip = channels_file(tracks, tmp_path / name, *layout)
    assert decoding.probe(clip).channels == count
    result = transcribe(clip)
    assert result["success"] is True, result
    assert result["text"] == WORDS


def test_a_channel_in_opposite_polarity_does_not_cancel_the_speech(tmp_path: Path, job_root: Path) -> None:
    voice = speech(WORDS)
    clip = channels_file([voice, -voice], tmp_path / "inverted.flac")
    result = transcribe(clip)
    assert result["success"] is True, result
    assert result["text"] == WORDS


def test_two_voices_on_two_channels_are_both_heard(tmp_path: Path, job_root: Path) -> None:
    first, second = speech("four one"), speech("seven two")
    silence = np.zeros_like(first)
    left = np.concatenate([first, np.zeros_like(second)])
    right = np.concatenate([silence, second])
    result = transcribe(channels_file([left, right], tmp_path / "call.wav"))
    assert result["text"] == "four one seven two"


def test_a_clip_under_a_second_keeps_its_times(tmp_path: Path, job_root: Path) -> None:
    voice = speech("seven")
    onset = int(np.flatnonzero(np.abs(voice) > 0.01)[0])
    short = voice[onset - 800 : onset + 10_000]  # 0.05 s before the word; 0.68 s in all
    padded = np.concatenate([short, np.zeros(2 * config.SAMPLE_RATE, dtype=np.float32)])
    times = []
    for samples, name in ((short, "short.wav"), (padded, "padded.wav")):
        result = transcribe(channels_file([samples], tmp_path / name), timestamps=["word"])
        assert result["text"] == "seven", result
        times.append(result["timestamps"]["word"][0])
    assert times[0]["start"] == times[1]["start"]
    assert times[0]["start"] < 0.2


@pytest.mark.parametrize("container", ["mkv", "mp4"])
def test_times_follow_the_container_when_the_sound_starts_late(
    container: str, tmp_path: Path, job_root: Path
) -> None:
    voice = channels_file([speech(WORDS)], tmp_path / "voice.wav")
    alone = transcribe(voice, timestamps=["word"], output_format=["json", "srt"])
    video = tmp_path / f"late.{container}"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-y", "-loglevel", "error"]
        + ["-f", "lavfi", "-i", "color=size=32x32:rate=5:d=16"]
        + ["-itsoffset", "10", "-i", str(voice), "-map", "0:v", "-map", "1:a", "-c:v", "mpeg4", "-c:a", "aac"]
        + [str(video)],
        check=True,
    )
    late = transcribe(video, timestamps=["word"], output_format=["json", "srt"])
    assert late.get("text") == WORDS, late
    assert 9.9 <= late["meta"]["audio_start_seconds"] <= 10.0
    for moved, original in zip(late["timestamps"]["word"], alone["timestamps"]["word"], strict=True):
        assert moved["start"] - original["start"] == pytest.approx(10.0, abs=0.1)
    assert late["srt"].splitlines()[1].startswith("00:00:10,")
    assert "audio_start_seconds" not in alone["meta"]


def test_a_one_hertz_header_does_not_make_ffmpeg_hold_gigabytes(tmp_path: Path) -> None:
    clip = one_hertz_wav(tmp_path / "one-hertz.wav", hours=1)
    # A fresh interpreter, so the children's peak is this decode's ffmpeg (and ffprobe) alone.
    script = (
        "import resource, sys; from pathlib import Path; from utils.audio import decoding; "
        "samples = decoding.decode(Path(sys.argv[1])); "
        "print(samples.size, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    found = subprocess.run(
        [sys.executable, "-c", script, str(clip)],
        # Such headers are refused unless the operator lowers the floors; the framing holds for any rate.
        env={**os.environ, "MIN_SAMPLE_RATE": "1", "MIN_AUDIO_BYTES_PER_SECOND": "0"},
        cwd=config.REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert found.returncode == 0, found.stderr
    samples, child_peak_kb = map(int, found.stdout.split())
    assert samples == 3600 * config.SAMPLE_RATE
    # Unframed, ffmpeg upsampled 4096-sample packets into 260 MB frames and peaked at about 1.4 GB.
    assert child_peak_kb < 150 * 1024


def test_a_rate_below_the_floor_is_refused_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = one_hertz_wav(tmp_path / "one-hertz.wav", hours=2000 / 3600)  # 4 kB: 2,000 s once decoded
    monkeypatch.setattr(config, "FFMPEG_BINARY", "/nonexistent/ffmpeg")  # decoding would fail otherwise
    message = "the audio's sample rate is 1 Hz; the lowest accepted is 8000 Hz (MIN_SAMPLE_RATE)"
    with pytest.raises(AudioDecodeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        decoding.decode(clip)
    with pytest.raises(AudioDecodeError, match="sample rate is 1 Hz"):
        decoding.decode_small(clip, 10.0)
    tone_8k = tone(tmp_path / "8k.wav", 1000, 1.0, 7_999)
    with pytest.raises(AudioDecodeError, match="sample rate is 7999 Hz"):
        decoding.decode(tone_8k)


def test_a_length_out_of_proportion_to_the_size_is_refused_before_decoding(
    tmp_path: Path, job_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "MIN_SAMPLE_RATE", 1)  # the rate floor lowered: the length still tells
    clip = one_hertz_wav(tmp_path / "one-hertz.wav", hours=2000 / 3600)
    assert clip.stat().st_size < 4100
    monkeypatch.setattr(config, "FFMPEG_BINARY", "/nonexistent/ffmpeg")  # decoding would fail otherwise
    result = handler.handler({"id": "tiny", "input": {"audio_base64": b64(clip)}})
    assert result["error_type"] == "invalid_audio", result
    assert result["error"].startswith("the file declares 2000 s of audio in 4044 bytes")
    with pytest.raises(AudioDecodeError, match="declares 2000 s"):
        decoding.decode(clip)
