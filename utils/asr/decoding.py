"""Per-call decoding options: word confidence and phrase boosting (hotwords), switched on for the
calls that ask and switched back after.

- Confidence uses the method NVIDIA ships for Parakeet v3: per-frame Tsallis entropy (alpha 0.5) with
  the exponential normalization, averaged over a word's tokens (blank frames excluded). It needs no
  second pass: the greedy decoder scores the frames it emits anyway.
- Hotwords use NeMo's boosting tree for `greedy_batch` decoding: the phrases, as the model's
  tokenizer spells them, get a bonus of `weight` per matched token while the decoder searches.

A call with either option rebuilds the decoder (about 0.1 s on the CPU, once each way), so calls without
them pay nothing; the scheduler puts items into one call only when their options are equal.
"""

import contextlib
import copy
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from utils.errors import InvalidInputError

log = logging.getLogger(__name__)

CONFIDENCE_METHOD = {"name": "entropy", "entropy_type": "tsallis", "alpha": 0.5, "entropy_norm": "exp"}
# The model's own decoding config while a failed switch back is still owed (retried by the next call).
_owed: Any = None


@dataclass(frozen=True)
class Boost:
    """Phrases to favour while decoding, and how strongly."""

    phrases: tuple[str, ...]
    weight: float


def check_spelling(model: Any, boost: Boost) -> None:
    """Refuses hotwords the model's tokenizer cannot write (they could never be boosted).

    Args:
        model: The NeMo model.
        boost: The job's hotwords.

    Raises:
        InvalidInputError: Naming the first such phrase.
    """
    unknown = getattr(model.tokenizer, "unk_id", None)
    for index, phrase in enumerate(boost.phrases):
        if unknown is not None and unknown in model.tokenizer.text_to_ids(phrase):
            raise InvalidInputError(f"hotwords[{index}] {phrase!r} has characters this model cannot write")


@contextlib.contextmanager
def options(model: Any, confidence: bool, boost: Boost | None) -> Iterator[None]:
    """Decodes with the given options inside the block; the model's own decoding is back after it.

    Only the scheduler's thread calls models, so the switch is never seen by another call.

    Args:
        model: The NeMo RNNT/TDT model.
        confidence: Whether hypotheses carry `word_confidence`.
        boost: Hotwords to favour, or None.

    Yields:
        Nothing.
    """
    global _owed
    if _owed is not None:
        # A previous call could not switch back: no call may run with another job's options.
        model.change_decoding_strategy(_owed, verbose=False)
        _owed = None
    if not confidence and boost is None:
        yield
        return
    from omegaconf import open_dict

    original = copy.deepcopy(model.cfg.decoding)
    changed = copy.deepcopy(original)
    with open_dict(changed):
        if confidence:
            changed.confidence_cfg = {
                "preserve_word_confidence": True,
                "preserve_token_confidence": True,
                "exclude_blank": True,
                "aggregation": "mean",
                "method_cfg": dict(CONFIDENCE_METHOD),
            }
        if boost is not None:
            changed.strategy = "greedy_batch"
            changed.greedy.boosting_tree = {
                "key_phrases_list": list(boost.phrases),
                "context_score": 1.0,
                "depth_scaling": 1.0,
                "use_triton": False,
            }
            changed.greedy.boosting_tree_alpha = boost.weight
    model.change_decoding_strategy(changed, verbose=False)
    try:
        yield
    finally:
        try:
            model.change_decoding_strategy(original, verbose=False)
        except Exception:
            log.exception("could not restore the decoding strategy; the next call will")
            _owed = original
