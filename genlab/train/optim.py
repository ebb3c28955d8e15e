"""Optimizer and learning-rate schedule from a :class:`TrainConfig`."""

from __future__ import annotations

import torch
from torch import nn

from genlab.utils import check_choice

OPTIMIZERS = ["adamw"]


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """nanoGPT's rule: tensors with ``ndim >= 2`` decay, vectors (biases, norm gains) do not."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(name: str, model: nn.Module, lr: float, weight_decay: float = 0.0,
                    betas: tuple[float, float] | None = None) -> torch.optim.Optimizer:
    """``adamw`` (foreach) by name, with decay/no-decay parameter groups."""
    check_choice("optimizer", name, OPTIMIZERS)
    groups = param_groups(model, weight_decay)
    return torch.optim.AdamW(groups, lr=lr, betas=betas or (0.9, 0.999), foreach=True)
