"""Buffered streaming on the loaded model: one batched step over many turns' frames.

A frame is one turn's next piece of audio with its context: up to `LIVE_LEFT_CONTEXT_SECONDS` already
decoded before it, the new chunk(s), and the look-ahead after them (none when the turn is finishing).
A step runs every frame through the model's preprocessor and encoder in one batch, keeps the encoder
frames of the new chunks only, and decodes them in one batched call of NeMo's label-looping greedy
decoder, each turn continuing from its own decoder state (NeMo's `merge_to_batched_state` and
`split_batched_state`). The look-ahead only gives the encoder right context: its frames are never
decoded into a turn's state, so every token a step returns is settled.

This is NeMo's stateful buffered RNN-T/TDT pipeline (`nemo.collections.asr.inference`) on the model the
worker already holds: NeMo's builder loads a model of its own by name, so its lower-level pieces are used
here (the per-buffer feature normalization, the decoding computer and its state items).

Only the scheduler's thread calls `step`, so the model is never used by two calls at once.
"""

import copy
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import config
from utils.asr import attention, model
from utils.asr.plans import FULL

log = logging.getLogger(__name__)

# Where a loaded model keeps its live pieces (an attribute of the model object, so that a reloaded
# model starts afresh).
_LIVE = "_parakeet_live"
# The score of a hotword's matched tokens, as the file door's default (utils/asr/decoding.py).
_BOOSTING = {"context_score": 1.0, "depth_scaling": 1.0, "use_triton": False}


@dataclass
class Frame:
    """One turn's part of a step.

    Attributes:
        samples: 16 kHz audio: left context, then the new chunk(s), then the look-ahead.
        left_samples: How much of `samples` is left context (a whole number of encoder frames).
        decode_samples: How much after the left context to decode and commit; None: everything (the
            turn's last frame).
        state: The turn's decoder state from its previous frame (None: the turn's first frame).
        hotwords: The turn's hotwords (decoded by the boosting decoder), or empty.
    """

    samples: np.ndarray
    left_samples: int
    decode_samples: int | None
    state: Any = None
    hotwords: tuple[str, ...] = ()


@dataclass
class Tokens:
    """What a step settled for one turn: tokens with their encoder frames (from the turn's start)."""

    ids: list[int] = field(default_factory=list)
    frames: list[int] = field(default_factory=list)
    durations: list[int] = field(default_factory=list)
    state: Any = None


