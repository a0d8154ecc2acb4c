"""Grouping items into model calls: sorted by length, bounded in count and in padded audio (pure)."""

import config


def batches(
    indices: list[int], durations: list[float], max_audio_seconds: float | None = None
) -> list[list[int]]:
    """Splits length-sorted item indices into batches bounded in count and in total audio.

    Padding makes a batch cost its longest item times its size, so that product is what is bounded.

    Args:
        indices: Item indices, sorted by duration.
        durations: Seconds of audio of every item, by index.
        max_audio_seconds: A tighter bound on a batch's audio than `BATCH_MAX_AUDIO_SECONDS` (a CPU's).

    Returns:
        The batches, in order; every index appears in exactly one.
    """
    bound = config.BATCH_MAX_AUDIO_SECONDS
    if max_audio_seconds is not None:
        bound = min(bound, max_audio_seconds)
    result: list[list[int]] = []
    for index in indices:
        batch = result[-1] if result else None
        longest = max([durations[i] for i in batch] + [durations[index]]) if batch else 0.0
        fits = batch is not None and len(batch) < config.BATCH_SIZE
        if fits and longest * (len(batch) + 1) <= bound:
            batch.append(index)
        else:
            result.append([index])
    return result
