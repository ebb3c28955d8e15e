"""Optimizer from a :class:`TrainConfig`: ``adamw`` | ``lion`` | ``tiger`` on parameter groups tagged by kind."""

from __future__ import annotations

import torch
from torch import nn

from genlab.optim import Lion, Tiger, param_groups
from genlab.utils import check_choice

OPTIMIZERS = ["adamw", "lion", "tiger"]
DEFAULT_BETAS = {"adamw": (0.9, 0.999), "lion": (0.9, 0.99), "tiger": (0.965, 0.965)}


def build_optimizer(name: str, model: nn.Module, lr: float, weight_decay: float = 0.0,
                    betas: tuple[float, float] | None = None) -> torch.optim.Optimizer:
    """AdamW (foreach), :class:`~genlab.optim.Lion` or :class:`~genlab.optim.Tiger` by name.

    Groups come from :func:`genlab.optim.param_groups` (matrices and embeddings decay; Tiger also
    reads each group's kind). Tiger takes ``betas = (beta, beta)`` and accumulates in ``.grad``
    (``grad_accum_steps=1``), which is what Accelerate's gradient accumulation gives it.
    """
    check_choice("optimizer", name, OPTIMIZERS)
    betas = tuple(betas) if betas is not None else DEFAULT_BETAS[name]
    groups = param_groups(model, weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=betas, foreach=True)
    if name == "lion":
        return Lion(groups, lr=lr, betas=betas, weight_decay=weight_decay)
    if betas[0] != betas[1]:
        raise ValueError(f"betas={betas!r}: Tiger has one momentum; pass (beta, beta)")
    return Tiger(groups, lr=lr, beta=betas[0], weight_decay=weight_decay)


__all__ = ["OPTIMIZERS", "build_optimizer"]
