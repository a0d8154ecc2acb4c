"""Shapes word timestamps into subtitle cues and writes them as SRT or WebVTT.

Pure text work: no audio, no model. Cue shaping rules, in priority order:
1. A cue ends after a sentence end (a word ending in . ? ! … before any closing quote or bracket)
   and before a pause of at least `pause_seconds` between two words.
2. A cue never lasts longer than `max_cue_seconds` and never needs more than `max_lines` lines of at
   most `max_line_chars` characters. When the next word would break a limit, the cue ends after its
   last clause mark (, ; :) in its second half if the rest still fits with that word, else before it.
   A single word always gets a cue (and a line) of its own, however long: words are never split.
3. Lines are balanced: the narrowest width that needs no more lines than greedy wrapping at
   `max_line_chars`, so two lines come out of similar length instead of a full line and a stub.
"""

import html
from dataclasses import dataclass

import config
from utils.asr.records import CLOSERS, Word, ends_sentence

_CLAUSE_END = (",", ";", ":")


@dataclass(frozen=True)
class Cue:
    """One subtitle cue: seconds on screen and the lines it shows."""

    start: float
    end: float
    lines: tuple[str, ...]


def _wrap(words: list[str], width: int) -> list[str]:
    """Greedy wrap: fills each line up to `width`; a longer word takes a line of its own."""
    lines: list[str] = []
    for word in words:
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return lines


def _balanced(words: list[str], width: int) -> tuple[str, ...]:
    """Wraps `words` in as few lines as greedy wrapping at `width`, with the shortest longest line."""
    count = len(_wrap(words, width))
    return next(tuple(lines) for w in range(1, width + 1) if len(lines := _wrap(words, w)) <= count)


def shape_cues(
    words: list[Word],
    max_line_chars: int | None = None,
    max_lines: int | None = None,
    max_cue_seconds: float | None = None,
    pause_seconds: float | None = None,
) -> list[Cue]:
    """Groups timed words into subtitle cues (rules in the module docstring).

    Args:
        words: Timed words in spoken order.
            Whitespace inside a word is collapsed; empty words are dropped.
        max_line_chars: Characters per line; defaults to `config.SUBTITLE_MAX_LINE_CHARS`.
        max_lines: Lines per cue; defaults to `config.SUBTITLE_MAX_LINES`.
        max_cue_seconds: Longest cue; defaults to `config.SUBTITLE_MAX_CUE_SECONDS`.
        pause_seconds: Shortest silence that ends a cue; defaults to `config.SUBTITLE_PAUSE_SECONDS`.

    Returns:
        Cues in order, each from its first word's start to its last word's end, an end cut back to
        the next cue's start where word times overlap, so cues never overlap.

    Raises:
        ValueError: When a limit is not positive.
    """
    max_line_chars = config.SUBTITLE_MAX_LINE_CHARS if max_line_chars is None else max_line_chars
    max_lines = config.SUBTITLE_MAX_LINES if max_lines is None else max_lines
    max_cue_seconds = config.SUBTITLE_MAX_CUE_SECONDS if max_cue_seconds is None else max_cue_seconds
    pause_seconds = config.SUBTITLE_PAUSE_SECONDS if pause_seconds is None else pause_seconds
    if min(max_line_chars, max_lines, max_cue_seconds, pause_seconds) <= 0:
        raise ValueError("subtitle limits must be positive")

    def fits(group: list[Word]) -> bool:
        duration = group[-1].end - group[0].start
        return (
            duration <= max_cue_seconds and len(_wrap([w.word for w in group], max_line_chars)) <= max_lines
        )

    groups: list[list[Word]] = []
    current: list[Word] = []
    for item in words:
        word = Word(" ".join(item.word.split()), item.start, item.end)
        if not word.word:
            continue
        if current and (ends_sentence(current[-1].word) or word.start - current[-1].end >= pause_seconds):
            groups.append(current)
            current = []
        if current and not fits([*current, word]):
            # The latest clause mark in the cue's second half whose remainder still fits, else here.
            cut = next(
                (
                    k
                    for k in range(len(current) - 1, len(current) // 2, -1)
                    if current[k - 1].word.rstrip(CLOSERS).endswith(_CLAUSE_END)
                    and fits([*current[k:], word])
                ),
                len(current),
            )
            groups.append(current[:cut])
            current = current[cut:]
        current.append(word)
    if current:
        groups.append(current)

    cues = []
    for i, group in enumerate(groups):
        start, end = group[0].start, group[-1].end
        if i + 1 < len(groups):
            end = min(end, groups[i + 1][0].start)
        cues.append(Cue(start, max(start, end), _balanced([w.word for w in group], max_line_chars)))
    return cues


def _timestamp(seconds: float, separator: str) -> str:
    """Formats seconds as `HH:MM:SS<separator>mmm`; hours take more digits when they need them."""
    ms = max(0, round(seconds * 1000))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{ms:03d}"


def to_srt(cues: list[Cue]) -> str:
    """Writes cues as SubRip (SRT).

    Args:
        cues: Cues from `shape_cues`.

    Returns:
        Numbered blocks separated by a blank line; "" for no cues. An arrow "-->" inside text, which
        would read as a timing line, becomes "->".
    """
    return "".join(
        f"{i}\n{_timestamp(cue.start, ',')} --> {_timestamp(cue.end, ',')}\n"
        + "".join(f"{line.replace('-->', '->')}\n" for line in cue.lines)
        + "\n"
        for i, cue in enumerate(cues, start=1)
    )


def to_vtt(cues: list[Cue]) -> str:
    """Writes cues as WebVTT.

    Args:
        cues: Cues from `shape_cues`.

    Returns:
        The `WEBVTT` header and one block per cue, text escaped per the spec (`&amp;`, `&lt;`,
        `&gt;`, which also keeps "-->" out of cue text); just the header for no cues.
    """
    blocks = "".join(
        f"\n{_timestamp(cue.start, '.')} --> {_timestamp(cue.end, '.')}\n"
        + "".join(f"{html.escape(line, quote=False)}\n" for line in cue.lines)
        for cue in cues
    )
    return f"WEBVTT\n{blocks}"
