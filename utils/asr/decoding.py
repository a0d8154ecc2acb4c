"""Per-call decoding options: word confidence and phrase boosting (hotwords), switched on for the
calls that ask and switched back after.

- Confidence uses the method NVIDIA ships for Parakeet v3: per-frame Tsallis entropy (alpha 0.5) with
  the exponential normalization, averaged over a word's tokens (blank frames excluded). It needs no
  second pass: the greedy decoder scores the frames it emits anyway.
- Token log-probabilities (for OpenAI's `avg_logprob`) use NeMo's `max_prob` confidence with alpha 1,
  which maps the probability p of the label a greedy step emits (its top label, blank included among
  the V labels) onto (p·V − 1)/(V − 1); `token_logprobs` inverts that exactly. When word confidence is
  asked for too, the same encoder output is decoded a second time by a `max_prob` decoder (the greedy
  search is deterministic, so it emits the same tokens; this is checked).
- Hotwords use NeMo's boosting tree for `greedy_batch` decoding: the phrases, as the model's
  tokenizer spells them, get a bonus of `weight` per matched token while the decoder searches.

Each option set's decoder is built once (NeMo's `change_decoding_strategy`, about 0.1 s on the CPU, and
on a GPU a new CUDA-graph capture) and kept: later calls with the same options swap the kept objects in
and the model's own back out, which costs nothing. At most `DECODER_SETUPS_KEPT` set-ups are kept, the
least recently used going first, since hotword lists vary. The scheduler puts items into one call
only when their options are equal.
"""

import contextlib
import copy
import dataclasses
import logging
import math
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import config
from utils.errors import InvalidInputError

log = logging.getLogger(__name__)

CONFIDENCE_METHOD = {"name": "entropy", "entropy_type": "tsallis", "alpha": 0.5, "entropy_norm": "exp"}
LOGPROB_METHOD = {"name": "max_prob", "alpha": 1.0}
# The attribute a scored decoding sets on each hypothesis: its tokens' log-probabilities (or None).
TOKEN_LOGPROBS = "parakeet_token_logprobs"
# Where a model keeps its own decoding set-up and the built ones (attributes of the model object, so
# that a reloaded model starts afresh).
_OWN = "_parakeet_own_decoding"
_KEPT = "_parakeet_decoding_setups"


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


@dataclass(frozen=True)
class _Setup:
    """What `change_decoding_strategy` builds and sets on a model: swapping these in switches decoders."""

    decoding: Any
    wer: Any
    cfg: Any
    temperature: float

    @classmethod
    def of(cls, model: Any) -> "_Setup":
        return cls(model.decoding, model.wer, model.cfg.decoding, model.joint.temperature)

    def apply(self, model: Any) -> None:
        from omegaconf import open_dict

        model.decoding, model.wer = self.decoding, self.wer
        with open_dict(model.cfg):
            model.cfg.decoding = self.cfg
        model.joint.temperature = self.temperature
        if model.joint.fuse_loss_wer:
            model.joint.set_wer(self.wer)


def _logprobs(confidences: list[float] | None, labels: int) -> list[float]:
    """Inverts NeMo's `max_prob` measure (alpha 1): c = (p·V − 1)/(V − 1) → ln p."""
    probabilities = ((min(max(float(c), 0.0), 1.0) * (labels - 1) + 1) / labels for c in confidences or [])
    return [math.log(p) for p in probabilities]


class _Scored:
    """A model's decoding object that also sets each hypothesis's `TOKEN_LOGPROBS`.

    `scorer` (a `max_prob` decoding) decodes the same encoder output again; without it, the decoding
    itself must use `max_prob`. Everything else is the decoding's own.
    """

    def __init__(self, decoding: Any, scorer: Any | None = None) -> None:
        self._decoding = decoding
        self._scorer = scorer

    def rnnt_decoder_predictions_tensor(self, *args: Any, **kwargs: Any) -> Any:
        """NeMo's decoding entry (what `transcribe` calls), with the log-probabilities added."""
        hypotheses = self._decoding.rnnt_decoder_predictions_tensor(*args, **kwargs)
        source = self._decoding if self._scorer is None else self._scorer
        scored = (
            hypotheses if self._scorer is None else source.rnnt_decoder_predictions_tensor(*args, **kwargs)
        )
        labels = source.blank_id + 1  # the labels `max_prob` normalizes over: the vocabulary and blank
        for hypothesis, other in zip(hypotheses, scored, strict=True):
            same = [int(t) for t in hypothesis.y_sequence] == [int(t) for t in other.y_sequence]
            if not same:
                log.warning(
                    "the scoring decoder emitted other tokens; the item has no token log-probabilities"
                )
            found = _logprobs(other.token_confidence, labels) if same else None
            if found is not None and len(found) != len(hypothesis.y_sequence):
                found = None
            setattr(hypothesis, TOKEN_LOGPROBS, found)
        return hypotheses

    def __getattr__(self, name: str) -> Any:
        return getattr(self._decoding, name)


