"""TurnDetector: server-VAD turns from real (espeak-ng) speech with pauses, on the session's timeline."""

import functools

import numpy as np
import pytest
import torch

from tools import synth
from utils.asr import vad
from utils.realtime import turns
from utils.realtime.turns import IdleTimeout, SpeechStarted, SpeechStopped, TurnDetector, TurnSettings

RATE = 16_000


def silence(seconds: float) -> np.ndarray:
    """Digital silence."""
    return np.zeros(int(seconds * RATE), dtype=np.float32)


@functools.cache
def utterance(words: str) -> np.ndarray:
    """Spoken words, trimmed to where they are audible (espeak-ng leaves silence around them)."""
    samples = synth.synthesize(words)
    loud = np.flatnonzero(np.abs(samples) > 0.02)
    return samples[loud[0] : loud[-1] + 1].copy()


def ms(samples: int) -> int:
    """Samples → milliseconds."""
    return samples * 1000 // RATE


def two_utterances() -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Two utterances with 1 s of silence before, between and after; their (start, end) in ms."""
    first, second = utterance("one two three four"), utterance("five six seven")
    lead = silence(1.0)
    audio = np.concatenate((lead, first, silence(1.0), second, silence(1.0)))
    first_start = lead.size
    second_start = first_start + first.size + RATE
    spans = [
        (ms(first_start), ms(first_start + first.size)),
        (ms(second_start), ms(second_start + second.size)),
    ]
    return audio, spans


def fed_in_pieces(detector: TurnDetector, audio: np.ndarray, seed: int) -> list:
    """Feeds `audio` in pieces of random, mostly odd sizes; all the events."""
    rng = np.random.default_rng(seed)
    events, position = [], 0
    while position < audio.size:
        size = int(rng.choice([1, 7, 160, 320, 479, 511, 513, 2400, 8001]))
        events += detector.feed(audio[position : position + size])
        position += size
    return events


def test_two_utterances_give_two_turns_at_the_right_times() -> None:
    audio, spans = two_utterances()
    settings = TurnSettings(threshold=0.5, prefix_padding_ms=300, silence_duration_ms=500)
    events = TurnDetector(settings).feed(audio)
    assert [type(event) for event in events] == [SpeechStarted, SpeechStopped] * 2
    for (start, end), started, stopped in zip(spans, events[::2], events[1::2], strict=True):
        # Speech is judged 32 ms at a time; the padding moves the start earlier by exactly its length.
        assert abs(started.audio_start_ms + 300 - start) <= 100
        # The end is where the silence began: within a word's fading tail of the last audible sample.
        assert -250 <= stopped.audio_end_ms - end <= 100


def test_prefix_padding_moves_the_start_and_never_below_zero() -> None:
    speech = utterance("seven eight")
    audio = np.concatenate((silence(0.1), speech, silence(1.0)))
    unpadded = TurnDetector(TurnSettings(prefix_padding_ms=0)).feed(audio)[0]
    padded = TurnDetector(TurnSettings(prefix_padding_ms=300)).feed(audio)[0]
    assert unpadded.audio_start_ms <= 200
    assert padded == SpeechStarted(audio_start_ms=0)
    later = np.concatenate((silence(2.048), audio))  # 64 more windows: the same alignment
    moved = TurnDetector(TurnSettings(prefix_padding_ms=300)).feed(later)[0]
    assert abs(moved.audio_start_ms - (unpadded.audio_start_ms + 2048 - 300)) <= 64


def test_silence_duration_decides_whether_a_pause_ends_the_turn() -> None:
    first, second = utterance("one two"), utterance("three four")
    audio = np.concatenate((silence(0.5), first, silence(0.4), second, silence(1.5)))
    patient = TurnDetector(TurnSettings(silence_duration_ms=800)).feed(audio)
    eager = TurnDetector(TurnSettings(silence_duration_ms=200)).feed(audio)
    assert [type(event) for event in patient] == [SpeechStarted, SpeechStopped]
    assert [type(event) for event in eager] == [SpeechStarted, SpeechStopped] * 2


@pytest.mark.parametrize("kind", ["silence", "white noise", "hum"])
def test_no_turns_without_speech(kind: str) -> None:
    rng = np.random.default_rng(3)
    audio = {
        "silence": silence(6.0),
        "white noise": (rng.standard_normal(6 * RATE) * 0.05).astype(np.float32),
        "hum": (0.1 * np.sin(2 * np.pi * 50 * np.arange(6 * RATE) / RATE)).astype(np.float32),
    }[kind]
    assert TurnDetector(TurnSettings()).feed(audio) == []


def test_events_are_the_same_however_the_audio_is_split() -> None:
    audio, _ = two_utterances()
    settings = TurnSettings(idle_timeout_ms=600)
    whole = TurnDetector(settings).feed(audio)
    assert len(whole) == 5
    for seed in (1, 2):
        assert fed_in_pieces(TurnDetector(settings), audio, seed) == whole


def test_idle_timeout_fires_once_per_stretch_without_speech() -> None:
    speech = utterance("one two three")
    audio = np.concatenate((silence(2.5), speech, silence(3.0)))
    events = TurnDetector(TurnSettings(idle_timeout_ms=1000)).feed(audio)
    assert [type(event) for event in events] == [IdleTimeout, SpeechStarted, SpeechStopped, IdleTimeout]
    assert events[0] == IdleTimeout(at_ms=1000)
    # Counted from where the turn was declared over: its silence plus the timeout.
    stopped, idle = events[2], events[3]
    assert stopped.audio_end_ms + 500 + 1000 <= idle.at_ms <= stopped.audio_end_ms + 500 + 1000 + 64
    assert TurnDetector(TurnSettings()).feed(silence(5.0)) == []


def test_reset_drops_the_turn_in_progress_and_keeps_the_timeline() -> None:
    speech = utterance("five six seven")
    detector = TurnDetector(TurnSettings(prefix_padding_ms=0))
    started = detector.feed(np.concatenate((silence(1.0), speech[: speech.size // 2])))
    assert [type(event) for event in started] == [SpeechStarted]
    detector.reset()
    assert detector.feed(silence(1.5)) == []  # no stop for a turn that was cleared
    again = detector.feed(np.concatenate((speech, silence(1.0))))
    assert [type(event) for event in again] == [SpeechStarted, SpeechStopped]
    elapsed = 1000 + ms(speech.size // 2) + 1500
    assert abs(again[0].audio_start_ms - elapsed) <= 100


def test_probabilities_match_silero_s_own_model() -> None:
    audio, _ = two_utterances()
    count = audio.size // turns.WINDOW
    frames = audio[: count * turns.WINDOW].reshape(count, turns.WINDOW)
    model = vad.silero_model()
    model.reset_states()
    with torch.inference_mode():
        expected = np.array([model(torch.from_numpy(frame.copy())[None], RATE).item() for frame in frames])
    context = np.concatenate((np.zeros((1, 64), np.float32), frames[:-1, -64:]))
    found, _ = turns._probabilities(np.concatenate((context, frames), axis=1), np.zeros((2, 128), np.float32))
    assert np.max(np.abs(found - expected)) < 1e-4
    assert expected.max() > 0.9  # the comparison covered speech
