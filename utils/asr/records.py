"""Typed records of a transcription, shared by the model code, the subtitles and the results.

Times are seconds from the start of the item's audio, rounded to milliseconds (the results shift them
onto the container's timeline when the audio starts late in it).
"""

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

TIMESTAMP_KINDS = ("word", "segment", "char")
# Not a timestamp kind, but asked for the same way: per-word confidence (words are computed with it).
CONFIDENCE = "confidence"
# Likewise: each word's token ids and their log-probabilities, summed up per segment (`tokens`,
# `avg_logprob`) for OpenAI's `verbose_json`.
LOGPROBS = "logprobs"
# A sentence ends at one of these, before any closing quote or bracket: segments and subtitle cues
# both break there.
SENTENCE_END = (".", "?", "!", "…")
CLOSERS = "\"'”’»)]"


def ends_sentence(text: str) -> bool:
    """Tells whether `text` (a word) ends a sentence.

    Args:
        text: A word as the model wrote it, punctuation included.

    Returns:
        True when it ends in . ? ! or …, closing quotes and brackets aside.
    """
    return text.rstrip(CLOSERS).endswith(SENTENCE_END)


@dataclass(frozen=True)
class Word:
    """One word and when it was spoken."""

    word: str
    start: float
    end: float
    # In [0, 1], when asked for (None: not computed).
    confidence: float | None = None
    # "S1"… from the diarizer, and the 0-based channel of a per-channel transcript (None: not asked).
    speaker: str | None = None
    channel: int | None = None
    # With LOGPROBS: the model's token ids that spell the word, and the natural log of the probability
    # the decoder gave each when it emitted it (None: not asked).
    tokens: tuple[int, ...] | None = None
    logprobs: tuple[float, ...] | None = None


@dataclass(frozen=True)
class Segment:
    """One sentence (or the stretch of words NeMo grouped) and when it was spoken."""

    text: str
    start: float
    end: float
    # The mean of its words' confidence, when computed.
    confidence: float | None = None
    speaker: str | None = None
    channel: int | None = None
    # Its own language, only where it differs from the item's (ISO 639-1).
    language: str | None = None
    # With LOGPROBS: its words' token ids, and the mean of their log-probabilities.
    tokens: tuple[int, ...] | None = None
    avg_logprob: float | None = None
    # How sure the speech detector is that its span holds no speech, in [0, 1] (None: not asked).
    no_speech_prob: float | None = None


@dataclass(frozen=True)
class Char:
    """One token's characters and when they were emitted."""

    char: str
    start: float
    end: float
    channel: int | None = None


@dataclass(frozen=True)
class SpeakerTime:
    """One speaker of an item and how long the diarizer found them speaking."""

    speaker: str
    seconds: float
    # The channel they spoke on, for per-channel transcripts (None: the mix).
    channel: int | None = None

    def as_json(self) -> dict[str, str | float | int]:
        """The output contract's `{"speaker", "seconds", "channel"?}`.

        Returns:
            The plain item.
        """
        return _plain(self)


@dataclass
class Timestamps:
    """The timestamp kinds computed for one item (None: not asked for)."""

    word: list[Word] | None = None
    segment: list[Segment] | None = None
    char: list[Char] | None = None

    def as_json(self, kinds: frozenset[str]) -> dict[str, list[dict[str, Any]]]:
        """The asked kinds as the output contract's plain items.

        Args:
            kinds: Kinds to include; each must have been computed.

        Returns:
            `{kind: [{"word"|"text"|"char", "start", "end"}, ...]}`, kinds in sorted order.
        """
        return {kind: [_plain(item) for item in getattr(self, kind)] for kind in sorted(kinds)}

    def shifted(self, seconds: float) -> "Timestamps":
        """The same timestamps, `seconds` later (rounded to milliseconds).

        Args:
            seconds: The shift.

        Returns:
            A new Timestamps; kinds that were None stay None.
        """

        return self.remapped(lambda time: time + seconds)

    def clamped(self, duration: float) -> "Timestamps":
        """The same timestamps, each start and end within `[0, duration]` (and no end before its start).

        The model's last frame can end past the audio (a word of a 0.3 s clip ending at 0.32 s).

        Args:
            duration: The item's length in seconds.

        Returns:
            A new Timestamps; kinds that were None stay None.
        """

        def clamp(items: list[Any] | None) -> list[Any] | None:
            if items is None:
                return None
            inside = []
            for item in items:
                start = min(max(item.start, 0.0), duration)
                inside.append(replace(item, start=start, end=min(max(item.end, start), duration)))
            return inside

        return Timestamps(word=clamp(self.word), segment=clamp(self.segment), char=clamp(self.char))

    def remapped(self, to_time: Callable[[float], float]) -> "Timestamps":
        """The same timestamps on another timeline (rounded to milliseconds).

        Args:
            to_time: Maps a time of this timeline to the other one (monotonic).

        Returns:
            A new Timestamps; kinds that were None stay None.
        """

        def move(items: list[Any] | None) -> list[Any] | None:
            if items is None:
                return None
            return [
                replace(item, start=round(to_time(item.start), 3), end=round(to_time(item.end), 3))
                for item in items
            ]

        return Timestamps(word=move(self.word), segment=move(self.segment), char=move(self.char))


