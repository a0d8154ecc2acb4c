"""The input contract (`job["input"]`), declared once: every field's name, type, default, bounds, meaning,
and the rules between fields; these models do the checking.

Types are strict (no `"true"` for true, no 1 for true, no 2.5 for a whole number) and unknown fields are
refused. A field that is absent is None; one sent as null is checked like any other value, so only
`id`, `model` and `language` take null. `utils.contract.validation` runs the models and turns their errors
into messages that name the field; the rules no type can say are in `utils.contract.rules`, called from
the validators here. The JSON Schema (docs/input.schema.json) and the input reference (docs/input.md)
are generated from these models by `python -m tools.reference`.

A new field: declare it here, with its bounds (and a `Says` only if its messages differ from the usual).
"""

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    model_validator,
)

import config
from utils.asr.records import TIMESTAMP_KINDS
from utils.contract import rules
from utils.contract.fields import ConfigLimit, Says, stripped
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


# Absent: None; sent: checked (null included) by the annotation's type.
Base64Audio = Annotated[
    str,
    ConfigLimit("MAX_BASE64_CHARS", payload=True),
    AfterValidator(rules.base64_text),
    Says(
        payload_too_large="is {actual_length} characters; the limit is {max_length}. Upload larger files "
        "and send audio_url instead"
    ),
]
# Stripped, then at least one and at most MAX_URL_CHARS characters (the scheme is checked on use).
Url = Annotated[str, BeforeValidator(stripped), Field(min_length=1, max_length=config.MAX_URL_CHARS)]


def _as_kinds(value: Any) -> Any:
    """`true` is the two kinds most clients want, `false` none."""
    if isinstance(value, bool):
        return ["word", "segment"] if value else []
    return value


def _as_list(value: Any) -> Any:
    """One name is a list of one."""
    return [value] if isinstance(value, str) else value


class AudioItemInput(BaseModel):
    """One item of a batch (`audios`): exactly one of `audio_base64` or `audio_url`, and an optional id."""

    model_config = ConfigDict(extra="forbid", strict=True)

    # The id first: its problems are named before the source's.
    id: Annotated[
        str | None,
        Field(max_length=config.MAX_ITEM_ID_CHARS),
        Says(
            string_type=f"must be a string of at most {config.MAX_ITEM_ID_CHARS} characters",
            string_too_long=f"must be a string of at most {config.MAX_ITEM_ID_CHARS} characters",
        ),
    ] = Field(None, description="The client's name for the item, returned with its result.")
    audio_base64: Base64Audio = Field(None, description=_BASE64)
    audio_url: Url = Field(None, description=_URL)

    @model_validator(mode="before")
    @classmethod
    def _one_source(cls, data: Any) -> Any:
        # Unknown fields are named first; the source is checked once the keys are known ones.
        if isinstance(data, dict) and data.keys() <= cls.model_fields.keys():
            rules.one_source(data)
        return data


