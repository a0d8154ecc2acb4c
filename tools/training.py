"""Pieces both test-model trainers use: the FastConformer encoder at fixture size, the learning-rate
schedule, and the package versions their cards record."""

import math
from importlib.metadata import version
from typing import Any

import torch


def fastconformer_encoder(
    features: int, d_model: int, layers: int, conv_channels: int, dropout: float = 0.1
) -> dict[str, Any]:
    """The config of a small FastConformer encoder: `dw_striding` x8, `rel_pos` attention, full context.

    Args:
        features: Mel bands in.
        d_model: Model width.
        layers: Conformer layers.
        conv_channels: Channels of the subsampling convolutions.
        dropout: Of the layers, before the encoder and of the attention scores.

    Returns:
        The `encoder` section of a NeMo model config.
    """
    return {
        "_target_": "nemo.collections.asr.modules.ConformerEncoder",
        "feat_in": features,
        "feat_out": -1,
        "n_layers": layers,
        "d_model": d_model,
        "subsampling": "dw_striding",
        "subsampling_factor": 8,
        "subsampling_conv_channels": conv_channels,
        "causal_downsampling": False,
        "ff_expansion_factor": 4,
        "self_attention_model": "rel_pos",
        "n_heads": 4,
        "att_context_size": [-1, -1],
        "xscaling": True,
        "untie_biases": True,
        "pos_emb_max_len": 5000,
        "conv_kernel_size": 9,
        "conv_norm_type": "batch_norm",
        "dropout": dropout,
        "dropout_pre_encoder": dropout,
        "dropout_emb": 0.0,
        "dropout_att": dropout,
    }


def warmup_cosine(
    optimizer: torch.optim.Optimizer, peak_lr: float, min_lr: float, warmup: int, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up to `peak_lr` over `warmup` steps, then cosine decay to `min_lr` at `total_steps`.

    Args:
        optimizer: Its learning rate is `peak_lr`.
        peak_lr: The learning rate after warm-up.
        min_lr: The learning rate at the end.
        warmup: Warm-up steps (at least 1).
        total_steps: Steps in all.

    Returns:
        The scheduler, stepped once per optimizer step.
    """

    def factor(step: int) -> float:
        progress = (step - warmup) / max(1, total_steps - warmup)
        return warmup_cosine_factor(step, warmup, progress, min_lr / peak_lr)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def warmup_cosine_factor(step: int, warmup: int, progress: float, floor: float) -> float:
    """The share of the peak learning rate at `step`: linear warm-up, then cosine decay by `progress`.

    Args:
        step: Optimizer steps taken.
        warmup: Warm-up steps (at least 1).
        progress: How far past warm-up training is, 0 to 1 (by steps, or by wall-clock time).
        floor: The share at the end (minimum / peak learning rate).

    Returns:
        The factor to multiply the peak learning rate by.
    """
    if step < warmup:
        return (step + 1) / warmup
    progress = min(max(progress, 0.0), 1.0)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def package_version(package: str) -> str:
    """An installed package's version, for a model card.

    Args:
        package: The distribution name.

    Returns:
        Its version string.
    """
    return version(package)