@dataclass
class Transcript:
    """One item's transcription."""

    text: str
    attention: str
    timestamps: Timestamps = field(default_factory=Timestamps)
    # How the item got here when memory ran out, e.g. ["full: out of GPU memory"].
    fallbacks: list[str] = field(default_factory=list)
    windows: int = 1
    # How many items shared the model call that produced it (1 for windows and lone items).
    batch: int = 1
    # The item's speakers when it was diarized (None: not asked).
    speakers: list[SpeakerTime] | None = None
    # How many channels were transcribed apart (None: the mix).
    channels: int | None = None
    # The language detected in its text (ISO 639-1; None: no text), and how sure the detector is.
    language: str | None = None
    language_confidence: float | None = None
    # With `vad`: the seconds of speech found, the only audio the model heard (None: no vad).
    speech_seconds: float | None = None
    # With `numbers: "digits"`: "digits", or "spoken" and why (None: not asked).
    numbers: str | None = None
    numbers_note: str | None = None


_OPTIONAL_FIELDS = (
    "confidence",
    "speaker",
    "channel",
    "language",
    "tokens",
    "logprobs",
    "avg_logprob",
    "no_speech_prob",
)


def _plain(item: Any) -> dict[str, Any]:
    """A record as the output contract's item: the optional fields (`confidence`, `speaker`, ...) only
    where computed."""
    fields = asdict(item)
    for name in _OPTIONAL_FIELDS:
        if name in fields and fields[name] is None:
            del fields[name]
    return fields


def mean_confidence(words: list[Word]) -> float | None:
    """The mean confidence of words, or None when there are none or any lacks one.

    Args:
        words: Words with or without confidence.

    Returns:
        The mean, rounded to 3 places, or None.
    """
    values = [word.confidence for word in words]
    if not values or None in values:
        return None
    return round(sum(values) / len(values), 3)


def segments_of(words: list[Word]) -> list[Segment]:
    """Groups words into sentence segments: a segment ends at a word that ends a sentence, and where
    the speaker or the channel changes.

    Args:
        words: Words in spoken order.

    Returns:
        One segment per sentence (or per speaker's part of one); a trailing unfinished sentence is a
        segment too.
    """
    segments: list[Segment] = []
    current: list[Word] = []
    for word in words:
        if current and (word.speaker, word.channel) != (current[-1].speaker, current[-1].channel):
            segments.append(_segment(current))
            current = []
        current.append(word)
        if ends_sentence(word.word):
            segments.append(_segment(current))
            current = []
    if current:
        segments.append(_segment(current))
    return segments


def _segment(words: list[Word]) -> Segment:
    """One segment from its words (with their tokens, when every word has them)."""
    text = " ".join(w.word for w in words)
    first = words[0]
    segment = Segment(text, first.start, words[-1].end, mean_confidence(words), first.speaker, first.channel)
    logprobs = [value for word in words for value in word.logprobs or ()]
    if not logprobs or any(word.tokens is None or word.logprobs is None for word in words):
        return segment
    tokens = tuple(token for word in words for token in word.tokens or ())
    return replace(segment, tokens=tokens, avg_logprob=round(sum(logprobs) / len(logprobs), 6))
