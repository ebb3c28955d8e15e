"""Exponential moving average of weights, saved with every checkpoint: the one EMA of every training
script (``ema_decay`` means the same in train_flow.py and train_gan.py).

Built on ``torch.optim.swa_utils.AveragedModel``: ``p_ema <- d p_ema + (1 - d) p`` after each
optimizer step (one foreach lerp), with the warm-up of diffusers' ``EMAModel``,
``d = min(decay, (1 + n) / (10 + n))`` after ``n`` updates, so early averages are not dominated
by the initial weights. Floating-point buffers (e.g. batch-norm statistics) are averaged the same
way; integer buffers (batch counters) are copied. The average is an ``nn.Module`` with a
``state_dict`` (the copied weights and ``n_averaged``), so ``accelerator.register_for_checkpointing(ema)``
puts it in every checkpoint and ``--resume`` restores it exactly. Averaging generator weights is
Yazici et al. 2019, "The Unusual Effectiveness of Averaging in GAN Training".
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
        weight = 1 - ema_decay(decay, int(num_averaged))
        floats = [(a, c) for a, c in zip(averaged, current) if a.is_floating_point()]
        if floats:
            torch._foreach_lerp_([a for a, _ in floats], [c for _, c in floats], weight)
        for a, c in zip(averaged, current):
            if not a.is_floating_point():
                a.copy_(c)

    return AveragedModel(model, multi_avg_fn=update, use_buffers=True)


__all__ = ["build_ema", "ema_decay"]
