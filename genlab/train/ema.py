"""Exponential moving average of weights, saved with every checkpoint.

Built on ``torch.optim.swa_utils.AveragedModel``: ``p_ema <- d p_ema + (1 - d) p`` after each
optimizer step (one foreach lerp), with the warm-up of diffusers' ``EMAModel``,
``d = min(decay, (1 + n) / (10 + n))`` after ``n`` updates, so early averages are not dominated
by the initial weights. The average is an ``nn.Module`` with a ``state_dict`` (the copied weights
and ``n_averaged``), so ``accelerator.register_for_checkpointing(ema)`` puts it in every
checkpoint and ``--resume`` restores it exactly.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel


def ema_decay(decay: float, updates: int) -> float:
    """The decay used after ``updates`` averaging steps: ``min(decay, (1 + n) / (10 + n))``."""
    return min(decay, (1 + updates) / (10 + updates))


def build_ema(model: nn.Module, decay: float) -> AveragedModel:
    """An EMA copy of ``model`` (unwrapped, before ``accelerator.prepare``); update with
    ``ema.update_parameters(model)`` after each optimizer step; the averaged net is ``ema.module``."""
    if not 0 <= decay < 1:
        raise ValueError(f"ema decay={decay!r} must be in [0, 1)")

    def update(averaged: list[Tensor], current: list[Tensor], num_averaged: Tensor) -> None:
        torch._foreach_lerp_(averaged, current, 1 - ema_decay(decay, int(num_averaged)))

    return AveragedModel(model, multi_avg_fn=update)


__all__ = ["build_ema", "ema_decay"]
