"""How to transcribe audio of a given length: full attention, local attention, or windows (pure).

Full attention is quadratic in length: used up to `FULL_ATTENTION_MAX_SECONDS`, and only when its
memory estimate fits the free memory (the GPU's, or the host's on a CPU worker). Local attention is
linear: up to `LOCAL_ATTENTION_MAX_SECONDS`. Longer audio is cut into overlapping windows. Running
out of memory moves an item one step down the same list.
"""

import config

FULL, LOCAL, WINDOWED = "full", "local", "windowed"
PLANS = (FULL, LOCAL, WINDOWED)
# The attention of an item no model call was made for (vad found no speech).
NONE = "none"


def longest_of(plans: list[str]) -> str:
    """The plan that tells how an item of several model calls ran (its channels kept apart): the one
    for the longest audio of those that ran.

    Args:
        plans: Each call's plan, NONE for a channel no call was made for.

    Returns:
        The last of PLANS among them, or NONE when no call was made.
    """
    ran = [plan for plan in plans if plan != NONE]
    return max(ran, key=PLANS.index) if ran else NONE


def next_plan(plan: str) -> str | None:
    """The plan to fall back to when `plan` ran out of memory.

    Args:
        plan: FULL, LOCAL or WINDOWED.

    Returns:
        The next plan, or None after WINDOWED.
    """
    index = PLANS.index(plan) + 1
    return PLANS[index] if index < len(PLANS) else None


def full_attention_fits(duration_seconds: float, frame_seconds: float, free_bytes: int | None) -> bool:
    """Estimates whether full attention over this much audio fits the free memory.

    Args:
        duration_seconds: Length of the audio.
        frame_seconds: Length of one encoder frame (80 ms for Parakeet).
        free_bytes: Free memory (GPU, or host on a CPU worker), or None when unknown.

    Returns:
        True when the quadratic estimate fits the free memory, or when that is unknown.
    """
    if free_bytes is None:
        return True
    frames = duration_seconds / frame_seconds
    budget = free_bytes * config.GPU_MEMORY_SAFETY_FRACTION
    return config.FULL_ATTENTION_BYTES_PER_FRAME_SQUARED * frames**2 <= budget


def plan_for(duration_seconds: float, frame_seconds: float, free_bytes: int | None) -> str:
    """Chooses how to transcribe audio of this length.

    Args:
        duration_seconds: Length of the audio.
        frame_seconds: Length of one encoder frame.
        free_bytes: Free memory (GPU, or host on a CPU worker), or None when unknown.

    Returns:
        FULL, LOCAL or WINDOWED.
    """
    if duration_seconds <= config.FULL_ATTENTION_MAX_SECONDS and full_attention_fits(
        duration_seconds, frame_seconds, free_bytes
    ):
        return FULL
    if duration_seconds <= config.LOCAL_ATTENTION_MAX_SECONDS:
        return LOCAL
    return WINDOWED
