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

A cue never spans two speakers (or channels): words labelled by the diarizer (`S1`) or by their channel
(`ch0`, or `ch0 S1` for both) start a new cue where the label changes. SRT writes the label before
the cue's text (`S1: …`), counted in the first line's width; WebVTT writes it as a voice tag
(`<v S1>…`).
"""

import dataclasses
import html
from dataclasses import dataclass

import config
from utils.asr.records import CLOSERS, Word, ends_sentence

_CLAUSE_END = (",", ";", ":")


@dataclass(frozen=True)
class Cue:
    """One subtitle cue: seconds on screen, the lines it shows, and who speaks them (None: unlabelled)."""

    start: float
    end: float
    lines: tuple[str, ...]
    speaker: str | None = None


def speaker_label(word: Word) -> str | None:
    """The label a word's cue shows: its speaker, its channel (`ch0`), both (`ch0 S1`), or None.

    Args:
        word: A timed word.

    Returns:
        The label, or None when the word has neither.
    """
    channel = None if word.channel is None else f"ch{word.channel}"
    parts = [part for part in (channel, word.speaker) if part is not None]
    return " ".join(parts) or None


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


def _label_prefix(label: str | None) -> list[str]:
    """The pseudo-word an SRT label takes in the first line (`S1:`), for the width rules."""
    return [] if label is None else [f"{label}:"]


def _lines(words: list[str], width: int, label: str | None) -> tuple[str, ...]:
    """A cue's balanced lines, room left for its label in the first one; the label is not in them."""
    if label is None:
        return _balanced(words, width)
    prefix = f"{label}:"
    lines = list(_balanced([prefix, *words], width))
    lines[0] = lines[0][len(prefix) :].lstrip()
    return tuple(line for line in lines if line)


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
        shown = [*_label_prefix(speaker_label(group[0])), *(w.word for w in group)]
        return duration <= max_cue_seconds and len(_wrap(shown, max_line_chars)) <= max_lines

    groups: list[list[Word]] = []
    current: list[Word] = []
    for item in words:
        word = dataclasses.replace(item, word=" ".join(item.word.split()))
        if not word.word:
            continue
        if current and (
            ends_sentence(current[-1].word)
            or word.start - current[-1].end >= pause_seconds
            or speaker_label(word) != speaker_label(current[-1])
        ):
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
        label = speaker_label(group[0])
        lines = _lines([w.word for w in group], max_line_chars, label)
        cues.append(Cue(start, max(start, end), lines, label))
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
        Numbered blocks separated by a blank line, a labelled cue's text after `S1: `; "" for no cues.
        An arrow "-->" inside text, which would read as a timing line, becomes "->".
    """

    def text(cue: Cue) -> list[str]:
        if cue.speaker is None:
            return list(cue.lines)
        return [f"{cue.speaker}: {cue.lines[0]}", *cue.lines[1:]]

    return "".join(
        f"{i}\n{_timestamp(cue.start, ',')} --> {_timestamp(cue.end, ',')}\n"
        + "".join(f"{line.replace('-->', '->')}\n" for line in text(cue))
        + "\n"
        for i, cue in enumerate(cues, start=1)
    )


def to_vtt(cues: list[Cue]) -> str:
    """Writes cues as WebVTT.

    Args:
        cues: Cues from `shape_cues`.

    Returns:
        The `WEBVTT` header and one block per cue, text escaped per the spec (`&amp;`, `&lt;`,
        `&gt;`, which also keeps "-->" out of cue text), a labelled cue opening with its voice tag
        (`<v S1>`); just the header for no cues.
    """

    def text(cue: Cue) -> list[str]:
        lines = [html.escape(line, quote=False) for line in cue.lines]
        if cue.speaker is not None:
            lines[0] = f"<v {html.escape(cue.speaker, quote=False)}>{lines[0]}"
        return lines

    blocks = "".join(
        f"\n{_timestamp(cue.start, '.')} --> {_timestamp(cue.end, '.')}\n"
        + "".join(f"{line}\n" for line in text(cue))
        for cue in cues
    )
    return f"WEBVTT\n{blocks}"
