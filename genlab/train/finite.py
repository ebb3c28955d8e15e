"""Numerical faults stop a run before they reach the optimizer step or a checkpoint.

A NaN or Inf loss stops the step before the optimizer applies it (:func:`check_finite_loss`), and
before every checkpoint the weights, buffers and optimizer state of the run are checked
(:func:`check_finite_state`): a step can overflow the weights with a finite loss (a huge learning
rate), and a checkpoint holding NaN would be the "last good" one that ``--resume`` loads. Each
check costs one host synchronisation, whatever the number of tensors.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import torch
from torch import Tensor

ADVICE = (
    "The last good checkpoint on disk is untouched and stays the newest. Resuming it with the same settings is "
    "likely to diverge again: change what diverged (a smaller learning rate, a longer warm-up, gradient clipping, "
    "--mixed_precision no) in a new run (--name), or resume with such a change where --resume accepts it."
)


def check_finite_loss(step: int, **losses: Tensor) -> None:
    """Stop a run whose loss became NaN or Inf, naming the step and the loss (one host sync for all)."""
    if not losses:
        return
    values = [v.detach().float().reshape(-1) for v in losses.values()]
    if bool(torch.isfinite(torch.cat(values)).all()):
        return
    for name, value in zip(losses, values):
        if not bool(torch.isfinite(value).all()):
            shown = value.mean().item() if value.numel() else float("nan")
            raise FloatingPointError(f"loss {name!r} became {shown} at step {step}; stopping. {ADVICE}")


def check_finite_state(step: int, tensors: Iterable[tuple[str, Tensor]]) -> None:
    """Raise ``FloatingPointError`` naming the first tensor of ``(name, tensor)`` that holds NaN or Inf."""
    named = [(n, t.detach()) for n, t in tensors if torch.is_tensor(t) and t.is_floating_point() and t.numel()]
    if not named:
        return
    device = named[0][1].device
    flags = torch.stack([torch.isfinite(t).all().to(device) for _, t in named])
    if bool(flags.all()):
        return
    name = named[int((~flags).nonzero()[0, 0])][0]
    raise FloatingPointError(f"{name} holds NaN or Inf at step {step}; stopping before its checkpoint is written. {ADVICE}")


def training_state(accelerator) -> Iterator[tuple[str, Tensor]]:
    """``(name, tensor)`` of every prepared model (parameters and buffers), every prepared optimizer's
    state, and every registered module (an EMA) of ``accelerator``: what a checkpoint holds."""
    for i, model in enumerate(accelerator._models):
        model = accelerator.unwrap_model(model)
        prefix = f"model {i} ({type(model).__name__})" if len(accelerator._models) > 1 else f"model ({type(model).__name__})"
        for n, t in (*model.named_parameters(), *model.named_buffers()):
            yield f"{prefix} tensor {n!r}", t
    for i, obj in enumerate(accelerator._custom_objects):
        if isinstance(obj, torch.nn.Module):
            for n, t in (*obj.named_parameters(), *obj.named_buffers()):
                yield f"checkpointed {type(obj).__name__} tensor {n!r}", t
    for i, opt in enumerate(accelerator._optimizers):
        inner = getattr(opt, "optimizer", opt)
        names = {id(p): n for model in accelerator._models for n, p in accelerator.unwrap_model(model).named_parameters()}
        for p, state in inner.state.items():
            for key, t in state.items():
                yield f"optimizer {i} state {key!r} of parameter {names.get(id(p), '?')!r}", t


__all__ = ["ADVICE", "check_finite_loss", "check_finite_state", "training_state"]
