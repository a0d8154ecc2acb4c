"""utils/transcriber.py: plan choice by length and GPU memory, and batch grouping."""

import pytest

import config
from utils import transcriber


@pytest.fixture
def model() -> object:
    return transcriber.get_model()


def test_plans_follow_the_length_thresholds(model: object) -> None:
    assert transcriber.plan_for(60, model) == transcriber.FULL
    assert transcriber.plan_for(config.FULL_ATTENTION_MAX_SECONDS, model) == transcriber.FULL
    assert transcriber.plan_for(config.FULL_ATTENTION_MAX_SECONDS + 1, model) == transcriber.LOCAL
    assert transcriber.plan_for(config.LOCAL_ATTENTION_MAX_SECONDS, model) == transcriber.LOCAL
    assert transcriber.plan_for(config.LOCAL_ATTENTION_MAX_SECONDS + 1, model) == transcriber.WINDOWED


@pytest.mark.parametrize(
    ("free_gib", "minutes", "plan"),
    [
        (80, 20, transcriber.FULL),
        (80, 23, transcriber.FULL),
        (24, 20, transcriber.LOCAL),
        (24, 10, transcriber.FULL),
    ],
)
def test_full_attention_only_when_it_fits_the_free_gpu_memory(
    model: object, monkeypatch: pytest.MonkeyPatch, free_gib: float, minutes: float, plan: str
) -> None:
    # Injected: there is no GPU here, so its free memory is what the test says it is.
    monkeypatch.setattr(transcriber, "_free_gpu_bytes", lambda: int(free_gib * 2**30))
    assert transcriber.plan_for(minutes * 60, model) == plan


def test_batches_are_bounded_in_count_and_total_audio(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "BATCH_SIZE", 3)
    monkeypatch.setattr(config, "BATCH_MAX_AUDIO_SECONDS", 100)
    durations = [5, 5, 5, 5, 30, 40, 90]
    batches = transcriber._batches(list(range(len(durations))), durations)
    assert [i for batch in batches for i in batch] == list(range(len(durations)))
    assert all(len(batch) <= 3 for batch in batches)
    # Padding makes a batch cost its longest item times its size.
    assert all(max(durations[i] for i in batch) * len(batch) <= 100 for batch in batches if len(batch) > 1)
    assert batches == [[0, 1, 2], [3, 4], [5], [6]]
