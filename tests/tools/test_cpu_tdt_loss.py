"""The CPU TDT loss against references: brute-force enumeration of alignments and NeMo's own code."""

import pytest
import torch

from tools.cpu_tdt_loss import CpuTDTLoss

DURATIONS = [0, 1, 2, 3, 4]


def _brute_force_nll(
    acts: torch.Tensor, labels: list[int], n_frames: int, blank: int, durations: list[int], sigma: float
) -> torch.Tensor:
    """-log P(labels) by enumerating every TDT alignment of one utterance (autograd-capable).

    Args:
        acts: Joint logits of one utterance `[T, U + 1, V + 1 + D]`.
        labels: The target ids.
        n_frames: Frames that count (T of this utterance).
        blank: Blank index among the token logits.
        durations: Allowed durations.
        sigma: Subtracted from every token log-probability.

    Returns:
        The negative log-likelihood, a scalar tensor.
    """
    token_logp = torch.log_softmax(acts[..., : -len(durations)], -1) - sigma
    duration_logp = torch.log_softmax(acts[..., -len(durations) :], -1)
    path_scores: list[torch.Tensor] = []

    def walk(t: int, u: int, score: torch.Tensor) -> None:
        for i, d in enumerate(durations):
            # A blank must advance; reaching the last frame with every label emitted ends the path.
            if d > 0 and t + d <= n_frames:
                step = score + token_logp[t, u, blank] + duration_logp[t, u, i]
                if t + d == n_frames:
                    if u == len(labels):
                        path_scores.append(step)
                else:
                    walk(t + d, u, step)
            # A label may stay on its frame (d = 0) but never ends a path.
            if u < len(labels) and t + d < n_frames:
                walk(t + d, u + 1, score + token_logp[t, u, labels[u]] + duration_logp[t, u, i])

    walk(0, 0, acts.new_zeros(()))
    return -torch.logsumexp(torch.stack(path_scores), 0)


@pytest.mark.parametrize(
    ("frames", "label_lengths", "vocab", "durations", "sigma"),
    [
        ([1], [0], 3, DURATIONS, 0.0),
        ([1], [2], 3, DURATIONS, 0.0),
        ([3], [1], 2, [0, 1], 0.0),
        ([5], [2], 4, DURATIONS, 0.0),
        ([6, 4, 2], [3, 1, 2], 5, DURATIONS, 0.0),
        ([7, 3], [2, 3], 3, [0, 1, 2, 4], 0.05),
    ],
)
def test_matches_brute_force_enumeration(
    frames: list[int], label_lengths: list[int], vocab: int, durations: list[int], sigma: float
) -> None:
    generator = torch.Generator().manual_seed(sum(frames) * 31 + sum(label_lengths))
    batch, max_t, max_u = len(frames), max(frames), max(label_lengths)
    acts = torch.randn(batch, max_t, max_u + 1, vocab + 1 + len(durations), generator=generator)
    acts = (acts * 2).double().requires_grad_()
    labels = torch.randint(0, vocab, (batch, max(max_u, 1)), generator=generator)
    loss = CpuTDTLoss(blank=vocab, durations=durations, sigma=sigma)

    ours = loss(acts, labels, torch.tensor(frames), torch.tensor(label_lengths))
    (ours_grad,) = torch.autograd.grad(ours.sum(), acts)
    reference = torch.stack(
        [
            _brute_force_nll(
                acts[b], labels[b, : label_lengths[b]].tolist(), frames[b], vocab, durations, sigma
            )
            for b in range(batch)
        ]
    )
    (reference_grad,) = torch.autograd.grad(reference.sum(), acts)

    assert torch.allclose(ours, reference, atol=1e-9, rtol=1e-9)
    assert torch.isfinite(ours_grad).all()
    assert torch.allclose(ours_grad, reference_grad, atol=1e-9)


