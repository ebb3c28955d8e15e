"""Input checks shared by the GAN objectives: critic scores and matching real/fake batches."""

from __future__ import annotations

import torch
from torch import Tensor


class NonFiniteCriticError(ValueError):
    """The critic returned NaN or Inf: the run diverged (or the input was garbage).

    A ``ValueError`` like every bad input; training scripts catch it to stop with the step named.
    """


def check_scores(name: str, scores: Tensor, finite: bool = True) -> Tensor:
    """Critic outputs ``(B,)`` or ``(B, 1)`` -> ``(B,)``; raise on another shape or (``finite``) on NaN/Inf."""
    if not isinstance(scores, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of critic outputs; got {type(scores).__name__}")
    if scores.ndim == 2 and scores.shape[1] == 1:
        scores = scores[:, 0]
    if scores.ndim != 1 or len(scores) == 0:
        raise ValueError(f"{name} must hold one critic output per sample, shape (B,) or (B, 1); got {tuple(scores.shape)}")
    if finite and not torch.isfinite(scores.detach()).all():
        bad = (~torch.isfinite(scores.detach())).sum().item()
        raise NonFiniteCriticError(f"{name} contains NaN or Inf ({bad} of {len(scores)} values): the critic diverged")
    return scores


def check_same_batch(real_name: str, real: Tensor, fake_name: str, fake: Tensor) -> None:
    """The real and the fake batch must have the same shape (same batch size, same sample shape)."""
    if real.shape != fake.shape:
        raise ValueError(f"{real_name} has shape {tuple(real.shape)} and {fake_name} has shape {tuple(fake.shape)}; "
                         "the real and fake batches must have the same size and sample shape")


def wide(x: Tensor) -> Tensor:
    """``x`` in float32, or float64 if it already is: losses and penalties never run in half precision."""
    return x if x.dtype == torch.float64 else x.float()
