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

Two ways to run a genlab flow in a diffusers loop: wrap any velocity network with
:func:`as_diffusers_model`, or export a U-Net with :func:`export_to_diffusers`, which returns a plain
``diffusers.UNet2DModel`` whose own time input and output follow diffusers' conventions (the inner
``net.unet`` of :class:`~genlab.flows.networks.UNetVelocity` follows genlab's and must not be used raw).
"""

from __future__ import annotations

import copy
import math
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


def export_to_diffusers(net: Any) -> Any:
    """A standalone ``diffusers.UNet2DModel`` that is ``net`` (a genlab ``UNetVelocity``) in diffusers' conventions.

    ``unet(sample, timestep, class_labels).sample`` returns ``noise - data`` at ``timestep = sigma * 1000``
    (sigma = 1 - t), so it drops into a ``FlowMatchEulerDiscreteScheduler`` loop or a pipeline as is and
    can be saved with its own ``save_pretrained``. Exact rewrites of the weights, no wrapper:

    - time: genlab feeds ``1000 t = 1000 - timestep`` into the sinusoidal embedding; each pair
      ``(sin w(1000 - s), cos w(1000 - s))`` is a fixed rotation of ``(sin ws, cos ws)``, folded into
      the first layer of the time MLP;
    - output: ``-v``, by negating the last convolution.

    Class labels are unchanged (``num_classes`` is the null class of classifier-free guidance).
    """
    from genlab.flows.networks.embeddings import TIME_SCALE
    from genlab.flows.networks.unet import UNetVelocity

    if not isinstance(net, UNetVelocity):
        raise TypeError(f"net must be a genlab UNetVelocity (its inner model is a diffusers UNet2DModel); got "
                        f"{type(net).__name__}; wrap other velocity networks with as_diffusers_model(net)")
    if TIME_SCALE != NUM_TRAIN_TIMESTEPS or net.unet.config.time_embedding_type != "positional":
        raise ValueError("export_to_diffusers needs positional time embeddings on a 1000-step time scale")
    unet = copy.deepcopy(net.unet)
    proj, first = unet.time_proj, unet.time_embedding.linear_1
    half = proj.num_channels // 2
    exponent = -math.log(10000) * torch.arange(half, dtype=torch.float64) / (half - proj.downscale_freq_shift)
    phase = torch.exp(exponent) * proj.scale * TIME_SCALE  # w * 1000 for each frequency w
    sin_at, cos_at = (torch.arange(half) + half, torch.arange(half)) if proj.flip_sin_to_cos else (torch.arange(half), torch.arange(half) + half)
    # genlab's embedding = rotate @ diffusers' embedding: sin(a - x) = sin a cos x - cos a sin x, cos(a - x) = cos a cos x + sin a sin x
    rotate = torch.zeros(proj.num_channels, proj.num_channels, dtype=torch.float64)
    rotate[sin_at, cos_at], rotate[sin_at, sin_at] = phase.sin(), -phase.cos()
    rotate[cos_at, cos_at], rotate[cos_at, sin_at] = phase.cos(), phase.sin()
    with torch.no_grad():
        first.weight.copy_((first.weight.double() @ rotate).to(first.weight.dtype))
        unet.conv_out.weight.neg_()
        if unet.conv_out.bias is not None:
            unet.conv_out.bias.neg_()
    return unet


def _wide(t: Tensor) -> Tensor:
    t = torch.as_tensor(t)
    return t if t.dtype in (torch.float32, torch.float64) else t.float()


__all__ = ["NUM_TRAIN_TIMESTEPS", "as_diffusers_model", "export_to_diffusers", "from_diffusers_model", "from_diffusers_sigma",
           "from_diffusers_timestep", "from_diffusers_velocity", "time_grid_from_scheduler", "to_diffusers_sigma",
           "to_diffusers_timestep", "to_diffusers_velocity"]
