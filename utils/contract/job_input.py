"""The input contract (`job["input"]`), declared once: every field's name, type, default, bounds and
meaning.

`utils.contract.validation` enforces it with messages that name the field; it takes the field names from here,
so a field exists in both or in neither. The JSON Schema (docs/input.schema.json) and the input reference
(docs/input.md) are generated from these models by `python -m tools.reference`.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

import config
from utils.asr.records import TIMESTAMP_KINDS
from utils.text.numbers import LANGUAGES as NUMBER_LANGUAGES
from utils.text.numbers import MODES as NUMBER_MODES

OUTPUT_FORMATS = ("json", "text", "srt", "vtt")
# "mix": one transcript of all channels mixed; "separate": one per channel, merged in time order.
CHANNEL_MODES = ("mix", "separate")

TimestampKind = Literal[TIMESTAMP_KINDS]  # type: ignore[valid-type]
OutputFormat = Literal[OUTPUT_FORMATS]  # type: ignore[valid-type]
ChannelMode = Literal[CHANNEL_MODES]  # type: ignore[valid-type]
NumberMode = Literal[NUMBER_MODES]  # type: ignore[valid-type]

_BASE64 = (
    "The audio file's bytes in standard base64; a `data:<mime>;base64,` prefix is accepted. Any format "
    f"ffmpeg reads. At most {config.MAX_BASE64_CHARS} characters (`MAX_BASE64_CHARS`)."
)
_URL = (
    "An `https://` URL (presigned S3 or any public host) or `s3://bucket/key`, read with the worker's S3 "
    f"credentials (`s3:///key` uses `S3_BUCKET`). At most {config.MAX_URL_CHARS} characters."
)

# "name: en; other: en, fr", the models whose languages are known by name.
_OTHER_MODELS_LANGUAGES = "; ".join(
    f"{name}: {', '.join(codes)}" for name, codes in config.OTHER_MODEL_LANGUAGES.items()
)


class AudioItemInput(BaseModel):
    """One item of a batch (`audios`): exactly one of `audio_base64` or `audio_url`, and an optional id."""

    model_config = ConfigDict(extra="forbid")

    audio_base64: str | None = Field(None, description=_BASE64)
    audio_url: str | None = Field(None, description=_URL)
    id: str | None = Field(
        None,
        max_length=config.MAX_ITEM_ID_CHARS,
        description="The client's name for the item, returned with its result.",
    )


class SubtitleOptionsInput(BaseModel):
    """How `srt` and `vtt` cues are shaped; each key defaults to the worker's setting."""

    model_config = ConfigDict(extra="forbid")

    max_line_chars: int = Field(
        config.SUBTITLE_MAX_LINE_CHARS,
        ge=config.SUBTITLE_LINE_CHARS_BOUNDS[0],
        le=config.SUBTITLE_LINE_CHARS_BOUNDS[1],
        description="Characters per line (default `SUBTITLE_MAX_LINE_CHARS`).",
    )
    max_lines: int = Field(
        config.SUBTITLE_MAX_LINES,
        ge=config.SUBTITLE_LINES_BOUNDS[0],
        le=config.SUBTITLE_LINES_BOUNDS[1],
        description="Lines per cue (default `SUBTITLE_MAX_LINES`).",
    )
    max_cue_seconds: float = Field(
        config.SUBTITLE_MAX_CUE_SECONDS,
        ge=config.SUBTITLE_CUE_SECONDS_BOUNDS[0],
        le=config.SUBTITLE_CUE_SECONDS_BOUNDS[1],
        description="Longest time a cue stays on screen (default `SUBTITLE_MAX_CUE_SECONDS`).",
    )


