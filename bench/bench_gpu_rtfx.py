"""RTFx of the full-size Parakeet-TDT-0.6B-v3 architecture with random weights: bf16 with CUDA-graph
decoding vs fp32 without, at batch 1 and 32.

    python bench/bench_gpu_rtfx.py                                  # on a GPU machine: the 4 figures
    python bench/bench_gpu_rtfx.py --seconds 60 --batch-sizes 1 8 32 --repeats 10
    python bench/bench_gpu_rtfx.py --bf16 autocast                  # fp32 weights under torch.autocast
    .venv/bin/python bench/bench_gpu_rtfx.py --device cpu --smoke   # proves the script runs, no GPU

The model is NeMo's `EncDecRNNTBPEModel` built from a config, not downloaded: the bundled test model's
config (`tools.train_test_model.model_config`) with every architecture field set to Parakeet-TDT-0.6B-v3's
(128 mel features, FastConformer 24 x 1024 with 8 heads, dw_striding x8 with 256 channels, 2-layer LSTM
prediction network of 640, joint of 640 with 5 TDT durations) and a SentencePiece BPE tokenizer of 8192
pieces trained on random pseudo-words in a temporary directory. The weights are random, so the text is
meaningless; only speed matters.

How much the decoder works depends on what the joint emits, and a random joint's logits hardly change from
frame to frame: left alone, it emits a token at every step without moving on (duration 0) up to
`max_symbols`, 10 per encoder frame (125 tokens per audio second), or with a slightly higher blank
logit, nothing at all. So two output biases of the joint are
shifted: blank never wins and every token moves 2 frames on, which makes 6.25 tokens and decoder steps per
audio second, close to the work of speech (a few tokens a second, blanks skipping up to 4 frames), though
NeMo's inner loop over blanks never runs. Each figure reports the tokens per audio second it decoded.

Each figure times `model.transcribe(audios, batch_size=B)` over B utterances of `--seconds` of noise, the
call the worker makes: RTFx = B x seconds / median wall time of `--repeats` calls after `--warmup` calls,
with `torch.cuda.synchronize()` on both sides of each call. The peak GPU memory covers the warm-up (where
CUDA graphs are captured) and the timed calls, weights included.

- bf16 + CUDA graphs: `--bf16 cast` (default) runs `model.to(torch.bfloat16)`, as NeMo's
  `transcribe_speech.py compute_dtype=bfloat16` does (the preprocessor still computes in fp32);
  `--bf16 autocast` keeps fp32 weights under `torch.autocast("cuda", dtype=torch.bfloat16)` (its
  `amp=true`), and then NeMo's CUDA-graph decoder turns autocast off and decodes in fp32. NeMo 3.0.0's
  TDT `greedy_batch` decoder always loops over labels (`loop_labels` is read for RNN-T only); CUDA graphs
  are `decoding.greedy.use_cuda_graph_decoder` (on by default), and `graphs_mode` says what NeMo ran:
  `full_graph` (conditional nodes; needs cuda-python and a recent driver) or `no_while_loops` (its
  fallback, logged as a warning).
- fp32 without graphs: `use_cuda_graph_decoder=False`, at torch's default fp32 matmul precision (no TF32),
  as the worker runs.

`--smoke` shrinks the run (2 s utterances, batch 1 and 2, one repeat, one warm-up) and marks the figures
`"smoke": true`; on the CPU it runs only fp32 without graphs. Its figures show that the script works, not
how fast anything is.
"""

import argparse
import itertools
import json
import random
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf, open_dict

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools.synth import SAMPLE_RATE
from tools.train_test_model import model_config, train_tokenizer

