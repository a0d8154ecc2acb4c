"""An item's words and times never depend on what shares its model call.

NeMo's batched TDT decoding without CUDA graphs (the loop on the CPU, and on a GPU whenever the
graphs are off, as with hotwords) records a wrong duration for a token: when an item finds its token
in a step while other items of the batch still search past blanks, the duration kept for that token
is the one predicted a frame later. The token's frames are right, but a word's end then moves by a
frame (80 ms) with the company. Its CUDA-graph decoding keeps each item's own duration. So without
the graphs, the items of a call are decoded one at a time (the encoder still runs on the whole call).
"""

import types
from typing import Any


def _graphs_decode(model: Any, encoded: Any) -> bool:
    """Whether the model's decoder will take its CUDA-graph path, which batches correctly."""
    computer = getattr(getattr(model.decoding, "decoding", None), "decoding_computer", None)
    mode = getattr(computer, "cuda_graphs_mode", None)
    return mode is not None and encoded.device.type == "cuda"


def decode_items(model: Any, encoded: Any, encoded_len: Any, return_hypotheses: bool) -> list[Any]:
    """Greedy decoding of a call's items: batched with CUDA graphs, else one item at a time.

    Args:
        model: The NeMo RNNT/TDT model.
        encoded: The encoder's output (B, D, T).
        encoded_len: Its lengths (B,).
        return_hypotheses: Whether NeMo returns hypotheses (with timestamps) rather than text.

    Returns:
        One hypothesis per item, in order.
    """
    decode = model.decoding.rnnt_decoder_predictions_tensor
    if _graphs_decode(model, encoded):
        return decode(encoded, encoded_len, return_hypotheses=return_hypotheses)
    hypotheses: list[Any] = []
    for index in range(encoded.shape[0]):
        length = encoded_len[index : index + 1]
        item = encoded[index : index + 1, :, : int(length)]
        hypotheses += decode(item, length, return_hypotheses=return_hypotheses)
    return hypotheses


def _transcribe_output_processing(model: Any, outputs: dict[str, Any], trcfg: Any) -> list[Any]:
    """NeMo's `_transcribe_output_processing` for RNNT models, with `decode_items` for the decoding."""
    from nemo.collections.asr.parts.utils.timestamp_utils import process_timestamp_outputs

    encoded, encoded_len = outputs.pop("encoded"), outputs.pop("encoded_len")
    hypotheses = decode_items(model, encoded, encoded_len, trcfg.return_hypotheses)
    if trcfg.timestamps:
        stride = model.cfg["preprocessor"]["window_stride"]
        hypotheses = process_timestamp_outputs(hypotheses, model.encoder.subsampling_factor, stride)
    return hypotheses


def install(model: Any) -> None:
    """Makes the model's `transcribe` decode a call's items as `decode_items` does.

    Args:
        model: A freshly loaded NeMo RNNT/TDT model.
    """
    model._transcribe_output_processing = types.MethodType(_transcribe_output_processing, model)
