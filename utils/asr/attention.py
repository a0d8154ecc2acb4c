"""The encoder's attention mode: full (quadratic) or local windows (linear in length).

Switching mutates the shared model; only the scheduler's thread does it (`utils.asr.scheduler`).
`change_attention_model` without a context keeps the old one, so the context is always passed; every
model call ends with the model back in full attention, so no call inherits another's mode.
"""

import logging
from dataclasses import dataclass
from typing import Any

import config
from utils.asr.plans import FULL, LOCAL

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AttentionMode:
    """How the encoder attends, and the subsampling chunking that goes with it."""

    model: str
    context: tuple[int, int]


ATTENTION = {
    FULL: AttentionMode(config.FULL_ATTENTION_MODEL, tuple(config.FULL_ATTENTION_CONTEXT)),
    LOCAL: AttentionMode(config.LOCAL_ATTENTION_MODEL, tuple(config.LOCAL_ATTENTION_CONTEXT)),
}


def current_attention(model: Any) -> tuple[str, tuple[int, int], int]:
    """Reads the encoder's attention model, context and subsampling chunking factor.

    Args:
        model: A loaded NeMo model.

    Returns:
        `(self_attention_model, (left, right) context, chunking factor)`.
    """
    encoder = model.encoder
    return (
        encoder.self_attention_model,
        tuple(encoder.att_context_size),
        encoder.pre_encode.subsampling_conv_chunking_factor,
    )


def set_attention(model: Any, plan: str, default_chunking_factor: int) -> None:
    """Puts the encoder into the attention mode of `plan`, whatever state it was left in.

    Args:
        model: A loaded NeMo model.
        plan: FULL or LOCAL.
        default_chunking_factor: The chunking factor the model was loaded with (full attention's).
    """
    mode = ATTENTION[plan]
    chunking = config.LOCAL_SUBSAMPLING_CHUNKING_FACTOR if plan == LOCAL else default_chunking_factor
    if current_attention(model) == (mode.model, mode.context, chunking):
        return
    model.change_attention_model(mode.model, list(mode.context))
    model.change_subsampling_conv_chunking_factor(chunking)
    log.info("attention set to %s %s, subsampling chunking %s", mode.model, list(mode.context), chunking)