VOCAB_SIZE = 8192
N_MELS = 128
# Every field that sets Parakeet-TDT-0.6B-v3's size or shape, merged over the test model's config (which
# supplies the rest: targets, mel windows, TDT durations [0..4] and loss, greedy_batch TDT decoding).
FULL_SIZE_CONFIG = {
    "model_defaults": {"enc_hidden": 1024, "pred_hidden": 640, "joint_hidden": 640},
    "preprocessor": {"sample_rate": SAMPLE_RATE, "features": N_MELS},
    "encoder": {
        "feat_in": N_MELS,
        "n_layers": 24,
        "d_model": 1024,
        "n_heads": 8,
        "ff_expansion_factor": 4,
        "conv_kernel_size": 9,
        "subsampling": "dw_striding",
        "subsampling_factor": 8,
        "subsampling_conv_channels": 256,
        "self_attention_model": "rel_pos",
        "att_context_size": [-1, -1],
        "xscaling": True,
    },
    "decoder": {"blank_as_pad": True, "prednet": {"pred_hidden": 640, "pred_rnn_layers": 2}},
    "joint": {"num_extra_outputs": 5, "jointnet": {"joint_hidden": 640}},
    "decoding": {"strategy": "greedy_batch", "model_type": "tdt", "durations": [0, 1, 2, 3, 4]},
    "loss": {"loss_name": "tdt"},
}
# Enough distinct pseudo-words that BPE finds 8192 pieces (under a second of SentencePiece training).
TOKENIZER_LEXICON_WORDS = 40_000
TOKENIZER_CORPUS_LINES = 20_000
TOKENIZER_WORDS_PER_LINE = 12
NOISE_AMPLITUDE = 0.1
# The joint's output biases are shifted this far, far beyond the spread of its random logits (under 1).
EMISSION_BIAS_SHIFT = 20.0
# Encoder frames (80 ms each) each emitted token moves on: one of the TDT durations.
EMISSION_FRAMES = 2
SMOKE_SECONDS = 2.0
SMOKE_BATCH_SIZES = (1, 2)
SEED = 1234


@dataclass(frozen=True)
class Setup:
    """One way of running the model: its precision and whether decoding uses CUDA graphs."""

    precision: str
    cuda_graphs: bool


FP32_NO_GRAPHS = Setup("fp32", cuda_graphs=False)
BF16_GRAPHS = Setup("bf16", cuda_graphs=True)
BF16_NO_GRAPHS = Setup("bf16", cuda_graphs=False)
SETUPS = {"fp32-no-graphs": FP32_NO_GRAPHS, "bf16-graphs": BF16_GRAPHS, "bf16-no-graphs": BF16_NO_GRAPHS}


def pseudo_text(seed: int) -> list[str]:
    """Lines of random lowercase pseudo-words, frequent ones first (Zipf-like), for the tokenizer.

    Args:
        seed: Seed of the words and lines.

    Returns:
        `TOKENIZER_CORPUS_LINES` lines of `TOKENIZER_WORDS_PER_LINE` words.
    """
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    lexicon = ["".join(rng.choices(letters, k=rng.randint(2, 12))) for _ in range(TOKENIZER_LEXICON_WORDS)]
    cum_weights = list(itertools.accumulate(1 / rank for rank in range(1, len(lexicon) + 1)))
    words = rng.choices(lexicon, cum_weights=cum_weights, k=TOKENIZER_CORPUS_LINES * TOKENIZER_WORDS_PER_LINE)
    return [
        " ".join(words[start : start + TOKENIZER_WORDS_PER_LINE])
        for start in range(0, len(words), TOKENIZER_WORDS_PER_LINE)
    ]


def set_speech_like_emission(model: Any) -> None:
    """Shifts the joint's output biases so that every decoder step emits a token and moves on 2 frames.

    Args:
        model: The model with random weights; its TDT outputs are the tokens, the blank (index = vocabulary
            size), then one logit per duration.
    """
    output = model.joint.joint_net[-1]
    blank = len(model.joint.vocabulary)
    duration = blank + 1 + list(model.cfg.decoding.durations).index(EMISSION_FRAMES)
    with torch.no_grad():
        output.bias[blank] -= EMISSION_BIAS_SHIFT
        output.bias[duration] += EMISSION_BIAS_SHIFT