class JobInput(BaseModel):
    """`job["input"]`: one audio (`audio_base64` or `audio_url`) or a batch (`audios`), and what to return.

    Unknown fields are refused by name, so a typo is an error rather than silently ignored.
    """

    model_config = ConfigDict(extra="forbid", title="Parakeet job input")

    audio_base64: str | None = Field(None, description=f"{_BASE64} Or `audio_url`, or `audios`.")
    audio_url: str | None = Field(None, description=f"{_URL} Or `audio_base64`, or `audios`.")
    audios: list[AudioItemInput] | None = Field(
        None,
        min_length=1,
        max_length=config.MAX_BATCH_ITEMS,
        description=(
            f"A batch of 1 to {config.MAX_BATCH_ITEMS} items (`MAX_BATCH_ITEMS`), instead of a single "
            "audio; the answer holds `results`, one per item in order, and one item's failure fails only "
            "that item."
        ),
    )
    timestamps: bool | list[TimestampKind] = Field(
        False,
        description='`true` for word and segment times, or a list of `"word"`, `"segment"`, `"char"`; '
        'needs `"json"` in `output_format`.',
    )
    output_format: OutputFormat | list[OutputFormat] = Field(
        "json",
        description='`"json"` returns `text` and `duration`, and `timestamps` and `confidence` when asked '
        'for; `"text"` returns `text` and `duration` alone and refuses `timestamps` and `confidence`; '
        '`"srt"` and `"vtt"` add subtitles as strings under those keys. One format or a non-empty list; '
        "`speakers` come with any format when `diarize` is on.",
    )
    output_url: str | None = Field(
        None,
        description="Where a result too large to return inline is stored: a presigned `https://` PUT URL "
        "or `s3://bucket/key`. Checked before any work is done.",
    )
    subtitle_options: SubtitleOptionsInput | None = Field(
        None, description='How subtitle cues are shaped; needs `"srt"` or `"vtt"` in `output_format`.'
    )
    confidence: bool = Field(
        False,
        description='Adds a [0, 1] `confidence` to every word, segment and item; needs `"json"` in '
        "`output_format`.",
    )
    hotwords: list[str] | None = Field(
        None,
        min_length=1,
        max_length=config.MAX_HOTWORDS,
        description=f"1 to {config.MAX_HOTWORDS} phrases of at most {config.MAX_HOTWORD_CHARS} characters "
        "to favour while decoding (names, jargon). A phrase the model's tokenizer cannot write is refused.",
    )
    hotword_weight: float | None = Field(
        None,
        ge=config.HOTWORD_WEIGHT_BOUNDS[0],
        le=config.HOTWORD_WEIGHT_BOUNDS[1],
        description=f"How strongly hotwords are favoured (default {config.HOTWORD_WEIGHT:g}); needs "
        "`hotwords`.",
    )
    diarize: bool = Field(
        False,
        description="Labels every word and segment with its speaker (`S1`, `S2`, ... in order of speech).",
    )
    max_speakers: int | None = Field(
        None,
        ge=1,
        le=config.MAX_SPEAKERS,
        description=f"At most this many speakers (1 to {config.MAX_SPEAKERS}); needs `diarize: true`.",
    )
    channels: ChannelMode = Field(
        "mix",
        description='`"mix"` transcribes all channels mixed; `"separate"` transcribes each channel of the '
        f"first audio stream (at most {config.MAX_SEPARATE_CHANNELS}) and labels words with `channel`.",
    )
    model: str | None = Field(
        None,
        description="Which served model transcribes the job (`PARAKEET_MODELS`): its hub name, or a `.nemo` "
        "file's name without the extension; default: the first. `meta.model` says which ran.",
    )
    vad: bool = Field(
        False,
        description="Transcribes only the speech that voice-activity detection (Silero VAD) finds: silences "
        "and noise cost no model time and give no invented words. Every time stays on the file's timeline, "
        "`meta.speech_seconds` says how much speech there was, and the diarizer still hears everything.",
    )
    language: str | None = Field(
        None,
        description="The language the caller expects (ISO 639-1; a region such as `pt-BR` is ignored), one "
        f"of the job's model's: {_OTHER_MODELS_LANGUAGES}; any other model (v3, a fine-tuned `.nemo`): "
        f"{', '.join(config.MODEL_LANGUAGES)}. Parakeet cannot be forced to a language: it "
        "transcribes what it hears, and every item reports the `language` detected in its text; with this "
        "field an item also says `language_mismatch` when the two differ.",
    )
    numbers: NumberMode = Field(
        "spoken",
        description='`"spoken"` returns numbers as the model wrote them, often in words ("twenty five"); '
        '`"digits"` writes number words as digits ("25", "3.5 million", "1999") in `text`, words, segments '
        "and subtitles, in the item's language (`language` if given, else the detected one) when it is one "
        f"of {', '.join(NUMBER_LANGUAGES)}; an item in another language keeps its words and says so in "
        "`meta.numbers_note`. A number said in several words becomes one word spanning their times. "
        'Ordinals, "one of them", "a second" and numbers said back to back ("fifty fifty") stay words.',
    )
