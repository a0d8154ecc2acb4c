"""Model calls bounded in item count and total audio (`utils.asr.batching`)."""

import pytest

import config
from utils.asr.batching import batches


def test_batches_are_bounded_in_count_and_total_audio(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "BATCH_SIZE", 3)
    monkeypatch.setattr(config, "BATCH_MAX_AUDIO_SECONDS", 100)
    durations = [5, 5, 5, 5, 30, 40, 90]
    grouped = batches(list(range(len(durations))), durations)
    assert [i for batch in grouped for i in batch] == list(range(len(durations)))
    assert all(len(batch) <= 3 for batch in grouped)
    # Padding makes a batch cost its longest item times its size.
    assert all(max(durations[i] for i in batch) * len(batch) <= 100 for batch in grouped if len(batch) > 1)
    assert grouped == [[0, 1, 2], [3, 4], [5], [6]]


def test_a_tighter_bound_is_taken_when_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "BATCH_SIZE", 8)
    durations = [5, 5, 5, 5, 30, 40]
    assert batches(list(range(len(durations))), durations, 12) == [[0, 1], [2, 3], [4], [5]]