def test_float32_on_training_sized_inputs_agrees_with_float64() -> None:
    # Sharp logits make most paths astronomically unlikely: the log-space recursion must stay finite.
    torch.manual_seed(0)
    acts64 = (torch.randn(4, 80, 13, 33 + len(DURATIONS)) * 10).double().requires_grad_()
    acts32 = acts64.detach().float().requires_grad_()
    labels = torch.randint(0, 32, (4, 12))
    frames, label_lengths = torch.tensor([80, 61, 12, 3]), torch.tensor([12, 7, 12, 0])
    loss = CpuTDTLoss(blank=32, durations=DURATIONS)

    losses32 = loss(acts32, labels, frames, label_lengths)
    losses64 = loss(acts64, labels, frames, label_lengths)
    losses32.sum().backward()
    losses64.sum().backward()
    assert torch.isfinite(acts32.grad).all()
    assert torch.allclose(losses32.double(), losses64, rtol=1e-5)
    assert torch.allclose(acts32.grad.double(), acts64.grad, atol=1e-3)


def test_reductions() -> None:
    torch.manual_seed(2)
    acts = torch.randn(3, 4, 3, 4 + len(DURATIONS))
    args = (acts, torch.ones(3, 2, dtype=torch.long), torch.tensor([4, 3, 2]), torch.tensor([2, 1, 0]))
    per_utterance = CpuTDTLoss(blank=3, durations=DURATIONS, reduction=None)(*args)
    assert per_utterance.shape == (3,)
    assert torch.allclose(
        CpuTDTLoss(blank=3, durations=DURATIONS, reduction="sum")(*args), per_utterance.sum()
    )
    assert torch.allclose(
        CpuTDTLoss(blank=3, durations=DURATIONS, reduction="mean")(*args), per_utterance.mean()
    )
    with pytest.raises(ValueError, match="reduction"):
        CpuTDTLoss(blank=3, durations=DURATIONS, reduction="max")(*args)


@pytest.mark.parametrize("durations", [[1, 2], [0, 2], [0, 2, 1], [0, 1, 1]])
def test_rejects_durations_nemo_would_not_accept(durations: list[int]) -> None:
    with pytest.raises(ValueError, match="durations"):
        CpuTDTLoss(blank=3, durations=durations)


def test_matches_nemo_tdt_pytorch_inside_nemo_rnnt_loss(monkeypatch: pytest.MonkeyPatch) -> None:
    # NeMo's pure-PyTorch TDT reference hard-codes .cuda(); making .cuda() a no-op runs it on CPU.
    from nemo.collections.asr.losses.rnnt import RNNTLoss

    monkeypatch.setattr(torch.Tensor, "cuda", lambda self, *args, **kwargs: self)
    torch.manual_seed(3)
    vocab = 6
    acts = torch.randn(3, 8, 4, vocab + 1 + len(DURATIONS))
    labels = torch.randint(0, vocab, (3, 3))
    frames, label_lengths = torch.tensor([8, 5, 7]), torch.tensor([3, 2, 1])
    tdt_kwargs = {"durations": DURATIONS, "sigma": 0.05}
    nemo_loss = RNNTLoss(
        num_classes=vocab, reduction="mean_batch", loss_name="tdt_pytorch", loss_kwargs=tdt_kwargs
    )
    ours = RNNTLoss(num_classes=vocab, reduction="mean_batch", loss_name="tdt", loss_kwargs=dict(tdt_kwargs))
    # The swap the trainer does: keep NeMo's wrapper (casting, trimming, reduction), replace the kernel.
    ours._loss = CpuTDTLoss(blank=vocab, durations=DURATIONS, sigma=0.05)

    expected = nemo_loss(log_probs=acts, targets=labels, input_lengths=frames, target_lengths=label_lengths)
    actual = ours(log_probs=acts, targets=labels, input_lengths=frames, target_lengths=label_lengths)
    assert torch.allclose(actual, expected, atol=1e-4)
