"""A TDT (Token-and-Duration Transducer) loss that runs on CPU, for training the bundled test model.

nemo_toolkit 3.0.0 has two TDT losses and neither runs on CPU: `tdt` (Numba) raises "TDT is not yet
implemented for non CUDA computation" and `tdt_pytorch` calls `.cuda()`. This module computes the same
quantity as NeMo's `TDTLossNumba` with `omega=0` and `fastemit_lambda=0` (see
`nemo/collections/asr/losses/rnnt_pytorch.py`, `TDTLossPytorch`, and the Numba kernel
`compute_tdt_alphas_kernel`), with the forward algorithm written in plain PyTorch so autograd supplies
the gradients. It is swapped into a model's `RNNTLoss` wrapper for training only (`RNNTLoss._loss`);
the saved model keeps `loss_name: tdt`.

NeMo's conventions, followed here:
- `acts` is the joint output `[B, T, U + 1, V + 1 + D]`: V token logits, the blank (index V, the last
  token), then D duration logits. Token logits and duration logits are log-softmaxed separately.
- From lattice node (t, u) a label moves to (t + d, u + 1) and a blank to (t + d, u) for every duration
  d of `durations`; a blank must advance (d > 0). The path ends with a blank that lands exactly on
  t = T with all U labels emitted; a label never ends a path.
- `sigma` (logit under-normalization) is subtracted from every token log-probability.
"""

import torch
from torch import nn

# A finite stand-in for log(0): -inf would give NaN gradients in logaddexp(-inf, -inf).
_LOG_ZERO = -1e20


class CpuTDTLoss(nn.Module):
    """The TDT transducer loss (negative log-likelihood per utterance), computable on any device.

    Attributes:
        blank: Index of the blank among the token logits (NeMo: the last one, V).
        durations: The allowed durations, ascending, e.g. `[0, 1, 2, 3, 4]`.
        sigma: Logit under-normalization subtracted from token log-probabilities.
        reduction: `None`/`"none"` (per-utterance losses), `"sum"` or `"mean"` (over the batch).
            NeMo's `RNNTLoss` sets it to None around its call and reduces the result itself.
    """

    def __init__(
        self, blank: int, durations: list[int], sigma: float = 0.0, reduction: str | None = "none"
    ) -> None:
        """Builds the loss.

        Args:
            blank: Index of the blank token (the last token index in NeMo's TDT models).
            durations: Allowed durations, ascending; NeMo requires them to include 0 and 1.
            sigma: Logit under-normalization (NeMo's `tdt_kwargs.sigma`).
            reduction: See the class attributes.

        Raises:
            ValueError: The durations are not ascending or lack 0 or 1.
        """
        super().__init__()
        if list(durations) != sorted(set(durations)) or 0 not in durations or 1 not in durations:
            raise ValueError(f"durations must be ascending, distinct and include 0 and 1, got {durations}")
        self.blank = blank
        self.durations = list(durations)
        self.sigma = sigma
        self.reduction = reduction

    def forward(
        self, acts: torch.Tensor, labels: torch.Tensor, act_lens: torch.Tensor, label_lens: torch.Tensor
    ) -> torch.Tensor:
        """Computes -log P(labels | acts) summed over every TDT alignment.

        Args:
            acts: Joint output logits `[B, T, U + 1, V + 1 + len(durations)]` (not normalized).
            labels: Target token ids `[B, >= U]`, padded with any id.
            act_lens: Encoder frames per utterance `[B]`.
            label_lens: Target tokens per utterance `[B]`.

        Returns:
            Per-utterance losses `[B]`, or their sum or mean as `reduction` asks.

        Raises:
            ValueError: `reduction` is not one of the supported values.
        """
        n_durations = len(self.durations)
        token_logp = torch.log_softmax(acts[..., :-n_durations], dim=-1) - self.sigma
        duration_logp = torch.log_softmax(acts[..., -n_durations:], dim=-1)
        batch, max_t, max_u1, _ = token_logp.shape

        blank_logp = token_logp[..., self.blank]  # [B, T, U+1]
        # Padding positions hold arbitrary ids; clamp keeps the gather in range, their values are unused.
        gather_ids = labels[:, : max_u1 - 1].long().clamp(0, token_logp.shape[-1] - 1)[:, None, :, None]
        label_logp = token_logp[:, :, : max_u1 - 1].gather(-1, gather_ids.expand(-1, max_t, -1, 1))
        label_logp = label_logp.squeeze(-1)  # [B, T, U]: log P(labels[u] | t, u)

        # Arc scores per duration: a blank or a label of duration d taken from node (t, u).
        blank_arcs = [blank_logp + duration_logp[..., i] for i in range(n_durations)]
        label_arcs = [label_logp + duration_logp[:, :, :-1, i] for i in range(n_durations)]

        log_zero_column = acts.new_full((batch, 1), _LOG_ZERO)
        start = torch.cat([acts.new_zeros((batch, 1)), acts.new_full((batch, max_u1 - 1), _LOG_ZERO)], 1)
        alphas: list[torch.Tensor] = []  # alphas[t]: [B, U+1], log-prob of reaching node (t, u)
        for t in range(max_t):
            incoming = start if t == 0 else acts.new_full((batch, max_u1), _LOG_ZERO)
            for i, d in enumerate(self.durations):
                if d == 0 or d > t:
                    continue
                previous = alphas[t - d]
                from_blank = previous + blank_arcs[i][:, t - d]
                from_label = torch.cat([log_zero_column, previous[:, :-1] + label_arcs[i][:, t - d]], 1)
                incoming = torch.logaddexp(incoming, torch.logaddexp(from_blank, from_label))
            # Duration-0 labels move along u within frame t: alpha[u] = logsumexp over k <= u of
            # incoming[k] + (sum of the duration-0 label arcs from k to u), done with cumulative sums.
            zero_arcs = label_arcs[self.durations.index(0)][:, t]  # [B, U]
            path = torch.cat([acts.new_zeros((batch, 1)), zero_arcs.cumsum(1)], 1)
            alphas.append(path + torch.logcumsumexp(incoming - path, dim=1))
        alpha = torch.stack(alphas, dim=1)  # [B, T, U+1]

        rows = torch.arange(batch, device=acts.device)
        t_len = act_lens.long()
        u_len = label_lens.long()
        log_likelihood = acts.new_full((batch,), _LOG_ZERO)
        for i, d in enumerate(self.durations):
            if d == 0:
                continue
            # The final blank of duration d leaves node (T - d, U); invalid when T < d.
            t_from = (t_len - d).clamp(min=0)
            final = alpha[rows, t_from, u_len] + blank_arcs[i][rows, t_from, u_len]
            final = torch.where(t_len >= d, final, torch.full_like(final, _LOG_ZERO))
            log_likelihood = torch.logaddexp(log_likelihood, final)

        losses = -log_likelihood
        if self.reduction in (None, "none"):
            return losses
        if self.reduction == "sum":
            return losses.sum()
        if self.reduction == "mean":
            return losses.mean()
        raise ValueError(f"unsupported reduction {self.reduction!r}")
