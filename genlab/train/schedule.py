"""The learning-rate schedule of every training script: linear warm-up, then constant, cosine or linear decay.

The factor applied to the peak rate for optimizer step ``k + 1`` (``k`` steps already taken) is

    warm(k) * decay(k),  warm(k) = min(1, (k + 1) / warmup_steps)  (1 when warmup_steps = 0)
    decay(k) = 1 (constant),  (1 + cos(pi * min(k / max_steps, 1))) / 2 (cosine),  1 - min(k / max_steps, 1) (linear)

The cosine form is the warm-up times half-cosine of GPT-style training (Loshchilov & Hutter 2017,
SGDR, Eq. 5 with one cycle); linear decay to 0 is Mimicry's WGAN-GP setting. The scheduler steps once
per real optimizer step (:meth:`genlab.train.Run.step_scheduler`): never per micro-batch of gradient
accumulation, never on an fp16 step the loss scaler skipped, so ``k`` counts the updates the weights had.
"""

from __future__ import annotations

import math

import torch

from genlab.utils import check_choice

SCHEDULES = ["constant", "cosine", "linear"]


def lr_factor(k: int, warmup_steps: int, max_steps: int, schedule: str = "constant") -> float:
    """Multiplier of the peak learning rate used by optimizer step ``k + 1`` (see the module docstring)."""
    warm = min(1.0, (k + 1) / warmup_steps) if warmup_steps > 0 else 1.0
    progress = min(k / max_steps, 1.0)
    if schedule == "constant":
        return warm
    if schedule == "cosine":
        return warm * 0.5 * (1 + math.cos(math.pi * progress))
    if schedule == "linear":
        return warm * (1 - progress)
    check_choice("schedule", schedule, SCHEDULES)
    raise AssertionError  # unreachable


def build_scheduler(optimizer: torch.optim.Optimizer, warmup_steps: int, max_steps: int,
                    schedule: str = "constant") -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` over :func:`lr_factor`; step it with :meth:`genlab.train.Run.step_scheduler`."""
    check_choice("schedule", schedule, SCHEDULES)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: lr_factor(k, warmup_steps, max_steps, schedule))


__all__ = ["SCHEDULES", "build_scheduler", "lr_factor"]
