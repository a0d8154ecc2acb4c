"""The pure parts of the test-diarizer trainer: the DER its card reports, its targets and its schedule."""

import numpy as np
import pytest

from tools.synth import SAMPLE_RATE
from tools.train_test_diarizer import (
    FRAME_SECONDS,
    Conversation,
    Speaker,
    frame_der,
    frame_targets,
    speaker_id_labels,
)
from tools.training import warmup_cosine_factor

ALICE, BOB = Speaker("en-us", 30, 150), Speaker("en-gb", 70, 150)


def two_turns() -> Conversation:
    """Alice 0-2 s, Bob 1.6-4 s (0.4 s of overlap), then 1 s of silence."""
    return Conversation(np.zeros(5 * SAMPLE_RATE, np.float32), [(0, 0.0, 2.0), (1, 1.6, 4.0)], [ALICE, BOB])


def test_frame_targets_mark_each_speaker_by_frame_centre() -> None:
    targets = frame_targets(two_turns(), round(5 / FRAME_SECONDS))
    assert targets.shape == (62, 4)
    # Frame k is active when its centre, (k + 0.5) * 80 ms, falls inside a turn.
    assert targets[:25, 0].all()
    assert not targets[25:, 0].any()
    assert targets[20:50, 1].all()
    assert not targets[:20, 1].any()
    assert not targets[50:].any()


def test_der_is_zero_for_the_truth_under_any_naming_of_speakers() -> None:
    reference = frame_targets(two_turns(), 62)
    assert frame_der(reference, reference, 3)[0] == 0.0
    assert frame_der(reference, reference[:, [1, 0, 3, 2]], 3)[0] == 0.0


def test_der_counts_missed_confused_and_false_alarm_frames_outside_the_collar() -> None:
    reference = frame_targets(two_turns(), 62)
    errors, scored = frame_der(reference, np.zeros_like(reference), 0)
    assert errors == scored == reference.sum()
    # All speech given to one speaker, best named Bob (who speaks longer): Alice's frames alone are
    # confused, the overlap is half missed.
    one = np.zeros_like(reference)
    one[:, 0] = reference.any(axis=1)
    errors, scored = frame_der(reference, one, 0)
    alice_only, both, bob_only = 20, 5, 25
    assert scored == alice_only + 2 * both + bob_only
    assert errors == alice_only + both
    # A collar leaves the frames around each change out of both counts.
    assert frame_der(reference, one, 2)[1] < scored


def test_speaker_id_labels_name_the_training_speaker_and_skip_silence_and_overlap() -> None:
    labels = speaker_id_labels(two_turns(), 63, {ALICE: 7, BOB: 3})
    assert set(labels[:20]) == {7}
    assert set(labels[20:25]) == {-100}  # both speak
    assert set(labels[25:50]) == {3}
    assert set(labels[50:]) == {-100}  # silence


def test_the_schedule_warms_up_then_decays_to_its_floor() -> None:
    assert warmup_cosine_factor(0, 10, 0.0, 0.1) == pytest.approx(0.1)
    assert warmup_cosine_factor(9, 10, 0.0, 0.1) == pytest.approx(1.0)
    assert warmup_cosine_factor(10, 10, 0.0, 0.1) == pytest.approx(1.0)
    assert warmup_cosine_factor(50, 10, 0.5, 0.1) == pytest.approx(0.55)
    assert warmup_cosine_factor(90, 10, 1.0, 0.1) == pytest.approx(0.1)
    # Past the end (a clock-bounded run) it stays at the floor instead of rising again.
    assert warmup_cosine_factor(99, 10, 1.7, 0.1) == pytest.approx(0.1)
