"""A reference for token log-probabilities: a separate decoder that keeps every step's logits (heavy:
for tests and benchmarks only), and the log-softmax of each emitted label over the labels."""

import copy

import numpy as np

from utils.asr import model as asr_model


def reference_logprobs(samples: np.ndarray) -> tuple[list[int], list[float]]:
    """The tokens the served model emits for `samples`, and their log-softmax over the vocabulary and
    blank (the TDT duration head left out), in float32.

    Args:
        samples: Mono 16 kHz samples.

    Returns:
        The token ids and one natural-log probability per token.
    """
    import torch
    from nemo.collections.asr.parts.submodules.rnnt_decoding import RNNTBPEDecoding
    from omegaconf import open_dict

    model = asr_model.loaded().model
    cfg = copy.deepcopy(model.cfg.decoding)
    with open_dict(cfg):
        cfg.preserve_alignments = True  # every step's logits
    keeping = RNNTBPEDecoding(cfg, decoder=model.decoder, joint=model.joint, tokenizer=model.tokenizer)
    durations = len(model.cfg.model_defaults.tdt_durations)
    model.eval()
    with torch.inference_mode():
        signal = torch.from_numpy(samples)[None].to(model.device)
        length = torch.tensor([samples.size], device=model.device)
        encoded, lengths = model.forward(input_signal=signal, input_signal_length=length)
        (hypothesis,) = keeping.rnnt_decoder_predictions_tensor(encoded, lengths, return_hypotheses=True)
    found = [
        (int(label), float(torch.log_softmax(logits[:-durations].float(), -1)[int(label)]))
        for frame in hypothesis.alignments
        for logits, label in frame
        if int(label) != keeping.blank_id
    ]
    return [token for token, _ in found], [value for _, value in found]