def token_logprobs(hypothesis: Any) -> list[float] | None:
    """The log-probabilities of a hypothesis's tokens, from a call decoded with `logprobs`.

    Args:
        hypothesis: One NeMo Hypothesis.

    Returns:
        One natural-log probability per token of `y_sequence`, or None (not asked, or not available).
    """
    return getattr(hypothesis, TOKEN_LOGPROBS, None)


def _changed_config(model: Any, timestamps: bool, method: dict[str, Any] | None, boost: Boost | None) -> Any:
    """The model's own decoding config with the options switched on (`method`: a confidence method)."""
    from omegaconf import open_dict

    changed = copy.deepcopy(getattr(model, _OWN).cfg)
    with open_dict(changed):
        changed.compute_timestamps = timestamps
        if method is not None:
            changed.confidence_cfg = {
                # Token log-probabilities need no word aggregation (NeMo's is a Python loop per token).
                "preserve_word_confidence": method == CONFIDENCE_METHOD,
                "preserve_token_confidence": True,
                "exclude_blank": True,
                "aggregation": "mean",
                "method_cfg": dict(method),
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
    return changed


def _built(model: Any, timestamps: bool, method: dict[str, Any] | None, boost: Boost | None) -> _Setup:
    """A new set-up for these options; the model keeps its own decoding."""
    try:
        model.change_decoding_strategy(_changed_config(model, timestamps, method, boost), verbose=False)
        return _Setup.of(model)
    finally:
        getattr(model, _OWN).apply(model)


def _setup(model: Any, timestamps: bool, confidence: bool, boost: Boost | None, logprobs: bool) -> _Setup:
    """The kept set-up for these options, built (and the oldest dropped past the bound) when missing."""
    kept: OrderedDict[tuple[bool, bool, Boost | None, bool], _Setup] = getattr(model, _KEPT)
    key = (timestamps, confidence, boost, logprobs)
    if key in kept:
        kept.move_to_end(key)
        return kept[key]
    if not logprobs:
        built = _built(model, timestamps, CONFIDENCE_METHOD if confidence else None, boost)
    elif not confidence:
        own = _built(model, timestamps, LOGPROB_METHOD, boost)
        built = dataclasses.replace(own, decoding=_Scored(own.decoding))
    else:
        words = _built(model, timestamps, CONFIDENCE_METHOD, boost)
        scorer = _built(model, False, LOGPROB_METHOD, boost)
        built = dataclasses.replace(words, decoding=_Scored(words.decoding, scorer.decoding))
    kept[key] = built
    while len(kept) > config.DECODER_SETUPS_KEPT:
        kept.popitem(last=False)
    return built


@contextlib.contextmanager
def options(
    model: Any, timestamps: bool, confidence: bool, boost: Boost | None, logprobs: bool = False
) -> Iterator[None]:
    """Decodes with the given options inside the block; the model's own decoding is back after it.

    Only the scheduler's thread calls models, so the switch is never seen by another call. Timestamps
    belong to the set-up too: NeMo's `transcribe` rebuilds the decoder itself when a call's
    `timestamps` differs from the decoder's `compute_timestamps`.

    Args:
        model: The NeMo RNNT/TDT model.
        timestamps: Whether hypotheses carry timestamps (NeMo's `compute_timestamps`).
        confidence: Whether hypotheses carry `word_confidence`.
        boost: Hotwords to favour, or None.
        logprobs: Whether hypotheses carry their tokens' log-probabilities (`token_logprobs`).

    Yields:
        Nothing.
    """
    if not hasattr(model, _OWN):
        setattr(model, _OWN, _Setup.of(model))
        setattr(model, _KEPT, OrderedDict())
    own = getattr(model, _OWN)
    if not confidence and not logprobs and boost is None and own.cfg.get("compute_timestamps") is timestamps:
        yield
        return
    _setup(model, timestamps, confidence, boost, logprobs).apply(model)
    try:
        yield
    finally:
        getattr(model, _OWN).apply(model)
