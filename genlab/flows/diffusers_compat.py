"""Explicit conversions between genlab's flow convention and diffusers' ``FlowMatchEulerDiscreteScheduler``.

diffusers (SD3 / FLUX) runs the other way: ``sigma`` goes from 1 (noise) to 0 (data),
``x = sigma * noise + (1 - sigma) * data``, the model input is ``timestep = sigma * 1000`` and its
output is ``noise - data``; ``step()`` computes ``x + (sigma_next - sigma) * model_output``.

=====================================  ===============================================
genlab                                  diffusers
=====================================  ===============================================
``t`` (0 = noise, 1 = data)             ``sigma = 1 - t``
velocity ``v`` (data - noise)           ``model_output = -v``
model time ``t``                        ``timestep = (1 - t) * num_train_timesteps``
Euler ``x + (t_next - t) v``            ``x + (sigma_next - sigma) model_output`` (identical)
=====================================  ===============================================

Every function here is an involution pair with a test against the real scheduler; nothing
converts silently. Timesteps stay float32 (bf16 would quantise 988.49 to 988).
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor

NUM_TRAIN_TIMESTEPS = 1000


def to_diffusers_velocity(v: Tensor) -> Tensor:
    """genlab velocity (data - noise) -> diffusers model output (noise - data): ``-v``."""
    return -v


def from_diffusers_velocity(model_output: Tensor) -> Tensor:
    """diffusers model output (noise - data) -> genlab velocity: ``-model_output``."""
    return -model_output


def to_diffusers_timestep(t: Tensor, num_train_timesteps: int = NUM_TRAIN_TIMESTEPS) -> Tensor:
    """genlab time ``t`` -> diffusers ``timestep = (1 - t) * num_train_timesteps`` (float32 or wider)."""
    return (1 - _wide(t)) * num_train_timesteps


def from_diffusers_timestep(timestep: Tensor, num_train_timesteps: int = NUM_TRAIN_TIMESTEPS) -> Tensor:
    """diffusers ``timestep`` -> genlab time ``1 - timestep / num_train_timesteps``."""
    return 1 - _wide(timestep) / num_train_timesteps


def to_diffusers_sigma(t: Tensor) -> Tensor:
    """genlab time -> diffusers ``sigma = 1 - t``."""
    return 1 - t


def from_diffusers_sigma(sigma: Tensor) -> Tensor:
    """diffusers ``sigma`` -> genlab time ``1 - sigma``."""
    return 1 - sigma


def time_grid_from_scheduler(scheduler: Any) -> Tensor:
    """The genlab time grid ``(N + 1,)`` of a scheduler after ``set_timesteps(N)``: ``1 - scheduler.sigmas``.

    diffusers appends a terminal ``sigma = 0``, so the grid ends at ``t = 1`` and Euler on it makes
    exactly the scheduler's ``N`` model calls.
    """
    sigmas = getattr(scheduler, "sigmas", None)
    if not isinstance(sigmas, Tensor) or sigmas.ndim != 1 or len(sigmas) < 2:
        raise ValueError("scheduler has no sigma schedule; call scheduler.set_timesteps(N) first")
    return from_diffusers_sigma(sigmas.float())


def as_diffusers_model(model: Callable[..., Tensor], num_train_timesteps: int = NUM_TRAIN_TIMESTEPS) -> Callable[..., Tensor]:
    """Wrap a genlab velocity model ``model(x, t, *args)`` as a diffusers-style ``f(sample, timestep, *args)``.

    ``timestep`` may be a scalar or ``(B,)``; the wrapper returns diffusers' ``noise - data`` output.
    """
    def diffusers_model(sample: Tensor, timestep: Tensor | float, *args: Any) -> Tensor:
        t = from_diffusers_timestep(torch.as_tensor(timestep, device=sample.device), num_train_timesteps)
        return to_diffusers_velocity(model(sample, t.to(sample.dtype).expand(sample.shape[0]), *args))

    return diffusers_model


def from_diffusers_model(diffusers_model: Callable[..., Tensor], num_train_timesteps: int = NUM_TRAIN_TIMESTEPS) -> Callable[..., Tensor]:
    """Wrap a diffusers-style ``f(sample, timestep, *args)`` (noise - data output) as a genlab velocity model."""
    def model(x: Tensor, t: Tensor, *args: Any) -> Tensor:
        return from_diffusers_velocity(diffusers_model(x, to_diffusers_timestep(t, num_train_timesteps), *args))

    return model


def _wide(t: Tensor) -> Tensor:
    t = torch.as_tensor(t)
    return t if t.dtype in (torch.float32, torch.float64) else t.float()


__all__ = ["NUM_TRAIN_TIMESTEPS", "as_diffusers_model", "from_diffusers_model", "from_diffusers_sigma",
           "from_diffusers_timestep", "from_diffusers_velocity", "time_grid_from_scheduler", "to_diffusers_sigma",
           "to_diffusers_timestep", "to_diffusers_velocity"]