class SubtitleOptionsInput(BaseModel):
    """How `srt` and `vtt` cues are shaped; each key defaults to the worker's setting."""

    model_config = ConfigDict(extra="forbid", strict=True)

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

    model_config = ConfigDict(extra="forbid", strict=True, title="Parakeet job input")

    audio_base64: Base64Audio = Field(None, description=f"{_BASE64} Or `audio_url`, or `audios`.")
    audio_url: Url = Field(None, description=f"{_URL} Or `audio_base64`, or `audios`.")
    audios: Annotated[
        list[AudioItemInput],
        ConfigLimit("MAX_BATCH_ITEMS"),
        AfterValidator(rules.batch_payload),
        Says(list_type="must be a list of objects, got {got}"),
    ] = Field(
        None,
        min_length=1,
        description=(
            f"A batch of 1 to {config.MAX_BATCH_ITEMS} items (`MAX_BATCH_ITEMS`), instead of a single "
            "audio; the answer holds `results`, one per item in order, and one item's failure fails only "
            "that item."
        ),
    )
    timestamps: Annotated[
        list[TimestampKind],
        BeforeValidator(_as_kinds, json_schema_input_type=bool | list[TimestampKind]),
        Says(list_type=f"must be true, false or a list of {', '.join(TIMESTAMP_KINDS)}; got {{got}}"),
    ] = Field(
        False,
        validate_default=True,
        description='`true` for word and segment times, or a list of `"word"`, `"segment"`, `"char"`; '
        'needs `"json"` in `output_format`.',
    )
    output_format: Annotated[
        list[OutputFormat],
        BeforeValidator(
            _as_list, json_schema_input_type=OutputFormat | Annotated[list[OutputFormat], Field(min_length=1)]
        ),
        AfterValidator(rules.timestamps_in_json),
        Says(
            list_type=f"must be a list of {', '.join(OUTPUT_FORMATS)}; got {{got}}",
            too_short=f"is an empty list; use one or more of {', '.join(OUTPUT_FORMATS)}",
        ),
    ] = Field(
        "json",
        min_length=1,
        validate_default=True,
        description='`"json"` returns `text` and `duration`, and `timestamps` and `confidence` when asked '
        'for; `"text"` returns `text` and `duration` alone and refuses `timestamps` and `confidence`; '
        '`"srt"` and `"vtt"` add subtitles as strings under those keys. One format or a non-empty list; '
        "`speakers` come with any format when `diarize` is on.",
    )
    output_url: Url = Field(
        None,
        description="Where a result too large to return inline is stored: a presigned `https://` PUT URL "
        "or `s3://bucket/key`. Checked before any work is done.",
    )
    subtitle_options: Annotated[SubtitleOptionsInput, BeforeValidator(rules.subtitles_need_srt_or_vtt)] = (
        Field(None, description='How subtitle cues are shaped; needs `"srt"` or `"vtt"` in `output_format`.')
    )
    confidence: Annotated[bool, AfterValidator(rules.confidence_in_json)] = Field(
        False,
        description='Adds a [0, 1] `confidence` to every word, segment and item; needs `"json"` in '
        "`output_format`.",
    )
    hotwords: Annotated[
        list[Annotated[str, AfterValidator(rules.phrase)]],
        ConfigLimit("MAX_HOTWORDS"),
        AfterValidator(rules.distinct),
        Says(
            list_type="must be a list of phrases, got {got}",
            too_short=f"must hold 1 to {config.MAX_HOTWORDS} phrases, got {{actual_length}}",
            too_long=f"must hold 1 to {config.MAX_HOTWORDS} phrases, got {{actual_length}}",
        ),
    ] = Field(
        None,
        min_length=1,
        description=f"1 to {config.MAX_HOTWORDS} phrases of at most {config.MAX_HOTWORD_CHARS} characters "
        "to favour while decoding (names, jargon). A phrase the model's tokenizer cannot write is refused.",
    )
    hotword_weight: Annotated[float, BeforeValidator(rules.needs("hotwords", "hotwords"))] = Field(
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
    max_speakers: Annotated[int, BeforeValidator(rules.needs("diarize", "diarize: true"))] = Field(
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
    vad: bool = Field(
        False,
        description="Transcribes only the speech that voice-activity detection (Silero VAD) finds: silences "
        "and noise cost no model time and give no invented words. Every time stays on the file's timeline, "
        "`meta.speech_seconds` says how much speech there was, and the diarizer still hears everything.",
    )
    model: Annotated[str | None, AfterValidator(rules.served_model)] = Field(
        None,
        description="Which served model transcribes the job (`PARAKEET_MODELS`): its hub name, or a `.nemo` "
        "file's name without the extension; default: the first. `meta.model` says which ran.",
    )
    language: Annotated[str | None, AfterValidator(rules.model_language)] = Field(
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

    @model_validator(mode="before")
    @classmethod
    def _one_form(cls, data: Any, info: ValidationInfo) -> Any:
        # Unknown fields are named first; the audio's form is checked once the keys are known ones.
        if isinstance(data, dict) and data.keys() <= cls.model_fields.keys():
            rules.one_form(data, (info.context or {}).get("upload"))
        return data