def build_model(device: str, workdir: Path | None = None) -> Any:
    """Builds Parakeet-TDT-0.6B-v3's architecture with random weights and a fresh 8192-piece tokenizer.

    Args:
        device: "cuda" or "cpu".
        workdir: Where the tokenizer is trained and kept (a model to be saved with `save_to` needs its
            files); None: a temporary directory removed once the model is built.

    Returns:
        The `EncDecRNNTBPEModel` in eval mode on `device`, in fp32, with `set_speech_like_emission`.
    """
    from nemo.collections.asr.models import EncDecRNNTBPEModel

    # The tokenizer is loaded into the model when it is built, so its directory can go right after.
    with tempfile.TemporaryDirectory(prefix="bench-gpu-rtfx-") as tmp:
        tokenizer_dir = Path(workdir or tmp) / "tokenizer"
        train_tokenizer(pseudo_text(SEED), tokenizer_dir, VOCAB_SIZE)
        cfg = OmegaConf.merge(OmegaConf.create(model_config(tokenizer_dir, 640, 24)), FULL_SIZE_CONFIG)
        torch.manual_seed(SEED)
        model = EncDecRNNTBPEModel(cfg=cfg)
    set_speech_like_emission(model)
    return model.to(device).eval()


def set_cuda_graphs(model: Any, enabled: bool) -> str | None:
    """Rebuilds the model's TDT greedy_batch decoder with CUDA graphs allowed or not.

    Args:
        model: The model.
        enabled: Value of `decoding.greedy.use_cuda_graph_decoder`.

    Returns:
        The graphs mode NeMo chose (`full_graph`, `no_while_loops`), or None without graphs.
    """
    decoding_cfg = model.cfg.decoding.copy()
    with open_dict(decoding_cfg):
        decoding_cfg.greedy.use_cuda_graph_decoder = enabled
    model.change_decoding_strategy(decoding_cfg, verbose=False)
    # NeMo picks a mode even on a CPU-only machine, but replays graphs only for CUDA tensors.
    mode = model.decoding.decoding.decoding_computer.cuda_graphs_mode
    return str(mode) if mode is not None and model.device.type == "cuda" else None


def synthetic_audio(count: int, seconds: float, seed: int) -> list[np.ndarray]:
    """Gaussian noise utterances, 16 kHz mono float32 like the worker's decoded audio.

    Args:
        count: Number of utterances.
        seconds: Length of each.
        seed: Seed of the noise.

    Returns:
        The utterances.
    """
    rng = np.random.default_rng(seed)
    samples = int(seconds * SAMPLE_RATE)
    return [(rng.standard_normal(samples) * NOISE_AMPLITUDE).astype(np.float32) for _ in range(count)]


def synchronize(device: str) -> None:
    """Waits for queued GPU work, so that wall time covers it.

    Args:
        device: "cuda" or "cpu" (nothing to wait for).
    """
    if device == "cuda":
        torch.cuda.synchronize()


def measure(model: Any, setup: Setup, batch_size: int, args: argparse.Namespace) -> dict[str, Any]:
    """Times `model.transcribe` over one batch in one setup.

    Args:
        model: The model, already in the setup's dtype.
        setup: Precision and graphs.
        batch_size: Utterances per call, all in one batch.
        args: The options (`device`, `seconds`, `repeats`, `warmup`, `bf16`, `smoke`).

    Returns:
        One figure as a JSON-ready dict.
    """
    graphs_mode = set_cuda_graphs(model, setup.cuda_graphs)
    audios = synthetic_audio(batch_size, args.seconds, SEED + batch_size)
    autocast = setup.precision == "bf16" and args.bf16 == "autocast"

    def run() -> list[Any]:
        context = torch.autocast(args.device, dtype=torch.bfloat16) if autocast else nullcontext()
        with context:
            return model.transcribe(audios, batch_size=batch_size, timestamps=False, verbose=False)

    if args.device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    for _ in range(args.warmup):
        run()
    times = []
    for _ in range(args.repeats):
        synchronize(args.device)
        started = time.perf_counter()
        hypotheses = run()
        synchronize(args.device)
        times.append(time.perf_counter() - started)
    median = statistics.median(times)
    audio_seconds = batch_size * args.seconds
    tokens = sum(len(hypothesis.y_sequence) for hypothesis in hypotheses)
    peak = torch.cuda.max_memory_allocated() / 2**20 if args.device == "cuda" else None
    graphs = "on" if setup.cuda_graphs else "off"
    return {
        "figure": f"RTFx, {setup.precision}, CUDA graphs {graphs}, batch {batch_size}",
        "precision": setup.precision,
        "bf16_mode": args.bf16 if setup.precision == "bf16" else None,
        "cuda_graphs": setup.cuda_graphs,
        "graphs_mode": graphs_mode,
        "batch_size": batch_size,
        "seconds_per_utterance": args.seconds,
        "rtfx": round(audio_seconds / median, 1),
        "median_seconds": round(median, 4),
        "min_seconds": round(min(times), 4),
        "repeats": args.repeats,
        "warmup": args.warmup,
        "tokens_per_audio_second": round(tokens / audio_seconds, 2),
        "peak_gpu_memory_mib": None if peak is None else round(peak),
        "smoke": args.smoke,
    }


