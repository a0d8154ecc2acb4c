"""utils/audio.py against the real ffmpeg binary on files that ffmpeg itself encodes here."""

import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

import config
from utils import audio
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
    samples = audio.decode(path)
    assert samples.dtype == np.float32
    assert samples.ndim == 1
    # Lossy encoders pad a few ms; a wrong sample rate would be off by 2.75x.
    assert abs(samples.size / config.SAMPLE_RATE - 2.0) < 0.08
    assert abs(dominant_frequencies(samples)[0] - 440) < 5
    assert 0.1 < np.abs(samples).max() <= 1.0


@pytest.mark.parametrize("rate", [8_000, 22_050, 48_000])
def test_other_sample_rates_are_resampled(tmp_path: Path, rate: int) -> None:
    samples = audio.decode(tone(tmp_path / "tone.wav", 1000, 1.5, rate))
    assert abs(samples.size - 1.5 * config.SAMPLE_RATE) <= 2
    assert abs(dominant_frequencies(samples)[0] - 1000) < 5


def test_stereo_is_mixed_so_both_channels_are_heard(tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    ffmpeg(
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=1",
        "-f", "lavfi", "-i", "sine=frequency=1320:sample_rate=44100:duration=1",
        "-filter_complex", "[0:a][1:a]join=inputs=2:channel_layout=stereo", str(path),
    )  # fmt: skip
    samples = audio.decode(path)
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
    samples = audio.decode(path)
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
        audio.decode(path)


def test_silence_decodes_to_quiet_samples(tmp_path: Path) -> None:
    path = tmp_path / "silence.wav"
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "1", str(path))
    samples = audio.decode(path)
    assert samples.size == config.SAMPLE_RATE
    assert np.abs(samples).max() == 0


def test_empty_file_is_empty_audio(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp3"
    path.write_bytes(b"")
    with pytest.raises(EmptyAudioError):
        audio.decode(path)


def test_header_only_wav_is_empty_audio(tmp_path: Path) -> None:
    path = tmp_path / "no-frames.wav"
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(16_000)
    with pytest.raises(EmptyAudioError):
        audio.decode(path)


@pytest.mark.parametrize(
    "content",
    [b"this is plain text, not audio\n" * 20, bytes(range(256)) * 40, b"%PDF-1.4\n" + b"\x00" * 2000],
)
def test_non_audio_bytes_are_invalid_audio(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "input.bin"
    path.write_bytes(content)
    with pytest.raises(AudioDecodeError) as raised:
        audio.decode(path)
    assert raised.value.error_type == "invalid_audio"


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
        audio.decode(path)
    assert raised.value.error_type == "invalid_audio"


def test_audio_longer_than_the_limit_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "MAX_AUDIO_SECONDS", 2.0)
    with pytest.raises(AudioTooLongError):
        audio.decode(tone(tmp_path / "long.flac", 440, 5.0, 16_000))
    # Exactly at the limit is accepted.
    assert audio.decode(tone(tmp_path / "ok.flac", 440, 2.0, 16_000)).size == 2 * config.SAMPLE_RATE


def test_a_hung_ffmpeg_is_killed_at_the_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A stand-in binary that never finishes: a real ffmpeg cannot be made to hang on purpose quickly.
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\nexec sleep 30\n")
    fake.chmod(0o755)
    monkeypatch.setattr(config, "FFMPEG_BINARY", str(fake))
    monkeypatch.setattr(config, "FFMPEG_TIMEOUT_SECONDS", 0.5)
    path = tone(tmp_path / "tone.wav", 440, 1.0, 16_000)
    with pytest.raises(AudioTimeoutError):
        audio.decode(path)


def test_truncated_mp3_decodes_what_is_there(tmp_path: Path) -> None:
    path = tone(tmp_path / "tone.mp3", 440, 4.0, 44_100)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    samples = audio.decode(path)
    assert 1.5 < samples.size / config.SAMPLE_RATE < 2.5
