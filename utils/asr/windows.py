"""Audio longer than one model call: overlapping windows, and stitching their words back together.

Each window is transcribed on its own with word timestamps. Two neighbours share `overlap` seconds; the
seam between them is put in the widest pause inside that overlap (as the first window heard it), so no
word straddles it: words ending before the seam come from the left window, words starting after it
from the right one. Without any pause the seam falls mid-overlap and words are assigned by their centre.
"""

import itertools
from dataclasses import dataclass
from typing import TypeVar

from utils.asr.records import Char, Word

T = TypeVar("T", Word, Char)


@dataclass(frozen=True)
class Window:
    """A slice of the audio, in samples: [start, end)."""

    start: int
    end: int


def plan_windows(total_samples: int, window_samples: int, overlap_samples: int) -> list[Window]:
    """Cuts `total_samples` into windows of at most `window_samples` that overlap by `overlap_samples`.

    Args:
        total_samples: Length of the audio.
        window_samples: Longest window.
        overlap_samples: Shared length of neighbouring windows; less than half a window.

    Returns:
        The windows in order; one window when the audio fits.

    Raises:
        ValueError: The overlap is not smaller than half the window.
    """
    if not 0 <= 2 * overlap_samples < window_samples:
        raise ValueError(f"overlap {overlap_samples} must be under half the window {window_samples}")
    if total_samples <= window_samples:
        return [Window(0, total_samples)]
    step = window_samples - overlap_samples
    count = -(-(total_samples - overlap_samples) // step)  # ceiling division
    return [Window(i * step, min(i * step + window_samples, total_samples)) for i in range(count)]


def _center(word: Word | Char) -> float:
    """A word's midpoint in seconds."""
    return (word.start + word.end) / 2


def find_seam(left_words: list[Word], overlap_start: float, overlap_end: float) -> float:
    """Picks the seam time between two windows: the middle of the widest pause inside the overlap.

    Only the middle half of the overlap is searched, so that words cut at a window's edge (which
    the window may have heard wrongly) are never kept.

    Args:
        left_words: The left window's words, in absolute seconds.
        overlap_start: Where the right window begins (seconds).
        overlap_end: Where the left window ends (seconds).

    Returns:
        The seam time in seconds.
    """
    quarter = (overlap_end - overlap_start) / 4
    low, high = overlap_start + quarter, overlap_end - quarter
    inside = [w for w in left_words if w.end > low and w.start < high]
    points = sorted({low, high, *(t for w in inside for t in (w.start, w.end) if low < t < high)})
    best_gap, seam = 0.0, (low + high) / 2
    for a, b in itertools.pairwise(points):
        if b - a > best_gap and not any(w.start < b and w.end > a for w in inside):
            best_gap, seam = b - a, (a + b) / 2
    return seam


def stitch_words(window_words: list[list[T]], seams: list[float]) -> list[T]:
    """Joins the windows' words at the seams: each word is kept from exactly one window.

    Args:
        window_words: Each window's words (or chars) in absolute seconds, in window order.
        seams: `len(window_words) - 1` seam times in seconds, increasing.

    Returns:
        All words in time order.
    """
    bounds = [float("-inf"), *seams, float("inf")]
    return [
        word
        for words, low, high in zip(window_words, bounds, bounds[1:], strict=False)
        for word in words
        if low <= _center(word) < high
    ]
