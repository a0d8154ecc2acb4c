"""Attention plans by length and free memory (`utils.asr.plans`), and their fallbacks."""

import pytest

import config
from utils.asr import model as asr_model
from utils.asr import plans

FRAME_SECONDS = 0.08  # Parakeet's encoder frame: 10 ms window stride x 8 subsampling


def test_plans_follow_the_length_thresholds() -> None:
    assert plans.plan_for(60, FRAME_SECONDS, None) == plans.FULL
    assert plans.plan_for(config.FULL_ATTENTION_MAX_SECONDS, FRAME_SECONDS, None) == plans.FULL
    assert plans.plan_for(config.FULL_ATTENTION_MAX_SECONDS + 1, FRAME_SECONDS, None) == plans.LOCAL
    assert plans.plan_for(config.LOCAL_ATTENTION_MAX_SECONDS, FRAME_SECONDS, None) == plans.LOCAL
    assert plans.plan_for(config.LOCAL_ATTENTION_MAX_SECONDS + 1, FRAME_SECONDS, None) == plans.WINDOWED


@pytest.mark.parametrize(
    ("free_gib", "minutes", "plan"),
    [
        (80, 20, plans.FULL),
        (80, 23, plans.FULL),
        (24, 20, plans.LOCAL),
        (24, 10, plans.FULL),
    ],
)
def test_full_attention_only_when_it_fits_the_free_gpu_memory(
    free_gib: float, minutes: float, plan: str
) -> None:
    assert plans.plan_for(minutes * 60, FRAME_SECONDS, int(free_gib * 2**30)) == plan


def test_fallbacks_go_down_the_plans_and_end() -> None:
    assert plans.next_plan(plans.FULL) == plans.LOCAL
    assert plans.next_plan(plans.LOCAL) == plans.WINDOWED
    assert plans.next_plan(plans.WINDOWED) is None


def test_a_cpu_worker_weighs_full_attention_against_the_hosts_available_memory() -> None:
    assert asr_model.free_memory_bytes() > 0  # read from /proc/meminfo here (no GPU)
    ten_minutes = 600
    assert plans.plan_for(ten_minutes, FRAME_SECONDS, 8 * 2**30) == plans.LOCAL
    assert plans.plan_for(ten_minutes, FRAME_SECONDS, 64 * 2**30) == plans.FULL


def test_an_item_of_several_calls_tells_the_longest_plan_that_ran() -> None:
    assert plans.longest_of([plans.NONE, plans.FULL]) == plans.FULL
    assert plans.longest_of([plans.WINDOWED, plans.FULL, plans.LOCAL]) == plans.WINDOWED
    assert plans.longest_of([plans.LOCAL, plans.NONE]) == plans.LOCAL
    assert plans.longest_of([plans.NONE, plans.NONE]) == plans.NONE