class LiveModel:
    """The streaming pieces of one loaded model: its feature extractor without normalization, the
    greedy decoding computers (plain, and with per-stream hotwords when a turn has some), its
    vocabulary's word starts."""

    def __init__(self, current: model.LoadedModel) -> None:
        """Builds the pieces around a loaded model (on the scheduler's thread).

        Args:
            current: The loaded model.
        """
        self.current = current
        nemo_model = current.model
        self.frame_samples = round(current.frame_seconds * config.SAMPLE_RATE)
        self.hop_samples = round(nemo_model.cfg.preprocessor.window_stride * config.SAMPLE_RATE)
        self.preprocessor = _deterministic_preprocessor(nemo_model)
        self.tokenizer = nemo_model.tokenizer
        vocabulary = list(nemo_model.joint.vocabulary)
        # SentencePiece marks a word's first piece with "▁"; a piece without it continues a word.
        self.starts_word = [piece.startswith("▁") for piece in vocabulary]
        self.plain = self._computer(biasing=False)
        self.boosted: Any = None
        # Hotword lists by their phrases: the id of their boosting tree in the boosted computer, and
        # how many live turns use it.
        self.boosts: dict[tuple[str, ...], list[int]] = {}

    def _computer(self, biasing: bool) -> Any:
        """A label-looping greedy decoding computer sharing the model's prediction and joint networks."""
        greedy = self.current.model.decoding.decoding
        durations = list(getattr(greedy, "durations", None) or [])
        kwargs: dict[str, Any] = {
            "decoder": self.current.model.decoder,
            "joint": self.current.model.joint,
            "blank_index": greedy._blank_index,
            "max_symbols_per_step": greedy.max_symbols,
            "allow_cuda_graphs": True,
            "enable_per_stream_biasing": biasing,
        }
        if durations:
            from nemo.collections.asr.parts.submodules.transducer_decoding.tdt_label_looping import (
                GreedyBatchedTDTLabelLoopingComputer,
            )

            return GreedyBatchedTDTLabelLoopingComputer(durations=durations, include_duration=True, **kwargs)
        from nemo.collections.asr.parts.submodules.transducer_decoding.rnnt_label_looping import (
            GreedyBatchedRNNTLabelLoopingComputer,
        )

        return GreedyBatchedRNNTLabelLoopingComputer(**kwargs)

    def hold_boost(self, hotwords: tuple[str, ...]) -> None:
        """Adds a turn's hotwords to the boosted computer (once per distinct list).

        Args:
            hotwords: The phrases.
        """
        from nemo.collections.asr.parts.context_biasing.boosting_graph_batched import (
            BoostingTreeModelConfig,
            GPUBoostingTreeModel,
        )

        if self.boosted is None:
            self.boosted = self._computer(biasing=True)
        if hotwords in self.boosts:
            self.boosts[hotwords][1] += 1
            return
        tree_config = BoostingTreeModelConfig(key_phrases_list=list(hotwords), **_BOOSTING)
        tree = GPUBoostingTreeModel.from_config(tree_config, tokenizer=self.tokenizer)
        model_id = self.boosted.biasing_multi_model.add_model(tree, alpha=config.HOTWORD_WEIGHT)
        self.boosts[hotwords] = [model_id, 1]

    def release_boost(self, hotwords: tuple[str, ...]) -> None:
        """Drops one turn's hold on its hotwords; the last one removes their boosting tree.

        Args:
            hotwords: The phrases.
        """
        held = self.boosts.get(hotwords)
        if held is None:
            return
        held[1] -= 1
        if held[1] <= 0:
            del self.boosts[hotwords]
            self.boosted.biasing_multi_model.remove_model(held[0])

    def step(self, frames: list[Frame]) -> list[Tokens]:
        """Runs one batched step: all frames through the encoder, the new frames through the decoder.

        Args:
            frames: One per turn.

        Returns:
            The settled tokens and the new decoder state of each frame, in order.
        """
        import torch

        nemo_model = self.current.model
        # A file call may have left submodules in training mode (dither, dropout); steps never are.
        nemo_model.eval()
        attention.set_attention(nemo_model, FULL, self.current.default_chunking_factor)
        dtype = model.compute_dtype(nemo_model.device.type)
        autocast = torch.autocast(nemo_model.device.type, dtype=torch.bfloat16, enabled=dtype == "bfloat16")
        with torch.inference_mode(), autocast:
            encoded, encoded_len = self._encode(frames)
            results: list[Tokens] = [Tokens() for _ in frames]
            plain = [i for i, frame in enumerate(frames) if not frame.hotwords]
            boosted = [i for i, frame in enumerate(frames) if frame.hotwords]
            for indices, computer in ((plain, self.plain), (boosted, self.boosted)):
                if indices:
                    group = [frames[i] for i in indices]
                    decoded = self._decode(computer, group, encoded[indices], encoded_len[indices])
                    for i, tokens in zip(indices, decoded, strict=True):
                        results[i] = tokens
        return results

    def _encode(self, frames: list[Frame]) -> tuple[Any, Any]:
        """The encoder's output (B, T, D) and valid lengths of a batch of frames."""
        import torch
        from nemo.collections.asr.inference.utils.pipeline_utils import normalize_features

        device = self.current.model.device
        lengths = [frame.samples.size for frame in frames]
        longest = max(max(lengths), self.frame_samples)
        batch = np.zeros((len(frames), longest), dtype=np.float32)
        for row, frame in enumerate(frames):
            batch[row, : frame.samples.size] = frame.samples
        signal = torch.from_numpy(batch).to(device)
        signal_len = torch.tensor(lengths, dtype=torch.long, device=device)
        features, features_len = self.preprocessor(input_signal=signal, length=signal_len)
        # As NeMo's buffered pipeline: N samples make N/hop feature frames (the centred STFT's extra
        # last frame is dropped), normalized over each buffer's own frames.
        wanted = torch.clamp(signal_len // self.hop_samples, min=1)
        features_len = torch.minimum(features_len, wanted)
        features = features[:, :, : int(features_len.max())]
        features = normalize_features(features, features_len)
        positions = torch.arange(features.shape[2], device=device)
        features = features.masked_fill(positions[None, None, :] >= features_len[:, None, None], 0.0)
        encoded, encoded_len = self.current.model.encoder(audio_signal=features, length=features_len)
        return encoded.transpose(1, 2), encoded_len

    def _decode(self, computer: Any, frames: list[Frame], encoded: Any, encoded_len: Any) -> list[Tokens]:
        """Decodes the new encoder frames of `frames` from their turns' states."""
        import torch

        device = encoded.device
        starts = [frame.left_samples // self.frame_samples for frame in frames]
        counts = []
        for frame, start, available in zip(frames, starts, encoded_len.tolist(), strict=True):
            wanted = (
                available - start
                if frame.decode_samples is None
                else frame.decode_samples // self.frame_samples
            )
            counts.append(max(0, min(wanted, available - start)))
        longest = max(max(counts), 1)
        index = torch.tensor(starts, device=device)[:, None] + torch.arange(longest, device=device)[None, :]
        index = torch.minimum(index, torch.full_like(index, encoded.shape[1] - 1))
        chunk = torch.gather(encoded, 1, index[:, :, None].expand(-1, -1, encoded.shape[2]))
        chunk_len = torch.tensor(counts, dtype=torch.long, device=device)
        states = [frame.state for frame in frames]
        previous = None if all(state is None for state in states) else computer.merge_to_batched_state(states)
        biasing_ids = None
        if computer.per_stream_biasing_enabled:
            biasing_ids = torch.tensor([self.boosts[frame.hotwords][0] for frame in frames], device=device)
        hyps, state = computer(chunk, chunk_len, previous, multi_biasing_ids=biasing_ids)
        # With CUDA graphs the results are padded to the graph's batch size.
        items = computer.split_batched_state(state)[: len(frames)]
        lengths = hyps.current_lengths.tolist()
        ids = hyps.transcript.tolist()
        times = hyps.timestamps.tolist()
        durations = hyps.token_durations.tolist() if hyps.token_durations is not None else None
        decoded = []
        for row, item in enumerate(items):
            n = lengths[row]
            decoded.append(
                Tokens(
                    ids=ids[row][:n],
                    frames=times[row][:n],
                    durations=durations[row][:n] if durations is not None else [1] * n,
                    state=item,
                )
            )
        return decoded


def _deterministic_preprocessor(nemo_model: Any) -> Any:
    """The model's feature extractor without dither, padding or normalization (done per buffer)."""
    from nemo.collections.asr.inference.utils.pipeline_utils import make_preprocessor_deterministic
    from nemo.collections.asr.models import ASRModel

    settings = make_preprocessor_deterministic(copy.deepcopy(nemo_model.cfg))
    preprocessor = ASRModel.from_config_dict(settings.preprocessor)
    return preprocessor.to(nemo_model.device).eval()


def live_model(name: str | None) -> LiveModel:
    """The streaming pieces of a served model, loading it and building them on first use.

    Args:
        name: One of the served models (None: the default).

    Returns:
        Its live pieces.

    Raises:
        ModelLoadError: The model could not be loaded.
    """
    current = model.loaded(name)
    pieces = getattr(current.model, _LIVE, None)
    if pieces is None or pieces.current is not current:
        pieces = LiveModel(current)
        setattr(current.model, _LIVE, pieces)
    return pieces