def describe(model: Any, device: str, smoke: bool) -> dict[str, Any]:
    """The model and machine line printed before the figures.

    Args:
        model: The built model.
        device: "cuda" or "cpu".
        smoke: Whether this is a smoke run.

    Returns:
        A JSON-ready dict with the parameter count and the architecture as built.
    """
    encoder = OmegaConf.to_container(model.cfg.encoder)
    return {
        "figure": "model",
        "architecture": "Parakeet-TDT-0.6B-v3 (random weights)",
        "parameters": sum(p.numel() for p in model.parameters()),
        "encoder": {key: encoder[key] for key in FULL_SIZE_CONFIG["encoder"]},
        "prediction_network": OmegaConf.to_container(model.cfg.decoder.prednet),
        "joint_hidden": model.cfg.joint.jointnet.joint_hidden,
        "vocabulary": model.tokenizer.vocab_size,
        "durations": list(model.cfg.decoding.durations),
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "versions": {"torch": torch.__version__, "nemo_toolkit": version("nemo_toolkit")},
        "smoke": smoke,
    }


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Reads the command line and applies `--smoke`.

    Args:
        argv: Arguments after the program name.

    Returns:
        The options.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each utterance")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per figure (median)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls per figure first")
    parser.add_argument("--bf16", choices=("cast", "autocast"), default="cast", help="how bf16 is applied")
    parser.add_argument("--smoke", action="store_true", help="a tiny run that proves the script works")
    parser.add_argument(
        "--setups", nargs="+", choices=SETUPS, default=["fp32-no-graphs", "bf16-graphs"], help="fp32 first"
    )
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA device here; on a machine without a GPU run --device cpu --smoke")
    if args.device == "cpu" and not args.smoke:
        parser.error("CPU figures are not what this measures; --device cpu needs --smoke")
    if args.smoke:
        args.seconds, args.batch_sizes, args.repeats, args.warmup = SMOKE_SECONDS, SMOKE_BATCH_SIZES, 1, 1
    return args


def main(argv: list[str]) -> int:
    """Builds the model and prints one JSON line describing it, then one per figure.

    Args:
        argv: Arguments after the program name.

    Returns:
        The process exit status.
    """
    args = parse_args(argv)
    from nemo.utils import logging as nemo_logging

    # NeMo logs INFO to stdout, which holds only the JSON lines; its warnings still go to stderr.
    nemo_logging.setLevel(nemo_logging.WARNING)
    model = build_model(args.device)
    print(json.dumps(describe(model, args.device, args.smoke)), flush=True)
    # fp32 first, on the weights as built; the bf16 cast is not undone.
    chosen = sorted((SETUPS[name] for name in args.setups), key=lambda setup: setup.precision != "fp32")
    setups = [FP32_NO_GRAPHS] if args.device == "cpu" else chosen
    for setup in setups:
        if setup.precision == "bf16" and args.bf16 == "cast":
            model.to(torch.bfloat16)
        for batch_size in args.batch_sizes:
            figure = measure(model, setup, batch_size, args)
            print(json.dumps(figure), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
